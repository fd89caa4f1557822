"""Fuzz: garbage and mutated valid frames only ever raise MalformedPacket, in every wire module,
and summarize() never raises nor falls back to its internal-error line."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptSrcLLAddr,
    ICMPv6PacketTooBig,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.inet6 import IPv6 as SIPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from stacklab.wire import MalformedPacket, arp, ethernet, icmpv4, icmpv6, ipv4, ipv6, tcp, udp
from stacklab.wire.summary import summarize

E = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
A, B = "10.0.0.1", "10.0.0.2"
A6, B6 = "2001:db8::1", "2001:db8::2"
TCP_OPTS = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 2)), ("NOP", None),
            ("WScale", 7)]

CORPUS: list[bytes] = [bytes(p) for p in [
    E / IP(src=A, dst=B) / TCP(sport=5000, dport=80, flags="S", options=TCP_OPTS),
    E / IP(src=A, dst=B) / TCP(sport=1, dport=2, flags="PA", options=[
        ("NOP", None), ("NOP", None), ("SAck", (10, 20, 30, 40))]) / Raw(b"data" * 10),
    E / Dot1Q(vlan=7) / IP(src=A, dst=B, options=b"\x94\x04\x00\x00") / UDP(sport=5, dport=6)
    / Raw(b"hello"),
    E / ARP(psrc=A, pdst=B),
    E / IP(src=A, dst=B) / ICMP(type=8, id=1, seq=2) / Raw(b"x" * 32),
    E / IP(src=B, dst=A) / ICMP(type=3, code=4, nexthopmtu=1400) / IP(src=A, dst=B)
    / UDP(sport=5, dport=6),
    E / IP(src=B, dst=A) / ICMP(type=11) / IP(src=A, dst=B) / TCP(sport=7, dport=8),
    E / SIPv6(src="fe80::1", dst="ff02::1:ff00:2") / ICMPv6ND_NS(tgt="fe80::2")
    / ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:00:01"),
    E / SIPv6(src="fe80::2", dst="fe80::1") / ICMPv6ND_NA(tgt="fe80::2", R=0, S=1, O=1)
    / ICMPv6NDOptDstLLAddr(lladdr="02:00:00:00:00:02"),
    E / SIPv6(src="fe80::1", dst="ff02::1") / ICMPv6ND_RA() / ICMPv6NDOptPrefixInfo(
        prefix="2001:db8::", prefixlen=64) / ICMPv6NDOptMTU(mtu=1500),
    E / SIPv6(src=A6, dst=B6) / ICMPv6PacketTooBig(mtu=1280) / SIPv6(src=B6, dst=A6)
    / UDP(sport=1, dport=2),
    E / SIPv6(src=A6, dst=B6) / ICMPv6DestUnreach(code=4) / SIPv6(src=B6, dst=A6)
    / UDP(sport=1, dport=2),
    E / SIPv6(src=A6, dst=B6) / IPv6ExtHdrHopByHop() / ICMPv6EchoRequest(id=1, seq=1),
    E / SIPv6(src=A6, dst=B6) / IPv6ExtHdrFragment(m=1, id=5) / UDP(sport=1, dport=2),
    E / SIPv6(src=A6, dst=B6) / IPv6ExtHdrRouting(addresses=[B6]) / IPv6ExtHdrDestOpt()
    / TCP(sport=1, dport=2, flags="A", options=[("Timestamp", (5, 6))]) / Raw(b"z" * 20),
]]
# and frames from our own builders
CORPUS.append(bytes(ethernet.build_ethernet(
    b"\x02" * 6, b"\x04" * 6, ethernet.ETH_P_IPV4,
    ipv4.build_ipv4(b"\x0a\0\0\1", b"\x0a\0\0\2", 6, tcp.build_tcp(
        b"\x0a\0\0\1", b"\x0a\0\0\2", 1, 2, 3, 4, tcp.SYN | tcp.ACK, 5,
        b"p" * 11, tcp.encode_options(mss=1400, wscale=3, sack_permitted=True,
                                     timestamps=(9, 8)))))))
CORPUS.append(bytes(ethernet.build_ethernet(
    b"\x02" * 6, b"\x04" * 6, ethernet.ETH_P_IPV6, ipv6.IPv6(
        bytes(16), b"\1" * 16, 17, udp.build_udp(bytes(16), b"\1" * 16, 1, 2, b"q" * 9),
        ext_headers=[ipv6.HopByHop(b"\x05\x02\x00\x00"),
                     ipv6.Fragment(0, False, 1)]).build())))

ADDR4 = (b"\x0a\0\0\1", b"\x0a\0\0\2")
ADDR6 = (bytes(16), b"\1" * 16)


# Icmpv6View's getters are per message type (reading reachable_time of an echo request is not
# something a stack does): only the getters of the message's own type are read.
_ICMP6_COMMON = {"rest", "payload", "checksum_ok", "type", "code", "checksum", "buf"}
_ICMP6_GETTERS = {
    128: {"ident", "seq", "data"}, 129: {"ident", "seq", "data"},
    1: {"quoted"}, 2: {"mtu", "quoted"}, 3: {"quoted"}, 4: {"pointer", "quoted"},
    133: {"ndp_options", "source_lladdr"},
    134: {"cur_hop_limit", "managed", "other", "router_lifetime", "reachable_time",
          "retrans_timer", "ndp_options", "source_lladdr"},
    135: {"target", "ndp_options", "source_lladdr"},
    136: {"target", "na_flags", "router", "solicited", "override", "ndp_options",
          "target_lladdr"},
}


def touch(obj: Any) -> None:
    """Read every public property and call every public method taking no argument or
    (src, dst) addresses, as a stack or a printer would."""
    names = [n for n in dir(type(obj)) if not n.startswith("_")]
    if isinstance(obj, icmpv6.Icmpv6View):
        allowed = _ICMP6_COMMON | _ICMP6_GETTERS.get(obj.type, set())
        names = [n for n in names if n in allowed]
    for name in names:
        try:
            attr = getattr(obj, name)
            if inspect.ismethod(attr):
                params = [p for p in inspect.signature(attr).parameters.values()
                          if p.default is p.empty]
                if not params:
                    attr()
                elif len(params) == 2:
                    attr(*ADDR4)
                    attr(*ADDR6)
        except MalformedPacket:
            pass


def _views_and_parsers() -> list[Callable[[Any], Any]]:
    fns: list[Callable[[Any], Any]] = [
        ethernet.EthernetView, ethernet.Ethernet.parse,
        arp.ArpView, arp.Arp.parse,
        ipv4.IPv4View, ipv4.IPv4.parse,
        ipv6.IPv6View, ipv6.IPv6.parse, ipv6.parse_tlv_options,
        lambda b: ipv6.walk_ext_headers(ipv6.IPv6View(b)),
        udp.UdpView, udp.Udp.parse, lambda b: udp.Udp.parse(b, *ADDR4),
        lambda b: udp.Udp.parse(b, *ADDR6),
        icmpv4.IcmpView, icmpv4.Icmpv4.parse,
        icmpv6.Icmpv6View, lambda b: icmpv6.parse_icmpv6(b, *ADDR6), icmpv6.parse_icmpv6,
        icmpv6.parse_ndp_options,
        tcp.TcpView, tcp.parse_options, lambda b: tcp.TcpSegment.parse(b, *ADDR4),
        lambda b: tcp.TcpSegment.parse(b, *ADDR6),
    ]
    return fns


PARSERS = _views_and_parsers()


def every_parser(buf: bytes, all_types: bool = True) -> None:
    bufs = (buf, memoryview(buf), bytearray(buf)) if all_types else (memoryview(buf),)
    for fn in PARSERS:
        for b in bufs:
            try:
                obj = fn(b)
            except MalformedPacket:
                continue
            if obj is not None and not isinstance(obj, list | tuple):
                touch(obj)
                if hasattr(obj, "summary"):
                    obj.summary()


def decode_like_a_stack(frame: bytes) -> None:
    """Ethernet → ARP / IPv4 / IPv6 (+ extension headers) → UDP / TCP / ICMP / ICMPv6."""
    try:
        eth = ethernet.EthernetView(frame)
    except MalformedPacket:
        return
    try:
        if eth.ethertype == ethernet.ETH_P_ARP:
            touch(arp.ArpView(eth.payload))
            return
        if eth.ethertype == ethernet.ETH_P_IPV4:
            ip4 = ipv4.IPv4View(eth.payload)
            touch(ip4)
            src, dst, proto, data = ip4.src, ip4.dst, ip4.proto, ip4.payload
        elif eth.ethertype == ethernet.ETH_P_IPV6:
            ip6 = ipv6.IPv6View(eth.payload)
            touch(ip6)
            proto, off, _frag, exts = ipv6.walk_ext_headers(ip6)
            for e in exts:
                if isinstance(e, ipv6.HopByHop | ipv6.DestinationOptions):
                    e.tlvs()
            src, dst, data = ip6.src, ip6.dst, ip6.buf[off:40 + ip6.payload_length]
        else:
            return
        if proto == 6:
            v: Any = tcp.TcpView(data)
        elif proto == 17:
            v = udp.UdpView(data)
        elif proto == 1:
            v = icmpv4.IcmpView(data)
        elif proto == 58:
            v = icmpv6.Icmpv6View(data)
        else:
            return
        touch(v)
        if hasattr(v, "checksum_ok"):
            try:
                v.checksum_ok(src, dst)
            except TypeError:
                v.checksum_ok()
    except MalformedPacket:
        pass


def check_summary(frame: bytes) -> None:
    for link in ("ether", "raw"):
        line = summarize(frame, link)
        assert isinstance(line, str) and line
        assert "[summary error" not in line, line
    if len(frame) > 14:
        assert "[summary error" not in summarize(frame[14:], "raw")


def test_corpus_is_valid() -> None:
    # the unmutated corpus decodes without any malformed note
    for frame in CORPUS:
        line = summarize(frame)
        assert "malformed" not in line and "bad" not in line, line
        decode_like_a_stack(frame)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_garbage(buf: bytes) -> None:
    every_parser(buf)
    check_summary(buf)
    decode_like_a_stack(buf)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    frame = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(0, 6))):
        i = draw(st.integers(0, len(frame) - 1))
        frame[i] = draw(st.integers(0, 255))
    how = draw(st.sampled_from(["keep", "truncate", "extend"]))
    if how == "truncate":
        frame = frame[:draw(st.integers(0, len(frame)))]
    elif how == "extend":
        frame += draw(st.binary(min_size=1, max_size=40))
    return bytes(frame)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_frames(frame: bytes) -> None:
    check_summary(frame)
    decode_like_a_stack(frame)
    # every parser on every layer boundary of the frame
    for off in (14, 18, 34, 38, 54, 58, 62):
        if off < len(frame):
            every_parser(frame[off:], all_types=False)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(CORPUS), st.data())
def test_truncations_at_every_length(frame: bytes, data: st.DataObject) -> None:
    n = data.draw(st.integers(0, len(frame)))
    check_summary(frame[:n])
    decode_like_a_stack(frame[:n])
