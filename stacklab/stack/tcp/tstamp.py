"""SO_TIMESTAMPING transmit timestamps for TCP (Linux Documentation/networking/timestamping.rst).

* **marking** — a send call made while a recording flag (TX_SCHED, TX_SOFTWARE, TX_ACK) is on
  marks the last byte it queued (Linux tcp_tx_timestamp: the tail skb's ``tskey``).
* **reports** — every transmission of a segment holding a marked byte reports
  SCM_TSTAMP_SCHED (it entered the packet scheduler, TX_SCHED) then SCM_TSTAMP_SND (the
  driver took it, TX_SOFTWARE); stacklab has no qdisc or driver between TCP and the wire, so
  both carry the time the segment went out. The cumulative ACK that first covers a marked byte
  reports SCM_TSTAMP_ACK (TX_ACK; tcp_ack_tstamp: SACK does not count).
* **delivery** — a report waits on the socket's error queue (errqueue.py) as a
  sock_extended_err {ENOMSG, SO_EE_ORIGIN_TIMESTAMPING, ee_info: the report's type, ee_data:
  the key}, with an SCM_TIMESTAMPING control message holding the virtual time when
  SOF_TIMESTAMPING_SOFTWARE asks for software timestamps (no hardware clock here), and a copy
  of the packet unless OPT_TSONLY.
* **key** — with OPT_ID the key counts bytes from where the connection stood when OPT_ID was
  switched on: SND.UNA, or the next byte to be written with OPT_ID_TCP (Linux
  sock_set_timestamping's ``sk_tskey``); without OPT_ID it is 0.

Linux keeps one key per skb, so of small sends coalesced into one skb only the last one's
byte reports; stacklab has no skbs and reports every send's last byte. Positions are
send-buffer stream offsets, as in zerocopy.py. A TCB holds one of these only while flags are on.
"""

from __future__ import annotations

import errno
from bisect import bisect_left

from .errqueue import ErrQueue, ExtendedErr

# SOF_TIMESTAMPING_* (linux/net_tstamp.h)
TX_HARDWARE = 1 << 0
TX_SOFTWARE = 1 << 1
RX_HARDWARE = 1 << 2
RX_SOFTWARE = 1 << 3
SOFTWARE = 1 << 4
SYS_HARDWARE = 1 << 5
RAW_HARDWARE = 1 << 6
OPT_ID = 1 << 7
TX_SCHED = 1 << 8
TX_ACK = 1 << 9
OPT_CMSG = 1 << 10
OPT_TSONLY = 1 << 11
OPT_STATS = 1 << 12
OPT_PKTINFO = 1 << 13
OPT_TX_SWHW = 1 << 14
BIND_PHC = 1 << 15
OPT_ID_TCP = 1 << 16
OPT_RX_FILTER = 1 << 17
MASK = (OPT_RX_FILTER << 1) - 1  # every flag Linux knows (SOF_TIMESTAMPING_MASK)
RECORD = TX_SCHED | TX_SOFTWARE | TX_ACK  # what a send marks its last byte for
FLAG_NAMES = {
    "SOF_TIMESTAMPING_TX_HARDWARE": TX_HARDWARE, "SOF_TIMESTAMPING_TX_SOFTWARE": TX_SOFTWARE,
    "SOF_TIMESTAMPING_RX_HARDWARE": RX_HARDWARE, "SOF_TIMESTAMPING_RX_SOFTWARE": RX_SOFTWARE,
    "SOF_TIMESTAMPING_SOFTWARE": SOFTWARE, "SOF_TIMESTAMPING_SYS_HARDWARE": SYS_HARDWARE,
    "SOF_TIMESTAMPING_RAW_HARDWARE": RAW_HARDWARE, "SOF_TIMESTAMPING_OPT_ID": OPT_ID,
    "SOF_TIMESTAMPING_TX_SCHED": TX_SCHED, "SOF_TIMESTAMPING_TX_ACK": TX_ACK,
    "SOF_TIMESTAMPING_OPT_CMSG": OPT_CMSG, "SOF_TIMESTAMPING_OPT_TSONLY": OPT_TSONLY,
    "SOF_TIMESTAMPING_OPT_STATS": OPT_STATS, "SOF_TIMESTAMPING_OPT_PKTINFO": OPT_PKTINFO,
    "SOF_TIMESTAMPING_OPT_TX_SWHW": OPT_TX_SWHW, "SOF_TIMESTAMPING_BIND_PHC": BIND_PHC,
    "SOF_TIMESTAMPING_OPT_ID_TCP": OPT_ID_TCP, "SOF_TIMESTAMPING_OPT_RX_FILTER": OPT_RX_FILTER,
}

# ee_info: the report's type (linux/errqueue.h SCM_TSTAMP_*)
SCM_TSTAMP_SND, SCM_TSTAMP_SCHED, SCM_TSTAMP_ACK = 0, 1, 2
SO_EE_ORIGIN_TIMESTAMPING = 4
SCM_TIMESTAMPING = 37  # the control message type, = SO_TIMESTAMPING (SOL_SOCKET)


def check_flags(flags: int, old: int, may_set_id: bool) -> int:
    """The errno setsockopt(SO_TIMESTAMPING, ``flags``) fails with over ``old`` flags, or 0
    (Linux sock_set_timestamping): an unknown flag, OPT_ID_TCP without OPT_ID, OPT_STATS
    without OPT_TSONLY, or switching OPT_ID on where there is no connection to count from
    (``may_set_id`` false: CLOSED or LISTEN) are EINVAL; BIND_PHC needs a PTP clock
    (EOPNOTSUPP: stacklab has none)."""
    if flags & ~MASK or (flags & OPT_ID_TCP and not flags & OPT_ID) \
            or (flags & OPT_STATS and not flags & OPT_TSONLY) \
            or (flags & OPT_ID and not old & OPT_ID and not may_set_id):
        return errno.EINVAL
    if flags & BIND_PHC:
        return errno.EOPNOTSUPP
    return 0


class TxTimestamps:
    __slots__ = ("flags", "key_base", "marks", "kinds", "queue")

    def __init__(self, queue: ErrQueue) -> None:
        self.flags = 0
        self.key_base = 0  # the stream offset OPT_ID counts keys from
        self.marks: list[int] = []  # stream offsets of the marked bytes not yet acked, ascending
        self.kinds: list[int] = []  # per mark: the RECORD flags of its send call
        self.queue = queue  # the socket's error queue: reports go there

    def set_flags(self, flags: int, una: int, write: int) -> None:
        """New flags (checked with check_flags); ``una`` / ``write``: the stream offsets of
        SND.UNA and of the next byte to be written, where a newly switched-on OPT_ID counts
        from (with OPT_ID_TCP: ``write``)."""
        if flags & OPT_ID and not self.flags & OPT_ID:
            self.key_base = write if flags & OPT_ID_TCP else una
        self.flags = flags

    def sendmsg(self, end: int) -> None:
        """A send call queued bytes up to stream offset ``end``: mark its last byte."""
        kind = self.flags & RECORD
        if kind and end > 0:
            self.marks.append(end - 1)
            self.kinds.append(kind)

    def sent(self, start: int, end: int, now: float) -> None:
        """Stream bytes [start, end) went out (new or again): SCHED and SND reports for the
        marked bytes among them."""
        marks = self.marks
        i = bisect_left(marks, start)
        while i < len(marks) and marks[i] < end:
            kind = self.kinds[i]
            if kind & TX_SCHED:
                self._report(SCM_TSTAMP_SCHED, marks[i], now)
            if kind & TX_SOFTWARE:
                self._report(SCM_TSTAMP_SND, marks[i], now)
            i += 1

    def acked(self, base: int, now: float) -> None:
        """The data is cumulatively acknowledged up to stream offset ``base``: ACK reports for
        the marked bytes now covered, and they are done with."""
        marks, kinds = self.marks, self.kinds
        n = bisect_left(marks, base)
        for i in range(n):
            if kinds[i] & TX_ACK:
                self._report(SCM_TSTAMP_ACK, marks[i], now)
        if n:
            del marks[:n], kinds[:n]

    def _report(self, kind: int, mark: int, now: float) -> None:
        flags = self.flags
        key = (mark - self.key_base) & 0xFFFFFFFF if flags & OPT_ID else 0
        self.queue.append(ExtendedErr(errno.ENOMSG, SO_EE_ORIGIN_TIMESTAMPING, 0, kind, key,
                                      tstamp=now if flags & SOFTWARE else None,
                                      has_data=not flags & OPT_TSONLY))
