"""HTML pages: sections with anchors and a table of contents, tables, figures and file links.

Everything is inline (styles, SVG): one file that opens anywhere, with links to the pcaps beside
it. :class:`Page` is the builder; :func:`table` and :func:`file_links` make section bodies.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Page", "file_links", "table"]

_STYLE = """
body{font-family:sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}
nav{background:#f6f8fa;border:1px solid #ddd;padding:.5em 1.5em;margin-bottom:2em}
nav ol{margin:.3em 0;padding-left:1.5em} nav li{margin:.15em 0}
section{margin-bottom:2.5em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em}
table.results{border-collapse:collapse;margin:.6em 0;font-size:.9em}
table.results th,table.results td{border:1px solid #ccc;padding:.2em .6em;text-align:left;
vertical-align:top}
table.results th{background:#f0f3f7} td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0} figure svg{border:1px solid #ddd;display:block}
svg.diagram{max-width:100%;height:auto}
pre{background:#f6f8fa;padding:.6em;overflow-x:auto;font-size:.85em}
.ok{color:#2e7d32;font-weight:bold} .fail{color:#c62828;font-weight:bold}
"""


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, raw: bool = False) -> str:
    """An HTML results table; numbers are right-aligned. ``raw``: cells are HTML already."""
    esc = html.escape
    out = ["<table class='results'><thead><tr>"
           + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead><tbody>"]
    for row in rows:
        cells = []
        for v in row:
            text = _cell(v) if raw else esc(_cell(v))
            cells.append(f"<td class='num'>{text}</td>" if _num(v) else f"<td>{text}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def file_links(paths: Iterable[str], base: str) -> str:
    """A list of links to ``paths``, relative to the directory ``base`` the page is in."""
    items = []
    for path in paths:
        rel = os.path.relpath(path, base).replace(os.sep, "/")
        size = os.path.getsize(path) if os.path.exists(path) else 0
        items.append(f"<li><a href='{html.escape(rel, quote=True)}'>{html.escape(rel)}</a> "
                     f"({size} bytes)</li>")
    return "<ul class='files'>" + "".join(items) + "</ul>" if items else "<p>none</p>"


def _slug(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    taken.add(slug)
    return slug


@dataclass
class _Section:
    anchor: str
    title: str
    body: str
    level: int


@dataclass
class Page:
    """A standalone HTML page: sections (h2, or h3 under the last h2) listed in a TOC."""

    title: str
    lang: str = "en"
    intro: str = ""
    sections: list[_Section] = field(default_factory=list)
    _taken: set[str] = field(default_factory=set)

    def add(self, title: str, body: str, level: int = 2) -> str:
        """Add a section whose ``body`` is HTML; returns its anchor."""
        anchor = _slug(title, self._taken)
        self.sections.append(_Section(anchor, title, body, level))
        return anchor

    def render(self) -> str:
        esc = html.escape
        toc = ["<nav><strong>Contents</strong><ol>"]
        depth = 2
        for s in self.sections:
            if s.level > depth:
                toc.append("<ol>")
            elif s.level < depth:
                toc.append("</ol>")
            depth = s.level
            toc.append(f"<li><a href='#{s.anchor}'>{esc(s.title)}</a></li>")
        toc.append("</ol>" * (depth - 1) + "</nav>")
        body = [f"<section id='{s.anchor}'><h{s.level}>{esc(s.title)}</h{s.level}>{s.body}"
                "</section>" for s in self.sections]
        intro = f"<p>{esc(self.intro)}</p>" if self.intro else ""
        return ("<!DOCTYPE html>\n"
                f"<html lang='{esc(self.lang)}'><head><meta charset='utf-8'>"
                "<meta name='viewport' content='width=device-width, initial-scale=1'>"
                f"<title>{esc(self.title)}</title><style>{_STYLE}</style></head><body>"
                f"<h1>{esc(self.title)}</h1>{intro}" + "".join(toc) + "\n"
                + "\n".join(body) + "\n</body></html>\n")
