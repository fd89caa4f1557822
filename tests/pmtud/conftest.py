"""Helpers for the PMTU tests: run an example scenario capturing every link at both points
(``tx``: as sent, for "after the signal" timing; ``rx``: as delivered), and tshark."""

from __future__ import annotations

import pathlib
import subprocess
from typing import Any

import pytest

from stacklab.net.network import Network
from stacklab.scenario.runner import run_scenario
from stacklab.testing import require_tool

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def need_tshark() -> str:
    return require_tool("tshark", package="tshark")


def tshark(pcap: pathlib.Path, fields: list[str], filt: str) -> list[dict[str, str]]:
    """Rows of ``fields`` for the frames matching the display filter ``filt``."""
    cmd = [need_tshark(), "-r", str(pcap), "-n", "-o", "ip.check_checksum:TRUE",
           "-o", "tcp.check_checksum:TRUE", "-Y", filt, "-T", "fields", "-E", "separator=|"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    return [dict(zip(fields, line.split("|"), strict=True)) for line in out.splitlines() if line]


def run_example(name: str, tmp: pathlib.Path, monkeypatch: pytest.MonkeyPatch
                ) -> dict[str, Any]:
    """Run ``examples/<name>.toml`` with pcaps in ``tmp/rx`` and ``tmp/tx``."""
    orig = Network.capture

    def both(self: Network, directory: Any, point: str = "rx") -> None:
        orig(self, pathlib.Path(directory) / "rx", "rx")
        orig(self, pathlib.Path(directory) / "tx", "tx")

    monkeypatch.setattr(Network, "capture", both)
    return run_scenario(EXAMPLES / f"{name}.toml", pcap=str(tmp))


def apps_by(summary: dict[str, Any], kind: str, node: str) -> list[dict[str, Any]]:
    return [a for a in summary["apps"] if a["kind"] == kind and a["node"] == node]


def rx(tmp: pathlib.Path, link: str) -> pathlib.Path:
    return tmp / "rx" / f"{link}.pcap"


def tx(tmp: pathlib.Path, link: str) -> pathlib.Path:
    return tmp / "tx" / f"{link}.tx.pcap"
