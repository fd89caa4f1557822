"""The FTP client: passive (EPSV, then PASV) or active (EPRT, then PORT) data connections;
FTPS with ``tls`` (explicit ``AUTH TLS`` or implicit, RFC 4217), never falling back to plaintext
(as ``curl --ssl-reqd``)."""

from __future__ import annotations

import asyncio
import builtins
import ipaddress
import re
import ssl
from dataclasses import dataclass
from typing import Any

from stacklab.apps.common import (
    BufferedStream,
    close_writer,
    local_address,
    peer_address,
    sha256_hex,
)
from stacklab.errors import StacklabError

from .channel import CHUNK, PASV_RE, DataChannel

_EPSV_RE = re.compile(r"\(([\x21-\x7e])\1\1(\d{1,5})\1\)")


class FtpError(StacklabError):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


@dataclass
class FtpResult:
    ok: bool
    bytes: int
    sha256: str
    data: builtins.bytes = b""  # the class's own ``bytes`` field shadows the type here


class FtpClient:
    """An FTP client; ``mode`` "passive" (EPSV, then PASV) or "active" (EPRT, then PORT).

    With ``tls``: ``tls_mode`` "explicit" (AUTH TLS after the banner) or "implicit" (TLS at
    once, port 990); after login PBSZ 0 and PROT P, and each data connection is a TLS client
    resuming the control connection's session (RFC 4217 §10); certificates are checked
    against ``server_hostname`` (by default ``host``)."""

    def __init__(self, net: Any, host: str, port: int = 21, mode: str = "passive",
                 timeout: float = 60.0, max_size: int = 1 << 30,
                 tls: ssl.SSLContext | None = None, tls_mode: str = "explicit",
                 server_hostname: str | None = None) -> None:
        if mode not in ("passive", "active"):
            raise ValueError("mode is 'passive' or 'active'")
        if tls_mode not in ("explicit", "implicit"):
            raise ValueError(f'tls_mode is "explicit" or "implicit", not {tls_mode!r}')
        self.tls = tls
        self.tls_mode = tls_mode
        self.server_hostname = server_hostname or host
        self._control_tls: Any = None   # the control connection's TlsStream
        self.private_data = False        # PROT P accepted
        self.data_sessions_reused = 0    # data connections that resumed the TLS session
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
        if self.tls is not None and self.tls_mode == "implicit":
            reader = await self._secure(reader)
        self._stream = BufferedStream(reader, timeout=self.timeout)
        code, text = await self.read_reply()
        if code != 220:
            raise FtpError(code, text)
        if self.tls is not None and self.tls_mode == "explicit":
            try:
                await self.expect("AUTH TLS", 234)
            except FtpError:
                await self.quit()  # no TLS, no plaintext session either
                raise
            # a reply after 234 came in the clear: dropped with the old buffer (RFC 4217 §4)
            self._stream = BufferedStream(await self._secure(self._stream.reader),
                                          timeout=self.timeout)
        return text

    async def _secure(self, reader: Any) -> Any:
        from stacklab.apps.tls import start_tls
        assert self.tls is not None
        try:
            tls = await start_tls(reader, self._writer, self.tls, server_side=False,
                                  server_hostname=self.server_hostname, timeout=self.timeout,
                                  net=self.net)
        except ConnectionError:
            await close_writer(self._writer)
            self._writer = None
            raise
        self._writer = self._control_tls = tls
        return tls

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
        if self._control_tls is not None:
            await self.expect("PBSZ 0", 200)
            await self.expect("PROT P", 200)
            self.private_data = True

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
                m = PASV_RE.search(text)
                if not m:
                    raise FtpError(227, f"cannot parse PASV reply {text!r}")
                port = int(m.group(5)) * 256 + int(m.group(6))
            # connect to the control connection's server, never to the address PASV names
            conn = await asyncio.wait_for(self.net.open_connection(self.host, port),
                                          self.timeout)
            return _Ready(conn)
        local_ip = local_address(self._writer)[0]
        channel = DataChannel()
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
            if self.private_data:
                reader = writer = await self._secure_data(reader, writer)
            received = bytearray()
            if upload is not None:
                view = memoryview(upload)
                try:
                    for i in range(0, len(view), CHUNK):
                        writer.write(view[i:i + CHUNK])
                        await writer.drain()
                except ConnectionError:
                    # the server ended the upload (e.g. 552, over its size limit): its reply
                    # on the control connection says why
                    code, text = await self.read_reply()
                    raise FtpError(code, text) from None
                # the end of the file, then wait for the server's close: closing with bytes
                # still unread (a TLS 1.3 session ticket) would reset the connection and
                # lose the file's tail in the server's receive queue
                writer.write_eof()
                while await asyncio.wait_for(reader.read(CHUNK), self.timeout):
                    pass
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

    async def _secure_data(self, reader: Any, writer: Any) -> Any:
        from stacklab.apps.tls import start_tls
        assert self.tls is not None
        try:
            tls = await start_tls(reader, writer, self.tls, server_side=False,
                                  server_hostname=self.server_hostname, timeout=self.timeout,
                                  session=self._control_tls.get_extra_info("ssl_object").session,
                                  net=self.net)
        except ConnectionError:
            await close_writer(writer)
            raise
        if tls.get_extra_info("session_reused"):
            self.data_sessions_reused += 1
        return tls

    async def retr(self, path: str) -> bytes:
        await self.expect("TYPE I", 200)
        return await self._transfer(f"RETR {path}")

    async def stor(self, path: str, data: bytes) -> None:
        await self.expect("TYPE I", 200)
        await self._transfer(f"STOR {path}", upload=data)

    async def list(self, path: str = "") -> list[str]:
        data = await self._transfer(f"LIST {path}".rstrip())
        return data.decode("utf-8", "replace").splitlines()

    async def nlst(self, path: str = "") -> builtins.list[str]:  # list() above shadows the type
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
    def __init__(self, channel: DataChannel) -> None:
        self.channel = channel

    async def get(self, net: Any, timeout: float) -> tuple[Any, Any]:
        return await self.channel.open(net)

    async def close(self) -> None:
        await self.channel.close()


async def ftp_get(net: Any, host: str, port: int, path: str, mode: str = "passive",
                  user: str = "anonymous", password: str = "stacklab@",
                  timeout: float = 60.0, tls: ssl.SSLContext | None = None,
                  tls_mode: str = "explicit", server_hostname: str | None = None) -> FtpResult:
    async with FtpClient(net, host, port, mode=mode, timeout=timeout, tls=tls,
                         tls_mode=tls_mode, server_hostname=server_hostname) as client:
        await client.login(user, password)
        data = await client.retr(path)
    return FtpResult(True, len(data), sha256_hex(data), data)


async def ftp_put(net: Any, host: str, port: int, path: str, data: bytes,
                  mode: str = "passive", user: str = "anonymous", password: str = "stacklab@",
                  timeout: float = 60.0, tls: ssl.SSLContext | None = None,
                  tls_mode: str = "explicit", server_hostname: str | None = None) -> FtpResult:
    async with FtpClient(net, host, port, mode=mode, timeout=timeout, tls=tls,
                         tls_mode=tls_mode, server_hostname=server_hostname) as client:
        await client.login(user, password)
        await client.stor(path, data)
    return FtpResult(True, len(data), sha256_hex(data))
