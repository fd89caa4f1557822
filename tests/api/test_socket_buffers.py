"""SO_RCVBUF / SO_SNDBUF through a connection's socket face, as Linux: the buffers autotune
until the application sets a size, which Linux doubles (socket(7)) and then keeps."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import stacklab


def on_a_connection(client: Callable[[Any, dict], Awaitable[None]], until: str) -> dict:
    """Run ``client(writer, seen)`` on a connection from a to b's sink; what it saw."""
    net = stacklab.Network(seed=3)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="1ms")
    net.autoconfigure()
    seen: dict = {}

    async def sink(r, w):
        await r.read()
        w.close()

    async def main():
        await b.start_server(sink, 9)
        _, w = await a.open_connection("b", 9)
        await client(w, seen)
        w.close()

    net.run(main(), until=until)
    net.close()
    return seen


def test_setting_a_buffer_size_fixes_it_and_reads_back_doubled() -> None:
    async def client(w, seen):
        sock = w.get_extra_info("socket")
        seen["initial"] = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
        seen["set"] = (sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
                       sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))
        tcb = w.get_extra_info("tcb")
        seen["autotune"] = (tcb.rcv_autotune, tcb.snd_autotune)
        w.write(bytes(1_000_000))
        await w.drain()
        seen["after"] = tcb.sendbuf.capacity

    seen = on_a_connection(client, "30s")
    assert seen["initial"] == 131072  # tcp_rmem's default: where autotuning starts
    assert seen["set"] == (131072, 65536)
    assert seen["autotune"] == (False, False)
    assert seen["after"] == 65536  # a megabyte through it did not grow it


def test_a_tiny_buffer_size_is_raised_to_linux_floor() -> None:
    """SO_SNDBUF keeps room for two minimal skbs, SO_RCVBUF for one (Linux SOCK_MIN_SNDBUF
    4608, SOCK_MIN_RCVBUF 2304), the same rule as the packetdrill adapter's."""
    async def client(w, seen):
        sock = w.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 100)
        seen["set"] = (sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
                       sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))

    assert on_a_connection(client, "5s")["set"] == (4608, 2304)
