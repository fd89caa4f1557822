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


def _family_arg(family: int) -> int:
    import socket

    if family == socket.AF_INET:
        return 4
    if family == socket.AF_INET6:
        return 6
    return family


class DatagramTransport(asyncio.DatagramTransport):
    def __init__(self, host: DrivenHost, pcb: UdpPcb, protocol: asyncio.DatagramProtocol) -> None:
        super().__init__()
        self._host = host
        self._pcb = pcb
        self._protocol = protocol
        self._closing = False
        pcb.listener = self

    # listener side (called by the host, synchronously)
    def datagram_received(self, data: bytes, addr: tuple[bytes, int], now: float) -> None:
        self._protocol.datagram_received(data, (ip_str(addr[0]), addr[1]))

    def error_received(self, exc: OSError, now: float) -> None:
        self._protocol.error_received(exc)

    # transport side
    def sendto(self, data: Any, addr: Any = None) -> None:
        if self._closing:
            raise OSError(errno.EBADF, "transport is closing")
        dst = _to_bytes(self._host, addr, self._pcb.family) if addr is not None else None
        try:
            self._pcb.sendto(bytes(data), dst, self._host.now())
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

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._pcb.close()
        self._host.loop.call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def get_write_buffer_size(self) -> int:
        return 0


async def create_datagram_endpoint(host: DrivenHost, protocol_factory: Callable[[], Any],
                                   local_addr: tuple[str, int] | None = None,
                                   remote_addr: tuple[str, int] | None = None, *,
                                   family: int = 0, df: bool = False, ttl: int | None = None,
                                   reuse_port: bool | None = None, **_ignored: Any
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
    protocol = protocol_factory()
    transport = DatagramTransport(host, pcb, protocol)
    protocol.connection_made(transport)
    return transport, protocol


class UdpSocket:
    """A small coroutine UDP socket (see the module docstring)."""

    def __init__(self, host: DrivenHost, family: int = 4, *, df: bool = False,
                 ttl: int | None = None, max_queue: int = 1024) -> None:
        self.host = host
        self.family = _family_arg(family)
        self._pcb = host.udp.socket(self.family)
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
        self._pcb.df = value

    @property
    def ttl(self) -> int | None:
        return self._pcb.ttl

    @ttl.setter
    def ttl(self, value: int | None) -> None:
        self._pcb.ttl = value

    @property
    def mtu(self) -> int:
        """``getsockopt(IP_MTU)`` / ``IPV6_MTU``: the path MTU to the connected peer, as the
        host's PMTU cache knows it (OSError ENOTCONN when not connected)."""
        return self._pcb.path_mtu()

    def max_payload(self, addr: tuple[str, int] | None = None) -> int:
        """The largest datagram that leaves without fragmentation (path MTU − IP − UDP)."""
        dst = _to_bytes(self.host, addr, self.family)[0] if addr is not None else None
        return self._pcb.max_payload(dst)

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

    def connect(self, addr: tuple[str, int]) -> None:
        self._pcb.connect(*_to_bytes(self.host, addr, self.family))

    def getsockname(self) -> tuple[str, int]:
        a, p = self._pcb.sockname()
        return ip_str(a), p

    def getpeername(self) -> tuple[str, int]:
        if self._pcb.remote is None:
            raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))
        return ip_str(self._pcb.remote[0]), self._pcb.remote[1]

    def close(self) -> None:
        self._pcb.close()
        self._error = OSError(errno.EBADF, "socket is closed")
        self._wakeup()

    # data
    async def sendto(self, data: bytes | bytearray | memoryview, addr: tuple[str, int]) -> int:
        self._raise_pending()
        self._pcb.sendto(data, _to_bytes(self.host, addr, self.family), self.host.now())
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
