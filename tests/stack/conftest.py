"""Helpers for the host/router stack tests: small simulated topologies."""

from __future__ import annotations

import asyncio

import pytest

from stacklab.net.network import Network


@pytest.fixture
def net():
    n = Network(seed=7)
    yield n
    n.close()


def line_topology(net: Network, mtus=(1500, 1500, 1500), delay="5ms"):
    """a — r1 — r2 — b with the given link MTUs, autoconfigured."""
    a, r1, r2, b = (net.add_host("a"), net.add_router("r1"), net.add_router("r2"),
                    net.add_host("b"))
    net.connect(a, r1, name="a-r1", mtu=mtus[0], delay=delay)
    net.connect(r1, r2, name="r1-r2", mtu=mtus[1], delay=delay)
    net.connect(r2, b, name="r2-b", mtu=mtus[2], delay=delay)
    net.autoconfigure()
    return a, r1, r2, b


class Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.data: list[tuple[bytes, tuple[str, int]]] = []
        self.errors: list[OSError] = []

    def datagram_received(self, data, addr):
        self.data.append((data, addr))

    def error_received(self, exc):
        self.errors.append(exc)
