"""The scenario package's kinds: built in by explicit imports, every one runnable from a file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stacklab.scenario.runner import ScenarioError, run_scenario

NET_KINDS = {"tcp-send", "tcp-sink", "tcp-echo", "udp-send", "udp-sink", "ping", "traceroute"}
APP_KINDS = {"http-server", "smtp-server", "ftp-server", "ssh-server", "http-get", "smtp-send",
             "ftp-get", "ftp-put", "ssh-exec"}
LAN_KINDS = {"dhcp-server", "dhcp-relay", "dhcp6-server", "dns-server", "dns-resolver",
             "dns-lookup"}  # scenario/lan_kinds.py, tested in tests/lan
TLS_KINDS = {"https-server", "https-get", "ftps-server", "ftps-get", "ftps-put", "smtps-server",
             "smtps-send", "sftp-get", "sftp-put", "ssh-forward"}


def test_registry_knows_the_builtin_kinds_without_importing_their_modules_first() -> None:
    """No import side effects: importing the registry alone lists every built-in kind."""
    code = ("import sys\nfrom stacklab.scenario.registry import app_kinds\n"
            "print(sorted(app_kinds()))\n"
            "print('stacklab.apps.ssh' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0] == str(sorted(NET_KINDS | APP_KINDS | LAN_KINDS | TLS_KINDS))
    assert out[1] == "False"  # asyncssh & co. are imported when an app starts, not to list it


EVERY_NET_KIND = """
seed = 4
duration = "30s"

[[node]]
name = "a"
kind = "host"

[[node]]
name = "r"
kind = "router"

[[node]]
name = "b"
kind = "host"

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
node = "b"
kind = "tcp-echo"
port = 7

[[app]]
node = "b"
kind = "udp-sink"
port = 9

[[app]]
node = "a"
kind = "tcp-send"
to = "b"
bytes = 20000
start = "1s"

[[app]]
node = "a"
kind = "tcp-send"
to = "b"
port = 7
bytes = 3000
start = "1s"

[[app]]
node = "a"
kind = "udp-send"
to = "b"
count = 5
start = "1s"

[[app]]
node = "a"
kind = "ping"
to = "b"
count = 2

[[app]]
node = "a"
kind = "traceroute"
to = "b"
wait = "1s"
"""


def test_a_file_with_every_net_kind_runs(tmp_path: Path) -> None:
    path = tmp_path / "kinds.toml"
    path.write_text(EVERY_NET_KIND)
    summary = run_scenario(path)
    apps = summary["apps"]
    assert {a["kind"] for a in apps} == NET_KINDS
    assert all(a["ok"] for a in apps), [a for a in apps if not a["ok"]]
    got = {(a["kind"], a.get("port")): a for a in apps}
    sink, echo, udp_sink = (next(a for a in apps if a["kind"] == k) for k in
                            ("tcp-sink", "tcp-echo", "udp-sink"))
    by_size = {a["bytes"]: a for a in apps if a["kind"] == "tcp-send"}
    assert sink["sha256"] == by_size[20000]["sha256"]
    assert echo["sha256"] == by_size[3000]["sha256"] == by_size[3000]["received_sha256"]
    assert udp_sink["datagrams"] == 5 and udp_sink["lost"] == 0
    assert got[("ping", None)]["received"] == 2
    assert got[("traceroute", None)]["hops"] == ["10.0.1.2", "10.0.2.2"]


def test_to_must_name_a_node_or_address(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[node]]\nname = "a"\nkind = "host"\n\n'
                    '[[app]]\nnode = "a"\nkind = "ping"\nto = 5\n')
    with pytest.raises(ScenarioError, match=r"\[\[app\]\] #1 \(ping on a\): key 'to': expected a "
                                            r"non-empty string, got 5"):
        run_scenario(path)
    path.write_text('[[node]]\nname = "a"\nkind = "host"\n\n'
                    '[[app]]\nnode = "a"\nkind = "http-get"\n')
    with pytest.raises(ScenarioError, match="key 'to': missing: the node name or address"):
        run_scenario(path)
