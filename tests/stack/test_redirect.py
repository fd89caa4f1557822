"""ICMP redirects: a router sends them, a host honours them as Linux does."""

from __future__ import annotations

import stacklab
from stacklab.stack.redirect import EXPIRES
from stacklab.wire.icmpv4 import IcmpView, build_icmpv4
from stacklab.wire.ipv4 import build_ipv4


def lan(accept: int | None = None):
    """h1, r1, r2 on one switch (10.0.1.0/24); r2 -- srv (10.0.2.0/24). h1 is told to reach
    10.0.2.0/24 through r1, which forwards back out to r2: the redirect case."""
    net = stacklab.Network(seed=4)
    sw = net.add_switch("sw")
    h1, r1, r2, srv = (net.add_host("h1"), net.add_router("r1"), net.add_router("r2"),
                       net.add_host("srv"))
    for n in (h1, r1, r2):
        net.connect(n, sw, delay="1ms")
    net.connect(r2, srv, delay="1ms")
    net.autoconfigure()
    h1.add_route("10.0.2.0/24", via="10.0.1.2")  # r1, not the shorter r2
    if accept is not None:
        h1.sysctl["net.ipv4.conf.all.accept_redirects"] = accept
    return net, h1, r1, r2


def test_router_redirects_and_host_follows():
    net, h1, r1, r2 = lan()
    with net:
        p = net.run(h1.ping("srv", count=4, interval=0.5, out=None), until=20)
        assert p.received == 4
        assert r1.counters["icmp.tx.5/1"] == 1
        assert h1.counters["icmp.redirect.accepted"] == 1
        assert r1.counters["ipv4.forwarded"] == 1  # only the first echo went through r1
        assert h1.route_get("10.0.2.2", net.now).startswith("10.0.2.2 via 10.0.1.3 dev eth0")
        assert "10.0.2.2/32 via 10.0.1.3 dev eth0 proto redirect" in str(h1.routes)
        assert r1.sysctl["net.ipv4.conf.all.accept_redirects"] == "0"  # a router: off

        async def later():
            import asyncio
            await asyncio.sleep(EXPIRES + 1)
        net.run(later(), until=net.now + EXPIRES + 5)
        assert h1.counters["icmp.redirect.expired"] == 1
        assert h1.route_get("10.0.2.2", net.now).startswith("10.0.2.2 via 10.0.1.2")


def test_accept_redirects_off_keeps_the_route():
    net, h1, r1, r2 = lan(accept=0)
    with net:
        p = net.run(h1.ping("srv", count=3, interval=0.5, out=None), until=20)
        assert p.received == 3
        assert h1.counters["icmp.redirect.ignored.disabled"] >= 1
        assert r1.counters["ipv4.forwarded"] == 3


def test_send_redirects_off():
    net, h1, r1, r2 = lan()
    r1.sysctl["net.ipv4.conf.all.send_redirects"] = 0
    with net:
        net.run(h1.ping("srv", count=2, interval=0.5, out=None), until=20)
        assert r1.counters["icmp.tx.5/1"] == 0 and r1.counters["ipv4.forwarded"] == 2


def test_forged_redirect_not_from_the_gateway_is_ignored():
    net, h1, r1, r2 = lan()
    with net:
        quoted = build_ipv4(bytes([10, 0, 1, 1]), bytes([10, 0, 2, 2]), 17, bytes(8))
        for sender, gw, why in [((10, 0, 1, 3), (10, 0, 1, 3), "not_from_gateway"),
                                ((10, 0, 1, 2), (10, 9, 9, 9), "bad_gateway"),
                                ((10, 0, 1, 2), (10, 0, 1, 1), "bad_gateway")]:
            m = IcmpView(build_icmpv4(5, 1, bytes(gw), quoted))
            h1.redirects.received(bytes(sender), m, 0, 1.0)
            assert h1.counters[f"icmp.redirect.ignored.{why}"] >= 1
        assert h1.counters["icmp.redirect.accepted"] == 0


def test_backoff_as_linux():
    net, h1, r1, r2 = lan(accept=0)  # h1 keeps sending through r1
    with net:
        net.run(h1.ping("srv", count=40, interval=0.01, out=None), until=20)
        # 20 ms << n after the n-th: redirects at 0, 40, 120, 280 ms of the 400 ms of pings
        assert r1.counters["icmp.tx.5/1"] == 4
        assert r1.counters["icmp.redirect.suppressed"] == 36
