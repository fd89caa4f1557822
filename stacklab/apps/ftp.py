"""FTP (RFC 959, EPSV/EPRT from RFC 2428, SIZE from RFC 3659): server and client.

FTP is the two-connection protocol: commands and replies on the control connection, each
listing or file on a fresh data connection, which either the client opens to a port the
server listens on (passive: PASV/EPSV) or the server opens to a port the client listens on
(active: PORT/EPRT). The server here does both; so does the client (``mode``).

Server (:class:`FtpServer`, started by :func:`serve_ftp`): USER/PASS (anonymous optional),
PWD, CWD, CDUP, LIST, NLST, RETR, STOR, SIZE, DELE, MKD, RMD, TYPE, MODE, STRU, PASV, EPSV,
PORT, EPRT, SYST, FEAT, OPTS, NOOP, HELP, QUIT. Files live in a :class:`DiskFs` confined to a
root directory (``..``, absolute paths and symlinks cannot leave it), or in a
:class:`VirtualFs` where any file name reads as a deterministic body of ``bytes`` bytes and
uploads are kept in memory. Transfers are always binary (TYPE A is accepted, as most servers
do, without line-ending conversion); listings are CRLF text.

Bounds: command line length, file size (``limits.max_message``), concurrent clients (421), bad
commands per session, idle time, time to open a data connection. PORT/EPRT to an address other
than the client's own is refused (no FTP bounce), and a passive data connection from another
address than the client's is dropped.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import ipaddress
import os
import posixpath
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacklab.apps.common import (
    BufferedStream,
    LineTooLong,
    ServerBase,
    ServerLimits,
    close_writer,
    iter_pattern,
    listening_port,
    local_address,
    peer_address,
    sha256_hex,
)

__all__ = [
    "DiskFs",
    "FtpClient",
    "FtpError",
    "FtpResult",
    "FtpServer",
    "LoginState",
    "VirtualFs",
    "ftp_get",
    "ftp_put",
    "serve_ftp",
]

CHUNK = 64 * 1024
MAX_BAD_COMMANDS = 20
DATA_TIMEOUT = 30.0


class FsError(Exception):
    """A file operation failed; the message goes into a 550 reply."""


# -- file systems ------------------------------------------------------------------------------
def _vjoin(cwd: str, arg: str) -> str:
    """The absolute virtual path for ``arg`` seen from ``cwd``; never above "/"."""
    path = posixpath.normpath(posixpath.join(cwd, arg))
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    return path


@dataclass
class Entry:
    name: str
    is_dir: bool
    size: int
    mtime: float


class DiskFs:
    """Files under ``root``; virtual paths are absolute ("/a/b") and map below root only."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise NotADirectoryError(str(self.root))

    def _real(self, vpath: str) -> Path:
        rel = vpath.lstrip("/")
        real = (self.root / rel).resolve() if rel else self.root
        if real != self.root and not real.is_relative_to(self.root):
            raise FsError("permission denied")
        return real

    def is_dir(self, vpath: str) -> bool:
        return self._real(vpath).is_dir()

    def size(self, vpath: str) -> int:
        real = self._real(vpath)
        if not real.is_file():
            raise FsError("not a plain file")
        return real.stat().st_size

    def listdir(self, vpath: str) -> list[Entry]:
        real = self._real(vpath)
        if real.is_file():
            st = real.stat()
            return [Entry(real.name, False, st.st_size, st.st_mtime)]
        if not real.is_dir():
            raise FsError("no such file or directory")
        out = []
        for child in sorted(real.iterdir(), key=lambda p: p.name):
            try:
                st = child.stat()
            except OSError:
                continue
            out.append(Entry(child.name, child.is_dir(), st.st_size, st.st_mtime))
        return out

    def read(self, vpath: str) -> tuple[int, Iterator[bytes]]:
        real = self._real(vpath)
        if not real.is_file():
            raise FsError("no such file")
        try:
            handle = real.open("rb")
        except OSError as exc:
            raise FsError(exc.strerror or "cannot open") from None

        def chunks() -> Iterator[bytes]:
            with handle:
                while chunk := handle.read(CHUNK):
                    yield chunk
        return real.stat().st_size, chunks()

    def open_write(self, vpath: str) -> Any:
        real = self._real(vpath)
        if real.is_dir() or not real.parent.is_dir():
            raise FsError("cannot create file there")
        try:
            return _DiskWriter(real)
        except OSError as exc:
            raise FsError(exc.strerror or "cannot create") from None

    def delete(self, vpath: str) -> None:
        real = self._real(vpath)
        if not real.is_file():
            raise FsError("no such file")
        real.unlink()

    def mkdir(self, vpath: str) -> None:
        real = self._real(vpath)
        try:
            real.mkdir()
        except OSError as exc:
            raise FsError(exc.strerror or "cannot create directory") from None

    def rmdir(self, vpath: str) -> None:
        real = self._real(vpath)
        if real == self.root:
            raise FsError("permission denied")
        try:
            real.rmdir()
        except OSError as exc:
            raise FsError(exc.strerror or "cannot remove directory") from None


class _DiskWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = path.open("wb")

    def write(self, data: bytes) -> None:
        self.handle.write(data)

    def commit(self) -> None:
        self.handle.close()

    def abort(self) -> None:
        self.handle.close()
        self.path.unlink(missing_ok=True)


VIRTUAL_NAME = "pattern.bin"
VIRTUAL_MTIME = 946684800.0  # 2000-01-01, fixed so listings are deterministic


class VirtualFs:
    """No disk: any file name reads as the deterministic body of ``size`` bytes; uploads and
    new directories live in memory (at most ``max_files`` files)."""

    def __init__(self, size: int, max_files: int = 100) -> None:
        self.body_size = size
        self.max_files = max_files
        self.files: dict[str, bytes] = {}
        self.dirs: set[str] = {"/"}

    def is_dir(self, vpath: str) -> bool:
        return vpath in self.dirs

    def size(self, vpath: str) -> int:
        if vpath in self.dirs:
            raise FsError("not a plain file")
        return len(self.files[vpath]) if vpath in self.files else self.body_size

    def listdir(self, vpath: str) -> list[Entry]:
        if vpath not in self.dirs:
            return [Entry(posixpath.basename(vpath), False, self.size(vpath), VIRTUAL_MTIME)]
        out = [Entry(VIRTUAL_NAME, False, self.body_size, VIRTUAL_MTIME)]
        for d in sorted(self.dirs):
            if d != "/" and posixpath.dirname(d) == vpath:
                out.append(Entry(posixpath.basename(d), True, 0, VIRTUAL_MTIME))
        for f, data in sorted(self.files.items()):
            if posixpath.dirname(f) == vpath and posixpath.basename(f) != VIRTUAL_NAME:
                out.append(Entry(posixpath.basename(f), False, len(data), VIRTUAL_MTIME))
        return out

    def read(self, vpath: str) -> tuple[int, Iterator[bytes]]:
        if vpath in self.dirs:
            raise FsError("is a directory")
        if vpath in self.files:
            data = self.files[vpath]
            return len(data), iter([data])
        return self.body_size, iter_pattern(self.body_size, CHUNK)

    def open_write(self, vpath: str) -> Any:
        if vpath in self.dirs or posixpath.dirname(vpath) not in self.dirs:
            raise FsError("cannot create file there")
        if vpath not in self.files and len(self.files) >= self.max_files:
            raise FsError("too many files")
        return _MemoryWriter(self, vpath)

    def delete(self, vpath: str) -> None:
        if vpath not in self.files:
            raise FsError("no such file")
        del self.files[vpath]

    def mkdir(self, vpath: str) -> None:
        if vpath in self.dirs or vpath in self.files or posixpath.dirname(vpath) not in self.dirs:
            raise FsError("cannot create directory")
        if len(self.dirs) > self.max_files:
            raise FsError("too many directories")
        self.dirs.add(vpath)

    def rmdir(self, vpath: str) -> None:
        if vpath == "/" or vpath not in self.dirs:
            raise FsError("no such directory")
        if any(posixpath.dirname(p) == vpath for p in (*self.dirs, *self.files)):
            raise FsError("directory not empty")
        self.dirs.discard(vpath)


class _MemoryWriter:
    def __init__(self, fs: VirtualFs, vpath: str) -> None:
        self.fs = fs
        self.vpath = vpath
        self.buf = bytearray()

    def write(self, data: bytes) -> None:
        self.buf += data

    def commit(self) -> None:
        self.fs.files[self.vpath] = bytes(self.buf)

    def abort(self) -> None:
        self.buf = bytearray()


def _list_line(entry: Entry) -> str:
    mode = "drwxr-xr-x" if entry.is_dir else "-rw-r--r--"
    stamp = time.strftime("%b %d  %Y", time.gmtime(entry.mtime))
    return f"{mode} 1 ftp ftp {entry.size:>12} {stamp} {entry.name}"


# -- server ------------------------------------------------------------------------------------
class LoginState(enum.Enum):
    NEED_USER = "need-user"
    NEED_PASS = "need-pass"
    LOGGED_IN = "logged-in"


# Commands allowed before login; everything else answers 530.
_BEFORE_LOGIN = {"USER", "PASS", "QUIT", "NOOP", "SYST", "FEAT", "HELP", "OPTS", "AUTH"}
# RFC 959 commands this server knows but does not implement: 502, not 500.
_NOT_IMPLEMENTED = {"ABOR", "ACCT", "APPE", "REIN", "REST", "RNFR", "RNTO", "SITE", "SMNT",
                    "STAT", "STOU", "MLSD", "MLST", "MDTM", "PRET", "PBSZ", "PROT", "CCC"}
_EPSV_RE = re.compile(r"\(([\x21-\x7e])\1\1(\d{1,5})\1\)")
_PASV_RE = re.compile(r"(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})")


def _same_host(a: str, b: str) -> bool:
    try:
        ia, ib = ipaddress.ip_address(a.split("%")[0]), ipaddress.ip_address(b.split("%")[0])
    except ValueError:
        return False
    if isinstance(ia, ipaddress.IPv6Address) and ia.ipv4_mapped:
        ia = ia.ipv4_mapped
    if isinstance(ib, ipaddress.IPv6Address) and ib.ipv4_mapped:
        ib = ib.ipv4_mapped
    return ia == ib


class _DataChannel:
    """One prepared data connection: a passive listener or an active target."""

    def __init__(self) -> None:
        self.listener: Any = None
        self.accepted: asyncio.Future[tuple[Any, Any]] | None = None
        self.done = asyncio.Event()
        self.target: tuple[str, int] | None = None

    async def listen(self, net: Any, local_ip: str, peer_ip: str) -> int:
        loop = asyncio.get_running_loop()
        self.accepted = loop.create_future()

        async def on_connect(reader: Any, writer: Any) -> None:
            assert self.accepted is not None
            try:
                ok_peer = _same_host(peer_address(writer)[0], peer_ip)
            except ConnectionError:
                ok_peer = False
            if self.accepted.done() or not ok_peer:
                await close_writer(writer)
                return
            self.accepted.set_result((reader, writer))
            await self.done.wait()  # keep the handler alive while the transfer runs

        self.listener = await net.start_server(on_connect, 0, host=local_ip)
        return listening_port(self.listener)

    async def open(self, net: Any) -> tuple[Any, Any]:
        if self.target is not None:
            return await asyncio.wait_for(net.open_connection(*self.target), DATA_TIMEOUT)
        assert self.accepted is not None
        try:
            return await asyncio.wait_for(asyncio.shield(self.accepted), DATA_TIMEOUT)
        except asyncio.CancelledError:
            if self.accepted.cancelled():  # closed under us, not our task cancelled
                raise ConnectionError("data channel closed") from None
            raise
        finally:
            self._close_listener()

    def _close_listener(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    async def close(self) -> None:
        self.done.set()
        self._close_listener()
        if self.accepted is not None and not self.accepted.done():
            self.accepted.cancel()


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
        self.data: _DataChannel | None = None
        self.bad_commands = 0
        self.peer_ip = peer_address(writer)[0]
        self.local_ip = local_address(writer)[0]

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
        return _vjoin(self.cwd, arg)

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
        await self.reply(211, "Features:\n EPRT\n EPSV\n PASV\n SIZE\n UTF8\nEnd")
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

    async def cmd_AUTH(self, arg: str) -> int:
        await self.reply(502, "TLS not available")
        return 502

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
        self.data = _DataChannel()
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
        if not _same_host(addr, self.peer_ip):
            self.server.count("bounce_refused")
            await self.reply(504, "data connections only to the client's own address")
            return 504
        await self.drop_data()
        self.data = _DataChannel()
        self.data.target = (addr, port)
        return 200

    async def cmd_PORT(self, arg: str) -> int:
        m = _PASV_RE.fullmatch(arg.strip())
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
    async def _open_data(self) -> tuple[_DataChannel, Any, Any] | None:
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
        return channel, reader, writer

    async def _finish_data(self, channel: _DataChannel, writer: Any) -> None:
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
        lines = [e.name if names_only else _list_line(e) for e in entries]
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
                    await self._finish_data(channel, writer)
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
    def __init__(self, root: str | os.PathLike[str] | None = None, bytes: int = 1024,
                 users: dict[str, str] | None = None, anonymous: bool = True,
                 limits: ServerLimits | None = None) -> None:
        super().__init__(limits)
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
                    limits: ServerLimits | None = None) -> FtpServer:
    """Start an FTP server confined to ``root`` (or serving virtual files of ``bytes`` bytes)."""
    server = FtpServer(root=root, bytes=bytes, users=users, anonymous=anonymous, limits=limits)
    await server.start(net, port, host)
    return server


# -- client ------------------------------------------------------------------------------------
class FtpError(Exception):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


@dataclass
class FtpResult:
    ok: bool
    bytes: int
    sha256: str
    data: bytes = b""


class FtpClient:
    """An FTP client; ``mode`` "passive" (EPSV, then PASV) or "active" (EPRT, then PORT)."""

    def __init__(self, net: Any, host: str, port: int = 21, mode: str = "passive",
                 timeout: float = 60.0, max_size: int = 1 << 30) -> None:
        if mode not in ("passive", "active"):
            raise ValueError("mode is 'passive' or 'active'")
        self.net = net
        self.host = host
        self.port = port
        self.mode = mode
        self.timeout = timeout
        self.max_size = max_size
        self._stream: BufferedStream | None = None
        self._writer: Any = None
        self.log: list[str] = []  # commands sent, for tests and the tour

    async def connect(self) -> str:
        reader, self._writer = await asyncio.wait_for(
            self.net.open_connection(self.host, self.port), self.timeout)
        self._stream = BufferedStream(reader, timeout=self.timeout)
        code, text = await self.read_reply()
        if code != 220:
            raise FtpError(code, text)
        return text

    async def read_reply(self) -> tuple[int, str]:
        assert self._stream is not None
        raw = await self._stream.readline(8192)
        if not raw.endswith(b"\n"):
            raise ConnectionError("control connection closed")
        line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
        if len(line) < 3 or not line[:3].isdigit():
            raise FtpError(0, f"malformed reply {line[:80]!r}")
        code, lines = line[:3], [line[4:]]
        if len(line) > 3 and line[3] == "-":
            while True:  # RFC 959 §4.2: until a line starting "code "
                raw = await self._stream.readline(8192)
                if not raw.endswith(b"\n"):
                    raise ConnectionError("control connection closed")
                line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
                if line.startswith(code + " ") or line == code:
                    lines.append(line[4:])
                    break
                lines.append(line)
                if len(lines) > 1000:
                    raise FtpError(0, "reply with too many lines")
        return int(code), "\n".join(lines)

    async def command(self, line: str) -> tuple[int, str]:
        self.log.append(line.split(" ")[0] if line.upper().startswith("PASS") else line)
        self._writer.write(line.encode("utf-8") + b"\r\n")
        await self._writer.drain()
        return await self.read_reply()

    async def expect(self, line: str, *codes: int) -> str:
        code, text = await self.command(line)
        if code not in codes:
            raise FtpError(code, text)
        return text

    async def login(self, user: str = "anonymous", password: str = "stacklab@") -> None:
        code, text = await self.command(f"USER {user}")
        if code == 331:
            code, text = await self.command(f"PASS {password}")
        if code != 230:
            raise FtpError(code, text)

    async def pwd(self) -> str:
        text = await self.expect("PWD", 257)
        m = re.match(r'"((?:[^"]|"")*)"', text)
        return m.group(1).replace('""', '"') if m else text

    async def cwd(self, path: str) -> None:
        await self.expect(f"CWD {path}", 250)

    async def mkd(self, path: str) -> None:
        await self.expect(f"MKD {path}", 257)

    async def dele(self, path: str) -> None:
        await self.expect(f"DELE {path}", 250)

    async def size(self, path: str) -> int:
        # RFC 3659 §4: the size depends on TYPE; servers may refuse SIZE in ASCII mode
        await self.expect("TYPE I", 200)
        return int((await self.expect(f"SIZE {path}", 213)).strip())

    # -- data connections ----------------------------------------------------------------------
    async def _prepare(self) -> Any:
        """Set up a data connection; returns an awaitable giving (reader, writer) once the
        transfer command is sent, plus a cleanup."""
        if self.mode == "passive":
            code, text = await self.command("EPSV")
            if code == 229:
                m = _EPSV_RE.search(text)
                if not m:
                    raise FtpError(code, f"cannot parse EPSV reply {text!r}")
                port = int(m.group(2))
            else:
                text = await self.expect("PASV", 227)
                m = _PASV_RE.search(text)
                if not m:
                    raise FtpError(227, f"cannot parse PASV reply {text!r}")
                port = int(m.group(5)) * 256 + int(m.group(6))
            # connect to the control connection's server, never to the address PASV names
            conn = await asyncio.wait_for(self.net.open_connection(self.host, port),
                                          self.timeout)
            return _Ready(conn)
        local_ip = local_address(self._writer)[0]
        channel = _DataChannel()
        port = await channel.listen(self.net, local_ip, peer_address(self._writer)[0])
        ip = ipaddress.ip_address(local_ip)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        family = 1 if ip.version == 4 else 2
        code, text = await self.command(f"EPRT |{family}|{ip}|{port}|")
        if code != 200 and ip.version == 4:
            h = str(ip).replace(".", ",")
            code, text = await self.command(f"PORT {h},{port >> 8},{port & 0xFF}")
        if code != 200:
            await channel.close()
            raise FtpError(code, text)
        return _Pending(channel)

    async def _transfer(self, line: str, upload: bytes | None = None) -> bytes:
        pending = await self._prepare()
        try:
            code, text = await self.command(line)
            if code not in (125, 150):
                raise FtpError(code, text)
            reader, writer = await pending.get(self.net, self.timeout)
            received = bytearray()
            if upload is not None:
                view = memoryview(upload)
                for i in range(0, len(view), CHUNK):
                    writer.write(view[i:i + CHUNK])
                    await writer.drain()
                await close_writer(writer, timeout=self.timeout)
            else:
                while True:
                    chunk = await asyncio.wait_for(reader.read(CHUNK), self.timeout)
                    if not chunk:
                        break
                    received += chunk
                    if len(received) > self.max_size:
                        raise FtpError(0, f"download larger than {self.max_size} bytes")
                await close_writer(writer, timeout=self.timeout)
            code, text = await self.read_reply()
            if code != 226 and code != 250:
                raise FtpError(code, text)
            return bytes(received)
        finally:
            await pending.close()

    async def retr(self, path: str) -> bytes:
        await self.expect("TYPE I", 200)
        return await self._transfer(f"RETR {path}")

    async def stor(self, path: str, data: bytes) -> None:
        await self.expect("TYPE I", 200)
        await self._transfer(f"STOR {path}", upload=data)

    async def list(self, path: str = "") -> list[str]:
        data = await self._transfer(f"LIST {path}".rstrip())
        return data.decode("utf-8", "replace").splitlines()

    async def nlst(self, path: str = "") -> list[str]:
        data = await self._transfer(f"NLST {path}".rstrip())
        return data.decode("utf-8", "replace").splitlines()

    async def quit(self) -> None:
        if self._writer is None:
            return
        try:
            await self.command("QUIT")
        except (ConnectionError, FtpError, TimeoutError):
            pass
        await close_writer(self._writer)
        self._writer = None

    async def __aenter__(self) -> FtpClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.quit()


class _Ready:
    def __init__(self, conn: tuple[Any, Any]) -> None:
        self.conn = conn

    async def get(self, net: Any, timeout: float) -> tuple[Any, Any]:
        return self.conn

    async def close(self) -> None:
        pass


class _Pending:
    def __init__(self, channel: _DataChannel) -> None:
        self.channel = channel

    async def get(self, net: Any, timeout: float) -> tuple[Any, Any]:
        return await self.channel.open(net)

    async def close(self) -> None:
        await self.channel.close()


async def ftp_get(net: Any, host: str, port: int, path: str, mode: str = "passive",
                  user: str = "anonymous", password: str = "stacklab@",
                  timeout: float = 60.0) -> FtpResult:
    async with FtpClient(net, host, port, mode=mode, timeout=timeout) as client:
        await client.login(user, password)
        data = await client.retr(path)
    return FtpResult(True, len(data), sha256_hex(data), data)


async def ftp_put(net: Any, host: str, port: int, path: str, data: bytes,
                  mode: str = "passive", user: str = "anonymous", password: str = "stacklab@",
                  timeout: float = 60.0) -> FtpResult:
    async with FtpClient(net, host, port, mode=mode, timeout=timeout) as client:
        await client.login(user, password)
        await client.stor(path, data)
    return FtpResult(True, len(data), sha256_hex(data))
