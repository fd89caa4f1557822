"""The SACK scoreboard's retransmission marks with RACK (recovery.py): per segment, as Linux's
TCPCB_SACKED_RETRANS, not per recovery episode."""

from __future__ import annotations

import random

import pytest

from stacklab.stack.tcp.recovery import RangeSet, Recovery


def test_a_hole_resent_in_one_recovery_is_not_resent_in_the_next():
    """RACK marked [1000, 2000) lost and it was resent; the episode ended (the ACK passed its
    recovery point, not the hole's resend) and a new one began: the resend is still in flight
    (Linux keeps TCPCB_SACKED_RETRANS on the skb), not a hole to send again."""
    rec = Recovery()
    rec.rack_mode = True
    rec.enter(5000, sack_mode=True)
    rec.on_sack(0, 8000, [(2000, 5000)])
    rec.mark_lost(1000, 2000)
    rec.on_retransmit(1000, 1000)
    rec.leave()
    rec.enter(8000, sack_mode=True)
    assert rec.next_seg(1000, 8000, 1000) is None
    assert rec.pipe(1000, 8000, 1000) == 1000 + 3000  # the resend, and [5000, 8000)
    rec.mark_lost(1000, 2000)  # the resend is lost too: now it goes again
    assert rec.next_seg(1000, 8000, 1000) == (1000, 1000)
    assert rec.lost_total == 2000  # marked lost twice (Linux tp->lost)


def test_the_parts_a_sack_adds_are_reported_and_overlap_counts_once():
    """What a SACK option added (where RACK and the rate sample look for newly SACKed
    segments), and the merge walk pipe uses."""
    rec = Recovery()
    rec.on_sack(0, 10_000, [(2000, 3000)])
    rec.on_sack(0, 10_000, [(1000, 4000), (6000, 7000)])
    assert rec.new_sacked == [(1000, 2000), (3000, 4000), (6000, 7000)]
    other = RangeSet()
    other.add(1500, 6500)
    assert rec.sacked.overlap(other) == 2500 + 500
    assert rec.sacked.overlap(other, lo=3500) == 500 + 500


@pytest.mark.parametrize("rack_mode", [False, True])
def test_pipe_remembered_between_sends_is_the_scoreboard_s(rack_mode):
    """pipe keeps its last answer and adds the new data sent since (it is asked before every
    segment in recovery): after any mix of sends, SACKs, cumulative ACKs, losses, resends,
    episodes and timeouts it equals what a fresh walk of the scoreboard gives."""
    rng = random.Random(7)
    rec = Recovery()
    rec.rack_mode = rack_mode
    una, high, mss = 0, 0, 1000
    for _ in range(3000):
        op = rng.randrange(9)
        if op < 3:
            high += mss  # new data
        elif op == 3 and high - una > 2 * mss:
            s = rng.randrange(una, high - mss, mss)
            rec.on_sack(una, high, [(s, s + mss * rng.randint(1, 3))])
        elif op == 4 and high > una:
            una = min(high, una + mss * rng.randint(1, 2))
            rec.on_cumulative_ack(una)
        elif op == 5 and high - una > mss:
            s = rng.randrange(una, high - mss + 1, mss)
            rec.mark_lost(s, s + mss)
        elif op == 6 and high - una > mss:
            rec.on_retransmit(rng.randrange(una, high - mss + 1, mss), mss)
        elif op == 7:
            if rec.in_recovery:
                rec.leave()
            else:
                rec.enter(high, True)
        elif op == 8 and rng.random() < 0.1:
            rec.on_rto()
        got = rec.pipe(una, high, mss)
        rec._pipe_memo = None
        assert got == rec.pipe(una, high, mss)
