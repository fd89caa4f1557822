"""The FTP data connection, shared by server and client: a passive listener or an active
target (RFC 959 §3.2, RFC 2428), and the PASV/PORT address syntax."""

from __future__ import annotations

import asyncio
import ipaddress
import re
from typing import Any

from stacklab.apps.common import close_writer, listening_port, peer_address

CHUNK = 64 * 1024  # bytes per read/write on a data connection
DATA_TIMEOUT = 30.0  # seconds to open a data connection
# h1,h2,h3,h4,p1,p2: the address in a PASV reply and a PORT argument (RFC 959 §4.1.2)
PASV_RE = re.compile(r"(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})")


def same_host(a: str, b: str) -> bool:
    """Whether two addresses name the same host (an IPv4-mapped IPv6 address is its IPv4)."""
    try:
        ia, ib = ipaddress.ip_address(a.split("%")[0]), ipaddress.ip_address(b.split("%")[0])
    except ValueError:
        return False
    if isinstance(ia, ipaddress.IPv6Address) and ia.ipv4_mapped:
        ia = ia.ipv4_mapped
    if isinstance(ib, ipaddress.IPv6Address) and ib.ipv4_mapped:
        ib = ib.ipv4_mapped
    return ia == ib


class DataChannel:
    """One prepared data connection: a passive listener or an active target."""

    def __init__(self) -> None:
        self.listener: Any = None
        self.accepted: asyncio.Future[tuple[Any, Any]] | None = None
        self.done = asyncio.Event()
        self.target: tuple[str, int] | None = None

    async def listen(self, net: Any, local_ip: str, peer_ip: str) -> int:
        loop = asyncio.get_running_loop()
        self.accepted = loop.create_future()

        async def on_connect(reader: Any, writer: Any) -> None:
            assert self.accepted is not None
            try:
                ok_peer = same_host(peer_address(writer)[0], peer_ip)
            except ConnectionError:
                ok_peer = False
            if self.accepted.done() or not ok_peer:
                await close_writer(writer)
                return
            self.accepted.set_result((reader, writer))
            await self.done.wait()  # keep the handler alive while the transfer runs

        self.listener = await net.start_server(on_connect, 0, host=local_ip)
        return listening_port(self.listener)

    async def open(self, net: Any) -> tuple[Any, Any]:
        if self.target is not None:
            return await asyncio.wait_for(net.open_connection(*self.target), DATA_TIMEOUT)
        assert self.accepted is not None
        try:
            return await asyncio.wait_for(asyncio.shield(self.accepted), DATA_TIMEOUT)
        except asyncio.CancelledError:
            if self.accepted.cancelled():  # closed under us, not our task cancelled
                raise ConnectionError("data channel closed") from None
            raise
        finally:
            self._close_listener()

    def _close_listener(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    async def close(self) -> None:
        self.done.set()
        self._close_listener()
        if self.accepted is not None and not self.accepted.done():
            self.accepted.cancel()

