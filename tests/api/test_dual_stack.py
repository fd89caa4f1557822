"""Listening on ``::`` (or on no address) is both families, as a Linux socket on ``::`` with
IPV6_V6ONLY off; ``v6only=True`` keeps IPv6 alone (issue 20 item 12)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from stacklab.cli.tap import ConnLog, parse_services, start_services
from stacklab.net.network import Network


@pytest.fixture
def net() -> Iterator[Network]:
    with Network(seed=8) as n:
        n.add_host("a"), n.add_host("b")
        n.connect("a", "b", delay="1ms")
        n.autoconfigure()
        yield n


async def _udp_ask(host: Any, addr: str, port: int, data: bytes) -> bytes | None:
    sock = host.udp_socket(6 if ":" in addr else 4)
    sock.connect((addr, port))
    await sock.send(data)
    try:
        return await asyncio.wait_for(sock.recv(), 1.0)
    except (TimeoutError, ConnectionRefusedError):
        return None
    finally:
        sock.close()


def test_the_cli_udp_services_answer_both_families(net: Network) -> None:
    a, b = net.nodes["a"], net.nodes["b"]

    async def main() -> list[Any]:
        await start_services(b, parse_services("udp-echo:7,udp-discard:9,echo:7"),
                             ConnLog(quiet=True))
        await asyncio.sleep(3)  # DAD
        out: list[Any] = []
        for addr in (b.address(4), b.address(6)):
            out.append(await _udp_ask(a, addr, 7, b"ping"))
            sock = a.udp_socket(6 if ":" in addr else 4)
            sock.connect((addr, 9))
            await sock.send(b"into the void")
            await asyncio.sleep(0.1)
            with pytest.raises(TimeoutError):  # discarded, not refused
                await asyncio.wait_for(sock.recv(), 1.0)
            sock.close()
            reader, writer = await a.open_connection(addr, 7)
            writer.write(b"tcp")
            out.append(await reader.readexactly(3))
            writer.close()
        return out

    assert net.run(main(), until=60) == [b"ping", b"tcp", b"ping", b"tcp"]


def test_a_udp_socket_on_the_wildcard_is_dual_stack_unless_v6only(net: Network) -> None:
    a, b = net.nodes["a"], net.nodes["b"]

    async def echo_on(port: int, v6only: bool) -> None:
        sock = b.udp_socket(6, v6only=v6only)
        sock.bind(("::", port))
        while True:
            data, peer = await sock.recvfrom()
            await sock.sendto(data.upper(), peer)

    async def main() -> list[Any]:
        for port, v6only in ((5000, False), (5001, True)):
            asyncio.ensure_future(echo_on(port, v6only))
        await asyncio.sleep(3)
        return [await _udp_ask(a, addr, port, b"hi") for port in (5000, 5001)
                for addr in (b.address(4), b.address(6))]

    assert net.run(main(), until=60) == [b"HI", b"HI", None, b"HI"]


def test_a_tcp_server_on_colons_is_dual_stack_unless_v6only(net: Network) -> None:
    a, b = net.nodes["a"], net.nodes["b"]

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read(10))
        writer.close()

    async def main() -> list[Any]:
        dual = await b.start_server(echo, 7000, "::")
        only6 = await b.start_server(echo, 7001, "::", v6only=True)
        assert [s.getsockname() for s in dual.sockets + only6.sockets] == [
            ("::", 7000, 0, 0), ("::", 7001, 0, 0)]
        await asyncio.sleep(3)
        out: list[Any] = []
        for port in (7000, 7001):
            for addr in (b.address(4), b.address(6)):
                try:
                    reader, writer = await a.open_connection(addr, port)
                except ConnectionRefusedError:
                    out.append("refused")
                    continue
                writer.write(b"x")
                out.append(await reader.read())
                writer.close()
        return out

    assert net.run(main(), until=60) == [b"x", b"x", "refused", b"x"]
