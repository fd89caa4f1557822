"""RACK's detection walks the time-sorted candidates (sent.py ``tsorted``, Linux's
``tsorted_sent_queue``) and stops at the RACK segment, instead of every record on every ACK:
over random histories (new data, TSO bursts split into segments, whole and partial resends,
SACKs, cumulative ACKs, timeouts, ties of the clock) it marks exactly what RFC 8985 §6.2 step 5
marks when read over the whole log, with the same reordering timeout, and what it leaves
queued before the RACK segment are live candidates only."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from stacklab.stack.tcp.rack import Rack, on_rto
from stacklab.stack.tcp.recovery import RangeSet
from stacklab.stack.tcp.sent import SentLog

MSS = 100


def whole_log_rule(rack: Rack, log: SentLog, now: float, reo_wnd: float) -> tuple[
        list[tuple[int, int]], float]:
    """RFC 8985 §6.2 step 5 read over every record: a segment neither SACKed nor marked lost,
    sent before the RACK segment (later at the same instant: later in transmission order),
    is lost once ``RACK.rtt + reo_wnd`` passed since it was sent; the timeout is the longest
    wait of the others. (Above RACK.end_seq and every retransmission lie only segments sent
    after it, which is the bound rack.py also keeps.)"""
    top = log.retrans_top
    if rack.xmit_retrans:
        top = 1 << 62
    elif rack.end_seq > top:
        top = rack.end_seq
    newly: list[tuple[int, int]] = []
    timeout = 0.0
    for s in log.records:
        before = rack.xmit_ts > s.xmit or (rack.xmit_ts == s.xmit and rack.xmit_order > s.order)
        if s.start >= top or s.sacked or s.lost or not before:
            continue
        remaining = s.xmit + rack.rtt + reo_wnd - now
        if remaining <= 1e-9:
            newly.append((s.start, s.end))
        elif remaining > timeout:
            timeout = remaining
    return newly, timeout


def history(seed: int, steps: int) -> int:
    """One random history; returns how many detections found a loss."""
    rng = random.Random(seed)
    log = SentLog()
    rack = Rack(1, log)
    sacked = RangeSet()
    tcb = SimpleNamespace(rack=rack, undo=SimpleNamespace(frto_new=None),
                          _arm=lambda kind, at: None)
    una = nxt = 0
    now = 0.0
    found = 0
    for _ in range(steps):
        if rng.random() < 0.7:
            now += rng.choice((0.0, 0.0005, 0.002, 0.01))  # ties of a virtual clock included
        op = rng.random()
        if op < 0.3 or nxt == una:
            n = rng.choice((1, 1, 1, 3))  # a TSO burst of 3 leaves as segments (gso.py)
            log.on_sent(nxt, nxt + n * MSS, n * MSS, now, False, False)
            if n > 1:
                log.split_last(MSS)
            nxt += n * MSS
        elif op < 0.45:  # a resend, whole records or part of one (the rest is split off)
            start = rng.randrange(una, nxt, 50)
            end = min(nxt, start + rng.choice((50, 100, 150)))
            _, unsacked = log.on_sent(start, end, end - start, now, True, False)
            rack.on_sent(unsacked)
        elif op < 0.75:  # a SACK block of whole segments
            lo = rng.randrange(una, nxt, MSS) if (nxt - una) >= MSS else una
            lo, hi = log.whole(lo, min(nxt, lo + MSS * rng.randint(1, 4)))
            if lo < hi:
                fresh = sacked.gaps(lo, hi)
                sacked.add(lo, hi)
                rack.on_sacked(sacked, now, MSS, fresh)
        elif op < 0.88:  # the cumulative ACK moves
            una = min(nxt, una + MSS * rng.randint(1, 3))
            rack.on_delivered(log.acked(una), now, MSS, True)
            sacked.remove_below(una)
        elif op < 0.9:
            on_rto(tcb)  # the lost marks go: every record not SACKed is a candidate again
        reo = rng.choice((0.0, 0.0, 0.003, 0.02))
        want = whole_log_rule(rack, log, now, reo)
        assert rack.detect(now, RangeSet(), sacked, reo) == want
        found += bool(want[0])
        ts = log.tsorted
        assert [s.order for s in ts] == sorted(s.order for s in ts)
        queued = {id(s) for s in ts}
        assert all(id(s) in queued for s in log.records if not s.sacked and not s.lost)
        # what the walk passed is gone from the queue: before the RACK segment, candidates only
        assert all(not (s.gone or s.sacked or s.lost) for s in ts if s.order < rack.xmit_order)
    return found


@pytest.mark.parametrize("seed", range(12))
def test_the_time_ordered_walk_marks_what_the_rule_marks_over_the_whole_log(seed: int) -> None:
    assert history(seed, 600) > 10  # the histories do find losses


def test_the_queue_stays_proportional_to_the_log() -> None:
    """Records ACKed in order leave the queue with the cumulative ACK (no walk needed)."""
    log = SentLog()
    for i in range(1000):
        log.on_sent(i * MSS, (i + 1) * MSS, MSS, i * 0.001, False, False)
        if i >= 10:
            log.acked((i - 9) * MSS)
    assert len(log.records) == 10
    assert len(log.tsorted) == 10
