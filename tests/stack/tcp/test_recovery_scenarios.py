"""The issue-6 scenarios in examples/ show what their comments promise."""

from __future__ import annotations

import pathlib

from stacklab.scenario.runner import run_scenario

EXAMPLES = pathlib.Path(__file__).resolve().parents[3] / "examples"


def app(s, kind, node):
    (a,) = [a for a in s["apps"] if a["kind"] == kind and a["node"] == node]
    return a


def test_tcp_vs_udp():
    s = run_scenario(EXAMPLES / "tcp-vs-udp.toml")
    send, sink = app(s, "tcp-send", "client"), app(s, "tcp-sink", "server")
    assert send["ok"] and sink["bytes"] == send["bytes"] == 300_000
    assert sink["sha256"] == send["sha256"] and send["retransmits"] > 0
    usend, usink = app(s, "udp-send", "client"), app(s, "udp-sink", "server")
    assert usend["datagrams"] == 500
    assert usink["lost"] > 0 and usink["reordered"] > 0
    assert usink["received"] + usink["lost"] <= 500 and usink["received"] < 500


def test_retransmit_single_loss_and_tail_loss():
    s = run_scenario(EXAMPLES / "retransmit.toml")
    single, tail = app(s, "tcp-send", "single-client"), app(s, "tcp-send", "tail-client")
    assert single["ok"] and tail["ok"]
    assert app(s, "tcp-sink", "single-server")["sha256"] == single["sha256"]
    assert app(s, "tcp-sink", "tail-server")["sha256"] == tail["sha256"]
    assert (single["retransmits"], single["fast_retransmits"], single["rto_expiries"]) == (1, 1, 0)
    # the tail loss probe (RFC 8985 §7) repairs the lost last segment: no timeout
    assert tail["fast_retransmits"] == 0 and tail["rto_expiries"] == 0 and tail["retransmits"] == 1
    assert s["links"]["single-client-single-server"]["single-client>single-server"][
        "drop.nth"] == 1


def test_congestion_reno_vs_cubic():
    s = run_scenario(EXAMPLES / "congestion.toml")
    reno, cubic = app(s, "tcp-send", "reno-client"), app(s, "tcp-send", "cubic-client")
    assert reno["congestion"] == "reno" and cubic["congestion"] == "cubic"
    for r in (reno, cubic):
        assert r["ok"] and r["bytes"] == 6_000_000
        assert r["retransmits"] > 0  # the 40-frame queue overflowed: loss-based CC at work
        assert 10e6 < r["throughput_bps"] <= 20e6  # most of the 20 Mbit/s bottleneck
        cw = r["cwnd"]
        assert len(cw) > 20 and all(len(x) == 3 for x in cw)
        assert any(b[1] < a[1] for a, b in zip(cw, cw[1:], strict=False))  # a decrease
    # after a loss, NewReno's ssthresh is half the window, CUBIC's 0.7 of it
    def first_cut(r):
        for a, b in zip(r["cwnd"], r["cwnd"][1:], strict=False):
            if b[2] < a[2] and a[2] >= 1 << 29:
                return b[2] / a[1]
        return None
    assert first_cut(reno) is not None and first_cut(cubic) is not None
    assert first_cut(cubic) > first_cut(reno)
