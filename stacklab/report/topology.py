"""The topology picture: nodes (hosts, routers, switches) and the links between them, as SVG.

:func:`topology_of` reads a :class:`stacklab.net.network.Network` (duck-typed: ``nodes``,
``kinds``, ``links``, ``addresses``) into plain :class:`Topology` data; :func:`render_topology`
draws it. Layout: breadth-first layers from the first node, left to right, so a chain a–r–b
reads as a line and a switch's hosts fan out behind it.
"""

from __future__ import annotations

import html
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TopoLink", "TopoNode", "Topology", "describe_params", "render_topology",
           "topology_of"]


@dataclass
class TopoNode:
    name: str
    kind: str  # host | router | switch | ...
    addresses: list[str] = field(default_factory=list)


@dataclass
class TopoLink:
    name: str
    a: str
    b: str
    label: str  # "5ms 100Mbit loss 1%"
    up: bool = True


@dataclass
class Topology:
    nodes: list[TopoNode]
    links: list[TopoLink]


def describe_params(params: Any) -> str:
    """The link parameters that differ from the defaults, in user units."""
    parts = [f"{params.delay * 1000:g}ms"]
    if params.rate:
        rate = params.rate
        parts.append(f"{rate / 1e9:g}Gbit" if rate >= 1e9 else f"{rate / 1e6:g}Mbit"
                     if rate >= 1e6 else f"{rate / 1e3:g}kbit")
    for key in ("loss", "duplicate", "reorder", "corrupt"):
        p = getattr(params, key)
        if p:
            parts.append(f"{key} {p * 100:g}%")
    if params.mtu != 1500:
        parts.append(f"mtu {params.mtu}")
    if params.jitter:
        parts.append(f"±{params.jitter * 1000:g}ms")
    if params.icmp_blackhole:
        parts.append("ICMP blackhole")
    return " ".join(parts)


def topology_of(net: Any) -> Topology:
    """Plain topology data of a network (addresses once ``autoconfigure`` ran)."""
    addrs: dict[str, list[str]] = {}
    for (name, _ifindex), (v4, _v6) in getattr(net, "addresses", {}).items():
        addrs.setdefault(name, []).append(v4)
    nodes = [TopoNode(name, net.kinds.get(name, "node"), addrs.get(name, []))
             for name in net.nodes]
    links = []
    for link in net.links:
        ab, ba = describe_params(link.ab.params), describe_params(link.ba.params)
        label = ab if ab == ba else f"→ {ab} / ← {ba}"
        links.append(TopoLink(link.name, link.a.name, link.b.name, label, link.up))
    return Topology(nodes, links)


def _layout(topo: Topology) -> dict[str, tuple[int, int]]:
    """name -> (column, row): breadth-first layers from the first node of each component."""
    nbrs: dict[str, list[str]] = {n.name: [] for n in topo.nodes}
    for link in topo.links:
        nbrs[link.a].append(link.b)
        nbrs[link.b].append(link.a)
    depth: dict[str, int] = {}
    for start in nbrs:
        if start in depth:
            continue
        base = max(depth.values(), default=-1) + 1 if depth else 0
        depth[start] = base
        queue = deque([start])
        while queue:
            u = queue.popleft()
            for v in nbrs[u]:
                if v not in depth:
                    depth[v] = depth[u] + 1
                    queue.append(v)
    rows: dict[int, int] = {}
    pos = {}
    for n in topo.nodes:
        col = depth[n.name]
        pos[n.name] = (col, rows.get(col, 0))
        rows[col] = rows.get(col, 0) + 1
    return pos


def _wrap(text: str, width: int) -> list[str]:
    lines = [""]
    for word in text.split():
        if lines[-1] and len(lines[-1]) + 1 + len(word) > width:
            lines.append(word)
        else:
            lines[-1] = f"{lines[-1]} {word}".strip()
    return lines


_COLOR = {"host": "#dbe8fb", "router": "#fde2c8", "switch": "#dff3e3"}


def render_topology(topo: Topology, title: str = "") -> str:
    """A standalone ``<svg>`` of the topology (scales to its container)."""
    esc = html.escape
    pos = _layout(topo)
    cols = max((c for c, _ in pos.values()), default=0) + 1
    rows = max((r for _, r in pos.values()), default=0) + 1
    dx, dy, mx, my = 300, 120, 90, 70 + (24 if title else 0)
    width, height = mx * 2 + dx * (cols - 1), my + 50 + dy * (rows - 1) + 40

    per_col = Counter(c for c, _ in pos.values())

    def xy(name: str) -> tuple[float, float]:  # each column centred vertically
        c, r = pos[name]
        return mx + c * dx, my + (r + (rows - per_col[c]) / 2) * dy

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="topology" '
           f'viewBox="0 0 {width} {height}" width="{width}" style="max-width:100%" '
           'font-family="sans-serif" font-size="12" role="img" aria-label="topology">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    if title:
        out.append(f'<text x="10" y="20" font-size="14" font-weight="bold">{esc(title)}</text>')
    for link in topo.links:
        (x1, y1), (x2, y2) = xy(link.a), xy(link.b)
        dash = "" if link.up else ' stroke-dasharray="6,4"'
        color = "#555" if link.up else "#b00"
        out.append(f'<line class="link" data-link="{esc(link.name)}" x1="{x1}" y1="{y1}" '
                   f'x2="{x2}" y2="{y2}" stroke="{color}" stroke-width="2"{dash}/>')
        text = link.label + ("" if link.up else " (down)")
        lines = _wrap(text, 30)
        for i, line in enumerate(lines):  # above the line's middle, the last line nearest
            y = (y1 + y2) / 2 - 6 - 13 * (len(lines) - 1 - i)
            out.append(f'<text x="{(x1 + x2) / 2}" y="{y}" text-anchor="middle" '
                       f'fill="{color}" font-size="11">{esc(line)}</text>')
    for node in topo.nodes:
        x, y = xy(node.name)
        fill = _COLOR.get(node.kind, "#eee")
        if node.kind == "router":
            out.append(f'<circle class="node" data-node="{esc(node.name)}" cx="{x}" cy="{y}" '
                       f'r="24" fill="{fill}" stroke="#a35a00"/>')
        else:
            rx = 2 if node.kind == "switch" else 8
            out.append(f'<rect class="node" data-node="{esc(node.name)}" x="{x - 32}" '
                       f'y="{y - 18}" width="64" height="36" rx="{rx}" fill="{fill}" '
                       'stroke="#345"/>')
        out.append(f'<text x="{x}" y="{y + 4}" text-anchor="middle" font-weight="bold">'
                   f'{esc(node.name)}</text>')
        under = node.kind + (" " + ", ".join(node.addresses[:2]) if node.addresses else "")
        out.append(f'<text x="{x}" y="{y + 38}" text-anchor="middle" fill="#444" '
                   f'font-size="11">{esc(under)}</text>')
    out.append("</svg>")
    return "\n".join(out)
