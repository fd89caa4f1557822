"""RFC 8106: a router announces DNS servers in its RAs (RDNSS); hosts use them, until the
lifetime ends."""

from __future__ import annotations

import asyncio

import stacklab
from stacklab.apps.dns import Authority, make_zone, serve_dns
from stacklab.wire.icmpv6 import RdnssOpt, UnknownNdpOpt, parse_ndp_options


def test_rdnss_option_round_trip_and_invalid_lengths_are_ignored():
    a = bytes.fromhex("fd000000000000000000000000000053")
    opt = RdnssOpt(600, (a, a[:-1] + b"\x54"))
    assert parse_ndp_options(opt.encode()) == [opt]
    bad = bytes((25, 2, 0, 0)) + (600).to_bytes(4, "big") + bytes(8)  # even length: invalid
    assert isinstance(parse_ndp_options(bad)[0], UnknownNdpOpt)


def test_hosts_learn_the_resolver_from_router_advertisements_and_resolve_with_it():
    net = stacklab.Network(seed=8)
    h, r, ns = net.add_host("h"), net.add_router("r"), net.add_host("ns")
    net.connect(h, r, delay="1ms")
    net.connect(r, ns, delay="1ms")
    r.add_address(0, "2001:db8:1::1/64")
    r.add_address(1, "2001:db8:2::1/64")
    ns.add_address(0, "2001:db8:2::53/64")
    ns.add_route("::/0", via="2001:db8:2::1")
    r.ndp.ra_interval = 60.0
    r.ndp.advertise(0, dns=["2001:db8:2::53"])

    async def main():
        await serve_dns(ns, Authority({"lab.example": make_zone(
            "lab.example", {"www": "2001:db8:2::80"})}))
        await asyncio.sleep(3)
        learned = list(h.resolv.nameservers)
        return learned, await h.resolve_name("www.lab.example", 6)

    learned, addrs = net.run(main(), until=30)
    assert learned == ["2001:db8:2::53"] and addrs == ["2001:db8:2::80"]
    # the router stops announcing: the servers go when their lifetime (3 x 60 s) ends
    r.ndp.rdnss.clear()
    net.run(until=net.now + 200)
    assert h.resolv.nameservers == []
    net.close()
