"""Scenario-level tests of the host/router stack on the simulator (issue 4 "Tests")."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import random

import pytest

from stacklab.stack.neighbor import Nud
from stacklab.stack.udp import PacketTooBigError

from .conftest import Collector, line_topology


def test_arp_on_switched_lan_queues_while_resolving(net):
    a, b, c = net.add_host("a"), net.add_host("b"), net.add_host("c")
    sw = net.add_switch("sw")
    for h in (a, b, c):
        net.connect(h, sw, delay="1ms")
    net.autoconfigure()

    async def main():
        sink = c.udp_socket(4)
        sink.bind(("", 9000))
        tx = a.udp_socket(4)
        # three datagrams before any ARP reply can come back: all wait in the queue
        for i in range(3):
            await tx.sendto(f"msg{i}".encode(), ("c", 9000))
        got = [await asyncio.wait_for(sink.recv(), 1) for _ in range(3)]
        state_after = a.neighbors.lookup(c.address(4)).state
        await asyncio.sleep(120)  # idle: REACHABLE ages to STALE
        return got, state_after, a.neighbors.lookup(c.address(4)).state

    got, state_after, state_idle = net.run(main(), until="200s")
    assert got == [b"msg0", b"msg1", b"msg2"]
    assert a.counters["arp.tx.request"] == 1  # one request resolved all three
    assert c.counters["arp.tx.reply"] == 1
    assert b.counters["arp.rx.request"] >= 1 and b.counters["arp.tx.reply"] == 0
    assert state_after is Nud.REACHABLE
    assert state_idle is Nud.STALE
    text = str(a.neighbors)
    assert f"{c.address(4)} dev eth0 lladdr" in text and "STALE" in text


def test_arp_failure_retries_then_host_unreachable(net):
    a, b = net.add_host("a"), net.add_host("b")
    sw = net.add_switch("sw")
    net.connect(a, sw)
    net.connect(b, sw)
    net.autoconfigure()

    async def main():
        s = a.udp_socket(4)
        s.connect(("10.0.1.99", 7))  # on-link, nobody there
        await s.send(b"x")
        try:
            await asyncio.wait_for(s.recv(), 10)
        except OSError as exc:
            return exc, net.now
        return None, net.now

    exc, t = net.run(main(), until="20s")
    assert exc is not None and exc.errno == errno.EHOSTUNREACH
    assert a.counters["arp.tx.request"] == 3  # mcast_solicit retries, 1 s apart
    assert 3.0 <= t < 3.5
    assert a.neighbors.lookup("10.0.1.99").state is Nud.FAILED


@pytest.mark.parametrize("family", [4, 6])
def test_ping_across_two_routers(net, family):
    a, r1, r2, b = line_topology(net)
    res = net.run(a.ping("b", count=3, family=family, out=None), until="60s")
    assert res.transmitted == 3 and res.received == 3 and res.loss == 0
    # 3 links of 5 ms each way; the first RTT also pays for ARP/NDP on each hop
    assert res.rtts[1] == pytest.approx(0.030, abs=1e-6)
    assert res.rtts[0] > res.rtts[1]
    assert any(f"from {b.address(family)}" in ln and "ttl=62" in ln for ln in res.lines)
    assert r1.counters[f"ipv{family}.forwarded"] == 6 and r2.counters[f"ipv{family}.forwarded"] == 6


@pytest.mark.parametrize("family,method", [(4, "udp"), (6, "udp"), (4, "icmp"), (6, "icmp")])
def test_traceroute_lists_routers_in_order(net, family, method):
    a, r1, r2, b = line_topology(net)
    tr = net.run(a.traceroute("b", family=family, method=method, wait=1.0, out=None),
                 until="200s")
    # each router answers from the address facing us (its route back to a)
    r1_addr = net.addresses[("r1", 0)][0 if family == 4 else 1]
    r2_addr = net.addresses[("r2", 0)][0 if family == 4 else 1]
    assert tr.addresses == [r1_addr, r2_addr, b.address(family)]
    assert tr.reached
    # later probes no longer wait for ARP/NDP: 5 ms per link each way
    assert [round(h.rtts[-1], 6) for h in tr.hops] == [0.010, 0.020, 0.030]


def test_big_udp_fragmented_at_source_and_router_reassembled(net):
    a, r1, r2, b = line_topology(net, mtus=(1500, 576, 1500))
    payload = random.Random(4).randbytes(4000)

    async def main():
        sink = Collector()
        await b.create_datagram_endpoint(lambda: sink, local_addr=("0.0.0.0", 5000))
        tx, _ = await a.create_datagram_endpoint(Collector, remote_addr=("b", 5000))
        tx.sendto(payload)
        await asyncio.sleep(1)
        return sink

    sink = net.run(main(), until="10s")
    assert len(sink.data) == 1
    assert hashlib.sha256(sink.data[0][0]).digest() == hashlib.sha256(payload).digest()
    assert sink.data[0][1][0] == a.address(4)
    assert a.counters["ipv4.tx.fragmented"] == 1
    assert r1.counters["ipv4.fragmented"] == 3  # each 1500-byte fragment split again
    assert b.counters["ipv4.reassembled"] == 1
    # every frame that crossed r1-r2 fits the 576 MTU
    link = net.link("r1-r2")
    assert all(v["drop.mtu"] == 0 if "drop.mtu" in v else True for v in link.counters().values())


def test_df_gives_frag_needed_576_at_router(net):
    a, r1, r2, b = line_topology(net, mtus=(1500, 576, 1500))

    async def main():
        got = Collector()
        tx, _ = await a.create_datagram_endpoint(lambda: got, remote_addr=("b", 5000), df=True)
        tx.sendto(bytes(1000))  # fits 1500, not 576
        await asyncio.sleep(1)
        tx.sendto(bytes(1000))  # now the path MTU is known: refused locally
        tx.sendto(bytes(500))
        await asyncio.sleep(1)
        return got

    got = net.run(main(), until="10s")
    # the router's Frag Needed, then the local refusal, then b's Port Unreachable for the
    # 500-byte datagram that did get through
    assert [type(e) for e in got.errors] == [PacketTooBigError, PacketTooBigError,
                                             ConnectionRefusedError]
    assert [e.mtu for e in got.errors[:2]] == [576, 576]
    assert all(e.errno == errno.EMSGSIZE for e in got.errors[:2])
    assert r1.counters["icmp.tx.3/4"] == 1 and r1.counters["drop.ipv4.frag_needed"] == 1
    assert a.path_mtu(bytes([10, 0, 3, 2])) == 576
    assert b.counters["udp.no_port"] == 1


def test_ipv6_packet_too_big_1280_then_source_fragments(net):
    a, r1, r2, b = line_topology(net, mtus=(1500, 1280, 1500))
    payload = random.Random(5).randbytes(4000)

    async def main():
        sink = b.udp_socket(6)
        sink.bind(("::", 6000))
        tx = a.udp_socket(6)
        tx.connect(("b", 6000))
        await tx.send(bytes(1400))  # one 1448-byte packet: too big for the 1280 link
        await asyncio.sleep(1)
        try:
            await tx.send(payload)
        except OSError as exc:
            first_err = exc
        else:
            first_err = None
        await asyncio.sleep(0.001)
        await tx.send(payload)  # fragments of <= 1280 now
        data = await asyncio.wait_for(sink.recv(), 2)
        return first_err, data

    first_err, data = net.run(main(), until="10s")
    assert isinstance(first_err, PacketTooBigError) and first_err.mtu == 1280
    assert data == payload
    assert r1.counters["icmpv6.tx.2/0"] == 1 and r1.counters["drop.ipv6.packet_too_big"] == 1
    assert "ipv6.fragmented" not in r1.counters  # routers never fragment IPv6
    assert b.counters["ipv6.reassembled"] == 1


def test_ttl_expiry_reported_to_ping(net):
    a, r1, r2, b = line_topology(net)
    res = net.run(a.ping("b", count=1, ttl=2, out=None), until="10s")
    assert res.received == 0
    r2_addr = net.addresses[("r2", 0)][0]
    assert res.errors == [f"From {r2_addr} icmp_seq=1 Time to live exceeded"]
    assert r2.counters["icmp.tx.11/0"] == 1 and r2.counters["drop.ipv4.ttl_exceeded"] == 1


def test_no_route_gives_net_unreachable(net):
    a, r1, r2, b = line_topology(net)
    a.add_route("default", via=net.addresses[("r1", 0)][0])
    res = net.run(a.ping("192.0.2.1", count=1, out=None), until="10s")
    assert res.errors and "Destination Net Unreachable" in res.errors[0]
    assert r1.counters["icmp.tx.3/0"] == 1


def test_port_unreachable_refuses_connected_socket(net):
    a, r1, r2, b = line_topology(net)

    async def main():
        s = a.udp_socket(4)
        s.connect(("b", 4444))
        await s.send(b"hello?")
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(s.recv(), 2)

    net.run(main(), until="10s")
    assert b.counters["icmp.tx.3/3"] == 1


def test_icmp_error_rate_limit(net):
    a, r1, r2, b = line_topology(net)

    async def main():
        s = a.udp_socket(4)
        for i in range(20):
            await s.sendto(b"x", ("b", 4000 + i))
        await asyncio.sleep(1)

    net.run(main(), until="10s")
    assert b.counters["udp.no_port"] == 20
    assert b.counters["icmp.tx.3/3"] == 6  # per-destination burst (Linux XRLIM_BURST_FACTOR)
    assert b.counters["icmp.ratelimited"] == 14


def test_router_advertisement_gives_prefix_and_default_route(net):
    h, r, b = net.add_host("h"), net.add_router("r"), net.add_host("b")
    net.connect(h, r, delay="1ms")
    net.connect(r, b, delay="1ms")
    r.add_address(0, "2001:db8:1::1/64")
    r.add_address(1, "2001:db8:2::1/64")
    b.add_address(0, "2001:db8:2::2/64")
    b.add_route("2001:db8:1::/64", via="2001:db8:2::1")
    r.advertise(0)

    async def main():
        await asyncio.sleep(2)
        return await h.ping("2001:db8:2::2", count=1, out=None)

    res = net.run(main(), until="30s")
    assert h.address(6) == "2001:db8:1::ff:fe01:0"  # SLAAC: prefix + EUI-64 of 02:00:00:01:00:00
    assert "default via fe80::" in h.routes.format(6) and "proto ra" in h.routes.format(6)
    assert res.received == 1
