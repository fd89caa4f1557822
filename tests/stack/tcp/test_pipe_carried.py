"""RFC 6675 pipe is asked before every segment sent in recovery; it is carried across what
changes it inside the flight (a SACK in RACK mode, a loss mark, a retransmission: recovery.py
``_carry``) instead of recounted over the whole scoreboard after each of them. Over random
histories the carried value is the full recount's, in RACK and in DupThresh mode."""

from __future__ import annotations

import copy
import random

import pytest

from stacklab.stack.tcp.recovery import Recovery

MSS = 100


def recount(rec: Recovery, una: int, high: int) -> int:
    fresh = copy.deepcopy(rec)
    fresh._pipe_memo = None  # nothing carried: SetPipe over the scoreboard
    return fresh.pipe(una, high, MSS)


@pytest.mark.parametrize("rack_mode", [True, False])
@pytest.mark.parametrize("seed", range(8))
def test_the_carried_pipe_is_the_full_recount(seed: int, rack_mode: bool) -> None:
    rng = random.Random(seed)
    rec = Recovery()
    rec.rack_mode = rack_mode
    una, high = 0, 20 * MSS
    carried = 0  # how often the answer came from the carried value
    for _ in range(800):
        op = rng.random()
        span = high - una
        lo = una + rng.randrange(0, span, MSS // 2) if span else una
        hi = min(high, lo + MSS * rng.randint(1, 3))
        if op < 0.15:
            high += MSS * rng.randint(1, 4)  # new data
        elif op < 0.4:  # a SACK block, now and then with a D-SACK first
            blocks = [(lo, hi)]
            if rng.random() < 0.1 and una > MSS:
                blocks.insert(0, (una - MSS, una))
            rec.on_sack(una, high, blocks)
        elif op < 0.6:  # RACK marks a range lost (what it never does: some of it SACKed)
            rec.mark_lost(lo, hi)
        elif op < 0.8:  # a retransmission (in recovery or RACK mode it is counted)
            if not rack_mode and not rec.in_recovery:
                rec.enter(high, True)
            rec.on_retransmit(lo, hi - lo)
        elif op < 0.9:
            una = min(high, una + MSS * rng.randint(0, 2))
            rec.on_cumulative_ack(una)
        elif op < 0.95:
            rec.leave() if rec.in_recovery else rec.enter(high, True)
        elif op < 0.96:
            rec.on_rto()
        if rng.random() < 0.7:
            memo = rec._pipe_memo
            carried += memo is not None and memo[0] == una and memo[1] == high
            assert rec.pipe(una, high, MSS) == recount(rec, una, high)
    assert carried > 50  # the histories do carry it
