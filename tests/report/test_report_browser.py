"""``stacklab run FILE --html`` opened in headless Chromium: the plots are drawn (their paths have
a size on the page), the topology and the diagram are there, the TOC links resolve, the pcap links
point at the files, no console error; the screenshot has ink where the page has content."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .headless import load

ROOT = Path(__file__).resolve().parents[2]

_spec = importlib.util.spec_from_file_location("_png", ROOT / "tests/tour/test_cli_html.py")
assert _spec is not None and _spec.loader is not None
_png = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_png)

PAGE_FACTS = """(() => {
  const box = el => { const b = el.getBoundingClientRect(); return [b.width, b.height]; };
  const plots = [...document.querySelectorAll('svg.plot')].map(svg => ({
    title: svg.getAttribute('aria-label'),
    series: Object.fromEntries([...svg.querySelectorAll('path.series')].map(p =>
      [p.dataset.label, {points: +p.dataset.points, box: box(p), length: p.getTotalLength()}]))
  }));
  return {
    plots,
    nodes: [...document.querySelectorAll('svg.topology .node')].map(n => n.dataset.node),
    topology: box(document.querySelector('svg.topology')),
    diagrams: [...document.querySelectorAll('svg.diagram')].map(box),
    toc: [...document.querySelectorAll('nav a')].map(a => a.getAttribute('href')),
    anchors: [...document.querySelectorAll('section[id]')].map(s => '#' + s.id),
    pcaps: [...document.querySelectorAll('ul.files a')].map(a => a.getAttribute('href')),
    rows: document.querySelectorAll('table.results tbody tr').length,
  };
})()"""


def stacklab(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "stacklab", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def lossy(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("report")
    page = tmp / "out" / "report.html"
    page.parent.mkdir()
    p = stacklab("run", "examples/lossy-tcp.toml", "--html", str(page), "--pcap", str(tmp / "pcap"))
    assert p.returncode == 0, p.stderr
    return tmp, page, load(page, tmp, PAGE_FACTS, width=1250, height=2400)


def _plot(facts, word: str):
    found = [p for p in facts["plots"] if word in p["title"] and "client" in p["title"]]
    assert found, f"no {word} plot in {[p['title'] for p in facts['plots']]}"
    return found[0]["series"]


def drawn(series, name: str, at_least: int) -> None:
    s = series[name]
    assert s["points"] >= at_least, (name, s)
    assert s["length"] > 0 and max(s["box"]) > 50, (name, s)  # the browser drew it


def test_plots_are_drawn_from_the_connection(lossy):
    _tmp, _page, got = lossy
    assert got.errors == []
    facts = got.value
    cwnd = _plot(facts, "cwnd")
    drawn(cwnd, "cwnd", 50)
    drawn(cwnd, "ssthresh", 10)
    rtt = _plot(facts, "RTT")
    drawn(rtt, "SRTT", 100)
    drawn(rtt, "RTO", 100)
    tseq = _plot(facts, "time–sequence")
    drawn(tseq, "sent", 600)
    drawn(tseq, "retransmitted", 20)  # the run resends 26 segments
    drawn(tseq, "SACK", 20)
    drawn(tseq, "ACK", 300)
    drawn(tseq, "window", 300)
    goodput = next(p for p in facts["plots"] if p["title"] == "goodput per flow")["series"]
    drawn(goodput, "client 10.0.1.1:56685>10.0.2.2:5001", 20)


def test_toc_topology_diagram_and_pcap_links(lossy):
    tmp, page, got = lossy
    facts = got.value
    assert facts["nodes"] == ["client", "r1", "server"]
    assert facts["topology"][0] > 300
    assert len(facts["diagrams"]) == 1 and facts["diagrams"][0][0] > 1000  # full width
    assert facts["toc"] == facts["anchors"] and "#results" in facts["toc"]
    assert facts["rows"] > 10
    assert sorted(facts["pcaps"]) == ["../pcap/client-r1.pcap", "../pcap/r1-server.pcap"]
    for href in facts["pcaps"]:
        assert (page.parent / href).resolve().stat().st_size > 10_000


def test_screenshot_has_ink(lossy):
    _tmp, _page, got = lossy
    width, height, rows, bpp = _png.read_png(got.png)
    assert (width, height) == (1250, 2400)
    assert _png.ink(rows, bpp, 0, width, 0, 200) > 2000  # title and contents
    assert _png.ink(rows, bpp, 0, width, 1200, 2400) > 20000  # tables and the diagram


def test_the_checker_sees_console_errors_and_empty_plots(tmp_path):
    """The test above can fail: an error in the page and a plot with nothing drawn show up."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><svg class='plot' aria-label='client cwnd'>"
                    "<path class='series' data-label='cwnd' data-points='0' d=''/></svg>"
                    "<img src='missing.png'><script>console.error('boom')</script></body></html>")
    got = load(page, tmp_path, PAGE_FACTS.replace("box(document.querySelector('svg.topology'))",
                                                  "null"))
    assert any("boom" in e for e in got.errors)
    assert any("missing.png" in e or "ERR_FILE_NOT_FOUND" in e for e in got.errors), got.errors
    with pytest.raises(AssertionError):
        drawn(_plot(got.value, "cwnd"), "cwnd", 1)
