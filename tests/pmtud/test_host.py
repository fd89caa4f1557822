"""The PMTU cache on a simulated host: contents, ``ip route get`` text, aging on virtual time,
UDP's DF / IP_MTU / EMSGSIZE, and forged ICMP errors ignored and counted (RFC 5927, RFC 8201 §5)."""

from __future__ import annotations

import asyncio
import errno
import struct

import pytest

from stacklab.net.network import Network
from stacklab.stack.udp import PacketTooBigError
from stacklab.wire.addr import ip_bytes
from stacklab.wire.ethernet import ETH_P_IPV4, ETH_P_IPV6, build_ethernet
from stacklab.wire.icmpv4 import build_icmpv4
from stacklab.wire.icmpv6 import build_icmpv6
from stacklab.wire.ipv4 import build_ipv4
from stacklab.wire.ipv6 import IPv6


@pytest.fixture
def net():
    n = Network(seed=21)
    yield n
    n.close()


def line(net, mtus=(1500, 1400, 1500)):
    a, r1, r2, b = (net.add_host("a"), net.add_router("r1"), net.add_router("r2"),
                    net.add_host("b"))
    net.connect(a, r1, mtu=mtus[0], delay="2ms")
    net.connect(r1, r2, mtu=mtus[1], delay="2ms")
    net.connect(r2, b, mtu=mtus[2], delay="2ms")
    net.autoconfigure()
    return a, r1, r2, b


def test_udp_df_learns_pmtu_ip_mtu_getter_emsgsize_and_aging(net):
    a, r1, r2, b = line(net)
    seen = {}

    async def main():
        sink = b.udp_socket(4)
        sink.bind(("", 9000))
        s = a.udp_socket(4, df=True)
        s.connect(("b", 9000))
        assert s.mtu == 1500 and s.max_payload() == 1472  # nothing learned yet
        assert a.route_get("b") == "10.0.3.2 via 10.0.1.2 dev eth0 src 10.0.1.1"
        await s.send(bytes(1472))  # a 1500-byte packet with DF: r1 answers Frag Needed 1400
        await asyncio.sleep(0.1)
        ((_, entry),) = a.pmtu.entries(net.now)
        assert entry.expires == entry.learned_at + 600
        with pytest.raises(PacketTooBigError) as ei:  # the error, queued on the socket
            await s.send(b"x")
        assert ei.value.errno == errno.EMSGSIZE and ei.value.mtu == 1400
        seen["after"] = (s.mtu, s.max_payload(), a.route_get("b"), a.pmtu.format(net.now))
        with pytest.raises(PacketTooBigError) as ei:  # refused locally now
            await s.send(bytes(1373))
        assert ei.value.mtu == 1400
        await s.send(bytes(1372))  # fits exactly
        got = await asyncio.wait_for(sink.recv(), 1)
        seen["got"] = len(got)
        await asyncio.sleep(entry.expires - net.now - 0.01)
        seen["just_before"] = a.path_mtu(ip_bytes("10.0.3.2"))
        await asyncio.sleep(0.02)
        seen["after_expiry"] = (a.path_mtu(ip_bytes("10.0.3.2")), s.mtu, a.route_get("b"),
                                len(a.pmtu))

    net.run(main(), until="700s")
    mtu, maxp, route, table = seen["after"]
    assert (mtu, maxp) == (1400, 1372)
    assert route == "10.0.3.2 via 10.0.1.2 dev eth0 src 10.0.1.1 mtu 1400 expires 599s"
    assert table == "10.0.3.2 mtu 1400 expires 599s"
    assert seen["got"] == 1372
    assert a.counters["udp.tx.emsgsize"] == 1 and r1.counters["icmp.tx.3/4"] == 1
    assert seen["just_before"] == 1400  # 10 minutes, on virtual time
    assert seen["after_expiry"] == (1500, 1500, "10.0.3.2 via 10.0.1.2 dev eth0 src 10.0.1.1", 0)
    assert a.counters["pmtu.expired"] == 1


def test_route_get_v6_and_local(net):
    a, r1, r2, b = line(net, (1500, 1280, 1500))

    async def main():
        s = a.udp_socket(6, df=True)
        s.connect(("fd00:0:0:3::2", 9))
        await s.send(bytes(1452))  # 1500 bytes: Packet Too Big 1280 from r1
        await asyncio.sleep(0.05)
        return a.route_get("fd00:0:0:3::2"), a.route_get("10.0.1.1")

    six, local = net.run(main(), until="5s")
    assert six.startswith("fd00:0:0:3::2 via fd00:0:0:1::2 dev eth0 src fd00:0:0:1::1 mtu 1280 "
                          "expires 59")
    assert local == "local 10.0.1.1 dev lo src 10.0.1.1"


# -- forged ICMP --------------------------------------------------------------------------------
def frag_needed(a, r1_mac, r1_ip, quoted_src, quoted_dst, proto, l4, mtu, tot_len=1500):
    quoted = build_ipv4(quoted_src, quoted_dst, proto, l4, 64, 1, True, False, 0, 0)
    quoted[2:4] = struct.pack("!H", tot_len)  # the quote is truncated, its header says 1500
    icmp = build_icmpv4(3, 4, struct.pack("!HH", 0, mtu), bytes(quoted))
    ip = build_ipv4(r1_ip, quoted_src, 1, icmp, 64, 7, False, False, 0, 0)
    return bytes(build_ethernet(a.interfaces[0].mac, r1_mac, ETH_P_IPV4, ip))


def test_forged_frag_needed_is_ignored_and_counted(net):
    a, r1, r2, b = line(net, (1500, 1500, 1500))
    A, B, R1 = ip_bytes("10.0.1.1"), ip_bytes("10.0.3.2"), ip_bytes("10.0.1.2")
    r1_mac = r1.interfaces[0].mac
    out = {}

    async def main():
        await b.start_server(lambda r, w: None, 80)
        reader, writer = await a.open_connection("b", 80)
        await asyncio.sleep(0.1)
        (tcb,) = a.tcp.conns.values()
        una = tcb.snd_una

        def inject(sport, seq, mtu, proto=6, dport=80):
            l4 = struct.pack("!HHI", sport, dport, seq) + bytes(12)
            a.receive_frame(0, frag_needed(a, r1_mac, R1, A, B, proto, l4, mtu), net.now)

        inject(tcb.local_port + 1, una, 1200)  # no such connection
        inject(tcb.local_port, (una + 100_000) & 0xFFFFFFFF, 1200)  # seq not in flight
        inject(tcb.local_port, (una - 1) & 0xFFFFFFFF, 1200)  # already acknowledged
        inject(40000, 0, 1200, proto=17, dport=53)  # UDP: no socket sent that
        inject(tcb.local_port, una, 1200, proto=132)  # SCTP: no such transport here
        out["ignored"] = (a.path_mtu(B), tcb.snd_mss)
        cwnd, ssthresh = tcb.cc.cwnd, tcb.cc.ssthresh
        inject(tcb.local_port, una, 1300)  # matches: believed
        out["valid"] = (a.path_mtu(B), tcb.snd_mss, tcb.cc.cwnd == cwnd,
                        tcb.cc.ssthresh == ssthresh)
        inject(tcb.local_port, una, 100)  # below the 552 floor: clamped
        out["clamped"] = a.path_mtu(B)
        inject(tcb.local_port, una, 1400)  # higher than what we know: ignored
        out["higher"] = a.path_mtu(B)
        writer.close()

    net.run(main(), until="5s")
    c = a.counters
    assert out["ignored"] == (1500, 1448)
    assert c["pmtu.ignored.no_flow"] == 2 and c["pmtu.ignored.seq_outside_window"] == 2
    assert c["pmtu.ignored.no_transport"] == 1
    assert out["valid"] == (1300, 1300 - 40 - 12, True, True)  # MSS down, cwnd untouched
    assert out["clamped"] == 552 and c["pmtu.clamped"] == 1
    assert out["higher"] == 552 and c["pmtu.ignored_not_lower"] == 1
    assert c["pmtu.lowered"] == 2


def test_forged_packet_too_big_v6_and_minimum(net):
    a, r1, r2, b = line(net, (1500, 1500, 1500))
    A, B = ip_bytes("fd00:0:0:1::1"), ip_bytes("fd00:0:0:3::2")
    R1 = ip_bytes("fd00:0:0:1::2")
    out = {}

    async def main():
        s = a.udp_socket(6)
        s.connect(("fd00:0:0:3::2", 5000))

        def inject(sport, mtu):
            udp = struct.pack("!HHHH", sport, 5000, 1460, 0)
            quoted = IPv6(A, B, 17, udp + bytes(1000)).build()
            body = struct.pack("!I", mtu) + bytes(quoted)
            icmp = build_icmpv6(R1, A, 2, 0, body)
            ip = IPv6(R1, A, 58, icmp).build()
            frame = build_ethernet(a.interfaces[0].mac, r1.interfaces[0].mac, ETH_P_IPV6, ip)
            a.receive_frame(0, bytes(frame), net.now)

        port = s.getsockname()[1]
        inject(port + 1, 1300)  # another port: forged
        out["forged"] = a.path_mtu(B)
        inject(port, 1000)  # ours, below IPv6's minimum: clamped to 1280 (RFC 8201 §4)
        out["clamped"] = (a.path_mtu(B), s.mtu)

    net.run(main(), until="2s")
    assert out["forged"] == 1500 and a.counters["pmtu.ignored.no_flow"] == 1
    assert out["clamped"] == (1280, 1280) and a.counters["pmtu.clamped"] == 1


def test_rfc1191_mtu_zero_uses_plateau_of_quoted_length(net):
    a, r1, r2, b = line(net, (1500, 1500, 1500))
    A, B, R1 = ip_bytes("10.0.1.1"), ip_bytes("10.0.3.2"), ip_bytes("10.0.1.2")

    async def main():
        s = a.udp_socket(4, df=True)
        s.connect(("b", 7))
        port = s.getsockname()[1]
        l4 = struct.pack("!HHHH", port, 7, 1480, 0)
        frame = frag_needed(a, r1.interfaces[0].mac, R1, A, B, 17, l4, 0, tot_len=1500)
        a.receive_frame(0, frame, net.now)
        return s.mtu

    assert net.run(main(), until="2s") == 1492  # the plateau below 1500
    assert a.counters["pmtu.plateau"] == 1
