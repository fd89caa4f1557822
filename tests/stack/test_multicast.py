"""Multicast: IGMP/MLD membership, multicast UDP through a switch, queries and leaves."""

from __future__ import annotations

import asyncio

import pytest

import stacklab
from stacklab.wire.errors import MalformedPacket
from stacklab.wire.igmp import (
    CHANGE_TO_EXCLUDE,
    GroupRecord,
    build_igmp_query,
    build_igmp_v3_report,
    build_mld_query,
    build_mld_v2_report,
    decode_code,
    parse_igmp,
    parse_mld,
)

GROUP4, GROUP6 = "239.1.2.3", "ff15::1234"


def lan(n: int = 3, seed: int = 5):
    """h0 (the source) and n-1 others on one switch, plus a router r (the querier)."""
    net = stacklab.Network(seed=seed)
    sw = net.add_switch("sw")
    hosts = [net.add_host(f"h{i}") for i in range(n)]
    r = net.add_router("r")
    for h in [*hosts, r]:
        net.connect(h, sw, delay="1ms")
    net.autoconfigure()
    return net, hosts, r


def frames(tmp_path, name):
    from stacklab.device.pcap import read_pcap
    return [r.data for r in read_pcap(str(tmp_path / name))[1]]


@pytest.mark.parametrize("family,group", [(4, GROUP4), (6, GROUP6)])
def test_stream_reaches_members_only(tmp_path, family, group):
    net, hosts, r = lan()
    net.capture(tmp_path)
    with net:
        src, member, other = hosts

        async def main():
            rx = member.udp_socket(family)
            rx.bind(("", 5004))
            rx.join_group(group)
            idle = other.udp_socket(family)
            idle.bind(("", 5004))
            tx = src.udp_socket(family)
            await asyncio.sleep(0.5)
            for i in range(5):
                await tx.sendto(b"frame%d" % i, (group, 5004))
                await asyncio.sleep(0.01)
            got = [await rx.recv() for _ in range(5)]
            await asyncio.sleep(0.5)
            return got, len(idle._queue)

        got, idle_n = net.run(main(), until=10)
        assert got == [b"frame%d" % i for i in range(5)]
        assert idle_n == 0  # not a member: the host's filter drops the group
        layer = "igmp" if family == 4 else "mld"
        assert member.counters[f"{layer}.joins"] == 1
        assert member.counters[f"{layer}.tx"] == 2  # the unsolicited report, twice
        # the multicast MAC mapping on the wire (RFC 1112 §6.4 / RFC 2464 §7)
        data = [f for f in frames(tmp_path, "h0-sw.pcap") if b"frame0" in f]
        assert data
        assert data[0][:3] == (b"\x01\x00\x5e" if family == 4 else b"\x33\x33\x00")
        if family == 4:
            assert data[0][14 + 8] == 1  # IP_MULTICAST_TTL default 1


def test_querier_sees_members_and_leave():
    net, hosts, r = lan()
    with net:
        src, member, other = hosts

        async def main():
            r.igmp.start_querier(0, net.now)
            r.mld.start_querier(0, net.now)
            a = member.udp_socket(4)
            a.bind(("", 5004))
            a.join_group(GROUP4)
            b = other.udp_socket(6)
            b.bind(("", 5004))
            b.join_group(GROUP6)
            await asyncio.sleep(40)  # past the second startup query: answered reports
            seen = r.igmp.members(0, net.now), r.mld.members(0, net.now)
            a.close()
            await asyncio.sleep(3)  # the leave, the group-specific query, nobody answers
            return seen, r.igmp.members(0, net.now)

        (v4, v6), after = net.run(main(), until=60)
        assert v4 == [GROUP4] and v6 == [GROUP6]
        assert after == []
        assert member.counters["igmp.rx.query.v3"] >= 2
        assert member.counters["igmp.leaves"] == 1


def test_v2_querier_switches_host_to_v2_and_suppression():
    net, hosts, r = lan()
    with net:
        src, m1, m2 = hosts

        async def main():
            for h in (m1, m2):
                s = h.udp_socket(4)
                s.bind(("", 5004))
                s.join_group(GROUP4)
            await asyncio.sleep(2)
            # a v2 general query (8 bytes), from the router, to all systems
            r.ip_send(None, bytes([224, 0, 0, 1]), 2, build_igmp_query(max_resp=5, version=2),
                      net.now, ttl=1, ifindex=0)
            r.request_wake()
            await asyncio.sleep(6)

        net.run(main(), until=20)
        for h in (m1, m2):
            assert h.igmp.version(0, net.now) == 2
        # one of the two answered; the other heard it and kept quiet (RFC 2236 §3)
        assert m1.counters["igmp.suppressed"] + m2.counters["igmp.suppressed"] == 1


def test_join_twice_and_leave_unknown_are_errors():
    net, hosts, r = lan(2)
    with net:
        s = hosts[0].udp_socket(4)
        s.bind(("", 1))
        s.join_group(GROUP4)
        with pytest.raises(OSError):
            s.join_group(GROUP4)
        with pytest.raises(OSError):
            s.leave_group("239.9.9.9")
        with pytest.raises(OSError):
            s.join_group("10.0.0.1")


def test_wire_round_trips_and_malformed():
    rep = build_igmp_v3_report([GroupRecord(CHANGE_TO_EXCLUDE, bytes([239, 1, 2, 3]))])
    m = parse_igmp(rep)
    assert m.kind == "report" and m.records[0].group == bytes([239, 1, 2, 3])
    q = parse_igmp(build_igmp_query(max_resp=10))
    assert (q.kind, q.version, q.max_resp, q.qqic) == ("query", 3, 10.0, 125)
    assert decode_code(0x8C) == (0x0C | 0x10) << 3
    src = bytes.fromhex("fe80" + "00" * 13 + "01")
    m6 = parse_mld(build_mld_v2_report(src, bytes(16), [GroupRecord(4, bytes(16))]))
    assert m6.records[0].type == 4
    q6 = parse_mld(build_mld_query(src, bytes(16), max_resp=10))
    assert q6.version == 3 and q6.max_resp == 10.0
    for bad in (b"", b"\x11\x00", rep[:-2], b"\x22\x00" + rep[2:6] + b"\x00\x05"):
        with pytest.raises(MalformedPacket):
            parse_igmp(bad)
    for bad in (b"", b"\x82" + bytes(10), bytes([143, 0, 0, 0, 0, 0, 0, 3])):
        with pytest.raises(MalformedPacket):
            parse_mld(bad)


def test_garbage_igmp_is_a_counted_drop():
    net, hosts, r = lan(2)
    with net:
        h = hosts[0]
        h.igmp.receive_message(h.interfaces[0], bytes(4), b"\x11\x00\x00", 0.0)
        assert h.counters["drop.igmp.length"] == 1


def test_multicast_stream_example():
    import pathlib

    from stacklab.scenario.runner import run_scenario
    s = run_scenario(pathlib.Path(__file__).resolve().parents[2] / "examples"
                     / "multicast-stream.toml")
    sinks = {(a["node"], i): a for i, a in enumerate(s["apps"]) if a["kind"] == "udp-sink"}
    got = [a["datagrams"] for a in sinks.values()]
    assert got == [200, 200, 0, 50]  # screen1, screen2, printer (not a member), screen2 over v6
    assert all(a["ok"] for a in s["apps"])
    r = s["nodes"]["r"]["counters"]
    assert r["igmp.rx.report.v3"] >= 4 and r["mld.rx.report.v3"] >= 2


def test_socket_facade_multicast_options():
    import socket

    from stacklab.api.sockets import _multicast_op
    net, hosts, r = lan(2)
    with net:
        h = hosts[0]
        mreq = socket.inet_aton(GROUP4) + socket.inet_aton("0.0.0.0")
        assert _multicast_op(h, socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq) == (
            "join_group", (GROUP4, None))
        mreqn = socket.inet_aton(GROUP4) + bytes(4) + (1).to_bytes(4, "little")
        assert _multicast_op(h, socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP, mreqn) == (
            "leave_group", (GROUP4, 0))
        by_addr = socket.inet_aton(GROUP4) + socket.inet_aton(h.address(4))
        assert _multicast_op(h, socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, by_addr)[1] == (
            GROUP4, 0)
        mreq6 = socket.inet_pton(socket.AF_INET6, GROUP6) + (0).to_bytes(4, "little")
        assert _multicast_op(h, socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq6) == (
            "join_group", (GROUP6, None))
        assert _multicast_op(h, socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 4) == ("ttl", 4)
        assert _multicast_op(h, socket.SOL_SOCKET, socket.SO_REUSEADDR, 1) is None
        for bad in (b"short", socket.inet_aton(GROUP4) + socket.inet_aton("1.2.3.4")):
            with pytest.raises(OSError):
                _multicast_op(h, socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, bad)
