"""The services chapter (stacklab/tour/steps_services.py): NAT and multicast, as measured."""

from __future__ import annotations

import functools

from rich.cells import cell_len

from stacklab.tour import runner


@functools.cache
def result(name: str) -> runner.StepResult:
    return runner.run_step(name, runner.StepContext())


def test_chapter_fits_80_columns_in_both_languages():
    for name in ("home-nat", "multicast-stream"):
        res = result(name)
        assert res.diagram and res.svg.startswith("<svg")
        for lang in ("en", "ko"):
            text = runner.render_step(name, res, lang, 1, 2)
            assert not [ln for ln in text.splitlines() if cell_len(ln) > 80]


def test_home_nat_facts():
    r = result("home-nat")
    assert r["peer"].startswith(r["outside"] + ":") and r["local"].startswith("10.0.1.1:")
    assert r["port kept"] and r["echo"]
    assert r["isp route"] is False
    assert r["tracked"] == 1
    assert r["hops"] == ["10.0.1.2", "10.0.2.2", "10.0.3.2"]
    assert r["icmp translated"] >= 2
    assert "SNAT 10.0.1.1:" in r.diagram


def test_multicast_facts():
    r = result("multicast-stream")
    assert r["mac"] == "01:00:5e:01:02:03" and r["ttl"] == 1
    assert r["received"] == 10 and r["flooded"] == 10 and r["printer kept"] == 0
    assert r["members"] == ["239.1.2.3"] and r["after"] == "none"
    assert r["reports"] >= 3  # two on join, the answer to the query (and the leave)
    assert "IGMPv3 report 239.1.2.3" in r.diagram
