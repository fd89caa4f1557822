"""Congestion control: the registry, NewReno's AIMD, CUBIC against the RFC 9438 formulas,
cwnd/ssthresh in tcp_info and the trace, per-socket choice and the host default."""

from __future__ import annotations

import math

import pytest

from stacklab.stack.tcp.config import TcpConfig
from stacklab.stack.tcp.congestion import available_congestion, create_congestion
from stacklab.stack.tcp.congestion.cubic import BETA, C, Cubic, cubic_k, w_cubic

from .pair import Pair

MSS = 1000


def test_registry_names_and_initial_window():
    assert {"reno", "newreno", "cubic"} <= set(available_congestion())
    for name in ("reno", "cubic"):
        cc = create_congestion(name, MSS)
        assert cc.cwnd == 10 * MSS and cc.name == name  # RFC 6928
    assert TcpConfig().congestion == "cubic"  # like Linux


def test_reno_slow_start_then_linear():
    cc = create_congestion("reno", MSS)
    cc.ssthresh = 20 * MSS
    for _ in range(10):
        cc.on_ack(MSS, 10 * MSS, 0.0, 0.1)
    assert cc.cwnd == 20 * MSS  # one MSS per MSS acked in slow start
    for _ in range(20):  # one full window acked in congestion avoidance: +1 MSS
        cc.on_ack(MSS, 20 * MSS, 1.0, 0.1)
    assert cc.cwnd == 21 * MSS
    cc.on_congestion_event(21 * MSS, 2.0)
    assert cc.ssthresh == 10 * MSS + MSS // 2 and cc.cwnd == cc.ssthresh


def test_cubic_k_matches_rfc_formula():
    w_max = 100.0
    k = cubic_k(w_max, w_max * BETA)
    assert k == pytest.approx(math.pow(w_max * (1 - BETA) / C, 1 / 3))
    assert w_cubic(k, k, w_max) == pytest.approx(w_max)
    assert w_cubic(0.0, k, w_max) == pytest.approx(w_max * BETA)


def run_cubic(w_max_segments: int, rtt: float, seconds: float) -> tuple[Cubic, list]:
    """Drive a CUBIC controller with one full window of ACKs per RTT after a loss at
    ``w_max_segments``; returns samples (t, cwnd in segments)."""
    cc = Cubic(MSS)
    cc.fast_convergence = False
    cc.cwnd = w_max_segments * MSS
    cc.ssthresh = 1 << 30
    cc.srtt = rtt
    cc.on_congestion_event(cc.cwnd, 0.0)
    t = 0.0
    samples = []
    while t < seconds:
        segs = cc.cwnd // MSS
        for i in range(segs):
            cc.on_ack(MSS, cc.cwnd, t + rtt * i / segs, rtt)
        t += rtt
        samples.append((t, cc.cwnd / MSS))
    return cc, samples


def test_cubic_decrease_and_growth_follow_w_cubic():
    w_max = 400
    rtt = 0.1
    cc, samples = run_cubic(w_max, rtt, 12.0)
    k = (w_max * (1 - BETA) / C) ** (1 / 3)  # RFC 9438 eq. 2
    assert cc.k == pytest.approx(k, rel=1e-6)
    assert samples[0][1] >= w_max * BETA  # started from beta * W_max
    # away from the Reno-friendly region, cwnd tracks W_cubic(t) (within the one-RTT lookahead)
    for t, w in samples:
        if 1.0 < t < 2 * k:
            expect = w_cubic(t, k, w_max)
            ahead = w_cubic(t + 2 * rtt, k, w_max)
            assert expect - 2 <= w <= ahead + 2, (t, w, expect)
    # concave then plateau at W_max around K, then convex growth beyond it
    near_k = [w for t, w in samples if abs(t - k) < rtt]
    assert near_k and abs(near_k[0] - w_max) < 0.03 * w_max
    late = [w for t, w in samples if t > k + 3]
    assert late and late[-1] > w_max * 1.1  # W_cubic(12 s) = 459.6 segments


def test_cubic_reno_friendly_region_for_small_windows():
    # a small W_max and a long time: W_cubic grows slowly at first, the Reno estimate
    # (alpha = 3(1-beta)/(1+beta) per RTT) must not be undercut
    w_max = 10
    rtt = 0.5
    cc, samples = run_cubic(w_max, rtt, 3.0)
    alpha = 3 * (1 - BETA) / (1 + BETA)
    for t, w in samples:
        reno = w_max * BETA + alpha * (t / rtt) - 1.0
        assert w >= reno - 0.5, (t, w, reno)


def test_cubic_fast_convergence_lowers_w_max():
    cc = Cubic(MSS)
    cc.cwnd = 100 * MSS
    cc.on_congestion_event(cc.cwnd, 0.0)
    assert cc.w_max == pytest.approx(100)
    cc.cwnd = 80 * MSS  # lost again before regaining W_max
    cc.on_congestion_event(cc.cwnd, 1.0)
    assert cc.w_max == pytest.approx(80 * (1 + BETA) / 2)
    assert cc.cwnd == int(80 * MSS * BETA) and cc.ssthresh == cc.cwnd


def test_cubic_rto_loss_window():
    cc = Cubic(MSS)
    cc.cwnd = 50 * MSS
    cc.on_rto(50 * MSS, 0.0)
    assert cc.cwnd == MSS and cc.ssthresh == int(50 * MSS * BETA)


def test_per_connection_choice_tcp_info_and_trace():
    events = []
    cfg_a = TcpConfig(congestion="reno", nodelay=True)
    p = Pair(cfg_a, TcpConfig())
    p.a.trace = lambda t, ev, d: events.append((t, ev, d))
    p.handshake()
    assert p.a.tcp_info()["congestion"] == "reno" and p.b.tcp_info()["congestion"] == "cubic"
    p.a.send(b"z" * 200_000)
    p.a.output(p.now)
    p.run(until=10.0)
    info = p.a.tcp_info()
    assert info["cwnd"] > 10 * p.a.snd_mss and "ssthresh" in info
    cw = [d for _, ev, d in events if ev == "cwnd"]
    assert cw and all({"cwnd", "ssthresh"} <= set(d) for d in cw)
    assert cw[-1]["cwnd"] == info["cwnd"]


def test_unknown_congestion_name_rejected():
    with pytest.raises(ValueError, match="unknown congestion"):
        create_congestion("bbr9", MSS)
