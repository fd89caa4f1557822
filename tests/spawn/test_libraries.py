"""Real asyncio libraries, unchanged, on simulated hosts (host.spawn): aiohttp (client and
server), httpx, websockets, asyncssh, aiosmtpd with aiosmtplib.

Each runs a client on ``a`` and a server on ``b`` over a lossy link, through a partition that
heals in the middle of the exchange; the data is checked end to end, and the same seed run twice
gives the same pcap. websockets and asyncssh draw from the OS random source as their protocols
demand (RFC 6455 §5.3 masking keys, SSH key exchange), so for them every frame is the same —
time, size, every header — but the encrypted or masked TCP payload."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from stacklab.device.pcap import read_pcap
from stacklab.net.network import Network

ROUNDS = 8
GAP = 0.4  # s between rounds: the rounds span the partition
PARTITION = (1.0, 2.5)  # s
SEED = 11
DATE = "Thu, 01 Jan 1970 00:00:00 GMT"


def payload(i: int) -> bytes:
    return hashlib.sha256(b"%d" % i).digest() * (64 + 40 * i)  # 2 KiB .. 11 KiB


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def rounds(one: Callable[[int, bytes], Awaitable[Any]]) -> list[bool]:
    """``one(i, data)`` returns what the server said about ``data``: True when it is right."""
    out = []
    for i in range(ROUNDS):
        data = payload(i)
        out.append(await one(i, data) == digest(data))
        await asyncio.sleep(GAP)
    return out


# -- the libraries -------------------------------------------------------------------------------
def aiohttp_pair() -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[list[bool]]]]:
    import aiohttp
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        # the Date header is the wall clock's (time.time), which no seed controls: ours
        return web.Response(text=digest(await request.read()), headers={"Date": DATE})

    async def server() -> None:
        app = web.Application()
        app.router.add_post("/sum", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, None, 8080).start()
        await asyncio.Event().wait()

    async def client() -> list[bool]:
        async with aiohttp.ClientSession() as session:
            async def one(i: int, data: bytes) -> str:
                async with session.post("http://b:8080/sum", data=data) as response:
                    return await response.text()
            return await rounds(one)

    return server, client


def httpx_pair() -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[list[bool]]]]:
    import httpx

    server, _ = aiohttp_pair()

    async def client() -> list[bool]:
        async with httpx.AsyncClient(timeout=30) as http:
            async def one(i: int, data: bytes) -> str:
                return (await http.post("http://b:8080/sum", content=data)).text
            return await rounds(one)

    return server, client


def websockets_pair() -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[list[bool]]]]:
    import websockets

    async def answer(ws: Any) -> None:
        async for message in ws:
            await ws.send(digest(message))

    async def server() -> None:
        async with websockets.serve(answer, None, 8765):
            await asyncio.Event().wait()

    async def client() -> list[bool]:
        async with websockets.connect("ws://b:8765") as ws:
            async def one(i: int, data: bytes) -> str:
                await ws.send(data)
                return str(await ws.recv())
            return await rounds(one)

    return server, client


def asyncssh_pair() -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[list[bool]]]]:
    import asyncssh

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, password: str) -> bool:
            return username == "u" and password == "secret"

    async def process(proc: Any) -> None:
        size = int(proc.command)
        data = await proc.stdin.readexactly(size)
        proc.stdout.write(digest(data).encode())
        proc.exit(0)

    async def server() -> None:
        key = asyncssh.generate_private_key("ssh-ed25519")
        await asyncssh.create_server(Server, "", 2222, server_host_keys=[key],
                                     process_factory=process, encoding=None)
        await asyncio.Event().wait()

    async def client() -> list[bool]:
        async with asyncssh.connect("b", 2222, known_hosts=None, username="u",
                                    password="secret", client_keys=None) as conn:
            # asyncssh turns SO_KEEPALIVE on through get_extra_info("socket"): the TCB has it
            sock = conn.get_extra_info("socket")
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert conn.get_extra_info("tcb").config.keepalive

            async def one(i: int, data: bytes) -> str:
                result = await conn.run(str(len(data)), input=data, encoding=None)
                return bytes(result.stdout).decode()
            return await rounds(one)

    return server, client


def smtp_pair() -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[list[bool]]]]:
    import aiosmtplib
    from aiosmtpd.smtp import SMTP

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            body = envelope.content.split(b"\r\n\r\n", 1)[1]
            data = bytes.fromhex(body.replace(b"\r\n", b"").decode())
            return f"250 {digest(data)}"

    async def server() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_server(lambda: SMTP(Handler(), hostname="b"), None, 25)
        await asyncio.Event().wait()

    async def client() -> list[bool]:
        smtp = aiosmtplib.SMTP(hostname="b", port=25, local_hostname="a", start_tls=False)
        await smtp.connect()

        async def one(i: int, data: bytes) -> str:
            body = data.hex().encode()  # lines of 76 characters, as mail carries them
            lines = b"\r\n".join(body[k:k + 76] for k in range(0, len(body), 76))
            _, reply = await smtp.sendmail("a@a", ["b@b"], b"Subject: %d\r\n\r\n" % i + lines)
            return reply

        try:
            return await rounds(one)
        finally:
            await smtp.quit()

    return server, client


LIBRARIES: dict[str, tuple[Callable[[], Any], bool]] = {  # name -> (pair, byte-identical pcaps)
    "aiohttp": (aiohttp_pair, True),
    "httpx": (httpx_pair, True),
    "websockets": (websockets_pair, False),
    "asyncssh": (asyncssh_pair, False),
    "aiosmtplib+aiosmtpd": (smtp_pair, True),
}


# -- the run ---------------------------------------------------------------------------------------
def run(name: str, pcaps: Path, seed: int = SEED) -> tuple[list[bool], dict[str, int]]:
    server, client = LIBRARIES[name][0]()
    with Network(seed=seed) as net:
        a, b = net.add_host("a"), net.add_host("b")
        link = net.connect(a, b, delay="5ms", loss=0.03)
        net.autoconfigure()
        net.capture(pcaps)
        b.spawn(server())
        task = a.spawn(client())
        net.loop.call_at(PARTITION[0], net.partition, ["a"], ["b"])
        net.loop.call_at(PARTITION[1], net.heal)
        result = net.run(task, until="120s")
        drops = {k: v for d in link.directions for k, v in d.counters.items()
                 if k.startswith("drop.")}
        counts: dict[str, int] = {}
        for k, v in drops.items():
            counts[k] = counts.get(k, 0) + v
        return result, counts


def frames(path: Path, with_payload: bool) -> list[tuple[int, bytes]]:
    """(time in ns, frame) of a pcap; without the TCP payload (and the TCP checksum that
    covers it) unless ``with_payload``."""
    out = []
    for rec in read_pcap(str(path))[1]:
        data = rec.data
        if not with_payload and len(data) > 34 and data[12:14] == b"\x08\x00" and data[23] == 6:
            ip = 14 + (data[14] & 0x0F) * 4
            tcp_end = ip + (data[ip + 12] >> 4) * 4
            data = data[:ip + 16] + b"\0\0" + data[ip + 18:tcp_end] + b"%d" % (len(data) - tcp_end)
        out.append((rec.time_ns, data))
    return out


@pytest.mark.parametrize("name", list(LIBRARIES))
def test_a_library_unchanged_through_loss_and_a_partition_deterministically(
        name: str, tmp_path: Path) -> None:
    result, drops = run(name, tmp_path / "1")
    assert result == [True] * ROUNDS  # every round's data arrived intact
    assert drops.get("drop.loss", 0) > 0 and drops.get("drop.partition", 0) > 0
    again, _ = run(name, tmp_path / "2")
    assert again == result
    exact = LIBRARIES[name][1]
    first = frames(tmp_path / "1" / "a-b.pcap", exact)
    assert len(first) > 40
    assert frames(tmp_path / "2" / "a-b.pcap", exact) == first
