"""Every own script under scripts/ passes against today's stack (each is a test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacklab.packetdrill.runner import run_script

SCRIPTS = sorted((Path(__file__).parent / "scripts").glob("*.pkt"))


def test_there_are_at_least_forty_scripts() -> None:
    assert len(SCRIPTS) >= 40


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_script_passes(path: Path) -> None:
    r = run_script(path)
    assert r.status == "PASS", r.message
    assert r.events > 0
