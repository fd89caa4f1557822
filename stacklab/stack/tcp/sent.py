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

Beside the log by position, ``SentLog.tsorted`` holds RACK's candidates in transmission order
(Linux's ``tsorted_sent_queue``): every record in the log neither SACKed nor marked lost is in
it, sorted by ``order``. It may also hold records that have since been SACKed, marked lost or
taken out of the log (``gone``): they are dropped lazily, where a walk passes them (rack.py) or
the cumulative ACK takes the oldest (:meth:`SentLog.acked`), so RACK's walk touches each dead
record about once, not on every ACK.

Positions are stream positions (``Tcb._abs``: they never wrap; a FIN counts one). TCP
resegments at will, so the records are kept by position and disjoint: a resend of part of a
record splits it and the resent part gets a fresh record (Linux ``tcp_fragment`` copies the tx
stamps to both halves), so each byte's record is that of its latest transmission.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from operator import attrgetter


class Sent:
    """One transmission: positions ``[start, end)``, when, whether it was a retransmission, the
    payload length of the segment that carried it; RACK's delivered (SACKed) / lost marks; the
    delivery-rate stamps (rate.py, set only when a controller wants samples); ``gone``: no
    longer in the log (cumulatively ACKed, or replaced by a resend's pieces)."""

    __slots__ = ("start", "end", "xmit", "retrans", "sacked", "lost", "order", "length", "psh",
                 "delivered", "delivered_time", "first_sent", "app_limited", "rated", "gone")

    def __init__(self, start: int, end: int, xmit: float, retrans: bool, order: int,
                 length: int, psh: bool = False) -> None:
        self.order = order  # transmission order (Linux's time-sorted list): ties of xmit
        self.start = start
        self.end = end
        self.xmit = xmit
        self.retrans = retrans
        self.length = length  # payload bytes of the segment (PMTU: did it fit the new MSS?)
        self.psh = psh  # it went with PSH (Linux: the skb's flag, kept for its resends)
        self.sacked = False
        self.lost = False
        self.gone = False
        # delivery-rate stamps (rate.py): the connection's counters when it was sent
        self.delivered = 0
        self.delivered_time = 0.0
        self.first_sent = 0.0
        self.app_limited = False
        self.rated = False  # a SACK delivered it and a rate sample counted it


_NO_RECORDS: list[Sent] = []  # the records of every log that never had one (SentLog)


class SentLog:
    """Data transmissions not yet cumulatively acknowledged, by position, disjoint."""

    __slots__ = ("records", "order", "fin_end", "retrans_top", "tsorted")

    def __init__(self) -> None:
        # none yet: a shared empty list, never mutated (on_sent, the one way in, gives the
        # log a list of its own first; issue 23 item 4)
        self.records: list[Sent] = _NO_RECORDS
        self.tsorted: list[Sent] = _NO_RECORDS  # RACK's candidates by transmission order
        self.order = 0  # transmissions recorded so far
        self.fin_end = -1  # the position after our FIN once sent
        # no retransmission ever recorded ends above this: above it lie first transmissions
        # only, sent in position order (RACK's detection stops there: rack.py)
        self.retrans_top = 0

    def on_sent(self, start: int, end: int, length: int, now: float, retrans: bool,
                fin: bool, psh: bool = False) -> tuple[Sent, int]:
        """Record a transmission of ``[start, end)`` (``psh``: with PSH); the new record and
        how many SACKed records it replaced (sent again: no longer delivered). A record resent
        in part keeps its PSH on the part after the resend (Linux tcp_fragment: "PSH and FIN
        should only be set in the second packet")."""
        if fin:
            self.fin_end = end
        if retrans and end > self.retrans_top:
            self.retrans_top = end
        log = self.records
        if not log:  # never the shared list (or a deep copy's) from here
            self.records = log = []
            self.tsorted = []  # (an empty log: whatever it held is gone)
        self.order += 1
        if not log or start >= log[-1].end:
            rec = Sent(start, end, now, retrans, self.order, length, psh)
            log.append(rec)
            self.tsorted.append(rec)
            return rec, 0
        i = bisect_right(log, start, key=_start) - 1  # (a resend: no list of every start)
        i = max(i, 0)
        j = i
        unsacked = 0
        pieces: list[Sent] = []
        while j < len(log) and log[j].start < end:
            old = log[j]
            if old.end > start:
                old.gone = True
                if old.start < start:
                    pieces.append(self._queued(_piece(old, old.start, start, False)))
                if old.end > end:
                    pieces.append(self._queued(_piece(old, end, old.end, old.psh)))
                if old.sacked:
                    unsacked += 1
            else:
                pieces.append(old)
            j += 1
        rec = Sent(start, end, now, True, self.order, length, psh)
        pieces.append(rec)
        pieces.sort(key=lambda s: s.start)
        log[i:j] = pieces
        self.tsorted.append(rec)
        return rec, unsacked

    def on_sent_run(self, start: int, count: int, size: int, now: float, psh: list[int],
                    stamps: Sent | None = None) -> int:
        """``count`` first transmissions of ``size`` bytes each from ``start`` on, at or above
        the last record (new data, no FIN): the state of ``on_sent`` (its specification) for
        each in turn, ``psh`` the ascending indexes of those that went with PSH; ``stamps``: a
        record whose delivery-rate stamps (rate.py) each copies. Returns how many SACKed records
        they replaced (as ``on_sent``; none above the last record)."""
        log = self.records
        if not log or start < log[-1].end:  # (the first of the log, or not above it)
            unsacked = 0
            for k in range(count):
                rec, n = self.on_sent(start + k * size, start + (k + 1) * size, size, now, False,
                                      False, k in psh)
                unsacked += n
                if stamps is not None:
                    rec.delivered = stamps.delivered
                    rec.delivered_time = stamps.delivered_time
                    rec.first_sent = stamps.first_sent
                    rec.app_limited = stamps.app_limited
            return unsacked
        order = self.order
        append = log.append
        queue = self.tsorted.append
        end = start + count * size
        for pos in range(start, end, size):
            order += 1
            rec = Sent(pos, pos + size, now, False, order, size)
            if stamps is not None:
                rec.delivered = stamps.delivered
                rec.delivered_time = stamps.delivered_time
                rec.first_sent = stamps.first_sent
                rec.app_limited = stamps.app_limited
            append(rec)
            queue(rec)
        if psh:
            first = len(log) - count
            for k in psh:
                log[first + k].psh = True
        self.order = order
        return 0

    def _queued(self, rec: Sent) -> Sent:
        """``rec`` (a piece of a record, its order) in the time-sorted queue if a candidate."""
        if not rec.sacked and not rec.lost:
            ts = self.tsorted
            if ts and ts[-1].order > rec.order:
                ts.insert(bisect_right(ts, rec.order, key=_order), rec)
            else:
                ts.append(rec)
        return rec

    def requeue(self) -> None:
        """The lost marks were cleared (a timeout): every record not SACKed is a candidate."""
        self.tsorted = sorted((s for s in self.records if not s.sacked), key=_order)

    def split_last(self, size: int) -> None:
        """The last record was a TSO packet (gso.py) that leaves as segments of ``size``: one
        record per segment, in transmission order, as if each had been recorded alone."""
        log = self.records
        rec = log.pop()
        rec.gone = True
        order = rec.order
        end = rec.end
        xmit, retrans = rec.xmit, rec.retrans
        delivered, delivered_time = rec.delivered, rec.delivered_time
        first_sent, app_limited = rec.first_sent, rec.app_limited
        for start in range(rec.start, end, size):  # a new record: not SACKed, lost or rated
            p = Sent(start, start + size if start + size < end else end, xmit, retrans, order,
                     size if start + size < end else end - start)
            p.delivered = delivered
            p.delivered_time = delivered_time
            p.first_sent = first_sent
            p.app_limited = app_limited
            order += 1
            log.append(p)
            self._queued(p)
        self.order = order - 1

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
            for s in done:
                s.gone = True
            ts = self.tsorted
            if k == n:
                del ts[:]  # (no builtin call: this runs for every ACK that advances)
            else:  # the oldest dead candidates (in-order delivery: the ones just ACKed)
                dead = 0
                for s in ts:
                    if not (s.gone or s.sacked or s.lost):
                        break
                    dead += 1
                if dead:
                    del ts[:dead]
                if len(ts) > 2 * (n - k) + 16:  # dead ones further in: at most as many again
                    ts[:] = [s for s in ts if not (s.gone or s.sacked or s.lost)]
        if log and log[0].start < una:
            log[0].start = una
        return done

    def at(self, pos: int) -> Sent | None:
        """The record holding position ``pos``, if any."""
        log = self.records
        i = bisect_right(log, pos, key=_start) - 1
        return log[i] if i >= 0 and pos < log[i].end else None

    def resend(self, pos: int, mss: int) -> int | None:
        """The data length of a resend from ``pos`` as Linux's tcp_retransmit_skb makes it from
        its skbs: the transmission holding ``pos`` (cut at ``mss`` if larger, tcp_fragment),
        joined by the next ones while the whole of each still fits in ``mss`` and none was
        SACKed (tcp_retrans_try_collapse). None: nothing recorded there, or a segment sent
        before a path MTU decrease (larger than ``mss``): that goes as the byte stream is cut,
        where Linux's tcp_fragment would leave a short tail of each (on a lossy path with a
        few MTU drops, upstream's cut made one of the 1,000 bounded transfers of
        test_integrity_scale 45 % slower, past its 600 s)."""
        log = self.records
        i = bisect_right(log, pos, key=_start) - 1
        if i < 0 or pos >= log[i].end:
            return None
        fin_end = self.fin_end
        r = log[i]
        if r.length > mss:  # (see above)
            return None
        stop = r.end - (r.end == fin_end)  # the FIN's position is no data
        n = min(stop - pos, mss)
        i += 1
        while i < len(log) and n == stop - pos:
            r = log[i]
            size = r.end - r.start - (r.end == fin_end)
            if r.start != stop or r.sacked or not size or n + size > mss:
                break
            n += size
            stop += size
            i += 1
        return n

    def pushed(self, pos: int, n: int) -> bool:
        """Whether a resend of ``[pos, pos + n)`` carries PSH: a record ending inside it went
        with PSH (Linux: the skb keeps its flag, joined skbs add theirs, and a split leaves it
        on the part after the cut)."""
        log = self.records
        i = bisect_right(log, pos, key=_start) - 1
        i = max(i, 0)
        fin_end = self.fin_end
        while i < len(log) and log[i].start < pos + n:
            r = log[i]
            if r.psh and pos < r.end - (r.end == fin_end) <= pos + n:
                return True
            i += 1
        return False

    def whole(self, start: int, end: int) -> tuple[int, int]:
        """The part of a SACK block ``[start, end)`` made of whole transmissions (empty: start
        >= end). Linux SACKs an skb only when a block covers it all (tcp_match_skb_to_sack; it
        splits a multi-segment skb at MSS multiples, and stacklab's records are single
        segments): a block covering part of a segment marks nothing of it, so the resend is
        the whole segment, as first sent."""
        log = self.records
        i = bisect_right(log, start, key=_start) - 1
        if i >= 0 and log[i].start < start < log[i].end:
            start = log[i].end
        j = bisect_right(log, end, key=_start) - 1
        if j >= 0 and log[j].start < end < log[j].end - (log[j].end == self.fin_end):
            end = log[j].start  # (a block ending at the FIN covers the segment carrying it)
        return start, end

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


def _piece(old: Sent, start: int, end: int, psh: bool) -> Sent:
    p = Sent(start, end, old.xmit, old.retrans, old.order, old.length, psh)
    p.sacked = old.sacked
    p.lost = old.lost
    p.delivered = old.delivered
    p.delivered_time = old.delivered_time
    p.first_sent = old.first_sent
    p.app_limited = old.app_limited
    p.rated = old.rated
    return p


# a record's start, the key of every bisection here (a C callable: no Python call per step)
_start: Callable[[Sent], int] = attrgetter("start")
_order: Callable[[Sent], int] = attrgetter("order")


__all__ = ["Sent", "SentLog"]
