"""ECN in TCP (RFC 3168, stacklab.stack.tcp.ecn) end to end on virtual time: a bulk flow through
a CoDel bottleneck that marks CE instead of dropping (``ecn = true`` on the link) slows down
without losing a segment. The packet-level rules (negotiation in both directions, the modes of
net.ipv4.tcp_ecn, CE -> ECE -> CWR, one reduction per window, SYN fallback) are the
tests/packetdrill/scripts/ecn-*.pkt scripts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stacklab.scenario.runner import run_scenario

SCENARIO = """
seed = 1
duration = "30s"

[[node]]
name = "a"
kind = "host"
sysctl = { "net.ipv4.tcp_ecn" = "MODE" }

[[node]]
name = "r"
kind = "router"

[[node]]
name = "b"
kind = "host"

[[link]]
ends = ["a", "r"]
delay = "1ms"
rate = "100Mbit"

[[link]]
ends = ["r", "b"]
delay = "9ms"
forward = { rate = "10Mbit", aqm = "codel", ecn = true }

[[app]]
node = "b"
kind = "tcp-sink"
port = 5001

[[app]]
node = "a"
kind = "tcp-send"
to = "b"
port = 5001
bytes = 6000000
"""


def bulk(tmp_path: Path, mode: int) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    """6 MB a -> r -> b through a 10 Mbit/s CoDel+ECN bottleneck (20 ms RTT), the sender's
    net.ipv4.tcp_ecn ``mode`` (b keeps Linux's default, 2): the sender's result, the
    bottleneck's queue figures and the connections of the summary."""
    path = tmp_path / "ecn.toml"
    path.write_text(SCENARIO.replace("MODE", str(mode)))
    s = run_scenario(str(path))
    assert all(app["ok"] for app in s["apps"])
    send = next(app for app in s["apps"] if app["kind"] == "tcp-send")
    return send, s["queues"]["r-b"]["r>b"], s["connections"]


def test_codel_marks_and_the_flow_slows_down_without_loss(tmp_path: Path) -> None:
    send, queue, conns = bulk(tmp_path, 1)
    # negotiated: CoDel marked instead of dropping, the receiver counted the marks, the sender
    # reduced its window for the echoes, and not one segment was lost or resent
    assert queue["marks_ce"] > 0 and queue["drops_aqm"] == 0 and queue["drops_overflow"] == 0
    assert send["retransmits"] == 0 and send["rto_expiries"] == 0
    receiver = next(c for c in conns if c["node"] == "b")
    sender = next(c for c in conns if c["node"] == "a")
    assert receiver["ecn"]["ce_in"] == queue["marks_ce"]
    # at most one reduction per window: fewer than the marks, at least one
    assert 0 < sender["ecn"]["reductions"] == send["ecn"]["reductions"] <= queue["marks_ce"]
    assert send["throughput_bps"] > 8_500_000  # the 10 Mbit/s link stays busy
    assert queue["sojourn_p90_ms"] < 40  # and its queue short (CoDel's target is 5 ms)


def test_without_ecn_codel_drops(tmp_path: Path) -> None:
    """The same flow with Linux's default on both ends (2: accept, never request): Not-ECT,
    so CoDel drops and the flow retransmits."""
    send, queue, conns = bulk(tmp_path, 2)
    assert queue["marks_ce"] == 0 and queue["drops_aqm"] > 0
    assert send["retransmits"] > 0 and "ecn" not in send
    assert not any("ecn" in c for c in conns)


def cookie_connection(timestamps: bool) -> tuple[dict[str, Any], dict[str, Any], int]:
    """a (tcp_ecn=1) connects to b whose SYN queue is full (every SYN gets a cookie) and sends
    100 kB: both ends' tcp_info and b's count of connections made from a cookie."""
    import stacklab

    net = stacklab.Network(seed=2)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="2ms")
    net.autoconfigure()
    a.sysctl["net.ipv4.tcp_ecn"] = 1
    a.sysctl["net.ipv4.tcp_timestamps"] = int(timestamps)
    b.tcp.max_syn_backlog = 0
    out: dict[str, Any] = {}

    async def sink(reader: Any, writer: Any) -> None:
        await reader.read()
        out["b"] = writer.get_extra_info("tcp_info")
        writer.close()

    async def main() -> None:
        await b.start_server(sink, 80)
        _, w = await a.open_connection("b", 80)
        w.write(bytes(100_000))
        await w.drain()
        out["a"] = w.get_extra_info("tcp_info")
        w.close()
        await w.wait_closed()

    net.run(main(), until="10s")
    net.close()
    return out["a"], out["b"], b.counters["tcp.syncookies.recv"]


def test_ecn_survives_a_syn_cookie_in_the_timestamp_bits() -> None:
    """As Linux (TS_OPT_ECN): the cookie SYN-ACK's ECE is remembered in bit 5 of its TSval, so
    the connection rebuilt from the cookie uses ECN; without timestamps a cookie has no ECN."""
    a, b, cookies = cookie_connection(timestamps=True)
    assert cookies == 1 and a["ecn"] and b["ecn"]
    a, b, cookies = cookie_connection(timestamps=False)
    assert cookies == 1 and not a["ecn"] and not b["ecn"]
