"""Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation, rate.py): the rate
of a sample is what was delivered over max(send phase, ACK phase); SACKed data counts when it
is SACKed, once; the RTT is that of the newest segment never resent."""

from __future__ import annotations

import pytest

from stacklab.stack.tcp.rate import DeliveryRate, RateSample
from stacklab.stack.tcp.recovery import RangeSet
from stacklab.stack.tcp.sent import SentLog

NONE = RangeSet()


class Sender:
    """The connection's transmission log (sent.py) with the rate stamps, as the TCB keeps it."""

    def __init__(self) -> None:
        self.log = SentLog()
        self.rate = DeliveryRate()

    def on_send(self, start: int, n: int, now: float, flight_empty: bool) -> None:
        retrans = bool(self.log.records) and start < self.log.records[-1].end
        rec, _ = self.log.on_sent(start, start + n, n, now, retrans, False)
        self.rate.on_send(rec, now, flight_empty)

    def on_ack(self, una: int, nxt: int, sacked: RangeSet, now: float, prior: int,
               flight: int) -> RateSample:
        return self.rate.on_ack(self.log.acked(una), self.log, una, nxt, sacked, now, prior,
                                flight)

    def check_app_limited(self, unsent: int, in_flight: int, cwnd: int, mss: int,
                          device_busy: bool = False, resend_due: bool = False) -> None:
        self.rate.check_app_limited(unsent, in_flight, cwnd, mss, device_busy, resend_due)

    @property
    def app_limited(self) -> int:
        return self.rate.app_limited


def sacked(*ranges: tuple[int, int]) -> RangeSet:
    s = RangeSet()
    for lo, hi in ranges:
        s.add(lo, hi)
    return s


def test_cumulative_acks_give_the_ack_rate_and_the_rtt():
    r = Sender()
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
    r = Sender()
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
    r = Sender()
    r.on_send(0, 1000, 0.0, True)
    r.check_app_limited(0, 1000, 10_000, 1000)  # nothing more to send, cwnd not full
    r.on_send(1000, 1000, 0.01, False)
    assert r.on_ack(1000, 2000, NONE, 0.1, 2000, 1000).app_limited is False
    assert r.on_ack(2000, 2000, NONE, 0.11, 1000, 0).app_limited is True
    assert r.app_limited == 0  # delivered past the mark


@pytest.mark.parametrize("why", ["unsent", "cwnd", "device", "resend"])
def test_no_app_limited_mark_while_something_else_limits_the_sender(why):
    # Linux tcp_rate_check_app_limited: a segment's worth unsent, a full cwnd, packets in the
    # device's queue or a lost segment not yet resent: the network or the stack limits the
    # rate, not the application
    r = Sender()
    r.on_send(0, 1000, 0.0, True)
    r.check_app_limited(1000 if why == "unsent" else 999, 1000,
                        1000 if why == "cwnd" else 10_000, 1000,
                        device_busy=why == "device", resend_due=why == "resend")
    assert r.app_limited == 0


def test_a_partial_resend_leaves_the_rest_of_a_segment_its_first_transmission():
    r = Sender()
    r.on_send(0, 2000, 0.0, True)  # one 2-MSS (TSO) transmission
    r.on_send(0, 1000, 0.2, False)  # its first half resent
    rs = r.on_ack(0, 2000, sacked((1000, 2000)), 0.25, 2000, 1000)
    # the SACKed second half was sent once, at t=0: a valid RTT (Linux tcp_fragment)
    assert rs.newly_delivered == 1000 and rs.rtt == pytest.approx(0.25)
