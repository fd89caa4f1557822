"""The report's section on flows sharing a bottleneck, drawn from the summary's ``fairness``
section (:mod:`stacklab.scenario.flows`: the samples each ``tcp-send`` with ``sample`` took):
a table per flow with Jain's index, goodput, cwnd and SRTT of every flow on one chart each, the
fairness index over time, and the queues' delay."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from .page import table
from .svg import Chart

__all__ = ["fairness_plot", "fairness_section", "flow_plots"]


def _flows(summary: dict[str, Any]) -> list[tuple[str, list[list[Any]]]]:
    """(label, samples) of every sampled tcp-send: "node (congestion)"."""
    return [(f"{a['node']} ({a.get('congestion')})", a["flow"]["samples"])
            for a in summary.get("apps", [])
            if isinstance(a.get("flow"), dict) and a["flow"].get("samples")]


def _goodput(samples: Sequence[Sequence[Any]]) -> list[tuple[float, float]]:
    """Mbit/s acknowledged between consecutive samples."""
    return [(t1, 8 * (a1 - a0) / (t1 - t0) / 1e6)
            for (t0, a0, *_), (t1, a1, *_) in zip(samples, samples[1:], strict=False) if t1 > t0]


def flow_plots(summary: dict[str, Any]) -> list[str]:
    """Goodput, cwnd and SRTT of every sampled flow, one ``<svg>`` each."""
    flows = _flows(summary)
    goodput = Chart("goodput per flow", y_label="Mbit/s")
    cwnd = Chart("cwnd per flow", y_label="bytes")
    rtt = Chart("SRTT per flow", y_label="ms")
    for label, samples in flows:
        goodput.line(label, _goodput(samples))
        cwnd.step(label, [(t, c) for t, _, c, _ in samples])
        rtt.line(label, [(t, r * 1e3) for t, _, _, r in samples if r is not None])
    return [goodput.render(), cwnd.render(), rtt.render()]


def fairness_plot(fairness: dict[str, Any]) -> str:
    """Jain's index over time (1 = equal shares), with the 1/n floor."""
    n = len(fairness["flows"])
    chart = Chart(f"Jain's fairness index over {n} flows", y_label="index")
    series = [(t, j) for t, j in fairness["jain_series"]]
    chart.line("Jain's index", series, color="#1f4e9a")
    if series:
        chart.line(f"1/n = {1 / n:.2g}", [(series[0][0], 1 / n), (series[-1][0], 1 / n)],
                   color="#7f8c8d", width=1)
    return chart.render()


def fairness_section(summary: dict[str, Any]) -> str | None:
    """The section's HTML, or None if no flow was sampled."""
    fairness = summary.get("fairness")
    if not fairness:
        return None
    window = fairness.get("window")
    share = fairness.get("goodput_bps") or [None] * len(fairness["flows"])
    rows = [(f["node"], str(f.get("congestion")), _mbit(f.get("goodput_bps")), _mbit(s),
             f["retransmits"], f["cwnd_mean"], f["cwnd_max"], f.get("rtt_mean_ms") or "-")
            for f, s in zip(fairness["flows"], share, strict=True)]
    parts = [table(("flow", "congestion", "goodput (Mbit/s)", "while all sent (Mbit/s)",
                    "retransmits", "mean cwnd", "max cwnd", "mean SRTT (ms)"), rows)]
    if window:
        parts.append(f"<p>Jain's fairness index over {window[0]:g}–{window[1]:g} s, while all "
                     f"flows were sending: <b>{fairness['jain']}</b> (1: equal shares; "
                     f"{1 / len(rows):.2g}: one flow takes all)</p>")
    queues = [(link, d, q["aqm"], "yes" if q["ecn"] else "no", q["length_mean"],
               q["sojourn_p50_ms"], q["sojourn_p99_ms"], q["drops_overflow"], q["drops_aqm"],
               q["marks_ce"])
              for link, dirs in summary.get("queues", {}).items() for d, q in dirs.items()
              if q["arrivals"]]
    if queues:
        parts.append(table(("link", "direction", "aqm", "ecn", "mean length", "delay p50 (ms)",
                            "delay p99 (ms)", "drops (full)", "drops (aqm)", "CE marks"),
                           queues))
    figures = [*flow_plots(summary), fairness_plot(fairness)]
    parts.extend(f"<figure>{svg}</figure>" for svg in figures)
    return "".join(parts)


def _mbit(bps: float | None) -> str:
    return "-" if bps is None else html.escape(f"{bps / 1e6:.3f}")
