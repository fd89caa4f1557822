"""A blocking, ``socket``-like facade over a host's asyncio-style API.

Ordinary blocking code — stdlib clients, paramiko, a quick script — can use stacklab's TCP and UDP.
Two runners carry its calls to the host's loop:

* a stack running in a background thread over TAP devices
  (:class:`~stacklab.api.realtime.RealtimeStack`): every call is handed to the loop
  (``asyncio.run_coroutine_threadsafe``) and the calling thread waits for the result::

      stack = RealtimeStack(host, [tap]).start()
      net = StackSockets(stack)
      with net.create_connection(("10.0.0.1", 80), timeout=5) as s:
          s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
          print(s.recv(4096))

* the simulator: ``await host.run_blocking(func)`` (:mod:`stacklab.api.blocking`) runs ``func``
  in a greenlet whose calls switch to the loop and back, in virtual time.

Both go through the host's ``create_connection``/``create_server`` (api/streams.py) and
``create_datagram_endpoint`` (api/udp.py), each socket's protocol (:class:`_StreamQueue`,
:class:`_DatagramQueue`) buffering what arrives: a socket is readable when its buffer has
something, which is what ``select`` and ``poll`` ask (:meth:`StackSocket.readable`).
Timeouts follow ``socket``: ``settimeout(None)`` blocks, ``settimeout(0)`` raises
``BlockingIOError`` when nothing is ready, ``settimeout(t)`` raises ``TimeoutError`` ("timed out").
``fileno()`` is a real descriptor over TAP (a socketpair end readable exactly when the socket
is: :class:`_Bridge`), so ``select``, ``selectors`` and asyncio wait on it; on the simulator, a
number its own ``select`` knows. ``with use_sockets(net):`` (api/blocking.py) makes the
``socket`` module's names this stack's in the calling thread, so ``http.client`` and the rest
need no ``connect`` of ours.

``setsockopt`` acts on the multicast options of UDP sockets — ``IP_ADD_MEMBERSHIP`` /
``IP_DROP_MEMBERSHIP`` (``struct ip_mreq`` or ``ip_mreqn``), ``IP_MULTICAST_TTL``,
``IP_MULTICAST_IF``, ``IPV6_JOIN_GROUP`` / ``IPV6_LEAVE_GROUP`` (``struct ipv6_mreq``),
``IPV6_MULTICAST_HOPS``, ``IPV6_MULTICAST_IF`` — and on the TCP options of
:class:`~stacklab.api.streams.TcpSocket` (TCP_NODELAY, SO_KEEPALIVE, SO_LINGER, SO_OOBINLINE,
...), before or after connect; an accepted socket inherits the listener's. Urgent data:
``send(data, MSG_OOB)``, ``recv(1, MSG_OOB)``, :meth:`StackSocket.sockatmark`.
An interface index is Linux's numbering of the host's interfaces, from 1 in their order
(0: the route's).
"""

from __future__ import annotations

import asyncio
import errno
import io
import os
import socket as _socket
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from stacklab.stack.tcp import urgent
from stacklab.stack.tcp.fsm import CLOSING, FIN_WAIT_1, LAST_ACK

from .streams import _TCP_OPTIONS as _STREAM_OPTIONS
from .streams import congestion_option

T = TypeVar("T")

AF_INET = _socket.AF_INET
AF_INET6 = _socket.AF_INET6
SOCK_STREAM = _socket.SOCK_STREAM
SOCK_DGRAM = _socket.SOCK_DGRAM
SHUT_RD, SHUT_WR, SHUT_RDWR = _socket.SHUT_RD, _socket.SHUT_WR, _socket.SHUT_RDWR

# the real socketpair, whatever the socket module's names are while blocking code runs
_REAL_SOCKETPAIR = _socket.socketpair

MAX_QUEUED_DATAGRAMS = 1024
MAX_BUFFERED = 256 * 1024  # bytes a stream socket buffers before reading pauses (window closes)
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


class Runner(Protocol):
    """What runs a socket's calls on its host's loop (RealtimeStack, or the simulator's
    greenlet runner in api/blocking.py)."""

    @property
    def node(self) -> Any: ...

    @property
    def running(self) -> bool: ...

    def submit(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T: ...

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = 30.0) -> T: ...


class StackSockets:
    """Factory of blocking sockets on one host (``socket`` module look-alike)."""

    def __init__(self, stack: Runner) -> None:
        self.stack = stack
        self.default_timeout: float | None = None

    @property
    def host(self) -> Any:
        return self.stack.node

    def fileno_of(self, sock: StackSocket) -> int:
        """The number ``sock.fileno()`` answers: a real descriptor readable when the socket is
        (:meth:`StackSocket.bridge`); the simulator's runner numbers its sockets instead, for
        its own ``select``."""
        return sock.bridge()

    def socket(self, family: int = AF_INET, type: int = SOCK_STREAM, proto: int = 0) -> StackSocket:
        type &= ~(_socket.SOCK_NONBLOCK | _socket.SOCK_CLOEXEC)
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


class _Waiting:
    """Loop-side waiters (a reader and a writer may wait at once, from two threads or two
    greenlets), all woken when the protocol's state changes, each checking its own condition
    again; ``on_change`` (the socket's descriptor bridge) hears of every change too."""

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []
        self.on_change: Callable[[], None] | None = None

    def _changed(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if self.on_change is not None:
            self.on_change()

    async def _wait(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)


class _StreamQueue(_Waiting, asyncio.Protocol):
    """The bytes of one TCP connection, on the loop, for a StackSocket: a receive buffer that
    pauses reading past MAX_BUFFERED (the TCP window closes), and the transport's write flow
    control (``pause_writing``/``resume_writing``)."""

    def __init__(self, accepted: Callable[[_StreamQueue], None] | None = None) -> None:
        super().__init__()
        self.transport: Any = None
        self.buffer = bytearray()
        self.eof = False
        self.lost = False
        self.error: BaseException | None = None
        self._accepted = accepted
        self._read_paused = False
        self._write_paused = False
        self.mark: int | None = None  # bytes of ``buffer`` before the urgent mark (SIOCATMARK)

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if self._accepted is not None:
            self._accepted(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        tcb = self.transport.get_extra_info("tcb")
        if tcb is not None and tcb.urg is not None:
            past = urgent.read_past_mark(tcb)  # where the urgent mark is in our buffer
            if past is not None and past <= len(self.buffer):
                self.mark = len(self.buffer) - past
        if len(self.buffer) > MAX_BUFFERED and not self._read_paused:
            self._read_paused = True
            self.transport.pause_reading()
        self._changed()

    def eof_received(self) -> bool:
        self.eof = True
        self._changed()
        return True  # half-close: the socket may still send (shutdown(SHUT_WR) is the peer's)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = True
        self.error = exc
        self._changed()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._changed()

    def readable(self) -> bool:
        return bool(self.buffer) or self.eof or self.lost

    def writable(self) -> bool:
        return not self._write_paused or self.lost

    def take(self, n: int) -> bytes:
        mark = self.mark
        if mark is not None:  # a read stops at the urgent mark, as Linux's tcp_recvmsg
            if mark:
                n = min(n, mark)
                self.mark = mark - min(n, len(self.buffer))
            else:
                self.mark = None  # at the mark: this read goes past it
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        if self._read_paused and len(self.buffer) <= MAX_BUFFERED // 2:
            self._read_paused = False
            self.transport.resume_reading()
        self._changed()
        return data

    async def wait_readable(self) -> None:
        while not self.readable():
            await self._wait()

    async def wait_writable(self) -> None:
        while not self.writable():
            await self._wait()


class _AcceptQueue(_Waiting):
    """A listening StackSocket's accept queue: connections established and not accepted yet."""

    def __init__(self, backlog: int) -> None:
        super().__init__()
        self.backlog = max(1, backlog)
        self.items: deque[_StreamQueue] = deque()

    def factory(self) -> _StreamQueue:
        return _StreamQueue(accepted=self._push)

    def _push(self, proto: _StreamQueue) -> None:
        if len(self.items) >= self.backlog:
            proto.transport.close()  # backlog overflow: refuse, as a full accept queue would
            return
        self.items.append(proto)
        self._changed()

    def readable(self) -> bool:
        return bool(self.items)

    async def wait_readable(self) -> None:
        while not self.items:
            await self._wait()


class _DatagramQueue(_Waiting, asyncio.DatagramProtocol):
    """Receives datagrams (and ICMP errors) for a UDP StackSocket, on the loop."""

    def __init__(self) -> None:
        super().__init__()
        self.transport: Any = None
        self.items: deque[tuple[bytes, Any]] = deque()
        self.error: Exception | None = None
        self.dropped = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(self.items) >= MAX_QUEUED_DATAGRAMS:
            self.dropped += 1
            return
        self.items.append((bytes(data), addr))
        self._changed()

    def error_received(self, exc: Exception) -> None:
        self.error = exc
        self._changed()

    def connection_lost(self, exc: Exception | None) -> None:
        self._changed()

    def readable(self) -> bool:
        return bool(self.items) or self.error is not None

    async def wait_readable(self) -> None:
        while not self.readable():
            await self._wait()

    async def get(self) -> tuple[bytes, Any]:
        await self.wait_readable()
        try:
            if self.error is not None:
                exc, self.error = self.error, None
                raise exc
            return self.items.popleft()
        finally:
            self._changed()


# socket options a StackSocket passes to create_connection, and the TcpConfig field of each
_TCP_OPTIONS = {(_socket.IPPROTO_TCP, _socket.TCP_NODELAY): "nodelay",
                (_socket.SOL_SOCKET, _socket.SO_KEEPALIVE): "keepalive"}
_TCP_CONGESTION = (_socket.IPPROTO_TCP, _socket.TCP_CONGESTION)  # a name, not a number


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
        self._options: dict[tuple[int, int], int] = {}
        self._raw_options: dict[tuple[int, int], Any] = {}  # TcpSocket's options, as given
        self._congestion: str | None = None  # TCP_CONGESTION set before connect/listen
        self._fileno: int | None = None
        self._bridge: _Bridge | None = None
        # TCP connection
        self._stream: _StreamQueue | None = None
        self._read_shut = False
        # TCP listener
        self._server: Any = None
        self._accept_q: _AcceptQueue | None = None
        # UDP
        self._dgram: _DatagramQueue | None = None
        self._mcast_ops: list[tuple[str, Any]] = []  # set before the endpoint exists

    # -- plumbing ----------------------------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = -1.0) -> T:
        """Run ``coro`` on the loop under this socket's timeout (or ``timeout``)."""
        t = self._timeout if timeout == -1.0 else timeout
        coro = _with_errno(coro)
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

    @property
    def timeout(self) -> float | None:
        return self._timeout

    def setsockopt(self, level: int, option: int, value: Any, *args: Any) -> None:
        """Kept for getsockopt; TCP_NODELAY and SO_KEEPALIVE go to the TCB's config (now if
        connected, else at connect); a UDP socket's multicast options act (see the module
        docstring). Other options (SO_REUSEADDR...) change nothing here."""
        self._check_open()
        if self.type == SOCK_DGRAM:
            op = _multicast_op(self._host, level, option, value)
            if op is not None:
                if self._dgram is None:
                    self._mcast_ops.append(op)  # the endpoint does not exist yet
                else:
                    self._apply_multicast(op)
                return
        if (level, option) == _TCP_CONGESTION and self.type == SOCK_STREAM:
            self._set_congestion(congestion_option(bytes(value) if isinstance(
                value, bytearray) else value))
            return
        number = int.from_bytes(value, "little") if isinstance(value, bytes | bytearray) else (
            int(value) if value is not None else 0)
        self._options[(level, option)] = number
        if (level, option) in _STREAM_OPTIONS:
            self._raw_options[(level, option)] = value
            face = self._socket_face()
            if face is not None:
                self._stack.call(face.setsockopt, level, option, value, timeout=_GRACE)

    def _set_congestion(self, name: str) -> None:
        """TCP_CONGESTION: for the connection this socket makes or accepts, and at once for
        the one it has (the TCB switches on the loop's thread)."""
        self._congestion = name
        tcb = self._tcb()
        if tcb is not None:
            async def switch() -> None:
                tcb.set_config(tcb.config.replace(congestion=name), self._host.now())

            self._run(switch(), timeout=None)

    def getsockopt(self, level: int, option: int, buflen: int | None = None) -> Any:
        self._check_open()
        if (level, option) == _TCP_CONGESTION and self.type == SOCK_STREAM:
            tcb = self._tcb()
            name = tcb.config.congestion if tcb is not None else (
                self._congestion or self._host.tcp.default_congestion)
            return name.encode().ljust(buflen or 16, b"\0")[:buflen or 16]
        if (level, option) == (_socket.SOL_SOCKET, _socket.SO_ERROR):
            value = 0
        elif (level, option) == (_socket.SOL_SOCKET, _socket.SO_TYPE):
            value = self.type
        elif (level, option) in _STREAM_OPTIONS and (face := self._socket_face()) is not None:
            return self._stack.call(face.getsockopt, level, option, buflen, timeout=_GRACE)
        else:
            value = self._options.get((level, option), 0)
        return value if buflen is None else value.to_bytes(4, "little")[:buflen]

    def _socket_face(self) -> Any:
        """The connection's :class:`~stacklab.api.streams.TcpSocket` (None: not connected):
        its option table is this socket's too."""
        stream = self._stream
        return stream.transport.get_extra_info("socket") if stream is not None else None

    def _tcb(self) -> Any:
        stream = self._stream
        return stream.transport.get_extra_info("tcb") if stream is not None else None

    def _apply_options(self, options: dict[tuple[int, int], Any]) -> None:
        """Options set before the connection existed (or on the listener: Linux's accepted
        sockets inherit them), on it now."""
        face = self._socket_face()
        if face is not None and options:
            def apply() -> None:
                for (level, option), value in options.items():
                    face.setsockopt(level, option, value)
            self._stack.call(apply, timeout=_GRACE)
            self._raw_options.update(options)

    def sockatmark(self) -> bool:
        """SIOCATMARK (sockatmark(3)): the next byte read is the urgent mark."""
        stream = self._need_stream()
        return stream.mark == 0

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
        if self._closed:
            return -1
        if self._fileno is None:
            self._fileno = self._factory.fileno_of(self)
        return self._fileno

    # -- readiness (select, poll, the descriptor bridge) ---------------------------------------
    def _watch(self, q: _Waiting) -> None:
        """Follow a new protocol's changes (the bridge, if there is one, learns its state)."""
        q.on_change = self._changed
        if self._bridge is not None:
            self._stack.call(self._changed, timeout=_GRACE)

    def _changed(self) -> None:
        """On the loop: something the socket's readiness depends on changed."""
        if self._bridge is not None:
            self._bridge.sync(self.readable())

    def bridge(self) -> int:
        """A real descriptor that is readable exactly when this socket is (its
        :class:`_Bridge`), for ``select``, ``selectors`` and asyncio's ``add_reader``."""
        if self._bridge is None:
            self._bridge = _Bridge()
            self._stack.call(self._changed, timeout=_GRACE)
        return self._bridge.fileno()

    def _readiness(self) -> Any:
        """The protocol whose buffer says whether a read would block (None: nothing to read)."""
        return self._stream or self._accept_q or self._dgram

    def readable(self) -> bool:
        """A read would not block (data, EOF, an error or a connection to accept)."""
        q = self._readiness()
        return self._closed or self._read_shut or (q is not None and q.readable())

    def writable(self) -> bool:
        """A send would not block."""
        if self._stream is not None:
            return self._stream.writable()
        return self._dgram is not None or self._closed

    async def wait_readable(self) -> None:
        """On the loop: until :meth:`readable` (for ``select``)."""
        q = self._readiness()
        if q is not None and not self.readable():
            await q.wait_readable()
        elif q is None and not self.readable():
            await asyncio.get_running_loop().create_future()  # nothing can arrive

    async def wait_writable(self) -> None:
        if self._stream is not None:
            await self._stream.wait_writable()
        elif not self.writable():
            await asyncio.get_running_loop().create_future()

    # -- addresses -----------------------------------------------------------------------------
    def getsockname(self) -> Any:
        if self._stream is not None:
            return self._stream.transport.get_extra_info("sockname")
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
        self._check_open()
        if self._stream is not None:
            return self._stream.transport.get_extra_info("peername")
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
        if self._stream is not None:
            raise OSError(106, "Transport endpoint is already connected")
        host = self._host
        stream = _StreamQueue()
        kwargs: dict[str, Any] = {"family": self.family, "nodelay": False}
        for key, field in _TCP_OPTIONS.items():
            if key in self._options:
                kwargs[field] = bool(self._options[key])
        if self._congestion is not None:
            kwargs["congestion"] = self._congestion
        if self._bound is not None:
            kwargs["local_addr"] = self._bound
        try:
            self._run(host.create_connection(lambda: stream, *addr, **kwargs))
        except TimeoutError:
            raise TimeoutError("timed out") from None
        self._stream = stream
        self._peer = addr
        self._watch(stream)
        self._apply_options(self._raw_options)

    def connect_ex(self, address: tuple[str, int]) -> int:
        try:
            self.connect(address)
        except OSError as exc:
            return exc.errno or 1
        return 0

    # -- TCP data --------------------------------------------------------------------------------
    def _need_stream(self) -> _StreamQueue:
        self._check_open()
        if self._stream is None:
            raise OSError(107, "Transport endpoint is not connected")
        return self._stream

    def send(self, data: bytes | bytearray | memoryview, flags: int = 0) -> int:
        """Wait until the connection takes more (the transport below its high-water mark),
        then hand it all of ``data``."""
        if self.type == SOCK_DGRAM:
            if self._peer is None:
                raise OSError(89, "Destination address required")
            return self.sendto(data, self._peer)
        stream = self._need_stream()
        payload = bytes(data)
        if flags & _socket.MSG_OOB:  # urgent data: BlockingIOError while it cannot go at once
            face = self._socket_face()
            return int(self._stack.call(face.send, payload, flags, timeout=_GRACE))

        async def write() -> int:
            await stream.wait_writable()
            if stream.lost or stream.transport.is_closing():
                raise _lost_error(stream)
            stream.transport.write(payload)
            return len(payload)
        return self._run(write())

    def sendall(self, data: bytes | bytearray | memoryview, flags: int = 0) -> None:
        view = memoryview(data).cast("B")
        for i in range(0, len(view), 65536):
            self.send(view[i:i + 65536], flags)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if self.type == SOCK_DGRAM:
            return self.recvfrom(bufsize)[0]
        stream = self._need_stream()
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        if flags & _socket.MSG_OOB:  # the urgent byte (errors as Linux: EINVAL, EAGAIN)
            face = self._socket_face()
            return bytes(self._stack.call(face.recv, bufsize, flags, timeout=_GRACE))
        if bufsize == 0 or (self._read_shut and not stream.buffer):
            return b""  # after shutdown(SHUT_RD) what is queued is still read, as Linux

        async def read() -> bytes:
            await stream.wait_readable()
            if stream.buffer:
                return stream.take(bufsize)
            if stream.error is not None:
                raise stream.error
            return b""
        return self._run(read())

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        mv = memoryview(buffer).cast("B")
        data = self.recv(nbytes or len(mv), flags)
        mv[:len(data)] = data
        return len(data)

    def shutdown(self, how: int) -> None:
        stream = self._need_stream()
        if how in (SHUT_WR, SHUT_RDWR):
            self._stack.call(stream.transport.write_eof, timeout=_GRACE)  # FIN after the data
        if how in (SHUT_RD, SHUT_RDWR):
            self._read_shut = True
            tcb = stream.transport.get_extra_info("tcb")

            def shut_rd() -> None:
                if tcb is not None:
                    tcb.shutdown_read()
                self._changed()
            self._stack.call(shut_rd, timeout=_GRACE)

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
        queue = _AcceptQueue(backlog)
        self._server = self._run(host.create_server(queue.factory, bound[0] or None, bound[1],
                                                    backlog=backlog, nodelay=False,
                                                    congestion=self._congestion),
                                 timeout=None)
        self._accept_q = queue
        self._watch(queue)

    def accept(self) -> tuple[StackSocket, Any]:
        self._check_open()
        if self._accept_q is None:
            raise OSError(22, "Invalid argument")
        queue = self._accept_q

        async def take() -> _StreamQueue:
            await queue.wait_readable()
            stream = queue.items.popleft()
            queue._changed()
            return stream
        stream = self._run(take())
        s = StackSocket(self._factory, self.family, SOCK_STREAM)
        s._stream = stream
        s._watch(stream)
        s._peer = stream.transport.get_extra_info("peername")
        s.settimeout(self._factory.default_timeout)
        s._apply_options(self._raw_options)
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
        self._watch(proto)
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
        """The FIN goes after what is buffered, as close(2) returns at once; unread data makes
        it a reset instead (RFC 2525 §2.17, Linux tcp_close)."""
        if self._closed:
            return
        self._closed = True
        if not self._stack.running:
            return
        stream, server, dgram = self._stream, self._server, self._dgram
        accept_q, bridge = self._accept_q, self._bridge

        def close_all() -> None:
            if stream is not None and not stream.lost:
                if stream.buffer:
                    stream.transport.abort()
                else:
                    stream.transport.close()
            if server is not None:
                server.close()
            for pending in accept_q.items if accept_q is not None else ():
                pending.transport.abort()  # connections never accepted: reset, as Linux
            if dgram is not None and dgram.transport is not None:
                dgram.transport.close()
            if bridge is not None:
                self._bridge = None
                bridge.close()
        try:
            self._stack.call(close_all, timeout=_GRACE)
        except (TimeoutError, RuntimeError):
            pass
        tcb = stream.transport.get_extra_info("tcb") if stream is not None else None
        linger = tcb.config.linger if tcb is not None else None
        if linger and self._timeout != 0.0:
            self._linger(tcb, linger)

    def _linger(self, tcb: Any, seconds: float) -> None:
        """SO_LINGER {1, n > 0} on a blocking socket: close() returns once our FIN (after all
        the data) is acknowledged, or after ``n`` seconds, as Linux's sk_stream_wait_close.
        The wire sees an ordinary close either way."""
        async def wait() -> None:
            deadline = asyncio.get_running_loop().time() + seconds
            while tcb.state in (FIN_WAIT_1, CLOSING, LAST_ACK) \
                    and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(min(0.01, seconds))
        try:
            self._stack.submit(wait(), timeout=seconds + _GRACE)
        except (TimeoutError, RuntimeError):
            pass

    def detach(self) -> int:
        raise OSError(95, "a stacklab socket's descriptor is only its readiness")

    def __enter__(self) -> StackSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = "tcp" if self.type == SOCK_STREAM else "udp"
        state = "closed" if self._closed else ("connected" if self._stream else
                                                "listening" if self._server else "idle")
        return f"<StackSocket {kind} {state} peer={self._peer}>"


class _Bridge:
    """The real descriptor of a StackSocket: one end of a socketpair that holds one byte while
    the socket is readable and none otherwise, kept so by the loop (:meth:`sync`, the only
    writer and reader of that byte). ``select``, ``poll``, ``selectors`` and asyncio wait on
    it as on any socket; the data itself stays in the socket's buffer. It is always writable:
    a send that must wait for the connection's window waits in ``send``."""

    def __init__(self) -> None:
        self._user, self._feed = _REAL_SOCKETPAIR()
        self._user.setblocking(False)
        self._feed.setblocking(False)
        self._token = False

    def fileno(self) -> int:
        return self._user.fileno()

    def sync(self, ready: bool) -> None:
        if ready and not self._token:
            self._feed.send(b"\0")
            self._token = True
        elif not ready and self._token:
            self._user.recv(1)
            self._token = False

    def close(self) -> None:
        self._user.close()
        self._feed.close()


def _lost_error(stream: _StreamQueue) -> BaseException:
    """What a send on a connection that is gone raises: its error, else EPIPE."""
    if isinstance(stream.error, OSError):
        return stream.error
    return BrokenPipeError(32, "Broken pipe")


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

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        if not self.closed:
            super().close()
            self._sock._decref_io()


def _server_sockname(server: Any) -> Any:
    """(address, port) a listener is bound to: stacklab's TcpServer has (address, port)
    tuples in ``sockets``, asyncio.Server socket objects."""
    socks = getattr(server, "sockets", None)
    if socks:
        first = socks[0]
        return first if isinstance(first, tuple) else first.getsockname()
    return None


# the errno a socket reports with each error the stack raises without one (Linux's codes)
_ERRNOS: dict[type[OSError], int] = {
    ConnectionRefusedError: errno.ECONNREFUSED, ConnectionResetError: errno.ECONNRESET,
    ConnectionAbortedError: errno.ECONNABORTED, BrokenPipeError: errno.EPIPE,
    TimeoutError: errno.ETIMEDOUT}


async def _with_errno(coro: Coroutine[Any, Any, T]) -> T:
    """``coro``'s result; a stack error gets the errno a socket call would carry
    (``[Errno 111] Connection refused``), the stack's own words kept as its cause."""
    try:
        return await coro
    except OSError as exc:
        code = _ERRNOS.get(type(exc))
        if exc.errno is not None or code is None:
            raise
        raise type(exc)(code, os.strerror(code)) from exc


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
