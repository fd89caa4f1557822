"""Flows sharing a bottleneck (issue 17 item 7): tcp-send's `sample`, the summary's `fairness`
section, the examples (drop-tail vs CoDel+ECN), the report's plots and the tour step."""

from __future__ import annotations

import functools
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from stacklab.report.run import RunView, run_page
from stacklab.scenario.flows import jain_index
from stacklab.scenario.runner import ScenarioError, check_scenario, run_scenario
from stacklab.tour import runner as tour

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _example(name: str, duration: str = "8s", nbytes: int = 3_000_000,
             drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """An example, shortened for the test suite: ``duration``, ``nbytes`` per flow, the
    senders ``drop`` left out."""
    data = tomllib.loads((EXAMPLES / name).read_text())
    data["duration"] = duration
    data["app"] = [a for a in data["app"] if a["node"] not in drop]
    for app in data["app"]:
        if app["kind"] == "tcp-send":
            app["bytes"] = nbytes
    return data


@functools.cache
def _run(name: str) -> dict[str, Any]:
    return run_scenario(check_scenario(_example(name), name))


def test_jain_index():
    assert jain_index([5.0, 5.0, 5.0]) == pytest.approx(1.0)
    assert jain_index([9.0, 0.0, 0.0]) == pytest.approx(1 / 3)
    assert jain_index([3.0, 1.0]) == pytest.approx(16 / 20)
    assert jain_index([0.0, 0.0]) is None and jain_index([]) is None


@pytest.mark.parametrize("name", ["fairness.toml", "fairness-codel.toml"])
def test_the_summary_has_per_flow_figures_and_a_fairness_index(name):
    s = _run(name)
    sends = [a for a in s["apps"] if a["kind"] == "tcp-send"]
    assert len(sends) == 3 and all(a["ok"] for a in sends)
    fair = s["fairness"]
    assert [f["node"] for f in fair["flows"]] == ["reno", "cubic-1", "cubic-2"]
    assert [f["congestion"] for f in fair["flows"]] == ["reno", "cubic", "cubic"]
    for app, row in zip(sends, fair["flows"], strict=True):
        flow = app["flow"]
        # the samples end with every byte acknowledged; goodput is what they cover per second
        t0, a0, *_ = flow["samples"][0]
        t1, a1, *_ = flow["samples"][-1]
        assert a1 == app["bytes"]
        assert flow["goodput_bps"] == pytest.approx(8 * (a1 - a0) / (t1 - t0), rel=1e-5)
        assert 0 < row["goodput_bps"] < 20e6  # below the 20 Mbit/s bottleneck
        assert row["retransmits"] == app["retransmits"] > 0  # a full drop-tail queue / CoDel
        assert 0 < row["cwnd_mean"] <= row["cwnd_max"]
        assert row["rtt_mean_ms"] > 40  # the path's 40 ms plus the queue
    assert 1 / 3 <= fair["jain"] <= 1
    lo, hi = fair["window"]
    assert sum(fair["goodput_bps"]) <= 20e6 and hi > lo
    assert len(fair["jain_series"]) == int((hi - lo) / 0.25)  # a point per quarter second
    assert all(1 / 3 - 1e-4 <= j <= 1 and lo < t <= hi + 1e-6 for t, j in fair["jain_series"])
    assert s["queues"]["bottleneck"]["r>server"]["arrivals"] > 0


def test_codel_keeps_the_queue_short_where_drop_tail_fills_it():
    runs = {n: _run(n) for n in ("fairness.toml", "fairness-codel.toml")}
    tail = runs["fairness.toml"]["queues"]["bottleneck"]["r>server"]
    codel = runs["fairness-codel.toml"]["queues"]["bottleneck"]["r>server"]
    assert (tail["aqm"], codel["aqm"], codel["ecn"]) == ("droptail", "codel", True)
    assert tail["drops_aqm"] == 0 and tail["sojourn_p90_ms"] > 50  # 100 frames: up to 60 ms
    assert codel["sojourn_p50_ms"] < 10  # CoDel's 5 ms target
    assert tail["sojourn_p50_ms"] > 3 * codel["sojourn_p50_ms"]
    # the senders negotiated ECN (tcp_ecn = 1): CoDel marks where it would drop, and each
    # sender answers the echoed marks; what CoDel still drops is Not-ECT, retransmissions
    # (RFC 3168 §6.1.5) after the slow-start overflows of the 100-frame buffer (measured: 25
    # marks, 4 drops, 181 retransmissions)
    retransmits = sum(a["retransmits"] for a in runs["fairness-codel.toml"]["apps"]
                      if "retransmits" in a)
    assert codel["marks_ce"] > 5 * max(codel["drops_aqm"], 1)
    assert codel["drops_aqm"] <= retransmits
    senders = [c for c in runs["fairness-codel.toml"]["connections"] if c["ecn"]["ce_in"] == 0]
    assert len(senders) == 3 and all(c["ecn"]["reductions"] > 0 for c in senders)
    rtt = {n: [f["rtt_mean_ms"] for f in r["fairness"]["flows"]] for n, r in runs.items()}
    assert max(rtt["fairness-codel.toml"]) < min(rtt["fairness.toml"])


def test_two_cubic_flows_share_a_drop_tail_bottleneck_fairly():
    s = run_scenario(check_scenario(_example("fairness.toml", nbytes=4_000_000, drop=("reno",))))
    fair = s["fairness"]
    assert [f["congestion"] for f in fair["flows"]] == ["cubic", "cubic"]
    assert fair["jain"] > 0.8  # measured: 0.958 over the 3 s both were sending


def test_a_flow_still_running_at_the_end_reports_its_figures():
    s = run_scenario(check_scenario(_example("fairness.toml", duration="3s")))
    sends = [a for a in s["apps"] if a["kind"] == "tcp-send"]
    assert all(not a["ok"] and "still running" in a["error"] for a in sends)
    assert all(a["flow"]["samples"][-1][0] == pytest.approx(3.0) for a in sends)
    assert s["fairness"]["window"][1] == pytest.approx(3.0)
    assert 1 / 3 <= s["fairness"]["jain"] <= 1


def test_sample_must_be_a_sensible_interval():
    data = _example("fairness.toml")
    data["app"][1]["sample"] = "0s"
    with pytest.raises(ScenarioError, match="sample"):
        run_scenario(check_scenario(data))


def test_the_report_plots_goodput_cwnd_rtt_and_fairness(tmp_path):
    views: list[RunView] = []
    summary = run_scenario(check_scenario(_example("fairness-codel.toml")),
                           inspect=lambda net: views.append(RunView.of(net, [])))
    page = run_page(views[0], summary, html_path=str(tmp_path / "r.html"))
    assert ">Flows sharing a bottleneck</h2>" in page
    section = page[page.index(">Flows sharing a bottleneck</h2>"):]
    plots = [ET.fromstring(svg + "</svg>") for svg in
             ("<svg xmlns" + part.split("</svg>")[0] for part in section.split("<svg xmlns")[1:])]
    titles = [p.get("aria-label") for p in plots]
    assert titles == ["goodput per flow", "cwnd per flow", "SRTT per flow",
                      "Jain's fairness index over 3 flows"]
    ns = "{http://www.w3.org/2000/svg}path"
    for plot in plots[:3]:
        series = {p.get("data-label"): int(p.get("data-points")) for p in plot.iter(ns)}
        assert list(series) == ["reno (reno)", "cubic-1 (cubic)", "cubic-2 (cubic)"]
        assert all(n > 10 for n in series.values())  # 100 ms samples over seconds
    jain = {p.get("data-label"): int(p.get("data-points")) for p in plots[3].iter(ns)}
    assert jain["Jain's index"] == len(summary["fairness"]["jain_series"]) > 5
    assert "CE marks" in section and "delay p50 (ms)" in section


def test_the_tour_step_compares_drop_tail_and_codel():
    res = tour.run_step("flows-bottleneck", tour.StepContext())
    for label in ("drop-tail", "CoDel+ECN"):
        assert 1 / 3 <= res[f"{label}: Jain's index"] <= 1
        assert len(res[f"{label}: goodput"]) == 3
    assert res["CoDel+ECN: queue delay p50 / p99"][0] < 10 < \
        res["drop-tail: queue delay p50 / p99"][0]
    assert max(res["CoDel+ECN: mean SRTT per flow"]) < min(res["drop-tail: mean SRTT per flow"])
    assert res["CoDel+ECN: drops (queue full, AQM)"][1] > 0
    assert "---X" in res.diagram  # the sequence diagram shows CoDel's first drop
    assert "first drop at r" in res.svg
    assert sum("reno" in line for line in res.notes) == 2  # a goodput bar per variant
