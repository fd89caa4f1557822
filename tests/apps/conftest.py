"""Fixtures for the application tests.

``env`` runs a scenario ``scenario(server_net, client_net, server_addr)`` over a network seam:
the real asyncio loopback (fast, always) and, when the simulator is importable, a stacklab
network of two hosts (see ``sim_env`` in test_sim.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from stacklab.apps.common import AsyncioNet

Scenario = Callable[[Any, Any, str], Awaitable[Any]]


class LoopbackEnv:
    name = "loopback"
    server_addr = "127.0.0.1"

    def run(self, scenario: Scenario, timeout: float = 30.0) -> Any:
        async def main() -> Any:
            return await asyncio.wait_for(
                scenario(AsyncioNet(), AsyncioNet(), self.server_addr), timeout)
        return asyncio.run(main())


@pytest.fixture
def env() -> LoopbackEnv:
    return LoopbackEnv()


async def raw_exchange(net: Any, addr: str, port: int, data: bytes, *,
                       read_until_close: bool = True, timeout: float = 5.0) -> bytes:
    """Send raw bytes and collect the answer until the server closes (or ``timeout``)."""
    reader, writer = await net.open_connection(addr, port)
    writer.write(data)
    await writer.drain()
    out = bytearray()
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                break
            out += chunk
            if not read_until_close:
                break
    except (TimeoutError, ConnectionError):
        pass
    writer.close()
    return bytes(out)
