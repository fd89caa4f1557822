"""The SSH side of the secure applications (stacklab.apps.ssh): SFTP and SCP confined to the
server's root, and local port forwarding (``ssh -L``) through the server's network seam, on the
kernel's loopback and on the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncssh
import pytest

from stacklab.apps.common import pattern_bytes
from stacklab.apps.http import http_get, serve_http
from stacklab.apps.ssh import (
    LocalForward,
    scp_get,
    scp_put,
    serve_ssh,
    sftp_get,
    sftp_put,
    ssh_connect,
)

from .conftest import LoopbackEnv
from .test_sim import LINKS, SimEnv


@pytest.fixture(params=["loopback", "sim-clean", "sim-lossy-576"])
def senv(request: pytest.FixtureRequest) -> Any:
    if request.param == "loopback":
        return LoopbackEnv()
    return SimEnv(LINKS[request.param.removeprefix("sim-")])


def test_sftp_and_scp_round_trips_inside_root(senv: Any, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "served.bin").write_bytes(pattern_bytes(1, 120_000))
    (tmp_path / "secret.txt").write_text("outside\n")
    local = tmp_path / "local"
    local.mkdir()

    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        port = 0 if isinstance(senv, LoopbackEnv) else 22
        server = await serve_ssh(snet, port, root=root)
        conn = await ssh_connect(cnet, addr, server.port)
        try:
            assert await sftp_get(conn, "/served.bin") == pattern_bytes(1, 120_000)
            upload = pattern_bytes(9, 100_000)
            await sftp_put(conn, "/up.bin", upload)
            assert (root / "up.bin").read_bytes() == upload
            # the chroot: "/.." is still the root, the file beside it unreachable
            with pytest.raises(asyncssh.SFTPError):
                await sftp_get(conn, "/../secret.txt")
            await scp_get(conn, "served.bin", local / "copy.bin")
            assert (local / "copy.bin").read_bytes() == pattern_bytes(1, 120_000)
            (local / "mine.bin").write_bytes(pattern_bytes(4, 80_000))
            await scp_put(conn, local / "mine.bin", "mine.bin")
            assert (root / "mine.bin").read_bytes() == pattern_bytes(4, 80_000)
        finally:
            conn.close()
            await server.close()
    senv.run(scenario)


def test_no_root_no_sftp(env: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_ssh(snet, 0)
        conn = await ssh_connect(cnet, addr, server.port)
        try:
            with pytest.raises(asyncssh.ChannelOpenError):
                await sftp_get(conn, "/x")
        finally:
            conn.close()
            await server.close()
    env.run(scenario)


def test_local_forward_reaches_a_server_only_the_ssh_server_sees(senv: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        web = await serve_http(snet, 0, bytes=150_000, host="127.0.0.1"
                               if isinstance(senv, LoopbackEnv) else None)
        server = await serve_ssh(snet, 0)
        conn = await ssh_connect(cnet, addr, server.port)
        dest = "127.0.0.1" if isinstance(senv, LoopbackEnv) else addr
        forward = await LocalForward(conn, dest, web.port).start(cnet)
        try:
            local = "127.0.0.1" if isinstance(senv, LoopbackEnv) else cnet.address(4)
            for _ in range(2):
                result = await http_get(cnet, local, "/x", port=forward.port)
                assert result.ok and result.body == pattern_bytes(0, 150_000)
            assert forward.connections == server.forwarded == 2
            assert web.requests == 2
        finally:
            await forward.close()
            conn.close()
            await server.close()
            await web.close()
    senv.run(scenario)


def test_forwarding_off_or_to_a_closed_port_fails_cleanly(env: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        closed = await serve_ssh(snet, 0, forwarding=False)
        server = await serve_ssh(snet, 0)
        try:
            for srv, port in ((closed, 80), (server, 1)):
                conn = await ssh_connect(cnet, addr, srv.port)
                with pytest.raises(asyncssh.ChannelOpenError):
                    await conn.open_connection("127.0.0.1", port)
                conn.close()
            assert server.errors.get("forward_failed") == 1
        finally:
            await closed.close()
            await server.close()
    env.run(scenario)


def test_the_sftp_subsystem_ends_with_exit_status_0(env: Any, tmp_path: Path) -> None:
    """OpenSSH's scp (SFTP mode) fails a copy whose channel closes without an exit status."""
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_ssh(snet, 0, root=tmp_path)
        conn = await ssh_connect(cnet, addr, server.port)
        try:
            process = await conn.create_process(subsystem="sftp", encoding=None)
            # SSH_FXP_INIT version 3 (draft-ietf-secsh-filexfer-02 §4), then the end
            process.stdin.write((5).to_bytes(4, "big") + b"\x01" + (3).to_bytes(4, "big"))
            process.stdin.write_eof()
            completed = await process.wait(timeout=10)
            assert completed.exit_status == 0
        finally:
            conn.close()
            await server.close()
    env.run(scenario)
