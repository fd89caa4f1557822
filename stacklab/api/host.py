"""The application face of a host: asyncio-style TCP and UDP, ping and traceroute.

:class:`Host` and :class:`Router` are the sans-IO :class:`stacklab.stack.host.Host` and
:class:`stacklab.stack.router.Router` plus the coroutines applications call, the way aioquic's
``asyncio/`` package sits on its sans-IO connection. ``Network.add_host``/``add_router`` and the
TAP command build these; the sans-IO classes themselves know nothing of asyncio::

    reader, writer = await host.open_connection("b", 7)          # api/streams.py
    server = await host.start_server(handle, 7)
    transport, protocol = await host.create_datagram_endpoint(factory, local_addr=("", 53))
    result = await host.ping("b", count=3)                       # api/tools.py

Such a host satisfies the :class:`stacklab.apps.common.Net` seam, so every application in
:mod:`stacklab.apps` runs on it. Its clock is its driver's
(:class:`~stacklab.api.driver.DrivenHost`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from stacklab.stack.router import Router as _SansIoRouter

from . import streams, tools, udp
from .driver import DrivenHost

__all__ = ["Host", "Router"]


class Host(DrivenHost):
    """A host applications can use (see the module docstring)."""

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
