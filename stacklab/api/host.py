"""The application face of a host: asyncio-style TCP and UDP, ping and traceroute.

:class:`Host` and :class:`Router` are the sans-IO :class:`stacklab.stack.host.Host` and
:class:`stacklab.stack.router.Router` plus the coroutines applications call, the way aioquic's
``asyncio/`` package sits on its sans-IO connection. ``Network.add_host``/``add_router`` and the
TAP command build these; the sans-IO classes themselves know nothing of asyncio::

    task = host.spawn(main())                                    # api/spawn.py: unmodified
                                                                 # asyncio code on this host
    reader, writer = await host.open_connection("b", 7)          # api/streams.py
    server = await host.start_server(handle, 7)
    transport, protocol = await host.create_datagram_endpoint(factory, local_addr=("", 53))
    result = await host.ping("b", count=3)                       # api/tools.py
    body = await host.run_blocking(fetch, "http://b/")            # api/blocking.py

Such a host satisfies the :class:`stacklab.apps.common.Net` seam, so every application in
:mod:`stacklab.apps` runs on it. Its clock is its driver's
(:class:`~stacklab.api.driver.DrivenHost`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from stacklab.errors import StacklabError
from stacklab.stack.router import Router as _SansIoRouter

from . import blocking, dns, spawn, streams, tools, udp
from .driver import DrivenHost

__all__ = ["Host", "HostStateError", "Router"]

_T = TypeVar("_T")


class HostStateError(StacklabError, RuntimeError):
    """``crash()`` of a crashed host, ``restart()`` of a running one."""


class Host(DrivenHost):
    """A host applications can use (see the module docstring)."""

    # -- programs (api/spawn.py) -----------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, _T], *, name: str | None = None
              ) -> asyncio.Task[_T]:
        """Run ``coro`` on this host: its network calls (``asyncio.open_connection``,
        ``loop.create_connection``... and so the libraries on top) and those of every task it
        creates go through this host's stack."""
        return spawn.spawn(self, coro, name=name)

    # -- faults ----------------------------------------------------------------------------------
    @property
    def crashed(self) -> bool:
        return not self.driving().powered

    def crash(self) -> None:
        """The machine stops at once: its programs are cancelled, every connection, listener
        and UDP socket vanishes with nothing sent (no FIN, no RST), frames to it are dropped.
        Peers learn it from their timeouts, or from the RSTs it answers after
        :meth:`restart`."""
        driver = self.driving()
        if not driver.powered:
            raise HostStateError(f"host {self.name} has already crashed")
        driver.power_off()
        programs = list(self.programs)
        self.programs.clear()
        for task in programs:
            task.cancel()
        self.reset_transports()

    def restart(self) -> None:
        """Boot again after :meth:`crash`: same interfaces, addresses and routes, a fresh
        TCP and UDP; programs are spawned anew by the caller."""
        driver = self.driving()
        if driver.powered:
            raise HostStateError(f"host {self.name} is running: crash() it before restart()")
        driver.power_on()

    # -- UDP (api/udp.py) ------------------------------------------------------------------------
    async def create_datagram_endpoint(self, protocol_factory: Callable[[], Any],
                                       local_addr: tuple[str, int] | None = None,
                                       remote_addr: tuple[str, int] | None = None,
                                       **kwargs: Any) -> tuple[udp.DatagramTransport, Any]:
        """As ``loop.create_datagram_endpoint``."""
        return await udp.create_datagram_endpoint(self, protocol_factory, local_addr=local_addr,
                                                  remote_addr=remote_addr, **kwargs)

    def udp_socket(self, family: int = 4, **kwargs: Any) -> udp.UdpSocket:
        """A coroutine UDP socket (``bind``, ``connect``, ``await sendto``/``recvfrom``)."""
        return udp.UdpSocket(self, family, **kwargs)

    # -- TCP (api/streams.py) --------------------------------------------------------------------
    async def open_connection(self, addr: str, port: int, **kwargs: Any
                              ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """``reader, writer`` over our TCP, as ``asyncio.open_connection``."""
        return await streams.open_connection(self, addr, port, **kwargs)

    async def start_server(self, client_connected_cb: Callable[..., Awaitable[None] | None],
                           port: int = 0, host: str | None = None,
                           **kwargs: Any) -> streams.TcpServer:
        """As ``asyncio.start_server``; ``host`` is the address to listen on."""
        return await streams.start_server(self, client_connected_cb, port, host, **kwargs)

    async def create_connection(self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                                host: str, port: int, **kwargs: Any
                                ) -> tuple[streams.TcpTransport, asyncio.BaseProtocol]:
        """As ``loop.create_connection``; ``host`` is the peer's name or address."""
        return await streams.create_connection(self, protocol_factory, host, port, **kwargs)

    async def create_server(self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                            host: str | None = None, port: int = 0,
                            **kwargs: Any) -> streams.TcpServer:
        """As ``loop.create_server``; ``host`` is the address to listen on."""
        return await streams.create_server(self, protocol_factory, host, port, **kwargs)

    # -- blocking code (api/blocking.py) ---------------------------------------------------------
    async def run_blocking(self, func: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
        """``func(*args, **kwargs)`` as blocking code on this host's stack (``socket``,
        ``time.sleep``, ``select``... are the simulator's inside it), as ``asyncio.to_thread``
        but in a greenlet, in virtual time; its result or its exception."""
        return await blocking.run_blocking(self, func, *args, **kwargs)

    # -- names (api/dns.py) ------------------------------------------------------------------------
    async def lookup(self, name: str, family: int | None = None) -> list[str]:
        """The one name resolution of this host (``getaddrinfo`` of spawned and blocking
        code...): a literal, the ``hosts`` table, then DNS through the servers of
        ``self.resolv`` when there are any (raises ``socket.gaierror``)."""
        try:
            return await super().lookup(name, family)
        except socket.gaierror:
            if not self.resolv.nameservers or _is_literal(name):
                raise
        return await dns.resolve(self, name, family)  # "hosts: files dns"

    async def resolve_name(self, name: str, family: int | None = None) -> list[str]:
        """``name``'s addresses (text) as getaddrinfo finds them (:meth:`lookup`)."""
        return await self.lookup(name, family)

    # -- tools (api/tools.py) --------------------------------------------------------------------
    async def ping(self, dst: str, **kwargs: Any) -> tools.PingResult:
        """Like ping(8): ``count=4, size=56, interval=1.0, df=False, family=None, ttl=None,
        timeout=2.0, out="stdout"`` (``out=None``: print nothing; the lines are in the result)
        — see :func:`stacklab.api.tools.ping`."""
        return await tools.ping(self, dst, **kwargs)

    async def traceroute(self, dst: str, **kwargs: Any) -> tools.TracerouteResult:
        """Like traceroute(8): ``max_hops=30, probes=3, wait=3.0, port=33434, method="udp"
        (or "icmp"), size=60, family=None, out="stdout"`` — see
        :func:`stacklab.api.tools.traceroute`."""
        return await tools.traceroute(self, dst, **kwargs)

    def route_get(self, dst: str | bytes, now: float | None = None) -> str:
        """``ip route get`` at ``now``, by default the driver's time."""
        return super().route_get(dst, self.now() if now is None else now)


class Router(Host, _SansIoRouter):
    """A router with the same application API (ping and traceroute from it, servers on it)."""


def _is_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
