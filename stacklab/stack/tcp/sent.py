"""The one log of data transmissions: a record per data segment sent (new or resent), kept
until the cumulative ACK passes it, as Linux keeps everything about a transmission on its skb
(``tcp_skb_cb``: seq/end_seq, the tx stamps of tcp_rate.c, the sacked bits, ``skb_mstamp``).

Three rules read it:

* RACK-TLP (rack.py): when each segment was sent, whether it was a retransmission, whether it
  is SACKed or deemed lost, its transmission order;
* delivery-rate estimation (rate.py): the connection's delivered count and times stamped when it
  was sent, and whether a rate sample has counted it yet;
* a path MTU decrease (Linux ``tcp_simple_retransmit``): :meth:`SentLog.fitting`, the ranges
  whose latest transmission fits the new MSS, which stay in flight and are not resent.

Positions are stream positions (``Tcb._abs``: they never wrap; a FIN counts one). TCP
resegments at will, so the records are kept by position and disjoint: a resend of part of a
record splits it and the resent part gets a fresh record (Linux ``tcp_fragment`` copies the tx
stamps to both halves), so each byte's record is that of its latest transmission.
"""

from __future__ import annotations

from bisect import bisect_right


class Sent:
    """One transmission: positions ``[start, end)``, when, whether it was a retransmission, the
    payload length of the segment that carried it; RACK's delivered (SACKed) / lost marks; the
    delivery-rate stamps (rate.py, set only when a controller wants samples)."""

    __slots__ = ("start", "end", "xmit", "retrans", "sacked", "lost", "order", "length",
                 "delivered", "delivered_time", "first_sent", "app_limited", "rated")

    def __init__(self, start: int, end: int, xmit: float, retrans: bool, order: int,
                 length: int) -> None:
        self.order = order  # transmission order (Linux's time-sorted list): ties of xmit
        self.start = start
        self.end = end
        self.xmit = xmit
        self.retrans = retrans
        self.length = length  # payload bytes of the segment (PMTU: did it fit the new MSS?)
        self.sacked = False
        self.lost = False
        # delivery-rate stamps (rate.py): the connection's counters when it was sent
        self.delivered = 0
        self.delivered_time = 0.0
        self.first_sent = 0.0
        self.app_limited = False
        self.rated = False  # a SACK delivered it and a rate sample counted it


_NO_RECORDS: list[Sent] = []  # the records of every log that never had one (SentLog)


class SentLog:
    """Data transmissions not yet cumulatively acknowledged, by position, disjoint."""

    __slots__ = ("records", "order", "fin_end")

    def __init__(self) -> None:
        # none yet: a shared empty list, never mutated (on_sent, the one way in, gives the
        # log a list of its own first; issue 23 item 4)
        self.records: list[Sent] = _NO_RECORDS
        self.order = 0  # transmissions recorded so far
        self.fin_end = -1  # the position after our FIN once sent

    def on_sent(self, start: int, end: int, length: int, now: float, retrans: bool,
                fin: bool) -> tuple[Sent, int]:
        """Record a transmission of ``[start, end)``; the new record and how many SACKed
        records it replaced (sent again: no longer delivered)."""
        if fin:
            self.fin_end = end
        log = self.records
        if not log:  # never the shared list (or a deep copy's) from here
            self.records = log = []
        self.order += 1
        if not log or start >= log[-1].end:
            rec = Sent(start, end, now, retrans, self.order, length)
            log.append(rec)
            return rec, 0
        i = bisect_right([s.start for s in log], start) - 1
        i = max(i, 0)
        j = i
        unsacked = 0
        pieces: list[Sent] = []
        while j < len(log) and log[j].start < end:
            old = log[j]
            if old.end > start:
                if old.start < start:
                    pieces.append(_piece(old, old.start, start))
                if old.end > end:
                    pieces.append(_piece(old, end, old.end))
                if old.sacked:
                    unsacked += 1
            else:
                pieces.append(old)
            j += 1
        rec = Sent(start, end, now, True, self.order, length)
        pieces.append(rec)
        pieces.sort(key=lambda s: s.start)
        log[i:j] = pieces
        return rec, unsacked

    def acked(self, una: int) -> list[Sent]:
        """The cumulative ACK reached ``una``: the records below it, removed (a record it
        covers in part now starts at ``una``)."""
        log = self.records
        k = 0
        n = len(log)
        while k < n and log[k].end <= una:
            k += 1
        done = log[:k]
        if k:
            del log[:k]
        if log and log[0].start < una:
            log[0].start = una
        return done

    def fitting(self, una: int, top: int, mss: int) -> list[tuple[int, int]]:
        """The ranges in [una, top) whose latest transmission carried at most ``mss`` bytes:
        still in flight on the narrower path, not to be resent (Linux tcp_simple_retransmit
        marks lost only the segments larger than the new MSS: the router dropped those)."""
        keep: list[tuple[int, int]] = []
        for s in self.records:
            if s.length <= mss:
                lo, hi = max(s.start, una), min(s.end, top)
                if lo < hi:
                    keep.append((lo, hi))
        return keep


def _piece(old: Sent, start: int, end: int) -> Sent:
    p = Sent(start, end, old.xmit, old.retrans, old.order, old.length)
    p.sacked = old.sacked
    p.lost = old.lost
    p.delivered = old.delivered
    p.delivered_time = old.delivered_time
    p.first_sent = old.first_sent
    p.app_limited = old.app_limited
    p.rated = old.rated
    return p


__all__ = ["Sent", "SentLog"]
