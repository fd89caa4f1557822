"""The tour's report (``stacklab tour --html DIR``): a table of contents, then per step its
explanation, the facts table the terminal prints, the sequence diagram at full width, the extra
output (ping lines, routes...) and links to the step's pcaps."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

from .page import Page, file_links, table

__all__ = ["TourStep", "tour_page"]


@dataclass
class TourStep:
    title: str
    explanation: str
    facts: list[tuple[str, str]] = field(default_factory=list)  # (label, text) rows
    svg: str = ""
    notes: list[str] = field(default_factory=list)
    pcaps: list[str] = field(default_factory=list)  # paths


def tour_page(steps: Sequence[TourStep], title: str, *, lang: str = "en",
              base: str = ".") -> str:
    """The page; pcap links are relative to ``base``, the directory the page is written to."""
    esc = html.escape
    page = Page(title, lang=lang)
    for step in steps:
        body = [f"<p>{esc(step.explanation)}</p>"]
        if step.facts:
            body.append(table(("", ""), step.facts).replace(
                "<thead><tr><th></th><th></th></tr></thead>", ""))
        if step.svg:
            body.append("<figure>" + step.svg.replace("<svg ", "<svg class='diagram' ", 1)
                        + "</figure>")
        if step.notes:
            body.append("<pre>" + esc("\n".join(step.notes)) + "</pre>")
        if step.pcaps:
            body.append(file_links(step.pcaps, base))
        page.add(step.title, "".join(body))
    return page.render()
