"""What every application shares: the "network" seam, bounded line reading, limits, test bodies.

Every server and client in :mod:`stacklab.apps` talks to the network only through a small object
(``net``) with four coroutines, the ones asyncio offers:

* ``await net.open_connection(addr, port) -> (reader, writer)``
* ``await net.start_server(client_connected_cb, port, host=None) -> server``
* ``await net.create_connection(protocol_factory, addr, port) -> (transport, protocol)``
* ``await net.create_server(protocol_factory, addr, port) -> server``

A stacklab ``Host`` is such an object (its TCP mirrors asyncio); :class:`AsyncioNet` is the same
seam over the real ``asyncio`` module, so the applications can be developed and tested over
loopback and then run unchanged on the simulated network.

From the streams the applications only use ``reader.read(n)``, ``writer.write``, ``drain``,
``close``, ``wait_closed``, ``write_eof`` and ``get_extra_info("peername"/"sockname")``;
line framing with hard bounds is done here (:class:`BufferedStream`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from stacklab.errors import StacklabError

__all__ = [
    "AsyncioNet",
    "BufferedStream",
    "ClientGate",
    "LineTooLong",
    "Net",
    "ServerLimits",
    "close_writer",
    "iter_pattern",
    "listening_port",
    "local_address",
    "pattern_bytes",
    "peer_address",
    "sha256_hex",
    "text_body",
]

ConnectedCallback = Callable[[Any, Any], Awaitable[None]]


class Net(Protocol):
    """The network seam (see the module docstring). A stacklab Host or an :class:`AsyncioNet`."""

    async def open_connection(self, addr: str, port: int) -> tuple[Any, Any]: ...

    async def start_server(self, client_connected_cb: ConnectedCallback, port: int,
                           host: str | None = None) -> Any: ...

    async def create_connection(self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                                addr: str, port: int) -> tuple[Any, Any]: ...

    async def create_server(self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                            addr: str | None, port: int) -> Any: ...


class AsyncioNet:
    """The network seam over the host's real asyncio sockets (tests use loopback only).

    ``bind`` is the address servers listen on when no ``host`` is given.
    """

    def __init__(self, bind: str = "127.0.0.1") -> None:
        self.bind = bind

    async def open_connection(self, addr: str, port: int) -> tuple[Any, Any]:
        return await asyncio.open_connection(addr, port)

    async def start_server(self, client_connected_cb: ConnectedCallback, port: int,
                           host: str | None = None) -> asyncio.Server:
        return await asyncio.start_server(client_connected_cb, host or self.bind, port)

    async def create_connection(self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                                addr: str, port: int) -> tuple[Any, Any]:
        loop = asyncio.get_running_loop()
        return await loop.create_connection(protocol_factory, addr, port)

    async def create_server(self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                            addr: str | None, port: int) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(protocol_factory, addr or self.bind, port)


def listening_port(server: Any) -> int:
    """The local port a server object listens on (asyncio.Server or a stacklab listener)."""
    for name in ("port", "local_port"):
        value = getattr(server, name, None)
        if isinstance(value, int):
            return value
    get_port = getattr(server, "get_port", None)
    if callable(get_port):
        return int(get_port())
    sockets = getattr(server, "sockets", None)
    if sockets:
        return int(sockets[0].getsockname()[1])
    sockname = getattr(server, "sockname", None)
    if sockname:
        return int(sockname[1])
    raise TypeError(f"cannot tell the listening port of {server!r}")


def _addr(writer: Any, key: str) -> tuple[str, int]:
    info = writer.get_extra_info(key)
    if not info:
        raise ConnectionError(f"no {key} on {writer!r}")
    return str(info[0]), int(info[1])


def peer_address(writer: Any) -> tuple[str, int]:
    """(address, port) of the other end of a stream."""
    return _addr(writer, "peername")


def local_address(writer: Any) -> tuple[str, int]:
    """(address, port) of our end of a stream."""
    return _addr(writer, "sockname")


async def close_writer(writer: Any, timeout: float = 5.0) -> None:
    """Close a stream and wait for it, swallowing what a peer that already left may cause."""
    try:
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), timeout)
    except (TimeoutError, OSError, ConnectionError, RuntimeError):
        pass


def sha256_hex(data: bytes | bytearray | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


# -- limits ------------------------------------------------------------------------------------
@dataclass
class ServerLimits:
    """Hard bounds every server enforces (issue 9 §5)."""

    max_line: int = 4096            # a command/reply/header line, bytes incl. CRLF
    max_header: int = 16 * 1024     # all headers of one HTTP request
    max_message: int = 16 << 20     # one HTTP body / mail message / uploaded file
    max_clients: int = 64           # concurrent control connections
    idle_timeout: float = 300.0     # seconds without a byte from the client


class ClientGate:
    """Counts concurrent clients; refuses beyond ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self.refused = 0
        self.accepted = 0

    def try_enter(self) -> bool:
        if self.active >= self.limit:
            self.refused += 1
            return False
        self.active += 1
        self.accepted += 1
        return True

    def leave(self) -> None:
        self.active -= 1


# -- bounded reading ---------------------------------------------------------------------------
class LineTooLong(StacklabError):
    """A line exceeded the bound; the rest of it (up to its LF) will be skipped."""


class BufferedStream:
    """Line and byte reading over a stream reader that offers ``read(n)``, with bounds.

    ``readline(limit)`` returns a line including its LF, the partial last line at EOF, or ``b""``
    at EOF. A line longer than ``limit`` raises :class:`LineTooLong` at once (the buffer never
    grows beyond ``limit`` plus one read), and the rest of that line is discarded by the next
    call, so a line protocol can answer with an error and carry on.
    """

    def __init__(self, reader: Any, timeout: float | None = None, chunk: int = 65536) -> None:
        self.reader = reader
        self.timeout = timeout
        self.chunk = chunk
        self.buf = bytearray()
        self.eof = False
        self._skipping = False

    async def _fill(self) -> bool:
        if self.eof:
            return False
        if self.timeout is None:
            data = await self.reader.read(self.chunk)
        else:
            data = await asyncio.wait_for(self.reader.read(self.chunk), self.timeout)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    async def readline(self, limit: int) -> bytes:
        start = 0
        while True:
            if self._skipping:
                nl = self.buf.find(b"\n")
                if nl < 0:
                    self.buf.clear()
                    if not await self._fill():
                        return b""
                    continue
                del self.buf[:nl + 1]
                self._skipping = False
            nl = self.buf.find(b"\n", start)
            if 0 <= nl < limit:
                line = bytes(self.buf[:nl + 1])
                del self.buf[:nl + 1]
                return line
            if nl >= limit or len(self.buf) >= limit:
                self._skipping = True
                raise LineTooLong(f"line longer than {limit} bytes")
            start = len(self.buf)
            if not await self._fill():
                line = bytes(self.buf)
                self.buf.clear()
                return line

    async def read(self, n: int = 65536) -> bytes:
        """Up to ``n`` bytes (buffered ones first); ``b""`` at EOF."""
        if not self.buf and not await self._fill():
            return b""
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def readexactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not await self._fill():
                raise asyncio.IncompleteReadError(bytes(self.buf), n)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


# -- deterministic bodies ----------------------------------------------------------------------
_BLOCK = 32  # sha256 output size
_SEED = hashlib.sha256(b"stacklab deterministic body")


def _block(i: int) -> bytes:
    h = _SEED.copy()
    h.update(i.to_bytes(8, "big"))
    return h.digest()


def pattern_bytes(offset: int, length: int) -> bytes:
    """Bytes ``[offset, offset+length)`` of the endless deterministic body (no short period)."""
    if length <= 0:
        return b""
    first, last = offset // _BLOCK, (offset + length - 1) // _BLOCK
    data = b"".join(_block(i) for i in range(first, last + 1))
    skip = offset - first * _BLOCK
    return data[skip:skip + length]


def iter_pattern(total: int, chunk: int = 65536) -> Iterator[bytes]:
    """The first ``total`` bytes of the deterministic body, in chunks."""
    offset = 0
    while offset < total:
        n = min(chunk, total - offset)
        yield pattern_bytes(offset, n)
        offset += n


_TEXT_LINE = 76


def text_body(n: int) -> bytes:
    """A deterministic text body of exactly ``n`` bytes (``n`` ≥ 2) made of CRLF-ended lines.

    Printable ASCII from the deterministic body; every fifth line starts with a dot, so SMTP's
    dot-stuffing is exercised. ``n`` < 2 gives ``b""``.
    """
    if n < 2:
        return b""
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    raw = pattern_bytes(0, n)
    chars = bytes(alphabet[b & 63] for b in raw)
    lines = []
    pos = 0
    remaining = n
    index = 0
    while remaining > 0:
        width = min(_TEXT_LINE, remaining - 2)
        if remaining - (width + 2) == 1:  # never leave a single byte for the last line
            width -= 1
        line = bytearray(chars[pos:pos + width])
        if index % 5 == 4 and line:
            line[0] = ord(".")
        lines.append(bytes(line) + b"\r\n")
        pos += width
        remaining -= width + 2
        index += 1
    return b"".join(lines)


# -- server scaffolding ------------------------------------------------------------------------
class ServerBase:
    """A listening server: the concurrency gate, connection tasks, error counters, close().

    Subclasses implement ``handle(reader, writer)`` (one client) and may override
    ``refuse(writer)`` (what a client over the limit is told before the connection closes).
    ``errors`` counts why connections ended badly; ``errors["internal"]`` counts bugs (an
    unexpected exception in a handler) — tests assert it stays 0 under bad input.
    ``on_close(writer, outcome, seconds)``, when set, is called as each connection ends
    (``outcome``: "closed", "refused" or why it ended badly; ``seconds`` it lasted, loop time):
    a CLI's connection log.
    ``tls`` (an ``ssl.SSLContext``) makes it an implicit-TLS server (HTTPS on 443, FTPS on 990,
    SMTP submission on 465): each connection's handshake (:func:`stacklab.apps.tls.start_tls`)
    runs before ``handle`` sees its streams; a failed one counts as ``errors["TlsError"]``, and
    a client over the limit is closed without ``refuse`` (its plaintext would not parse).
    """

    def __init__(self, limits: ServerLimits | None = None, tls: Any = None) -> None:
        self.limits = limits or ServerLimits()
        self.tls = tls
        self.gate = ClientGate(self.limits.max_clients)
        self.listener: Any = None
        self.net: Any = None
        self.port: int | None = None
        self.errors: dict[str, int] = {}
        self.last_sha256: str | None = None
        self._tasks: dict[asyncio.Task[Any], None] = {}  # insertion order: see close()
        self._closing = False
        self.on_close: Callable[[Any, str, float], None] | None = None

    def count(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    async def start(self, net: Any, port: int, host: str | None = None) -> ServerBase:
        self.net = net
        self.listener = await net.start_server(self._on_connect, port, host=host)
        try:
            self.port = listening_port(self.listener)
        except TypeError:
            self.port = port
        return self

    async def _on_connect(self, reader: Any, writer: Any) -> None:
        opened = asyncio.get_running_loop().time()
        if not self.gate.try_enter():
            try:
                if self.tls is None:
                    await self.refuse(writer)
            except (OSError, ConnectionError):
                pass
            await close_writer(writer)
            self._closed(writer, "refused", opened)
            return
        task = asyncio.current_task()
        if task is not None:
            self._tasks[task] = None
        outcome = "closed"
        try:
            if self.tls is not None:
                from stacklab.apps.tls import start_tls
                reader = writer = await start_tls(reader, writer, self.tls, server_side=True,
                                                  net=self.net)
            await self.handle(reader, writer)
        except TimeoutError:  # (an OSError subclass: test it first)
            self.count("idle_timeout")
            outcome = "idle_timeout"
        except (ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
            self.count(type(exc).__name__)
            outcome = type(exc).__name__
        except asyncio.CancelledError:
            outcome = "cancelled"
            if not self._closing:
                raise
            # close() cancelled us: end quietly (asyncio 3.11's start_server callback would
            # report a cancelled handler task as an unhandled exception)
        except Exception:  # a bug: count it, keep serving others
            import logging
            logging.getLogger(__name__).exception("internal error in %s", type(self).__name__)
            self.count("internal")
            outcome = "internal error"
        finally:
            self.gate.leave()
            if task is not None:
                self._tasks.pop(task, None)
            await close_writer(writer)
            self._closed(writer, outcome, opened)

    def _closed(self, writer: Any, outcome: str, opened: float) -> None:
        if self.on_close is not None:
            try:
                self.on_close(writer, outcome, asyncio.get_running_loop().time() - opened)
            except Exception:  # a log must not break the server
                pass

    async def handle(self, reader: Any, writer: Any) -> None:
        raise NotImplementedError

    async def serve_forever(self) -> None:
        """Wait until the server is closed (for a CLI: ``await server.serve_forever()``)."""
        await self.listener.serve_forever()

    async def refuse(self, writer: Any) -> None:
        """Called for a client beyond ``limits.max_clients``; the connection closes after."""

    async def close(self) -> None:
        self._closing = True
        if self.listener is not None:
            self.listener.close()
        for task in list(self._tasks):  # oldest first: the same FIN order in every run
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.listener is not None:
            try:
                await asyncio.wait_for(self.listener.wait_closed(), 5.0)
            except (TimeoutError, OSError):
                pass

    async def __aenter__(self) -> ServerBase:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
