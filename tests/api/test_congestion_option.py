"""Choosing the congestion control (issue 17 item 5): per host by
``net.ipv4.tcp_congestion_control``, per socket by TCP_CONGESTION (the blocking ``socket``
facade, the stream transport's socket, before or after connecting: an open connection switches
and keeps its window), SO_MAX_PACING_RATE, and ``congestion =`` on ``tcp-send``."""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Any

import pytest

from stacklab import Network
from stacklab.api.streams import SO_MAX_PACING_RATE
from stacklab.errors import StacklabError
from stacklab.scenario.runner import run_scenario
from stacklab.stack.tcp.congestion.bbr import Bbr


def two_hosts() -> tuple[Network, Any, Any]:
    net = Network(seed=1)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="5ms", rate="100Mbit")
    net.autoconfigure()
    return net, a, b


async def sink(r: Any, w: Any) -> None:
    await r.read()
    w.close()


def test_host_default_bbr_by_sysctl_and_pacing_with_it() -> None:
    net, a, b = two_hosts()
    a.sysctl["net.ipv4.tcp_congestion_control"] = "bbr"
    seen = {}

    async def main() -> None:
        await b.start_server(sink, 5000)
        _, w = await a.open_connection("b", 5000)
        tcb = w.get_extra_info("tcb")
        w.write(b"x" * 300_000)
        await w.drain()
        seen["cc"], seen["pacer"] = tcb.cc, tcb.pacer
        w.close()

    net.run(main(), until="30s")
    assert isinstance(seen["cc"], Bbr) and seen["pacer"] is not None  # BBR needs pacing
    assert seen["pacer"].rate > 0


def test_tcp_congestion_on_the_transport_socket_switches_an_open_connection() -> None:
    net, a, b = two_hosts()
    seen: dict[str, Any] = {}

    async def main() -> None:
        await b.start_server(sink, 5000)
        _, w = await a.open_connection("b", 5000)
        sock = w.get_extra_info("socket")
        tcb = w.get_extra_info("tcb")
        seen["before"] = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
        w.write(b"x" * 200_000)
        await w.drain()
        cwnd = tcb.cc.cwnd
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"bbr")
        seen["cwnd"] = (cwnd, tcb.cc.cwnd)
        seen["cc"], seen["pacer"] = tcb.cc, tcb.pacer
        seen["after"] = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
        with pytest.raises(OSError) as info:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"westwood")
        seen["error"] = info.value
        sock.setsockopt(*SO_MAX_PACING_RATE, 1_000_000)
        seen["cap"] = (tcb.pacer.max_rate, sock.getsockopt(*SO_MAX_PACING_RATE))
        w.write(b"y" * 200_000)
        await w.drain()
        w.close()

    net.run(main(), until="30s")
    assert seen["before"] == b"cubic".ljust(16, b"\0")
    assert seen["after"] == b"bbr".ljust(16, b"\0")
    assert isinstance(seen["cc"], Bbr) and seen["pacer"] is not None
    assert seen["cwnd"][0] == seen["cwnd"][1]  # the new controller starts from the window
    err = seen["error"]
    assert err.errno == errno.ENOENT and "known: bbr, cubic, newreno, reno" in str(err)
    assert seen["cap"] == (1_000_000, 1_000_000)


def test_tcp_congestion_on_a_blocking_socket_before_connect() -> None:
    net, a, b = two_hosts()

    def client(port: int) -> tuple[bytes, bytes, str]:
        with socket.socket() as c:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"reno")
            first = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
            with pytest.raises(OSError) as info:
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"vegas")
            assert info.value.errno == errno.ENOENT
            c.connect(("b", port))
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"bbr")
            c.sendall(b"z" * 50_000)
            return first, c.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16), \
                c._tcb().cc.name

    async def scenario() -> Any:
        await b.start_server(sink, 5000)
        return await a.run_blocking(client, 5000)

    first, after, name = net.run(scenario(), until="60s")
    assert first.rstrip(b"\0") == b"reno" and after.rstrip(b"\0") == b"bbr" and name == "bbr"


SCENARIO = """
name = "one BBR flow"
duration = "20s"

[[node]]
name = "a"
kind = "host"

[[node]]
name = "b"
kind = "host"

[[link]]
ends = ["a", "b"]
delay = "5ms"
rate = "20Mbit"

[[app]]
node = "b"
kind = "tcp-sink"
port = 9

[[app]]
node = "a"
kind = "tcp-send"
to = "b"
bytes = "500kB"
congestion = "{cc}"
start = "1s"
"""


def test_tcp_send_congestion_bbr_in_a_scenario(tmp_path: Path) -> None:
    path = tmp_path / "bbr.toml"
    path.write_text(SCENARIO.format(cc="bbr"))
    sender = next(a for a in run_scenario(path)["apps"] if a["kind"] == "tcp-send")
    assert sender["ok"] and sender["congestion"] == "bbr"
    path.write_text(SCENARIO.format(cc="bbr2"))
    with pytest.raises(StacklabError, match="known: bbr, cubic, newreno, reno"):
        run_scenario(path)


def test_fq_as_the_hosts_qdisc_paces_every_connection() -> None:
    from stacklab.packetdrill.sysctl import commands_in

    net, a, b = two_hosts()
    seen = []

    async def main() -> None:
        await b.start_server(sink, 5000)
        for qdisc in ("pfifo_fast", "fq"):
            a.sysctl["net.core.default_qdisc"] = qdisc
            _, w = await a.open_connection("b", 5000)
            w.write(b"x" * 100_000)
            await w.drain()
            seen.append(w.get_extra_info("tcb").pacer)
            w.close()

    net.run(main(), until="30s")
    assert seen[0] is None and seen[1] is not None and seen[1].rate > 0  # Linux's fq paces
    with pytest.raises(StacklabError, match="expected one of pfifo_fast"):
        a.sysctl["net.core.default_qdisc"] = "htb"
    # a packetdrill script's `tc qdisc replace dev tun0 root fq` sets it
    assert commands_in("tc qdisc replace dev tun0 root fq")[0] == [
        ("net.core.default_qdisc", "fq")]
