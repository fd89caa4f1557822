"""The tour's SVG diagrams in the HTML report: full page width, and no label over the
timestamp column or past the edges (audit D16)."""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET

import pytest

from stacklab.tour import runner
from stacklab.trace.diagram import PAGE_WIDTH, Arrow, Note, render_svg

NS = "{http://www.w3.org/2000/svg}"
CHAR = 7.2  # a 12 px monospace character


@functools.cache
def svg(name: str) -> ET.Element:
    return ET.fromstring(runner.run_step(name, runner.StepContext()).svg)


def extents(root: ET.Element) -> tuple[float, list[tuple[float, float, str]]]:
    """The right edge of the timestamp column, and (left, right, text) of every centred text
    below the lifeline names (labels and notes)."""
    stamps, centred = [], []
    for t in root.iter(NS + "text"):
        text = "".join(t.itertext()).removeprefix(t.findtext(NS + "title") or "")
        x, size = float(t.get("x", 0)), float(t.get("font-size", 12))
        if t.get("fill") == "#666":
            stamps.append(x + len(text) * CHAR)
        elif t.get("text-anchor") == "middle" and size == 12 and t.get("font-weight") is None:
            half = len(text) * CHAR / 2
            centred.append((x - half, x + half, text))
    return max(stamps), centred


@pytest.mark.parametrize("name", runner.available())
def test_tour_diagrams_fill_the_page_and_keep_clear_of_the_time_column(name):
    root = svg(name)
    width = float(root.get("width", 0))
    assert width >= PAGE_WIDTH - 10
    time_edge, texts = extents(root)
    assert texts
    spill = [t for t in texts if t[0] < time_edge or t[1] > width]
    assert not spill, spill


def test_a_long_label_is_cut_and_keeps_its_whole_text_as_tooltip():
    """The FTP case of the audit: a 70-character reply between two neighbours' lifelines."""
    long = "len 62: 331 anonymous login ok, send your e-mail address as password"
    rows = [Arrow(1.035, 1.045, "a", "r", long), Note(1.05, "b", "a note " * 20)]
    root = ET.fromstring(render_svg(rows, ["a", "r", "b"]))
    time_edge, texts = extents(root)
    width = float(root.get("width", 0))
    assert all(time_edge <= left and right <= width for left, right, _ in texts)
    label = next(t for t in root.iter(NS + "text") if t.findtext(NS + "title") == long)
    assert "".join(label.itertext()).endswith("…")
