"""TLS for the applications: the stdlib ``ssl`` module's memory BIOs over any stream pair.

One adapter serves every secure form (HTTPS, FTPS control and data connections, SMTP
STARTTLS, implicit TLS on 443/465/990): :func:`start_tls` takes the ``(reader, writer)`` a
network seam (:mod:`stacklab.apps.common`) handed out and returns a :class:`TlsStream` that
offers the same stream face the applications use (``read``, ``write``, ``drain``, ``close``,
``wait_closed``, ``write_eof``, ``get_extra_info``), so an application runs unchanged over TLS.

Why memory BIOs (``ssl.SSLObject``) and not asyncio's ``start_tls``: the stack's transports are
asyncio transports but not the loop's own (``loop.start_tls`` accepts only those and feeds a
buffered protocol), while the application seam is the stream pair; the BIO pump needs nothing
from the transport, runs the same over stacklab TCP and the kernel's, and makes an upgrade in
mid-session (STARTTLS, ``AUTH TLS``) one call on the streams already open.

Upgrades mid-session must forget any plaintext the peer sent after the upgrade command
(RFC 3207 §4.2, RFC 4217 §4: a man in the middle could otherwise inject commands that would be
read as if they came over TLS): the callers drop their line buffer before :func:`start_tls`.

The handshake is visible in a run's trace when the network is a stacklab host (an
``app``/``tls`` note on the lifeline: version and cipher); on the wire the records are labelled by
:mod:`stacklab.trace.label`.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from stacklab.errors import StacklabError

__all__ = ["TlsError", "TlsStream", "start_tls"]

CHUNK = 64 * 1024
HANDSHAKE_TIMEOUT = 60.0  # seconds, as asyncio's ssl_handshake_timeout


class TlsError(StacklabError, ConnectionError):
    """A TLS handshake failed: the peer's certificate did not verify (name, issuer, dates),
    no common version or cipher, or the connection ended during the handshake. The message
    says which, in OpenSSL's words."""


def _note(net: Any, text: str) -> None:
    """A note on the host's lifeline of the run's trace, when ``net`` is a traced stacklab
    host (its ``trace(now, layer, event, **details)``; the kernel's seam has none)."""
    if getattr(net, "tracer", None) is not None:
        net.trace(net.now(), "app", "tls", note=text)


class TlsStream:
    """One TLS connection over a stream pair; reader and writer face in one object.

    ``get_extra_info`` answers the underlying stream's keys (``peername``, ``sockname``...)
    plus ``ssl_object``, ``peercert``, ``cipher``, ``version`` and ``session_reused``.
    ``transport`` is the underlying TCP transport (``abort()`` ends the connection at once).
    """

    def __init__(self, reader: Any, writer: Any, sslobj: ssl.SSLObject,
                 incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, net: Any = None) -> None:
        self._net = net
        self._reader = reader
        self._writer = writer
        self._obj = sslobj
        self._in = incoming
        self._out = outgoing
        self._eof = False       # no more ciphertext will arrive
        self._closed = False    # close_notify received (or the stream ended)
        self._shut = False      # our close_notify sent
        self.transport = getattr(writer, "transport", None)

    # -- the ciphertext pump -------------------------------------------------------------------
    def _flush(self) -> None:
        data = self._out.read()
        if data and not self._writer.is_closing():
            self._writer.write(data)

    async def _fill(self) -> bool:
        """More ciphertext from the peer into the incoming BIO; False at the end."""
        if self._eof:
            return False
        data = await self._reader.read(CHUNK)
        if not data:
            self._eof = True
            self._in.write_eof()
            return False
        self._in.write(data)
        return True

    async def handshake(self, timeout: float = HANDSHAKE_TIMEOUT) -> None:
        try:
            await asyncio.wait_for(self._handshake(), timeout)
        except TimeoutError:
            raise TlsError(f"TLS handshake timed out after {timeout:g} s") from None
        except ssl.SSLCertVerificationError as exc:
            self._flush()  # the alert that tells the peer why
            raise TlsError(f"TLS certificate verify failed: {exc.verify_message}") from exc
        except ssl.SSLError as exc:
            self._flush()
            raise TlsError(f"TLS handshake failed: {exc.reason or exc}") from exc
        _note(self._net, f"TLS {self.version()} {self.cipher()}")

    async def _handshake(self) -> None:
        while True:
            try:
                self._obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                await self._writer.drain()
                if not await self._fill():
                    raise TlsError("the peer closed the connection during the TLS handshake"
                                   ) from None
        self._flush()
        await self._writer.drain()

    # -- the stream face -----------------------------------------------------------------------
    async def read(self, n: int = CHUNK) -> bytes:
        """Up to ``n`` bytes of plaintext; ``b""`` once the peer closed (its close_notify, or
        a bare FIN: asyncio's ``ssl`` streams also take that as the end)."""
        while not self._closed:
            try:
                data = self._obj.read(n)
            except ssl.SSLWantReadError:
                self._flush()  # (answers the peer may want: a key update)
                if await self._fill():
                    continue
                self._closed = True
                return b""
            except ssl.SSLZeroReturnError:
                self._closed = True
                return b""
            except ssl.SSLError as exc:
                raise TlsError(f"TLS: {exc.reason or exc}") from exc
            self._flush()
            if data:
                return data
            self._closed = True
        return b""

    async def readexactly(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = await self.read(n - len(out))
            if not chunk:
                raise asyncio.IncompleteReadError(bytes(out), n)
            out += chunk
        return bytes(out)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if self._shut:
            raise RuntimeError("write after write_eof() or close()")
        self._obj.write(data)
        self._flush()

    async def drain(self) -> None:
        await self._writer.drain()

    def _shutdown(self) -> None:
        """Send our close_notify (RFC 8446 §6.1) once."""
        if self._shut:
            return
        self._shut = True
        try:
            self._obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass  # ours is sent; the peer's may never come (we do not wait for it)
        self._flush()

    def write_eof(self) -> None:
        """close_notify, then a FIN; reading goes on (TLS 1.3 half-close, RFC 8446 §6.1)."""
        self._shutdown()
        self._writer.write_eof()

    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        if not self._writer.is_closing():
            self._shutdown()
        self._writer.close()

    def is_closing(self) -> bool:
        return bool(self._writer.is_closing())

    async def wait_closed(self) -> None:
        await self._writer.wait_closed()

    def at_eof(self) -> bool:
        return self._closed

    def version(self) -> str | None:
        return self._obj.version()

    def cipher(self) -> str | None:
        c = self._obj.cipher()
        return c[0] if c else None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self._obj
        if name == "peercert":
            return self._obj.getpeercert()
        if name == "cipher":
            return self._obj.cipher()
        if name == "version":
            return self._obj.version()
        if name == "session_reused":
            return self._obj.session_reused
        return self._writer.get_extra_info(name, default)


async def start_tls(reader: Any, writer: Any, context: ssl.SSLContext, *, server_side: bool,
                    server_hostname: str | None = None, session: ssl.SSLSession | None = None,
                    timeout: float = HANDSHAKE_TIMEOUT, net: Any = None) -> TlsStream:
    """Run the TLS handshake over ``reader``/``writer`` and return the secured stream (both
    faces). A client checks the server's certificate against ``server_hostname`` when the
    context says so (``check_hostname``, the default of client contexts); ``session`` resumes
    an earlier connection's session (FTPS data connections, RFC 4217 §10).
    ``net``, the seam the connection came from, gets the handshake's note in its trace.
    Raises :class:`TlsError` (a ConnectionError) when the handshake fails."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    try:
        sslobj = context.wrap_bio(incoming, outgoing, server_side=server_side,
                                  server_hostname=None if server_side else server_hostname,
                                  session=session)
    except ValueError as exc:  # e.g. check_hostname without a server_hostname
        raise TlsError(f"TLS: {exc}") from exc
    stream = TlsStream(reader, writer, sslobj, incoming, outgoing, net)
    await stream.handshake(timeout)
    return stream
