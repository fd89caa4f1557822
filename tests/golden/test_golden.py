"""Golden test: the pcaps (SHA-256) and the counters of fixed scenarios are byte-identical to the
recorded ones in ``golden.json``. A refactor keeps them; a behaviour change updates them in a
commit that says why:

    STACKLAB_GOLDEN_UPDATE=1 python -m pytest tests/golden -q

The same hashes must come out of another process with another ``PYTHONHASHSEED``
(``test_golden_other_process``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .scenarios import SCENARIOS

GOLDEN = Path(__file__).with_name("golden.json")
UPDATE = os.environ.get("STACKLAB_GOLDEN_UPDATE") == "1"


def snapshot(name: str, directory: Path) -> dict[str, Any]:
    """What the golden file records for one scenario: pcap hashes and the counters."""
    counters = SCENARIOS[name](directory)
    pcaps = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(directory.glob("*.pcap"))}
    return {"pcaps": pcaps, "counters": json.loads(json.dumps(counters, sort_keys=True))}


def _recorded() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}


def _diff(want: Any, got: Any, path: str = "") -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict):
        out = []
        for k in sorted(set(want) | set(got)):
            out += _diff(want.get(k), got.get(k), f"{path}.{k}" if path else k)
        return out
    return [] if want == got else [f"{path}: recorded {want!r}, now {got!r}"]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden(name: str, tmp_path: Path) -> None:
    got = snapshot(name, tmp_path)
    assert got["pcaps"], "the scenario captured nothing"
    if UPDATE:
        data = _recorded()
        data[name] = got
        GOLDEN.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        return
    want = _recorded().get(name)
    assert want is not None, f"no golden record for {name}: run with STACKLAB_GOLDEN_UPDATE=1"
    differences = _diff(want, got)
    assert not differences, "golden mismatch:\n  " + "\n  ".join(differences[:20])


def test_golden_other_process(tmp_path: Path) -> None:
    """Same seed, same bytes in a fresh interpreter with a different hash seed."""
    names = sorted(SCENARIOS)
    code = ("import json, sys, pathlib; from tests.golden.test_golden import snapshot; "
            "print(json.dumps({n: snapshot(n, pathlib.Path(sys.argv[1]) / n) for n in "
            f"{names!r}}}))")
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONHASHSEED="12345", PYTHONPATH=str(root))
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=root, env=env,
                         capture_output=True, text=True, timeout=300, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    recorded = _recorded()
    for name in names:
        assert got[name]["pcaps"] == recorded[name]["pcaps"], name
