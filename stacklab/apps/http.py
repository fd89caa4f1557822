"""HTTP/1.1 server and client on any network seam (:mod:`stacklab.apps.common`), framing by h11.

Server (:class:`HttpServer`, started by :func:`serve_http`):

* ``root`` given: serves the files under it (GET/HEAD; a directory shows ``index.html`` or a
  listing); nothing outside ``root`` is reachable (``..``, percent-encoding, symlinks).
* no ``root``: any GET/HEAD path answers a deterministic body of ``bytes`` bytes
  (:func:`~stacklab.apps.common.pattern_bytes`); ``?bytes=N`` asks for another size,
  ``?chunked=1`` sends it with chunked transfer coding instead of Content-Length.
* POST anywhere (unless a route takes it) reads the body and answers ``received N bytes sha256 H``.
* ``routes``: ``{(METHOD, "/path"): async handler(HttpRequest) -> HttpReply}`` come first.
* keep-alive (HTTP/1.1 default; HTTP/1.0 with ``Connection: keep-alive``, as ``ab -k`` asks,
  for answers with a Content-Length), ``Expect: 100-continue``, chunked request bodies;
  400 for malformed requests, 404, 405, 413 (body over ``limits.max_message``), 431 (headers
  over ``limits.max_header``), 503 to a client over ``limits.max_clients``.

Client: :class:`HttpClient` keeps one connection alive across requests and streams bodies
(``async for chunk in response.iter_body()``); :func:`http_get` is the one-shot form.

HTTPS (RFC 9110 §4.2.2, HTTP over TLS on 443): ``tls=`` an ``ssl.SSLContext`` on the server
(:class:`~stacklab.apps.common.ServerBase`'s implicit TLS) and on the client
(:func:`stacklab.apps.tls.start_tls` on each connection it opens, the certificate checked
against ``server_hostname``, by default the host it connects to); ``https://`` URLs.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import http
import mimetypes
import os
import posixpath
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import h11

from stacklab.apps.common import (
    ServerBase,
    ServerLimits,
    close_writer,
    iter_pattern,
    sha256_hex,
)
from stacklab.errors import StacklabError

__all__ = [
    "HttpClient",
    "HttpReply",
    "HttpRequest",
    "HttpResponse",
    "HttpResult",
    "HttpServer",
    "http_get",
    "serve_http",
]

SERVER_NAME = "stacklab"
CHUNK = 64 * 1024


@dataclass
class HttpRequest:
    method: str
    target: str
    path: str            # percent-decoded path of the target
    query: dict[str, list[str]]
    headers: list[tuple[str, str]]
    body: bytes
    http_version: str = "1.1"

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return default


@dataclass
class HttpReply:
    """What a route answers. ``body`` is bytes or an iterable of chunks; ``length`` None with an
    iterable body means chunked transfer coding."""

    status: int
    body: bytes | Iterable[bytes] = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    length: int | None = None
    content_type: str = "text/plain; charset=utf-8"


Route = Callable[[HttpRequest], Awaitable[HttpReply]]


class _KeepAlive10:
    """The framing of an answer that keeps an HTTP/1.0 connection open (RFC 9112 §9.3 and
    Appendix C.2.2: ``Connection: keep-alive`` on both sides, the body delimited by its
    Content-Length): h11 closes every HTTP/1.0 connection, so this writes the response events
    h11 would, with the keep-alive token instead of its ``close``."""

    def send(self, event: h11.Response | h11.Data | h11.EndOfMessage) -> bytes:
        if isinstance(event, h11.Response):
            lines = [b"HTTP/1.1 %d %s" % (event.status_code, event.reason),
                     *(name + b": " + value for name, value in event.headers.raw_items()),
                     b"Connection: keep-alive"]
            return b"\r\n".join(lines) + b"\r\n\r\n"
        return bytes(event.data) if isinstance(event, h11.Data) else b""


def _keeps_http10_alive(request: HttpRequest, reply: HttpReply) -> bool:
    connection = (request.header("connection") or "").lower()
    return (request.http_version == "1.0"
            and "keep-alive" in (token.strip() for token in connection.split(","))
            and (isinstance(reply.body, bytes | bytearray) or reply.length is not None))


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


def _text(status: int, message: str) -> HttpReply:
    return HttpReply(status, (message + "\n").encode())


class HttpServer(ServerBase):
    def __init__(self, root: str | os.PathLike[str] | None = None, bytes: int = 1024,
                 routes: dict[tuple[str, str], Route] | None = None,
                 limits: ServerLimits | None = None, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(limits, tls)
        self.root = Path(root).resolve() if root is not None else None
        self.body_size = bytes
        self.routes = dict(routes or {})
        self.requests = 0
        self.statuses: dict[int, int] = {}

    # -- connection ------------------------------------------------------------------------
    async def refuse(self, writer: Any) -> None:
        body = b"too many clients\n"
        head = (b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
                b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body))
        writer.write(head + body)
        await writer.drain()

    async def _next_event(self, conn: h11.Connection, reader: Any) -> Any:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await asyncio.wait_for(reader.read(CHUNK), self.limits.idle_timeout)
            conn.receive_data(data)

    async def handle(self, reader: Any, writer: Any) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_header)
        while True:
            try:
                event = await self._next_event(conn, reader)
            except TimeoutError:
                return  # idle keep-alive connection: just close
            except h11.RemoteProtocolError as exc:
                self.count("bad_request")
                await self._send_error(conn, writer, exc.error_status_hint, str(exc))
                return
            if not isinstance(event, h11.Request):
                return  # ConnectionClosed (or PAUSED after a close)
            self.requests += 1
            # h11 bounds headers only while they are incomplete: check what arrived in one go
            sizes = [len(k) + len(v) + 4 for k, v in event.headers]
            if len(event.target) > self.limits.max_line:
                self.count("too_large")
                await self._send_error(conn, writer, 414, "request target too long")
                return
            if sum(sizes) > self.limits.max_header or max(sizes, default=0) > self.limits.max_line:
                self.count("too_large")
                await self._send_error(conn, writer, 431, "request header fields too large")
                return
            if event.http_version not in (b"1.0", b"1.1"):
                self.count("bad_version")
                await self._send_error(conn, writer, 505, "HTTP version not supported")
                return
            try:
                request = await self._read_request(conn, reader, writer, event)
            except h11.RemoteProtocolError as exc:
                self.count("bad_request")
                await self._send_error(conn, writer, exc.error_status_hint, str(exc))
                return
            except _TooLarge:
                self.count("too_large")
                await self._send_error(conn, writer, 413, "request body too large")
                return
            if request is None:
                return
            reply = await self.respond(request)
            if _keeps_http10_alive(request, reply):
                await self._send_reply(_KeepAlive10(), writer, request, reply)
                # h11 is done with this connection: a new one reads on from what is left
                data, closed = conn.trailing_data
                conn = h11.Connection(h11.SERVER,
                                      max_incomplete_event_size=self.limits.max_header)
                if data:
                    conn.receive_data(data)
                if closed:
                    conn.receive_data(b"")  # (h11's way of saying EOF)
                continue
            await self._send_reply(conn, writer, request, reply)
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    async def _read_request(self, conn: h11.Connection, reader: Any, writer: Any,
                            event: h11.Request) -> HttpRequest | None:
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in event.headers]
        length = next((v for k, v in headers if k == "content-length"), None)
        if length is not None and int(length) > self.limits.max_message:
            raise _TooLarge  # h11 validated it is an integer
        if conn.they_are_waiting_for_100_continue:
            writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
            await writer.drain()
        body = bytearray()
        while True:
            ev = await self._next_event(conn, reader)
            if isinstance(ev, h11.Data):
                body += ev.data
                if len(body) > self.limits.max_message:
                    raise _TooLarge
            elif isinstance(ev, h11.EndOfMessage):
                break
            else:
                return None  # connection closed mid-body
        target = event.target.decode("latin-1")
        parts = urlsplit(target)
        return HttpRequest(
            method=event.method.decode("latin-1"), target=target,
            path=unquote(parts.path or "/", errors="replace"),
            query=parse_qs(parts.query), headers=headers, body=bytes(body),
            http_version=event.http_version.decode("latin-1"))

    async def _send_error(self, conn: h11.Connection, writer: Any, status: int,
                          message: str) -> None:
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = (message + "\n").encode("utf-8", "replace")
        self.statuses[status] = self.statuses.get(status, 0) + 1
        try:
            out = conn.send(h11.Response(status_code=status, reason=_reason(status), headers=[
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))), ("Connection", "close"),
                ("Server", SERVER_NAME)]))
            out += conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            return
        writer.write(out)
        await writer.drain()

    async def _send_reply(self, conn: h11.Connection | _KeepAlive10, writer: Any,
                          request: HttpRequest, reply: HttpReply) -> None:
        self.statuses[reply.status] = self.statuses.get(reply.status, 0) + 1
        headers = [("Server", SERVER_NAME), ("Content-Type", reply.content_type), *reply.headers]
        body = reply.body
        if isinstance(body, bytes | bytearray):
            length: int | None = len(body)
            chunks: Iterable[bytes] = (bytes(body),)
        else:
            length = reply.length
            chunks = body
        if length is not None:
            headers.append(("Content-Length", str(length)))
        writer.write(conn.send(h11.Response(status_code=reply.status, headers=headers,
                                            reason=_reason(reply.status))))
        digest = hashlib.sha256()
        if request.method != "HEAD" and reply.status not in (204, 304):
            for chunk in chunks:
                if not chunk:
                    continue
                digest.update(chunk)
                writer.write(conn.send(h11.Data(data=chunk)))
                await writer.drain()
            if request.method == "GET" and reply.status == 200:
                self.last_sha256 = digest.hexdigest()
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()

    # -- content ---------------------------------------------------------------------------
    async def respond(self, request: HttpRequest) -> HttpReply:
        route = self.routes.get((request.method, request.path))
        if route is not None:
            return await route(request)
        if request.method in ("GET", "HEAD"):
            return self._get(request)
        if request.method == "POST":
            self.last_sha256 = sha256_hex(request.body)
            return _text(200, f"received {len(request.body)} bytes sha256 {self.last_sha256}")
        reply = _text(405, f"method {request.method} not allowed")
        reply.headers.append(("Allow", "GET, HEAD, POST"))
        return reply

    def _get(self, request: HttpRequest) -> HttpReply:
        if self.root is None:
            size = self.body_size
            if "bytes" in request.query:
                try:
                    size = int(request.query["bytes"][0])
                except ValueError:
                    return _text(400, "bytes= wants an integer")
                if not 0 <= size <= self.limits.max_message:
                    return _text(400, f"bytes= must be 0..{self.limits.max_message}")
            chunked = request.query.get("chunked", ["0"])[0] not in ("0", "")
            return HttpReply(200, iter_pattern(size), length=None if chunked else size,
                             content_type="application/octet-stream")
        path = self._resolve(request.path)
        if path is None or not path.exists():
            return _text(404, f"{request.path} not found")
        if path.is_dir():
            if not request.path.endswith("/"):
                return HttpReply(301, b"", headers=[("Location", request.path + "/")])
            index = path / "index.html"
            if index.is_file():
                path = index
            else:
                return self._listing(request.path, path)
        try:
            size = path.stat().st_size
            handle = path.open("rb")
        except OSError:
            return _text(404, f"{request.path} not readable")
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return HttpReply(200, _file_chunks(handle, size), length=size, content_type=ctype)

    def _resolve(self, url_path: str) -> Path | None:
        """The file under root that ``url_path`` names, or None if it would leave root."""
        assert self.root is not None
        if "\x00" in url_path:
            return None
        rel = posixpath.normpath("/" + url_path).lstrip("/")
        candidate = (self.root / rel).resolve() if rel else self.root
        if candidate != self.root and not candidate.is_relative_to(self.root):
            return None
        return candidate

    def _listing(self, url_path: str, path: Path) -> HttpReply:
        items = []
        for entry in sorted(path.iterdir(), key=lambda p: p.name):
            name = entry.name + ("/" if entry.is_dir() else "")
            items.append(f'<li><a href="{html.escape(name, quote=True)}">'
                         f"{html.escape(name)}</a></li>")
        title = html.escape(url_path)
        page = (f"<!DOCTYPE html>\n<html><head><title>Index of {title}</title></head><body>"
                f"<h1>Index of {title}</h1><ul>\n" + "\n".join(items) + "\n</ul></body></html>\n")
        return HttpReply(200, page.encode(), content_type="text/html; charset=utf-8")


class _TooLarge(StacklabError):
    pass


def _file_chunks(handle: Any, size: int) -> Iterable[bytes]:
    """Exactly ``size`` bytes of an open file (a file that shrank is padded with zeros, so the
    announced Content-Length stays true)."""
    with handle:
        left = size
        while left > 0:
            chunk = handle.read(min(CHUNK, left)) or bytes(min(CHUNK, left))
            left -= len(chunk)
            yield chunk


async def serve_http(net: Any, port: int = 80, root: str | os.PathLike[str] | None = None,
                     bytes: int = 1024, host: str | None = None,
                     routes: dict[tuple[str, str], Route] | None = None,
                     limits: ServerLimits | None = None,
                     tls: ssl.SSLContext | None = None) -> HttpServer:
    """Start an HTTP server on ``net`` and return it (``await server.close()`` stops it);
    ``tls`` makes it HTTPS."""
    server = HttpServer(root=root, bytes=bytes, routes=routes, limits=limits, tls=tls)
    await server.start(net, port, host)
    return server


# -- client ------------------------------------------------------------------------------------
class HttpError(StacklabError):
    pass


class HttpResponse:
    """Status and headers at once; the body streams with :meth:`iter_body` or :meth:`read`."""

    def __init__(self, client: HttpClient, event: h11.Response) -> None:
        self._client = client
        self.status = event.status_code
        self.reason = event.reason.decode("latin-1")
        self.http_version = event.http_version.decode("latin-1")
        self.headers = [(k.decode("latin-1").lower(), v.decode("latin-1"))
                        for k, v in event.headers]
        self.complete = False
        self.received = 0

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), default)

    async def iter_body(self) -> AsyncIterator[bytes]:
        while not self.complete:
            chunk = await self._client._next_body_chunk(self)
            if chunk:
                self.received += len(chunk)
                yield chunk

    async def read(self, limit: int = 1 << 30) -> bytes:
        out = bytearray()
        async for chunk in self.iter_body():
            out += chunk
            if len(out) > limit:
                raise HttpError(f"body longer than {limit} bytes")
        return bytes(out)


class HttpClient:
    """One keep-alive connection to ``host:port``, reopened when the server closes it; over TLS
    with ``tls`` (the server's certificate checked against ``server_hostname`` or ``host``)."""

    def __init__(self, net: Any, host: str, port: int = 80, max_header: int = 64 * 1024,
                 timeout: float = 60.0, tls: ssl.SSLContext | None = None,
                 server_hostname: str | None = None) -> None:
        self.net = net
        self.tls = tls
        self.server_hostname = server_hostname or host
        self.host = host
        self.port = port
        self.max_header = max_header
        self.timeout = timeout
        self.connections_opened = 0
        self._reader: Any = None
        self._writer: Any = None
        self._conn: h11.Connection | None = None
        self._current: HttpResponse | None = None

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.wait_for(
            self.net.open_connection(self.host, self.port), self.timeout)
        if self.tls is not None:
            from stacklab.apps.tls import start_tls
            try:
                self._reader = self._writer = await start_tls(
                    self._reader, self._writer, self.tls, server_side=False,
                    server_hostname=self.server_hostname, timeout=self.timeout, net=self.net)
            except ConnectionError:
                await close_writer(self._writer)
                self._reader = self._writer = None
                raise
        self._conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=self.max_header)
        self.connections_opened += 1

    async def _drop(self) -> None:
        if self._writer is not None:
            await close_writer(self._writer)
        self._reader = self._writer = self._conn = None

    async def _next_event(self) -> Any:
        assert self._conn is not None
        while True:
            event = self._conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await asyncio.wait_for(self._reader.read(CHUNK), self.timeout)
            self._conn.receive_data(data)

    async def request(self, method: str, target: str, body: bytes | None = None,
                      headers: list[tuple[str, str]] | None = None) -> HttpResponse:
        if self._current is not None and not self._current.complete:
            await self._current.read()  # finish the previous response first
        self._current = None
        if self._conn is not None and self._conn.our_state is h11.DONE:
            await self._drop()  # the previous exchange did not allow reuse
        reused = self._conn is not None
        try:
            return await self._exchange(method, target, body, headers)
        except (ConnectionError, h11.RemoteProtocolError, asyncio.IncompleteReadError):
            # A kept-alive connection may have been closed by the server meanwhile: retry once.
            await self._drop()
            if not reused or method not in ("GET", "HEAD"):
                raise
            return await self._exchange(method, target, body, headers)

    async def _exchange(self, method: str, target: str, body: bytes | None,
                        headers: list[tuple[str, str]] | None) -> HttpResponse:
        if self._conn is None:
            await self._connect()
        assert self._conn is not None
        default = 80 if self.tls is None else 443
        host_header = self.host if self.port == default else f"{self.host}:{self.port}"
        if ":" in self.host and not self.host.startswith("["):
            host_header = f"[{self.host}]" + ("" if self.port == default else f":{self.port}")
        hdrs = [("Host", host_header), ("User-Agent", "stacklab"), *(headers or [])]
        if body is not None:
            hdrs.append(("Content-Length", str(len(body))))
        out = self._conn.send(h11.Request(method=method, target=target, headers=hdrs))
        if body:
            out += self._conn.send(h11.Data(data=body))
        out += self._conn.send(h11.EndOfMessage())
        self._writer.write(out)
        await self._writer.drain()
        while True:
            event = await self._next_event()
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                break
            raise ConnectionError(f"connection closed before a response ({event!r})")
        self._current = HttpResponse(self, event)
        return self._current

    async def _next_body_chunk(self, response: HttpResponse) -> bytes:
        event = await self._next_event()
        if isinstance(event, h11.Data):
            return bytes(event.data)
        if isinstance(event, h11.EndOfMessage):
            response.complete = True
            assert self._conn is not None
            if self._conn.our_state is h11.DONE and self._conn.their_state is h11.DONE:
                self._conn.start_next_cycle()
            else:
                await self._drop()
            return b""
        response.complete = True
        await self._drop()
        raise ConnectionError(f"body ended early ({event!r})")

    async def get(self, target: str) -> HttpResponse:
        return await self.request("GET", target)

    async def close(self) -> None:
        await self._drop()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


@dataclass
class HttpResult:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    sha256: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def split_url(host: str | None, url_or_path: str, port: int) -> tuple[str, int, str]:
    """(host, port, target) for ``http://h:p/x`` (``https://``: port 443) or a bare ``/x``
    sent to ``host:port``."""
    if "://" in url_or_path:
        parts = urlsplit(url_or_path)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"only http:// and https:// URLs, not {parts.scheme}://")
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        default = 443 if parts.scheme == "https" else 80
        return parts.hostname or host or "", parts.port or default, target
    if host is None:
        raise ValueError("a bare path needs a host")
    return host, port, url_or_path if url_or_path.startswith("/") else "/" + url_or_path


async def http_get(net: Any, host: str | None, url_or_path: str, port: int = 80,
                   method: str = "GET", timeout: float = 60.0, tls: ssl.SSLContext | None = None,
                   server_hostname: str | None = None) -> HttpResult:
    """One request on a fresh connection; the whole body in memory. An ``https://`` URL
    without ``tls`` trusts the system's roots (as curl)."""
    host, port, target = split_url(host, url_or_path, port)
    if tls is None and url_or_path.startswith("https://"):
        tls = ssl.create_default_context()
    async with HttpClient(net, host, port, timeout=timeout, tls=tls,
                          server_hostname=server_hostname) as client:
        response = await client.request(method, target)
        body = await response.read()
        return HttpResult(response.status, response.headers, body, sha256_hex(body))
