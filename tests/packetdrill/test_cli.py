"""`stacklab packetdrill`: result lines, summary, exit codes, --json, -v, --pcap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stacklab.cli.main import main

SCRIPTS = Path(__file__).parent / "scripts"
GOOD = SCRIPTS / "handshake-active.pkt"


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    p = tmp_path / "bad.pkt"
    p.write_text(GOOD.read_text().replace("ack 1 <nop,nop,TS val 100 ecr 700>",
                                          "ack 2 <nop,nop,TS val 100 ecr 700>"))
    return p


def test_all_pass_exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["packetdrill", str(GOOD), str(SCRIPTS / "udp-echo.pkt")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"PASS        {GOOD}")
    assert out[-1] == "2 scripts: 2 pass"


def test_a_failure_exits_one(bad: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["packetdrill", str(GOOD), str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL        {bad}:6: error handling packet: live packet field tcp_ack: " \
           "expected: 2 vs actual: 1" in out
    assert out.splitlines()[-1] == "2 scripts: 1 pass, 1 fail"


def test_json(bad: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["packetdrill", "--json", str(GOOD), str(bad)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"] == {"pass": 1, "fail": 1, "unsupported": 0, "error": 0, "total": 2}
    assert [r["status"] for r in doc["results"]] == ["PASS", "FAIL"]
    assert doc["results"][1]["line"] == 6


def test_verbose_prints_the_packet_trace(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["packetdrill", "-v", str(GOOD)]) == 0
    out = capsys.readouterr().out
    assert "0.050000 < S. 0:0(0) ack 1 win 65535" in out
    assert "0.050000 > . 1:1(0) ack 1 win" in out


def test_pcap_dir_gets_one_capture_per_script(tmp_path: Path) -> None:
    from scapy.all import TCP, rdpcap  # an independent reader

    assert main(["packetdrill", "--pcap", str(tmp_path / "caps"), str(GOOD)]) == 0
    pkts = rdpcap(str(tmp_path / "caps" / "handshake-active.pcap"))
    flags = [str(p[TCP].flags) for p in pkts if TCP in p]
    assert flags == ["S", "SA", "A"]


def test_a_directory_runs_every_script_under_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["packetdrill", str(SCRIPTS)]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"{len(list(SCRIPTS.glob('*.pkt')))} scripts: " \
                   f"{len(list(SCRIPTS.glob('*.pkt')))} pass"


def test_a_missing_file_is_a_usage_error(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["packetdrill", str(tmp_path / "nope.pkt")]) == 2
    assert "no such script" in capsys.readouterr().err


def test_a_broken_script_is_an_error_line(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "broken.pkt"
    p.write_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 < S 0:0(0) win\n")
    assert main(["packetdrill", str(p)]) == 1
    out = capsys.readouterr().out
    assert f"ERROR       {p}:2:18: expected the window, got end of script\n" in out
    assert "Traceback" not in out


def test_tolerance_usecs_overrides_the_scripts(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    late = tmp_path / "late.pkt"  # the SYN-ACK's ACK expected 20 ms after it leaves
    late.write_text(GOOD.read_text().replace("   +0 > . 1:1(0) ack 1 <nop",
                                             "+0.02 > . 1:1(0) ack 1 <nop"))
    assert main(["packetdrill", str(late)]) == 1
    assert "timing error" in capsys.readouterr().out
    assert main(["packetdrill", "--tolerance_usecs=25000", str(late)]) == 0
