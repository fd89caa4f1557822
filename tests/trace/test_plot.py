"""`stacklab run --plot`: what it draws (audit D31). The data is checked without matplotlib
(CI installs only the test extra); the figure itself when the plot extra is installed."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from stacklab.scenario.runner import run_scenario
from stacklab.trace.events import Tracer
from stacklab.trace.stats import PLOT_BIN_S, RunStats, collect, plot, plot_series

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def lossy() -> RunStats:
    """examples/lossy-tcp.toml: the client's SYN is lost (its first cwnd is 1 x 536 bytes,
    before any MSS was heard), then 1 MB over a lossy link to a server that only receives."""
    tracer = Tracer()
    got: list[RunStats] = []
    run_scenario(ROOT / "examples" / "lossy-tcp.toml", tracer=tracer,
                 inspect=lambda net: got.append(collect(net, tracer.events)))
    return got[0]


def _series(node: str):
    return next(s for s in plot_series(lossy()) if s.label.startswith(node + " "))


def test_the_receiving_end_has_no_cwnd_only_throughput():
    server = _series("server")
    assert server.cwnd == server.ssthresh == server.retransmits == []
    assert sum(v for _, v in server.throughput) * PLOT_BIN_S == pytest.approx(1_000_000,
                                                                             rel=0.01)


def test_cwnd_starts_once_the_mss_is_known():
    stats = lossy()
    client = next(c for c in stats.connections if c.node == "client")
    assert client.cwnd_series[0][1] == 536  # the raw trace: before the SYN-ACK
    cwnd = _series("client").cwnd
    assert cwnd[0] == (client.mss_known_at, 10 * client.mss)  # RFC 6928's initial window
    assert min(v for _, v in cwnd) >= 2 * client.mss


def test_ssthresh_and_retransmit_markers():
    stats = lossy()
    client = next(c for c in stats.connections if c.node == "client")
    sr = _series("client")
    assert sr.ssthresh and all(v < 1 << 30 for _, v in sr.ssthresh)
    data_retx = [t for t in client.retransmit_times if t >= client.mss_known_at]
    assert [t for t, _ in sr.retransmits] == data_retx and data_retx
    cwnd_at = dict(sr.cwnd)
    assert all(v in cwnd_at.values() for _, v in sr.retransmits)


def test_throughput_in_tenths_of_a_second():
    tp = _series("server").throughput
    assert [round(b - a, 9) for (a, _), (b, _) in zip(tp, tp[1:], strict=False)] == \
        [PLOT_BIN_S] * (len(tp) - 1)
    assert len(tp) >= 20


def test_the_figure_draws_that_data(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    figs: list = []
    monkeypatch.setattr(plt, "close", figs.append)  # keep the figure to look at it
    plot(lossy(), str(tmp_path / "p.png"))
    assert (tmp_path / "p.png").stat().st_size > 1000
    top, bottom = figs[0].axes
    labels = [line.get_label() for line in top.get_lines()]
    assert not any(lab.startswith("server") for lab in labels)
    client = _series("client")
    cwnd = next(line for line in top.get_lines() if line.get_label().endswith(" cwnd"))
    assert list(cwnd.get_xdata()) == [t for t, _ in client.cwnd]
    assert any(lab.endswith(" ssthresh") for lab in labels)
    assert any(lab.endswith(" retransmit") for lab in labels)
    assert len(bottom.get_lines()[0].get_xdata()) == len(_series("server").throughput)
