"""HyStart in CUBIC (RFC 9406 §4.2 delay test, as Linux's tcp_cubic): slow start ends when the
round's RTT rises above the minimum, before the bottleneck queue overflows (virtual time)."""

from __future__ import annotations

import pytest

from stacklab.net.network import Network
from stacklab.stack.tcp.congestion.cubic import Cubic


def bulk_over_bottleneck(nbytes: int) -> dict:
    """``nbytes`` from a to b over 10 Mbit/s, 20 ms RTT, a 200-packet queue; the sender's
    controller and counters afterwards."""
    net = Network(seed=3)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="10ms", rate="10Mbit", queue=200)
    net.autoconfigure()
    seen: dict = {}

    async def sink(r, w):
        seen["got"] = len(await r.read())
        w.close()

    async def main():
        await b.start_server(sink, 5000)
        r, w = await a.open_connection("b", 5000)
        tcb = w.get_extra_info("tcb")
        w.write(b"x" * nbytes)
        await w.drain()
        w.write_eof()
        await r.read()
        seen["cc"], seen["stats"] = tcb.cc, tcb.stats
        w.close()

    net.run(main(), until="120s")
    return seen


def test_hystart_leaves_slow_start_on_rtt_increase_before_any_loss():
    seen = bulk_over_bottleneck(2_000_000)
    cc = seen["cc"]
    assert seen["got"] == 2_000_000
    assert cc.hystart_found  # the delay test fired
    # it fired while the queue held a few packets: around the path's BDP (25 kB = 17 segments)
    assert 16 * cc.mss <= cc.ssthresh <= 60 * cc.mss, cc.ssthresh / cc.mss
    assert seen["stats"].retransmits == 0 and seen["stats"].recoveries == 0


def test_without_hystart_slow_start_overflows_the_queue(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(Cubic, "hystart", False)
    seen = bulk_over_bottleneck(2_000_000)
    assert seen["got"] == 2_000_000
    assert not seen["cc"].hystart_found
    assert seen["stats"].retransmits > 0  # slow start ran on into the drop-tail limit


def test_hystart_waits_for_eight_samples_and_a_sixteen_segment_window():
    from stacklab.stack.tcp.rate import RateSample

    cc = Cubic(1000)
    cc.cwnd = 20_000
    # a first round with the minimum RTT of 100 ms (threshold min(12.5 ms, 16 ms)), then 200 ms
    samples = [0.100] + [0.200] * 9
    for i, rtt in enumerate(samples):
        nxt = 1000 if i == 0 else 50_000  # the first round ends at 1000
        cc.on_rate_sample(RateSample(rtt=rtt, una=1000 * (i + 1), nxt=nxt), float(i))
        assert cc.hystart_found == (i == 9), i  # 8 samples fill the round, the 9th tests
    assert cc.ssthresh == cc.cwnd == 20_000
    small = Cubic(1000)  # below 16 segments: no test at all
    for i, rtt in enumerate(samples):
        small.on_rate_sample(RateSample(rtt=rtt, una=1000 * (i + 1), nxt=1000), float(i))
    assert not small.hystart_found



def _round(cc: Cubic, rtts: list[float], start: int) -> int:
    """One round of RTT samples: SND.UNA passes the previous round's end, then stays below
    this one's; returns where the next round starts."""
    from stacklab.stack.tcp.rate import RateSample

    end = start + 100_000
    for i, rtt in enumerate(rtts):
        cc.on_rate_sample(RateSample(rtt=rtt, una=start + 1 + i, nxt=end), 0.0)
    return end


def test_css_grows_a_quarter_for_five_rounds_then_ends_slow_start():
    cc = Cubic(1000)
    cc.css = True
    cc.cwnd = 20_000
    pos = _round(cc, [0.100] * 9, 0)  # lastRoundMinRTT 100 ms
    pos = _round(cc, [0.120] * 9, pos)  # >= 100 + 12.5 ms after 8 samples: CSS
    assert cc.css_baseline == pytest.approx(0.120) and not cc.hystart_found
    assert cc.ssthresh > 1 << 20  # still slow start, more carefully
    cc.on_ack(4000, 20_000, 1.0, 0.12)
    assert cc.cwnd == 21_000  # RFC 9406 §4.3: acked / CSS_GROWTH_DIVISOR
    for _ in range(4):
        pos = _round(cc, [0.120] * 9, pos)
    assert not cc.hystart_found
    _round(cc, [0.120], pos)  # the fifth CSS round ends: congestion avoidance
    assert cc.hystart_found and cc.ssthresh == cc.cwnd


def test_css_back_to_slow_start_when_the_rtt_falls_below_its_baseline():
    cc = Cubic(1000)
    cc.css = True
    cc.cwnd = 20_000
    pos = _round(cc, [0.100] * 9, 0)
    pos = _round(cc, [0.120] * 9, pos)
    assert cc.css_baseline is not None
    _round(cc, [0.110] * 9, pos)  # below the baseline: the delay increase was spurious
    assert cc.css_baseline is None and not cc.hystart_found
    cc.on_ack(4000, 20_000, 1.0, 0.11)
    assert cc.cwnd == 24_000  # full slow-start growth again


def test_css_on_a_bottleneck_leaves_slow_start_later_than_linux_and_without_loss(
        monkeypatch: pytest.MonkeyPatch):
    linux = bulk_over_bottleneck(2_000_000)["cc"].ssthresh
    monkeypatch.setattr(Cubic, "css", True)
    seen = bulk_over_bottleneck(2_000_000)
    cc = seen["cc"]
    assert cc.hystart_found and seen["stats"].retransmits == 0
    assert cc.ssthresh > linux  # five rounds of quarter-rate growth past the delay test


def test_rounds_are_counted_only_from_a_sixteen_segment_window():
    """Linux gates all of hystart_update on hystart_low_window: ACKs at a smaller window end no
    round, so the first one at 16 segments opens a round from the connection's start."""
    from stacklab.stack.tcp.rate import RateSample

    cc = Cubic(1000)
    for i in range(3):  # cwnd 10..15: rounds stay where the connection's start put them
        cc.on_rate_sample(RateSample(rtt=0.1, una=1000 * (i + 1), nxt=20_000), float(i))
        cc.cwnd += 2000
    assert cc.round_end == 0 and cc.round_samples == 0
    cc.on_rate_sample(RateSample(rtt=0.1, una=4000, nxt=22_000), 3.0)
    assert cc.round_end == 22_000 and cc.round_samples == 1


def test_an_rto_starts_a_round_ending_at_the_highest_sequence_sent():
    from stacklab.stack.tcp.rate import RateSample

    cc = Cubic(1000)
    cc.cwnd = 20_000
    for i in range(4):
        cc.on_rate_sample(RateSample(rtt=0.1, una=1000 * (i + 1), nxt=50_000), float(i))
    cc.on_rto(20_000, 5.0)
    assert cc.round_samples == 0
    # the first ACK after the timeout (cwnd 1 segment): the round ends at SND.MAX (Linux's
    # snd_nxt, not moved back by go-back-N)
    cc.on_rate_sample(RateSample(rtt=0.1, una=6000, nxt=50_000), 7.0)
    assert cc.round_end == 50_000 and cc.round_samples == 0


def test_ack_train_longer_than_half_the_min_rtt_ends_slow_start():
    """Linux's ACK-train test (hystart_detect 3, the default): the ACKs of a round arriving
    back to back (at most 2 ms apart) for longer than (delay_min + ack delay) / 2 show the
    window filled the path, before any RTT increase."""
    from stacklab.stack.tcp.rate import RateSample

    def train(gap: float) -> Cubic:
        cc = Cubic(1000)
        cc.cwnd = 20_000
        cc.srtt = 0.020
        for i in range(20):  # one round (it ends at 100_000), RTT flat at the minimum 20 ms
            cc.on_rate_sample(RateSample(rtt=0.020, una=1000 * (i + 1), nxt=100_000),
                              1.0 + i * gap)
        return cc

    cc = train(0.001)  # 1 ms apart: the train passes (20 + 1) / 2 ms at the 12th ACK
    assert cc.hystart_found and cc.ssthresh == cc.cwnd
    assert not train(0.003).hystart_found  # 3 ms apart: no train, and no delay increase
