"""The blocking facade's own behaviour (timeouts, makefile, accept, UDP errors), checked over
a stand-in host whose asyncio API is the loop's own, on loopback only. The same facade over the
real stacklab Host is exercised against Linux in the other interop tests."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from stacklab.api.realtime import RealtimeStack
from stacklab.api.sockets import SOCK_DGRAM, StackSockets
from stacklab.stack.node import Node


class LoopbackNode(Node):
    """A node without ports whose socket API is asyncio's, bound to 127.0.0.1."""

    def receive_frame(self, ifindex: int, frame: bytes, now: float) -> None:
        raise AssertionError("no ports")

    async def open_connection(self, host: str, port: int) -> Any:
        return await asyncio.open_connection(host, port)

    async def start_server(self, cb: Any, port: int, host: str = "127.0.0.1") -> Any:
        return await asyncio.start_server(cb, host, port)

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
