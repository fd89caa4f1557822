"""TCP for applications, asyncio style, over a Host's sans-IO TCP layer.

* ``reader, writer = await host.open_connection(addr_or_name, port)`` and
  ``server = await host.start_server(client_connected_cb, port, host=None)`` mirror
  ``asyncio.open_connection`` / ``asyncio.start_server`` and hand out asyncio's own
  ``StreamReader`` / ``StreamWriter`` (read, readexactly, readline, readuntil, at_eof, write,
  writelines, drain, close, wait_closed, write_eof, can_write_eof, get_extra_info);
* ``transport, protocol = await host.create_connection(protocol_factory, host, port)`` and
  ``server = await host.create_server(protocol_factory, host, port)`` mirror the loop methods, so
  libraries written against asyncio protocols (asyncssh, h11 adapters) run on the stack.

:class:`TcpTransport` is an ``asyncio.Transport``: writes go into the TCB's send buffer (what does
not fit waits in the transport and counts toward the write-buffer high-water mark), reads are
taken out of the TCB's receive buffer only while reading is not paused, so a slow reader closes
the TCP window. ``get_extra_info("tcp_info")`` is the TCB's ``tcp_info()`` dict. Like asyncio, the
transports set no-delay (asyncio sets TCP_NODELAY on its sockets).

Errors: a refused connection raises ConnectionRefusedError, a reset one ConnectionResetError, a
connect timeout TimeoutError.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

from stacklab.stack.pmtudisc import IP_MTU_DISCOVER, check_mode
from stacklab.stack.tcp import urgent
from stacklab.stack.tcp.config import (
    TcpConfig,
    initial_recv_buffer,
    so_rcvbuf,
    so_sndbuf,
    unconnected_send_buffer,
)
from stacklab.stack.tcp.events import (
    Connected,
    ConnectionLost,
    DataReceived,
    EofReceived,
    SendSpace,
    TcbEvent,
)
from stacklab.stack.tcp.fsm import CLOSED, TIME_WAIT
from stacklab.stack.tcp.tcb import Tcb
from stacklab.wire.addr import ip_bytes, ip_str

from .driver import DrivenHost

if TYPE_CHECKING:
    from stacklab.stack.tcp.layer import TcpLayer
    from stacklab.stack.tcp.listen import Listener

_DEFAULT_LIMIT = 2 ** 16
_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})


def _drain_hook(layer: TcpLayer) -> Callable[[float], None]:
    """The driver's drain hook for a host's TCP layer: hand each queued event to the transport
    of its connection (a new passive connection to its listener's accept callback), then run the
    output of what the application did in reaction, until neither is left. A closure over the
    layer's two queues (never rebound: the driver holds them too, ``on_drain``), so the driver
    calls it as a plain function, not a ``functools.partial`` (a call from C per segment)."""
    events = layer.events
    kicked = layer.kicked

    def drain(now: float) -> None:
        while events or kicked:
            while events:
                tcb, ev = events.popleft()
                transport = tcb.user
                if type(transport) is TcpTransport or isinstance(transport, TcpTransport):
                    if type(ev) is DataReceived:  # the per-segment event, without a dispatch call
                        transport._deliver()
                    else:
                        transport._on_event(ev, now)
                elif type(ev) is Connected and (lst := layer.listener_of(tcb)) is not None:
                    lst.on_established(tcb)
            if kicked:
                layer.poll(now)

    return drain


def _pull_events(host: DrivenHost, layer: TcpLayer) -> None:
    """Make the host's driver drain ``layer``'s events after every node call that left some
    queued, or a connection kicked (once per layer)."""
    host.driving().on_drain(layer, _drain_hook(layer), (layer.events, layer.kicked))


def _config(layer: TcpLayer, config: TcpConfig | None, nodelay: bool | None,
            **kw: Any) -> TcpConfig:
    """The TcpConfig of a new socket: ``config`` or the host's, with the socket options given
    (``congestion=`` is TCP_CONGESTION: checked against the registered algorithms)."""
    if kw.get("congestion") is not None:
        from stacklab.stack.tcp.congestion import create_congestion

        create_congestion(kw["congestion"], 1000)  # ValueError naming the known ones
    cfg = config or layer.config
    changes = {k: v for k, v in kw.items() if v is not None}
    changes["nodelay"] = True if nodelay is None and config is None else (
        cfg.nodelay if nodelay is None else nodelay)
    # one TcpConfig per distinct (base, options) pair, shared by the sockets made with it (a
    # copy per client socket was 0.45 KiB, issue 23 item 4): a TCB's config is never changed
    # in place (setsockopt installs a copy, Tcb.set_config)
    key = (id(cfg), tuple(sorted(changes.items())))
    hit = _CONFIGS.get(key)
    if hit is not None and hit[0] is cfg:
        return hit[1]
    made = cfg.replace(**changes)
    if len(_CONFIGS) >= _CONFIGS_MAX:
        _CONFIGS.clear()
    _CONFIGS[key] = (cfg, made)  # holds cfg: its id is not reused while the entry lives
    return made


_CONFIGS: dict[tuple[int, tuple[tuple[str, Any], ...]], tuple[TcpConfig, TcpConfig]] = {}
_CONFIGS_MAX = 256


class TcpTransport(asyncio.Transport):
    """An asyncio transport over one TCB."""

    # slots: one transport per connection end (100,000 connections, issue 23 item 4); asyncio's
    # base classes have slots (``_extra``), ``__dict__`` keeps other attributes settable
    __slots__ = ("_host", "_layer", "_tcb", "_protocol", "_loop", "_connected", "_server",
                 "__dict__", "__weakref__")
    # set once at most in most connections' lives (an idle one sets none of them): class
    # attributes until set (8 bytes each per connection end less)
    # written, not yet in the TCB's send buffer (while empty, the shared b"", no buffer of its
    # own per connection: write() makes one)
    _pending: bytes | bytearray = b""
    _closing = False
    _eof_pending = False  # write_eof() before the pending bytes went in
    _eof_sent = False
    _reading_paused = False
    _writing_paused = False
    _lost = False
    _lost_deferred = False  # the end came while reading was paused, data unread
    _eof_delivered = False
    _high = 64 * 1024  # the write buffer limits (set_write_buffer_limits)
    _low = 16 * 1024

    def __init__(self, host: DrivenHost, tcb: Tcb | None, protocol: asyncio.BaseProtocol,
                 loop: asyncio.AbstractEventLoop) -> None:
        # (not asyncio's BaseTransport.__init__: all it does is set _extra, below)
        self._host = host
        self._layer = host.tcp
        self._tcb = tcb
        self._protocol = protocol
        self._loop = loop
        self._connected: asyncio.Future[None] | None = None
        self._extra: Mapping[str, Any] = _NO_EXTRA  # asyncio's: nothing is added to it
        self._server: TcpServer | None = None  # the server that accepted it, while it lives

    # -- wiring -------------------------------------------------------------------------------
    def _attach(self, tcb: Tcb) -> None:
        self._tcb = tcb
        tcb.user = self

    def _on_event(self, ev: TcbEvent, now: float) -> None:
        """One event of this transport's TCB, pulled by the layer's drain hook
        (``_drain_hook``) at ``now``, the driver's time (``host.now()``)."""
        cls = type(ev)
        if cls is DataReceived or cls is EofReceived:  # the per-segment events first
            self._deliver()
        elif cls is SendSpace:
            self._fill(now)
        elif cls is Connected:
            if self._pending:  # the send buffer grew at establishment (sndbuf.expand)
                self._fill(now)
            if self._connected is not None and not self._connected.done():
                self._connected.set_result(None)
        elif isinstance(ev, ConnectionLost):
            self._on_lost(ev.error)

    def _deliver(self) -> None:
        tcb = self._tcb
        if tcb is None or self._reading_paused or self._lost:
            return
        data = tcb.read()
        while data:
            if tcb.ack_pending():  # the read opened the window enough for a window update
                self._layer.kick(tcb)
            if not tcb.user_closed:
                self._protocol.data_received(data)  # type: ignore[attr-defined]  # a Protocol
            if tcb.urg is None or self._reading_paused:
                break
            data = tcb.read()  # the read stopped at the urgent mark: what follows it
        if tcb.fin_received and tcb.at_eof and not self._eof_delivered:  # (no call per segment)
            self._eof_delivered = True
            keep_open = cast(asyncio.Protocol, self._protocol).eof_received()
            if not keep_open:
                self.close()
        if self._lost_deferred and not tcb.readable:
            self._lost_deferred = False
            self._on_lost(None)

    def _fill(self, now: float | None = None) -> None:
        """What the TCB's send buffer takes of the pending bytes, then a FIN once they are in
        (``now``: the driver's time when the caller has it, as the drain hook: the same as
        ``host.now()``, without asking)."""
        tcb = self._tcb
        if tcb is None:
            return
        if self._pending and tcb.state not in (CLOSED, TIME_WAIT):
            try:
                n = tcb.send(self._pending, now=self._host.now() if now is None else now)
            except ConnectionError:
                n = 0
            if n:
                pending = self._pending
                try:
                    del pending[:n]  # type: ignore[union-attr]  # (a bytearray: write() made it)
                except BufferError:  # a view of it is still alive somewhere: leave that one be
                    pending = self._pending = pending[n:]
                if not pending:
                    self._pending = b""  # (no buffer of its own while empty)
                self._layer.kick(tcb)
        if not self._pending and self._eof_pending and not self._eof_sent:
            self._eof_sent = True
            tcb.close(self._host.now() if now is None else now, full=self._closing)
            self._layer.kick(tcb)
        if self._writing_paused and self.get_write_buffer_size() <= self._low:
            self._writing_paused = False
            self._protocol.resume_writing()

    def _on_lost(self, error: Exception | None) -> None:
        if self._lost:
            return
        tcb = self._tcb
        if error is None and self._reading_paused and tcb is not None and tcb.readable:
            # an orderly end while the application paused reading: what it has not read yet
            # is handed over first, when it resumes (_deliver reports the end then)
            self._lost_deferred = True
            return
        if self._server is not None:
            self._server._clients.pop(self, None)
            self._server = None
        if self._tcb is not None:
            # no event follows the end; the finished TCB (kept in the layer's history) must
            # not keep the application's objects alive
            self._tcb.user = None
        if self._connected is not None and not self._connected.done():
            self._connected.set_exception(error or ConnectionResetError("TCP connection closed"))
            self._lost = True
            return
        # hand over what is still readable before reporting the end
        if error is None:
            self._deliver()
        self._lost = True
        self._closing = True
        self._loop.call_soon(self._protocol.connection_lost, error)

    # -- asyncio.Transport --------------------------------------------------------------------
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "tcp_info":
            return self._tcb.tcp_info() if self._tcb is not None else default
        if name == "tcb":
            return self._tcb
        if name == "socket":
            return TcpSocket(self._host, self._tcb, self._layer) if self._tcb else default
        tcb = self._tcb
        if tcb is not None and name in ("peername", "sockname"):
            # made when asked, not per connection (two strings and tuples: ~0.2 KiB an end)
            if name == "peername":
                return (ip_str(tcb.remote_ip), tcb.remote_port)
            return (ip_str(tcb.local_ip), tcb.local_port)
        return self._extra.get(name, default)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Send what is buffered, then a FIN; no more data is received (``connection_lost``
        follows once our FIN is acknowledged)."""
        if self._closing:
            return
        self._closing = True
        self._eof_pending = True
        if self._eof_sent and self._tcb is not None:
            self._tcb.close(self._host.now(), full=True)
            self._layer.kick(self._tcb)
        self._fill()

    def abort(self) -> None:
        self._closing = True
        tcb = self._tcb
        if tcb is not None and tcb.state is not CLOSED:
            tcb.abort(self._host.now())
            self._layer.kick(tcb)
            self._layer.flush(tcb, self._host.now())
        self._on_lost(None)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def is_reading(self) -> bool:
        return not self._reading_paused and not self._closing

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            self._loop.call_soon(self._deliver)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        self._high, self._low = high, low

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low, self._high)

    def get_write_buffer_size(self) -> int:
        # what the TCB's send buffer (the kernel's socket buffer) has not taken, as asyncio's
        # socket transports count only their own buffer: data sent and not yet acknowledged
        # must not hold the writer back, or drain() waits for the whole flight to be
        # acknowledged (at 256 KiB writes under loss, the flight never outgrows 256 KiB)
        return len(self._pending)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if self._eof_pending or self._lost:
            if self._lost:
                return
            raise RuntimeError("write after write_eof() or close()")
        if self._pending:
            try:
                self._pending += data
            except BufferError:  # a view of it is still alive somewhere: leave that one be
                self._pending = bytearray(self._pending) + data
        else:
            self._pending = bytearray(data)
        self._fill()
        if not self._writing_paused and self.get_write_buffer_size() > self._high:
            self._writing_paused = True
            self._protocol.pause_writing()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for d in list_of_data:
            self.write(d)

    def write_eof(self) -> None:
        if self._eof_pending:
            return
        self._eof_pending = True
        self._fill()

    def can_write_eof(self) -> bool:
        return True


_SO_LINGER = (socket.SOL_SOCKET, socket.SO_LINGER)
_TCP_QUICKACK = (socket.IPPROTO_TCP, socket.TCP_QUICKACK)
_LINGER = struct.Struct("ii")  # struct linger {int l_onoff; int l_linger;}


def _linger_in(value: Any) -> float | None:
    """SO_LINGER's ``struct linger`` (bytes, or an (onoff, seconds) pair): the seconds, None
    when off."""
    onoff, secs = _LINGER.unpack(bytes(value)[:8]) if isinstance(value, bytes | bytearray) \
        else value
    return float(secs) if onoff else None


def _linger_out(secs: float | None) -> bytes:
    return _LINGER.pack(0, 0) if secs is None else _LINGER.pack(1, int(secs))


SO_MAX_PACING_RATE = (socket.SOL_SOCKET, 47)  # Linux's number; Python's socket has no name
_NO_RATE = (0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF)
# (level, option) -> (TcpConfig field, from the socket's value, to it)
_TCP_OPTIONS: dict[tuple[int, int], tuple[str, Callable[[Any], Any], Callable[[Any], Any]]] = {
    (socket.IPPROTO_TCP, socket.TCP_NODELAY): ("nodelay", bool, int),
    (socket.IPPROTO_TCP, socket.TCP_CORK): ("cork", bool, int),
    (socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT): ("notsent_lowat", int, int),
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE): ("keepalive", bool, int),
    (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE): ("keepidle", float, int),
    (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL): ("keepintvl", float, int),
    (socket.IPPROTO_TCP, socket.TCP_KEEPCNT): ("keepcnt", int, int),
    (socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT): (  # milliseconds, 0 = none (RFC 5482)
        "user_timeout", lambda ms: ms / 1000 if ms else None,
        lambda s: 0 if s is None else int(s * 1000)),
    (socket.IPPROTO_TCP, socket.TCP_MAXSEG): ("maxseg", lambda v: v or None, lambda v: v or 0),
    # Linux doubles a buffer size set, for its bookkeeping (socket(7)), with a floor (config.py);
    # read back: the buffer as it is now (autotuning moves it until it is set)
    (socket.SOL_SOCKET, socket.SO_RCVBUF): ("recv_buffer", lambda v: so_rcvbuf(int(v)), int),
    (socket.SOL_SOCKET, socket.SO_SNDBUF): ("send_buffer", lambda v: so_sndbuf(int(v)), int),
    (socket.SOL_SOCKET, socket.SO_OOBINLINE): ("oobinline", bool, int),
    _SO_LINGER: ("linger", _linger_in, _linger_out),  # {1, 0}: close() resets (Linux)
    # bytes/s; ~0 (the default) is no cap, any other value turns pacing on (Linux sock_setsockopt)
    SO_MAX_PACING_RATE: ("max_pacing_rate", lambda v: None if int(v) in _NO_RATE else int(v),
                         lambda v: 0xFFFFFFFF if v is None else v),
    # IP_MTU_DISCOVER (stack/pmtudisc.py); IP_TOS / IPV6_TCLASS: the ECN bits stay TCP's (Linux)
    (socket.IPPROTO_IP, IP_MTU_DISCOVER): ("pmtudisc", lambda v: check_mode(int(v)), int),
    (socket.IPPROTO_IP, socket.IP_TOS): ("tos", lambda v: int(v) & 0xFC, int),
    (socket.IPPROTO_IPV6, socket.IPV6_TCLASS): ("tos", lambda v: int(v) & 0xFC, int),
}
_TCP_CONGESTION = (socket.IPPROTO_TCP, socket.TCP_CONGESTION)


def congestion_option(value: str | bytes) -> str:
    """The algorithm a TCP_CONGESTION value names (NUL-padded bytes or a str); unknown:
    OSError ENOENT naming the known ones, as Linux's setsockopt fails."""
    from stacklab.stack.tcp.congestion import available_congestion

    name = value.rstrip(b"\0").decode(errors="replace") if isinstance(value, bytes) else value
    if name not in available_congestion():
        raise OSError(errno.ENOENT, f"unknown congestion control {name!r}; known: "
                                    f"{', '.join(available_congestion())}")
    return name


class TcpSocket:
    """What ``get_extra_info("socket")`` and ``Server.sockets`` give: the socket-shaped face of
    one connection or listener, as ``asyncio.trsock.TransportSocket`` is of a kernel socket.

    ``setsockopt``/``getsockopt`` read and change the connection's :class:`TcpConfig`
    (TCP_NODELAY, TCP_CORK, TCP_NOTSENT_LOWAT, SO_KEEPALIVE, TCP_KEEPIDLE/KEEPINTVL/KEEPCNT,
    TCP_USER_TIMEOUT, TCP_MAXSEG, SO_RCVBUF/SO_SNDBUF, SO_OOBINLINE, SO_LINGER as
    ``struct linger`` bytes: {1, 0} makes ``close()`` a reset; TCP_QUICKACK acts on the
    connection at once, as Linux). ``send(data, MSG_OOB)``,
    ``recv(1, MSG_OOB)`` and :meth:`sockatmark` are the urgent data's (stack/tcp/urgent.py;
    the stream's own bytes go through the transport, which leaves the out-of-band byte out
    unless SO_OOBINLINE). Other options are accepted and read back, as Linux does for those it
    keeps but that change nothing here (SO_REUSEADDR...). There is no kernel descriptor:
    ``fileno()`` is -1, which
    libraries read as "not pollable" (httpcore then treats an idle pooled connection as closed
    and opens a new one)."""

    type = socket.SOCK_STREAM
    proto = socket.IPPROTO_TCP

    def __init__(self, host: DrivenHost, endpoint: Tcb | Listener,
                 layer: TcpLayer | None = None) -> None:
        self._host = host
        self._endpoint = endpoint
        self._layer = layer  # a connection's layer (after a crash, no longer the host's)
        self._other: dict[tuple[int, int], Any] = {}

    @property
    def family(self) -> socket.AddressFamily:
        ep = self._endpoint
        if isinstance(ep, Tcb):
            v6 = len(ep.local_ip) == 16
        else:
            v6 = len(ep.local_ip) == 16 if ep.local_ip else ep.family != 4
        return socket.AF_INET6 if v6 else socket.AF_INET

    def _addr(self, ip: bytes | None, port: int) -> tuple[Any, ...]:
        if self.family == socket.AF_INET6:
            return (ip_str(ip) if ip else "::", port, 0, 0)
        return (ip_str(ip) if ip else "0.0.0.0", port)

    def getsockname(self) -> tuple[Any, ...]:
        ep = self._endpoint
        return self._addr(ep.local_ip, ep.local_port if isinstance(ep, Tcb) else ep.port)

    def getpeername(self) -> tuple[Any, ...]:
        ep = self._endpoint
        if not isinstance(ep, Tcb):
            raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))
        return self._addr(ep.remote_ip, ep.remote_port)

    def fileno(self) -> int:
        return -1

    def gettimeout(self) -> float:
        return 0.0  # non-blocking, as every socket a transport owns

    def setblocking(self, flag: bool) -> None:
        return None

    def setsockopt(self, level: int, option: int, value: Any, optlen: int | None = None) -> None:
        if (level, option) == _TCP_QUICKACK and isinstance(self._endpoint, Tcb):
            if isinstance(value, bytes):
                value = int.from_bytes(value[:4], "little")
            self._endpoint.set_quickack(bool(value))  # a one-off, not a config field
            if self._layer is not None:
                self._layer.kick(self._endpoint)
            return
        known = _TCP_OPTIONS.get((level, option))
        if (level, option) == _TCP_CONGESTION:  # switches the algorithm of an open connection
            known = ("congestion", congestion_option, str)
        elif known is None:
            self._other[(level, option)] = value
            return
        name, parse, _ = known
        if isinstance(value, bytes) and (level, option) != _SO_LINGER \
                and name != "congestion":
            value = int.from_bytes(value[:8 if len(value) >= 8 else 4], "little")
        ep = self._endpoint
        config = ep.config.replace(**{name: parse(value)})
        if isinstance(ep, Tcb):
            ep.set_config(config, self._host.now(), (name,))
            if self._layer is not None:
                self._layer.kick(ep)  # the timers moved: the layer re-reads them at its poll
        else:
            ep.config = config

    def getsockopt(self, level: int, option: int, buflen: int | None = None) -> Any:
        known = _TCP_OPTIONS.get((level, option))
        if known is not None:
            name, _, shown = known
            if (level, option) == (socket.SOL_SOCKET, socket.SO_RCVBUF):
                value = self._buffers()[0]
            elif (level, option) == (socket.SOL_SOCKET, socket.SO_SNDBUF):
                value = self._buffers()[1]
            else:
                value = shown(getattr(self._endpoint.config, name))
        elif (level, option) == _TCP_QUICKACK and isinstance(self._endpoint, Tcb):
            value = int(self._endpoint.quickack)
        elif (level, option) == _TCP_CONGESTION:  # the name, NUL-padded (TCP_CA_NAME_MAX 16)
            return self._endpoint.config.congestion.encode().ljust(buflen or 16, b"\0")[
                :buflen or 16]
        elif (level, option) == (socket.SOL_SOCKET, socket.SO_TYPE):
            value = socket.SOCK_STREAM
        elif (level, option) == (socket.SOL_SOCKET, socket.SO_ERROR):
            value = 0
        else:
            value = self._other.get((level, option), 0)
        if buflen is not None and isinstance(value, int):
            return value.to_bytes(buflen, "little")
        if buflen is not None and isinstance(value, bytes):
            return value[:buflen]
        return value

    # -- urgent data (stack/tcp/urgent.py) -----------------------------------------------------
    def _tcb(self) -> Tcb:
        ep = self._endpoint
        if not isinstance(ep, Tcb):
            raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))
        return ep

    def send(self, data: bytes | bytearray | memoryview, flags: int = 0) -> int:
        """``send(data, MSG_OOB)``: urgent data, its last byte the out-of-band one (the stream's
        ordinary writes go through the transport). Queued at once, all of it, or BlockingIOError
        (EAGAIN) while the transport still holds unsent writes or the send buffer lacks room."""
        if not flags & socket.MSG_OOB:
            raise OSError(errno.EOPNOTSUPP, "only MSG_OOB: write through the transport")
        tcb = self._tcb()
        transport = tcb.user
        if (isinstance(transport, TcpTransport) and transport._pending) \
                or tcb.send_space < len(data):
            raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
        try:
            n = tcb.send(data, oob=True)
        except ConnectionError:
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE)) from None
        if self._layer is not None:
            self._layer.kick(tcb)
        return n

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """``recv(n, MSG_OOB)`` (with MSG_PEEK too): the out-of-band byte, errors as Linux
        (EINVAL, EAGAIN); the stream's bytes come through the transport."""
        if not flags & socket.MSG_OOB:
            raise OSError(errno.EOPNOTSUPP, "only MSG_OOB: read through the transport")
        return urgent.recv_oob(self._tcb(), bool(flags & socket.MSG_PEEK))[:bufsize]

    def sockatmark(self) -> bool:
        """SIOCATMARK: the next byte the TCB hands out is the urgent mark."""
        return urgent.at_mark(self._tcb())

    def _buffers(self) -> tuple[int, int]:
        """The receive and send buffers (bytes) as they are now, or will start."""
        ep = self._endpoint
        if isinstance(ep, Tcb):
            return ep.recvbuf.capacity, ep.sendbuf.capacity
        return initial_recv_buffer(ep.config), unconnected_send_buffer(ep.config)

    def __repr__(self) -> str:
        peer = ""
        if isinstance(self._endpoint, Tcb):
            peer = f", raddr={self.getpeername()}"
        return (f"<stacklab TcpSocket host={self._host.name} family={self.family.name} "
                f"laddr={self.getsockname()}{peer}>")


class TcpServer(asyncio.AbstractServer):
    """What ``start_server`` / ``create_server`` return (mirrors ``asyncio.Server``)."""

    def __init__(self, host: DrivenHost, listeners: list[Listener],
                 loop: asyncio.AbstractEventLoop) -> None:
        self._host = host
        self._listeners = listeners
        self._loop = loop
        self._closed = loop.create_future()
        self._clients: dict[TcpTransport, None] = {}  # accepted and not lost, oldest first

    @property
    def transports(self) -> list[TcpTransport]:
        """The accepted connections that are still open (each leaves when it is lost)."""
        return list(self._clients)

    @property
    def sockets(self) -> list[TcpSocket]:
        """One socket-like object per listener, as ``asyncio.Server.sockets``."""
        return [TcpSocket(self._host, lst) for lst in self._listeners]

    @property
    def port(self) -> int:
        return self._listeners[0].port

    def close(self) -> None:
        for lst in self._listeners:
            lst.close()
        if not self._closed.done():
            self._closed.set_result(None)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return not self._closed.done()

    async def start_serving(self) -> None:
        return None

    async def serve_forever(self) -> None:
        await asyncio.shield(self._closed)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    async def __aenter__(self) -> TcpServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()


# -- entry points (the methods of stacklab.api.host.Host call these) ----------------------------


def _resolve(host: DrivenHost, addr: str | bytes, family: int | None = None) -> bytes:
    if isinstance(addr, bytes):
        return ip_bytes(addr)
    return ip_bytes(host.resolve(addr, family) if family else host.resolve(addr))


async def create_connection(host: DrivenHost,
                            protocol_factory: Callable[[], asyncio.BaseProtocol],
                            addr: str | bytes, port: int, *, config: TcpConfig | None = None,
                            nodelay: bool | None = None, local_addr: tuple[str, int] | None = None,
                            timeout: float | None = None, family: int | None = None,
                            congestion: str | None = None, keepalive: bool | None = None,
                            user_timeout: float | None = None, fastopen: bool = False,
                            **_ignored: Any) -> tuple[TcpTransport, asyncio.BaseProtocol]:
    """``fastopen``: TCP Fast Open (RFC 7413) as Linux's TCP_FASTOPEN_CONNECT: with a cookie
    cached for the peer the connection is made at once and the first write goes in the SYN;
    without one, a normal handshake asks for a cookie (``net.ipv4.tcp_fastopen`` bit 0x1)."""
    loop = asyncio.get_running_loop()
    layer = host.tcp
    cfg = _config(layer, config, nodelay, connect_timeout=timeout, congestion=congestion,
                  keepalive=keepalive, user_timeout=user_timeout,
                  fastopen_connect=fastopen or None)
    dst = _resolve(host, addr, family_of(family) if family else None)
    protocol = protocol_factory()
    transport = TcpTransport(host, None, protocol, loop)
    transport._connected = loop.create_future()
    _pull_events(host, layer)
    local_ip = ip_bytes(local_addr[0]) if local_addr and local_addr[0] else None
    local_port = local_addr[1] if local_addr else 0
    tcb = layer.connect(dst, int(port), host.now(), local_ip=local_ip,
                        local_port=local_port, config=cfg, user=transport)
    transport._attach(tcb)
    try:
        if tcb.tfo is None or not tcb.tfo.deferred:  # a TFO SYN waits for the first write
            await transport._connected
    except BaseException:
        if tcb.state is not CLOSED:
            tcb.abort(host.now())
            layer.flush(tcb, host.now())
        raise
    transport._connected = None
    tcb.share_equal_ints()  # (the handshake is over: memory per idle connection, tcbvars.py)
    protocol.connection_made(transport)
    # data that came with or right after the handshake
    if tcb.readable or tcb.at_eof:
        transport._deliver()
    return transport, protocol


class _StreamProtocol(asyncio.StreamReaderProtocol):
    """asyncio's StreamReaderProtocol (what open_connection and start_server put between the
    transport and the reader and writer), lighter while a connection is idle (one per connection
    end, issue 23 item 4): no deque of ``drain()`` waiters until writing is first paused (an
    empty deque is 0.6 KiB), no future for ``wait_closed()`` until it is asked for or the
    connection is lost (0.14 KiB), the writer's done future one per host (``_share_done``),
    and the reader held by a plain reference until the connection is lost, not a weak one
    (0.08 KiB: the transport lives as long as the connection, the reader as long as the
    transport then; the writer keeps it too). The same methods, the same behaviour."""

    def __init__(self, stream_reader: asyncio.StreamReader,
                 client_connected_cb: Any = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(stream_reader, client_connected_cb, loop)
        self._drain_waiters: Any = _NO_WAITERS  # a deque from the first pause_writing() on
        self._closed: asyncio.Future[None] | None = None  # made by _close_waiter
        self._reader: asyncio.StreamReader | None = stream_reader
        self._stream_reader_wr = None  # (asyncio's weak reference: _stream_reader instead)

    @property
    def _stream_reader(self) -> asyncio.StreamReader | None:
        return self._reader

    def _close_waiter(self) -> asyncio.Future[None]:
        if self._closed is None:
            self._closed = self._loop.create_future()  # type: ignore[attr-defined]
        return self._closed

    def pause_writing(self) -> None:
        if self._drain_waiters is _NO_WAITERS:  # only a paused writer waits in drain()
            self._drain_waiters = collections.deque()
        super().pause_writing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        writer = self._stream_writer  # type: ignore[attr-defined]
        if writer is not None and isinstance(transport, TcpTransport):  # start_server's
            _share_done(writer, transport._host)

    def connection_lost(self, exc: Exception | None) -> None:
        self._close_waiter()
        super().connection_lost(exc)
        self._reader = None  # as asyncio lets go of its reference

    def _get_close_waiter(self, stream: asyncio.StreamWriter) -> asyncio.Future[None]:
        return self._close_waiter()

    def __del__(self) -> None:
        if self._closed is not None:
            super().__del__()


_NO_WAITERS = ()


def _share_done(writer: asyncio.StreamWriter, host: DrivenHost) -> None:
    """The done future each StreamWriter keeps (``_complete_fut``; asyncio makes one per
    writer): the host's driver's one instead, when it is of the writer's loop."""
    fut = host.driving().done_future()
    if fut.get_loop() is writer._loop:  # type: ignore[attr-defined]
        writer._complete_fut = fut  # type: ignore[attr-defined]


class _StreamReader(asyncio.StreamReader):
    """asyncio's StreamReader, its buffer made at its first use: an idle connection end has
    none (an empty bytearray is 56 bytes, issue 23 item 4). The same methods, the same
    behaviour: asyncio's code finds ``_buffer`` as an attribute from then on."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        del self._buffer

    def __getattr__(self, name: str) -> Any:  # (only for an attribute that is not set)
        if name == "_buffer":
            self._buffer = buffer = bytearray()
            return buffer
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


async def open_connection(host: DrivenHost, addr: str | bytes, port: int, *,
                          limit: int = _DEFAULT_LIMIT,
                          **kwargs: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = _StreamReader(limit, loop)
    protocol = _StreamProtocol(reader, loop=loop)
    transport, _ = await create_connection(host, lambda: protocol, addr, port, **kwargs)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    _share_done(writer, host)
    return reader, writer


def _families(host: DrivenHost, bind: str | None,
              v6only: bool) -> list[tuple[bytes | None, int | None]]:
    """The listener of a bind address: no address and ``::`` are both families, as a Linux
    socket on ``::`` without IPV6_V6ONLY (RFC 3493 §5.3) — IPv6 alone with ``v6only``."""
    if bind is None or bind in ("", "::"):
        return [(None, 6 if v6only else None)]
    if bind == "0.0.0.0":
        return [(None, 4)]
    return [(ip_bytes(host.resolve(bind)), None)]


async def create_server(host: DrivenHost,
                        protocol_factory: Callable[[], asyncio.BaseProtocol],
                        bind: str | None = None, port: int = 0, *,
                        config: TcpConfig | None = None, nodelay: bool | None = None,
                        backlog: int = 128, congestion: str | None = None,
                        keepalive: bool | None = None, user_timeout: float | None = None,
                        v6only: bool = False, fastopen: int = 0,
                        **_ignored: Any) -> TcpServer:
    """``fastopen``: TCP Fast Open's queue length, as Linux's setsockopt(TCP_FASTOPEN): SYNs
    with a valid cookie deliver their data at once (``net.ipv4.tcp_fastopen`` bit 0x2 on)."""
    loop = asyncio.get_running_loop()
    layer = host.tcp
    cfg = _config(layer, config, nodelay, congestion=congestion, keepalive=keepalive,
                  user_timeout=user_timeout, fastopen_qlen=fastopen or None)
    listeners: list[Listener] = []
    server: TcpServer | None = None

    def on_established(tcb: Tcb) -> None:
        tcb.share_equal_ints()  # (the handshake is over: memory per idle connection, tcbvars.py)
        protocol = protocol_factory()
        transport = TcpTransport(host, None, protocol, loop)
        transport._attach(tcb)
        if server is not None:
            server._clients[transport] = None
            transport._server = server
        protocol.connection_made(transport)
        if tcb.readable or tcb.at_eof:
            transport._deliver()

    _pull_events(host, layer)
    for local_ip, family in _families(host, bind, v6only):
        listeners.append(layer.listen(int(port), on_established, local_ip=local_ip,
                                      family=family, config=cfg, backlog=backlog))
        port = listeners[0].port
    server = TcpServer(host, listeners, loop)
    return server


async def start_server(host: DrivenHost,
                       client_connected_cb: Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                                     Awaitable[None] | None],
                       port: int = 0, host_addr: str | None = None, *,
                       limit: int = _DEFAULT_LIMIT, **kwargs: Any) -> TcpServer:
    loop = asyncio.get_running_loop()

    def factory() -> asyncio.StreamReaderProtocol:
        reader = _StreamReader(limit, loop)
        return _StreamProtocol(reader, client_connected_cb, loop=loop)

    return await create_server(host, factory, host_addr, port, **kwargs)


def family_of(family: int) -> int:
    return 6 if family in (6, socket.AF_INET6) else 4
