"""SMTP (RFC 5321 core): a mail server and a client, on any network seam.

Server (:class:`SmtpServer`, started by :func:`serve_smtp`): EHLO/HELO, MAIL FROM (``SIZE=``),
RCPT TO, DATA (dot-stuffing undone, size limit), RSET, NOOP, VRFY (252), HELP, QUIT. The session
moves through the states of one table (:data:`TRANSITIONS`); a command in the wrong state gets
503, bad syntax 501, an unknown command 500. Messages go to a :class:`Mailbox`: one ``.eml``
per message in a directory, or kept in memory.

Bounds: command lines (512 octets, RFC 5321 §4.5.3.1.4), text lines (``limits.max_line``), the
message (``limits.max_message``, announced as SIZE), recipients per message (100), stored
messages in memory, bad commands per session, concurrent clients (421), idle time (421).

Client: :class:`SmtpClient` and the one-shot :func:`send_mail`.

TLS (``tls=`` an ``ssl.SSLContext`` on either side): ``tls_mode="starttls"`` (RFC 3207: EHLO
offers STARTTLS, ``220`` then the handshake on the same connection, and the session starts
over: whatever was sent in the clear after the command is dropped, the client says EHLO
again, STARTTLS is no longer offered) or ``"implicit"`` (RFC 8314 §3: TLS from the first
byte, submission on 465). A server with ``require_tls`` answers MAIL/RCPT/DATA in the clear
with 530; a client given ``tls`` never falls back to plaintext (as ``swaks --tls``).
"""

from __future__ import annotations

import asyncio
import enum
import os
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stacklab.apps.common import (
    BufferedStream,
    LineTooLong,
    ServerBase,
    ServerLimits,
    close_writer,
    sha256_hex,
    text_body,
)
from stacklab.errors import StacklabError

__all__ = [
    "TRANSITIONS",
    "Mailbox",
    "MailMessage",
    "SmtpClient",
    "SmtpError",
    "SmtpResult",
    "SmtpServer",
    "SmtpState",
    "make_message",
    "send_mail",
    "serve_smtp",
]

COMMAND_LINE_MAX = 512     # RFC 5321 §4.5.3.1.4, incl. CRLF
MAX_RECIPIENTS = 100       # RFC 5321 §4.5.3.1.8 (the minimum a server must accept)
MAX_BAD_COMMANDS = 20
DOMAIN = "stacklab"


class SmtpState(enum.Enum):
    GREETED = "greeted"      # banner sent, no EHLO/HELO yet
    READY = "ready"          # EHLO/HELO done, no transaction
    MAIL = "mail"            # MAIL FROM accepted
    RCPT = "rcpt"            # at least one RCPT TO accepted


S = SmtpState
_ANY = tuple(SmtpState)

# (command, state) -> state after a successful command (RFC 5321 §4.1.4 ordering rules).
# A command missing for the current state is a bad sequence: 503.
TRANSITIONS: dict[tuple[str, SmtpState], SmtpState] = {
    **{("EHLO", s): S.READY for s in _ANY},
    **{("HELO", s): S.READY for s in _ANY},
    ("MAIL", S.READY): S.MAIL,
    ("RCPT", S.MAIL): S.RCPT,
    ("RCPT", S.RCPT): S.RCPT,
    ("DATA", S.RCPT): S.READY,
    ("RSET", S.GREETED): S.GREETED,
    **{("RSET", s): S.READY for s in (S.READY, S.MAIL, S.RCPT)},
    **{(verb, s): s for verb in ("NOOP", "VRFY", "HELP", "QUIT") for s in _ANY},
}

_WHY_503 = {
    "MAIL": "send EHLO/HELO first, and finish or RSET the current transaction",
    "RCPT": "need MAIL FROM first",
    "DATA": "need RCPT TO first",
}

_MAIL_RE = re.compile(r"^FROM:\s*<([^<>\s]*)>(?:\s+(.*))?$", re.IGNORECASE)
_RCPT_RE = re.compile(r"^TO:\s*<([^<>\s]+)>(?:\s+(.*))?$", re.IGNORECASE)
_PARAM_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*)(?:=([\x21-\x3c\x3e-\x7e]+))?$")
# RFC 5321 wants a domain or an address literal; accept any one printable token (interop).
_DOMAIN_RE = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass
class MailMessage:
    mail_from: str
    rcpt_to: list[str]
    data: bytes
    path: Path | None = None

    @property
    def sha256(self) -> str:
        return sha256_hex(self.data)


class Mailbox:
    """Where accepted messages go: ``directory`` (one ``NNNNNN.eml`` each) or memory."""

    def __init__(self, directory: str | os.PathLike[str] | None = None,
                 max_in_memory: int = 1000) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.max_in_memory = max_in_memory
        self.messages: list[MailMessage] = []
        self._seq = 0
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            numbers = [int(p.stem) for p in self.directory.glob("*.eml") if p.stem.isdigit()]
            self._seq = max(numbers, default=0)

    def full(self) -> bool:
        return self.directory is None and len(self.messages) >= self.max_in_memory

    def deliver(self, message: MailMessage) -> str:
        self._seq += 1
        if self.directory is not None:
            message.path = self.directory / f"{self._seq:06d}.eml"
            message.path.write_bytes(message.data)
            # keep the envelope, not the data, in memory
            self.messages.append(MailMessage(message.mail_from, message.rcpt_to, b"",
                                             message.path))
        else:
            self.messages.append(message)
        return f"{self._seq:06d}"


class _Session:
    def __init__(self, stream: BufferedStream, writer: Any, tls: bool) -> None:
        self.stream = stream
        self.writer = writer   # both replaced by the TLS stream after STARTTLS
        self.tls = tls
        self.state = SmtpState.GREETED
        self.mail_from = ""
        self.rcpt_to: list[str] = []
        self.bad_commands = 0

    def reset(self) -> None:
        self.mail_from = ""
        self.rcpt_to = []


class SmtpServer(ServerBase):
    def __init__(self, mailbox: Mailbox | None = None, hostname: str = DOMAIN,
                 limits: ServerLimits | None = None, tls: ssl.SSLContext | None = None,
                 tls_mode: str = "starttls", require_tls: bool = False) -> None:
        _check_mode(tls_mode)
        super().__init__(limits, tls if tls_mode == "implicit" else None)
        self.starttls = tls if tls_mode == "starttls" else None
        self.require_tls = require_tls and tls is not None
        self.mailbox = mailbox or Mailbox()
        self.hostname = hostname

    async def refuse(self, writer: Any) -> None:
        writer.write(f"421 {self.hostname} too many connections, try later\r\n".encode())
        await writer.drain()

    async def handle(self, reader: Any, writer: Any) -> None:
        session = _Session(BufferedStream(reader, timeout=self.limits.idle_timeout), writer,
                           tls=self.tls is not None)

        async def reply(text: str) -> None:
            session.writer.write(text.encode("utf-8", "replace") + b"\r\n")
            await session.writer.drain()

        await reply(f"220 {self.hostname} ESMTP stacklab ready")
        while True:
            try:
                raw = await session.stream.readline(COMMAND_LINE_MAX)
            except LineTooLong:
                self.count("line_too_long")
                await reply("500 5.5.2 line too long")
                session.bad_commands += 1
                if session.bad_commands >= MAX_BAD_COMMANDS:
                    await reply("421 4.7.0 too many errors, closing")
                    return
                continue
            except TimeoutError:
                self.count("idle_timeout")
                await reply(f"421 4.4.2 {self.hostname} idle too long, closing")
                return
            if not raw.endswith(b"\n"):
                return  # EOF (maybe after a partial line)
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            arg = arg.strip()
            code = await self._command(session, verb, arg, reply, session.stream)
            if code is None:
                return
            if code >= 500:
                session.bad_commands += 1
                if session.bad_commands >= MAX_BAD_COMMANDS:
                    await reply("421 4.7.0 too many errors, closing")
                    return

    async def _command(self, session: _Session, verb: str, arg: str, reply: Any,
                       stream: BufferedStream) -> int | None:
        """Run one command; the reply code sent, or None when the session ends."""
        if verb == "STARTTLS" and self.starttls is not None:
            return await self._starttls(session, arg, reply)
        if self.require_tls and not session.tls and verb in ("MAIL", "RCPT", "DATA"):
            await reply("530 5.7.0 Must issue a STARTTLS command first")
            return 530
        known = {v for v, _ in TRANSITIONS}
        if verb not in known:
            if verb in ("STARTTLS", "AUTH", "TURN", "ETRN", "BDAT", "EXPN"):
                await reply(f"502 5.5.1 {verb} not implemented")
                return 502
            await reply("500 5.5.2 command not recognized")
            return 500
        nxt = TRANSITIONS.get((verb, session.state))
        if nxt is None:
            await reply(f"503 5.5.1 bad sequence of commands: {_WHY_503.get(verb, verb)}")
            return 503
        if verb in ("EHLO", "HELO"):
            if not _DOMAIN_RE.match(arg):
                await reply(f"501 5.5.4 syntax: {verb} domain")
                return 501
            session.reset()
            session.state = nxt
            if verb == "HELO":
                await reply(f"250 {self.hostname}")
            else:
                starttls = "250-STARTTLS\r\n" if self.starttls and not session.tls else ""
                await reply(f"250-{self.hostname} greets {arg}\r\n"
                            f"250-SIZE {self.limits.max_message}\r\n"
                            f"250-8BITMIME\r\n250-PIPELINING\r\n{starttls}250 HELP")
            return 250
        if verb == "MAIL":
            return await self._mail(session, arg, reply, nxt)
        if verb == "RCPT":
            m = _RCPT_RE.match(arg)
            if not m or (m.group(2) and not _params_ok(m.group(2))):
                await reply("501 5.5.4 syntax: RCPT TO:<address>")
                return 501
            if len(session.rcpt_to) >= MAX_RECIPIENTS:
                await reply("452 4.5.3 too many recipients")
                return 452
            session.rcpt_to.append(m.group(1))
            session.state = nxt
            await reply("250 2.1.5 recipient ok")
            return 250
        if verb == "DATA":
            if arg:
                await reply("501 5.5.4 syntax: DATA takes no argument")
                return 501
            return await self._data(session, reply, stream, nxt)
        if verb == "RSET":
            if arg:
                await reply("501 5.5.4 syntax: RSET takes no argument")
                return 501
            session.reset()
            session.state = nxt
            await reply("250 2.0.0 reset")
            return 250
        if verb == "NOOP":
            await reply("250 2.0.0 ok")
            return 250
        if verb == "VRFY":
            if not arg:
                await reply("501 5.5.4 syntax: VRFY string")
                return 501
            await reply("252 2.1.5 cannot verify, but will accept and attempt delivery")
            return 252
        if verb == "HELP":
            await reply("214 2.0.0 EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT")
            return 214
        # QUIT
        await reply(f"221 2.0.0 {self.hostname} closing connection")
        return None

    async def _starttls(self, session: _Session, arg: str, reply: Any) -> int:
        """RFC 3207 §4: 220, the handshake, then a fresh session (§4.2)."""
        assert self.starttls is not None
        if arg:
            await reply("501 5.5.4 syntax: STARTTLS takes no argument")
            return 501
        if session.tls:
            await reply("503 5.5.1 TLS already active")
            return 503
        await reply("220 2.0.0 ready to start TLS")
        if session.stream.buf:
            self.count("starttls_plaintext_dropped")  # pipelined after STARTTLS: injected?
        from stacklab.apps.tls import start_tls
        tls = await start_tls(session.stream.reader, session.writer, self.starttls,
                              server_side=True, net=self.net)
        session.stream = BufferedStream(tls, timeout=self.limits.idle_timeout)
        session.writer = tls
        session.tls = True
        session.reset()
        session.state = SmtpState.GREETED
        return 220

    async def _mail(self, session: _Session, arg: str, reply: Any, nxt: SmtpState) -> int:
        m = _MAIL_RE.match(arg)
        if not m:
            await reply("501 5.5.4 syntax: MAIL FROM:<address> [SIZE=n]")
            return 501
        for param in (m.group(2) or "").split():
            pm = _PARAM_RE.match(param)
            if not pm:
                await reply(f"501 5.5.4 bad parameter {param[:40]}")
                return 501
            key, value = pm.group(1).upper(), pm.group(2)
            if key == "SIZE":
                if value is None or not value.isdigit():
                    await reply("501 5.5.4 syntax: SIZE=digits")
                    return 501
                if int(value) > self.limits.max_message:
                    await reply("552 5.3.4 message size exceeds fixed maximum message size")
                    return 552
            elif key == "BODY":
                if (value or "").upper() not in ("7BIT", "8BITMIME"):
                    await reply("501 5.5.4 BODY=7BIT or BODY=8BITMIME")
                    return 501
            else:
                await reply(f"555 5.5.4 parameter {key[:40]} not recognized")
                return 555
        if self.mailbox.full():
            await reply("452 4.3.1 insufficient system storage")
            return 452
        session.reset()
        session.mail_from = m.group(1)
        session.state = nxt
        await reply("250 2.1.0 sender ok")
        return 250

    async def _data(self, session: _Session, reply: Any, stream: BufferedStream,
                    nxt: SmtpState) -> int | None:
        await reply("354 end data with <CR><LF>.<CR><LF>")
        data = bytearray()
        too_big = long_line = False
        while True:
            try:
                line = await stream.readline(self.limits.max_line)
            except LineTooLong:
                long_line = True
                continue
            except TimeoutError:
                self.count("idle_timeout")
                await reply(f"421 4.4.2 {self.hostname} idle too long, closing")
                return None
            if not line.endswith(b"\n"):
                self.count("eof_in_data")
                return None
            if line in (b".\r\n", b".\n"):
                break
            if line.startswith(b"."):
                line = line[1:]  # RFC 5321 §4.5.2 transparency
            if not too_big:
                data += line
                if len(data) > self.limits.max_message:
                    too_big = True
                    data = bytearray()
        session.state = nxt
        mail_from, rcpt_to = session.mail_from, session.rcpt_to
        session.reset()
        if too_big:
            self.count("too_large")
            await reply("552 5.3.4 message size exceeds fixed maximum message size")
            return 552
        if long_line:
            self.count("line_too_long")
            await reply(f"500 5.5.6 a line was longer than {self.limits.max_line} octets")
            return 500
        message = MailMessage(mail_from, rcpt_to, bytes(data))
        queue_id = self.mailbox.deliver(message)
        self.last_sha256 = message.sha256
        await reply(f"250 2.0.0 ok queued as {queue_id}")
        return 250


def _params_ok(params: str) -> bool:
    return all(_PARAM_RE.match(p) for p in params.split())


def _check_mode(tls_mode: str) -> None:
    if tls_mode not in ("starttls", "implicit"):
        raise ValueError(f'tls_mode is "starttls" or "implicit", not {tls_mode!r}')


async def serve_smtp(net: Any, port: int = 25, root: str | os.PathLike[str] | None = None,
                     host: str | None = None, hostname: str = DOMAIN,
                     limits: ServerLimits | None = None, tls: ssl.SSLContext | None = None,
                     tls_mode: str = "starttls", require_tls: bool = False) -> SmtpServer:
    """Start an SMTP server storing into directory ``root`` (or memory when None); ``tls``
    offers STARTTLS (or, ``tls_mode="implicit"``, speaks TLS at once)."""
    server = SmtpServer(Mailbox(root), hostname=hostname, limits=limits, tls=tls,
                        tls_mode=tls_mode, require_tls=require_tls)
    await server.start(net, port, host)
    return server


# -- client ------------------------------------------------------------------------------------
class SmtpError(StacklabError):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


@dataclass
class SmtpResult:
    ok: bool
    code: int
    reply: str
    bytes: int
    sha256: str
    refused: dict[str, str] = field(default_factory=dict)


def normalize_message(message: bytes) -> bytes:
    """CRLF line endings, ending with CRLF: the exact bytes a server stores."""
    lines = message.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join(line + b"\r\n" for line in lines)


def dot_stuff(message: bytes) -> bytes:
    """RFC 5321 §4.5.2: double a leading dot on every line (message already CRLF-normalized)."""
    if message.startswith(b"."):
        message = b"." + message
    return message.replace(b"\r\n.", b"\r\n..")


def make_message(mail_from: str, rcpt_to: str, body_bytes: int,
                 subject: str = "stacklab test message") -> bytes:
    """Headers plus a deterministic text body of ``body_bytes`` bytes."""
    head = (f"From: <{mail_from}>\r\nTo: <{rcpt_to}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{body_bytes}.stacklab@{DOMAIN}>\r\n\r\n").encode()
    return head + text_body(body_bytes)


class SmtpClient:
    """An SMTP client; with ``tls`` it secures the session (``tls_mode`` as the server's) and
    checks the server's certificate against ``server_hostname`` (by default ``host``)."""

    def __init__(self, net: Any, host: str, port: int = 25, helo: str = "client.stacklab",
                 timeout: float = 60.0, tls: ssl.SSLContext | None = None,
                 tls_mode: str = "starttls", server_hostname: str | None = None) -> None:
        _check_mode(tls_mode)
        self.tls = tls
        self.tls_mode = tls_mode
        self.server_hostname = server_hostname or host
        self.secure = False   # the session runs over TLS
        self.net = net
        self.host = host
        self.port = port
        self.helo = helo
        self.timeout = timeout
        self.extensions: dict[str, str] = {}
        self._stream: BufferedStream | None = None
        self._writer: Any = None

    async def connect(self) -> tuple[int, str]:
        reader, self._writer = await asyncio.wait_for(
            self.net.open_connection(self.host, self.port), self.timeout)
        if self.tls is not None and self.tls_mode == "implicit":
            reader = await self._secure(reader)
        self._stream = BufferedStream(reader, timeout=self.timeout)
        code, text = await self.read_reply()
        if code != 220:
            raise SmtpError(code, text)
        return code, text

    async def _secure(self, reader: Any) -> Any:
        from stacklab.apps.tls import start_tls
        assert self.tls is not None
        try:
            tls = await start_tls(reader, self._writer, self.tls, server_side=False,
                                  server_hostname=self.server_hostname, timeout=self.timeout,
                                  net=self.net)
        except ConnectionError:
            await close_writer(self._writer)
            raise
        self._writer = tls
        self.secure = True
        return tls

    async def starttls(self) -> None:
        """STARTTLS (RFC 3207), then EHLO again over TLS; SmtpError when it is not offered."""
        if "STARTTLS" not in self.extensions:
            raise SmtpError(0, "the server does not offer STARTTLS (no fallback to plaintext)")
        code, text = await self.command("STARTTLS")
        if code != 220:
            raise SmtpError(code, text)
        assert self._stream is not None
        # anything after the 220 came in the clear (RFC 3207 §4.2): forget it
        self._stream = BufferedStream(await self._secure(self._stream.reader),
                                      timeout=self.timeout)
        self.extensions = {}
        await self.ehlo()

    async def read_reply(self) -> tuple[int, str]:
        assert self._stream is not None
        lines: list[str] = []
        while True:
            raw = await self._stream.readline(4096)
            if not raw.endswith(b"\n"):
                raise ConnectionError("server closed the connection")
            line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            if len(line) < 3 or not line[:3].isdigit() or (len(line) > 3 and line[3] not in " -"):
                raise SmtpError(0, f"malformed reply {line[:80]!r}")
            lines.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return int(line[:3]), "\n".join(lines)
            if len(lines) > 100:
                raise SmtpError(0, "reply with too many lines")

    async def command(self, line: str) -> tuple[int, str]:
        self._writer.write(line.encode("utf-8") + b"\r\n")
        await self._writer.drain()
        return await self.read_reply()

    async def ehlo(self) -> None:
        code, text = await self.command(f"EHLO {self.helo}")
        if code == 250:
            for ext in text.split("\n")[1:]:
                key, _, value = ext.partition(" ")
                self.extensions[key.upper()] = value
            if self.tls is not None and not self.secure:
                await self.starttls()
            return
        if self.tls is not None and not self.secure:
            raise SmtpError(code, f"EHLO refused, so no STARTTLS: {text}")
        code, text = await self.command(f"HELO {self.helo}")
        if code != 250:
            raise SmtpError(code, text)

    async def send(self, mail_from: str, rcpt_to: list[str], message: bytes) -> SmtpResult:
        data = normalize_message(message)
        size = f" SIZE={len(data)}" if "SIZE" in self.extensions else ""
        code, text = await self.command(f"MAIL FROM:<{mail_from}>{size}")
        if code != 250:
            raise SmtpError(code, text)
        refused: dict[str, str] = {}
        for rcpt in rcpt_to:
            code, text = await self.command(f"RCPT TO:<{rcpt}>")
            if code not in (250, 251):
                refused[rcpt] = f"{code} {text}"
        if len(refused) == len(rcpt_to):
            await self.command("RSET")
            raise SmtpError(code, f"all recipients refused: {refused}")
        code, text = await self.command("DATA")
        if code != 354:
            raise SmtpError(code, text)
        self._writer.write(dot_stuff(data) + b".\r\n")
        await self._writer.drain()
        code, text = await self.read_reply()
        return SmtpResult(code == 250, code, text, len(data), sha256_hex(data), refused)

    async def quit(self) -> None:
        if self._writer.is_closing():  # (a failed handshake closed it)
            return
        try:
            await self.command("QUIT")
        except (ConnectionError, SmtpError, TimeoutError):
            pass
        await close_writer(self._writer)


async def send_mail(net: Any, host: str, port: int, mail_from: str, rcpt_to: list[str] | str,
                    message: bytes, helo: str = "client.stacklab",
                    timeout: float = 60.0, tls: ssl.SSLContext | None = None,
                    tls_mode: str = "starttls",
                    server_hostname: str | None = None) -> SmtpResult:
    """Connect, EHLO (and STARTTLS with ``tls``), send one message, QUIT. Raises
    :class:`SmtpError` on refusal, :class:`stacklab.apps.tls.TlsError` when TLS fails."""
    rcpts = [rcpt_to] if isinstance(rcpt_to, str) else list(rcpt_to)
    client = SmtpClient(net, host, port, helo=helo, timeout=timeout, tls=tls,
                        tls_mode=tls_mode, server_hostname=server_hostname)
    await client.connect()
    try:
        await client.ehlo()
        return await client.send(mail_from, rcpts, message)
    finally:
        await client.quit()
