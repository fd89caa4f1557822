"""UDP for applications, asyncio style, over a Host's sans-IO :class:`~stacklab.stack.udp.UdpPcb`.

Two shapes:

* ``transport, protocol = await host.create_datagram_endpoint(factory, local_addr=...,
  remote_addr=...)`` — mirrors ``loop.create_datagram_endpoint``: the protocol gets
  ``connection_made``, ``datagram_received(data, (host, port))``, ``error_received(exc)``
  (ConnectionRefusedError after a Port Unreachable on a connected endpoint;
  :class:`~stacklab.stack.udp.PacketTooBigError` — an OSError EMSGSIZE with ``.mtu`` — when a DF
  datagram does not fit) and ``connection_lost``;
* ``sock = host.udp_socket(4)``; ``sock.bind((addr, port))``, ``sock.connect((addr, port))``,
  ``await sock.sendto(data, addr)`` / ``await sock.send(data)``,
  ``await sock.recvfrom()`` / ``await sock.recv()``. A pending error (from ICMP) is raised by
  the next call, as ``SO_ERROR`` is on a connected socket.

Addresses in and out are text (``("10.0.2.2", 53)``); node names resolve through ``host.hosts``.

An IPv6 endpoint bound to the wildcard (``"::"``) and not connected is dual-stack, as a Linux
socket on ``::`` with IPV6_V6ONLY off (RFC 3493 §5.3): an IPv4 PCB on the same port, its twin,
receives the IPv4 datagrams and sends to IPv4 addresses (given plain or v4-mapped, reported
plain, as the TCP listeners report their IPv4 peers); ``v6only=True`` opens IPv6 alone.

Multicast: ``join_group("239.1.2.3", iface=None)`` / ``leave_group`` on both shapes
(``IP_ADD_MEMBERSHIP`` / ``IPV6_JOIN_GROUP``; ``iface`` an interface name or index, None: the
route's), ``multicast_ttl`` (``IP_MULTICAST_TTL`` / ``IPV6_MULTICAST_HOPS``, default 1) and
``multicast_if`` (``IP_MULTICAST_IF``); see :mod:`stacklab.stack.udp`.

Datagram PLPMTUD (RFC 8899) on a connected :class:`UdpSocket`: ``enable_plpmtud()``, then
``await send_probe(prefix)`` (the size sent, or None), ``probe_acked(size)`` when the peer
confirmed it, ``plpmtu`` and ``max_payload()``; see :mod:`stacklab.stack.plpmtu`.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import os
from collections.abc import Callable
from typing import Any

from stacklab.stack.udp import UdpPcb
from stacklab.wire.addr import ip_bytes, ip_str

from .driver import DrivenHost


def _family_of(host: DrivenHost, addr: tuple[str, int] | None, family: int) -> int:
    if family in (4, 6):
        return family
    if addr is not None and addr[0]:
        text = host.resolve(addr[0])
        return 6 if ":" in text else 4
    return 4


def _to_bytes(host: DrivenHost, addr: tuple[str, int], family: int) -> tuple[bytes, int]:
    name, port = addr[0], int(addr[1])
    return ip_bytes(host.resolve(name, family)), port


_V4_MAPPED = bytes(10) + b"\xff\xff"


def _twin_of(host: DrivenHost, pcb: UdpPcb, v6only: bool) -> UdpPcb | None:
    """The IPv4 twin of a bound wildcard IPv6 PCB (None when it gets none, see the module
    docstring): bound to the same port, with the same options and listener."""
    if pcb.family != 6 or pcb.local_addr is not None or pcb.remote is not None or v6only:
        return None
    twin = host.udp.socket(4)
    twin.df, twin.ttl, twin.reuse, twin.listener = pcb.df, pcb.ttl, pcb.reuse, pcb.listener
    try:
        twin.bind(None, pcb.local_port or 0)
    except OSError:
        pcb.close()  # Linux's bind fails for the whole socket when the IPv4 port is taken
        raise
    return twin


def _route(host: DrivenHost, pcb: UdpPcb, twin: UdpPcb | None,
           addr: tuple[str, int]) -> tuple[UdpPcb, tuple[bytes, int]]:
    """The PCB a datagram to ``addr`` leaves by, and the destination in its family."""
    if twin is not None:
        dst = ip_bytes(host.resolve(addr[0]))
        if len(dst) == 4:
            return twin, (dst, int(addr[1]))
        if dst.startswith(_V4_MAPPED):
            return twin, (dst[12:], int(addr[1]))
        return pcb, (dst, int(addr[1]))
    return pcb, _to_bytes(host, addr, pcb.family)


def _family_arg(family: int) -> int:
    import socket

    if family == socket.AF_INET:
        return 4
    if family == socket.AF_INET6:
        return 6
    return family


def _iface_index(host: DrivenHost, iface: str | int | None) -> int | None:
    if iface is None or isinstance(iface, int):
        return iface
    for i in host.interfaces:
        if i.name == iface:
            return i.index
    raise OSError(errno.ENODEV, f"no interface {iface!r}")


def _membership(host: DrivenHost, pcb: UdpPcb, twin: UdpPcb | None, group: str,
                iface: str | int | None, join: bool) -> None:
    """Join or leave ``group`` on the PCB of its family (a dual-stack socket's twin for v4)."""
    g = ip_bytes(group)
    target = twin if twin is not None and len(g) == 4 else pcb
    if len(g) != (4 if target.family == 4 else 16):
        raise OSError(errno.EINVAL, "group family does not match the socket")
    (target.join_group if join else target.leave_group)(g, _iface_index(host, iface),
                                                         host.now())
    host.request_wake()


class DatagramTransport(asyncio.DatagramTransport):
    def __init__(self, host: DrivenHost, pcb: UdpPcb, protocol: asyncio.DatagramProtocol,
                 twin: UdpPcb | None = None) -> None:
        super().__init__()
        self._host = host
        self._pcb = pcb
        self._twin = twin  # the IPv4 half of a dual-stack endpoint
        self._protocol = protocol
        self._closing = False
        pcb.listener = self
        if twin is not None:
            twin.listener = self

    # listener side (called by the host, synchronously)
    def datagram_received(self, data: bytes, addr: tuple[bytes, int], now: float) -> None:
        self._protocol.datagram_received(data, (ip_str(addr[0]), addr[1]))

    def error_received(self, exc: OSError, now: float) -> None:
        self._protocol.error_received(exc)

    # transport side
    def sendto(self, data: Any, addr: Any = None) -> None:
        if self._closing:
            raise OSError(errno.EBADF, "transport is closing")
        pcb, dst = (self._pcb, None) if addr is None else _route(self._host, self._pcb,
                                                                   self._twin, addr)
        try:
            pcb.sendto(bytes(data), dst, self._host.now())
        except OSError as exc:
            # as asyncio's selector transport does: send errors go to the protocol
            self._protocol.error_received(exc)
        self._host.request_wake()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        pcb = self._pcb
        if name == "sockname":
            a, p = pcb.sockname()
            return (ip_str(a), p)
        if name == "peername":
            return (ip_str(pcb.remote[0]), pcb.remote[1]) if pcb.remote else default
        if name == "socket":
            return pcb
        if name == "mtu":  # getsockopt(IP_MTU): the path MTU to the connected peer
            return pcb.path_mtu() if pcb.remote else default
        return default

    def set_df(self, df: bool) -> None:
        self._pcb.df = df
        if self._twin is not None:
            self._twin.df = df

    def join_group(self, group: str, iface: str | int | None = None) -> None:
        _membership(self._host, self._pcb, self._twin, group, iface, True)

    def leave_group(self, group: str, iface: str | int | None = None) -> None:
        _membership(self._host, self._pcb, self._twin, group, iface, False)

    def set_multicast(self, *, ttl: int | None = None, iface: str | int | None = None) -> None:
        """``IP_MULTICAST_TTL`` / ``IP_MULTICAST_IF`` (and their IPv6 twins)."""
        for pcb in (self._pcb, self._twin):
            if pcb is None:
                continue
            if ttl is not None:
                pcb.mcast_ttl = ttl
            if iface is not None:
                pcb.mcast_if = _iface_index(self._host, iface)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._pcb.close(self._host.now())
        if self._twin is not None:
            self._twin.close(self._host.now())
        self._host.loop.call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def get_write_buffer_size(self) -> int:
        return 0


async def create_datagram_endpoint(host: DrivenHost, protocol_factory: Callable[[], Any],
                                   local_addr: tuple[str, int] | None = None,
                                   remote_addr: tuple[str, int] | None = None, *,
                                   family: int = 0, df: bool = False, ttl: int | None = None,
                                   reuse_port: bool | None = None, v6only: bool = False,
                                   **_ignored: Any
                                   ) -> tuple[DatagramTransport, Any]:
    fam = _family_arg(family)
    fam = _family_of(host, remote_addr or local_addr, fam)
    pcb = host.udp.socket(fam)
    pcb.df = df
    pcb.ttl = ttl
    if reuse_port:
        pcb.reuse = True
    if local_addr is not None:
        laddr = ip_bytes(host.resolve(local_addr[0], fam)) if local_addr[0] else None
        pcb.bind(laddr, int(local_addr[1]))
    if remote_addr is not None:
        pcb.connect(*_to_bytes(host, remote_addr, fam))
    if pcb.local_port is None:
        pcb.bind(None, 0)
    twin = _twin_of(host, pcb, v6only) if local_addr is not None else None
    protocol = protocol_factory()
    transport = DatagramTransport(host, pcb, protocol, twin)
    protocol.connection_made(transport)
    return transport, protocol


class UdpSocket:
    """A small coroutine UDP socket (see the module docstring)."""

    def __init__(self, host: DrivenHost, family: int = 4, *, df: bool = False,
                 ttl: int | None = None, max_queue: int = 1024, v6only: bool = False) -> None:
        self.host = host
        self.family = _family_arg(family)
        self.v6only = v6only  # IPV6_V6ONLY: see the module docstring
        self._pcb = host.udp.socket(self.family)
        self._twin: UdpPcb | None = None  # the IPv4 half of a dual-stack socket
        self._pcb.df = df
        self._pcb.ttl = ttl
        self._pcb.listener = self
        self._queue: collections.deque[tuple[bytes, tuple[str, int]]] = collections.deque()
        self._max_queue = max_queue
        self._waiter: asyncio.Future[None] | None = None
        self._error: OSError | None = None
        self.dropped = 0

    # options
    @property
    def df(self) -> bool:
        return self._pcb.df

    @df.setter
    def df(self, value: bool) -> None:
        for pcb in self._pcbs():
            pcb.df = value

    @property
    def ttl(self) -> int | None:
        return self._pcb.ttl

    @ttl.setter
    def ttl(self, value: int | None) -> None:
        for pcb in self._pcbs():
            pcb.ttl = value

    @property
    def multicast_ttl(self) -> int:
        """``IP_MULTICAST_TTL`` / ``IPV6_MULTICAST_HOPS`` (default 1)."""
        return self._pcb.mcast_ttl

    @multicast_ttl.setter
    def multicast_ttl(self, value: int) -> None:
        for pcb in self._pcbs():
            pcb.mcast_ttl = value

    @property
    def multicast_if(self) -> str | None:
        """``IP_MULTICAST_IF``: the interface (name) multicast leaves by, None: the route's."""
        i = self._pcb.mcast_if
        return None if i is None else self.host.interfaces[i].name

    @multicast_if.setter
    def multicast_if(self, value: str | int | None) -> None:
        for pcb in self._pcbs():
            pcb.mcast_if = _iface_index(self.host, value)

    # DPLPMTUD (RFC 8899)
    def enable_plpmtud(self) -> None:
        """Datagram PLPMTUD on this connected socket's path (sets DF)."""
        self._pcb.enable_plpmtud()

    @property
    def plpmtu(self) -> int | None:
        """The PLPMTU (IP packet bytes) DPLPMTUD has confirmed, None when not enabled."""
        pl = self._pcb.plpmtud
        return pl.plpmtu if pl is not None else None

    @property
    def plpmtud_state(self) -> str | None:
        pl = self._pcb.plpmtud
        return pl.state.value if pl is not None else None

    async def send_probe(self, prefix: bytes = b"") -> int | None:
        """Send the probe the search wants now (its IP size), or None when none is wanted."""
        self._raise_pending()
        size = self._pcb.send_probe(self.host.now(), prefix)
        self.host.request_wake()
        return size

    def probe_acked(self, size: int) -> bool:
        """The peer confirmed the probe of ``size`` bytes; True when the PLPMTU changed."""
        pl = self._pcb.plpmtud
        if pl is None:
            raise OSError(errno.EINVAL, "DPLPMTUD is not enabled on this socket")
        return pl.probe_acked(size, self.host.now())

    def join_group(self, group: str, iface: str | int | None = None) -> None:
        """``IP_ADD_MEMBERSHIP`` / ``IPV6_JOIN_GROUP``."""
        _membership(self.host, self._pcb, self._twin, group, iface, True)

    def leave_group(self, group: str, iface: str | int | None = None) -> None:
        """``IP_DROP_MEMBERSHIP`` / ``IPV6_LEAVE_GROUP``."""
        _membership(self.host, self._pcb, self._twin, group, iface, False)

    def _pcbs(self) -> tuple[UdpPcb, ...]:
        return (self._pcb,) if self._twin is None else (self._pcb, self._twin)

    @property
    def mtu(self) -> int:
        """``getsockopt(IP_MTU)`` / ``IPV6_MTU``: the path MTU to the connected peer, as the
        host's PMTU cache knows it (OSError ENOTCONN when not connected)."""
        return self._pcb.path_mtu()

    def max_payload(self, addr: tuple[str, int] | None = None) -> int:
        """The largest datagram that leaves without fragmentation (path MTU − IP − UDP)."""
        if addr is None:
            return self._pcb.max_payload(None)
        pcb, dst = _route(self.host, self._pcb, self._twin, addr)
        return pcb.max_payload(dst[0])

    # listener side
    def datagram_received(self, data: bytes, addr: tuple[bytes, int], now: float) -> None:
        if len(self._queue) >= self._max_queue:
            self.dropped += 1
            self.host.counters["drop.udp.rcvbuf_full"] += 1
            return
        self._queue.append((data, (ip_str(addr[0]), addr[1])))
        self._wakeup()

    def error_received(self, exc: OSError, now: float) -> None:
        self._error = exc
        self._wakeup()

    def _wakeup(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _raise_pending(self) -> None:
        exc = self._error
        if exc is not None:
            self._error = None
            raise exc

    # control
    def bind(self, addr: tuple[str, int] = ("", 0)) -> None:
        a = ip_bytes(self.host.resolve(addr[0], self.family)) if addr[0] else None
        self._pcb.bind(a, int(addr[1]))
        self._twin = _twin_of(self.host, self._pcb, self.v6only)

    def connect(self, addr: tuple[str, int]) -> None:
        pcb, dst = _route(self.host, self._pcb, self._twin, addr)
        if self._twin is not None:  # connected, the socket keeps the half of its peer's family
            (self._twin if pcb is self._pcb else self._pcb).close()
            self._pcb, self._twin = pcb, None
        pcb.connect(*dst)

    def getsockname(self) -> tuple[str, int]:
        a, p = self._pcb.sockname()
        return ip_str(a), p

    def getpeername(self) -> tuple[str, int]:
        if self._pcb.remote is None:
            raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))
        return ip_str(self._pcb.remote[0]), self._pcb.remote[1]

    def close(self) -> None:
        for pcb in self._pcbs():
            pcb.close(self.host.now())
        self._error = OSError(errno.EBADF, "socket is closed")
        self._wakeup()

    # data
    async def sendto(self, data: bytes | bytearray | memoryview, addr: tuple[str, int]) -> int:
        self._raise_pending()
        pcb, dst = _route(self.host, self._pcb, self._twin, addr)
        pcb.sendto(data, dst, self.host.now())
        self.host.request_wake()
        return len(data)

    async def send(self, data: bytes | bytearray | memoryview) -> int:
        self._raise_pending()
        self._pcb.sendto(data, None, self.host.now())
        self.host.request_wake()
        return len(data)

    async def recvfrom(self) -> tuple[bytes, tuple[str, int]]:
        while True:
            if self._queue:
                return self._queue.popleft()
            self._raise_pending()
            if self._pcb.closed:
                raise OSError(errno.EBADF, "socket is closed")
            self._waiter = self.host.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def recv(self) -> bytes:
        data, _ = await self.recvfrom()
        return data

    async def __aenter__(self) -> UdpSocket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
