"""host.spawn(coro): plain asyncio code whose network calls go through the host's stack."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from stacklab.api.spawn import NotSimulated, OutsideHostError
from stacklab.net.network import Network


@pytest.fixture
def net() -> Any:
    with Network(seed=3) as net:
        a, r, b = net.add_host("a"), net.add_router("r"), net.add_host("b")
        c = net.add_host("c")
        net.connect(a, r, delay="2ms")
        net.connect(r, b, delay="2ms")
        net.connect(r, c, delay="2ms")
        net.autoconfigure()
        yield net


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1000):
        writer.write(data)
        await writer.drain()
    writer.close()


async def serve(port: int = 7) -> None:
    server = await asyncio.start_server(echo, None, port)
    await server.serve_forever()


def test_plain_asyncio_streams_run_on_the_hosts(net: Network) -> None:
    a, b = net["a"], net["b"]

    async def client() -> tuple[bytes, Any, Any]:
        reader, writer = await asyncio.open_connection("b", 7)
        writer.write(b"hello" * 1000)
        got = await reader.readexactly(5000)
        sockname, peername = writer.get_extra_info("sockname"), writer.get_extra_info("peername")
        writer.close()
        return got, sockname, peername

    b.spawn(serve())
    got, sockname, peername = net.run(a.spawn(client()), until="10s")
    assert got == b"hello" * 1000
    assert sockname[0] == a.address(4) and peername == (b.address(4), 7)
    assert b.tcp_connections_summary()  # the connection was b's stack's, not the kernel's


def test_child_tasks_and_server_callbacks_run_on_their_own_host(net: Network) -> None:
    """A task the program creates is on the program's host; the handler of a connection
    accepted by b runs on b even though a's program caused it (a relay on b dials c)."""
    a, b, c = net["a"], net["b"], net["c"]
    seen: list[str] = []

    async def who(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(writer.get_extra_info("peername")[0])
        writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, out = await asyncio.open_connection("c", 8)
        out.close()
        writer.close()

    async def servers_c() -> None:
        await (await asyncio.start_server(who, None, 8)).serve_forever()

    async def servers_b() -> None:
        await (await asyncio.start_server(relay, None, 7)).serve_forever()

    async def client() -> None:
        async def child() -> None:
            _, w = await asyncio.open_connection("c", 8)
            w.close()
        await asyncio.gather(asyncio.create_task(child()), asyncio.open_connection("b", 7))
        await asyncio.sleep(1)

    c.spawn(servers_c())
    b.spawn(servers_b())
    net.run(a.spawn(client()), until="10s")
    assert sorted(seen) == sorted([a.address(4), b.address(4)])


def test_names_resolve_on_the_simulated_network(net: Network) -> None:
    a, b = net["a"], net["b"]

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo("b", 80, type=socket.SOCK_STREAM)
        name = await loop.getnameinfo((b.address(4), 80))
        try:
            await loop.getaddrinfo("nosuch", 80)
        except socket.gaierror as exc:
            unknown = str(exc)
        return infos, name, unknown

    infos, name, unknown = net.run(a.spawn(main()))
    assert [i[4] for i in infos] == [(b.address(4), 80), (b.address(6), 80, 0, 0)]
    assert infos[0][:3] == (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    assert name == ("b", "80")
    assert "unknown host 'nosuch' on the simulated network (known: a, b, c, r)" in unknown
    assert "\n" not in unknown


def test_a_call_outside_any_host_says_to_use_spawn(net: Network) -> None:
    async def main() -> None:
        await asyncio.open_connection("b", 7)

    with pytest.raises(OutsideHostError, match=r"outside any host.*host\.spawn\(coro\)"):
        net.run(main())


def test_unix_sockets_and_tls_are_refused_clearly(net: Network) -> None:
    a = net["a"]

    async def unix() -> None:
        await asyncio.open_unix_connection("/tmp/x")

    async def tls() -> None:
        import ssl
        await asyncio.open_connection("b", 443, ssl=ssl.create_default_context())

    with pytest.raises(NotSimulated, match="Unix sockets are not simulated"):
        net.run(a.spawn(unix()))
    with pytest.raises(NotSimulated, match="TLS"):
        net.run(a.spawn(tls()))


def test_the_transport_socket_reads_and_sets_tcp_options(net: Network) -> None:
    """What aiohttp, anyio and websockets call on get_extra_info("socket"); keepalive set
    through it really probes: across a partition the idle connection times out."""
    a, b = net["a"], net["b"]

    async def client() -> tuple[list[Any], str]:
        reader, writer = await asyncio.open_connection("b", 7)
        sock = writer.get_extra_info("socket")
        seen = [sock.family, sock.type, sock.fileno(), sock.getpeername(),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)]
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 2)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        seen += [sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                 sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                 sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)]
        net.partition(["a"], ["b"])
        try:
            await reader.read(10)
        except OSError as exc:
            return seen, f"{type(exc).__name__} at {asyncio.get_running_loop().time():.0f}s"
        return seen, "no error"

    b.spawn(serve())
    seen, end = net.run(a.spawn(client()), until="60s")
    assert seen == [socket.AF_INET, socket.SOCK_STREAM, -1, (b.address(4), 7), 1, 1, 2, 1]
    assert end == "TimeoutError at 5s"  # idle 2 s, then 3 probes 1 s apart


def test_sock_connect_then_create_connection_with_that_socket(net: Network) -> None:
    """The aiohappyeyeballs path (aiohttp): a kernel socket is only the key of a connection
    the host opens; sock_sendall / sock_recv use it before create_connection(sock=)."""
    a, b = net["a"], net["b"]

    async def client() -> tuple[bytes, bytes]:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        await loop.sock_connect(sock, (b.address(4), 7))
        await loop.sock_sendall(sock, b"ping")
        first = await loop.sock_recv(sock, 100)
        reader = asyncio.StreamReader()
        transport, _ = await loop.create_connection(
            lambda: asyncio.StreamReaderProtocol(reader), sock=sock)
        transport.write(b"pong")
        second = await reader.readexactly(4)
        transport.close()
        return first, second

    b.spawn(serve())
    assert net.run(a.spawn(client()), until="10s") == (b"ping", b"pong")


def test_datagram_endpoints_are_the_hosts(net: Network) -> None:
    a, b = net["a"], net["b"]

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.transport.sendto(data.upper(), addr)

    class Client(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.got: asyncio.Future[tuple[bytes, Any]] = (
                asyncio.get_running_loop().create_future())

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.got.set_result((data, addr))

    async def server() -> None:
        await asyncio.get_running_loop().create_datagram_endpoint(Echo, local_addr=("", 53))
        await asyncio.Event().wait()

    async def client() -> tuple[bytes, Any]:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            Client, remote_addr=(b.address(4), 53))
        transport.sendto(b"query")
        return await protocol.got

    b.spawn(server())
    assert net.run(a.spawn(client()), until="5s") == (b"QUERY", (b.address(4), 53))
