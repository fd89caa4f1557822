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


@pytest.mark.parametrize("rack_mode", [False, True])
def test_rack_resends_only_what_it_marked_lost_no_rescue_below_the_top_sack(rack_mode):
    """With nothing new to send, RFC 6675 NextSeg rule (3) resends an un-SACKed hole below the
    highest SACK that is not deemed lost. With RACK such a hole is in flight (inside the
    reordering window): only what RACK marks lost goes again, as Linux, which has had no forward
    retransmission since RACK (4.15)."""
    rec = Recovery()
    rec.rack_mode = rack_mode
    rec.enter(8000, sack_mode=True)
    rec.on_sack(0, 8000, [(3000, 8000)])  # [0, 3000) un-SACKed below the top SACK
    rec.mark_lost(0, 1000)
    rec.on_retransmit(0, 1000)  # RACK's loss, resent
    if rack_mode:
        assert rec.rescue_seg(0, 8000) is None  # [1000, 3000): not marked, not resent
        rec.mark_lost(1000, 2000)  # its reordering window ran out
        assert rec.next_seg(0, 8000, 1000) == (1000, 1000)
    else:
        assert rec.rescue_seg(0, 8000) == (1000, 2000)


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


def _first_lost_hole(rec: Recovery, una: int, high: int) -> tuple[int, int] | None:
    """NextSeg rule (1) with RACK's marks by brute force, position by position: the lowest
    lost position in [una, high) neither SACKed nor resent, and how far such positions run."""
    def hole(p: int) -> bool:
        return rec.lost.containing(p) is not None and rec.sacked.containing(p) is None \
            and rec.retrans.containing(p) is None
    for p in range(una, high):
        if hole(p):
            q = p
            while q < high and hole(q):
                q += 1
            return p, q - p
    return None


def test_next_seg_with_rack_marks_finds_the_lowest_hole_after_any_history():
    """NextSeg rule (1) keeps a cursor below which every lost position is SACKed or resent:
    after any mix of sends, SACKs, cumulative ACKs, losses (a resend lost again included),
    resends, episodes and timeouts, it answers what a walk of every position gives."""
    rng = random.Random(11)
    rec = Recovery()
    rec.rack_mode = True
    una, high, unit = 0, 0, 10
    for _ in range(4000):
        op = rng.randrange(10)
        if op < 3:
            high += unit
        elif op == 3 and high - una > 2 * unit:
            s = rng.randrange(una, high - unit, unit)
            rec.on_sack(una, high, [(s, s + unit * rng.randint(1, 3))])
        elif op == 4 and high > una and rng.random() < 0.5:
            una = min(high, una + unit)
            rec.on_cumulative_ack(una)
        elif op in (5, 6) and high - una > unit:
            s = rng.randrange(una, high - unit + 1, unit)
            rec.mark_lost(s, s + unit * rng.randint(1, 4))
        elif op == 7:
            hole = rec.next_seg(una, high, unit)
            if hole is not None:  # the sender resends (part of) what NextSeg gave
                rec.on_retransmit(hole[0], min(hole[1], unit))
        elif op == 8:
            if rec.in_recovery:
                rec.leave()
            else:
                rec.enter(high, True)
        elif op == 9 and rng.random() < 0.05:
            rec.on_rto()
        assert rec.next_seg(una, high, unit) == _first_lost_hole(rec, una, high)


def test_next_seg_does_not_walk_the_holes_already_resent(monkeypatch):
    """At 5 % loss a flight holds dozens of lost ranges, resent one by one, and NextSeg is
    asked before every segment sent in recovery: it must not walk the ranges already resent
    again each time (it did: about 6 % of a lossy transfer's profile)."""
    rec = Recovery()
    rec.rack_mode = True
    mss, n = 1000, 200
    rec.enter(n * 20 * mss, sack_mode=True)
    for k in range(n):  # one segment lost in every 20, the rest SACKed
        rec.on_sack(0, n * 20 * mss, [(k * 20 * mss + mss, (k + 1) * 20 * mss)])
        rec.mark_lost(k * 20 * mss, k * 20 * mss + mss)
    walks = 0
    first_hole = Recovery._first_hole

    def counted(self, lo, hi):
        nonlocal walks
        walks += 1
        return first_hole(self, lo, hi)

    monkeypatch.setattr(Recovery, "_first_hole", counted)
    for k in range(n):  # resend each hole as NextSeg gives it
        assert rec.next_seg(0, n * 20 * mss, mss) == (k * 20 * mss, mss)
        rec.on_retransmit(k * 20 * mss, mss)
    assert rec.next_seg(0, n * 20 * mss, mss) is None
    assert walks <= 2 * n + 1, walks  # before: n * (n + 1) / 2 + n
