"""Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation, rate.py): the rate
of a sample is what was delivered over max(send phase, ACK phase); SACKed data counts when it
is SACKed, once; the RTT is that of the newest segment never resent."""

from __future__ import annotations

import pytest

from stacklab.stack.tcp.rate import DeliveryRate
from stacklab.stack.tcp.recovery import RangeSet

NONE = RangeSet()


def sacked(*ranges: tuple[int, int]) -> RangeSet:
    s = RangeSet()
    for lo, hi in ranges:
        s.add(lo, hi)
    return s


def test_cumulative_acks_give_the_ack_rate_and_the_rtt():
    r = DeliveryRate()
    for i in range(10):  # a window of 10 segments sent in one burst at t=0
        r.on_send(i * 1000, 1000, 0.0, i == 0)
    rs = r.on_ack(2000, 10_000, NONE, 0.100, 10_000, 8000)
    assert rs.rtt == pytest.approx(0.100) and rs.newly_delivered == 2000
    assert rs.delivered == 2000 and rs.rate == pytest.approx(2000 / 0.100)
    rs = r.on_ack(10_000, 10_000, NONE, 0.140, 8000, 0)
    # all were sent before anything was delivered: the sample spans the whole window, from
    # the interval's start (t=0) to this ACK
    assert rs.delivered == 10_000 and rs.interval == pytest.approx(0.140)
    assert rs.delivered_total == 10_000


def test_sacked_segments_count_once_and_a_resent_one_gives_no_rtt():
    r = DeliveryRate()
    for i in range(4):
        r.on_send(i * 1000, 1000, 0.0, i == 0)
    # the first segment is lost: the ACK of 0 carries SACK 1000-4000
    rs = r.on_ack(0, 4000, sacked((1000, 4000)), 0.100, 4000, 1000)
    assert rs.newly_delivered == 3000 and rs.rtt == pytest.approx(0.100)
    r.on_send(0, 1000, 0.150, False)  # fast retransmit
    rs = r.on_ack(4000, 4000, NONE, 0.250, 1000, 0)
    assert rs.newly_delivered == 1000 and rs.delivered_total == 4000  # not 3000 twice
    assert rs.rtt is None  # Karn: only a resent segment was delivered


def test_app_limited_marks_the_samples_until_the_mark_is_delivered():
    r = DeliveryRate()
    r.on_send(0, 1000, 0.0, True)
    r.check_app_limited(0, 1000, 10_000, 1000)  # nothing more to send, cwnd not full
    r.on_send(1000, 1000, 0.01, False)
    assert r.on_ack(1000, 2000, NONE, 0.1, 2000, 1000).app_limited is False
    assert r.on_ack(2000, 2000, NONE, 0.11, 1000, 0).app_limited is True
    assert r.app_limited == 0  # delivered past the mark
