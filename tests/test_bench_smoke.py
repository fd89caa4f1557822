"""bench/wire.py --quick runs and prints its comparison table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_wire_quick_prints_table() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "wire.py"), "--quick"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(r"workload .*stacklab .*dpkt .*scapy .*x dpkt", out), out
    for workload in ("parse SYN+options", "parse ACK+TS", "parse data+TS", "build data"):
        line = next((ln for ln in out.splitlines() if ln.startswith(workload)), None)
        assert line is not None, f"no row for {workload!r} in:\n{out}"
        # stacklab, dpkt, scapy and struct rates (e.g. "123.4k"), then ratios
        rates = re.findall(r"(\d[\d,]*\.\d)k", line)
        assert len(rates) == 4, line
        assert all(float(r.replace(",", "")) > 0 for r in rates), line
