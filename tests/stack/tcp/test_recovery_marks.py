"""The SACK scoreboard's retransmission marks with RACK (recovery.py): per segment, as Linux's
TCPCB_SACKED_RETRANS, not per recovery episode."""

from __future__ import annotations

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
