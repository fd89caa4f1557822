"""What a sweep shows: ``results.html`` (a figure per metric and app against the first swept
parameter, a line per value of the others, the mean over seeds with its 95 % confidence band),
drawn as inline SVG by hand, and the short summary table printed on the terminal."""

from __future__ import annotations

import html
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .grid import Param
from .table import text, typed

__all__ = ["METRICS", "Series", "series", "summary_rows", "svg_figure", "write_html"]

METRICS = {  # column -> axis title
    "goodput_bps": "goodput (bit/s)",
    "retransmits": "retransmissions",
    "rtt_ms": "RTT (ms)",
    "completion_s": "completion time (s, virtual)",
    "ok": "share of runs ok",
}
# Student's t, 97.5th percentile, by degrees of freedom (a 95 % two-sided interval)
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
          "#e377c2", "#7f7f7f", "#bcbd22"]


def t975(df: int) -> float:
    return _T975[df - 1] if df <= len(_T975) else 1.96


@dataclass
class Point:
    x: Any
    mean: float
    half: float  # half the width of the 95 % confidence interval (0 for one seed)
    n: int


@dataclass
class Series:
    name: str  # the other parameters' values, "k=v, k=v" (empty when there are none)
    points: list[Point]


def _stats(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, t975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


def _axis_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else (1, str(value))


def series(header: Sequence[str], cells: Sequence[Sequence[str]], x_key: str,
           others: Sequence[str], label: str, metric: str) -> list[Series]:
    """The lines of one figure: ``metric`` of the app ``label`` against the column ``x_key``, a
    line per combination of the columns ``others``, each point the mean over the seeds."""
    col = {name: i for i, name in enumerate(header)}
    groups: dict[tuple[str, ...], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in cells:
        if row[col["entity"]] != "app" or row[col["label"]] != label:
            continue
        value = typed(row[col[metric]])
        if value is None:
            continue
        groups[tuple(row[col[k]] for k in others)][row[col[x_key]]].append(float(value))
    out = []
    for line, by_x in sorted(groups.items(), key=lambda g: [_axis_key(typed(v)) for v in g[0]]):
        points = [Point(typed(x), *_stats(v), len(v)) for x, v in by_x.items()]
        points.sort(key=lambda p: _axis_key(p.x))
        out.append(Series(", ".join(f"{k}={v}" for k, v in zip(others, line, strict=True)),
                          points))
    return out


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round ticks from at most ``lo`` to at least ``hi``."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def _fmt(v: float) -> str:
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.3g}"
    return f"{v:g}"


def svg_figure(title: str, x_title: str, y_title: str, lines: list[Series],
               width: int = 640, height: int = 360) -> str:
    """One figure as an ``<svg>`` element: lines with their confidence bands, axes, legend."""
    named = [s for s in lines if s.name]
    left, right, top, bottom = 70, 20, 30, 50
    pw, ph = width - left - right, height - top - bottom
    height += 14 * len(named)  # the legend, under the plot
    xs = sorted({p.x for s in lines for p in s.points}, key=_axis_key)
    numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x in xs)
    if numeric:
        xlo, xhi = float(min(xs)), float(max(xs))
        if xhi == xlo:
            xlo, xhi = xlo - 1, xhi + 1
        xticks = [t for t in _ticks(xlo, xhi) if xlo - 1e-12 <= t <= xhi + 1e-12]

        def sx(x: Any) -> float:
            return left + (float(x) - xlo) / (xhi - xlo) * pw
    else:
        slot = {x: i for i, x in enumerate(xs)}

        def sx(x: Any) -> float:
            return left + (slot[x] + 0.5) / len(xs) * pw
    # every metric here is >= 0: a band is not drawn below 0
    lows = [max(0.0, p.mean - p.half) for s in lines for p in s.points]
    highs = [p.mean + p.half for s in lines for p in s.points]
    ylo, yhi = min(0.0, *lows), max(highs)
    yticks = _ticks(ylo, yhi)
    ylo, yhi = min(ylo, yticks[0]), max(yhi, yticks[-1])
    if yhi == ylo:
        yhi = ylo + 1

    def sy(y: float) -> float:
        return top + ph - (y - ylo) / (yhi - ylo) * ph

    e = html.escape
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="13">{e(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for t in yticks:
        y = sy(t)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="#eee"/><text x="{left - 5}" y="{y + 4:.1f}" '
                   f'text-anchor="end">{_fmt(t)}</text>')
    for t in (xticks if numeric else xs):
        x = sx(t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + ph}" y2="{top + ph + 4}" '
                   f'stroke="#999"/><text x="{x:.1f}" y="{top + ph + 16}" '
                   f'text-anchor="middle">{e(_fmt(t) if numeric else str(t))}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{top + ph + 36}" text-anchor="middle">'
               f'{e(x_title)}</text>')
    out.append(f'<text transform="translate(16 {top + ph / 2}) rotate(-90)" '
               f'text-anchor="middle">{e(y_title)}</text>')
    for i, s in enumerate(lines):
        color = COLORS[i % len(COLORS)]
        pts = s.points
        if any(p.half for p in pts):
            band = [f"{sx(p.x):.1f},{sy(p.mean + p.half):.1f}" for p in pts]
            band += [f"{sx(p.x):.1f},{sy(max(0.0, p.mean - p.half)):.1f}"
                     for p in reversed(pts)]
            out.append(f'<polygon points="{" ".join(band)}" fill="{color}" '
                       f'fill-opacity="0.18" stroke="none"/>')
        line = " ".join(f"{sx(p.x):.1f},{sy(p.mean):.1f}" for p in pts)
        out.append(f'<polyline points="{line}" fill="none" stroke="{color}" '
                   f'stroke-width="1.8"/>')
        for p in pts:
            tip = f"{s.name + ': ' if s.name else ''}{x_title}={p.x}: mean {p.mean:.6g}" + (
                f" ± {p.half:.3g} (95 %, {p.n} seeds)" if p.n > 1 else " (1 seed)")
            out.append(f'<circle cx="{sx(p.x):.1f}" cy="{sy(p.mean):.1f}" r="2.5" '
                       f'fill="{color}"><title>{e(tip)}</title></circle>')
        if s.name:
            y = top + ph + bottom + 10 + 14 * named.index(s)
            out.append(f'<rect x="{left + 8}" y="{y - 8}" width="10" height="3" '
                       f'fill="{color}"/><text x="{left + 22}" y="{y - 4}">{e(s.name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def app_labels(header: Sequence[str], cells: Sequence[Sequence[str]]) -> list[str]:
    col = {name: i for i, name in enumerate(header)}
    seen: dict[str, None] = {}
    for row in cells:
        if row[col["entity"]] == "app":
            seen.setdefault(row[col["label"]])
    return list(seen)


def write_html(path: str, scenario: str, params: Sequence[Param], seeds: int, zipped: bool,
               header: Sequence[str], cells: Sequence[Sequence[str]]) -> None:
    """The page of a sweep of ``scenario`` over ``params`` with ``seeds`` seeds per point."""
    keys = [p.key for p in params]
    # the x axis: the first key that takes several values; a line per value of the others (none
    # when zipped: the keys move together)
    varying = [p.key for p in params if len(p.values) > 1] or keys[:1]
    x_title = varying[0] if varying else "seed"
    others = [] if zipped else varying[1:]
    col = {name: i for i, name in enumerate(header)}
    figures = []
    for label in app_labels(header, cells):
        for metric, y_title in METRICS.items():
            lines = series(header, cells, x_title, others, label, metric)
            if not lines or (metric != "ok" and all(p.mean == 0 for s in lines
                                                    for p in s.points)):
                continue  # nothing to see: an app without this figure, or all zero
            figures.append(f"<figure>{svg_figure(f'{label}: {y_title}', x_title, y_title, lines)}"
                           "</figure>")
    failures = [row for row in cells if row[col["entity"]] == "run" and row[col["ok"]] == "false"]
    runs = len({row[0] for row in cells})
    e = html.escape
    swept = "".join(f"<li><code>{e(p.key)}</code>: {e(', '.join(map(text, p.values)))}</li>"
                    for p in params)
    fail_rows = "".join(
        f"<tr><td>{e(r[0])}</td><td>{e(r[1])}</td>"
        + "".join(f"<td>{e(r[col[k]])}</td>" for k in keys)
        + f"<td>{e(r[col['kind']])}</td><td>{e(r[col['error']])}</td></tr>"
        for r in failures[:50])
    fail_head = "".join(f"<th>{e(k)}</th>" for k in keys)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>stacklab sweep: {e(scenario)}</title>
<style>body{{font-family:sans-serif;margin:2em}} figure{{display:inline-block;margin:.5em}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:2px 6px}}</style>
</head><body>
<h1>stacklab sweep: {e(scenario)}</h1>
<p>{runs} runs, {seeds} seed(s) per point{', parameters zipped' if zipped else ''};
{len(failures)} failed. Lines: the mean over seeds; bands: its 95 % confidence interval
(Student's t). Table: <a href="results.csv">results.csv</a>.</p>
<ul>{swept}</ul>
{''.join(figures) or '<p>No figure: no app reported a figure.</p>'}
{f'<h2>Failed runs</h2><table><tr><th>run</th><th>seed</th>{fail_head}<th>why</th>'
 f'<th>error</th></tr>{fail_rows}</table>' if failures else ''}
</body></html>
"""
    with open(path, "w", encoding="utf-8") as fp:
        fp.write(page)


def summary_rows(header: Sequence[str], cells: Sequence[Sequence[str]], keys: Sequence[str],
                 limit: int = 20) -> tuple[list[str], list[list[str]], int]:
    """The terminal's summary: per point of the grid and app, the runs, how many were ok, and
    the means over seeds; at most ``limit`` rows (and how many were left out)."""
    col = {name: i for i, name in enumerate(header)}
    groups: dict[tuple[str, ...], list[Sequence[str]]] = defaultdict(list)
    order: list[tuple[str, ...]] = []
    for row in cells:
        if row[col["entity"]] == "connection":
            continue
        k = (*(row[col[k]] for k in keys), row[col["label"]] or row[col["kind"]])
        if k not in groups:
            order.append(k)
        groups[k].append(row)
    head = [*keys, "app", "runs", "ok", *(m for m in METRICS if m != "ok")]
    out = []
    for k in order[:limit]:
        rows = groups[k]
        means = []
        for m in METRICS:
            if m == "ok":
                continue
            vals = [float(v) for r in rows if (v := typed(r[col[m]])) is not None]
            means.append(f"{statistics.fmean(vals):.4g}" if vals else "")
        ok = sum(r[col["ok"]] == "true" for r in rows)
        out.append([*k, str(len(rows)), str(ok), *means])
    return head, out, max(0, len(order) - limit)
