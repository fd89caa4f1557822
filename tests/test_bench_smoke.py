"""Each bench's ``--quick`` mode runs in a subprocess and prints its table (a smoke run: the
figures are not checked against targets; tap_tcp only where root and TAP are available)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

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


def run_bench(name: str, *args: str, timeout: float = 120) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / name), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("machine: "), proc.stdout
    assert "load average before/after" in proc.stdout, proc.stdout
    return proc.stdout


def test_bench_sim_tcp_ns3_column_from_the_ns3_process(tmp_path: Path) -> None:
    """``--ns3-python`` runs bench/ns3_tcp.py's protocol in that interpreter: here a stand-in
    that answers every transfer in 0.5 s, so the ns-3 column and the ratio are known."""
    fake = tmp_path / "python"
    fake.write_text(f"#!{sys.executable}\n"
                    "import json, sys\n"
                    "print(json.dumps({'ready': True, 'version': 'ns-3 fake'}), flush=True)\n"
                    "for line in sys.stdin:\n"
                    "    req = json.loads(line)\n"
                    "    print(json.dumps({'bytes': req['size'], 'wall': 0.5}), flush=True)\n")
    fake.chmod(0o755)
    out = run_bench("sim_tcp.py", "--quick", "--only", "1500", "--loss", "0",
                    "--ns3-python", str(fake))
    assert "the same workload in ns-3 fake" in out, out
    row = next(ln for ln in out.splitlines() if ln.startswith("MTU 1500, loss 0 %")
               and ln.rstrip().endswith("x"))
    ours, theirs, ratio = row[len("MTU 1500, loss 0 %"):].split()
    assert float(theirs) == round(256 * 1024 / 0.5 / 1e6, 2)  # --quick: 256 KiB in 0.5 s
    r = float(ratio.rstrip("x"))  # (from the unrounded figures)
    assert abs(r - float(ours) / float(theirs)) <= 0.03 * r


def test_bench_sim_tcp_quick_prints_table_and_profile() -> None:
    out = run_bench("sim_tcp.py", "--quick", "--profile", "--top", "5")
    for row in ("MTU 1500, loss 0 %", "MTU 1500, loss 1 %", "MTU 9000, loss 0 %",
                "MTU 9000, loss 1 %"):
        line = next((ln for ln in out.splitlines() if ln.startswith(row)), None)
        assert line is not None, f"no row {row!r} in:\n{out}"
        # MB, MB/wall-s, frames/s, data segs/s, virtual s, retransmissions
        fields = line[len(row):].split()
        assert len(fields) == 6, line
        assert float(fields[1]) > 0 and float(fields[2].rstrip("k")) > 0, line
    assert re.search(r"target >= 50 MB/s at MTU 1500, no loss: measured [\d.]+ MB/s", out), out
    assert re.search(r"own time by area: .*stack/tcp \d+%", out), out
    assert re.search(r"ncalls\s+tottime", out), out


def test_bench_scale_quick_prints_table() -> None:
    out = run_bench("scale.py", "--quick")
    assert "200 concurrent TCP connections" in out, out
    figures = dict(re.findall(r"^(open all \(wall s\)|handshakes per wall-second|close all "
                              r"\(wall s\)|memory per idle connection end)\s+([\d.,]+)",
                              out, re.M))
    assert len(figures) == 4, out
    assert all(float(v.replace(",", "")) > 0 for v in figures.values()), figures


def tap_problem() -> str | None:
    sys.path.insert(0, str(ROOT))
    from bench.tap_tcp import environment_problem

    return environment_problem()


def test_bench_tap_tcp_quick_prints_table() -> None:
    problem = tap_problem()
    if problem:
        pytest.skip(f"bench/tap_tcp.py needs root and TAP: {problem}")
    out = run_bench("tap_tcp.py", "--quick", timeout=180)
    rows = {}
    for ln in out.splitlines():
        m = re.match(r"^(Linux -> Linux \(veth\)|Linux -> stacklab \(TAP\)|stacklab -> Linux "
                     r"\(TAP\))\s+(on|off|-)\s+([\d,.]+)\s+([\d.]+)$", ln)
        if m:
            rows[m[1], m[2]] = float(m[3].replace(",", ""))
    assert set(rows) == {("Linux -> Linux (veth)", "-"), ("Linux -> stacklab (TAP)", "on"),
                         ("Linux -> stacklab (TAP)", "off"), ("stacklab -> Linux (TAP)", "on"),
                         ("stacklab -> Linux (TAP)", "off")}, out
    assert all(v > 0 for v in rows.values()), rows
    # with offloads the kernel really handed over GSO super-frames and took merged ones
    m = re.search(r"offloads on: \d+ frames read, (\d+) of them GSO", out)
    assert m and int(m[1]) > 0, out
    m = re.search(r"(\d+) GSO super-frames carrying (\d+) segments", out)
    assert m and int(m[1]) > 0 and int(m[2]) > int(m[1]), out


def test_bench_lossy_linux_quick_prints_table() -> None:
    problem = tap_problem()
    if problem:
        pytest.skip(f"bench/lossy_linux.py needs root and TAP: {problem}")
    out = run_bench("lossy_linux.py", "--quick", timeout=240)
    rows = {}
    for ln in out.splitlines():
        # ... relay overruns, the relay's read lag each way, stacklab's thread CPU/wait
        m = re.match(r"^((?:Linux|stacklab) -> Linux, \w+)\s+(\d+)%\s+([\d.]+)\s+(\d+)\s+"
                     r"(\d+)/(\d+)\s+(\d+)/(\d+)\s+\d+\s+[\d.]+/\d+\s+[\d.]+/\d+\s+"
                     r"(?:-|[\d.]+/[\d.]+)$", ln)
        if m:
            rows[m[1], int(m[2])] = (float(m[3]), *map(int, m.groups()[3:]))
    assert {("Linux -> Linux, cubic", 0), ("Linux -> Linux, cubic", 5),
            ("stacklab -> Linux, cubic", 0), ("stacklab -> Linux, cubic", 5)} <= set(rows), out
    for (_, loss), (mbs, _retrans, lost_fwd, fwd, lost_back, back) in rows.items():
        assert mbs > 0
        if loss == 0:  # the clean path loses nothing on purpose
            assert lost_fwd == lost_back == 0
        else:  # the relay drops about 5 % of the frames it forwards, each way
            assert 0.02 < lost_fwd / fwd < 0.09, (lost_fwd, fwd)
            assert 0.01 < lost_back / back < 0.12, (lost_back, back)
    assert re.search(r"cubic: stacklab / Linux = [\d.]+ under loss", out), out
    assert re.search(r"clean-path ceiling \(best with no loss\): [\d.]+ MB/s", out), out


def test_bench_sim_topo_quick_with_an_ns3_stand_in(tmp_path: Path) -> None:
    """bench/sim_topo.py --quick: both topologies run on stacklab (checked inside: every byte
    of every flow, every echo reply), and with ``--ns3-python`` a stand-in for
    bench/ns3_topo.py that answers 1,000 frames in 0.5 s gives the ns-3 columns."""
    fake = tmp_path / "python"
    fake.write_text(f"#!{sys.executable}\n"
                    "import json, sys\n"
                    "print(json.dumps({'ready': True, 'version': 'ns-3 fake'}), flush=True)\n"
                    "for line in sys.stdin:\n"
                    "    print(json.dumps({'frames': 1000, 'wall': 0.5}), flush=True)\n")
    fake.chmod(0o755)
    out = run_bench("sim_topo.py", "--quick", "--ns3-python", str(fake), timeout=300)
    for workload in ("dumbbell, 4 flows", "ping, 40 hosts on 2 switches"):
        row = next((ln for ln in out.splitlines() if ln.startswith(workload)), None)
        assert row is not None, out
        assert "2.0k" in row.split()[-2:-1][0] and row.rstrip().endswith("x"), row
