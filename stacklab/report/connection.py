"""A TCP connection of a simulated run that draws itself in Jupyter: its figures, the sequence
diagram of its own frames along the path between its two nodes, and its plots.

``net.connections()`` (:meth:`stacklab.net.network.Network.connections`) returns these for a
network made with a tracer (``Network(tracer=Tracer())``); without one only the figures show.
"""

from __future__ import annotations

import html
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from stacklab.trace.diagram import Row, from_trace, render_svg
from stacklab.trace.events import TraceEvent
from stacklab.trace.stats import ConnStats, connection_stats

from .page import table
from .plots import Flow, cwnd_plot, flows, rtt_plot, time_sequence_plot

__all__ = ["Connection", "connections"]


def _split(endpoint: str) -> tuple[str, str]:
    """``10.0.1.1:5000`` / ``[fd00::1]:5000`` -> (address, port)."""
    addr, _, port = endpoint.rpartition(":")
    return addr.strip("[]"), port


def _path(net: Any, src: str, dst: str) -> list[str]:
    """Node names from ``src`` to ``dst`` along the links (breadth first)."""
    nbrs: dict[str, list[str]] = {name: [] for name in net.nodes}
    for link in net.links:
        nbrs[link.a.name].append(link.b.name)
        nbrs[link.b.name].append(link.a.name)
    back: dict[str, str | None] = {src: None}
    queue = deque([src])
    while queue:
        u = queue.popleft()
        for v in nbrs[u]:
            if v not in back:
                back[v] = u
                queue.append(v)
    if dst not in back:
        return [src]
    path = [dst]
    while (prev := back[path[-1]]) is not None:
        path.append(prev)
    return path[::-1]


@dataclass
class Connection:
    stats: ConnStats
    lifelines: list[str]
    rows: list[Row] = field(default_factory=list)
    flow: Flow | None = None

    def __repr__(self) -> str:
        return f"<Connection {self.stats.node} {self.stats.name} {self.stats.state}>"

    def _repr_svg_(self) -> str:
        """The sequence diagram of this connection's frames."""
        if len(self.lifelines) < 2:
            return ""
        return render_svg(self.rows, self.lifelines, title=f"{self.stats.node} {self.stats.name}")

    def _repr_html_(self) -> str:
        c = self.stats
        parts = [f"<h4>TCP {html.escape(c.node)} {html.escape(c.name)}</h4>", table(
            ("state", "mss", "bytes out", "bytes in", "retransmits", "RTOs", "srtt (ms)",
             "cwnd"),
            [(c.state, c.mss, c.bytes_sent, c.bytes_received, c.retransmits, c.rto_expiries,
              "-" if c.srtt is None else round(c.srtt * 1000, 2), c.cwnd)])]
        if self.rows:
            parts.append(self._repr_svg_())
        if self.flow is not None and self.flow.sent_data:
            parts += [cwnd_plot(self.flow), rtt_plot(self.flow), time_sequence_plot(self.flow)]
        elif self.flow is None:
            parts.append("<p>no trace: make the network with Network(tracer=Tracer()) for the "
                         "diagram and the plots</p>")
        return "<div class='stacklab-connection'>" + "".join(parts) + "</div>"


def connections(net: Any) -> list[Connection]:
    """Every TCP connection of every node of ``net`` (finished ones too)."""
    tracer = getattr(net, "tracer", None)
    events: list[TraceEvent] = list(tracer.events) if tracer is not None else []
    owner = {addr: name for (name, _i), pair in getattr(net, "addresses", {}).items()
             for addr in pair}
    by_flow = {(f.node, f.conn): f for f in flows(events)}
    out = []
    for st in connection_stats(net.nodes, events):
        (lip, lport), (rip, rport) = _split(st.local), _split(st.remote)
        peer = owner.get(rip)
        lifelines = _path(net, st.node, peer) if peer is not None else [st.node]
        mine = (f"{lip}.{lport} > {rip}.{rport}:", f"{rip}.{rport} > {lip}.{lport}:")
        conn = f"{lip}:{lport}>{rip}:{rport}"
        peer_conn = f"{rip}:{rport}>{lip}:{lport}"
        picked = [ev for ev in events
                  if (ev.layer == "link" and str(ev.details.get("summary", "")).startswith(mine))
                  or (ev.layer == "tcp" and ev.details.get("conn") in (conn, peer_conn))]
        rows = from_trace(picked, lifelines) if len(lifelines) > 1 else []
        flow = by_flow.get((st.node, conn)) if tracer is not None else None
        out.append(Connection(st, lifelines, rows, flow if flow else
                              (Flow(st.node, conn) if tracer is not None else None)))
    return out
