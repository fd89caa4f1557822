"""Faults at run time (stacklab.net.faults): partitions, link changes, crashes, and the
scenario [[event]] tables that schedule them."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import pytest

from stacklab.api.host import HostStateError
from stacklab.net.network import Network, TopologyError
from stacklab.scenario.runner import ScenarioError, load_scenario, run_scenario


@pytest.fixture
def net() -> Any:
    with Network(seed=5) as net:
        a, r, b = net.add_host("a"), net.add_router("r"), net.add_host("b")
        c = net.add_host("c")
        net.connect(a, r, delay="5ms")
        net.connect(r, b, delay="5ms")
        net.connect(r, c, delay="5ms")
        net.autoconfigure()
        yield net


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1000):
        writer.write(data)
        await writer.drain()
    writer.close()


async def serve() -> None:
    await (await asyncio.start_server(echo, None, 7)).serve_forever()


async def pinger(to: str, rounds: int) -> list[str]:
    """One echo a second on one connection: what came back, or the error, each round."""
    reader, writer = await asyncio.open_connection(to, 7)
    out = []
    for i in range(rounds):
        writer.write(b"%d" % i)
        try:
            out.append((await asyncio.wait_for(reader.read(100), 0.9)).decode())
        except (TimeoutError, OSError) as exc:
            out.append(type(exc).__name__)
        await asyncio.sleep(1 - asyncio.get_running_loop().time() % 1)
    return out


def test_a_partition_cuts_across_a_router_until_healed(net: Network) -> None:
    a, b, c = net["a"], net["b"], net["c"]
    b.spawn(serve())
    c.spawn(serve())
    to_b = a.spawn(pinger("b", 6))
    to_c = a.spawn(pinger("c", 6))
    net.run_for("1.5s")
    net.partition(["a"], ["b"])  # c in no group: not cut off
    net.run_for("2s")
    assert net.now == pytest.approx(3.5)
    net.heal()
    # rounds 2 and 3 sent into the cut; the third retransmission (RTO SRTT + 200 ms = 231 ms,
    # backed off: 2.23, 2.69, 3.62 s) leaves after the heal at 3.5 s and brings 2 and 3 back
    # within round 3's read
    assert net.run(to_b, until="30s") == ["0", "1", "TimeoutError", "23", "4", "5"]
    assert net.run(to_c, until="30s") == ["0", "1", "2", "3", "4", "5"]
    assert net.link("a-r").ab.counters["drop.partition"] > 0  # cut on a's own link


def test_a_partition_checks_its_groups(net: Network) -> None:
    with pytest.raises(ValueError, match="at least two groups"):
        net.partition(["a"])
    with pytest.raises(ValueError, match="'a' is in two groups"):
        net.partition(["a"], ["a", "b"])
    with pytest.raises(TopologyError, match="unknown node 'x'"):
        net.partition(["a"], ["x"])


def test_link_set_down_and_up_and_new_parameters(net: Network) -> None:
    a, b = net["a"], net["b"]
    b.spawn(serve())
    task = a.spawn(pinger("b", 5))
    link = net.link("r-b")
    net.run_for("1.5s")
    link.set(down=True)
    net.run_for("1s")
    link.set(down=False, delay="200ms")
    # round 2 goes into the dead link; its retransmission comes back 0.4 s later over the
    # slower link, so each later read finds the previous round's echo
    assert net.run(task, until="30s") == ["0", "1", "TimeoutError", "2", "3"]
    assert link.ab.params.delay == 0.2 and link.up


def test_a_crashed_host_is_silent_then_resets_what_it_forgot(net: Network) -> None:
    a, b = net["a"], net["b"]
    server = b.spawn(serve())
    task = a.spawn(pinger("b", 6))
    net.run_for("1.5s")
    net.crash("b")
    assert server.cancelled() or server.cancelling()  # its programs die with it
    net.run_for("2s")
    assert not b.tcp.conns and not b.tcp.listeners
    net.restart("b")
    got = net.run(task, until="30s")
    # silence while down (no FIN, no RST from b); the retransmission at 3.62 s, after the
    # restart at 3.5 s, gets a reset
    assert got[:2] == ["0", "1"] and got[2] == "TimeoutError"
    assert got[3:] == ["ConnectionResetError"] * 3
    assert b.counters["drop.crashed"] > 0


def test_crash_errors_are_one_clear_line(net: Network) -> None:
    net.add_switch("sw")
    with pytest.raises(TopologyError, match=r"^'sw' is a switch: it has no stack to crash"):
        net.crash("sw")
    with pytest.raises(HostStateError, match="host a is running: crash"):
        net.restart("a")
    net.crash("a")
    with pytest.raises(HostStateError, match="host a has already crashed"):
        net.crash("a")


SCENARIO = """
seed = 1
duration = "20s"

[[node]]
name = "a"
kind = "host"

[[node]]
name = "b"
kind = "host"

[[link]]
ends = ["a", "b"]

[[app]]
node = "a"
kind = "ping"
to = "b"
count = 10
interval = "1s"

[[event]]
at = "2.5s"
action = "partition"
groups = [["a"], ["b"]]

[[event]]
at = "4.5s"
action = "heal"

[[event]]
at = "6.5s"
action = "link"
link = "a-b"
down = true

[[event]]
at = "7.5s"
action = "link"
link = "a-b"
down = false

[[event]]
at = "8.2s"
action = "crash"
node = "b"
"""


def test_scenario_events_schedule_the_faults(tmp_path: Path) -> None:
    path = tmp_path / "faults.toml"
    path.write_text(SCENARIO)
    summary = run_scenario(path)
    ping = summary["apps"][0]
    # lost: 3 s and 4 s (partition), 7 s (link down), 9 s (b crashed at 8.2 s)
    assert ping["transmitted"] == 10 and ping["received"] == 10 - 2 - 1 - 1
    links = summary["links"]["a-b"]["a>b"]
    assert links["drop.partition"] == 2 and links["drop.down"] == 1


@pytest.mark.parametrize("event, message", [
    ('action = "explode"', "key 'action': expected one of partition, heal, crash"),
    ('action = "crash"\nnode = "zz"', "key 'node': unknown node 'zz'"),
    ('action = "partition"\ngroups = ["a", "b"]', "key 'groups': expected two or more lists"),
    ('action = "link"\nlink = "a-b"\nloss = 2', "key 'loss'"),
    ('action = "heal"\nnode = "a"', "key 'node': not a key of a 'heal' event"),
])
def test_scenario_events_are_checked(tmp_path: Path, event: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    head = SCENARIO.split("[[event]]")[0]
    path.write_text(head + "[[event]]\nat = \"1s\"\n" + textwrap.dedent(event) + "\n")
    with pytest.raises(ScenarioError, match=r"\[\[event\]\] #1: " + message):
        load_scenario(path)


def test_the_partition_example(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "partition.toml"
    summary = run_scenario(example, pcap=str(tmp_path / "one"))
    send, sink = (next(a for a in summary["apps"] if a["kind"] == k)
                  for k in ("tcp-send", "tcp-sink"))
    assert send["ok"] and sink["ok"] and send["bytes"] == sink["bytes"] == 4_000_000
    assert send["sha256"] == sink["sha256"]
    assert summary["links"]["client-r"]["client>r"]["drop.partition"] > 0
    assert summary["links"]["r-server"]["r>server"]["drop.loss"] > 0  # the loss set at 5 s
    run_scenario(example, pcap=str(tmp_path / "two"))
    for f in (tmp_path / "one").iterdir():
        assert f.read_bytes() == (tmp_path / "two" / f.name).read_bytes()
