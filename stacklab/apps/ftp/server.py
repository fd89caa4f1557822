"""The FTP server: one session per control connection, a ``cmd_XXX`` method per command."""

from __future__ import annotations

import asyncio
import enum
import hashlib
import ipaddress
import os
import ssl
from collections.abc import Iterator
from typing import Any

from stacklab.apps.common import (
    BufferedStream,
    LineTooLong,
    ServerBase,
    ServerLimits,
    close_writer,
    local_address,
    peer_address,
)

from .channel import CHUNK, DATA_TIMEOUT, PASV_RE, DataChannel, same_host
from .fs import DiskFs, FsError, VirtualFs, list_line, vjoin

MAX_BAD_COMMANDS = 20


class LoginState(enum.Enum):
    NEED_USER = "need-user"
    NEED_PASS = "need-pass"
    LOGGED_IN = "logged-in"


# Commands allowed before login; everything else answers 530.
_BEFORE_LOGIN = {"USER", "PASS", "QUIT", "NOOP", "SYST", "FEAT", "HELP", "OPTS", "AUTH", "PBSZ",
                 "PROT"}
# RFC 959 commands this server knows but does not implement: 502, not 500.
_NOT_IMPLEMENTED = {"ABOR", "ACCT", "APPE", "REIN", "REST", "RNFR", "RNTO", "SITE", "SMNT",
                    "STAT", "STOU", "MLSD", "MLST", "MDTM", "PRET", "CCC"}


class _FtpSession:
    def __init__(self, server: FtpServer, reader: Any, writer: Any) -> None:
        self.server = server
        self.net = server.net
        self.stream = BufferedStream(reader, timeout=server.limits.idle_timeout)
        self.writer = writer
        self.state = LoginState.NEED_USER
        self.user = ""
        self.cwd = "/"
        self.type = "A"
        self.data: DataChannel | None = None
        self.bad_commands = 0
        self.peer_ip = peer_address(writer)[0]
        self.local_ip = local_address(writer)[0]
        # RFC 4217: the control connection's protection, PBSZ seen, the data's PROT level
        self.tls = server.tls is not None      # implicit TLS: secured before the banner
        self.pbsz = False
        self.prot = "P" if self.tls else "C"   # implicit: private data, as clients expect

    async def reply(self, code: int, text: str) -> None:
        lines = text.split("\n")
        out = "".join(f"{code}-{line}\r\n" for line in lines[:-1]) + f"{code} {lines[-1]}\r\n"
        self.writer.write(out.encode("utf-8", "replace"))
        await self.writer.drain()

    async def run(self) -> None:
        limits = self.server.limits
        await self.reply(220, "stacklab FTP server ready")
        try:
            while True:
                try:
                    raw = await self.stream.readline(limits.max_line)
                except LineTooLong:
                    self.server.count("line_too_long")
                    code = 500
                    await self.reply(500, "command line too long")
                except TimeoutError:
                    self.server.count("idle_timeout")
                    await self.reply(421, "idle too long, closing control connection")
                    return
                else:
                    if not raw.endswith(b"\n"):
                        return
                    line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
                    verb, _, arg = line.partition(" ")
                    code = await self.command(verb.upper(), arg)
                    if code == 221:
                        return
                if code >= 500:
                    self.bad_commands += 1
                    if self.bad_commands >= MAX_BAD_COMMANDS:
                        await self.reply(421, "too many errors, closing control connection")
                        return
        finally:
            await self.drop_data()

    async def drop_data(self) -> None:
        if self.data is not None:
            await self.data.close()
            self.data = None

    def path(self, arg: str) -> str:
        if "\x00" in arg:
            raise FsError("bad file name")
        return vjoin(self.cwd, arg)

    async def command(self, verb: str, arg: str) -> int:
        handler = getattr(self, f"cmd_{verb}", None) if verb.isalpha() else None
        if handler is None and verb in _NOT_IMPLEMENTED:
            await self.reply(502, f"{verb} not implemented")
            return 502
        if handler is None:
            await self.reply(500, f"{verb[:20]!s} not understood")
            return 500
        if self.state is not LoginState.LOGGED_IN and verb not in _BEFORE_LOGIN:
            await self.reply(530, "please log in with USER and PASS")
            return 530
        if verb in ("USER", "PASS") and self.server.require_tls and not self.tls:
            await self.reply(530, "TLS required: send AUTH TLS first")
            return 530
        try:
            return int(await handler(arg))
        except FsError as exc:
            await self.reply(550, str(exc))
            return 550

    # -- login (RFC 959 §5.4 sequencing) -------------------------------------------------------
    async def cmd_USER(self, arg: str) -> int:
        if not arg:
            await self.reply(501, "syntax: USER name")
            return 501
        self.user = arg
        self.state = LoginState.NEED_PASS
        if self.server.anonymous and arg.lower() in ("anonymous", "ftp"):
            await self.reply(331, "anonymous login ok, send your e-mail address as password")
        else:
            await self.reply(331, f"password required for {arg[:64]}")
        return 331

    async def cmd_PASS(self, arg: str) -> int:
        if self.state is not LoginState.NEED_PASS:
            await self.reply(503, "login with USER first")
            return 503
        anonymous = self.server.anonymous and self.user.lower() in ("anonymous", "ftp")
        if anonymous or self.server.users.get(self.user) == arg:
            self.state = LoginState.LOGGED_IN
            await self.reply(230, "login successful")
            return 230
        self.state = LoginState.NEED_USER
        self.server.count("bad_login")
        await self.reply(530, "login incorrect")
        return 530

    async def cmd_QUIT(self, arg: str) -> int:
        await self.reply(221, "goodbye")
        return 221

    async def cmd_NOOP(self, arg: str) -> int:
        await self.reply(200, "ok")
        return 200

    async def cmd_SYST(self, arg: str) -> int:
        await self.reply(215, "UNIX Type: L8")
        return 215

    async def cmd_FEAT(self, arg: str) -> int:
        tls = "\n AUTH TLS\n PBSZ\n PROT" if self.server.tls_context is not None else ""
        await self.reply(211, f"Features:{tls}\n EPRT\n EPSV\n PASV\n SIZE\n UTF8\nEnd")
        return 211

    async def cmd_HELP(self, arg: str) -> int:
        verbs = sorted(n[4:] for n in dir(self) if n.startswith("cmd_"))
        await self.reply(214, "commands: " + " ".join(verbs))
        return 214

    async def cmd_OPTS(self, arg: str) -> int:
        if arg.upper().split() in (["UTF8", "ON"], ["UTF8"]):
            await self.reply(200, "UTF8 always on")
            return 200
        await self.reply(501, "option not understood")
        return 501

    async def cmd_ALLO(self, arg: str) -> int:
        await self.reply(202, "no storage allocation necessary")
        return 202

    # -- TLS (RFC 4217) ------------------------------------------------------------------------
    async def cmd_AUTH(self, arg: str) -> int:
        context = self.server.tls_context
        if context is None:
            await self.reply(502, "TLS not available")
            return 502
        if arg.upper() not in ("TLS", "TLS-C", "SSL"):
            await self.reply(504, "AUTH TLS only")
            return 504
        if self.tls:
            await self.reply(503, "TLS already active")
            return 503
        await self.reply(234, "AUTH TLS ok, start the handshake")
        if self.stream.buf:  # sent in the clear after AUTH: never read as protected (§4)
            self.server.count("auth_plaintext_dropped")
        from stacklab.apps.tls import start_tls
        tls = await start_tls(self.stream.reader, self.writer, context, server_side=True,
                              net=self.net)
        self.stream = BufferedStream(tls, timeout=self.server.limits.idle_timeout)
        self.writer = tls
        self.tls = True
        self.state = LoginState.NEED_USER  # RFC 2228 §3: the login starts over after AUTH
        return 234

    async def cmd_PBSZ(self, arg: str) -> int:
        if self.server.tls_context is None:
            await self.reply(502, "PBSZ not implemented without TLS")
            return 502
        if not self.tls:
            await self.reply(503, "AUTH TLS first")
            return 503
        if not arg.strip().isdigit():
            await self.reply(501, "syntax: PBSZ 0")
            return 501
        self.pbsz = True
        await self.reply(200, "PBSZ=0")  # §8: always 0 for TLS, whatever was asked
        return 200

    async def cmd_PROT(self, arg: str) -> int:
        if self.server.tls_context is None:
            await self.reply(502, "PROT not implemented without TLS")
            return 502
        if not self.pbsz and not self.server.tls:
            await self.reply(503, "PBSZ first")
            return 503
        level = arg.strip().upper()
        if level in ("C", "P"):
            if level == "C" and self.server.require_tls:
                await self.reply(534, "data connections must be protected (PROT P)")
                return 534
            self.prot = level
            await self.reply(200, f"protection level {level}")
            return 200
        if level in ("S", "E"):
            await self.reply(536, f"protection level {level} not supported by TLS")
            return 536
        await self.reply(504, "PROT C or PROT P")
        return 504

    # -- navigation ----------------------------------------------------------------------------
    async def cmd_PWD(self, arg: str) -> int:
        await self.reply(257, '"' + self.cwd.replace('"', '""') + '" is the current directory')
        return 257

    cmd_XPWD = cmd_PWD

    async def cmd_CWD(self, arg: str) -> int:
        if not arg:
            await self.reply(501, "syntax: CWD path")
            return 501
        target = self.path(arg)
        if not self.server.fs.is_dir(target):
            raise FsError(f"{arg[:200]}: no such directory")
        self.cwd = target
        await self.reply(250, f'directory changed to "{target}"')
        return 250

    async def cmd_CDUP(self, arg: str) -> int:
        return await self.cmd_CWD("..")

    async def cmd_MKD(self, arg: str) -> int:
        if not arg:
            await self.reply(501, "syntax: MKD path")
            return 501
        target = self.path(arg)
        self.server.fs.mkdir(target)
        await self.reply(257, '"' + target.replace('"', '""') + '" created')
        return 257

    async def cmd_RMD(self, arg: str) -> int:
        if not arg:
            await self.reply(501, "syntax: RMD path")
            return 501
        self.server.fs.rmdir(self.path(arg))
        await self.reply(250, "directory removed")
        return 250

    async def cmd_DELE(self, arg: str) -> int:
        if not arg:
            await self.reply(501, "syntax: DELE path")
            return 501
        self.server.fs.delete(self.path(arg))
        await self.reply(250, "file deleted")
        return 250

    async def cmd_SIZE(self, arg: str) -> int:
        if not arg:
            await self.reply(501, "syntax: SIZE path")
            return 501
        await self.reply(213, str(self.server.fs.size(self.path(arg))))
        return 213

    # -- representation ------------------------------------------------------------------------
    async def cmd_TYPE(self, arg: str) -> int:
        kind = arg.upper().split()
        if kind in (["A"], ["A", "N"], ["I"], ["L", "8"]):
            self.type = "I" if kind[0] in ("I", "L") else "A"
            await self.reply(200, f"type set to {self.type}")
            return 200
        if kind and kind[0] in ("E", "L", "A"):
            await self.reply(504, "type not implemented for that parameter")
            return 504
        await self.reply(501, "syntax: TYPE A|I")
        return 501

    async def cmd_MODE(self, arg: str) -> int:
        if arg.upper() == "S":
            await self.reply(200, "mode S")
            return 200
        await self.reply(504, "only stream mode")
        return 504

    async def cmd_STRU(self, arg: str) -> int:
        if arg.upper() == "F":
            await self.reply(200, "structure F")
            return 200
        await self.reply(504, "only file structure")
        return 504

    # -- data connection setup -----------------------------------------------------------------
    async def _passive(self) -> int:
        await self.drop_data()
        self.data = DataChannel()
        return await self.data.listen(self.net, self.local_ip, self.peer_ip)

    async def cmd_PASV(self, arg: str) -> int:
        try:
            ip = ipaddress.ip_address(self.local_ip)
        except ValueError:
            ip = None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if not isinstance(ip, ipaddress.IPv4Address):
            await self.reply(522, "PASV needs IPv4; use EPSV (1,2)")
            return 522
        port = await self._passive()
        h = str(ip).replace(".", ",")
        await self.reply(227, f"entering passive mode ({h},{port >> 8},{port & 0xFF})")
        return 227

    async def cmd_EPSV(self, arg: str) -> int:
        if arg.upper() == "ALL":
            await self.reply(200, "EPSV ALL ok")
            return 200
        port = await self._passive()
        await self.reply(229, f"entering extended passive mode (|||{port}|)")
        return 229

    async def _active(self, addr: str, port: int) -> int:
        if not 1 <= port <= 65535:
            await self.reply(501, "bad port")
            return 501
        if not same_host(addr, self.peer_ip):
            self.server.count("bounce_refused")
            await self.reply(504, "data connections only to the client's own address")
            return 504
        await self.drop_data()
        self.data = DataChannel()
        self.data.target = (addr, port)
        return 200

    async def cmd_PORT(self, arg: str) -> int:
        m = PASV_RE.fullmatch(arg.strip())
        if not m or any(int(g) > 255 for g in m.groups()):
            await self.reply(501, "syntax: PORT h1,h2,h3,h4,p1,p2")
            return 501
        g = [int(x) for x in m.groups()]
        code = await self._active(".".join(map(str, g[:4])), g[4] * 256 + g[5])
        if code == 200:
            await self.reply(200, "PORT ok")
        return code

    async def cmd_EPRT(self, arg: str) -> int:
        arg = arg.strip()
        parts = arg[1:-1].split(arg[0]) if len(arg) > 2 and arg[0] == arg[-1] else []
        if len(parts) != 3 or parts[0] not in ("1", "2") or not parts[2].isdigit():
            await self.reply(501, "syntax: EPRT |proto|address|port|")
            return 501
        try:
            ip = ipaddress.ip_address(parts[1])
        except ValueError:
            await self.reply(501, "bad address")
            return 501
        if ip.version != (4 if parts[0] == "1" else 6):
            await self.reply(522, "network protocol not supported, use (1,2)")
            return 522
        code = await self._active(str(ip), int(parts[2]))
        if code == 200:
            await self.reply(200, "EPRT ok")
        return code

    # -- transfers -----------------------------------------------------------------------------
    async def _open_data(self) -> tuple[DataChannel, Any, Any] | None:
        """The prepared data connection, opened (after the 1xx reply); None after a 425."""
        channel = self.data
        self.data = None
        if channel is None:
            await self.reply(425, "use PORT, EPRT, PASV or EPSV first")
            return None
        try:
            reader, writer = await channel.open(self.net)
        except (OSError, ConnectionError, TimeoutError):
            await channel.close()
            self.server.count("data_connection_failed")
            await self.reply(425, "cannot open data connection")
            return None
        if self.prot == "P":
            from stacklab.apps.tls import start_tls
            assert self.server.tls_context is not None
            try:  # the FTP server is the TLS server on data connections too (RFC 4217 §7)
                reader = writer = await start_tls(reader, writer, self.server.tls_context,
                                                  server_side=True, timeout=DATA_TIMEOUT,
                                                  net=self.net)
            except ConnectionError:
                await close_writer(writer)
                await channel.close()
                self.server.count("data_tls_failed")
                await self.reply(425, "TLS negotiation on the data connection failed")
                return None
        return channel, reader, writer

    async def _finish_data(self, channel: DataChannel, writer: Any) -> None:
        await close_writer(writer, timeout=DATA_TIMEOUT)
        await channel.close()

    async def _send(self, chunks: Iterator[bytes], what: str) -> tuple[bool, str]:
        await self.reply(150, f"opening BINARY mode data connection for {what}")
        opened = await self._open_data()
        if opened is None:
            return False, ""
        channel, _, writer = opened
        digest = hashlib.sha256()
        try:
            for chunk in chunks:
                digest.update(chunk)
                writer.write(chunk)
                await writer.drain()
        except (OSError, ConnectionError):
            await self._finish_data(channel, writer)
            await self.reply(426, "data connection closed; transfer aborted")
            return False, ""
        await self._finish_data(channel, writer)
        await self.reply(226, "transfer complete")
        return True, digest.hexdigest()

    async def _listing(self, arg: str, names_only: bool) -> int:
        words = [w for w in arg.split() if not w.startswith("-")]  # ignore "ls" flags like -la
        target = self.path(words[0] if words else "")
        entries = self.server.fs.listdir(target)
        lines = [e.name if names_only else list_line(e) for e in entries]
        text = "".join(line + "\r\n" for line in lines).encode("utf-8", "replace")
        if self.data is None:
            await self.reply(425, "use PORT, EPRT, PASV or EPSV first")
            return 425
        ok, _ = await self._send(iter([text]), "file list")
        return 226 if ok else 426

    async def cmd_LIST(self, arg: str) -> int:
        return await self._listing(arg, names_only=False)

    async def cmd_NLST(self, arg: str) -> int:
        return await self._listing(arg, names_only=True)

    async def cmd_RETR(self, arg: str) -> int:
        if not arg:
            await self.reply(501, "syntax: RETR path")
            return 501
        if self.data is None:
            await self.reply(425, "use PORT, EPRT, PASV or EPSV first")
            return 425
        try:
            size, chunks = self.server.fs.read(self.path(arg))
        except FsError:
            await self.drop_data()
            raise
        ok, digest = await self._send(chunks, f"{arg[:200]} ({size} bytes)")
        if ok:
            self.server.last_sha256 = digest
        return 226 if ok else 426

    async def cmd_STOR(self, arg: str) -> int:
        if not arg:
            await self.reply(501, "syntax: STOR path")
            return 501
        if self.data is None:
            await self.reply(425, "use PORT, EPRT, PASV or EPSV first")
            return 425
        try:
            sink = self.server.fs.open_write(self.path(arg))
        except FsError:
            await self.drop_data()
            raise
        await self.reply(150, f"ok to send data for {arg[:200]}")
        opened = await self._open_data()
        if opened is None:
            sink.abort()
            return 425
        channel, reader, writer = opened
        digest = hashlib.sha256()
        total = 0
        limit = self.server.limits.max_message
        try:
            while True:
                chunk = await asyncio.wait_for(reader.read(CHUNK), self.server.limits.idle_timeout)
                if not chunk:
                    break
                total += len(chunk)
                if total > limit:
                    sink.abort()
                    # a reset, not a FIN: the client, still writing, sees the end at once
                    # (closed, the connection would take its data into a closing window)
                    writer.transport.abort()
                    await channel.close()
                    self.server.count("too_large")
                    await self.reply(552, f"file larger than {limit} bytes; transfer aborted")
                    return 552
                digest.update(chunk)
                sink.write(chunk)
        except (OSError, ConnectionError, TimeoutError):
            sink.abort()
            await self._finish_data(channel, writer)
            await self.reply(426, "data connection lost; transfer aborted")
            return 426
        sink.commit()
        await self._finish_data(channel, writer)
        self.server.last_sha256 = digest.hexdigest()
        await self.reply(226, f"transfer complete ({total} bytes)")
        return 226


class FtpServer(ServerBase):
    """The FTP server; with ``tls`` (an ``ssl.SSLContext``) FTPS: ``tls_mode="explicit"``
    (RFC 4217: ``AUTH TLS`` on the control connection, then ``PBSZ 0`` and ``PROT P`` for
    private data connections) or ``"implicit"`` (TLS from the first byte, port 990; data
    connections private unless the client asks ``PROT C``). ``require_tls`` refuses USER/PASS
    before AUTH TLS and ``PROT C``."""

    def __init__(self, root: str | os.PathLike[str] | None = None, bytes: int = 1024,
                 users: dict[str, str] | None = None, anonymous: bool = True,
                 limits: ServerLimits | None = None, tls: ssl.SSLContext | None = None,
                 tls_mode: str = "explicit", require_tls: bool = False) -> None:
        if tls_mode not in ("explicit", "implicit"):
            raise ValueError(f'tls_mode is "explicit" or "implicit", not {tls_mode!r}')
        super().__init__(limits, tls if tls_mode == "implicit" else None)
        self.tls_context = tls
        self.require_tls = require_tls and tls is not None
        self.fs: DiskFs | VirtualFs = DiskFs(root) if root is not None else VirtualFs(bytes)
        self.users = dict(users or {})
        self.anonymous = anonymous

    async def refuse(self, writer: Any) -> None:
        writer.write(b"421 too many connections, try later\r\n")
        await writer.drain()

    async def handle(self, reader: Any, writer: Any) -> None:
        await _FtpSession(self, reader, writer).run()


async def serve_ftp(net: Any, port: int = 21, root: str | os.PathLike[str] | None = None,
                    bytes: int = 1024, host: str | None = None,
                    users: dict[str, str] | None = None, anonymous: bool = True,
                    limits: ServerLimits | None = None, tls: ssl.SSLContext | None = None,
                    tls_mode: str = "explicit", require_tls: bool = False) -> FtpServer:
    """Start an FTP server confined to ``root`` (or serving virtual files of ``bytes`` bytes);
    ``tls`` makes it FTPS (see :class:`FtpServer`)."""
    server = FtpServer(root=root, bytes=bytes, users=users, anonymous=anonymous, limits=limits,
                       tls=tls, tls_mode=tls_mode, require_tls=require_tls)
    await server.start(net, port, host)
    return server

