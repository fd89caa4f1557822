"""The scenario app kinds of the host stack: ping, traceroute, udp-send, udp-sink."""

from __future__ import annotations

import hashlib
import textwrap

from stacklab.scenario.runner import run_scenario

SCENARIO = """
seed = 3
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
delay = "5ms"
[[link]]
ends = ["r", "b"]
delay = "5ms"
mtu = 576

[[app]]
node = "b"
kind = "udp-sink"
port = 7000

[[app]]
node = "a"
kind = "udp-send"
to = "b"
port = 7000
size = 3000
count = 5
interval = "100ms"

[[app]]
node = "a"
kind = "ping"
to = "b"
count = 3
size = 100
family = 4

[[app]]
node = "a"
kind = "traceroute"
to = "b"
wait = "1s"
"""


def test_scenario_apps(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(textwrap.dedent(SCENARIO))
    summary = run_scenario(path)
    apps = {app["kind"]: app for app in summary["apps"]}
    assert all(app["ok"] for app in apps.values()), apps
    send, sink = apps["udp-send"], apps["udp-sink"]
    assert send["bytes"] == sink["bytes"] == 15000
    expect = hashlib.sha256(b"".join((i.to_bytes(4, "big") * 751)[:3000] for i in range(5)))
    assert send["sha256"] == sink["sha256"] == expect.hexdigest()
    assert apps["ping"]["received"] == 3
    assert apps["traceroute"]["hops"] == ["10.0.1.2", "10.0.2.2"]
    # 3008 bytes leave a as 1480 + 1480 + 48: r splits the two full ones again for 576
    assert summary["nodes"]["r"]["counters"]["ipv4.fragmented"] == 10


def test_scenario_bad_param_is_named(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(textwrap.dedent(SCENARIO).replace('family = 4', 'family = 5'))
    try:
        run_scenario(path)
    except ValueError as exc:
        assert "family" in str(exc)
    else:
        raise AssertionError("family = 5 accepted")
