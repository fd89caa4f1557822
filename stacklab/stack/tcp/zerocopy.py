"""MSG_ZEROCOPY completion notifications (Linux Documentation/networking/msg_zerocopy.rst).

stacklab always copies what a write hands it, so a zero-copy send is an ordinary send plus its
notification: each ``send(MSG_ZEROCOPY)`` call that queued bytes takes the next id (from 0, one
per call however many pieces it was written in); once the peer has cumulatively acknowledged the
call's last byte (Linux: the skbs holding its pages are freed) the id completes, and completions
wait on the socket's error queue as ranges [lo, hi], a new id extending the last range when it
follows it (Linux skb_zerocopy_notify_extend: only when the queue's last entry is such a range).
TCP frees data in order, so ids complete in order. The queue is the socket's error queue
(errqueue.py), shared with SO_TIMESTAMPING's reports.

Positions are send-buffer stream offsets (``SendBuffer.end`` after the write, ``SendBuffer.base``
after an ACK): no sequence arithmetic here. A TCB holds one of these only with SO_ZEROCOPY on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from .errqueue import ErrQueue, ExtendedErr

# struct sock_extended_err (linux/errqueue.h)
SO_EE_ORIGIN_ZEROCOPY = 5
SO_EE_CODE_ZEROCOPY_COPIED = 1  # the kernel copied the data: always so in stacklab
MAX_SKB_FRAGS = 17  # Linux's default (CONFIG_MAX_SKB_FRAGS): page fragments per skb


def frag_ends(iov: Sequence[int]) -> list[int]:
    """Where a zero-copy write of an iovec (its element lengths) fills an skb, as offsets from
    the write's start: Linux pins each non-empty element as one page fragment (elements within
    a page, as packetdrill's), MAX_SKB_FRAGS to an skb; a full skb gets PSH and no more data
    (tcp_sendmsg_locked: -EMSGSIZE -> tcp_mark_push, new_segment)."""
    ends: list[int] = []
    frags = pos = 0
    for n in iov:
        if n:
            pos += n
            frags += 1
            if frags == MAX_SKB_FRAGS:
                ends.append(pos)
                frags = 0
    return ends


class ZeroCopy:
    __slots__ = ("next_id", "pending", "queue")

    def __init__(self, queue: ErrQueue) -> None:
        self.next_id = 0  # Linux sk_zckey: the id of the next zero-copy send call
        self.pending: deque[tuple[int, int]] = deque()  # (id, stream offset of its end)
        self.queue = queue  # the socket's error queue: completed ranges go there

    def queued(self, end: int, new_call: bool) -> None:
        """A zero-copy write queued bytes up to stream offset ``end``; ``new_call``: the first
        bytes of a send call (it takes an id), else more of the last call."""
        if new_call or not self.pending:
            self.pending.append((self.next_id, end))
            self.next_id = (self.next_id + 1) & 0xFFFFFFFF
        else:
            self.pending[-1] = (self.pending[-1][0], end)

    def acked(self, base: int) -> None:
        """The send buffer's data is acknowledged up to stream offset ``base``: complete every
        call that ended there or before (ee_info..ee_data: the range of ids)."""
        pending, queue = self.pending, self.queue
        while pending and pending[0][1] <= base:
            zid = pending.popleft()[0]
            last = queue[-1] if queue else None
            if last is not None and last.ee_origin == SO_EE_ORIGIN_ZEROCOPY \
                    and last.ee_data + 1 == zid:
                last.ee_data = zid
            else:
                queue.append(ExtendedErr(0, SO_EE_ORIGIN_ZEROCOPY, SO_EE_CODE_ZEROCOPY_COPIED,
                                         zid, zid))

    def flush(self) -> None:
        """The connection closed (a reset, a timeout, an abort): its send buffer is freed, so
        every pending call completes (Linux tcp_write_queue_purge frees the skbs)."""
        if self.pending:
            self.acked(self.pending[-1][1])
