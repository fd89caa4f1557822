"""A small hand-written SVG chart: axes with round ticks, and series drawn as one ``<path>`` each.

    chart = Chart("cwnd", x_label="virtual time (s)", y_label="bytes")
    chart.step("cwnd", [(0.0, 14480), (1.2, 7240)], color="#1f4e9a")
    chart.marks("RTO", [(2.0, 7240)], color="#b00")
    svg = chart.render()

Kinds of series: ``line`` (points joined), ``step`` (held until the next point, as cwnd is),
``bars`` (vertical segments ``(x, y0, y1)``: segments of a time-sequence graph) and ``marks``
(small crosses). Every series is one ``<path class="series">`` carrying ``data-label`` and
``data-points`` (how many points it draws), which the browser test reads back.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["Chart", "nice_ticks"]

PALETTE = ("#1f4e9a", "#c0392b", "#2e8b57", "#d4a017", "#8e44ad", "#e67e22", "#16a085",
           "#7f8c8d")


def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """About ``n`` round tick values covering [lo, hi] (1, 2, 5 times a power of ten)."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0]
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks = [round(first, 12)]
    while ticks[-1] < hi - step * 1e-9:  # the last tick is at or above hi
        ticks.append(round(first + len(ticks) * step, 12))
    return ticks


def _fmt(v: float) -> str:
    """A tick label: 1.5, 20, 3k, 1.2M."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e4:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


@dataclass
class _Series:
    label: str
    kind: str  # "line" | "step" | "bars" | "marks"
    points: Sequence[tuple[float, ...]]
    color: str
    width: float = 1.5


@dataclass
class Chart:
    title: str
    x_label: str = "virtual time (s)"
    y_label: str = ""
    width: int = 900
    height: int = 320
    series: list[_Series] = field(default_factory=list)

    def _add(self, label: str, kind: str, points: Sequence[tuple[float, ...]],
             color: str | None, width: float) -> None:
        self.series.append(_Series(label, kind, list(points),
                                   color or PALETTE[len(self.series) % len(PALETTE)], width))

    def line(self, label: str, points: Sequence[tuple[float, float]], color: str | None = None,
             width: float = 1.5) -> None:
        self._add(label, "line", points, color, width)

    def step(self, label: str, points: Sequence[tuple[float, float]], color: str | None = None,
             width: float = 1.5) -> None:
        self._add(label, "step", points, color, width)

    def bars(self, label: str, bars: Sequence[tuple[float, float, float]],
             color: str | None = None, width: float = 1.5) -> None:
        self._add(label, "bars", bars, color, width)

    def marks(self, label: str, points: Sequence[tuple[float, float]], color: str | None = None,
              width: float = 1.5) -> None:
        self._add(label, "marks", points, color, width)

    def render(self) -> str:
        """A standalone ``<svg>`` element (it scales to its container: width 100 %)."""
        esc = html.escape
        left, right, top, bottom = 70, 20, 50, 44
        w, h = self.width, self.height
        pw, ph = w - left - right, h - top - bottom
        xs = [p[0] for s in self.series for p in s.points]
        ys = [v for s in self.series for p in s.points for v in p[1:]]
        x_lo, x_hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
        y_lo, y_hi = (min(0.0, min(ys)), max(ys)) if ys else (0.0, 1.0)
        xt, yt = nice_ticks(x_lo, x_hi), nice_ticks(y_lo, y_hi, 5)
        x_lo, x_hi, y_lo, y_hi = xt[0], max(xt[-1], x_lo + 1e-9), yt[0], max(yt[-1], y_lo + 1e-9)

        def sx(x: float) -> float:
            return round(left + (x - x_lo) / (x_hi - x_lo) * pw, 2)

        def sy(y: float) -> float:
            return round(top + ph - (y - y_lo) / (y_hi - y_lo) * ph, 2)

        out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 {w} {h}" '
               f'width="100%" font-family="sans-serif" font-size="12" role="img" '
               f'aria-label="{esc(self.title)}">',
               f'<rect width="{w}" height="{h}" fill="white"/>',
               f'<text x="{left}" y="20" font-size="14" font-weight="bold">'
               f'{esc(self.title)}</text>']
        for t in xt:
            out.append(f'<line x1="{sx(t)}" y1="{top}" x2="{sx(t)}" y2="{top + ph}" '
                       'stroke="#eee"/>')
            out.append(f'<text x="{sx(t)}" y="{top + ph + 16}" text-anchor="middle" '
                       f'fill="#444">{_fmt(t)}</text>')
        for t in yt:
            out.append(f'<line x1="{left}" y1="{sy(t)}" x2="{left + pw}" y2="{sy(t)}" '
                       'stroke="#eee"/>')
            out.append(f'<text x="{left - 6}" y="{sy(t) + 4}" text-anchor="end" '
                       f'fill="#444">{_fmt(t)}</text>')
        out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" '
                   'stroke="#888"/>')
        out.append(f'<text x="{left + pw / 2}" y="{h - 8}" text-anchor="middle">'
                   f'{esc(self.x_label)}</text>')
        out.append(f'<text transform="translate(14,{top + ph / 2}) rotate(-90)" '
                   f'text-anchor="middle">{esc(self.y_label)}</text>')
        for s in self.series:
            d = self._path(s, sx, sy, x_hi)
            out.append(f'<path class="series" data-label="{esc(s.label)}" '
                       f'data-points="{len(s.points)}" d="{d}" fill="none" '
                       f'stroke="{s.color}" stroke-width="{s.width}"/>')
        lx = left
        for s in self.series:  # the legend, along the top edge of the plot area
            out.append(f'<rect x="{lx}" y="{top - 14}" width="12" height="3" fill="{s.color}"/>')
            out.append(f'<text x="{lx + 16}" y="{top - 9}" fill="#222">{esc(s.label)}</text>')
            lx += 28 + 7 * len(s.label)
        out.append("</svg>")
        return "\n".join(out)

    @staticmethod
    def _path(s: _Series, fx: Callable[[float], float], fy: Callable[[float], float],
              x_end: float) -> str:
        pts = s.points
        parts: list[str] = []
        if s.kind == "bars":  # (x, y0, y1)
            for p in pts:
                parts.append(f"M{fx(p[0])},{fy(p[1])}V{fy(p[2])}")
        elif s.kind == "marks":
            for p in pts:
                px, py = fx(p[0]), fy(p[1])
                parts.append(f"M{px - 4:g},{py - 4:g}l8,8m0,-8l-8,8")
        elif pts:
            parts.append(f"M{fx(pts[0][0])},{fy(pts[0][1])}")
            for p in pts[1:]:
                if s.kind == "step":
                    parts.append(f"H{fx(p[0])}V{fy(p[1])}")
                else:
                    parts.append(f"L{fx(p[0])},{fy(p[1])}")
            if s.kind == "step":
                parts.append(f"H{fx(x_end)}")
        return "".join(parts)
