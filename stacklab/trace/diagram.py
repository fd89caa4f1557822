"""Sequence diagrams drawn from a run's trace: in the terminal and as standalone SVG
(the HTML pages are :mod:`stacklab.report`).

A diagram has lifelines (node names, left to right) and rows in time order:

* :class:`Arrow` — a frame crossing from one lifeline to another (sent at ``t_send``, received at
  ``t_recv``; ``dropped`` when it never arrived, ``corrupted`` when a bit flipped on the way);
* :class:`Note` — something that happened on one lifeline (a TCP state change, a PMTU change...).

:func:`from_trace` builds the rows from trace events: ``link``/``deliver`` and ``link``/``drop``
events emitted by the simulator's links (details ``src``, ``dst``, ``sent``, ``label``,
``corrupt``) and ``tcp``/``state`` events (details ``new``) or any event carrying a ``note``
detail. Rows are in causal order: by time, and at equal times in the order things happened (a
frame is placed where it was *sent*, even when it is dropped or arrives much later).

:func:`follow_path` turns two end nodes that are not neighbours into the lifelines of the path
between them; :func:`limit_rows` cuts a long diagram and says so.
"""

from __future__ import annotations

import html
from collections import deque
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from .events import TraceEvent


@dataclass(slots=True)
class Arrow:
    t_send: float
    t_recv: float | None
    src: str
    dst: str
    label: str
    dropped: bool = False
    corrupted: bool = False
    order: int = field(default=0, compare=False)  # rank of the send among the trace's events

    @property
    def time(self) -> float:
        return self.t_send


@dataclass(slots=True)
class Note:
    time: float
    node: str
    text: str
    order: int = field(default=0, compare=False)


Row = Arrow | Note


def _note_text(ev: TraceEvent) -> str | None:
    d = ev.details
    if ev.layer == "tcp":
        if ev.event == "state":
            if d.get("new") == "LISTEN" and not str(d.get("conn", "")).endswith(":0"):
                # a connection born of a SYN passes through LISTEN as it is made: drawn there,
                # it would read as if the SYN put the server into LISTEN (SYN-RECEIVED follows)
                return None
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
    # a frame's send ("tx" event) ranks it: a drop is noted at the send, a delivery later, yet
    # both are placed where the frame was sent, in the order the frames were sent
    sends: dict[tuple[object, object, object, float], deque[int]] = {}
    for i, ev in enumerate(events):
        d = ev.details
        if ev.layer == "link" and ev.event == "tx":
            if ev.node in names and d.get("dst") in names:
                sends.setdefault((ev.node, d.get("dst"), d.get("summary"), ev.time),
                                 deque()).append(i)
            continue
        if start is not None and ev.time < start:
            continue
        if end is not None and ev.time > end:
            continue
        if ev.layer == "link" and ev.event in ("deliver", "drop") and "label" in d:
            src, dst = d.get("src"), d.get("dst")
            if src not in names or dst not in names:
                continue
            label = d["label"]
            sent = float(d.get("sent", ev.time))
            # a corrupted frame: ``corrupt`` is the summary it had when sent
            q = sends.get((src, dst, d.get("corrupt") or d.get("summary"), sent))
            order = q.popleft() if q else i
            if filter_label is not None and filter_label not in label:
                continue
            if kinds is not None and label_kind(label) not in kinds:
                continue
            if ev.event == "deliver":
                rows.append(Arrow(sent, ev.time, src, dst, label,
                                  corrupted=bool(d.get("corrupt")), order=order))
            else:
                rows.append(Arrow(sent, None, src, dst, label, dropped=True, order=order))
        elif notes and ev.node in names:
            text = _note_text(ev)
            if text is not None:
                rows.append(Note(ev.time, ev.node, text, order=i))
    rows.sort(key=lambda r: (r.time, r.order))
    return rows


def follow_path(lifelines: Sequence[str], links: Iterable[tuple[str, str]]
                ) -> tuple[list[str], str]:
    """The lifelines with the nodes between each two that are not neighbours filled in (the
    shortest path over ``links``, pairs of node names), and a note saying what was added ("" when
    nothing was). A pair with no path between them raises ValueError naming it."""
    adj: dict[str, list[str]] = {}
    for a, b in links:
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, []).append(a)
    out = [lifelines[0]]
    added: list[str] = []
    for a, b in zip(lifelines, lifelines[1:], strict=False):
        if b in adj.get(a, ()):
            out.append(b)
            continue
        prev: dict[str, str] = {a: a}
        todo = deque([a])
        while todo and b not in prev:
            n = todo.popleft()
            for m in adj.get(n, ()):
                if m not in prev:
                    prev[m] = n
                    todo.append(m)
        if b not in prev:
            raise ValueError(f"{a} and {b} are not connected: no path joins them")
        path = [b]
        while path[-1] != a:
            path.append(prev[path[-1]])
        middle = [n for n in reversed(path[1:-1]) if n not in out and n not in lifelines]
        added += middle
        out += [*middle, b]
    note = ""
    if added:
        note = (f"{', '.join(lifelines)} are not all neighbours: the diagram follows the path "
                f"{', '.join(out)} (frames are drawn hop by hop)")
    return out, note


def limit_rows(rows: list[Row], limit: int) -> tuple[list[Row], str]:
    """The first ``limit`` rows (all when ``limit`` is 0) and a note saying how many were left
    out ("" when none were)."""
    if limit <= 0 or len(rows) <= limit:
        return rows, ""
    last = rows[limit - 1].time
    return rows[:limit], (f"... {len(rows) - limit} more rows after t={last:.6f} s not shown "
                          f"(of {len(rows)}; --limit 0 shows all)")


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
            shaft = "~" if row.corrupted else "-"  # a damaged frame: a wavy shaft
            for x in range(lo + 1, hi):
                line[x] = shaft
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
            label = f"{row.label} (corrupted)" if row.corrupted else row.label
            text = label if len(label) <= room else label[: max(0, room - 1)] + "~"
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
_LEFT = 90  # the timestamp column is left of this
_COLW = 260
_CHAR = 7.2  # advance of a 12 px monospace character (0.6 em)
PAGE_WIDTH = 1200  # the HTML reports' diagrams: full page width


def page_col_width(lifelines: int, page: int = PAGE_WIDTH) -> int:
    """The ``col_width`` that makes :func:`render_svg` ``page`` pixels wide (at least the default
    260): the lifelines spread out rather than the text growing."""
    return max(_COLW, (page - _LEFT - 120) // max(1, lifelines - 1))


def _fit(text: str, room: float) -> str:
    """``text`` cut to ``room`` pixels of 12 px monospace, ending in "…" when cut."""
    most = max(1, int(room // _CHAR))
    return text if len(text) <= most else text[: most - 1] + "…"


def _text(x: float, y: float, text: str, shown: str, attrs: str = "") -> str:
    """A centred <text>; a cut one carries the whole text as its tooltip (<title>)."""
    tip = f"<title>{html.escape(text)}</title>" if shown != text else ""
    return f'<text x="{x}" y="{y}" text-anchor="middle"{attrs}>{tip}{html.escape(shown)}</text>'


def render_svg(rows: Sequence[Row], lifelines: Sequence[str], title: str = "",
               col_width: int = _COLW) -> str:
    """A standalone SVG document (opens in any browser); lifelines ``col_width`` apart. Labels
    are cut ("…", the whole text as tooltip) to stay between their lifelines, notes to stay
    between the timestamp column and the right edge."""
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
            shown = _fit(row.text, width - 4 - _LEFT - 12)
            w = round(_CHAR * len(shown) + 12, 1)
            xn = round(min(max(col[row.node], _LEFT + w / 2), width - 4 - w / 2), 1)
            parts.append(f'<rect x="{round(xn - w / 2, 1)}" y="{y - 10}" width="{w}" height="18" '
                         'rx="4" fill="#fff3c4" stroke="#c9a400"/>')
            parts.append(_text(xn, y + 3, row.text, shown))
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
        elif row.corrupted:  # delivered damaged: dashed, red, said in the label
            parts.append(f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y2}" stroke="#b00" '
                         'stroke-width="1.5" stroke-dasharray="3,2" marker-end="url(#ah)"/>')
            color = "#b00"
        else:
            parts.append(f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y2}" stroke="#1f4e9a" '
                         'stroke-width="1.5" marker-end="url(#ah)"/>')
            color = "#111"
        label = f"{row.label} (corrupted)" if row.corrupted else row.label
        parts.append(_text((x1 + x2) / 2, y - 3, label, _fit(label, abs(x2 - x1) - 8),
                           f' fill="{color}"'))
    parts.append("</svg>")
    return "\n".join(parts)
