"""The Host engine without a simulator: frames in, frames out, time passed by hand."""

from __future__ import annotations

import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from stacklab.stack.host import Host
from stacklab.stack.neighbor import Nud
from stacklab.stack.router import Router
from stacklab.wire.addr import ip_bytes
from stacklab.wire.arp import ARP_REPLY, ARP_REQUEST, ArpView, build_arp
from stacklab.wire.ethernet import ETH_P_ARP, ETH_P_IPV4, ETH_P_IPV6, EthernetView, build_ethernet
from stacklab.wire.icmpv4 import IcmpView, build_icmpv4
from stacklab.wire.icmpv6 import Icmpv6View, build_icmpv6
from stacklab.wire.ipv4 import IPv4View, build_ipv4
from stacklab.wire.ipv6 import IPv6View, build_ipv6
from stacklab.wire.udp import build_udp

MAC_H = bytes.fromhex("020000000001")
MAC_P = bytes.fromhex("020000000099")
H4, P4 = ip_bytes("10.0.0.1"), ip_bytes("10.0.0.2")
H6, P6 = ip_bytes("fd00::1"), ip_bytes("fd00::2")


def make_host(cls=Host) -> Host:
    h = cls("h", rng=random.Random(1))
    h.ndp.dad_transmits = 0  # DAD has its own test; keep frames_to_send() to what we cause
    h.add_interface("eth0", MAC_H)
    h.add_address(0, "10.0.0.1/24")
    h.add_address(0, "fd00::1/64")
    h.frames_to_send()
    return h


def eth4(pkt: bytes, dst=MAC_H) -> bytes:
    return bytes(build_ethernet(dst, MAC_P, ETH_P_IPV4, pkt))


def eth6(pkt: bytes, dst=MAC_H) -> bytes:
    return bytes(build_ethernet(dst, MAC_P, ETH_P_IPV6, pkt))


def sent(h: Host) -> list[EthernetView]:
    return [EthernetView(f) for _, f in h.frames_to_send()]


def udp4(payload=b"hi", dport=9, **kw) -> bytes:
    return bytes(build_ipv4(P4, H4, 17, build_udp(P4, H4, 1234, dport, payload), **kw))


def test_arp_request_for_us_is_answered_and_learned():
    h = make_host()
    req = build_arp(ARP_REQUEST, MAC_P, P4, bytes(6), H4)
    h.receive_frame(0, bytes(build_ethernet(b"\xff" * 6, MAC_P, ETH_P_ARP, req)), 1.0)
    (f,) = sent(h)
    a = ArpView(f.payload)
    assert (f.dst, a.op, a.sha, a.spa, a.tha, a.tpa) == (MAC_P, ARP_REPLY, MAC_H, H4, MAC_P, P4)
    assert h.neighbors.lookup("10.0.0.2").state is Nud.STALE
    # a request for someone else is not answered and creates nothing
    other = build_arp(ARP_REQUEST, bytes.fromhex("020000000077"), ip_bytes("10.0.0.7"),
                      bytes(6), ip_bytes("10.0.0.8"))
    h.receive_frame(0, bytes(build_ethernet(b"\xff" * 6, MAC_P, ETH_P_ARP, other)), 1.0)
    assert sent(h) == [] and h.neighbors.lookup("10.0.0.7") is None


def test_neighbor_state_machine_incomplete_reachable_stale_delay_probe_failed():
    h = make_host()
    assert h.ip_send(None, P4, 17, b"x" * 8, 0.0) is None
    (req,) = sent(h)
    assert req.dst == b"\xff" * 6 and ArpView(req.payload).tpa == P4
    n = h.neighbors.lookup("10.0.0.2")
    assert n.state is Nud.INCOMPLETE and len(n.queue) == 1
    reply = build_arp(ARP_REPLY, MAC_P, P4, MAC_H, H4)
    h.receive_frame(0, bytes(build_ethernet(MAC_H, MAC_P, ETH_P_ARP, reply)), 0.01)
    (data,) = sent(h)
    assert data.dst == MAC_P and IPv4View(data.payload).dst == P4  # the queued packet left
    assert n.state is Nud.REACHABLE
    h.handle_timer(100.0)
    assert n.state is Nud.STALE  # reachable_time is 15..45 s
    h.ip_send(None, P4, 17, b"y" * 8, 100.0)
    assert n.state is Nud.DELAY and len(sent(h)) == 1  # still used while DELAY
    h.handle_timer(105.0)
    assert n.state is Nud.PROBE
    (probe,) = sent(h)
    assert probe.dst == MAC_P  # unicast probe
    for t in (106.0, 107.0):
        h.handle_timer(t)
        assert len(sent(h)) == 1
    h.handle_timer(108.0)
    assert n.state is Nud.FAILED
    assert h.counters["arp.retries"] == 2


def test_arp_queue_is_bounded():
    h = make_host()
    for i in range(150):
        h.ip_send(None, P4, 17, bytes([i]) * 8, 0.0)
    assert len(h.neighbors.lookup("10.0.0.2").queue) == 101
    assert h.counters["drop.arp.queue_full"] == 49


def _resolve_peer(h: Host) -> None:
    h.interfaces[0].arp.update(P4, MAC_P, 0.0, solicited=True)
    h.interfaces[0].nd.update(P6, MAC_P, 0.0, solicited=True)


def test_echo_request_answered_v4_and_v6():
    h = make_host()
    _resolve_peer(h)
    req = build_ipv4(P4, H4, 1, build_icmpv4(8, 0, struct.pack("!HH", 7, 1), b"abc"))
    h.receive_frame(0, eth4(req), 1.0)
    (f,) = sent(h)
    ip = IPv4View(f.payload)
    m = IcmpView(ip.payload)
    assert (ip.src, ip.dst, m.type, m.ident, m.seq, bytes(m.data)) == (H4, P4, 0, 7, 1, b"abc")
    assert m.checksum_ok() and ip.checksum_ok()
    req6 = build_ipv6(P6, H6, 58, build_icmpv6(P6, H6, 128, 0, struct.pack("!HH", 9, 2) + b"z"))
    h.receive_frame(0, eth6(req6), 1.0)
    (f,) = sent(h)
    ip6 = IPv6View(f.payload)
    m6 = Icmpv6View(ip6.payload)
    assert (m6.type, m6.ident, m6.seq, bytes(m6.data)) == (129, 9, 2, b"z")
    assert m6.checksum_ok(H6, P6)


def test_reassembly_timeout_sends_time_exceeded_code_1():
    h = make_host()
    _resolve_peer(h)
    dgram = build_udp(P4, H4, 1234, 9, bytes(100))
    first = build_ipv4(P4, H4, 17, dgram[:64], ident=42, mf=True)
    h.receive_frame(0, eth4(first), 5.0)
    assert sent(h) == [] and h.ipv4.reasm.get_timer() == 35.0
    h.handle_timer(34.9)
    assert sent(h) == []
    h.handle_timer(35.0)
    (f,) = sent(h)
    m = IcmpView(IPv4View(f.payload).payload)
    assert (m.type, m.code) == (11, 1)
    q = m.quoted
    assert q[:20] == bytes(first[:20])  # the first fragment's header is quoted
    assert h.counters["drop.ipv4.frag_timeout"] == 1


def test_overlapping_ipv6_fragments_drop_the_datagram():
    h = make_host()
    _resolve_peer(h)
    got = []
    s = h.udp.socket(6)
    s.bind(None, 9)
    s.listener = type("L", (), {"datagram_received": lambda self, d, a, n: got.append(d),
                                "error_received": lambda self, e, n: None})()
    dgram = bytes(build_udp(P6, H6, 1234, 9, bytes(range(200)) * 2))

    def frag(off, data, more, ident=5):
        fh = struct.pack("!BBHI", 17, 0, off | more, ident)
        return eth6(bytes(build_ipv6(P6, H6, 44, fh + data)))

    h.receive_frame(0, frag(0, dgram[:200], 1), 0.0)
    h.receive_frame(0, frag(192, dgram[192:], 0), 0.0)  # overlaps [192, 200)
    assert got == [] and h.counters["drop.ipv6.frag_overlap"] == 1
    # the same pieces without overlap, in reverse order, reassemble
    h.receive_frame(0, frag(200, dgram[200:], 0, 6), 0.0)
    h.receive_frame(0, frag(0, dgram[:200], 1, 6), 0.0)
    assert got == [bytes(range(200)) * 2]


def test_router_ttl_and_fragmentation_rules():
    r = Router("r", rng=random.Random(2))
    r.add_interface("eth0", MAC_H)
    r.add_interface("eth1", bytes.fromhex("020000000002"), mtu=576)
    r.add_address(0, "10.0.0.1/24")
    r.add_address(1, "10.0.9.1/24")
    r.frames_to_send()
    r.interfaces[0].arp.update(P4, MAC_P, 0.0, solicited=True)
    far = ip_bytes("10.0.9.5")
    r.interfaces[1].arp.update(far, bytes.fromhex("020000000005"), 0.0, solicited=True)
    # TTL 1: Time Exceeded back to the sender, nothing forwarded
    pkt = build_ipv4(P4, far, 17, build_udp(P4, far, 1, 2, b"x"), ttl=1)
    r.receive_frame(0, eth4(pkt), 1.0)
    (f,) = r.frames_to_send()
    assert f[0] == 0 and IcmpView(IPv4View(EthernetView(f[1]).payload).payload).type == 11
    # 1000 bytes, DF: Fragmentation Needed with MTU 576
    big = build_ipv4(P4, far, 17, build_udp(P4, far, 1, 2, bytes(1000)), df=True, ident=9)
    r.receive_frame(0, eth4(big), 2.0)
    (f,) = r.frames_to_send()
    m = IcmpView(IPv4View(EthernetView(f[1]).payload).payload)
    assert (m.type, m.code, m.next_hop_mtu) == (3, 4, 576)
    # without DF: fragments out of eth1, TTL decremented, checksums valid
    big = build_ipv4(P4, far, 17, build_udp(P4, far, 1, 2, bytes(1000)), ident=9)
    r.receive_frame(0, eth4(big), 3.0)
    out = r.frames_to_send()
    assert [i for i, _ in out] == [1, 1]
    views = [IPv4View(EthernetView(fr).payload) for _, fr in out]
    assert all(v.ttl == 63 and v.checksum_ok() and v.total_length <= 576 for v in views)
    assert sum(len(v.payload) for v in views) == 1008
    # an ICMP error is never sent about an ICMP error
    err = build_ipv4(P4, far, 1, build_icmpv4(3, 3, bytes(4), bytes(pkt[:28])), ttl=1)
    r.receive_frame(0, eth4(err), 4.0)
    assert r.frames_to_send() == [] and r.counters["icmp.suppressed.about_error"] == 1


MALFORMED = {
    "drop.ethernet.length": b"\x01\x02\x03",
    "drop.ethernet.unknown_ethertype": bytes(build_ethernet(MAC_H, MAC_P, 0x88B5, b"x" * 46)),
    "drop.arp.length": bytes(build_ethernet(MAC_H, MAC_P, ETH_P_ARP, b"\x00\x01" * 5)),
    "drop.ipv4.version": eth4(b"\x65" + bytes(19)),
    "drop.ipv4.total_length": eth4(udp4()[:2] + b"\x40\x00" + udp4()[4:]),
    "drop.ipv4.bad_checksum": eth4(udp4()[:10] + b"\x12\x34" + udp4()[12:]),
    "drop.udp.length": eth4(bytes(build_ipv4(P4, H4, 17, b"\x00\x01\x00\x09\x00\x03"))),
    "drop.udp.bad_checksum": eth4(udp4()[:-1] + b"X"),
    "drop.icmp.bad_checksum": eth4(bytes(build_ipv4(P4, H4, 1, b"\x08\x00\x00\x00" + bytes(4)))),
    "drop.icmp.length": eth4(bytes(build_ipv4(P4, H4, 1, b"\x08\x00"))),
    "drop.ipv6.payload_length": eth6(bytes(build_ipv6(P6, H6, 17, bytes(8)))[:44]),
    "drop.ipv6.length": eth6(b"\x60" + bytes(20)),
    "drop.icmpv6.bad_checksum": eth6(bytes(build_ipv6(P6, H6, 58, b"\x80\x00\x00\x00" + bytes(4)))),
    "drop.ndp.invalid": eth6(bytes(build_ipv6(P6, H6, 58, build_icmpv6(
        P6, H6, 135, 0, bytes(4) + H6), hop_limit=64))),
}


def test_malformed_frames_at_every_layer_are_dropped_and_counted():
    h = make_host()
    for counter, frame in MALFORMED.items():
        before = h.counters[counter]
        h.receive_frame(0, frame, 1.0)
        assert h.counters[counter] == before + 1, counter
    assert h.counters["rx.frames"] == len(MALFORMED)


def _valid_frames() -> list[bytes]:
    frames = [eth4(udp4(b"hello", 9)),
              eth4(bytes(build_ipv4(P4, H4, 1, build_icmpv4(8, 0, bytes(4), b"ping")))),
              bytes(build_ethernet(b"\xff" * 6, MAC_P, ETH_P_ARP,
                                   build_arp(ARP_REQUEST, MAC_P, P4, bytes(6), H4))),
              eth6(bytes(build_ipv6(P6, H6, 17, build_udp(P6, H6, 1, 9, b"six")))),
              eth6(bytes(build_ipv6(P6, H6, 58, build_icmpv6(P6, H6, 128, 0, bytes(4) + b"e"))))]
    return frames


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 4), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)),
                                   max_size=6), st.integers(0, 200))
def test_corrupted_frames_never_raise(which, edits, cut):
    for cls in (Host, Router):
        h = make_host(cls)
        frame = bytearray(_valid_frames()[which])
        for pos, val in edits:
            if pos < len(frame):
                frame[pos] = val
        h.receive_frame(0, bytes(frame[:max(cut, 1)] if cut < len(frame) else frame), 1.0)
        h.handle_timer(100.0)
        h.frames_to_send()


def test_ip_send_raises_oserror_with_the_errno_a_socket_would_see():
    """No errno ints come back from the IP layer: ``ip_send`` raises ``OSError`` as Linux's
    ``sendmsg`` fails (ENETUNREACH without a route, EMSGSIZE over the MTU with DF set)."""
    import errno

    import pytest

    h = make_host()
    with pytest.raises(OSError) as no_route:
        h.ip_send(None, ip_bytes("192.0.2.1"), 17, b"x" * 8, 0.0)
    assert no_route.value.errno == errno.ENETUNREACH
    with pytest.raises(OSError) as too_big:
        h.ip_send(None, P4, 17, bytes(2000), 0.0, df=True)
    assert too_big.value.errno == errno.EMSGSIZE
    with pytest.raises(OSError) as no_route6:
        h.ip_send(None, ip_bytes("2001:db8::1"), 17, b"x" * 8, 0.0)
    assert no_route6.value.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)
    assert h.counters["drop.ipv4.tx_no_route"] == 1


def test_receive_frame_takes_bytes_and_memoryviews_on_known_interfaces_only():
    h = make_host()
    _resolve_peer(h)
    req = eth4(build_ipv4(P4, H4, 1, build_icmpv4(8, 0, struct.pack("!HH", 7, 1), b"abc")))
    for ifindex in (1, -1):  # no such interface (an index from the end is none either)
        h.receive_frame(ifindex, req, 1.0)
    assert h.counters["drop.link.no_interface"] == 2 and not h.frames_to_send()
    # a TAP device hands over a memoryview: to our MAC it is taken as the bytes are
    for frame in (req, memoryview(b"\0" * 4 + req)[4:]):
        h.receive_frame(0, frame, 1.0)
        (f,) = sent(h)
        assert IcmpView(IPv4View(f.payload).payload).type == 0
    other = eth4(bytes(IPv4View(req[14:]).buf), dst=bytes.fromhex("020000000077"))
    for frame in (other, memoryview(other)):
        h.receive_frame(0, frame, 1.0)
    assert h.counters["drop.ethernet.not_our_mac"] == 2 and not h.frames_to_send()
