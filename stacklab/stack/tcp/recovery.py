"""Loss detection and recovery state of a TCB: the SACK scoreboard (RFC 2018, RFC 6675), D-SACK
reading (RFC 2883), and the bookkeeping of fast recovery with or without SACK (RFC 5681, NewReno
RFC 6582). Like aioquic's ``recovery.py`` it decides *what* is lost and what to send next; the
congestion controller (``congestion/``) only reacts, and the TCB builds the segments.

Coordinates: the TCB hands in *stream positions* (plain ints that never wrap: the send buffer's
stream offset of a byte; the FIN is the position after the last data byte), so nothing here does
modulo-2**32 arithmetic. The TCB converts SACK blocks to positions before calling in.

Rules implemented (RFC 6675 §4-§5):

* ``IsLost(S)``: more than ``(DupThresh - 1) * SMSS`` bytes above S are SACKed, or DupThresh
  discontiguous SACKed ranges lie above S.
* ``pipe``: every un-SACKed byte in [SND.UNA, SND.MAX) not deemed lost counts once, and every
  byte retransmitted in this recovery episode (and still un-SACKed) once more.
* ``NextSeg``: (1) the lowest lost, un-SACKed byte not yet retransmitted; (2) new data (the TCB
  decides); (3) an un-SACKed byte below the highest SACKed one, not yet retransmitted.

With RACK (RFC 8985, ``rack_mode``) a byte is lost when ``rack.py`` marked it so (``lost``: by
time, or by a timeout), not by the DupThresh rule; pipe and NextSeg (1) read that set instead.
There a retransmission stays marked (``retrans``) until it is acknowledged, marked lost again or
a timeout goes back to SND.UNA, across recovery episodes, as Linux's per-skb
``TCPCB_SACKED_RETRANS``: a byte marked lost in one episode and resent stays in flight, and a
later episode does not send it once more (which, at 5 % loss, resent every second hole twice).
"""

from __future__ import annotations

from bisect import bisect_right

DUPTHRESH = 3
_SHARED_EMPTY: list[int] = []  # the lists of every empty RangeSet (RangeSet.__init__)
_NO_SACKED: list[tuple[int, int]] = []  # Recovery.new_sacked before any SACK, never mutated


class RangeSet:
    """Sorted, disjoint, non-adjacent half-open ranges ``[start, end)`` of stream positions."""

    __slots__ = ("starts", "ends")

    def __init__(self) -> None:
        # an empty set shares one empty list (three sets per connection end: 0.33 KiB of empty
        # lists per idle connection end, issue 23 item 4), never mutated: ``add``, the one
        # method that grows a set, gives an empty set lists of its own first
        self.starts: list[int] = _SHARED_EMPTY
        self.ends: list[int] = _SHARED_EMPTY

    def __len__(self) -> int:
        return len(self.starts)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(zip(self.starts, self.ends, strict=True))

    def clear(self) -> None:
        self.starts.clear()
        self.ends.clear()

    @property
    def total(self) -> int:
        return sum(self.ends) - sum(self.starts)

    def add(self, start: int, end: int) -> int:
        """Add ``[start, end)``; returns how many positions were not in the set before."""
        if end <= start:
            return 0
        starts, ends = self.starts, self.ends
        if not starts:  # never the shared list (or a deep copy's) from here
            self.starts = starts = []
            self.ends = ends = []
        i = bisect_right(ends, start - 1)  # first range that ends at or after start (touching)
        if i > 0 and ends[i - 1] >= start:
            i -= 1
        j = i
        covered = 0
        while j < len(starts) and starts[j] <= end:
            covered += min(ends[j], end) - max(starts[j], start) if ends[j] > start else 0
            j += 1
        if i == j:
            starts.insert(i, start)
            ends.insert(i, end)
            return end - start
        ns, ne = min(start, starts[i]), max(end, ends[j - 1])
        starts[i:j] = [ns]
        ends[i:j] = [ne]
        return (end - start) - max(0, covered)

    def gaps(self, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of ``[start, end)`` not in the set."""
        starts, ends = self.starts, self.ends
        out: list[tuple[int, int]] = []
        i = bisect_right(ends, start)  # the first range that ends after start
        pos = start
        while pos < end:
            if i < len(starts) and starts[i] <= pos:
                pos = max(pos, ends[i])
                i += 1
                continue
            stop = min(starts[i], end) if i < len(starts) else end
            out.append((pos, stop))
            pos = stop
        return out

    def remove(self, start: int, end: int) -> None:
        """Take ``[start, end)`` out of the set."""
        keep_s: list[int] = []
        keep_e: list[int] = []
        for s, e in zip(self.starts, self.ends, strict=True):
            if e <= start or s >= end:
                keep_s.append(s)
                keep_e.append(e)
                continue
            if s < start:
                keep_s.append(s)
                keep_e.append(start)
            if e > end:
                keep_s.append(end)
                keep_e.append(e)
        self.starts[:] = keep_s
        self.ends[:] = keep_e

    def remove_below(self, pos: int) -> None:
        """Forget everything below ``pos`` (cumulatively acknowledged)."""
        starts, ends = self.starts, self.ends
        k = 0
        while k < len(starts) and ends[k] <= pos:
            k += 1
        if k:
            del starts[:k]
            del ends[:k]
        if starts and starts[0] < pos:
            starts[0] = pos

    def containing(self, pos: int) -> int | None:
        """The end of the range holding ``pos``, or None."""
        i = bisect_right(self.starts, pos) - 1
        if i >= 0 and pos < self.ends[i]:
            return self.ends[i]
        return None

    def next_start(self, pos: int) -> int | None:
        """The start of the first range that begins above ``pos``."""
        i = bisect_right(self.starts, pos)
        return self.starts[i] if i < len(self.starts) else None

    def covered_between(self, lo: int, hi: int) -> int:
        """How many positions of ``[lo, hi)`` are in the set (from the first range ending
        above ``lo``: a few ranges for a segment's worth, whatever the size of the set)."""
        starts, ends = self.starts, self.ends
        n = 0
        for k in range(bisect_right(ends, lo), len(starts)):
            s = starts[k]
            if s >= hi:
                break
            e = ends[k]
            n += (e if e < hi else hi) - (s if s > lo else lo)
        return n

    def overlap(self, other: RangeSet, lo: int = 0) -> int:
        """How many positions at or above ``lo`` are in both sets (one merge walk: pipe is
        computed per segment sent in recovery, so it must not cost ranges times ranges)."""
        a_s, a_e, b_s, b_e = self.starts, self.ends, other.starts, other.ends
        i = j = n = 0
        na, nb = len(a_s), len(b_s)
        while i < na and j < nb:
            ae, be = a_e[i], b_e[j]
            s = a_s[i]
            bs = b_s[j]
            if bs > s:
                s = bs
            if lo > s:
                s = lo
            if ae < be:
                if ae > s:
                    n += ae - s
                i += 1
            else:
                if be > s:
                    n += be - s
                j += 1
        return n

    @property
    def high(self) -> int | None:
        return self.ends[-1] if self.ends else None


# the sets of a scoreboard that never had a range (Recovery); three, as a deep copy of a
# scoreboard must not find two of its sets the same
_NO_SACKED_SET, _NO_RETRANS, _NO_LOST = RangeSet(), RangeSet(), RangeSet()


class Recovery:
    """Scoreboard plus recovery episode state for one connection."""

    # one per connection end: slots for the sets and what a SACK option or a timeout moves;
    # what only a recovery episode or a D-SACK sets are class attributes until then, in the
    # instance's __dict__ once set (48 bytes less per idle connection end, issue 23 item 4)
    __slots__ = ("sacked", "retrans", "in_recovery", "inflation", "lost", "rack_mode",
                 "new_sacked", "_pipe_memo", "_lost_done", "__dict__")
    recovery_point = 0  # RFC 6675 RecoveryPoint / RFC 6582 "recover": HighData at entry
    sack_mode = False  # this episode is driven by the scoreboard (RFC 6675)
    high_rxt = 0  # highest position retransmitted in this episode
    dsacks = 0  # D-SACK blocks seen (RFC 2883): a retransmission was not needed
    last_dsack: tuple[int, int] | None = None  # the last D-SACK block (positions; rack.py)
    episodes = 0
    rescue_done = False
    lost_total = 0  # bytes ever marked lost, each time again (Linux tp->lost)

    def __init__(self) -> None:
        # the three sets start as empty sets every scoreboard shares, never changed: the
        # methods here that add to a set give the scoreboard a set of its own first (0.14 KiB
        # per idle connection end, issue 23 item 4); the others leave an empty set as it is
        self.sacked = _NO_SACKED_SET  # SACKed positions above SND.UNA
        self.retrans = _NO_RETRANS  # positions retransmitted in the current episode
        self.in_recovery = False
        self.inflation = 0  # NewReno: bytes added to cwnd by duplicate ACKs (RFC 5681 §3.2)
        self.lost = _NO_LOST  # positions RACK marked lost (rack_mode)
        # what the last SACK option added to the scoreboard: the only place where records can
        # have become SACKed (rack.py, rate.py look there, not through the whole scoreboard)
        # (the shared empty list until the first SACK option: on_sack gives it its own)
        self.new_sacked: list[tuple[int, int]] = _NO_SACKED
        self.rack_mode = False
        # the last pipe: (una, high_data, mss, rack_mode, pipe before the floor at 0), carried
        # across what changes it by a known amount inside [una, high_data) (_carry: a SACK in
        # rack_mode, a loss mark, a retransmission); forgotten by the rest (a cumulative ACK,
        # the end of an episode); new data above it adds itself (pipe)
        self._pipe_memo: tuple[int, int, int, bool, int] | None = None
        # NextSeg rule (1)'s cursor (rack_mode): every position marked lost below it is SACKed
        # or retransmitted, so the search for the next hole starts there, not at the first
        # lost range (at 5 % loss it walked every resent range for every segment it sent);
        # only a new loss mark (which may drop a retransmission mark) or a cleared
        # retransmission set brings it back down
        self._lost_done = 0

    # -- scoreboard ---------------------------------------------------------------------------
    def on_sack(self, una: int, high_data: int, blocks: list[tuple[int, int]],
                ack: int | None = None) -> int:
        """Take the SACK blocks of an ACK (positions; ``ack``: its cumulative ACK, SND.UNA if
        None). Returns the number of newly SACKed positions. A first block below the ACK, or
        inside the second block, is a D-SACK (RFC 2883 §4): counted, not added."""
        new = 0
        fresh: list[tuple[int, int]] = []
        self.new_sacked = fresh
        below = una if ack is None else max(una, ack)
        for i, (s, e) in enumerate(blocks):
            if e <= s:
                continue
            if i == 0 and (e <= below or (len(blocks) > 1 and blocks[1][0] <= s
                                        and e <= blocks[1][1])):
                self.dsacks += 1
                self.last_dsack = (s, e)
                continue
            s = max(s, una)
            e = min(e, high_data)
            if e > s:
                if self.sacked is _NO_SACKED_SET:
                    self.sacked = RangeSet()
                fresh += self.sacked.gaps(s, e)
                new += self.sacked.add(s, e)
        fresh.sort()
        if fresh and self._pipe_memo is not None:
            # each position newly SACKed leaves the pipe; one marked lost was out already,
            # one retransmitted (and not SACKed) counted twice (SetPipe (a), (b))
            if self.rack_mode and self._pipe_memo[0] == una:
                lost, retrans = self.lost, self.retrans
                delta = 0
                for lo, hi in fresh:
                    delta += lost.covered_between(lo, hi) - retrans.covered_between(lo, hi) \
                        - (hi - lo)
                self._carry(fresh[0][0], fresh[-1][1], delta)
            else:  # (DupThresh's IsLost moves with the scoreboard)
                self._pipe_memo = None
        return new

    def _carry(self, lo: int, hi: int, delta: int) -> None:
        """What changed in ``[lo, hi)`` moved the pipe by ``delta``: the last answer carried
        when that lies in its [una, high_data), else forgotten."""
        memo = self._pipe_memo
        if memo is not None:
            if memo[0] <= lo and hi <= memo[1]:
                self._pipe_memo = (memo[0], memo[1], memo[2], memo[3], memo[4] + delta)
            else:
                self._pipe_memo = None

    def on_cumulative_ack(self, una: int) -> None:
        self._pipe_memo = None
        if self.sacked.starts:
            self.sacked.remove_below(una)
        if self.retrans.starts:
            self.retrans.remove_below(una)
        if self.lost.starts:
            self.lost.remove_below(una)

    def mark_lost(self, start: int, end: int) -> None:
        """RACK deems ``[start, end)`` lost: a retransmission of it is lost too, so it may be
        sent again (RFC 8985 §6.2 step 5; Linux tcp_mark_skb_lost)."""
        if start < self._lost_done:
            self._lost_done = start
        if self.lost is _NO_LOST:
            self.lost = RangeSet()
        memo = self._pipe_memo
        if memo is not None and self.sacked.covered_between(start, end):
            self._pipe_memo = memo = None  # (RACK marks what is not SACKed: not seen)
        new = self.lost.add(start, end)
        again = 0
        if self.retrans.starts:
            again = self.retrans.covered_between(start, end)  # a retransmission lost again
            self.retrans.remove(start, end)
        if memo is not None:  # newly lost positions leave the pipe (in rack_mode), and so
            # does the second count of a lost retransmission
            self._carry(start, end, (-new if self.rack_mode else 0) - again)
        self.lost_total += min(new + again, end - start)

    def lost_bytes(self) -> int:
        """Bytes marked lost and not SACKed since (rack_mode)."""
        return self.lost.total - self.lost.overlap(self.sacked)

    def lost_limit(self, una: int, mss: int) -> int:
        """Every un-SACKed position below the result is lost (RFC 6675 IsLost)."""
        need_bytes = (DUPTHRESH - 1) * mss + 1
        acc = 0
        starts, ends = self.sacked.starts, self.sacked.ends
        for k in range(len(starts) - 1, -1, -1):
            s, e = starts[k], ends[k]
            count = len(starts) - k
            acc += e - s
            if acc >= need_bytes or count >= DUPTHRESH:
                return max(una, s)  # every un-SACKed position below s has enough above it
        return una

    def is_lost(self, pos: int, una: int, mss: int) -> bool:
        return pos < self.lost_limit(una, mss) and self.sacked.containing(pos) is None

    def pipe(self, una: int, high_data: int, mss: int) -> int:
        """RFC 6675 SetPipe, in bytes. It is asked before every segment sent in recovery:
        when only new data went out since the last answer (nothing SACKed, marked lost or
        resent above its HighData), the new bytes count once each and nothing is walked."""
        memo = self._pipe_memo
        if memo is not None and memo[0] == una and memo[1] <= high_data and memo[2] == mss \
                and memo[3] is self.rack_mode:
            top = memo[1]
            if top == high_data:
                return memo[4] if memo[4] > 0 else 0
            if (not self.sacked.ends or self.sacked.ends[-1] <= top) \
                    and (not self.lost.ends or self.lost.ends[-1] <= top) \
                    and (not self.retrans.ends or self.retrans.ends[-1] <= top):
                n = memo[4] + high_data - top
                self._pipe_memo = (una, high_data, mss, memo[3], n)
                return n if n > 0 else 0
        flight = high_data - una
        sacked = self.sacked.covered_between(una, high_data)
        if self.rack_mode:
            lost = self.lost_bytes()
        else:
            limit = self.lost_limit(una, mss)
            lost = (limit - una) - self.sacked.covered_between(una, limit)
        retrans = self.retrans
        rx_unsacked = retrans.total - retrans.covered_between(0, una) \
            - retrans.overlap(self.sacked, una) if retrans.starts else 0
        # a lost byte retransmitted counts once (the retransmission); a byte retransmitted but not
        # (yet) deemed lost counts twice (RFC 6675 SetPipe (a) and (b))
        n = flight - sacked - lost + rx_unsacked
        self._pipe_memo = (una, high_data, mss, self.rack_mode, n)
        return n if n > 0 else 0

    def next_seg(self, una: int, high_data: int, mss: int) -> tuple[int, int] | None:
        """A retransmission chosen by NextSeg rules (1) and (3): ``(position, max length)``.
        Rule (2), new data, is the TCB's (it knows the send buffer and windows); it calls this
        first and sends new data when None comes back."""
        if self.rack_mode:
            lost = self.lost
            starts, ends = lost.starts, lost.ends
            done = self._lost_done if self._lost_done > una else una
            for k in range(bisect_right(ends, done), len(starts)):
                s = starts[k]
                if s >= high_data:
                    break
                e = ends[k] if ends[k] < high_data else high_data
                hole = self._first_hole(s if s > done else done, e)
                if hole is not None:
                    self._lost_done = hole[0]
                    return hole
                done = e
            self._lost_done = done
            return None
        limit = self.lost_limit(una, mss)
        hole = self._first_hole(una, min(limit, high_data))
        if hole is not None:
            return hole
        return None

    def rescue_seg(self, una: int, high_data: int) -> tuple[int, int] | None:
        """NextSeg rule (3): an un-SACKed, not yet retransmitted position below the highest
        SACKed one (used when there is no new data to send). Not with RACK: what RACK has not
        marked lost is in flight, and Linux resends only what is marked (it has had no forward
        retransmission since RACK, 4.15)."""
        top = self.sacked.high
        if top is None or self.rack_mode:
            return None
        return self._first_hole(una, min(top, high_data))

    def _first_hole(self, lo: int, hi: int) -> tuple[int, int] | None:
        pos = lo
        while pos < hi:
            end = self.sacked.containing(pos)
            if end is not None:
                pos = end
                continue
            end = self.retrans.containing(pos)
            if end is not None:
                pos = end
                continue
            stop = hi
            for rs in (self.sacked.next_start(pos), self.retrans.next_start(pos)):
                if rs is not None and rs < stop:
                    stop = rs
            return pos, stop - pos
        return None

    def on_retransmit(self, pos: int, n: int) -> None:
        if (self.in_recovery or self.rack_mode) and n > 0:
            if self.retrans is _NO_RETRANS:
                self.retrans = RangeSet()
            if self._pipe_memo is not None and self.sacked.covered_between(pos, pos + n):
                self._pipe_memo = None  # (NextSeg resends what is not SACKed: not seen)
            # each position newly retransmitted counts once more (SetPipe (b))
            self._carry(pos, pos + n, self.retrans.add(pos, pos + n))
            self.high_rxt = max(self.high_rxt, pos + n)

    # -- episodes -----------------------------------------------------------------------------
    def enter(self, high_data: int, sack_mode: bool) -> None:
        self.in_recovery = True
        self.recovery_point = high_data
        self.sack_mode = sack_mode
        self.inflation = 0
        self.high_rxt = 0
        if not self.rack_mode:
            self.retrans.clear()
            self._pipe_memo = None
            self._lost_done = 0
        self.episodes += 1
        self.rescue_done = False

    def leave(self) -> None:
        self.in_recovery = False
        self.inflation = 0
        if not self.rack_mode:
            self.retrans.clear()
            self._pipe_memo = None
            self._lost_done = 0

    def on_rto(self) -> None:
        """A timeout ends any fast recovery episode; the scoreboard is kept (RFC 6675 §5.1:
        SACKed data is not resent) unless the TCB decides the receiver reneged. Go-back-N
        resends every lost byte, so RACK's marks go."""
        self.leave()
        self.lost.clear()
        self.retrans.clear()
        self._pipe_memo = None
        self._lost_done = 0


__all__ = ["DUPTHRESH", "RangeSet", "Recovery"]
