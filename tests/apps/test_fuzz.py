"""Mutated and random input to every line/HTTP server: protocol errors, never a crashed server.

Seeded mutations of valid sessions (byte flips, truncation, inserted CR/LF/NUL, duplicated
spans, huge repeats) are sent, the write side is half-closed, and the answer is read until
the server closes. Afterwards the server must still serve a normal client and must not have
counted an internal error.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from stacklab.apps.common import AsyncioNet, ServerLimits
from stacklab.apps.ftp import ftp_get, serve_ftp
from stacklab.apps.http import http_get, serve_http
from stacklab.apps.smtp import send_mail, serve_smtp

SEEDS = {
    "http": [b"GET /a?bytes=10 HTTP/1.1\r\nHost: x\r\n\r\n",
             b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
             b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"3\r\nabc\r\n0\r\n\r\n",
             b"HEAD / HTTP/1.0\r\n\r\n"],
    "smtp": [b"EHLO x\r\nMAIL FROM:<a@b> SIZE=10\r\nRCPT TO:<c@d>\r\nDATA\r\n"
             b"hi\r\n..x\r\n.\r\nQUIT\r\n",
             b"HELO y\r\nRSET\r\nNOOP\r\nVRFY z\r\nMAIL FROM:<>\r\nRCPT TO:<q@r>\r\nDATA\r\n.\r\n"],
    "ftp": [b"USER anonymous\r\nPASS a@\r\nPWD\r\nCWD /\r\nTYPE I\r\nSIZE x\r\nMKD d\r\nCWD d\r\n"
            b"CDUP\r\nRMD d\r\nEPSV\r\nPASV\r\nPORT 127,0,0,1,200,1\r\nEPRT |1|127.0.0.1|5|\r\n"
            b"DELE nothing\r\nQUIT\r\n"],
}


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(7)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif op == 1:
            del buf[pos:]
        elif op == 2:
            buf[pos:pos] = rng.choice([b"\r", b"\n", b"\x00", b" ", b":", b"\r\n\r\n", b"."])
        elif op == 3 and buf:
            end = min(len(buf), pos + rng.randint(1, 40))
            buf[pos:pos] = buf[pos:end] * rng.randint(1, 4)
        elif op == 4:
            buf[pos:pos] = bytes([rng.randrange(256)]) * rng.choice([10, 1000, 70_000])
        elif op == 5:
            buf[pos:pos] = rng.randbytes(rng.randint(1, 64))
        else:
            buf = bytearray(buf.upper() if rng.random() < 0.5 else buf.lower())
    return bytes(buf)


async def poke(net: Any, port: int, data: bytes) -> bytes:
    reader, writer = await net.open_connection("127.0.0.1", port)
    out = bytearray()
    try:
        writer.write(data)
        await writer.drain()
        writer.write_eof()
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), 5)
            if not chunk:
                break
            out += chunk
    except (ConnectionError, TimeoutError):
        pass
    finally:
        writer.close()
    return bytes(out)


@pytest.mark.parametrize("kind", ["http", "smtp", "ftp"])
def test_mutated_sessions_never_crash_a_server(kind: str) -> None:
    rng = random.Random(f"fuzz-{kind}")
    limits = ServerLimits(max_header=4096, max_message=50_000, idle_timeout=5)

    async def main() -> None:
        net = AsyncioNet()
        if kind == "http":
            server: Any = await serve_http(net, 0, bytes=10, limits=limits)
        elif kind == "smtp":
            server = await serve_smtp(net, 0, limits=limits)
        else:
            server = await serve_ftp(net, 0, bytes=10, limits=limits)
        try:
            answered = 0
            for i in range(120):
                data = (rng.randbytes(rng.randint(0, 300)) if i % 10 == 9
                        else mutate(rng, rng.choice(SEEDS[kind])))
                answer = await poke(net, server.port, data)
                answered += bool(answer)
            assert answered >= 100  # a greeting, an error or a response, nearly always
            assert server.errors.get("internal", 0) == 0, server.errors
            # and it still works for a well-behaved client
            if kind == "http":
                assert (await http_get(net, "127.0.0.1", "/", port=server.port)).status == 200
            elif kind == "smtp":
                assert (await send_mail(net, "127.0.0.1", server.port, "a@b", "c@d", b"x")).ok
            else:
                assert (await ftp_get(net, "127.0.0.1", server.port, "f")).bytes == 10
            for _ in range(100):  # every session ends (the last client just left)
                if server.gate.active == 0:
                    break
                await asyncio.sleep(0.01)
            assert server.gate.active == 0
        finally:
            await server.close()
    asyncio.run(asyncio.wait_for(main(), 60))
