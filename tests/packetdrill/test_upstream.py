"""google/packetdrill's own TCP scripts, when a checkout is at hand (GPL-2.0: never copied into
this repository). ``PACKETDRILL_DIR=/path/to/packetdrill pytest tests/packetdrill`` checks the
"Done when" of CONFORMANCE.md: at least 95 % of ``gtests/net/tcp`` run to a verdict, and no
script crashes the runner or the stack."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stacklab.packetdrill.runner import run_script

ROOT = os.environ.get("PACKETDRILL_DIR")


@pytest.mark.skipif(not ROOT, reason="set PACKETDRILL_DIR to a google/packetdrill checkout")
def test_upstream_scripts_run_to_a_verdict() -> None:
    assert ROOT is not None
    scripts = sorted((Path(ROOT) / "gtests" / "net" / "tcp").rglob("*.pkt"))
    assert scripts, f"no scripts under {ROOT}/gtests/net/tcp"
    results = [run_script(p) for p in scripts]
    assert not [r.message for r in results if r.status == "ERROR"]
    assert not [r.message for r in results if "stacklab raised" in r.message]
    verdicts = sum(r.status in ("PASS", "FAIL") for r in results)
    assert verdicts >= 0.95 * len(results), f"{verdicts} of {len(results)}"
