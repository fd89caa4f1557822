"""Urgent data and SO_LINGER through the application faces: the stream API's socket face
(``get_extra_info("socket")``) and the blocking socket facade (api/sockets.py), as a Linux
program sees them: ``send(MSG_OOB)``, ``recv(MSG_OOB)``, SIOCATMARK, SO_OOBINLINE,
SO_LINGER {1, 0}."""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
import time
from typing import Any

import pytest

import stacklab

LINGER0 = struct.pack("ii", 1, 0)


def _net() -> tuple[Any, Any, Any]:
    net = stacklab.Network(seed=5)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="1ms")
    net.autoconfigure()
    return net, a, b


def test_stream_api_oob_byte_out_of_band_and_the_stream_without_it() -> None:
    net, a, b = _net()
    seen: dict[str, Any] = {}
    got = asyncio.Event()

    async def serve(r: Any, w: Any) -> None:
        sock = w.get_extra_info("socket")
        data = await r.readexactly(6)
        seen["stream"] = data
        seen["oob"] = sock.recv(1, socket.MSG_OOB)
        with pytest.raises(OSError) as e:
            sock.recv(1, socket.MSG_OOB)
        seen["again"] = e.value.errno
        got.set()
        w.close()

    async def main() -> None:
        await b.start_server(serve, 9)
        _, w = await a.open_connection("b", 9)
        sock = w.get_extra_info("socket")
        w.write(b"abc")
        await asyncio.sleep(0.1)
        assert sock.send(b"!", socket.MSG_OOB) == 1
        w.write(b"def")
        await got.wait()
        w.close()

    net.run(main(), until="10s")
    net.close()
    assert seen == {"stream": b"abcdef", "oob": b"!", "again": errno.EINVAL}


def test_stream_api_so_linger_zero_closes_with_a_rst() -> None:
    net, a, b = _net()
    seen: dict[str, Any] = {}

    async def sink(r: Any, w: Any) -> None:
        try:
            seen["read"] = await r.read()
        except ConnectionResetError:
            seen["read"] = "reset"

    async def main() -> Any:
        await b.start_server(sink, 9)
        _, w = await a.open_connection("b", 9)
        sock = w.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        seen["linger"] = sock.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)
        tcb = w.get_extra_info("tcb")
        w.write(b"x" * 100)
        w.close()
        await asyncio.sleep(0.1)
        return tcb

    tcb = net.run(main(), until="10s")
    net.close()
    assert seen == {"linger": LINGER0, "read": "reset"}  # the peer got a RST, not a FIN
    assert "FIN-WAIT-1" not in tcb.states_entered and tcb.state.value == "CLOSED"


def test_blocking_facade_oob_atmark_and_oobinline() -> None:
    net, a, b = _net()

    def server(srv: socket.socket) -> dict[str, Any]:
        conn, _ = srv.accept()
        out: dict[str, Any] = {}
        with conn:
            conn.settimeout(5)
            time.sleep(0.3)  # everything arrived: abc, the urgent !, def
            out["first"] = conn.recv(100)  # stops at the mark
            out["atmark"] = conn.sockatmark()
            out["oob"] = conn.recv(1, socket.MSG_OOB)
            out["rest"] = conn.recv(100)
            out["after"] = conn.sockatmark()
        return out

    def client(port: int) -> None:
        c = socket.create_connection(("a", port))
        with c:
            c.sendall(b"abc")
            time.sleep(0.05)
            c.send(b"!", socket.MSG_OOB)
            time.sleep(0.05)
            c.sendall(b"def")
            time.sleep(0.2)

    async def main() -> dict[str, Any]:
        srv = await a.run_blocking(socket.create_server, ("", 0))
        port = srv.getsockname()[1]
        out, _ = await asyncio.gather(a.run_blocking(server, srv),
                                      b.run_blocking(client, port))
        return out  # type: ignore[no-any-return]

    out = net.run(main(), until="30s")
    net.close()
    assert out == {"first": b"abc", "atmark": True, "oob": b"!", "rest": b"def",
                   "after": False}


def test_blocking_facade_oobinline_keeps_the_byte_and_linger0_resets() -> None:
    net, a, b = _net()

    def server(srv: socket.socket) -> tuple[bytes, int]:
        conn, _ = srv.accept()
        conn.settimeout(5)
        got = b""
        while len(got) < 7:
            got += conn.recv(100)
        err = 0
        try:
            while conn.recv(100):
                pass
        except ConnectionResetError as e:
            err = e.errno or errno.ECONNRESET
        conn.close()
        return got, err

    def client(port: int) -> None:
        c = socket.create_connection(("a", port))
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        c.sendall(b"abc")
        time.sleep(0.05)
        c.send(b"!", socket.MSG_OOB)
        c.sendall(b"def")
        time.sleep(0.2)
        c.close()

    async def main() -> tuple[bytes, int]:
        srv = await a.run_blocking(socket.create_server, ("", 0))
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)  # inherited by accept()
        port = srv.getsockname()[1]
        out, _ = await asyncio.gather(a.run_blocking(server, srv), b.run_blocking(client, port))
        return out  # type: ignore[no-any-return]

    got, err = net.run(main(), until="30s")
    net.close()
    assert got == b"abc!def"
    assert err == errno.ECONNRESET


def test_blocking_facade_shut_rd_still_reads_what_is_queued_then_eof() -> None:
    net, a, b = _net()

    def server(srv: socket.socket) -> tuple[bytes, bytes]:
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(5)
            time.sleep(0.2)  # the client's bytes are queued
            conn.shutdown(socket.SHUT_RD)
            return conn.recv(100), conn.recv(100)

    def client(port: int) -> None:
        with socket.create_connection(("a", port)) as c:
            c.sendall(b"queued")
            time.sleep(0.5)

    async def main() -> tuple[bytes, bytes]:
        srv = await a.run_blocking(socket.create_server, ("", 0))
        out, _ = await asyncio.gather(a.run_blocking(server, srv),
                                      b.run_blocking(client, srv.getsockname()[1]))
        return out  # type: ignore[no-any-return]

    assert net.run(main(), until="30s") == (b"queued", b"")
    net.close()


def test_blocking_facade_so_linger_positive_close_waits_for_the_fin_to_be_acked() -> None:
    net = stacklab.Network(seed=5)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="100ms")
    net.autoconfigure()

    def sink(srv: socket.socket) -> None:
        for _ in range(2):
            conn, _ = srv.accept()
            with conn:
                while conn.recv(65536):
                    pass

    def close_time(port: int, linger: bool) -> float:
        c = socket.create_connection(("a", port))
        if linger:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 5))
        c.sendall(b"x" * 1000)
        t = time.monotonic()
        c.close()
        return time.monotonic() - t

    async def main() -> tuple[float, float]:
        srv = await a.run_blocking(socket.create_server, ("", 0))
        port = srv.getsockname()[1]
        served = asyncio.ensure_future(a.run_blocking(sink, srv))
        plain = await b.run_blocking(close_time, port, False)
        lingered = await b.run_blocking(close_time, port, True)
        await served
        return plain, lingered

    plain, lingered = net.run(main(), until="60s")
    net.close()
    assert plain < 0.01  # close() returns at once, the FIN goes after the data
    # with SO_LINGER {1, 5}: until the data and the FIN are acknowledged, one RTT (200 ms)
    assert 0.19 <= lingered < 1.0
