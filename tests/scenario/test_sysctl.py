"""``[[node]] sysctl = {...}`` in scenario files: Linux's names through host.sysctl."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stacklab.net.network import Network
from stacklab.scenario.runner import ScenarioError, load_scenario, run_scenario

SCENARIO = """
seed = 3
duration = "20s"

[[node]]
name = "a"
kind = "host"

[[node]]
name = "r"
kind = "router"
sysctl = { "net.ipv4.icmp_msgs_per_sec" = 10 }

[[node]]
name = "b"
kind = "host"
sysctl = { "net.ipv4.tcp_rmem" = "4096 131072 262144", "net.ipv4.tcp_timestamps" = 0 }

[[link]]
ends = ["a", "r"]
delay = "2ms"

[[link]]
ends = ["r", "b"]
delay = "2ms"

[[app]]
node = "b"
kind = "tcp-sink"
port = 9

[[app]]
node = "a"
kind = "tcp-send"
to = "b"
port = 9
bytes = 200000
start = "0.5s"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(text)
    return p


def test_a_scenario_sets_sysctls_per_node(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def inspect(net: Network) -> None:
        a, r, b = (net.nodes[n] for n in "arb")
        seen["b"] = (b.sysctl["net.ipv4.tcp_rmem"], b.sysctl["net.ipv4.tcp_timestamps"])
        seen["a"] = a.sysctl["net.ipv4.tcp_rmem"]
        seen["r"] = r.sysctl["net.ipv4.icmp_msgs_per_sec"]
        (conn,) = [*b.tcp.history, *b.tcp.conns.values()]
        info = conn.tcp_info()
        seen["b offered"] = (info["rcv_wscale"], info["timestamps"])  # a 256 KiB max: wscale 3

    summary = run_scenario(write(tmp_path, SCENARIO), inspect=inspect)
    assert all(app["ok"] for app in summary["apps"]), summary["apps"]
    assert seen == {"b": ("4096 131072 262144", "0"), "a": "4096 131072 6291456", "r": "10",
                    "b offered": (3, False)}


@pytest.mark.parametrize(("node", "table", "message"), [
    ("b", '{ "net.ipv4.tcp_sak" = 0 }', "[[node]] #3 (b): key 'sysctl': net.ipv4.tcp_sak: "
     "no stacklab knob for it"),
    ("b", '{ "net.ipv4.tcp_rmem" = "4096 lots" }', "[[node]] #3 (b): key 'sysctl': "
     "net.ipv4.tcp_rmem: bad value '4096 lots'"),
    ("b", '{ "net.ipv4.ip_default_ttl" = 1.5 }', "net.ipv4.ip_default_ttl: expected integer"),
    ("r", '{ "net.ipv4.ip_forward" = 0 }', "[[node]] #2 (r): key 'sysctl': "
     "net.ipv4.ip_forward: read-only"),
    ("b", '{ "net.ipv4.ip_forward" = 1 }', "[[node]] #3 (b): key 'sysctl': "
     "net.ipv4.ip_forward: read-only"),
    ("b", '"net.ipv4.tcp_sack=0"', "key 'sysctl': expected a table of Linux sysctl names"),
])
def test_bad_names_and_values_name_file_table_and_key(tmp_path: Path, node: str, table: str,
                                                       message: str) -> None:
    lines = SCENARIO.splitlines()
    at = lines.index(f'name = "{node}"') + 2
    if lines[at].startswith("sysctl"):
        del lines[at]
    lines.insert(at, f"sysctl = {table}")
    path = write(tmp_path, "\n".join(lines))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)
    # the command line prints that one line, no traceback
    run = subprocess.run([sys.executable, "-m", "stacklab", "run", str(path)],
                         capture_output=True, text=True)
    assert run.returncode != 0 and message in run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_run_list_shows_the_sysctl_names() -> None:
    out = subprocess.run([sys.executable, "-m", "stacklab", "run", "--list"],
                         capture_output=True, text=True, check=True).stdout
    assert "### `sysctl` names" in out
    assert "| `net.ipv4.tcp_rmem` | 4096 131072 6291456 | same |" in out  # Linux's own
