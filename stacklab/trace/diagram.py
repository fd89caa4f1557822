"""Sequence diagrams drawn from a run's trace: in the terminal and as standalone SVG
(the HTML pages are :mod:`stacklab.report`).

A diagram has lifelines (node names, left to right) and rows in time order:

* :class:`Arrow` — a frame crossing from one lifeline to another (sent at ``t_send``, received at
  ``t_recv``; ``dropped`` when it never arrived);
* :class:`Note` — something that happened on one lifeline (a TCP state change, a PMTU change...).

:func:`from_trace` builds the rows from trace events: ``link``/``deliver`` and ``link``/``drop``
events emitted by the simulator's links (details ``src``, ``dst``, ``sent``, ``label``) and
``tcp``/``state`` events (details ``new``) or any event carrying a ``note`` detail.
"""

from __future__ import annotations

import html
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from .events import TraceEvent


@dataclass(slots=True)
class Arrow:
    t_send: float
    t_recv: float | None
    src: str
    dst: str
    label: str
    dropped: bool = False

    @property
    def time(self) -> float:
        return self.t_send


@dataclass(slots=True)
class Note:
    time: float
    node: str
    text: str


Row = Arrow | Note


def _note_text(ev: TraceEvent) -> str | None:
    d = ev.details
    if ev.layer == "tcp":
        if ev.event == "state":
            return str(d.get("new"))
        if ev.event == "rto":
            return "RTO"
        if ev.event == "pmtu" and d.get("mss") != d.get("old_mss"):
            return f"MSS {d.get('mss')}"
    elif ev.layer == "pmtu" and ev.event == "pmtu":
        return f"PMTU {d.get('mtu')}"
    if "note" in d:
        return str(d["note"])
    return None


def from_trace(events: Iterable[TraceEvent], lifelines: Sequence[str],
               start: float | None = None, end: float | None = None,
               filter_label: str | None = None, kinds: Collection[str] | None = None,
               notes: bool = True) -> list[Row]:
    """Rows for ``lifelines`` (frames between two of them, notes on any of them), by time.

    ``kinds`` keeps only the frames whose label is of those kinds (see
    :func:`stacklab.trace.label.label_kind`: "tcp", "udp", "arp", "icmp"...); notes are TCP state
    changes, RTO firings, MSS and PMTU changes and any event with a ``note`` detail.
    """
    from .label import label_kind

    names = set(lifelines)
    rows: list[Row] = []
    for ev in events:
        if start is not None and ev.time < start:
            continue
        if end is not None and ev.time > end:
            continue
        d = ev.details
        if ev.layer == "link" and ev.event in ("deliver", "drop") and "label" in d:
            src, dst = d.get("src"), d.get("dst")
            if src not in names or dst not in names:
                continue
            label = d["label"]
            if filter_label is not None and filter_label not in label:
                continue
            if kinds is not None and label_kind(label) not in kinds:
                continue
            if ev.event == "deliver":
                rows.append(Arrow(d.get("sent", ev.time), ev.time, src, dst, label))
            else:
                rows.append(Arrow(ev.time, None, src, dst, label, dropped=True))
        elif notes and ev.node in names:
            text = _note_text(ev)
            if text is not None:
                rows.append(Note(ev.time, ev.node, text))
    rows.sort(key=lambda r: r.time)
    return rows


# -- terminal ---------------------------------------------------------------------------------

def render_text(rows: Sequence[Row], lifelines: Sequence[str], width: int = 80) -> str:
    """An ASCII sequence diagram no wider than ``width`` columns."""
    tcol = 11
    n = len(lifelines)
    if n < 2:
        raise ValueError("a sequence diagram needs at least two lifelines")
    span = width - tcol - 2
    xs = [tcol + 1 + (span * i) // (n - 1) for i in range(n)]
    col = {name: x for name, x in zip(lifelines, xs, strict=True)}

    def blank() -> list[str]:
        line = [" "] * width
        for x in xs:
            line[x] = "|"
        return line

    out: list[str] = []
    head = [" "] * width
    for name, x in col.items():
        label = name[: max(1, span // (n - 1) - 1)] if n > 1 else name
        start = min(max(0, x - len(label) // 2), width - len(label))
        head[start:start + len(label)] = label
    out.append("".join(head).rstrip())
    out.append("".join(blank()).rstrip())
    for row in rows:
        line = blank()
        stamp = f"{row.time:10.6f}"
        line[0:len(stamp)] = stamp
        if isinstance(row, Note):
            x = col[row.node]
            text = f"[{row.text}]"
            startx = min(max(tcol, x - len(text) // 2), width - len(text))
            line[startx:startx + len(text)] = text
        else:
            a, b = col[row.src], col[row.dst]
            lo, hi = min(a, b), max(a, b)
            for x in range(lo + 1, hi):
                line[x] = "-"
            if row.dropped:
                mid = (lo + hi) // 2
                for x in range(mid, hi) if a < b else range(lo + 1, mid + 1):
                    line[x] = " "
                line[mid] = "X"
            elif a < b:
                line[hi - 1] = ">"
            else:
                line[lo + 1] = "<"
            room = hi - lo - 4
            text = row.label if len(row.label) <= room else row.label[: max(0, room - 1)] + "~"
            if text and room > 0:
                if row.dropped:
                    cstart = lo + 2 if a < b else (lo + hi) // 2 + 2
                    text = text[: max(0, (hi - lo) // 2 - 3)]
                else:
                    cstart = lo + 2 + (room - len(text)) // 2
                line[cstart:cstart + len(text)] = text
        out.append("".join(line).rstrip())
    return "\n".join(out)


# -- SVG --------------------------------------------------------------------------------------

_ROW = 26
_TOP = 50
_LEFT = 90
_COLW = 260


def render_svg(rows: Sequence[Row], lifelines: Sequence[str], title: str = "",
               col_width: int = _COLW) -> str:
    """A standalone SVG document (opens in any browser); lifelines ``col_width`` apart."""
    n = len(lifelines)
    width = _LEFT + col_width * (n - 1) + 120
    height = _TOP + _ROW * (len(rows) + 2) + (24 if title else 0)
    top = _TOP + (24 if title else 0)
    col = {name: _LEFT + 40 + col_width * i for i, name in enumerate(lifelines)}
    esc = html.escape
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="12">',
        "<defs><marker id='ah' markerWidth='10' markerHeight='8' refX='9' refY='4' "
        "orient='auto'><path d='M0,0 L10,4 L0,8 z' fill='#1f4e9a'/></marker></defs>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    if title:
        parts.append(f'<text x="10" y="22" font-size="15" font-weight="bold">{esc(title)}</text>')
    bottom = top + _ROW * (len(rows) + 1)
    for name, x in col.items():
        parts.append(f'<text x="{x}" y="{top - 14}" text-anchor="middle" font-weight="bold">'
                     f'{esc(name)}</text>')
        parts.append(f'<line x1="{x}" y1="{top - 6}" x2="{x}" y2="{bottom}" stroke="#888" '
                     'stroke-dasharray="4,3"/>')
    for i, row in enumerate(rows):
        y = top + _ROW * (i + 1)
        parts.append(f'<text x="6" y="{y + 4}" fill="#666">{row.time:.6f}</text>')
        if isinstance(row, Note):
            x = col[row.node]
            w = 8 * len(row.text) + 12
            parts.append(f'<rect x="{x - w / 2}" y="{y - 10}" width="{w}" height="18" rx="4" '
                         'fill="#fff3c4" stroke="#c9a400"/>')
            parts.append(f'<text x="{x}" y="{y + 3}" text-anchor="middle">{esc(row.text)}</text>')
            continue
        x1, x2 = col[row.src], col[row.dst]
        y2 = y + _ROW * 0.6
        if row.dropped:
            xm = (x1 + x2) / 2
            ym = (y + y2) / 2
            parts.append(f'<line x1="{x1}" y1="{y}" x2="{xm}" y2="{ym}" stroke="#b00" '
                         'stroke-width="1.5"/>')
            parts.append(f'<text x="{xm}" y="{ym + 5}" text-anchor="middle" fill="#b00" '
                         'font-size="15" font-weight="bold">✕</text>')
            color = "#b00"
        else:
            parts.append(f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y2}" stroke="#1f4e9a" '
                         'stroke-width="1.5" marker-end="url(#ah)"/>')
            color = "#111"
        parts.append(f'<text x="{(x1 + x2) / 2}" y="{y - 3}" text-anchor="middle" '
                     f'fill="{color}">{esc(row.label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
