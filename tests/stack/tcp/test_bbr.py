"""BBR v1 and pacing on a rate-limited simulated link (virtual time): the mode sequence
STARTUP -> DRAIN -> PROBE_BW -> PROBE_RTT -> PROBE_BW, the bandwidth estimate against the
link's rate, a small queue in PROBE_BW where CUBIC fills the buffer, and pacing's rates."""

from __future__ import annotations

import asyncio
import math
import random
import statistics

import pytest

from stacklab.net.network import Network
from stacklab.stack.tcp.config import TcpConfig
from stacklab.stack.tcp.congestion import create_congestion
from stacklab.stack.tcp.congestion.bbr import DRAIN, PROBE_BW, PROBE_RTT, Bbr
from stacklab.stack.tcp.pacing import UNPACED_SEGS, Pacer

LINK_BPS = 10_000_000
PAYLOAD_RATE = LINK_BPS / 8 * 1448 / 1500  # bytes/s of payload a full 1500-byte link carries


def bulk(congestion: str, nbytes: int, *, rate: str = "10Mbit", queue: int = 400,
         max_pacing_rate: int | None = None, after: float = 0.0) -> dict:
    """``nbytes`` from a to b over ``rate``, 40 ms RTT, a ``queue``-packet drop-tail buffer;
    the sender's TCB and (mode, RTT) of each rate sample."""
    net = Network(seed=5)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="20ms", rate=rate, queue=queue)
    net.autoconfigure()
    seen: dict = {"samples": []}

    async def sink(r, w):
        seen["got"] = len(await r.read())
        w.close()

    async def main():
        await asyncio.sleep(after)  # the clock need not start at 0 (a real-time driver's)
        await b.start_server(sink, 5000)
        cfg = TcpConfig(max_pacing_rate=max_pacing_rate)  # SO_MAX_PACING_RATE
        r, w = await a.open_connection("b", 5000, congestion=congestion, config=cfg)
        tcb = w.get_extra_info("tcb")
        cc = tcb.cc
        orig = cc.on_rate_sample

        def log(rs, now):
            orig(rs, now)
            seen["samples"].append((now, getattr(cc, "mode", None), rs.rtt))
            seen.setdefault("gains", set()).add(
                (getattr(cc, "mode", None), getattr(cc, "pacing_gain", None)))

        cc.on_rate_sample = log
        start = net.now
        w.write(b"x" * nbytes)
        await w.drain()
        w.write_eof()
        await r.read()
        seen["tcb"], seen["seconds"] = tcb, net.now - start
        w.close()

    net.run(main(), until=f"{300 + after}s")
    return seen


def test_bbr_cycles_through_its_modes_and_measures_the_bottleneck():
    seen = bulk("bbr", 15_000_000)  # ~12.5 s at 10 Mbit/s: one PROBE_RTT (10 s min-RTT window)
    tcb = seen["tcb"]
    cc = tcb.cc
    assert seen["got"] == 15_000_000 and isinstance(cc, Bbr)
    modes = [m for _, m in cc.modes]
    assert modes[:4] == [DRAIN, PROBE_BW, PROBE_RTT, PROBE_BW], modes  # from STARTUP
    times = dict((m, t) for t, m in reversed(cc.modes))  # first time of each mode
    assert times[DRAIN] < 2.0  # STARTUP ends within a few round trips (40 ms each)
    assert 10.0 < times[PROBE_RTT] < 11.5  # the min RTT went 10 s without a new minimum
    probe_rtt_end = cc.modes[modes.index(PROBE_RTT) + 1][0]
    assert probe_rtt_end - times[PROBE_RTT] >= 0.2  # held 200 ms (and a round trip)
    # the bandwidth estimate is the link's rate (of payload), within 10 %
    assert cc.max_bw == pytest.approx(PAYLOAD_RATE, rel=0.10)
    assert cc.min_rtt == pytest.approx(0.040, abs=0.003)
    # cwnd = 2 BDP + a few segments in PROBE_BW, and every pacing-gain phase was visited
    assert cc.cwnd <= 2 * cc.bdp() + 8 * tcb.snd_mss
    assert {g for m, g in seen["gains"] if m == PROBE_BW} == {1.25, 0.75, 1.0}
    assert (PROBE_RTT, 1.0) in seen["gains"] and (DRAIN, pytest.approx(1 / 2.885)) in [
        (m, g) for m, g in seen["gains"]]
    assert tcb.stats.retransmits == 0  # STARTUP's queue fit the buffer; no loss after


def test_bbr_keeps_the_queue_small_where_cubic_fills_it():
    bbr = bulk("bbr", 6_000_000)
    cubic = bulk("cubic", 6_000_000)
    probe_bw = [rtt for _, mode, rtt in bbr["samples"] if mode == PROBE_BW and rtt is not None]
    assert len(probe_bw) > 1000
    # a 10 Mbit/s link queues 1.2 ms per packet: BBR's median RTT is within a few packets of
    # the 40 ms path, CUBIC's (HyStart or not) grows with its window into the 400-packet buffer
    assert statistics.median(probe_bw) < 0.040 * 1.25
    late_cubic = [rtt for t, _, rtt in cubic["samples"][len(cubic["samples"]) // 2:]
                  if rtt is not None]
    assert statistics.median(late_cubic) > 0.040 * 2
    assert bbr["seconds"] == pytest.approx(6_000_000 / PAYLOAD_RATE, rel=0.15)


def test_bbr_paces_and_so_max_pacing_rate_caps_any_controller():
    assert create_congestion("bbr", 1000).needs_pacing
    capped = bulk("cubic", 500_000, rate="100Mbit", max_pacing_rate=100_000)
    assert capped["tcb"].pacer is not None
    assert capped["seconds"] == pytest.approx(5.0, rel=0.1)  # 500 kB at 100 kB/s
    free = bulk("cubic", 500_000, rate="100Mbit")
    assert free["tcb"].pacer is None and free["seconds"] < 1.0  # Linux paces only with fq/BBR


def test_pacing_rate_follows_cwnd_over_srtt_as_linux():
    cc = create_congestion("cubic", 1000)
    p = Pacer(None)
    p.update(cc, None, 0)
    assert p.rate == 0.0  # no RTT yet: no pacing
    p.update(cc, 0.1, 0)
    assert p.rate == pytest.approx(2.0 * 10_000 / 0.1)  # slow start: tcp_pacing_ss_ratio 200
    cc.ssthresh = 15_000
    p.update(cc, 0.1, 0)
    assert p.rate == pytest.approx(1.2 * 10_000 / 0.1)  # cwnd >= ssthresh/2: ca_ratio 120
    p.max_rate = 50_000
    p.update(cc, 0.1, 0)
    assert p.rate == 50_000  # SO_MAX_PACING_RATE
    for _ in range(8):  # the first 10 segments are not paced (the original sch_fq's 10 MSS)
        assert p.ready(1.0)
        p.on_sent(1000, 1.0, 1000, 2)
    assert p.next_send == 1.0  # no wait
    p.on_sent(1000, 1.0, 1000, 2)  # the 5th packet ends at the 10th segment: paced
    p.on_sent(1000, 1.0, 1000, 2)
    assert p.next_send == pytest.approx(1.04)
    p.next_send = 1.0  # the next packet's time is now
    assert p.ready(1.0)
    p.on_sent(1000, 1.0, 1000, 2)
    assert p.ready(1.0)  # the second segment of the TSO-sized packet (tcp_min_tso_segs 2)
    p.on_sent(1000, 1.0, 1000, 2)
    assert p.next_send == pytest.approx(1.04)  # two segments: 2 x 1000 / 50 kB/s
    assert not p.ready(1.039) and p.ready(1.04)  # the next packet waits for its time
    p.on_sent(1000, 1.05, 1000, 2)  # 10 ms late ("OS jitter"): credit, at most half the packet
    p.on_sent(1000, 1.05, 1000, 2)
    assert p.next_send == pytest.approx(1.05 + 0.04 - 0.01)
    p.on_sent(1000, 1.2, 1000, 2)  # idle long: the packet waits half its time, not less
    p.on_sent(1000, 1.2, 1000, 2)
    assert p.next_send == pytest.approx(1.2 + 0.02)


def test_a_late_packet_shortens_the_next_wait_by_at_most_half_its_time():
    """Linux's tcp_update_skb_after_send: a packet that leaves after its time (a timer that
    fired late: a real-time loop's timers are a millisecond coarse) takes its lateness off the
    wait after it, at most half the packet's own time, so late timers do not lower the rate."""
    p = Pacer(None)
    p.segs = UNPACED_SEGS  # past the connection's first segments, which are not paced
    p.rate = 50_000.0  # bytes/s: a 2-segment packet of 1000-byte segments lasts 40 ms
    p.next_send = 1.0
    for _ in range(2):
        p.on_sent(1000, 1.005, 1000, 2)  # 5 ms late
    assert p.next_send == pytest.approx(1.005 + 0.040 - 0.005)
    for _ in range(2):
        p.on_sent(1000, 1.1, 1000, 2)  # 60 ms late: the credit stops at half the packet
    assert p.next_send == pytest.approx(1.1 + 0.040 - 0.020)
    # on time: the whole packet's time
    for _ in range(2):
        p.on_sent(1000, p.next_send, 1000, 2)
    assert p.next_send == pytest.approx(1.1 + 0.020 + 0.040)


def test_a_late_pacing_timer_is_made_up():
    """A real-time loop runs the PACING timer a millisecond or more late (Linux's are
    microseconds late): after the pacer held a segment back, that lateness is made up in
    full, up to 5 ms, so the rate stays the pacing rate instead of packet time over packet
    time plus lateness."""
    p = Pacer(None)
    p.segs = UNPACED_SEGS  # past the connection's first segments, which are not paced
    p.rate = 1_000_000.0  # a packet of two 1000-byte segments lasts 2 ms
    p.next_send = 1.0
    assert not p.ready(0.9995)  # held back: the PACING timer is armed for 1.0
    for _ in range(2):
        p.on_sent(1000, 1.003, 1000, 2)  # it ran 3 ms late
    assert p.next_send == pytest.approx(1.003 + 0.002 - 0.003)
    now = p.next_send + 0.050  # a 50 ms stall is not made up beyond 5 ms
    for _ in range(2):
        p.on_sent(1000, now, 1000, 2)
    assert p.next_send == pytest.approx(now + 0.002 - 0.005)


def test_a_held_pacer_keeps_its_rate_whatever_its_timers_lateness():
    """Every packet whose time passed while the loop was late leaves at once, not only the
    first: a 4 MB/s flow whose PACING timer comes back after epoll's millisecond ceiling plus
    0-4 ms (a busy host) goes at its pacing rate. Before, only the packet the timer let out
    got its lateness back and the others half their time: 24 % of the rate."""
    rng = random.Random(1)
    p = Pacer(None)
    p.segs = UNPACED_SEGS
    p.rate = rate = 4_000_000.0  # 2-segment packets of 1448 bytes: 0.72 ms each
    now, sent = 0.0, 0
    while now < 2.0:
        while p.ready(now):
            p.on_sent(1448, now, 1448, 2)
            sent += 1448
        now += math.ceil((p.next_send - now) * 1000) / 1000 + rng.uniform(0, 0.004)
    assert sent / now > 0.98 * rate


def test_bbr_starts_with_startup_whatever_the_clock_reads():
    """Over TAP the loop's clock reads hours at the first ACK: BBR went to PROBE_RTT at once
    (its 10 s min-RTT window counted from time 0) and crawled in PROBE_BW on a bandwidth it
    never measured (0.14 MB/s on a clean 20 ms path where Linux's BBR did 40)."""
    late = bulk("bbr", 2_000_000, after=3600.0)
    early = bulk("bbr", 2_000_000)
    modes = [m for _, m in late["tcb"].cc.modes]
    assert modes[:2] == [DRAIN, PROBE_BW], modes  # from STARTUP, as at time 0
    assert late["seconds"] == pytest.approx(early["seconds"], rel=0.05)
