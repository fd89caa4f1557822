"""Every server with our client on the simulated network (stacklab TCP), over lossy and
small-MTU links: what arrives hashes the same as what was sent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from stacklab.apps.common import pattern_bytes, sha256_hex
from stacklab.apps.ftp import FtpClient, ftp_get, ftp_put, serve_ftp
from stacklab.apps.http import HttpClient, serve_http
from stacklab.apps.smtp import make_message, send_mail, serve_smtp
from stacklab.apps.ssh import serve_ssh, ssh_exec

Network = pytest.importorskip("stacklab").Network

LINKS = {
    "clean": dict(mtu=1500, delay="2ms"),
    "lossy-576": dict(mtu=576, delay="5ms", loss=0.03),
    "tiny-296-reorder": dict(mtu=296, delay="3ms", loss=0.01, reorder=0.05, duplicate=0.01),
}


class SimEnv:
    """Two hosts, server ``a`` and client ``b``, joined by one link."""

    def __init__(self, link: dict[str, Any], seed: int = 7) -> None:
        self.link = link
        self.seed = seed
        self.net: Any = None

    def run(self, scenario: Callable[[Any, Any, str], Awaitable[Any]],
            timeout: float = 600.0) -> Any:
        net = Network(seed=self.seed)
        self.net = net
        try:
            a, b = net.add_host("a"), net.add_host("b")
            net.connect("a", "b", **self.link)
            net.autoconfigure()
            addr = a.address(4)
            result = net.run(scenario(a, b, addr), until=timeout)
            self.check_links(net.counters()["links"])
            return result
        finally:
            net.close()

    def check_links(self, links: dict[str, Any]) -> None:
        """The impairments really happened, and no frame was too big for the link."""
        totals: dict[str, int] = {}
        for directions in links.values():
            for counters in directions.values():
                for key, value in counters.items():
                    totals[key] = totals.get(key, 0) + value
        assert totals.get("drop.mtu", 0) == 0
        if self.link.get("loss"):
            assert totals.get("drop.loss", 0) > 0


@pytest.fixture(params=list(LINKS))
def sim(request: pytest.FixtureRequest) -> SimEnv:
    return SimEnv(LINKS[request.param])


def test_http(sim: SimEnv, tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(pattern_bytes(11, 100_000))

    async def scenario(a: Any, b: Any, addr: str) -> None:
        virtual = await serve_http(a, 80, bytes=150_000)
        files = await serve_http(a, 8080, root=tmp_path)
        try:
            async with HttpClient(b, addr, 80) as client:
                for target in ("/one", "/two?chunked=1"):
                    response = await client.get(target)
                    body = await response.read()
                    assert sha256_hex(body) == sha256_hex(pattern_bytes(0, 150_000))
                upload = pattern_bytes(5, 100_000)
                posted = await client.request("POST", "/up", body=upload)
                assert sha256_hex(upload).encode() in await posted.read()
                assert client.connections_opened == 1
            async with HttpClient(b, "a", 8080) as client:   # by name, resolved by the host
                got = await (await client.get("/f.bin")).read()
                assert got == (tmp_path / "f.bin").read_bytes()
                assert files.last_sha256 == sha256_hex(got)
        finally:
            await virtual.close()
            await files.close()
    sim.run(scenario)


def test_smtp(sim: SimEnv, tmp_path: Path) -> None:
    async def scenario(a: Any, b: Any, addr: str) -> None:
        server = await serve_smtp(a, 25, root=tmp_path / "box")
        try:
            message = make_message("a@b", "c@a", 100_000)
            result = await send_mail(b, addr, 25, "a@b", "c@a", message)
            assert result.ok and result.sha256 == sha256_hex(message) == server.last_sha256
            assert (tmp_path / "box" / "000001.eml").read_bytes() == message
        finally:
            await server.close()
    sim.run(scenario)


@pytest.mark.parametrize("mode", ["passive", "active"])
def test_ftp(sim: SimEnv, tmp_path: Path, mode: str) -> None:
    async def scenario(a: Any, b: Any, addr: str) -> None:
        server = await serve_ftp(a, 21, root=tmp_path)
        try:
            data = pattern_bytes(99, 120_000)
            put = await ftp_put(b, addr, 21, "up.bin", data, mode=mode)
            assert put.sha256 == server.last_sha256 == sha256_hex(data)
            assert (tmp_path / "up.bin").read_bytes() == data
            got = await ftp_get(b, addr, 21, "/up.bin", mode=mode)
            assert got.sha256 == put.sha256
            async with FtpClient(b, addr, 21, mode=mode) as client:
                await client.login()
                assert await client.nlst() == ["up.bin"]
        finally:
            await server.close()
    sim.run(scenario)


def test_ssh(sim: SimEnv) -> None:
    async def scenario(a: Any, b: Any, addr: str) -> None:
        server = await serve_ssh(a, 22)
        try:
            result = await ssh_exec(b, addr, 22, "pattern 100000",
                                    host_key=server.host_public_key)
            assert result.ok and result.sha256 == sha256_hex(pattern_bytes(0, 100_000))
            status = await ssh_exec(b, addr, 22, "exit 7")
            assert status.exit_status == 7
            echoed = await ssh_exec(b, addr, 22, "cat", stdin=pattern_bytes(1, 50_000))
            assert echoed.stdout == pattern_bytes(1, 50_000)
        finally:
            await server.close()
    sim.run(scenario)


def test_same_seed_same_run() -> None:
    """No wall clock, no unseeded randomness in HTTP/SMTP/FTP: two runs, same timings."""
    def once() -> list[Any]:
        trace: list[Any] = []

        async def scenario(a: Any, b: Any, addr: str) -> None:
            loop_time = a.now
            servers = [await serve_http(a, 80, bytes=60_000), await serve_smtp(a, 25),
                       await serve_ftp(a, 21, bytes=60_000)]
            try:
                async with HttpClient(b, addr, 80) as client:
                    body = await (await client.get("/")).read()
                    trace.append((loop_time(), sha256_hex(body)))
                result = await send_mail(b, addr, 25, "a@b", "c@d", make_message("a@b", "c@d",
                                                                                 20_000))
                trace.append((loop_time(), result.sha256))
                for mode in ("active", "passive"):
                    got = await ftp_get(b, addr, 21, "x", mode=mode)
                    trace.append((loop_time(), got.sha256))
            finally:
                for server in servers:
                    await server.close()
        SimEnv(LINKS["lossy-576"], seed=11).run(scenario)
        return trace
    first, second = once(), once()
    assert first == second
    assert len({t for t, _ in first}) == len(first)  # time moved between the steps


def test_ftp_upload_over_the_limit_is_reset_then_552() -> None:
    """The server resets the data connection of a STOR over ``max_message``: a client still
    writing sees it at once and reads the 552 (issue 20 item 13; before, a FIN left it writing
    into a closing window until its timeout)."""
    from stacklab.apps.common import ServerLimits
    from stacklab.apps.ftp import FtpError

    async def scenario(a: Any, b: Any, addr: str) -> tuple[int, float, int]:
        server = await serve_ftp(a, 21, limits=ServerLimits(max_message=100_000))
        try:
            started = b.now()
            with pytest.raises(FtpError) as info:
                await ftp_put(b, addr, 21, "big.bin", pattern_bytes(0, 3_000_000), timeout=30)
            took = b.now() - started
            async with FtpClient(b, addr, 21) as client:  # the server goes on serving
                await client.login()
                names = await client.nlst()
            return info.value.code, took, len(names)
        finally:
            await server.close()

    code, took, names = SimEnv(LINKS["clean"]).run(scenario)
    assert code == 552 and took < 2.0 and names == 1
