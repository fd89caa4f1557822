"""The tour's congestion chapter: flows with different congestion controls sharing one
bottleneck, drop-tail against CoDel with ECN (the scenario of examples/fairness.toml, shorter)."""

from __future__ import annotations

from typing import Any

from stacklab.scenario.runner import check_scenario, run_scenario
from stacklab.trace.diagram import from_trace, page_col_width, render_svg, render_text
from stacklab.trace.events import Tracer

from .lab import squeeze
from .registry import StepContext, StepResult, step

FLOWS = (("reno", "reno"), ("cubic-1", "cubic"), ("cubic-2", "cubic"))  # (node, congestion)
VARIANTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("drop-tail", {}), ("CoDel+ECN", {"aqm": "codel", "ecn": True}))
LIFELINES = ("r", "server")  # the bottleneck
BAR = 40  # columns of the widest goodput bar


def bottleneck(seed: int, queue: dict[str, Any]) -> dict[str, Any]:
    """Three senders through a router, a 10 Mbit/s 100-frame bottleneck, 40 ms round trip."""
    senders = [name for name, _ in FLOWS]
    return {
        "seed": seed, "duration": "12s",
        "node": [*({"name": n, "kind": "host"} for n in senders),
                 {"name": "r", "kind": "router"},
                 {"name": "server", "kind": "host",
                  "sysctl": {"net.ipv4.tcp_rmem": "4096 131072 262144"}}],
        "link": [*({"ends": [n, "r"], "delay": "1ms"} for n in senders),
                 {"name": "bottleneck", "ends": ["r", "server"], "delay": "19ms",
                  "rate": "10Mbit", "queue": 100, **queue}],
        "app": [{"node": "server", "kind": "tcp-sink", "port": 5001},
                *({"node": n, "kind": "tcp-send", "to": "server", "port": 5001,
                   "bytes": 3_000_000, "congestion": cc, "sample": "100ms", "start": "0.5s"}
                  for n, cc in FLOWS)],
    }


@step("flows-bottleneck")
def flows_bottleneck(ctx: StepContext) -> StepResult:
    res = StepResult()
    for label, queue in VARIANTS:
        scn = check_scenario(bottleneck(ctx.seed, queue), f"<{label}>")
        tracer = Tracer() if queue else None  # the diagram: CoDel's first drop
        summary = run_scenario(scn, tracer=tracer)
        fair = summary["fairness"]
        q = summary["queues"]["bottleneck"]["r>server"]
        share = [(a["node"], a["flow"]["goodput_bps"]) for a in summary["apps"] if "flow" in a]
        rtts = [f["rtt_mean_ms"] for f in fair["flows"]]
        res.show(f"{label}: Jain's index", fair["jain"])
        res.show(f"{label}: queue delay p50 / p99", (q["sojourn_p50_ms"], q["sojourn_p99_ms"]),
                 f"{q['sojourn_p50_ms']:.1f} / {q['sojourn_p99_ms']:.1f} ms")
        res.show(f"{label}: mean SRTT per flow", rtts, ", ".join(f"{r:.0f} ms" for r in rtts))
        res.show(f"{label}: drops (queue full, AQM)", (q["drops_overflow"], q["drops_aqm"]))
        res.keep(f"{label}: goodput", share)
        res.keep(f"{label}: CE marks", q["marks_ce"])
        top = max(bps or 0 for _, bps in share) or 1
        res.notes.append(f"{label}: goodput per flow (Mbit/s)")
        for node, bps in share:
            cc = dict(FLOWS)[node]
            res.notes.append(f"  {node:8} {cc:6} {'#' * round(BAR * (bps or 0) / top):{BAR}} "
                             f"{(bps or 0) / 1e6:.2f}")
        if tracer is not None:
            drop = next(ev for ev in tracer.events
                        if ev.event == "drop" and ev.details.get("reason") == "aqm")
            # the frame entered the queue up to 100 frames earlier: rows are placed by then
            rows = squeeze(from_trace(tracer.events, LIFELINES, start=drop.time - 0.2,
                                      end=drop.time + 0.01, kinds={"tcp"}, notes=False))
            first = next(i for i, r in enumerate(rows) if getattr(r, "dropped", False))
            rows = rows[max(0, first - 6):first + 10]
            res.diagram = render_text(rows, LIFELINES, width=80)
            res.svg = render_svg(rows, LIFELINES, title="CoDel's first drop at r",
                                 col_width=page_col_width(len(LIFELINES)))
    return res
