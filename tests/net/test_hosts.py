"""The Network with real Hosts and Routers: names resolve, TIME-WAIT and idle hours are cheap."""

from __future__ import annotations

import asyncio
import time

import pytest

import stacklab


@pytest.fixture
def lan():
    net = stacklab.Network(seed=2)
    a, r, b = net.add_host("a"), net.add_router("r"), net.add_host("b")
    net.connect(a, r, delay="5ms", rate="100Mbit")
    net.connect(r, b, delay="5ms", rate="100Mbit", loss=0.01)
    net.autoconfigure()
    yield net
    net.close()


def test_addresses_and_names(lan):
    a, b = lan["a"], lan["b"]
    assert a.address(4) == "10.0.1.1" and a.address(6) == "fd00:0:0:1::1"
    assert b.address(4) == "10.0.2.2"
    assert a.hosts["b"] == ["10.0.2.2", "fd00:0:0:2::2"]


def test_tcp_by_name_through_the_router_then_time_wait(lan):
    a, b = lan["a"], lan["b"]
    got = []

    async def handle(reader, writer):
        got.append(await reader.read())
        writer.close()

    async def main():
        server = await b.start_server(handle, 80)
        reader, writer = await a.open_connection("b", 80)
        writer.write(b"hello over a simulated router")
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.5)
        server.close()
        return writer.get_extra_info("peername")

    peer = lan.run(main(), until="30s")
    assert peer[0] == "10.0.2.2"
    assert got == [b"hello over a simulated router"]
    start = time.perf_counter()
    lan.run(until=lan.now + 3600)  # TIME-WAIT expires, then an idle hour
    assert time.perf_counter() - start < 60.0  # an idle virtual hour, no real sleeping
    states = [c["states"] for c in a.tcp_connections_summary()]
    assert states and states[0][-1] == "CLOSED" and "TIME-WAIT" in states[0]


def test_ping_v6_by_name(lan):
    result = lan.run(lan["a"].ping("b", count=3, family=6, out=None), until="20s")
    assert result.address == "fd00:0:0:2::2" and result.received >= 2


def test_ping_output_is_a_callable_none_or_stdout(lan):
    lines = []
    result = lan.run(lan["a"].ping("b", count=1, out=lines.append), until="5s")
    assert result.ok and lines[0].startswith("PING b (10.0.2.2)") and lines == result.lines
    with pytest.raises(ValueError, match="'stderr'"):  # not a TypeError once the first line prints
        lan.run(lan["a"].ping("b", count=1, out="stderr"), until="5s")


def test_a_host_reaches_its_own_address_through_the_deferred_loopback():
    """Packets to one of our own addresses come back from the host's timer at the time they were
    sent (a real deadline, not a 0.0 "run soon" value): ping and TCP to ourselves work."""
    net = stacklab.Network(seed=1)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b)
    net.autoconfigure()

    async def main():
        ping = await a.ping(a.address(4), count=2)

        async def echo(reader, writer):
            writer.write(await reader.read(100))
            await writer.drain()
            writer.close()

        await a.start_server(echo, 7)
        reader, writer = await a.open_connection(a.address(4), 7)
        writer.write(b"hi")
        assert a.get_timer() is None or a.get_timer() >= net.loop.time() - 1e-9
        return ping.received, await reader.read(10)

    assert net.run(main(), until=100) == (2, b"hi")
    net.close()
