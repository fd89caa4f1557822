"""The fixed scenarios of the golden test: each one a small, seeded simulation whose pcaps and
counters must stay byte-identical across refactors (smoltcp's `tests/netsim.rs` snapshot idea).

A scenario builds its network through the public API (``stacklab.Network``), captures every link
(``rx`` point) into ``directory``, runs one workload and returns the network's counters. The
caller hashes the pcaps. Keep these small: the whole set runs in a few seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import stacklab
from stacklab.apps.common import pattern_bytes, sha256_hex

Scenario = Callable[[Path], dict[str, Any]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__.replace("_", "-")] = fn
    return fn


def _bulk(directory: Path, *, size: int, family: int = 4, seed: int = 1,
          read_size: int = 65536, read_pause: float = 0.0, **link: Any) -> dict[str, Any]:
    """``a`` sends ``size`` seeded bytes to ``b``, which reads ``read_size`` at a time (pausing
    ``read_pause`` virtual seconds between reads) and checks the SHA-256."""
    data = random.Random(f"golden/{seed}").randbytes(size)
    with stacklab.Network(seed=seed) as net:
        a, b = net.add_host("a"), net.add_host("b")
        net.connect(a, b, **link)
        net.autoconfigure()
        net.capture(directory)

        async def main() -> str:
            got = hashlib.sha256()

            async def sink(reader: Any, writer: Any) -> None:
                while chunk := await reader.read(read_size):
                    got.update(chunk)
                    if read_pause:
                        await asyncio.sleep(read_pause)
                writer.close()

            await b.start_server(sink, 9000)
            _, writer = await a.open_connection(b.address(family), 9000)
            for i in range(0, size, 32768):
                writer.write(data[i:i + 32768])
                await writer.drain()
            writer.close()
            await writer.wait_closed()
            await asyncio.sleep(90)  # both ends through FIN, TIME-WAIT over
            return got.hexdigest()

        digest = net.run(main(), until=3600)
        assert digest == hashlib.sha256(data).hexdigest()
        return net.counters()


@scenario
def ipv4_bulk(directory: Path) -> dict[str, Any]:
    return _bulk(directory, size=400_000, mtu=1500, delay="2ms")


@scenario
def ipv6_bulk(directory: Path) -> dict[str, Any]:
    return _bulk(directory, size=400_000, family=6, mtu=1500, delay="2ms")


@scenario
def loss(directory: Path) -> dict[str, Any]:
    return _bulk(directory, size=300_000, mtu=1500, delay="5ms", loss=0.03)


@scenario
def reorder_duplicate(directory: Path) -> dict[str, Any]:
    return _bulk(directory, size=300_000, mtu=1500, delay="3ms", reorder=0.05, duplicate=0.03)


@scenario
def mtu_576(directory: Path) -> dict[str, Any]:
    return _bulk(directory, size=200_000, mtu=576, delay="2ms")


@scenario
def mtu_9000(directory: Path) -> dict[str, Any]:
    return _bulk(directory, size=600_000, mtu=9000, delay="2ms")


@scenario
def slow_reader(directory: Path) -> dict[str, Any]:
    """A reader slower than the link: the window closes, window updates reopen it."""
    return _bulk(directory, size=800_000, mtu=1500, delay="1ms", read_size=4096,
                 read_pause=0.02)


@scenario
def pmtud_routers(directory: Path) -> dict[str, Any]:
    """a - r1 - r2 - b with MTUs 1500, 1400, 1300: Frag Needed twice, TCP resegments."""
    data = pattern_bytes(3, 300_000)
    with stacklab.Network(seed=2) as net:
        a, r1, r2, b = (net.add_host("a"), net.add_router("r1"), net.add_router("r2"),
                        net.add_host("b"))
        net.connect(a, r1, mtu=1500, delay="2ms")
        net.connect(r1, r2, mtu=1400, delay="2ms")
        net.connect(r2, b, mtu=1300, delay="2ms")
        net.autoconfigure()
        net.capture(directory)

        async def main() -> tuple[str, str]:
            got = hashlib.sha256()

            async def sink(reader: Any, writer: Any) -> None:
                while chunk := await reader.read(65536):
                    got.update(chunk)
                writer.close()

            await b.start_server(sink, 9000)
            _, writer = await a.open_connection("b", 9000)
            writer.write(data)
            await writer.drain()
            writer.close()
            await writer.wait_closed()
            await asyncio.sleep(90)
            v6 = await a.ping(b.address(6), count=2, size=1400)
            return got.hexdigest(), repr(v6)

        digest, _ = net.run(main(), until=3600)
        assert digest == hashlib.sha256(data).hexdigest()
        return net.counters()


@scenario
def app_wan(directory: Path) -> dict[str, Any]:
    """HTTP, SMTP and FTP between two sites over a lossy, small-MTU WAN through two routers."""
    from stacklab.apps.ftp import ftp_get, serve_ftp
    from stacklab.apps.http import HttpClient, serve_http
    from stacklab.apps.smtp import make_message, send_mail, serve_smtp

    with stacklab.Network(seed=5) as net:
        c, r1, r2, s = (net.add_host("client"), net.add_router("r1"), net.add_router("r2"),
                        net.add_host("server"))
        net.connect(c, r1, mtu=1500, delay="1ms")
        net.connect(r1, r2, mtu=576, delay="20ms", loss=0.02)
        net.connect(r2, s, mtu=1500, delay="1ms")
        net.autoconfigure()
        net.capture(directory)

        async def main() -> list[str]:
            addr = s.address(4)
            await serve_http(s, 80, bytes=60_000)
            await serve_smtp(s, 25)
            await serve_ftp(s, 21, bytes=50_000)
            out = []
            async with HttpClient(c, addr, 80) as client:
                response = await client.get("/x")
                out.append(sha256_hex(await response.read()))
            sent = await send_mail(c, addr, 25, "a@client", ["b@server"],
                                   make_message("a@client", "b@server", 20_000))
            out.append(repr(sent.ok))
            out.append((await ftp_get(c, addr, 21, "f.bin")).sha256)
            await asyncio.sleep(90)
            return out

        out = net.run(main(), until=3600)
        assert out[0] == sha256_hex(pattern_bytes(0, 60_000))
        assert out[1] == "True" and len(out[2]) == 64
        return net.counters()
