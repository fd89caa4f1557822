"""Scenario files and `stacklab run`: errors naming file/table/key, summary, determinism."""

from __future__ import annotations

import json
import textwrap
import time

import pytest

from stacklab.cli.main import main as cli_main
from stacklab.net.units import ParamError, parse_duration
from stacklab.scenario.registry import register_app
from stacklab.scenario.runner import ScenarioError, load_scenario, run_scenario


class ProbeApp:
    """Test-only app kind: pings `to` with the Host's ping; reports received replies."""

    params = {"to", "count", "family", "fail"}

    def __init__(self, net, node, params):
        self.node = node
        self.to = params.get("to", "")
        if not isinstance(self.to, str) or not self.to:
            raise ParamError("to", "expected a node name or address")
        self.count = params.get("count", 3)
        self.family = params.get("family", 4)

    async def run(self):
        r = await self.node.ping(self.to, count=self.count, family=self.family, out=None)
        return {"ok": r.received == self.count, "received": r.received,
                **({} if r.received == self.count else {"error": "lost replies"})}


class IdleSink:
    """Test-only daemon app: runs until the end, reports how long it lived."""

    params = {"port"}
    daemon = True

    def __init__(self, net, node, params):
        self.net = net
        self.started = None

    async def run(self):
        import asyncio

        self.started = self.net.now
        await asyncio.Event().wait()

    def result(self):
        return {"lived": self.net.now - self.started}


register_app("test-probe", ProbeApp)
register_app("test-sink", IdleSink)

GOOD = """
seed = 5
duration = "20s"

[[node]]
name = "a"
kind = "host"

[[node]]
name = "r"
kind = "router"

[[node]]
name = "sw"
kind = "switch"

[[node]]
name = "b"
kind = "host"

[[link]]
ends = ["a", "r"]
delay = "5ms"
rate = "10Mbit"

[[link]]
ends = ["r", "sw"]
delay = "1ms"

[[link]]
ends = ["b", "sw"]
delay = "1ms"
loss = 0.0
forward = { jitter = "1ms" }

[[app]]
node = "a"
kind = "test-probe"
to = "b"
count = 3

[[app]]
node = "b"
kind = "test-probe"
to = "a"
family = 6

[[app]]
node = "b"
kind = "test-sink"
port = 9
"""


def write(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_good_scenario_summary(tmp_path):
    s = run_scenario(write(tmp_path, GOOD))
    assert s["seed"] == 5 and s["time"] == pytest.approx(20.0)
    assert [(a["node"], a["kind"], a["ok"]) for a in s["apps"]] == [
        ("a", "test-probe", True), ("b", "test-probe", True), ("b", "test-sink", True)]
    assert s["apps"][0]["received"] == 3
    assert 2.0 < s["apps"][0]["elapsed"] < 5.0  # 3 pings 1 s apart, virtual seconds
    assert s["apps"][2]["lived"] == pytest.approx(20.0)
    assert set(s["nodes"]) == {"a", "r", "sw", "b"}
    assert s["nodes"]["sw"]["kind"] == "switch"
    assert s["nodes"]["sw"]["counters"]["switch.forward"] > 0
    assert s["nodes"]["a"]["counters"]["rx.frames"] > 0
    assert set(s["links"]) == {"a-r", "r-sw", "b-sw"}
    assert s["connections"] == []
    json.dumps(s)


def test_failing_app_is_reported_not_raised(tmp_path):
    text = GOOD.replace('forward = { jitter = "1ms" }', 'forward = { loss = 1.0 }')
    s = run_scenario(write(tmp_path, text))
    assert s["apps"][0]["ok"] is False and s["apps"][0]["error"] == "lost replies"


def test_cli_json_and_exit_status(tmp_path, capsys):
    path = write(tmp_path, GOOD)
    assert cli_main(["run", path, "--json", "--seed", "9"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["seed"] == 9 and all(a["ok"] for a in out["apps"])
    bad = write(tmp_path, GOOD.replace('forward = { jitter = "1ms" }', "forward = { loss = 1.0 }"),
                "bad.toml")
    assert cli_main(["run", bad]) == 1
    text = capsys.readouterr().out
    assert "FAIL test-probe on a" in text and "error: lost replies" in text


def test_cli_pcap_is_deterministic(tmp_path):
    path = write(tmp_path, GOOD)
    assert cli_main(["run", path, "--pcap", str(tmp_path / "p1")]) == 0
    assert cli_main(["run", path, "--pcap", str(tmp_path / "p2")]) == 0
    assert cli_main(["run", path, "--pcap", str(tmp_path / "p3"), "--seed", "6"]) == 0
    names = sorted(p.name for p in (tmp_path / "p1").iterdir())
    assert names == ["a-r.pcap", "b-sw.pcap", "r-sw.pcap"]
    for n in names:
        assert (tmp_path / "p1" / n).read_bytes() == (tmp_path / "p2" / n).read_bytes()
    # the seed changes the jittered link's timing
    assert ((tmp_path / "p1" / "b-sw.pcap").read_bytes()
            != (tmp_path / "p3" / "b-sw.pcap").read_bytes())


def test_cli_trace_file(tmp_path, capsys):
    trace = tmp_path / "t.jsonl"
    assert cli_main(["run", write(tmp_path, GOOD), "--trace-file", str(trace)]) == 0
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    assert events and {"time", "node", "layer", "event"} <= set(events[0])


def test_long_scenario_is_fast(tmp_path):
    text = GOOD.replace('duration = "20s"', 'duration = "120s"').replace(
        "count = 3", "count = 100")
    start = time.perf_counter()
    s = run_scenario(write(tmp_path, text))
    wall = time.perf_counter() - start
    assert s["time"] == pytest.approx(120.0) and s["apps"][0]["received"] == 100
    assert wall < 12.0  # 120 virtual seconds, no real sleeping


@pytest.mark.parametrize("edit, expected", [
    (("seed = 5", "seed = 5\nsead = 1"), "top level: key 'sead': unknown key"),
    (('duration = "20s"', 'duration = "20 fortnights"'), "top level: key 'duration'"),
    (('delay = "5ms"', 'delay = "5 parsecs"'), "[[link]] #1 (a-r): key 'delay': unknown duration"),
    (('rate = "10Mbit"', 'rate = "fast"'), "[[link]] #1 (a-r): key 'rate'"),
    (('rate = "10Mbit"', 'rtae = "10Mbit"'), "[[link]] #1 (a-r): key 'rtae': unknown key"),
    (("loss = 0.0", "loss = 2.0"), "[[link]] #3 (b-sw): key 'loss': a probability"),
    (('forward = { jitter = "1ms" }', "forward = { jiter = 1 }"), "key 'forward.jiter'"),
    (('delay = "1ms"\nloss', 'delay = "1ms"\nqueue = 10\nloss'),
     "[[link]] #3 (b-sw): key 'queue': a queue limit applies to a rate-limited link"),
    (('ends = ["a", "r"]', 'ends = ["a", "zz"]'), "[[link]] #1 (a-zz): key 'ends': unknown node"),
    (('ends = ["a", "r"]', 'ends = ["a", "a"]'), "key 'ends': a link joins two different"),
    (('kind = "router"', 'kind = "bridge"'), "[[node]] #2 (r): key 'kind'"),
    (('to = "b"', 'to = "b"\ncolor = "red"'),
     "[[app]] #1 (test-probe on a): key 'color': unknown key for a 'test-probe' app"),
    (('kind = "test-sink"', 'kind = "nope"'), "[[app]] #3 (nope on b): key 'kind': unknown app"),
    (('node = "a"', 'node = "x"'), "[[app]] #1: key 'node': unknown node 'x'"),
    (('node = "a"', 'node = "sw"'), "[[app]] #1: key 'node': 'sw' is a switch"),
    (('to = "b"', "to = 3"), "[[app]] #1 (test-probe on a): key 'to': expected a node name"),
    (('[[link]]\nends = ["a", "r"]',
      '[[node]]\nname = "a"\nkind = "host"\n[[link]]\nends = ["a", "r"]'),
     "[[node]] #5 (a): key 'name': a node named 'a' is already defined"),
])
def test_errors_name_file_table_and_key(tmp_path, edit, expected):
    old, new = edit
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ScenarioError) as info:
        run_scenario(path)
    msg = str(info.value)
    assert msg.startswith(path + ": ")
    assert expected in msg


def test_switch_loop_is_an_impossible_topology(tmp_path):
    text = GOOD + """
[[node]]
name = "sw2"
kind = "switch"

[[link]]
ends = ["sw", "sw2"]

[[link]]
ends = ["sw2", "sw"]
"""
    with pytest.raises(ScenarioError, match=r"\[\[link\]\] #5 \(sw2-sw\): key 'ends': .*loop"):
        run_scenario(write(tmp_path, text))


def test_cli_error_is_one_line_exit_2(tmp_path, capsys):
    path = write(tmp_path, GOOD.replace('delay = "5ms"', 'delay = "5 parsecs"'))
    assert cli_main(["run", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stacklab run: error: " + path) and "'delay'" in err
    assert cli_main(["run", str(tmp_path / "missing.toml")]) == 2
    assert "no such file" in capsys.readouterr().err
    broken = write(tmp_path, "seed = [", "broken.toml")
    assert cli_main(["run", broken]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_load_scenario_defaults(tmp_path):
    scn = load_scenario(write(tmp_path, '[[node]]\nname = "a"\nkind = "host"\n'))
    assert scn.seed == 1 and scn.duration == parse_duration("10s") and scn.apps == []


def test_cli_list_shows_the_schema(capsys):
    assert cli_main(["run", "--list"]) == 0
    out = capsys.readouterr().out
    assert "icmp_blackhole" in out and "reorder_delay" in out
    assert "host \\| router \\| switch" in out
    probe = out[out.index("### `test-probe`"):]  # registered kinds with their params
    assert "`count`, `fail`, `family`, `to` (not documented)" in probe.split("###")[1]
    assert cli_main(["run"]) == 2


class BoomApp:
    """Test-only app: a timer callback that raises (a bug somewhere in the simulation)."""

    params: set[str] = set()

    def __init__(self, net, node, params):
        self.net = net

    async def run(self):
        import asyncio

        def boom():
            raise ZeroDivisionError("bug in a timer")

        self.net.loop.call_later(1.0, boom)
        await asyncio.sleep(5)
        return {}


register_app("test-boom", BoomApp)


def test_cli_internal_error_exit_3(tmp_path, capsys):
    text = GOOD.replace('kind = "test-sink"\nport = 9', 'kind = "test-boom"')
    assert 'kind = "test-boom"' in text
    assert cli_main(["run", write(tmp_path, text)]) == 3
    err = capsys.readouterr().err
    assert "internal error in the simulation: ZeroDivisionError: bug in a timer" in err
    assert "Traceback" in err
