"""Neighbour Discovery and ARP floods from an on-link attacker: Router Advertisements with
ever new prefixes (Linux max_addresses = 16 per interface), Neighbor Solicitations and ARP
requests from ever new spoofed sources (Linux gc_thresh3 = 1024 entries per table, and a
frame's cost must not grow with the table)."""

from __future__ import annotations

import time

import pytest

from stacklab.wire.arp import ARP_REQUEST, build_arp
from stacklab.wire.ethernet import ETH_P_ARP
from stacklab.wire.icmpv6 import NeighborSolicitation, SourceLinkAddrOpt
from stacklab.wire.ipv6 import build_ipv6
from stacklab.wire.proto import PROTO_ICMPV6

from ..fuzz.frames import A4, A6, BCAST, eth, ra
from .common import Bench

MAX_ADDRESSES = 16  # Linux net.ipv6.conf.*.max_addresses
GC_THRESH3 = 1024   # Linux net.ipv4.neigh.default.gc_thresh3 (and ipv6)


def ra_flood(b: Bench, n: int) -> None:
    for i in range(n):
        prefix = bytes((0xFD, 0x10, i >> 8, i & 0xFF)) + bytes(12)
        router = bytes.fromhex("fe80000000000000") + bytes((0, 0, 0, 0, 0, 0, i >> 8, i & 0xFF))
        b.a.receive_frame(0, ra(prefix, src=router), b.now)
        b.now += 0.01
        b.pump()


def test_ra_flood_addresses_and_routes_are_bounded():
    b = Bench()
    ra_flood(b, 500)
    iface = b.a.interfaces[0]
    assert len(iface.v6) <= MAX_ADDRESSES, f"{len(iface.v6)} IPv6 addresses after 500 RAs"
    assert len(b.a.routes) <= 64, f"{len(b.a.routes)} routes after 500 RAs"
    b.verify()


def test_ra_flood_keeps_the_live_connections():
    b = Bench()
    ra_flood(b, 100)
    b.verify()


def ns_flood(b: Bench, n: int) -> list[float]:
    """``n`` solicitations for A's address from ever new sources; the wall time per 1000."""
    costs = []
    t0 = time.perf_counter()
    for i in range(n):
        src = bytes.fromhex("fd01000000000000") + bytes((0, 0, 0, 1, 0, 0, i >> 8, i & 0xFF))
        mac = bytes((2, 0x99, 0, 0, i >> 8, i & 0xFF))
        body = NeighborSolicitation(A6, [SourceLinkAddrOpt(mac)]).build(src, _SNM)
        b.a.receive_frame(0, eth(build_ipv6(src, _SNM, PROTO_ICMPV6, body, hop_limit=255),
                                 dst=bytes.fromhex("3333ff000002"), src=mac), b.now)
        b.a.frames_to_send()
        b.a.get_timer()  # as the driver does after every frame
        if i % 1000 == 999:
            costs.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
    return costs


def arp_flood(b: Bench, n: int) -> None:
    for i in range(n):
        spa = bytes((10, 0, (i >> 8) & 0xFF, i & 0xFF))
        mac = bytes((2, 0x98, 0, 0, i >> 8, i & 0xFF))
        b.a.receive_frame(0, eth(build_arp(ARP_REQUEST, mac, spa, bytes(6), A4), dst=BCAST,
                                 src=mac, ethertype=ETH_P_ARP), b.now)
        b.a.frames_to_send()


_SNM = bytes.fromhex("ff0200000000000000000001ff000002")  # A's solicited-node group


def test_ns_flood_neighbour_cache_is_bounded():
    b = Bench()
    ns_flood(b, 4000)
    assert len(b.a.interfaces[0].nd) <= GC_THRESH3
    b.verify()


def test_arp_flood_neighbour_cache_is_bounded():
    b = Bench()
    arp_flood(b, 4000)
    assert len(b.a.interfaces[0].arp) <= GC_THRESH3
    b.verify()


@pytest.mark.slow
def test_16k_ns_flood_cost_per_frame_does_not_grow():
    b = Bench()
    costs = ns_flood(b, 16_000)
    assert costs[-1] < 3 * costs[0], [round(c * 1000, 1) for c in costs]  # ms per 1000
