"""FTP server and client (stacklab.apps.ftp) over the network seam: both data-connection modes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from stacklab.apps.common import BufferedStream, ServerLimits, pattern_bytes, sha256_hex
from stacklab.apps.ftp import FtpClient, FtpError, ftp_get, ftp_put, serve_ftp


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "ftproot"
    (root / "pub").mkdir(parents=True)
    (root / "pub" / "data.bin").write_bytes(os.urandom(150_000))
    (root / "readme.txt").write_bytes(b"hello ftp\n")
    (tmp_path / "secret.txt").write_bytes(b"top secret\n")
    (root / "link").symlink_to(tmp_path / "secret.txt")
    (root / "dirlink").symlink_to(tmp_path)
    return root


class Control:
    """A raw control connection: send a line, get (code, text of the last line)."""

    def __init__(self, reader: Any, writer: Any) -> None:
        self.stream = BufferedStream(reader, timeout=5)
        self.writer = writer

    @classmethod
    async def open(cls, net: Any, addr: str, port: int, login: bool = True) -> Control:
        c = cls(*await net.open_connection(addr, port))
        assert (await c.reply())[0] == 220
        if login:
            assert (await c.send("USER anonymous"))[0] == 331
            assert (await c.send("PASS me@"))[0] == 230
        return c

    async def reply(self) -> tuple[int, str]:
        while True:
            line = (await self.stream.readline(8192)).decode()
            if not line:
                return 0, "closed"
            if line[:3].isdigit() and line[3:4] == " ":
                return int(line[:3]), line[4:].strip()

    async def send(self, line: str | bytes) -> tuple[int, str]:
        self.writer.write(line.encode() + b"\r\n" if isinstance(line, str) else line)
        await self.writer.drain()
        return await self.reply()


@pytest.mark.parametrize("mode", ["passive", "active"])
def test_get_put_list_both_modes(env: Any, tree: Path, mode: str) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_ftp(snet, 0, root=tree)
        try:
            got = await ftp_get(cnet, addr, server.port, "/pub/data.bin", mode=mode)
            assert got.sha256 == sha256_hex((tree / "pub" / "data.bin").read_bytes())
            assert got.sha256 == server.last_sha256 and got.bytes == 150_000
            upload = pattern_bytes(3, 123_457)
            put = await ftp_put(cnet, addr, server.port, "pub/up.bin", upload, mode=mode)
            assert put.ok and (tree / "pub" / "up.bin").read_bytes() == upload
            assert server.last_sha256 == sha256_hex(upload)
            async with FtpClient(cnet, addr, server.port, mode=mode) as client:
                await client.login()
                assert await client.pwd() == "/"
                await client.cwd("pub")
                assert await client.pwd() == "/pub"
                assert sorted(await client.nlst()) == ["data.bin", "up.bin"]
                listing = await client.list()
                assert any(line.startswith("-rw") and line.endswith(" data.bin")
                           and " 150000 " in line for line in listing)
                assert await client.size("up.bin") == 123_457
                await client.mkd("new")
                assert (tree / "pub" / "new").is_dir()
                await client.dele("up.bin")
                assert not (tree / "pub" / "up.bin").exists()
                with pytest.raises(FtpError) as info:
                    await client.retr("missing.bin")
                assert info.value.code == 550
                # the session goes on after a failed transfer
                assert await client.retr("/readme.txt") == b"hello ftp\n"
                wanted = "EPSV" if mode == "passive" else "EPRT"
                assert any(line.startswith(wanted) for line in client.log)
            assert server.errors.get("internal", 0) == 0
        finally:
            await server.close()
    env.run(scenario)


@pytest.mark.parametrize("path", ["../secret.txt", "/../../secret.txt", "link",
                                  "dirlink/secret.txt", "pub/../../secret.txt",
                                  "/%2e%2e/secret.txt"])
def test_confined_to_root(env: Any, tree: Path, path: str) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_ftp(snet, 0, root=tree)
        try:
            async with FtpClient(cnet, addr, server.port) as client:
                await client.login()
                with pytest.raises(FtpError) as info:
                    await client.retr(path)
                assert info.value.code == 550
                try:  # an upload may only land inside root ("/../x" is "/x")
                    await client.stor(path, b"overwrite")
                except FtpError as exc:
                    assert exc.code == 550
                else:
                    assert (tree / "secret.txt").read_bytes() == b"overwrite"
                for go_up in ("..", "../..", "/.."):
                    code, _ = await client.command(f"CWD {go_up}")
                    assert await client.pwd() == "/"
                code, _ = await client.command("CWD dirlink")
                assert code == 550
            assert (tree.parent / "secret.txt").read_bytes() == b"top secret\n"
        finally:
            await server.close()
    env.run(scenario)


@pytest.mark.parametrize("mode", ["passive", "active"])
def test_virtual_files(env: Any, mode: str) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_ftp(snet, 0, bytes=70_000)
        try:
            got = await ftp_get(cnet, addr, server.port, "any/name.bin", mode=mode)
            assert got.sha256 == sha256_hex(pattern_bytes(0, 70_000))
            await ftp_put(cnet, addr, server.port, "mine.bin", b"12345", mode=mode)
            again = await ftp_get(cnet, addr, server.port, "mine.bin", mode=mode)
            assert again.data == b"12345"
            async with FtpClient(cnet, addr, server.port, mode=mode) as client:
                await client.login()
                assert "mine.bin" in await client.nlst()
                assert await client.size("whatever") == 70_000
        finally:
            await server.close()
    env.run(scenario)


def test_login_rules_and_sequencing(env: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_ftp(snet, 0, users={"alice": "s3cret"}, anonymous=False)
        try:
            c = await Control.open(cnet, addr, server.port, login=False)
            assert (await c.send("PWD"))[0] == 530                 # not logged in
            assert (await c.send("PASS x"))[0] == 503              # PASS before USER
            assert (await c.send("USER anonymous"))[0] == 331
            assert (await c.send("PASS me@"))[0] == 530            # anonymous disabled
            assert (await c.send("USER alice"))[0] == 331
            assert (await c.send("PASS wrong"))[0] == 530
            assert (await c.send("USER alice"))[0] == 331
            assert (await c.send("PASS s3cret"))[0] == 230
            assert (await c.send("PWD"))[0] == 257
            assert (await c.send("TYPE E"))[0] == 504
            assert (await c.send("TYPE"))[0] == 501
            assert (await c.send("RETR x"))[0] == 425              # no data connection set up
            assert (await c.send("PORT 1,2,3"))[0] == 501
            assert (await c.send("PORT 300,1,1,1,1,1"))[0] == 501
            assert (await c.send("EPRT |9|1.2.3.4|5|"))[0] == 501
            assert (await c.send("EPRT |2|1.2.3.4|5|"))[0] == 522
            # FTP bounce: a data connection to someone else is refused
            assert (await c.send("PORT 10,9,8,7,0,25"))[0] == 504
            assert (await c.send("EPRT |1|10.9.8.7|25|"))[0] == 504
            assert server.errors["bounce_refused"] == 2
            assert (await c.send("SITE EXEC rm"))[0] == 502              # known, not implemented
            assert (await c.send("XYZZY"))[0] == 500
            assert (await c.send("QUIT"))[0] == 221
        finally:
            await server.close()
    env.run(scenario)


def test_limits(env: Any) -> None:
    limits = ServerLimits(max_line=256, max_message=10_000, max_clients=2)

    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_ftp(snet, 0, limits=limits)
        try:
            with pytest.raises(FtpError) as info:
                await ftp_put(cnet, addr, server.port, "big.bin", bytes(20_000))
            assert info.value.code == 552
            async with FtpClient(cnet, addr, server.port) as client:
                await client.login()
                assert "big.bin" not in await client.nlst()
                code, _ = await client.command("NOOP " + "x" * 1000)
                assert code == 500
                assert (await client.command("NOOP"))[0] == 200
                # a third client over the limit gets 421
                other = await Control.open(cnet, addr, server.port)
                r, w = await cnet.open_connection(addr, server.port)
                assert (await Control(r, w).reply())[0] == 421
                other.writer.close()
            # garbage sessions end after too many errors, server stays up
            c = await Control.open(cnet, addr, server.port)
            for _ in range(25):
                code, _ = await c.send(b"\x00\xff garbage\r\n")
                if code != 500:
                    break
            assert code == 421
            ok = await ftp_get(cnet, addr, server.port, "x")
            assert ok.bytes == 1024
            assert server.errors.get("internal", 0) == 0
        finally:
            await server.close()
    env.run(scenario)


def test_passive_port_rejects_a_stranger_and_times_out(env: Any) -> None:
    """Nobody connects to the EPSV port: RETR answers 425 (bounded wait), session continues."""
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        import stacklab.apps.ftp.channel as channel
        old, channel.DATA_TIMEOUT = channel.DATA_TIMEOUT, 0.3
        server = await serve_ftp(snet, 0)
        try:
            c = await Control.open(cnet, addr, server.port)
            assert (await c.send("EPSV"))[0] == 229
            assert (await c.send("RETR x"))[0] == 150
            assert (await c.reply())[0] == 425
            assert (await c.send("NOOP"))[0] == 200
        finally:
            channel.DATA_TIMEOUT = old
            await server.close()
    env.run(scenario)
