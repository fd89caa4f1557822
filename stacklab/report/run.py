"""The report of one scenario run (``stacklab run FILE --html F.html``).

:meth:`RunView.of` takes what the page needs from the live network at the end of the run (the
topology, the per-connection figures, the trace); :func:`run_page` renders it with the run's
summary: the results tables, the topology, sequence diagrams at full width, per-connection plots
(cwnd and ssthresh, RTT and RTO, the time-sequence graph), goodput per flow and the pcap links.
"""

from __future__ import annotations

import glob
import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stacklab.trace.diagram import from_trace, page_col_width, render_svg
from stacklab.trace.events import TraceEvent
from stacklab.trace.stats import RunStats, collect

from .fairness import fairness_section
from .page import Page, file_links, table
from .plots import (
    cwnd_plot,
    first_loss_window,
    flows,
    goodput_plot,
    rtt_plot,
    time_sequence_plot,
)
from .topology import Topology, render_topology, topology_of

__all__ = ["DIAGRAM_ROWS", "RunView", "run_page"]

DIAGRAM_ROWS = 400  # rows drawn per sequence diagram; the page says when there were more


@dataclass
class RunView:
    topology: Topology
    stats: RunStats
    events: list[TraceEvent]

    @classmethod
    def of(cls, net: Any, events: Sequence[TraceEvent]) -> RunView:
        return cls(topology_of(net), collect(net, events), list(events))


def _figure(svg: str, caption: str = "") -> str:
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f"<figure>{svg}{cap}</figure>"


def _diagram(view: RunView, lifelines: Sequence[str], kinds: Any) -> str:
    rows = from_trace(view.events, lifelines, kinds=kinds)
    note = ""
    if len(rows) > DIAGRAM_ROWS:
        note = f"<p>the first {DIAGRAM_ROWS} of {len(rows)} rows</p>"
        rows = rows[:DIAGRAM_ROWS]
    if not rows:
        return "<p>no frames between these nodes</p>"
    svg = render_svg(rows, lifelines, col_width=page_col_width(len(lifelines))).replace(
        "<svg ", "<svg class='diagram' ", 1)
    return note + _figure(svg)


def _default_lifelines(view: RunView) -> list[list[str]]:
    """Without ``--diagram``: the first link that carried TCP, else the first link."""
    tcp_nodes = {c.node for c in view.stats.connections}
    for link in view.topology.links:
        if link.a in tcp_nodes or link.b in tcp_nodes:
            return [[link.a, link.b]]
    return [[link.a, link.b] for link in view.topology.links[:1]]


def run_page(view: RunView, summary: dict[str, Any], *, html_path: str,
             diagrams: Sequence[Sequence[str]] = (), kinds: Any = None,
             pcap_dir: str | None = None) -> str:
    """The HTML page of a run; pcap links are relative to the page's directory."""
    title = summary.get("name") or summary.get("scenario") or "stacklab run"
    page = Page(str(title), intro=f"{summary.get('scenario', '')}: seed {summary.get('seed')}, "
                                  f"{summary.get('time', 0):g} s of virtual time")
    apps = summary.get("apps", [])
    rows = []
    for app in apps:
        status = "<span class='ok'>ok</span>" if app.get("ok") else "<span class='fail'>FAIL</span>"
        extra = ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in app.items() if k not in ("node", "kind", "ok")
                          and not isinstance(v, list | dict))
        rows.append((status, html.escape(str(app.get("kind"))), html.escape(str(app.get("node"))),
                     html.escape(extra)))
    page.add("Results", table(("status", "app", "node", "figures"), rows, raw=True)
             if rows else "<p>no apps</p>")
    lines = [line for app in apps for line in app.get("lines", []) if isinstance(line, str)]
    if lines:
        page.add("Tool output", "<pre>" + html.escape("\n".join(lines)) + "</pre>", level=3)
    page.add("Topology", _figure(render_topology(view.topology)))
    conns = view.stats.connections
    if conns:
        page.add("TCP connections", table(
            ("node", "local", "remote", "final state", "mss", "pmtu", "bytes out", "bytes in",
             "segs out", "segs in", "retransmits", "RTOs", "srtt (ms)", "rto (ms)", "cwnd"),
            [(c.node, c.local, c.remote, c.state, c.mss, c.pmtu, c.bytes_sent, c.bytes_received,
              c.segs_out, c.segs_in, c.retransmits, c.rto_expiries,
              "-" if c.srtt is None else round(c.srtt * 1000, 2), round(c.rto * 1000, 1),
              c.cwnd) for c in conns]))
    page.add("Nodes", table(
        ("node", "kind", "rx frames", "tx frames", "drops"),
        [(name, node["kind"], node["counters"].get("rx.frames", 0),
          node["counters"].get("tx.frames", 0),
          ", ".join(f"{k[5:]} {v}" for k, v in node["counters"].items()
                    if k.startswith("drop.") and v) or "-")
         for name, node in summary.get("nodes", {}).items()]))
    page.add("Links", table(
        ("link", "direction", "sent", "delivered", "dropped"),
        [(name, label, c.get("tx.frames", 0), c.get("rx.frames", 0),
          ", ".join(f"{k[5:]} {v}" for k, v in c.items() if k.startswith("drop.")) or "-")
         for name, dirs in summary.get("links", {}).items() for label, c in dirs.items()]))
    for lifelines in (diagrams or _default_lifelines(view)):
        page.add(f"Sequence diagram {' / '.join(lifelines)}", _diagram(view, lifelines, kinds))
    shared = fairness_section(summary)  # tcp-send's `sample`: flows sharing a bottleneck
    if shared is not None:
        page.add("Flows sharing a bottleneck", shared)
    all_flows = flows(view.events)
    senders = [f for f in all_flows if f.sent_data]
    if senders:
        page.add("Goodput", _figure(goodput_plot(senders),
                                    "bytes newly acknowledged, per interval, at each sender"))
    for f in senders:
        figures = [_figure(cwnd_plot(f)), _figure(rtt_plot(f)), _figure(
            time_sequence_plot(f), "segments sent (red: resent), the cumulative ACK, ACK + "
            "receive window, SACK blocks")]
        window = first_loss_window(f)
        if window is not None:
            figures.append(_figure(time_sequence_plot(f, window),
                                   "zoomed on the first retransmission"))
        page.add(f"TCP {f.name}", "".join(figures), level=3)
    if pcap_dir:
        base = os.path.dirname(os.path.abspath(html_path))
        files = sorted(glob.glob(os.path.join(os.path.abspath(pcap_dir), "*.pcap")))
        page.add("Captures", file_links(files, base))
    return page.render()
