"""RFC 5227 address conflict detection and RFC 3927 link-local addresses (stack/acd.py)."""

from __future__ import annotations

import asyncio

import stacklab
from stacklab.wire.arp import ArpView


def lan(n: int = 2):
    net = stacklab.Network(seed=9)
    sw = net.add_switch("sw")
    hosts = [net.add_host(f"h{i}") for i in range(n)]
    for h in hosts:
        net.connect(h, sw, delay="1ms")
    net.autoconfigure()
    return net, hosts


def run_for(net, seconds):
    async def wait():
        await asyncio.sleep(seconds)
    net.run(wait(), until=net.now + seconds + 1)


def test_free_address_probes_three_times_then_is_claimed_and_announced(tmp_path):
    net, (a, b) = lan()
    net.capture(tmp_path)
    with net:
        results = []
        a.acd.claim(0, "10.0.1.50/24", net.now, lambda ok, t: results.append((ok, t)))
        a.request_wake()
        run_for(net, 10)
        assert [ok for ok, _ in results] == [True]
        t = results[0][1]
        assert 3 <= t <= 1 + 2 * 2 + 2 + 0.1  # PROBE_WAIT + 2 x PROBE_MAX + ANNOUNCE_WAIT
        assert a.counters["arp.tx.probe"] == 3
        assert "10.0.1.50" in a.addresses(4)
        assert a.counters["arp.tx.gratuitous"] >= 2 + 1  # 2 announcements (+ autoconfigure's)
        from stacklab.device.pcap import read_pcap
        arps = [ArpView(memoryview(r.data)[14:]) for r in read_pcap(str(tmp_path / "h0-sw.pcap"))[1]
                if r.data[12:14] == b"\x08\x06"]
        probes = [x for x in arps if x.spa == bytes(4) and x.tpa == bytes([10, 0, 1, 50])]
        assert len(probes) == 3


def test_address_in_use_is_a_conflict():
    net, (a, b) = lan()
    with net:
        run_for(net, 1)  # past the gratuitous ARPs of the addresses' assignment
        results = []
        a.acd.probe(0, bytes([10, 0, 1, 2]), net.now, lambda ok, t: results.append(ok))  # b's
        a.request_wake()
        run_for(net, 10)
        assert results == [False]
        assert a.counters["arp.acd.conflict"] == 1
        assert a.counters["arp.tx.probe"] == 1  # b answered the first probe


def test_link_local_when_there_is_no_dhcp_and_a_conflict_moves_on():
    import random
    net, (a, b) = lan()
    with net:
        n = random.Random(int.from_bytes(a.interfaces[0].mac, "big")).randrange(0xFE00)
        taken = f"169.254.{1 + (n >> 8)}.{n & 0xFF}"  # a's first candidate (RFC 3927 §2.1)
        b.add_address(0, taken + "/16")
        got = []
        a.acd.start_link_local(0, net.now, lambda addr, t: got.append(addr))
        a.request_wake()
        run_for(net, 20)
        (addr,) = got
        assert addr.startswith("169.254.") and addr != taken and addr in a.addresses(4)
        assert a.counters["arp.link_local.conflicts"] == 1
        assert a.route_get(taken, net.now).startswith(f"{taken} dev eth0")  # 169.254/16 link


def test_link_local_same_mac_same_address():
    addrs = []
    for _ in range(2):
        net, (a, b) = lan()
        with net:
            a.acd.start_link_local(0, net.now, lambda addr, t: addrs.append(addr))
            a.request_wake()
            run_for(net, 10)
    assert len(addrs) == 2 and addrs[0] == addrs[1]  # RFC 3927 §2.1: seeded with the MAC


def test_defend_once_per_interval():
    net, (a, b) = lan()
    with net:
        from stacklab.wire.arp import ARP_REQUEST, build_arp
        from stacklab.wire.ethernet import ETH_P_ARP, build_ethernet
        iface = a.interfaces[0]
        claim = build_ethernet(b"\xff" * 6, b"\x02\x00\x00\x00\x00\xee", ETH_P_ARP,
                               build_arp(ARP_REQUEST, b"\x02\x00\x00\x00\x00\xee",
                                         bytes([10, 0, 1, 1]), bytes(6), bytes([10, 0, 1, 1])))
        for t in (1.0, 2.0, 12.0):
            a.receive_frame(0, bytes(claim), t)
        assert a.counters["arp.conflicts"] == 3
        assert a.counters["arp.defended"] == 2  # at 1 s and 12 s, not at 2 s
        assert iface.has_v4(bytes([10, 0, 1, 1]))
