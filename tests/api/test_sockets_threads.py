"""The blocking facade (stacklab/api/sockets.py) driven from other threads, as over TAP
(RealtimeStack's runner): timeouts, makefile, accept, UDP errors, the real descriptor each
socket has for select/selectors/asyncio (the socketpair bridge), and ``use_sockets(net)``
that makes the socket module's names the stack's so http.client needs no connect of ours.
Checked over a stand-in host whose asyncio API is the kernel's loopback (no root, 127.0.0.1
only); the same facade over the real stacklab Host is exercised against Linux in the interop
tests (tests/interop/test_blocking_fd.py)."""

from __future__ import annotations

import asyncio
import http.client
import select
import selectors
import socket
import threading
import urllib.request
from typing import Any

import pytest

from stacklab.api.blocking import use_sockets
from stacklab.api.realtime import RealtimeStack
from stacklab.api.sockets import SOCK_DGRAM, StackSocket, StackSockets
from stacklab.stack.node import Node


class LoopbackNode(Node):
    """A node without ports whose socket API is asyncio's, on 127.0.0.1; every name is it."""

    def receive_frame(self, ifindex: int, frame: bytes, now: float) -> None:
        raise AssertionError("no ports")

    async def lookup(self, name: str, family: int | None = None) -> list[str]:
        return ["127.0.0.1"]

    async def create_connection(self, factory: Any, host: str, port: int, *,
                                local_addr: Any = None, **_options: Any) -> Any:
        return await asyncio.get_running_loop().create_connection(
            factory, host, port, local_addr=local_addr)

    async def create_server(self, factory: Any, host: str | None = None, port: int = 0, *,
                            backlog: int = 100, **_options: Any) -> Any:
        return await asyncio.get_running_loop().create_server(
            factory, host or "127.0.0.1", port, backlog=backlog)

    async def create_datagram_endpoint(self, factory: Any, **kw: Any) -> Any:
        kw.pop("family", None)
        if kw.get("local_addr", ("", 0))[0] == "":
            kw["local_addr"] = ("127.0.0.1", kw.get("local_addr", ("", 0))[1])
        return await asyncio.get_running_loop().create_datagram_endpoint(factory, **kw)


@pytest.fixture
def net():
    stack = RealtimeStack(LoopbackNode("lo"), []).start()
    yield StackSockets(stack)
    stack.stop()
    assert not stack.running


def test_tcp_round_trip_accept_makefile_and_eof(net: StackSockets) -> None:
    srv = net.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    got: list[bytes] = []

    def serve() -> None:
        conn, peer = srv.accept()
        with conn:
            f = conn.makefile("rb")
            line = f.readline()
            got.append(line)
            conn.sendall(line.upper() * 1000)

    t = threading.Thread(target=serve)
    t.start()
    with net.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(b"hello stacklab\n")
        data = bytearray()
        while chunk := c.recv(65536):
            data += chunk
    t.join(5)
    srv.close()
    assert got == [b"hello stacklab\n"]
    assert bytes(data) == b"HELLO STACKLAB\n" * 1000


def test_recv_timeout_and_nonblocking(net: StackSockets) -> None:
    srv = net.create_server(("127.0.0.1", 0))
    c = net.create_connection(srv.getsockname(), timeout=5)
    conn, _ = srv.accept()
    c.settimeout(0.2)
    with pytest.raises(TimeoutError, match="^timed out$"):
        c.recv(10)
    c.setblocking(False)
    with pytest.raises(BlockingIOError):
        c.recv(10)
    conn.sendall(b"x")
    c.settimeout(2)
    assert c.recv(10) == b"x"  # the timed-out reads lost nothing
    for s in (c, conn, srv):
        s.close()


def test_connect_refused(net: StackSockets) -> None:
    srv = net.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    srv.close()
    with pytest.raises(ConnectionRefusedError):
        net.create_connection(("127.0.0.1", port), timeout=5)


def test_udp_sendto_recvfrom_and_refused(net: StackSockets) -> None:
    a = net.socket(type=SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b = net.socket(type=SOCK_DGRAM)
    b.settimeout(5)
    a.settimeout(5)
    b.sendto(b"ping", a.getsockname())
    data, addr = a.recvfrom(100)
    assert data == b"ping"
    a.sendto(b"pong", addr)
    assert b.recvfrom(2) == (b"po", a.getsockname())  # truncated to bufsize, like a socket
    a.settimeout(0.2)
    with pytest.raises(TimeoutError, match="^timed out$"):
        a.recvfrom(100)
    gone = a.getsockname()
    a.close()
    b.connect(gone)
    b.send(b"anyone?")
    with pytest.raises(ConnectionRefusedError):
        b.recv(100)
    b.close()


def test_closed_socket_raises(net: StackSockets) -> None:
    s = net.socket()
    s.close()
    with pytest.raises(OSError, match="Bad file descriptor"):
        s.connect(("127.0.0.1", 1))


def test_makefile_keeps_connection_open_after_close(net: StackSockets) -> None:
    srv = net.create_server(("127.0.0.1", 0))
    c = net.create_connection(srv.getsockname(), timeout=5)
    conn, _ = srv.accept()
    conn.sendall(b"line one\nline two\n")
    conn.close()
    f = c.makefile("rb")
    c.close()  # as http.client does before reading the body
    assert f.read() == b"line one\nline two\n"
    f.close()
    with pytest.raises(OSError, match="Bad file descriptor"):
        c.recv(1)
    srv.close()


def test_fileno_is_a_descriptor_select_selectors_and_asyncio_wait_on(net: StackSockets) -> None:
    srv = net.create_server(("127.0.0.1", 0))
    assert select.select([srv], [], [], 0) == ([], [], [])
    c = net.create_connection(srv.getsockname(), timeout=5)
    assert select.select([srv], [], [], 5) == ([srv], [], [])  # a connection to accept
    conn, _ = srv.accept()
    assert select.select([srv, c], [c], [], 0) == ([], [c], [])
    conn.sendall(b"ab")
    assert select.select([c], [], [], 5) == ([c], [], [])
    assert c.recv(1) == b"a"
    assert select.select([c], [], [], 0) == ([c], [], [])  # one byte still buffered
    assert c.recv(1) == b"b"
    assert select.select([c], [], [], 0) == ([], [], [])  # drained: not readable any more
    with selectors.DefaultSelector() as sel:
        sel.register(c, selectors.EVENT_READ, "c")
        assert sel.select(0) == []
        conn.sendall(b"sel")
        assert [(k.data, ev) for k, ev in sel.select(5)] == [("c", selectors.EVENT_READ)]
    assert c.recv(10) == b"sel"

    async def wait_with_asyncio() -> bytes:
        loop = asyncio.get_running_loop()
        readable = loop.create_future()
        loop.add_reader(c.fileno(), readable.set_result, None)
        try:
            conn.sendall(b"aio")
            await asyncio.wait_for(readable, 5)
        finally:
            loop.remove_reader(c.fileno())
        return c.recv(10)
    assert asyncio.run(wait_with_asyncio()) == b"aio"
    conn.close()
    assert select.select([c], [], [], 5) == ([c], [], [])  # EOF is readable
    assert c.recv(10) == b""
    for s in (c, srv):
        s.close()


def test_use_runs_unmodified_http_client_and_urllib_on_the_stack(net: StackSockets) -> None:
    srv = net.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    body = b"x" * 100_000

    def serve(n: int) -> None:
        for _ in range(n):
            conn, _ = srv.accept()
            with conn:
                request = conn.makefile("rb")
                while request.readline() not in (b"\r\n", b""):
                    pass
                request.close()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close"
                             b"\r\n\r\n%s" % (len(body), body))

    t = threading.Thread(target=serve, args=(2,))
    t.start()
    # "stacklab.invalid" resolves only through the stack's resolve(): no real look-up is made
    with use_sockets(net):
        conn = http.client.HTTPConnection("stacklab.invalid", port, timeout=10)
        conn.request("GET", "/")
        assert isinstance(conn.sock, StackSocket)
        assert conn.getresponse().read() == body
        conn.close()
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://stacklab.invalid:{port}/", timeout=10) as r:
            assert r.read() == body
    t.join(10)
    srv.close()
    with socket.socket() as outside:  # outside use(): the real module's
        assert not isinstance(outside, StackSocket)
