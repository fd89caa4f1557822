"""SSH (asyncssh on the network seam, stacklab.apps.ssh): commands, auth, host keys, bounds."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncssh
import pytest

from stacklab.apps.common import ServerLimits, pattern_bytes, sha256_hex
from stacklab.apps.ssh import NetTunnel, SshServer, serve_ssh, ssh_exec

from .conftest import raw_exchange


def test_commands_and_exit_status(env: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_ssh(snet, 0, hostname="box1")
        try:
            key = server.host_public_key
            run = lambda cmd, **kw: ssh_exec(cnet, addr, server.port, cmd,  # noqa: E731
                                             host_key=key, **kw)
            echo = await run("echo 'hello  there' world")
            assert (echo.exit_status, echo.stdout) == (0, b"hello  there world\n")
            assert (await run("uname -a")).stdout == b"stacklab box1 0.1 python\n"
            assert (await run("whoami")).stdout == b"stacklab\n"
            assert (await run("exit 42")).exit_status == 42
            assert (await run("false")).exit_status == 1
            missing = await run("rm -rf /")
            assert missing.exit_status == 127 and b"command not found" in missing.stderr
            assert (await run("echo 'unbalanced")).exit_status == 2
            digest = await run("sha256sum", stdin=b"abc" * 1000)
            assert digest.stdout.split()[0].decode() == sha256_hex(b"abc" * 1000)
            big = await run("pattern 300000")
            assert big.ok and big.sha256 == sha256_hex(pattern_bytes(0, 300_000))
            assert server.last_sha256 == big.sha256
            assert "pattern 300000" in server.commands
        finally:
            await server.close()
    env.run(scenario)


def test_auth_password_keys_and_host_key_pinning(env: Any) -> None:
    user_key = asyncssh.generate_private_key("ssh-ed25519")
    authorized = user_key.export_public_key().decode()

    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_ssh(snet, 0, user="alice", password="pw",
                                 authorized_keys=authorized)
        try:
            ok = await ssh_exec(cnet, addr, server.port, "whoami", username="alice",
                                password="pw")
            assert ok.stdout == b"alice\n"
            by_key = await ssh_exec(cnet, addr, server.port, "whoami", username="alice",
                                    password=None, client_keys=[user_key])
            assert by_key.stdout == b"alice\n"
            with pytest.raises(asyncssh.PermissionDenied):
                await ssh_exec(cnet, addr, server.port, "whoami", username="alice",
                               password="wrong")
            with pytest.raises(asyncssh.PermissionDenied):
                await ssh_exec(cnet, addr, server.port, "whoami", username="mallory",
                               password="pw")
            # an authorized key logs in only as the configured user (issue 20 item 11)
            for name in ("root", "mallory"):
                with pytest.raises(asyncssh.PermissionDenied):
                    await ssh_exec(cnet, addr, server.port, "whoami", username=name,
                                   password=None, client_keys=[user_key])
            stranger = asyncssh.generate_private_key("ssh-ed25519")
            with pytest.raises(asyncssh.PermissionDenied):
                await ssh_exec(cnet, addr, server.port, "whoami", username="alice",
                               password=None, client_keys=[stranger])
            other_host = asyncssh.generate_private_key("ssh-ed25519")
            with pytest.raises(asyncssh.HostKeyNotVerifiable):
                await ssh_exec(cnet, addr, server.port, "whoami", username="alice",
                               password="pw",
                               host_key=other_host.export_public_key().decode())
            assert server.errors.get("bad_login", 0) >= 2
        finally:
            await server.close()
    env.run(scenario)


def test_interactive_shell(env: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_ssh(snet, 0)
        try:
            async with asyncssh.connect(addr, server.port, tunnel=NetTunnel(cnet),
                                        username="stacklab", password="stacklab",
                                        known_hosts=None, config=[], client_keys=None,
                                        agent_path=None) as conn:
                result = await conn.run(input=b"echo one\necho two\nexit 5\n", encoding=None,
                                        check=False)
            assert result.exit_status == 5
            assert b"one\n" in result.stdout and b"two\n" in result.stdout
        finally:
            await server.close()
    env.run(scenario)


def test_garbage_and_client_limit(env: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_ssh(snet, 0, limits=ServerLimits(max_clients=1))
        try:
            answer = await raw_exchange(cnet, addr, server.port,
                                        b"GET / HTTP/1.1\r\n\r\n" + bytes(range(256)) * 4)
            assert answer.startswith(b"SSH-2.0-")       # banner, then it hangs up on us
            held = await cnet.open_connection(addr, server.port)
            await asyncio.sleep(0.05)
            refused = await raw_exchange(cnet, addr, server.port, b"")
            assert b"too many connections" in refused
            assert server.gate.refused >= 1
            held[1].close()
            await asyncio.sleep(0.1)
            ok = await ssh_exec(cnet, addr, server.port, "true")
            assert ok.ok
        finally:
            await server.close()
    env.run(scenario)


def test_a_client_changing_its_user_name_loses_the_authorized_keys() -> None:
    """asyncssh calls begin_auth again when a client tries another user name on the same
    connection: the keys authorized for the configured user must not carry over."""
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    server = SshServer(user="alice", password=None, authorized_keys=key)
    auth = server._server_factory()
    trusted: list[Any] = []

    class Conn:
        def get_extra_info(self, name: str) -> Any:
            return None

        def set_authorized_keys(self, keys: Any) -> None:
            trusted.append(keys)

    async def attempts() -> None:  # (connection_made reads the loop's clock)
        auth.connection_made(Conn())
        for name in ("alice", "root", "alice"):
            auth.begin_auth(name)

    asyncio.run(attempts())
    assert [keys is not None for keys in trusted] == [True, False, True]
