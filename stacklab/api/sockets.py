"""A blocking, ``socket``-like facade over a stack running in a background thread.

Ordinary blocking code — stdlib clients, paramiko, a quick script — can use stacklab's TCP and UDP
from any thread, while the sans-IO host runs its asyncio loop in the background
(:class:`~stacklab.api.realtime.RealtimeStack`)::

    stack = RealtimeStack(host, [tap]).start()
    net = StackSockets(stack)
    with net.create_connection(("10.0.0.1", 80), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
        print(s.recv(4096))

Every call is handed to the loop (``asyncio.run_coroutine_threadsafe``) over the host's
asyncio-style API (``open_connection``/``start_server``, ``create_datagram_endpoint``) and waits
for the result.
Timeouts follow ``socket``: ``settimeout(None)`` blocks, ``settimeout(0)`` raises
``BlockingIOError`` when nothing is ready, ``settimeout(t)`` raises ``TimeoutError`` ("timed out").
These sockets have no file descriptor: ``select`` cannot watch them.

``setsockopt`` acts on the multicast options of UDP sockets — ``IP_ADD_MEMBERSHIP`` /
``IP_DROP_MEMBERSHIP`` (``struct ip_mreq`` or ``ip_mreqn``), ``IP_MULTICAST_TTL``,
``IP_MULTICAST_IF``, ``IPV6_JOIN_GROUP`` / ``IPV6_LEAVE_GROUP`` (``struct ipv6_mreq``),
``IPV6_MULTICAST_HOPS``, ``IPV6_MULTICAST_IF`` — and accepts the rest without effect. An
interface index is Linux's numbering of the host's interfaces, from 1 in their order (0: the
route's).
"""

from __future__ import annotations

import asyncio
import io
import socket as _socket
from collections import deque
from collections.abc import Coroutine
from typing import Any, TypeVar

from stacklab.api.realtime import RealtimeStack

T = TypeVar("T")

AF_INET = _socket.AF_INET
AF_INET6 = _socket.AF_INET6
SOCK_STREAM = _socket.SOCK_STREAM
SOCK_DGRAM = _socket.SOCK_DGRAM
SHUT_RD, SHUT_WR, SHUT_RDWR = _socket.SHUT_RD, _socket.SHUT_WR, _socket.SHUT_RDWR

MAX_QUEUED_DATAGRAMS = 1024
_IPPROTO_IP, _IPPROTO_IPV6 = _socket.IPPROTO_IP, _socket.IPPROTO_IPV6
_IP_ADD, _IP_DROP = _socket.IP_ADD_MEMBERSHIP, _socket.IP_DROP_MEMBERSHIP
_IP_TTL, _IP_IF = _socket.IP_MULTICAST_TTL, _socket.IP_MULTICAST_IF
_V6_JOIN, _V6_LEAVE = _socket.IPV6_JOIN_GROUP, _socket.IPV6_LEAVE_GROUP
_V6_HOPS, _V6_IF = _socket.IPV6_MULTICAST_HOPS, _socket.IPV6_MULTICAST_IF


def _int_opt(value: Any) -> int:
    if isinstance(value, int):
        return value
    b = bytes(value)
    return int.from_bytes(b, "little" if len(b) > 1 else "big")  # an int, native (x86) order


def _multicast_op(host: Any, level: int, name: int, value: Any) -> tuple[str, Any] | None:
    """A multicast ``setsockopt`` as ``(DatagramTransport method, argument)``, or None (an
    option without effect here)."""
    def iface_by_index(n: int) -> int | None:
        if n == 0:
            return None
        if not 1 <= n <= len(host.interfaces):
            raise OSError(19, "No such device")
        return n - 1

    def iface_by_addr(a: bytes) -> int | None:
        if a == bytes(4):
            return None
        for i in host.interfaces:
            if i.has_v4(a):
                return int(i.index)
        raise OSError(99, "Cannot assign requested address")

    if level == _IPPROTO_IP and name in (_IP_ADD, _IP_DROP):
        b = bytes(value)
        if len(b) not in (8, 12):
            raise OSError(22, "Invalid argument")
        iface = iface_by_index(int.from_bytes(b[8:12], "little")) if len(b) == 12 and \
            b[8:12] != bytes(4) else iface_by_addr(b[4:8])
        return ("join_group" if name == _IP_ADD else "leave_group",
                (_socket.inet_ntop(AF_INET, b[:4]), iface))
    if level == _IPPROTO_IPV6 and name in (_V6_JOIN, _V6_LEAVE):
        b = bytes(value)
        if len(b) != 20:
            raise OSError(22, "Invalid argument")
        return ("join_group" if name == _V6_JOIN else "leave_group",
                (_socket.inet_ntop(AF_INET6, b[:16]),
                 iface_by_index(int.from_bytes(b[16:], "little"))))
    if (level, name) in ((_IPPROTO_IP, _IP_TTL), (_IPPROTO_IPV6, _V6_HOPS)):
        ttl = _int_opt(value)
        if not 0 <= ttl <= 255:
            raise OSError(22, "Invalid argument")
        return "ttl", ttl
    if level == _IPPROTO_IP and name == _IP_IF:
        return "iface", iface_by_addr(bytes(value)[:4] if len(bytes(value)) < 12
                                      else bytes(value)[4:8])
    if level == _IPPROTO_IPV6 and name == _V6_IF:
        return "iface", iface_by_index(_int_opt(value))
    return None
_GRACE = 5.0  # extra seconds the calling thread waits beyond a loop-side timeout


class StackSockets:
    """Factory of blocking sockets on one running stack (``socket`` module look-alike)."""

    def __init__(self, stack: RealtimeStack) -> None:
        self.stack = stack
        self.default_timeout: float | None = None

    @property
    def host(self) -> Any:
        return self.stack.node

    def socket(self, family: int = AF_INET, type: int = SOCK_STREAM, proto: int = 0) -> StackSocket:
        if family not in (AF_INET, AF_INET6):
            raise OSError(97, "Address family not supported by protocol")
        if type not in (SOCK_STREAM, SOCK_DGRAM):
            raise OSError(94, "Socket type not supported")
        s = StackSocket(self, family, type)
        s.settimeout(self.default_timeout)
        return s

    def create_connection(self, address: tuple[str, int], timeout: float | None = None,
                          source_address: tuple[str, int] | None = None) -> StackSocket:
        s = self.socket(_family_of(address[0]), SOCK_STREAM)
        s.settimeout(timeout)
        try:
            if source_address is not None:
                s.bind(source_address)
            s.connect(address)
        except BaseException:
            s.close()
            raise
        return s

    def create_server(self, address: tuple[str, int], *, family: int | None = None,
                      backlog: int | None = None) -> StackSocket:
        s = self.socket(family or _family_of(address[0] or "0.0.0.0"), SOCK_STREAM)
        s.bind(address)
        s.listen(backlog or 128)
        return s


def _family_of(addr: str) -> int:
    return AF_INET6 if ":" in addr else AF_INET


class _DatagramQueue(asyncio.DatagramProtocol):
    """Receives datagrams (and ICMP errors) for a UDP StackSocket, on the loop."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.items: deque[tuple[bytes, Any]] = deque()
        self.error: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.dropped = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(self.items) >= MAX_QUEUED_DATAGRAMS:
            self.dropped += 1
            return
        self.items.append((bytes(data), addr))
        self._wake()

    def error_received(self, exc: Exception) -> None:
        self.error = exc
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def get(self) -> tuple[bytes, Any]:
        while True:
            if self.error is not None:
                exc, self.error = self.error, None
                raise exc
            if self.items:
                return self.items.popleft()
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None


class StackSocket:
    """One TCP or UDP socket of the stack, with the blocking ``socket.socket`` methods."""

    def __init__(self, factory: StackSockets, family: int, type: int) -> None:
        self._factory = factory
        self._stack = factory.stack
        self.family = family
        self.type = type
        self.proto = 0
        self._timeout: float | None = None
        self._closed = False  # really closed (the connection/endpoint is gone)
        self._user_closed = False  # close() called; waits for makefile() objects to close
        self._io_refs = 0
        self._bound: tuple[str, int] | None = None
        self._peer: Any = None
        # TCP connection
        self._reader: Any = None
        self._writer: Any = None
        self._eof = False
        # TCP listener
        self._server: Any = None
        self._accept_q: asyncio.Queue[tuple[Any, Any]] | None = None
        # UDP
        self._dgram: _DatagramQueue | None = None
        self._mcast_ops: list[tuple[str, Any]] = []  # set before the endpoint exists

    # -- plumbing ----------------------------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = -1.0) -> T:
        """Run ``coro`` on the loop under this socket's timeout (or ``timeout``)."""
        t = self._timeout if timeout == -1.0 else timeout
        if t == 0.0:
            return self._stack.submit(_nonblocking(coro), timeout=_GRACE)
        return self._stack.submit(_with_timeout(coro, t),
                                  timeout=None if t is None else t + _GRACE)

    def _check_open(self) -> None:
        if self._closed:
            raise OSError(9, "Bad file descriptor")

    @property
    def _host(self) -> Any:
        return self._stack.node

    # -- options ---------------------------------------------------------------------------------
    def settimeout(self, value: float | None) -> None:
        if value is not None:
            value = float(value)
            if value < 0:
                raise ValueError("Timeout value out of range")
        self._timeout = value

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        return self._timeout != 0.0

    def setsockopt(self, level: int, optname: int, value: Any = None, *args: Any) -> None:
        """The multicast options of a UDP socket act (see the module docstring); the rest
        (SO_REUSEADDR, TCP_NODELAY...) are accepted and ignored."""
        self._check_open()
        if self.type != SOCK_DGRAM:
            return
        op = _multicast_op(self._host, level, optname, value)
        if op is None:
            return
        if self._dgram is None:
            self._mcast_ops.append(op)
        else:
            self._apply_multicast(op)

    def _apply_multicast(self, op: tuple[str, Any]) -> None:
        proto = self._dgram
        assert proto is not None
        what, arg = op
        transport = proto.transport

        def apply() -> None:
            if what == "ttl":
                transport.set_multicast(ttl=arg)
            elif what == "iface":
                transport.set_multicast(iface=arg)
            else:
                getattr(transport, what)(*arg)
        self._stack.call(apply, timeout=_GRACE)

    def fileno(self) -> int:
        return -1

    # -- addresses -----------------------------------------------------------------------------
    def getsockname(self) -> Any:
        if self._writer is not None:
            return self._writer.get_extra_info("sockname")
        if self._dgram is not None and self._dgram.transport is not None:
            name = self._dgram.transport.get_extra_info("sockname")
            if name is not None:
                return name
        if self._server is not None:
            name = _server_sockname(self._server)
            if name is not None:
                return name
        return self._bound or (("::", 0) if self.family == AF_INET6 else ("0.0.0.0", 0))

    def getpeername(self) -> Any:
        if self._writer is not None:
            return self._writer.get_extra_info("peername")
        if self._peer is not None:
            return self._peer
        raise OSError(107, "Transport endpoint is not connected")

    def bind(self, address: tuple[str, int]) -> None:
        self._check_open()
        if self._bound is not None:
            raise OSError(22, "Invalid argument")
        self._bound = (address[0], int(address[1]))
        if self.type == SOCK_DGRAM:
            self._open_datagram(local=self._bound)

    # -- TCP client ------------------------------------------------------------------------------
    def connect(self, address: tuple[str, int]) -> None:
        self._check_open()
        addr = (address[0], int(address[1]))
        if self.type == SOCK_DGRAM:
            # Re-open the endpoint connected: like Linux, only a connected UDP socket hears
            # about ICMP errors (port unreachable -> ConnectionRefusedError on the next call).
            local = self._bound or ("", 0)
            if self._dgram is not None:
                local = self.getsockname()
                self._close_datagram()
            self._open_datagram(local=local, remote=addr)
            self._peer = addr
            return
        if self._writer is not None:
            raise OSError(106, "Transport endpoint is already connected")
        host = self._host
        kwargs: dict[str, Any] = {}
        if self._bound is not None:
            kwargs["local_addr"] = self._bound
        try:
            self._reader, self._writer = self._run(host.open_connection(*addr, **kwargs))
        except TimeoutError:
            raise TimeoutError("timed out") from None
        self._peer = addr

    def connect_ex(self, address: tuple[str, int]) -> int:
        try:
            self.connect(address)
        except OSError as exc:
            return exc.errno or 1
        return 0

    # -- TCP data --------------------------------------------------------------------------------
    def _need_stream(self) -> None:
        self._check_open()
        if self._writer is None:
            raise OSError(107, "Transport endpoint is not connected")

    def send(self, data: bytes | bytearray | memoryview, flags: int = 0) -> int:
        if self.type == SOCK_DGRAM:
            if self._peer is None:
                raise OSError(89, "Destination address required")
            return self.sendto(data, self._peer)
        self._need_stream()
        data = bytes(data)
        writer = self._writer

        async def write() -> int:
            writer.write(data)
            await writer.drain()
            return len(data)
        return self._run(write())

    def sendall(self, data: bytes | bytearray | memoryview, flags: int = 0) -> None:
        self.send(data, flags)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if self.type == SOCK_DGRAM:
            return self.recvfrom(bufsize)[0]
        self._need_stream()
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        if bufsize == 0:
            return b""
        if self._eof:
            return b""
        reader = self._reader
        data = self._run(reader.read(bufsize))
        if not data:
            self._eof = True
        return bytes(data)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        mv = memoryview(buffer).cast("B")
        data = self.recv(nbytes or len(mv), flags)
        mv[:len(data)] = data
        return len(data)

    def shutdown(self, how: int) -> None:
        self._need_stream()
        if how in (SHUT_WR, SHUT_RDWR):
            writer = self._writer

            async def eof() -> None:
                await writer.drain()
                writer.write_eof()
            self._run(eof())
        if how in (SHUT_RD, SHUT_RDWR):
            self._eof = True

    def makefile(self, mode: str = "r", buffering: int | None = None, *,
                 encoding: str | None = None, errors: str | None = None,
                 newline: str | None = None) -> Any:
        if not set(mode) <= {"r", "w", "b"}:
            raise ValueError(f"invalid mode {mode!r} (only r, w, b)")
        reading = "r" in mode
        writing = "w" in mode
        raw = _SocketIO(self, reading, writing)
        self._io_refs += 1
        if buffering is None:
            buffering = -1
        if buffering < 0:
            buffering = io.DEFAULT_BUFFER_SIZE
        if buffering == 0:
            if "b" not in mode:
                raise ValueError("unbuffered streams must be binary")
            return raw
        buf: Any
        if reading and writing:
            buf = io.BufferedRWPair(raw, raw, buffering)
        elif reading:
            buf = io.BufferedReader(raw, buffering)
        else:
            buf = io.BufferedWriter(raw, buffering)
        if "b" in mode:
            return buf
        text = io.TextIOWrapper(buf, encoding, errors, newline)
        text.mode = mode  # type: ignore[misc]  # read-only in typeshed, settable at run time
        return text

    # -- TCP server --------------------------------------------------------------------------------
    def listen(self, backlog: int = 128) -> None:
        self._check_open()
        if self.type != SOCK_STREAM:
            raise OSError(95, "Operation not supported")
        if self._server is not None:
            return
        bound = self._bound or ("", 0)
        host = self._host
        queue: asyncio.Queue[tuple[Any, Any]] | None = None

        async def start() -> Any:
            nonlocal queue
            queue = asyncio.Queue(maxsize=max(1, backlog))

            async def on_connection(reader: Any, writer: Any) -> None:
                assert queue is not None
                if queue.full():
                    writer.close()  # backlog overflow: refuse, as a full accept queue would
                    return
                queue.put_nowait((reader, writer))

            kwargs: dict[str, Any] = {"port": bound[1]}
            if bound[0]:
                kwargs["host"] = bound[0]
            return await host.start_server(on_connection, **kwargs)

        self._server = self._run(start(), timeout=None)
        self._accept_q = queue

    def accept(self) -> tuple[StackSocket, Any]:
        self._check_open()
        if self._accept_q is None:
            raise OSError(22, "Invalid argument")
        queue = self._accept_q
        reader, writer = self._run(queue.get())
        s = StackSocket(self._factory, self.family, SOCK_STREAM)
        s._reader, s._writer = reader, writer
        s._peer = writer.get_extra_info("peername")
        s.settimeout(self._factory.default_timeout)
        return s, s._peer

    # -- UDP --------------------------------------------------------------------------------------
    def _open_datagram(self, local: tuple[str, int] | None,
                       remote: tuple[str, int] | None = None) -> None:
        host = self._host
        proto = _DatagramQueue()

        async def open_endpoint() -> None:
            kwargs: dict[str, Any] = {"family": self.family}
            if local is not None:
                kwargs["local_addr"] = local
            if remote is not None:
                kwargs["remote_addr"] = remote
            await host.create_datagram_endpoint(lambda: proto, **kwargs)

        self._run(open_endpoint(), timeout=None)
        self._dgram = proto
        ops, self._mcast_ops = self._mcast_ops, []
        for op in ops:
            self._apply_multicast(op)

    def _close_datagram(self) -> None:
        proto, self._dgram = self._dgram, None
        if proto is not None and proto.transport is not None:
            self._stack.call(proto.transport.close, timeout=_GRACE)

    def sendto(self, data: bytes | bytearray | memoryview, *args: Any) -> int:
        self._check_open()
        address = args[-1]
        if self.type != SOCK_DGRAM:
            raise OSError(106, "Transport endpoint is already connected")
        if self._dgram is None:
            self._open_datagram(local=self._bound or ("", 0))
        proto = self._dgram
        assert proto is not None
        payload = bytes(data)
        addr = (address[0], int(address[1]))

        def send() -> int:
            proto.transport.sendto(payload, addr)
            return len(payload)
        return self._stack.call(send, timeout=_GRACE)

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        self._check_open()
        if self.type != SOCK_DGRAM:
            data = self.recv(bufsize, flags)
            return data, self._peer
        if self._dgram is None:
            raise OSError(22, "Invalid argument")  # nothing bound or sent: nothing to receive
        proto = self._dgram
        assert proto is not None
        data, addr = self._run(proto.get())
        return data[:bufsize], addr

    # -- closing -----------------------------------------------------------------------------------
    def close(self) -> None:
        """Close; like ``socket.socket``, the connection stays open while files made by
        :meth:`makefile` are still open (http.client closes the socket before the body)."""
        self._user_closed = True
        if self._io_refs <= 0:
            self._real_close()

    def _decref_io(self) -> None:
        self._io_refs -= 1
        if self._user_closed and self._io_refs <= 0:
            self._real_close()

    def _real_close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._stack.running:
            return
        writer, server, dgram = self._writer, self._server, self._dgram

        async def close_all() -> None:
            if writer is not None:
                writer.close()
                wait_closed = getattr(writer, "wait_closed", None)
                if wait_closed is not None:
                    try:
                        await asyncio.wait_for(wait_closed(), 5.0)
                    except (Exception, asyncio.CancelledError):
                        pass
            if server is not None:
                server.close()
            if dgram is not None and dgram.transport is not None:
                dgram.transport.close()
        try:
            self._stack.submit(close_all(), timeout=5.0 + _GRACE)
        except (TimeoutError, RuntimeError):
            pass

    def detach(self) -> int:
        raise OSError(95, "stacklab sockets have no file descriptor")

    def __enter__(self) -> StackSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = "tcp" if self.type == SOCK_STREAM else "udp"
        state = "closed" if self._closed else ("connected" if self._writer else
                                                "listening" if self._server else "idle")
        return f"<StackSocket {kind} {state} peer={self._peer}>"


class _SocketIO(io.RawIOBase):
    def __init__(self, sock: StackSocket, reading: bool, writing: bool) -> None:
        super().__init__()
        self._sock = sock
        self._reading = reading
        self._writing = writing

    def readable(self) -> bool:
        return self._reading

    def writable(self) -> bool:
        return self._writing

    def readinto(self, b: Any) -> int:
        return self._sock.recv_into(b)

    def write(self, b: Any) -> int:
        return self._sock.send(b)

    def close(self) -> None:
        if not self.closed:
            super().close()
            self._sock._decref_io()


def _server_sockname(server: Any) -> Any:
    """(address, port) a listener is bound to: asyncio.Server has socket objects in ``sockets``,
    stacklab's TcpServer (address, port) tuples."""
    socks = getattr(server, "sockets", None)
    if socks:
        first = socks[0]
        if isinstance(first, tuple):
            return first
        try:
            return first.getsockname()
        except Exception:
            pass
    port = getattr(server, "port", None)
    if isinstance(port, int):
        return ("0.0.0.0", port)
    return None


async def _with_timeout(coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
    if timeout is None:
        return await coro
    try:
        return await asyncio.wait_for(coro, timeout)
    except TimeoutError:
        raise TimeoutError("timed out") from None


async def _nonblocking(coro: Coroutine[Any, Any, T]) -> T:
    """Let ``coro`` run one step; raise BlockingIOError if it had to wait."""
    task = asyncio.ensure_future(coro)
    await asyncio.sleep(0)
    if task.done():
        return task.result()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    else:
        return task.result()
    raise BlockingIOError(11, "Resource temporarily unavailable")
