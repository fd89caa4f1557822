"""The scenarios in examples/ run and show what their comments promise."""

from __future__ import annotations

import pathlib

import pytest

from stacklab.scenario.runner import load_scenario, run_scenario

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def apps_by(summary, kind, node):
    return [a for a in summary["apps"] if a["kind"] == kind and a["node"] == node]


def test_there_are_examples_and_they_load():
    files = sorted(EXAMPLES.glob("*.toml"))
    assert len(files) >= 3
    for f in files:
        scn = load_scenario(f)
        assert scn.name and scn.apps


def test_ping_example():
    s = run_scenario(EXAMPLES / "ping.toml")
    assert [a["ok"] for a in s["apps"]] == [True, True]
    assert s["links"]["r-b"]["r>b"].get("drop.loss", 0) + s["links"]["r-b"]["b>r"].get(
        "drop.loss", 0) >= 1  # 5 % loss shows in the counters


def test_lossy_tcp_example(tmp_path):
    s = run_scenario(EXAMPLES / "lossy-tcp.toml", pcap=str(tmp_path / "one"))
    (send,) = apps_by(s, "tcp-send", "client")
    (sink,) = apps_by(s, "tcp-sink", "server")
    assert send["ok"] and sink["ok"]
    assert send["bytes"] == sink["bytes"] == 1_000_000
    assert send["sha256"] == sink["sha256"]
    path = s["links"]["r1-server"]
    drops = {k: v for d in path.values() for k, v in d.items() if k.startswith("drop.")}
    assert drops.get("drop.loss", 0) > 0
    assert sum(d.get("corrupt", 0) for d in path.values()) > 0
    client_conns = [c for c in s["connections"] if c["node"] == "client"]
    assert client_conns and client_conns[0]["states"][:2] == ["SYN-SENT", "ESTABLISHED"]
    assert client_conns[0]["retransmits"] > 0
    # determinism on a realistic run: same seed, same pcap bytes
    run_scenario(EXAMPLES / "lossy-tcp.toml", pcap=str(tmp_path / "two"))
    for f in (tmp_path / "one").iterdir():
        assert f.read_bytes() == (tmp_path / "two" / f.name).read_bytes()


def test_pmtu_blackhole_example():
    s = run_scenario(EXAMPLES / "pmtu-blackhole.toml")
    (c1,) = apps_by(s, "tcp-send", "c1")
    (c2,) = apps_by(s, "tcp-send", "c2")
    assert c1["ok"] and c1["bytes"] == 200_000
    # c2 never hears "fragmentation needed": it gets through only after black-hole detection
    # (timeouts, then smaller probes), much later and with more retransmissions than c1
    assert c2["ok"] and c2["bytes"] == 200_000
    assert c2["elapsed"] > 3 * c1["elapsed"]
    assert c2["retransmits"] > c1["retransmits"]
    assert s["links"]["c2-r1"]["r1>c2"]["drop.icmp_blackhole"] > 0
    assert "drop.icmp_blackhole" not in s["links"]["c1-r1"]["r1>c1"]
    (ping,) = apps_by(s, "ping", "c1")
    assert ping["ok"]


def test_switched_lan_example():
    s = run_scenario(EXAMPLES / "switched-lan.toml")
    assert all(a["ok"] for a in s["apps"]), [a for a in s["apps"] if not a["ok"]]
    sw = s["nodes"]["sw"]["counters"]
    assert sw["switch.flood.broadcast"] > 0 and sw["switch.forward"] > 0
    assert s["links"]["gw-srv"]["gw>srv"]["drop.down"] > 0  # the 4 s - 6 s partition
    (sink,) = apps_by(s, "udp-sink", "srv")
    assert 0 < sink["datagrams"] < 20  # the partition ate some


@pytest.mark.parametrize("name", ["ping.toml", "switched-lan.toml"])
def test_examples_exit_zero_from_the_cli(name, capsys):
    from stacklab.cli.main import main

    assert main(["run", str(EXAMPLES / name)]) == 0
    assert "FAIL" not in capsys.readouterr().out


def test_tshark_reads_a_simulated_run_clean(tmp_path):
    """Frames our stack built, captured by the simulator: no malformed packet, no bad checksum."""
    import subprocess

    from stacklab.testing import require_tool

    tshark = require_tool("tshark", package="tshark")
    run_scenario(EXAMPLES / "switched-lan.toml", pcap=str(tmp_path))
    files = sorted(tmp_path.glob("*.pcap"))
    assert len(files) == 5
    for f in files:
        out = subprocess.run(
            [tshark, "-r", str(f), "-n", "-V", "-o", "ip.check_checksum:TRUE",
             "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"],
            capture_output=True, text=True, timeout=60, check=True).stdout
        assert out.count("Frame ") > 5
        bad = [line for line in out.splitlines()
               if "Malformed" in line or "[Checksum Status: Bad]" in line
               or "incorrect, should be" in line]
        assert bad == [], (f.name, bad[:3])


def test_same_seed_same_bytes_across_processes(tmp_path):
    """Two separate processes with different hash seeds write identical pcaps."""
    import os
    import subprocess
    import sys

    root = EXAMPLES.parent
    for n, hashseed in ((1, "1"), (2, "12345")):
        env = {**os.environ, "PYTHONHASHSEED": hashseed,
               "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        subprocess.run([sys.executable, "-m", "stacklab", "run", str(EXAMPLES / "ping.toml"),
                        "--pcap", str(tmp_path / str(n)), "--json"],
                       env=env, check=True, capture_output=True, timeout=120)
    first = sorted((tmp_path / "1").iterdir())
    assert len(first) == 2
    for f in first:
        assert f.read_bytes() == (tmp_path / "2" / f.name).read_bytes()
