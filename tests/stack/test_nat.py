"""NAT on a router (stack/nat.py): masquerade, conntrack, port forwards, hairpin, ICMP errors."""

from __future__ import annotations

import asyncio

import pytest

import stacklab
from stacklab.stack.nat import TIMEOUTS, NatConfigError, parse_nat
from stacklab.wire.checksum import checksum_adjust, internet_checksum


def home(seed: int = 3, forwards=()):
    """h1, h2 -- sw -- gw (NAT out of eth1) -- isp -- srv: the inside is 10.0.1.0/24, gw's
    outside address 10.0.2.1, srv 10.0.3.2."""
    net = stacklab.Network(seed=seed)
    h1, h2 = net.add_host("h1"), net.add_host("h2")
    gw, isp, srv = net.add_router("gw"), net.add_router("isp"), net.add_host("srv")
    sw = net.add_switch("sw")
    net.connect(h1, sw, delay="1ms")
    net.connect(h2, sw, delay="1ms")
    net.connect(gw, sw, delay="1ms")      # gw eth0: inside (segment 1)
    net.connect(gw, isp, delay="2ms")     # gw eth1: outside (segment 2)
    net.connect(isp, srv, delay="2ms")    # segment 3
    gw.enable_nat("eth1", forwards)
    net.autoconfigure()
    return net


def test_outside_has_no_route_inside():
    with home() as net:
        assert net["isp"].routes.lookup(bytes([10, 0, 1, 1])) is None
        assert net["srv"].routes.lookup(bytes([10, 0, 1, 1])) is None
        assert net["h1"].routes.lookup(bytes([10, 0, 3, 2])) is not None


def test_tcp_through_masquerade_server_sees_the_outside_address():
    with home() as net:
        h1, srv, gw = net["h1"], net["srv"], net["gw"]
        peers = []

        async def handle(reader, writer):
            peers.append(writer.get_extra_info("peername")[0])
            writer.write(await reader.read(5))
            await writer.drain()
            await reader.read()  # until the client closes
            writer.close()

        async def main():
            await srv.start_server(handle, 80)
            reader, writer = await h1.open_connection("srv", 80)
            writer.write(b"hello")
            await writer.drain()
            got = await reader.read(5)
            lines = gw.nat.describe(net.now)
            writer.close()
            return got, lines

        got, lines = net.run(main(), until=30)
        assert got == b"hello"
        assert peers == ["10.0.2.1"]  # gw's outside address, not 10.0.1.1
        assert len(lines) == 1
        line = lines[0]
        assert line.startswith("tcp 6 4319") and "ESTABLISHED" in line
        assert "src=10.0.1.1 dst=10.0.3.2" in line and "src=10.0.3.2 dst=10.0.2.1" in line
        assert gw.counters["nat.conntrack.new"] == 1


def test_ping_and_udp_through_nat_with_port_preservation_and_clash():
    with home() as net:
        h1, h2, srv = net["h1"], net["h2"], net["srv"]
        seen = []

        async def main():
            ep = srv.udp_socket()
            ep.bind(("", 53))
            p = await h1.ping("srv", count=2, interval=0.2, out=None)
            a, b = h1.udp_socket(), h2.udp_socket()
            a.bind(("", 5000))
            b.bind(("", 5000))
            for e in (a, b):
                await e.sendto(b"q", ("10.0.3.2", 53))
            for _ in range(2):
                data, addr = await ep.recvfrom()
                seen.append(addr)
                await ep.sendto(b"r" + data, addr)
            ra = await a.recvfrom()
            rb = await b.recvfrom()
            return p, ra, rb

        p, ra, rb = net.run(main(), until=30)
        assert p.received == 2
        assert {s[0] for s in seen} == {"10.0.2.1"}
        ports = sorted(s[1] for s in seen)
        assert 5000 in ports and ports[0] != ports[1]  # one kept its port, one was moved
        assert ra[0] == b"rq" and rb[0] == b"rq"
        assert ra[1] == ("10.0.3.2", 53)


def test_traceroute_from_behind_nat_sees_every_hop():
    with home() as net:
        h1, gw = net["h1"], net["gw"]
        for method in ("udp", "icmp"):
            tr = net.run(h1.traceroute("srv", method=method, wait=1.0, out=None), until=60)
            assert tr.reached, method
            assert tr.addresses == ["10.0.1.3", "10.0.2.2", "10.0.3.2"], method
        assert gw.counters["nat.icmp_error_translated"] >= 2


def test_port_forward_and_hairpin():
    fw = parse_nat({"outside": "eth1", "forward": [{"proto": "tcp", "port": 8080,
                                                    "to": "h1:80"}]})
    assert fw is not None
    with home(forwards=fw[1]) as net:
        h1, h2, srv = net["h1"], net["h2"], net["srv"]
        peers = []

        async def handle(reader, writer):
            peers.append(writer.get_extra_info("peername")[0])
            writer.write(b"hi")
            await writer.drain()
            writer.close()

        async def fetch(host):
            reader, writer = await host.open_connection("10.0.2.1", 8080)
            data = await reader.read()
            writer.close()
            return data

        async def main():
            await h1.start_server(handle, 80)
            return await fetch(srv), await fetch(h2)

        outside, hairpin = net.run(main(), until=30)
        assert outside == hairpin == b"hi"
        # from outside the server sees the real client; hairpinned, the router's outside address
        assert peers == ["10.0.3.2", "10.0.2.1"]


def test_udp_entry_times_out_as_linux():
    with home() as net:
        h1, gw = net["h1"], net["gw"]

        async def main():
            a = h1.udp_socket()
            a.bind(("", 5000))
            await a.sendto(b"x", ("10.0.3.2", 9))
            await asyncio.sleep(1)
            n1 = len(gw.nat.describe(net.now))
            await asyncio.sleep(TIMEOUTS["udp_timeout"] + SWEEP_SLACK)
            return n1, len(list(gw.nat.connections()))

        n1, n2 = net.run(main(), until=120)
        assert (n1, n2) == (1, 0)
        assert gw.counters["nat.conntrack.expired"] == 1


SWEEP_SLACK = 11


def test_malformed_and_truncated_are_counted_drops():
    with home() as net:
        gw = net["gw"]
        nat = gw.nat
        iface = gw.interfaces[0]
        # a UDP header cut after 2 bytes, addressed outside: dropped, counted
        pkt = bytearray(b"\x45\x00\x00\x16\x00\x01\x00\x00\x40\x11\x00\x00"
                        + bytes([10, 0, 1, 1]) + bytes([10, 0, 3, 2]) + b"\x13\x88")
        assert nat.forward(iface, pkt, 0.0) is None
        assert gw.counters["drop.nat.truncated"] == 1
        assert nat.claims(iface, b"\x45", 0.0) is False
        # an ICMP error quoting garbage: not NAT's, passed along
        err = bytearray(b"\x45\x00\x00\x24\x00\x01\x00\x00\x40\x01\x00\x00"
                        + bytes([10, 0, 3, 2]) + bytes([10, 0, 2, 1]) + b"\x03\x03\x00\x00"
                        + bytes(12))
        assert nat.claims(iface, err, 0.0) is False


def test_parse_nat_errors():
    assert parse_nat("eth1") == ("eth1", ())
    assert parse_nat(False) is None
    for bad in (3, {"outside": ""}, {"outside": "eth1", "x": 1},
                {"outside": "eth1", "forward": [{"port": 0, "to": "a:1"}]},
                {"outside": "eth1", "forward": [{"port": 80, "to": "a"}]},
                {"outside": "eth1", "forward": [{"proto": "sctp", "port": 80, "to": "a:1"}]}):
        with pytest.raises(NatConfigError):
            parse_nat(bad)


def test_checksum_adjust_matches_a_full_sum():
    data = bytearray(b"\x12\x34\x56\x78\x9a\xbc\xde\xf0")
    c = internet_checksum(data)
    new = bytearray(data)
    new[2:6] = b"\xaa\xbb\xcc\xdd"
    assert checksum_adjust(c, data[2:6], new[2:6]) == internet_checksum(new)


def test_fragmented_datagram_is_reassembled_translated_and_refragmented():
    with home() as net:
        h1, srv, gw = net["h1"], net["srv"], net["gw"]

        async def main():
            ep = srv.udp_socket()
            ep.bind(("", 7))
            a = h1.udp_socket()
            await a.sendto(bytes(range(256)) * 12, ("10.0.3.2", 7))  # 3072 bytes: 3 fragments
            return await ep.recvfrom()

        data, addr = net.run(main(), until=30)
        assert data == bytes(range(256)) * 12 and addr[0] == "10.0.2.1"
        assert gw.counters["nat.defragmented"] == 1
        assert gw.counters["ipv4.fragmented"] == 1


def test_home_nat_example():
    import pathlib

    from stacklab.scenario.runner import run_scenario
    s = run_scenario(pathlib.Path(__file__).resolve().parents[2] / "examples" / "home-nat.toml")
    assert all(a["ok"] for a in s["apps"]), s["apps"]
    web = [c for c in s["connections"] if c["node"] == "web"]
    assert {c["remote"].rsplit(":", 1)[0] for c in web} == {"10.0.2.1"}
    phone = [c for c in s["connections"] if c["node"] == "phone"]
    assert phone and phone[0]["remote"].startswith("10.0.3.2:")  # a port forward keeps the peer
