"""What a path MTU decrease resends: the log of data transmissions still in flight, and the
ranges that stay in flight because the segment carrying them fits the new MSS.

Linux's ``tcp_simple_retransmit`` (called from ``tcp_mtu_reduced``) marks lost only the segments
of the write queue larger than the new MSS: the router dropped those, the smaller ones (the short
tail of a burst, a segment resent after an earlier drop) went through. Resending from SND.UNA
(go-back-N) would send again what the receiver has, or will have, and after a second drop make
it answer with D-SACKs (RFC 2883): the data crossed the path twice.

TCP resegments at will, so "the segment carrying a byte" is its latest transmission: the log
keeps ``(seq, end, length)`` for each data segment sent (retransmissions too, appended later)
and forgets a record once the cumulative ACK passes its end.
"""

from __future__ import annotations

from collections import deque

from .recovery import RangeSet
from .seq import HALF, MASK


class SentLog:
    """Data transmissions not yet cumulatively acknowledged, in the order sent."""

    __slots__ = ("records",)

    def __init__(self) -> None:
        self.records: deque[tuple[int, int, int]] = deque()  # (seq, end seq, payload length)

    def sent(self, seq: int, end: int, length: int) -> None:
        self.records.append((seq, end, length))

    def acked(self, una: int) -> None:
        """Forget the records the cumulative ACK ``una`` covers (end <= una, modulo 2**32)."""
        records = self.records
        while records and ((una - records[0][1]) & MASK) < HALF:
            records.popleft()

    def fitting(self, una: int, top: int, mss: int) -> list[tuple[int, int]]:
        """Offsets from ``una`` of the ranges in [una, top) whose latest transmission carried
        at most ``mss`` bytes: still in flight on the narrower path, not to be resent."""
        limit = (top - una) & MASK
        seen = RangeSet()
        keep: list[tuple[int, int]] = []
        for seq, end, length in reversed(self.records):
            s = (seq - una) & MASK
            e = (end - una) & MASK
            if s >= HALF:  # starts below SND.UNA (partly acknowledged)
                s = 0
            if e >= HALF or e <= s:
                continue
            e = min(e, limit)
            if e <= s:
                continue
            if length <= mss:
                keep += _uncovered(seen, s, e)
            seen.add(s, e)
        keep.sort()
        return keep


def _uncovered(seen: RangeSet, s: int, e: int) -> list[tuple[int, int]]:
    """The parts of ``[s, e)`` outside ``seen``."""
    out: list[tuple[int, int]] = []
    pos = s
    for a, b in seen:
        if b <= pos:
            continue
        if a >= e:
            break
        if a > pos:
            out.append((pos, a))
        pos = max(pos, b)
        if pos >= e:
            break
    if pos < e:
        out.append((pos, e))
    return out


__all__ = ["SentLog"]
