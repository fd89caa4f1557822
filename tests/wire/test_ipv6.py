from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet6 import (
    HBHOptUnknown,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.inet6 import IPv6 as SIPv6
from scapy.packet import Raw

from stacklab.wire import MalformedPacket
from stacklab.wire.addr import ip6_str
from stacklab.wire.ipv6 import (
    MAX_EXT_HEADERS,
    DestinationOptions,
    Fragment,
    HopByHop,
    IPv6,
    IPv6View,
    Routing,
    build_ipv6,
    build_tlv_options,
    pad_options,
    parse_tlv_options,
    walk_ext_headers,
)
from stacklab.wire.proto import PROTO_NONE

from .conftest import h, ip6s, u8

SRC = h("20010db8000000000000000000000001")
DST = h("20010db8000000000000000000000002")

# RFC 8200 §3: version 6, traffic class 0xb8, flow label 0x12345, payload length 8,
# next header 58 (ICMPv6), hop limit 255.
FIXED = h("6b812345 0008 3a ff") + SRC + DST
# §4.3 Hop-by-Hop: next header 43, hdr ext len 0, Router Alert (RFC 2711: 05 02 0000), PadN(0)
HBH = h("2b 00 05 02 0000 01 00")
# §4.4 Routing: next header 44, len 2 (24 bytes), type 253 (experimental), segleft 1,
# 4 reserved bytes and one address.
RH = h("2c 02 fd 01 00000000") + DST
# §4.5 Fragment: next header 60, reserved, offset 0 | M, id 0x12345678 (a first fragment)
FH = h("3c 00 0001 12345678")
# §4.6 Destination Options: next header 17, len 0, PadN with 4 zero bytes
DO = h("11 00 01 04 00000000")
UPPER = b"udpdata!"


def fixed(nh: int, payload: bytes) -> bytes:
    return h("60000000") + len(payload).to_bytes(2, "big") + bytes((nh, 64)) + SRC + DST + payload


CHAIN = fixed(0, HBH + RH + FH + DO + UPPER)
# A non-first fragment (offset 181 (1448 bytes) << 3 | M): what follows is fragment data.
LATER_FRAGMENT = fixed(44, h("06 00 05a9 12345678") + b"tcpdata")


def test_fixed_header_vector() -> None:
    v = IPv6View(FIXED + b"icmpv6!!")
    assert (v.version, v.traffic_class, v.flow_label) == (6, 0xB8, 0x12345)
    assert (v.payload_length, v.next_header, v.hop_limit) == (8, 58, 255)
    assert (v.src, v.dst) == (SRC, DST)
    assert isinstance(v.payload, memoryview) and bytes(v.payload) == b"icmpv6!!"
    assert walk_ext_headers(v) == (58, 40, None, [])
    assert build_ipv6(SRC, DST, 58, b"icmpv6!!", 255, 0xB8, 0x12345) == FIXED + b"icmpv6!!"


def test_chain_vector_walk() -> None:
    v = IPv6View(CHAIN)
    upper, off, frag, exts = walk_ext_headers(v)
    assert upper == 17
    assert off == 40 + len(HBH + RH + FH + DO)
    assert bytes(v.buf[off:]) == UPPER
    assert frag == Fragment(0, True, 0x12345678, 60)
    assert exts == [HopByHop(h("0502 0000 0100")), Routing(253, 1, h("00000000") + DST),
                    frag, DestinationOptions(h("0104 00000000"))]
    assert exts[0].tlvs() == [(5, h("0000"))]


def test_chain_vector_build() -> None:
    p = IPv6(SRC, DST, 17, UPPER, ext_headers=[
        HopByHop(h("0502 0000")), Routing(253, 1, h("00000000") + DST),
        Fragment(0, True, 0x12345678), DestinationOptions()])
    assert p.build() == CHAIN
    q = IPv6.parse(CHAIN)
    assert q.next_header == 17 and q.payload == UPPER and q.build() == CHAIN


def test_later_fragment_stops_walk() -> None:
    upper, off, frag, exts = walk_ext_headers(IPv6View(LATER_FRAGMENT))
    assert (upper, off) == (6, 48)
    assert frag is not None and (frag.offset, frag.more, frag.ident) == (1448, True, 0x12345678)
    assert exts == [frag]


def test_no_next_header() -> None:
    pkt = fixed(60, h("3b 00 01 04 00000000"))
    v = IPv6View(pkt)
    assert walk_ext_headers(v)[:2] == (PROTO_NONE, 48)
    assert IPv6.parse(pkt).payload == b""


def test_trailing_padding_ignored() -> None:
    v = IPv6View(FIXED + b"icmpv6!!" + bytes(10))
    assert bytes(v.payload) == b"icmpv6!!"


@pytest.mark.parametrize(
    "packet, field",
    [
        (FIXED[:39], "length"),
        (h("4b") + FIXED[1:] + bytes(8), "version"),
        (FIXED + bytes(7), "payload_length"),
    ],
)
def test_malformed_fixed(packet: bytes, field: str) -> None:
    with pytest.raises(MalformedPacket) as ei:
        IPv6View(packet)
    assert (ei.value.layer, ei.value.field) == ("ipv6", field)


@pytest.mark.parametrize(
    "packet, field",
    [
        (fixed(60, h("00 00 01 04 00000000") + HBH), "hop_by_hop"),  # HbH second
        (fixed(0, h("3b 01 01 04 00000000")), "ext_header"),  # says 16 bytes, has 8
        (fixed(44, h("3b 00 0000")), "ext_header"),  # fragment header cut short
        (fixed(43, RH[:20]), "ext_header"),
        (fixed(60, h("3c 00 01 04 00000000") * (MAX_EXT_HEADERS + 1)), "ext_headers"),
    ],
)
def test_malformed_chain(packet: bytes, field: str) -> None:
    with pytest.raises(MalformedPacket) as ei:
        walk_ext_headers(IPv6View(packet))
    assert (ei.value.layer, ei.value.field) == ("ipv6", field)
    with pytest.raises(MalformedPacket):
        IPv6.parse(packet)


def test_max_ext_headers_allowed() -> None:
    pkt = fixed(60, h("3c 00 01 04 00000000") * (MAX_EXT_HEADERS - 1) + h("3b00 0104 00000000"))
    assert len(walk_ext_headers(IPv6View(pkt))[3]) == MAX_EXT_HEADERS


def test_tlv_options() -> None:
    # Pad1, RA(0), PadN(1 zero), unknown 0x1e "ab"
    data = h("00 0502 0000 0101 00 1e02 6162")
    assert parse_tlv_options(data) == [(5, h("0000")), (0x1E, b"ab")]
    assert parse_tlv_options(data, keep_padding=True) == [
        (0, b""), (5, h("0000")), (1, h("00")), (0x1E, b"ab")]
    assert build_tlv_options(parse_tlv_options(data, keep_padding=True)) == data
    with pytest.raises(MalformedPacket):
        parse_tlv_options(h("0505 0000"))
    with pytest.raises(MalformedPacket):
        parse_tlv_options(h("00 05"))


@pytest.mark.parametrize("n", range(17))
def test_pad_options_lengths(n: int) -> None:
    opts = bytes((0x1E, n)) + b"x" * n
    padded = pad_options(opts)
    assert (2 + len(padded)) % 8 == 0 and len(padded) - len(opts) < 8
    assert padded.startswith(opts)
    assert parse_tlv_options(padded) == [(0x1E, b"x" * n)]  # only Pad1/PadN were added


def test_pad1_vs_padn() -> None:
    assert pad_options(h("1e03 616263")) == h("1e03 616263 00")  # one octet: Pad1
    assert pad_options(b"") == h("0104 00000000")


def test_build_errors() -> None:
    with pytest.raises(ValueError):
        Routing(0, 0, b"abc").build(6)
    with pytest.raises(ValueError):
        Fragment(3).build(6)
    with pytest.raises(ValueError):
        build_ipv6(SRC, DST, 6, bytes(65536))
    with pytest.raises(ValueError):
        build_ipv6(SRC, DST, 6, b"", flow_label=1 << 20)


def test_summary() -> None:
    assert IPv6.parse(CHAIN).summary() == (
        "2001:db8::1 > 2001:db8::2: HBH srcrt (type 253, segleft 1) frag (0x12345678:0+) "
        "DSTOPT UDP, hlim 64, length 8")


# -- scapy cross-checks ------------------------------------------------------------------------

OPT_TYPES = [0x1E, 0x3E, 0x5E, 0x7E, 0x9E, 0xBE, 0xDE, 0xFE]  # RFC 4727 experimental types
tlvs = st.lists(st.tuples(st.sampled_from(OPT_TYPES), st.binary(max_size=12)), max_size=4)
routing = st.builds(lambda t, sl, n: Routing(t, sl, bytes(4) + bytes(range(16)) * n),
                    st.sampled_from([0, 253, 254]), u8, st.integers(0, 3))


@st.composite
def chains(draw: st.DrawFn) -> list:
    exts: list = []
    if draw(st.booleans()):
        exts.append(HopByHop(build_tlv_options(draw(tlvs))))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["dst", "rt"]))
        if kind == "dst":
            exts.append(DestinationOptions(build_tlv_options(draw(tlvs))))
        else:
            exts.append(draw(routing))
    if draw(st.booleans()):
        exts.append(Fragment(draw(st.integers(0, 0x1FFF)) * 8, draw(st.booleans()),
                             draw(st.integers(0, 0xFFFFFFFF))))
    return exts


def _scapy_exts(p: SIPv6) -> list:
    out = []
    layer = p.payload
    while isinstance(layer, IPv6ExtHdrHopByHop | IPv6ExtHdrDestOpt | IPv6ExtHdrRouting
                     | IPv6ExtHdrFragment):
        out.append(layer)
        layer = layer.payload
    return out


UPPER_NH = 253  # experimental: neither side dissects it


@settings(max_examples=200, deadline=None)
@given(ip6s, ip6s, chains(), st.binary(max_size=600), u8, u8, st.integers(0, 0xFFFFF))
def test_we_build_scapy_parses(src: bytes, dst: bytes, exts: list, payload: bytes, hlim: int,
                               tc: int, fl: int) -> None:
    raw = bytes(IPv6(src, dst, UPPER_NH, payload, hlim, tc, fl, exts).build())
    p = SIPv6(raw)
    assert (p.version, p.tc, p.fl, p.hlim, p.plen) == (6, tc, fl, hlim, len(raw) - 40)
    assert p.src == ip6_str(src) and p.dst == ip6_str(dst)
    got = _scapy_exts(p)
    assert len(got) == len(exts)
    nhs = [p.nh] + [g.nh for g in got]
    assert nhs == [e.proto for e in exts] + [UPPER_NH]
    for ours, theirs in zip(exts, got, strict=True):
        if isinstance(ours, Fragment):
            assert (theirs.offset * 8, theirs.m, theirs.id) == (ours.offset, ours.more,
                                                                 ours.ident)
        elif isinstance(ours, Routing):
            assert isinstance(theirs, IPv6ExtHdrRouting)
            assert (theirs.type, theirs.segleft) == (ours.type, ours.segleft)
            assert theirs.len == (4 + len(ours.data)) // 8 - 1
        else:
            mine = parse_tlv_options(ours.options)
            scapy_opts = [(o.otype, bytes(o.optdata)) for o in theirs.options
                          if o.otype not in (0, 1)]
            assert scapy_opts == mine
            assert (theirs.len + 1) * 8 == 2 + len(pad_options(ours.options))
    last = got[-1].payload if got else p.payload
    assert bytes(last) == payload


@settings(max_examples=200, deadline=None)
@given(ip6s, ip6s, chains(), st.binary(max_size=600), u8, u8, st.integers(0, 0xFFFFF))
def test_scapy_builds_we_parse(src: bytes, dst: bytes, exts: list, payload: bytes, hlim: int,
                               tc: int, fl: int) -> None:
    pkt = SIPv6(src=ip6_str(src), dst=ip6_str(dst), hlim=hlim, tc=tc, fl=fl)
    for e in exts:
        if isinstance(e, HopByHop | DestinationOptions):
            cls = IPv6ExtHdrHopByHop if isinstance(e, HopByHop) else IPv6ExtHdrDestOpt
            pkt = pkt / cls(options=[HBHOptUnknown(otype=t, optdata=v)
                                     for t, v in parse_tlv_options(e.options)])
        elif isinstance(e, Routing):
            n = (len(e.data) - 4) // 16
            pkt = pkt / IPv6ExtHdrRouting(type=e.type, segleft=e.segleft,
                                          addresses=[ip6_str(bytes(range(16)))] * n)
        else:
            pkt = pkt / IPv6ExtHdrFragment(offset=e.offset // 8, m=int(e.more), id=e.ident)
    pkt = pkt / Raw(payload)
    if exts:
        pkt.lastlayer().underlayer.nh = UPPER_NH
    else:
        pkt.nh = UPPER_NH
    raw = bytes(pkt)
    v = IPv6View(raw)
    assert (v.src, v.dst, v.hop_limit, v.traffic_class, v.flow_label) == (src, dst, hlim, tc, fl)
    assert v.payload_length == len(raw) - 40
    upper, off, frag, got = walk_ext_headers(v)
    assert upper == UPPER_NH and bytes(v.buf[off:]) == payload
    assert [type(g) for g in got] == [type(e) for e in exts]
    for ours, theirs in zip(got, exts, strict=True):
        if isinstance(ours, HopByHop | DestinationOptions):
            assert ours.tlvs() == parse_tlv_options(theirs.options)
        elif isinstance(ours, Fragment):
            assert (ours.offset, ours.more, ours.ident, ours.next_header) == (
                theirs.offset, theirs.more, theirs.ident, UPPER_NH)
            assert frag is ours
        else:
            assert ours == theirs
    # Our value object rebuilds exactly scapy's bytes (same padding choices: Pad1/PadN).
    assert IPv6.parse(raw).build() == raw
