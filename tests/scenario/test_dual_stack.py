"""Servers without ``family`` answer both families, as a Linux socket on ``::`` without
IPV6_V6ONLY (issue 20 item 12); ``family = 4`` or ``6`` keeps one."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacklab.scenario.runner import run_scenario

_TOPOLOGY = """
seed = 2
duration = "20s"

[[node]]
name = "a"
kind = "host"

[[node]]
name = "b"
kind = "host"

[[link]]
ends = ["a", "b"]
delay = "2ms"
"""

_SINKS = """
[[app]]
node = "b"
kind = "tcp-sink"
port = 9
{family}

[[app]]
node = "b"
kind = "udp-sink"
port = 9
{family}
"""

_SENDERS = """
[[app]]
node = "a"
kind = "tcp-send"
to = "b"
port = 9
bytes = 1000
family = {f}
start = "3s"

[[app]]
node = "a"
kind = "udp-send"
to = "b"
port = 9
count = 3
size = 100
family = {f}
start = "3s"
"""


def _sinks(tmp_path: Path, family: str) -> tuple[dict, dict, list[dict]]:
    path = tmp_path / "dual.toml"
    path.write_text(_TOPOLOGY + _SINKS.format(family=family)
                    + _SENDERS.format(f=4) + _SENDERS.format(f=6))
    apps = run_scenario(path)["apps"]
    tcp = next(a for a in apps if a["kind"] == "tcp-sink")
    udp = next(a for a in apps if a["kind"] == "udp-sink")
    return tcp, udp, [a for a in apps if a["kind"] in ("tcp-send", "udp-send")]


def test_sinks_without_family_receive_ipv4_and_ipv6(tmp_path: Path) -> None:
    tcp, udp, senders = _sinks(tmp_path, "")
    assert all(s["ok"] for s in senders), senders
    assert (tcp["connections"], tcp["bytes"]) == (2, 2000)
    peers = sorted(c["peer"].rsplit(":", 1)[0] for c in tcp["conns"])
    assert ":" not in peers[0] and ":" in peers[1]  # one IPv4 peer, one IPv6 peer
    assert (udp["datagrams"], udp["bytes"]) == (6, 600)


@pytest.mark.parametrize("family", [4, 6])
def test_a_sink_with_a_family_keeps_to_it(tmp_path: Path, family: int) -> None:
    tcp, udp, senders = _sinks(tmp_path, f"family = {family}")
    assert tcp["connections"] == 1 and udp["datagrams"] == 3
    assert ":" in tcp["conns"][0]["peer"].rsplit(":", 1)[0] if family == 6 else (
        ":" not in tcp["conns"][0]["peer"].rsplit(":", 1)[0])
