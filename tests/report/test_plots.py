"""The plots' data is the connection's own: the TCB's trace events, checked against the TCB's
counters and tcp_info; the SVG scales and ticks; ``run --topology``; the page's structure."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from stacklab.report.plots import flows, goodput, time_sequence_plot
from stacklab.report.run import RunView, run_page
from stacklab.report.svg import Chart, nice_ticks
from stacklab.scenario.runner import run_scenario
from stacklab.trace.events import Tracer

ROOT = Path(__file__).resolve().parents[2]


def _lossy():
    tracer = Tracer()
    views = []
    summary = run_scenario(ROOT / "examples" / "lossy-tcp.toml", tracer=tracer,
                           inspect=lambda net: views.append(RunView.of(net, tracer.events)))
    return tracer, views[0], summary


def test_flow_series_are_the_tcbs_own():
    tracer, view, _summary = _lossy()
    client = next(f for f in flows(tracer.events) if f.node == "client")
    stats = next(c for c in view.stats.connections if c.node == "client")
    # every data segment the TCB emitted, and the resent ones are exactly its retransmissions
    assert sum(n for _, _, n in client.sends) == stats.bytes_sent
    top, resent = 0, 0
    for _t, seq, n in client.sends:
        resent += seq + n <= top
        top = max(top, seq + n)
    data_retransmits = [e for e in tracer.select("client", "tcp", "retransmit")
                        if e.details["why"] != "SYN"]
    assert resent == len(data_retransmits) == stats.retransmits - 1  # 1: the SYN's
    assert [c for _t, c, _s in client.cwnd] == [c for _t, c in stats.cwnd_series]
    assert client.rtt[-1][2] == stats.srtt
    assert client.acks[-1][1] == 1_000_002  # 1 MB, the SYN and the FIN acknowledged
    assert any(blocks for *_x, blocks in client.acks)  # SACK blocks were reported
    # goodput: what the ACKs newly cover, in bits, adds up to the transfer
    assert abs(sum(v * 0.1 for _, v in goodput(client, 0.1)) / 8 - 1_000_001) < 1


def test_time_sequence_svg_has_one_bar_per_segment():
    tracer, _view, _summary = _lossy()
    client = next(f for f in flows(tracer.events) if f.node == "client")
    svg = ET.fromstring(time_sequence_plot(client))
    series = {p.get("data-label"): p for p in svg.iter("{http://www.w3.org/2000/svg}path")}
    assert int(series["sent"].get("data-points")) + int(
        series["retransmitted"].get("data-points")) == len(client.sends)
    assert series["sent"].get("d").count("M") == int(series["sent"].get("data-points"))


def test_ticks_cover_the_data():
    assert nice_ticks(0, 9.3) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(2.05, 6.1) == [2, 3, 4, 5, 6, 7]
    ticks = nice_ticks(0, 1_000_002, 5)
    assert ticks[0] == 0 and ticks[-1] >= 1_000_002
    chart = Chart("x")
    chart.line("a", [(0.0, 0.0), (10.0, 5.0)])
    path = ET.fromstring(chart.render()).find(".//{http://www.w3.org/2000/svg}path")
    assert path is not None and path.get("d") == "M70.0,276.0L880.0,50.0"  # the plot's corners


def test_run_page_sections(tmp_path):
    _tracer, view, summary = _lossy()
    page = run_page(view, summary, html_path=str(tmp_path / "r.html"))
    for heading in ("Results", "Topology", "TCP connections", "Nodes", "Links",
                    "Sequence diagram client / r1", "Goodput"):
        assert f">{heading}</h2>" in page, heading
    assert "<html lang='en'>" in page and "the first 400 of" in page
    assert "Captures" not in page  # no --pcap, no links


def test_run_topology_option(tmp_path):
    from stacklab.cli.main import main

    out = tmp_path / "t.svg"
    assert main(["run", str(ROOT / "examples" / "switched-lan.toml"), "--topology",
                 str(out)]) == 0
    svg = ET.fromstring(out.read_text())
    nodes = [n.get("data-node") for n in svg.iter() if n.get("class") == "node"]
    links = [n.get("data-link") for n in svg.iter() if n.get("class") == "link"]
    assert nodes == ["sw", "h1", "h2", "h3", "gw", "srv"]
    assert links == ["h1-sw", "h2-sw", "h3-sw", "gw-sw", "gw-srv"]
