"""SSH server and client: asyncssh riding on any network seam (stacklab TCP or asyncio).

The seam is asyncssh's ``tunnel=`` argument: asyncssh then opens its connection with
``tunnel.create_connection(factory, host, port)`` and listens with
``tunnel.create_server(factory, host, port)`` instead of using the kernel. :class:`NetTunnel`
maps both onto the network seam's asyncio-style ``create_connection``/``create_server``, so
asyncssh's own protocol object sits directly on our TCP transport (``write``, ``close``,
``abort``, ``get_extra_info('peername'/'sockname')`` and the protocol callbacks).

Server (:class:`SshServer`, :func:`serve_ssh`): a host key generated at start (or given),
password and/or public-key authentication, and a small command set run by :func:`run_command`
(echo, uname, hostname, whoami, true, false, exit N, cat, sha256sum, pattern N) for ``exec``
requests and for an interactive line shell. Bounds: concurrent connections (beyond them the
TCP connection is closed at once), command length, input read by ``cat``/``sha256sum``,
login time (asyncssh's login timeout), packet sizes (asyncssh).

Note: SSH key exchange draws from the OS random source (cryptography needs it), so the
ciphertext of two simulated runs differs even with the same seed; what is carried does not.

Files and tunnels: with ``root`` the server offers SFTP (the ``sftp`` subsystem) and SCP
(``scp -t``/``-f`` exec requests), both confined to ``root`` (asyncssh's chroot: paths cannot
leave it, though a symlink already inside that points out is followed); with ``forwarding``
(OpenSSH's AllowTcpForwarding, on by default) it opens the direct-tcpip connections of a
client's ``-L`` through its own network seam, never the machine's sockets.

Client: :func:`ssh_exec` runs one command and returns stdout, stderr and the exit status;
:func:`ssh_connect` opens a connection for the rest: :func:`sftp_get`/:func:`sftp_put`,
:func:`scp_get`/:func:`scp_put` and :class:`LocalForward` (``ssh -L``: a listener on the
client's network seam whose connections ride the SSH connection to a destination the server
reaches).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from stacklab.apps.common import (
    ClientGate,
    ServerLimits,
    iter_pattern,
    listening_port,
    sha256_hex,
)

__all__ = ["LocalForward", "NetTunnel", "SshResult", "SshServer", "run_command", "scp_get",
           "scp_put", "serve_ssh", "sftp_get", "sftp_put", "ssh_connect", "ssh_exec"]

MAX_COMMAND = 4096
HOST_KEY_ALG = "ssh-ed25519"


class NetTunnel:
    """asyncssh's tunnel interface over a network seam (see the module docstring)."""

    def __init__(self, net: Any, wrap: Callable[[Callable[[], Any]], Callable[[], Any]]
                 | None = None) -> None:
        self.net = net
        self.wrap = wrap

    async def create_connection(self, session_factory: Callable[..., Any], remote_host: str,
                                remote_port: int) -> tuple[Any, Any]:
        conn: tuple[Any, Any] = await self.net.create_connection(session_factory, remote_host,
                                                                 remote_port)
        return conn

    async def create_server(self, session_factory: Callable[..., Any], listen_host: str,
                            listen_port: int) -> Any:
        def factory() -> Any:
            return session_factory("", 0)  # asyncssh's listener factory wants (orig host, port)
        if self.wrap is not None:
            factory = self.wrap(factory)
        return await self.net.create_server(factory, listen_host or None, listen_port)

    def close(self) -> None:
        pass

    async def wait_closed(self) -> None:
        pass


# -- the command set ---------------------------------------------------------------------------
async def _read_all(stdin: Any, limit: int) -> bytes | None:
    data = bytearray()
    while True:
        chunk = await stdin.read(65536)
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > limit:
            return None


async def run_command(line: str, stdin: Any, stdout: Any, stderr: Any, *, user: str,
                      hostname: str, max_input: int) -> int | None:
    """Run one command line of the small command set; its exit status, or None for ``exit``
    without a status in a shell (meaning: end the shell with status 0)."""
    if len(line) > MAX_COMMAND:
        stderr.write(b"sh: command too long\n")
        return 2
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        stderr.write(f"sh: syntax error: {exc}\n".encode())
        return 2
    if not argv:
        return 0
    name, args = argv[0], argv[1:]
    if name == "echo":
        stdout.write((" ".join(args) + "\n").encode())
        return 0
    if name == "uname":
        text = f"stacklab {hostname} 0.1 python" if args[:1] == ["-a"] else "stacklab"
        stdout.write(text.encode() + b"\n")
        return 0
    if name == "hostname":
        stdout.write(hostname.encode() + b"\n")
        return 0
    if name == "whoami":
        stdout.write(user.encode() + b"\n")
        return 0
    if name in ("true", "false"):
        return 0 if name == "true" else 1
    if name == "exit":
        if not args:
            return None
        try:
            return int(args[0]) & 0xFF
        except ValueError:
            stderr.write(b"exit: numeric argument required\n")
            return 2
    if name in ("cat", "sha256sum"):
        data = await _read_all(stdin, max_input)
        if data is None:
            stderr.write(f"{name}: input larger than {max_input} bytes\n".encode())
            return 1
        stdout.write(data if name == "cat" else f"{hashlib.sha256(data).hexdigest()}  -\n"
                     .encode())
        return 0
    if name == "pattern":
        try:
            count = int(args[0])
        except (IndexError, ValueError):
            stderr.write(b"usage: pattern BYTES\n")
            return 2
        if not 0 <= count <= max_input:
            stderr.write(f"pattern: 0..{max_input} bytes\n".encode())
            return 2
        for chunk in iter_pattern(count):
            stdout.write(chunk)
            await stdout.drain()
        return 0
    stderr.write(f"sh: {name}: command not found\n".encode())
    return 127


# -- server ------------------------------------------------------------------------------------
class _Gated(asyncio.Protocol):
    """Counts a connection against the gate while it lives; delegates to asyncssh's protocol."""

    def __init__(self, inner: Any, gate: ClientGate) -> None:
        self.inner = inner
        self.gate = gate

    def connection_made(self, transport: Any) -> None:
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        keep_open: bool | None = self.inner.eof_received()
        return keep_open

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gate.leave()
        self.inner.connection_lost(exc)


class _ForwardSession(asyncssh.SSHTCPSession[bytes]):
    """The server's end of a direct-tcpip channel (RFC 4254 §7.2): bytes both ways between the
    channel and a TCP connection the server opened on its network seam."""

    def __init__(self, reader: Any, writer: Any) -> None:
        self.reader = reader
        self.writer = writer
        self.chan: Any = None
        self.pump: asyncio.Task[None] | None = None

    def connection_made(self, chan: Any) -> None:
        self.chan = chan
        self.pump = asyncio.ensure_future(self._to_channel())

    async def _to_channel(self) -> None:
        try:
            while data := await self.reader.read(65536):
                self.chan.write(data)
            self.chan.write_eof()
        except (OSError, ConnectionError, asyncssh.Error):
            self.chan.close()

    def data_received(self, data: bytes, datatype: Any) -> None:
        self.writer.write(data)

    def eof_received(self) -> bool:
        self.writer.write_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.writer.close()
        if self.pump is not None:
            self.pump.cancel()


class _SftpServer(asyncssh.SFTPServer):
    """asyncssh's SFTP server (chroot), ending the subsystem with an exit status 0 (RFC 4254
    §6.10) as sshd's sftp-server does: OpenSSH's scp (SFTP mode, its default since 9.0) takes a
    channel closed without one for a failure."""

    def exit(self) -> None:
        self.channel.exit(0)


class _Refused(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        transport.write(b"SSH-2.0-stacklab too many connections\r\n")
        transport.close()


class SshServer:
    """An SSH server; ``password`` and/or ``authorized_keys`` (OpenSSH text) enable logins for
    ``user`` (any user name when ``user`` is None). ``on_close(peername, outcome, seconds)``,
    when set, is called as each SSH connection ends (a CLI's connection log)."""

    def __init__(self, *, user: str | None = "stacklab", password: str | None = "stacklab",
                 authorized_keys: str | None = None, host_key: Any = None,
                 hostname: str = "stacklab", limits: ServerLimits | None = None,
                 root: str | os.PathLike[str] | None = None, forwarding: bool = True) -> None:
        if password is None and authorized_keys is None:
            raise ValueError("give a password or authorized keys, or nobody can log in")
        self.user = user
        self.password = password
        self.authorized_keys = authorized_keys
        self.authorized = (None if authorized_keys is None
                           else asyncssh.import_authorized_keys(authorized_keys))
        self.host_key = host_key or asyncssh.generate_private_key(HOST_KEY_ALG)
        self.hostname = hostname
        self.root = Path(root).resolve() if root is not None else None
        if self.root is not None and not self.root.is_dir():
            raise NotADirectoryError(str(self.root))
        self.forwarding = forwarding
        self.forwarded = 0   # direct-tcpip connections opened for clients
        self.net: Any = None
        self.limits = limits or ServerLimits()
        self.gate = ClientGate(self.limits.max_clients)
        self.acceptor: Any = None
        self.port: int | None = None
        self.last_sha256: str | None = None   # of the last command's stdout
        self.commands: list[str] = []
        self.errors: dict[str, int] = {}
        self.on_close: Callable[[Any, str, float], None] | None = None

    @property
    def host_public_key(self) -> str:
        """The host key in OpenSSH public key format (for a client's known_hosts)."""
        return self.host_key.export_public_key().decode().strip()

    def _wrap(self, factory: Callable[[], Any]) -> Callable[[], Any]:
        def gated() -> Any:
            if not self.gate.try_enter():
                return _Refused()
            return _Gated(factory(), self.gate)
        return gated

    def _server_factory(self) -> asyncssh.SSHServer:
        server = self

        class Auth(asyncssh.SSHServer):
            conn: Any = None
            peername: Any = None
            opened = 0.0
            username: str | None = None
            logged_in = False

            def connection_made(self, conn: Any) -> None:
                self.conn = conn
                self.peername = conn.get_extra_info("peername")
                self.opened = asyncio.get_running_loop().time()

            def auth_completed(self) -> None:
                self.logged_in = True

            def connection_lost(self, exc: Exception | None) -> None:
                if server.on_close is None:
                    return
                who = (f"user={self.username}" if self.logged_in
                       else "no login" + (f" (tried {self.username})" if self.username else ""))
                outcome = f"closed {who}" if exc is None else f"error: {exc} {who}"
                try:
                    server.on_close(self.peername, outcome,
                                    asyncio.get_running_loop().time() - self.opened)
                except Exception:  # a log must not break the server
                    pass

            def begin_auth(self, username: str) -> bool:
                self.username = username
                # asyncssh accepts any key of the authorized list without asking
                # validate_public_key, so the list is handed over for the configured user only:
                # for any other name (a client may change names between attempts) no key is
                # authorized (as sshd's AllowUsers)
                if server.user is None or username == server.user:
                    self.conn.set_authorized_keys(server.authorized)
                else:
                    self.conn.set_authorized_keys(None)
                return True

            def password_auth_supported(self) -> bool:
                return server.password is not None

            def validate_password(self, username: str, password: str) -> bool:
                ok_user = server.user is None or username == server.user
                assert server.password is not None
                good = hmac.compare_digest(password.encode(), server.password.encode())
                if not (ok_user and good):
                    server.errors["bad_login"] = server.errors.get("bad_login", 0) + 1
                return ok_user and good

            def public_key_auth_supported(self) -> bool:
                return server.authorized_keys is not None

            def connection_requested(self, dest_host: str, dest_port: int, orig_host: str,
                                     orig_port: int) -> Any:
                if not server.forwarding:
                    return False
                return server._forward(dest_host, dest_port)


        return Auth()

    async def _forward(self, dest_host: str, dest_port: int) -> _ForwardSession:
        try:
            reader, writer = await asyncio.wait_for(
                self.net.open_connection(dest_host, dest_port), 30.0)
        except (OSError, ConnectionError, TimeoutError) as exc:
            self.errors["forward_failed"] = self.errors.get("forward_failed", 0) + 1
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED,
                                            f"{dest_host}:{dest_port}: {exc}") from None
        self.forwarded += 1
        return _ForwardSession(reader, writer)

    def _sftp(self, chan: Any) -> asyncssh.SFTPServer:
        assert self.root is not None
        return _SftpServer(chan, chroot=os.fsencode(self.root))

    async def _process(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        user = process.get_extra_info("username") or ""
        run = functools.partial(run_command, user=user, hostname=self.hostname,
                                max_input=self.limits.max_message)
        if process.command is not None:
            self.commands.append(process.command[:200])
            out = _Capture(process.stdout)
            status = await run(process.command, process.stdin, out, process.stderr)
            self.last_sha256 = out.hexdigest()
            process.exit(0 if status is None else status)
            return
        # interactive: one command per line until exit or EOF
        status = 0
        process.stdout.write(b"stacklab$ ")
        while True:
            line = await process.stdin.readline()
            if not line:
                break
            text = line.decode("utf-8", "replace").strip()
            self.commands.append(text[:200])
            status = await run(text, process.stdin, process.stdout, process.stderr)
            if status is None or text.startswith("exit"):
                break
            process.stdout.write(b"stacklab$ ")
        process.exit(0 if status is None else status)

    async def start(self, net: Any, port: int, host: str | None = None) -> SshServer:
        self.net = net
        self.acceptor = await asyncssh.listen(
            host or "", port, tunnel=NetTunnel(net, wrap=self._wrap),
            server_host_keys=[self.host_key], server_factory=self._server_factory,
            process_factory=self._process, encoding=None, allow_scp=self.root is not None,
            sftp_factory=self._sftp if self.root is not None else None,
            agent_forwarding=False, x11_forwarding=False, allow_pty=True,
            login_timeout=max(1.0, min(120.0, self.limits.idle_timeout)))
        try:
            self.port = listening_port(self.acceptor)
        except TypeError:
            self.port = port
        return self

    async def close(self) -> None:
        if self.acceptor is not None:
            self.acceptor.close()
            try:
                await asyncio.wait_for(self.acceptor.wait_closed(), 5.0)
            except (TimeoutError, OSError):
                pass


class _Capture:
    """stdout that also hashes what goes through it."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.stream.write(data)

    async def drain(self) -> None:
        await self.stream.drain()

    def hexdigest(self) -> str:
        return self.digest.hexdigest()


async def serve_ssh(net: Any, port: int = 22, host: str | None = None, *,
                    user: str | None = "stacklab", password: str | None = "stacklab",
                    authorized_keys: str | None = None, host_key: Any = None,
                    hostname: str = "stacklab", limits: ServerLimits | None = None,
                    root: str | os.PathLike[str] | None = None,
                    forwarding: bool = True) -> SshServer:
    """Start an SSH server (a fresh ed25519 host key unless ``host_key`` is given); ``root``
    adds SFTP and SCP confined to that directory."""
    server = SshServer(user=user, password=password, authorized_keys=authorized_keys,
                       host_key=host_key, hostname=hostname, limits=limits, root=root,
                       forwarding=forwarding)
    return await server.start(net, port, host)


# -- client ------------------------------------------------------------------------------------
@dataclass
class SshResult:
    exit_status: int | None
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    @property
    def sha256(self) -> str:
        return sha256_hex(self.stdout)


async def ssh_connect(net: Any, host: str, port: int = 22, *, username: str = "stacklab",
                      password: str | None = "stacklab", client_keys: list[Any] | None = None,
                      host_key: str | None = None,
                      timeout: float = 60.0) -> asyncssh.SSHClientConnection:
    """Log in to ``host:port`` over ``net``. ``host_key`` (OpenSSH public key text) pins the
    server's key; without it any host key is accepted (a lab, not the Internet)."""
    known_hosts: Any = None
    if host_key is not None:
        known_hosts = ([asyncssh.import_public_key(host_key)], [], [])
    return await asyncio.wait_for(asyncssh.connect(
        host, port, tunnel=NetTunnel(net), username=username, password=password,
        client_keys=client_keys or None, known_hosts=known_hosts, config=[],
        agent_path=None, agent_forwarding=False, preferred_auth=(
            "publickey,password" if client_keys else "password")), timeout)


async def _close(conn: asyncssh.SSHClientConnection) -> None:
    conn.close()
    try:
        await asyncio.wait_for(conn.wait_closed(), 5.0)
    except (TimeoutError, OSError):
        pass


async def ssh_exec(net: Any, host: str, port: int, command: str, *,
                   username: str = "stacklab", password: str | None = "stacklab",
                   client_keys: list[Any] | None = None, host_key: str | None = None,
                   stdin: bytes | None = None, timeout: float = 60.0) -> SshResult:
    """Log in to ``host:port`` (see :func:`ssh_connect`) and run ``command``."""
    conn = await ssh_connect(net, host, port, username=username, password=password,
                             client_keys=client_keys, host_key=host_key, timeout=timeout)
    try:
        result = await asyncio.wait_for(
            conn.run(command, input=stdin, encoding=None, check=False), timeout)
    finally:
        await _close(conn)
    out = result.stdout if isinstance(result.stdout, bytes) else b""
    err = result.stderr if isinstance(result.stderr, bytes) else b""
    return SshResult(result.exit_status, out, err)


# -- files and tunnels -------------------------------------------------------------------------
async def sftp_get(conn: asyncssh.SSHClientConnection, path: str,
                   max_size: int = 1 << 30) -> bytes:
    """The remote file ``path`` over SFTP (at most ``max_size`` bytes)."""
    async with conn.start_sftp_client() as sftp, sftp.open(path, "rb") as f:
        data = await f.read(max_size + 1)
    assert isinstance(data, bytes)  # (a file opened "rb")
    if len(data) > max_size:
        raise ValueError(f"{path}: larger than {max_size} bytes")
    return data


async def sftp_put(conn: asyncssh.SSHClientConnection, path: str, data: bytes) -> None:
    """Write ``data`` to the remote file ``path`` over SFTP (created or truncated)."""
    async with conn.start_sftp_client() as sftp, sftp.open(path, "wb") as f:
        await f.write(data)


async def scp_get(conn: asyncssh.SSHClientConnection, path: str,
                  local: str | os.PathLike[str]) -> None:
    """Copy the remote ``path`` to the local file ``local`` with the SCP protocol."""
    await asyncssh.scp((conn, path), os.fspath(local))


async def scp_put(conn: asyncssh.SSHClientConnection, local: str | os.PathLike[str],
                  path: str) -> None:
    """Copy the local file ``local`` to the remote ``path`` with the SCP protocol."""
    await asyncssh.scp(os.fspath(local), (conn, path))


class LocalForward:
    """``ssh -L port:dest_host:dest_port``: a listener on ``net`` (the client's seam) whose
    every connection is carried over ``conn`` in a direct-tcpip channel (RFC 4254 §7.2) to
    ``dest_host:dest_port`` as the server sees it. ``await forward.close()`` stops it."""

    def __init__(self, conn: asyncssh.SSHClientConnection, dest_host: str,
                 dest_port: int) -> None:
        self.conn = conn
        self.dest = (dest_host, dest_port)
        self.listener: Any = None
        self.port: int | None = None
        self.connections = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, net: Any, port: int = 0, host: str | None = None) -> LocalForward:
        self.listener = await net.start_server(self._accepted, port, host=host)
        self.port = listening_port(self.listener)
        return self

    async def _accepted(self, reader: Any, writer: Any) -> None:
        try:
            chan_reader, chan_writer = await self.conn.open_connection(*self.dest)
        except (asyncssh.Error, OSError):
            writer.close()
            return
        self.connections += 1
        pumps = [asyncio.ensure_future(_pipe(reader, chan_writer)),
                 asyncio.ensure_future(_pipe(chan_reader, writer))]
        self._tasks.update(pumps)
        try:
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            self._tasks.difference_update(pumps)
            chan_writer.close()
            writer.close()

    async def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
        for task in list(self._tasks):
            task.cancel()


async def _pipe(reader: Any, writer: Any) -> None:
    """Copy until EOF, then pass the EOF on (each direction closes on its own)."""
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.write_eof()
