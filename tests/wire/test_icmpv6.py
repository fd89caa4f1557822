from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptSrcLLAddr,
    ICMPv6NDOptUnknown,
    ICMPv6PacketTooBig,
    ICMPv6ParamProblem,
    ICMPv6TimeExceeded,
    IPv6,
    in6_chksum,
)
from scapy.packet import Raw

from stacklab.wire import MalformedPacket
from stacklab.wire.addr import ip6_bytes, ip6_str, mac_str
from stacklab.wire.icmpv6 import (
    DEST_UNREACH,
    ECHO_REPLY,
    ECHO_REQUEST,
    MAX_QUOTE,
    PACKET_TOO_BIG,
    PARAM_PROBLEM,
    TIME_EXCEEDED,
    Icmpv6,
    Icmpv6View,
    MtuOpt,
    NeighborAdvertisement,
    NeighborSolicitation,
    PrefixInfoOpt,
    RouterAdvertisement,
    RouterSolicitation,
    SourceLinkAddrOpt,
    TargetLinkAddrOpt,
    UnknownNdpOpt,
    dest_unreachable,
    echo_reply,
    echo_request,
    packet_too_big,
    param_problem,
    parse_icmpv6,
    time_exceeded,
)

from .conftest import h, ip6s, macs, u8, u16, u32

S = ip6_bytes("2001:db8::1")
D = ip6_bytes("2001:db8::2")
LL1 = ip6_bytes("fe80::1")
LL2 = ip6_bytes("fe80::2")
ALL_NODES = ip6_bytes("ff02::1")
ALL_ROUTERS = ip6_bytes("ff02::2")
SOLICITED_2 = ip6_bytes("ff02::1:ff00:2")
MAC1 = bytes.fromhex("020000000001")
MAC2 = bytes.fromhex("020000000002")


def ref_checksum(src: bytes, dst: bytes, msg: bytes) -> int:
    """RFC 1071 over the RFC 8200 §8.1 pseudo-header and the message, independent of stacklab."""
    data = src + dst + struct.pack("!IxxxB", len(msg), 58) + msg
    data += b"\x00" if len(data) % 2 else b""
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


# Quoted: IPv6 header 2001:db8::1 > 2001:db8::2, UDP, payload length 1500; then the UDP header.
QUOTE = h("6000 0000 05dc 1140") + S + D + h("1388 0035 05dc 0000")
# RFC 4443 / RFC 4861 layouts; checksums computed with ref_checksum, re-checked below.
VECTORS = {
    "echo_request": (S, D, h("8000 4d48 1234 0001 61626364")),
    "echo_reply": (D, S, h("8100 4c48 1234 0001 61626364")),
    "packet_too_big": (D, S, h("0200 b0ed 00000500") + QUOTE),
    "port_unreachable": (D, S, h("0104 b6e9 00000000") + QUOTE),
    "time_exceeded": (D, S, h("0300 b4ed 00000000") + QUOTE),
    "param_problem": (D, S, h("0401 b3c4 00000028") + QUOTE),  # next header, pointer 40
    "rs": (LL1, ALL_ROUTERS, h("8500 7a2c 00000000 0101 020000000001")),
    # hop limit 64, M, lifetime 1800 s; options: source lladdr, MTU 1500,
    # prefix 2001:db8::/64 L+A valid 2592000 s preferred 604800 s
    "ra": (LL1, ALL_NODES, h("""
        8600 ed69 40 80 0708 00000000 00000000
        0101 020000000001
        0501 0000 000005dc
        0304 40 c0 00278d00 00093a80 00000000 20010db8000000000000000000000000
    """)),
    "ns": (LL1, SOLICITED_2, h("8700 7a97 00000000") + LL2 + h("0101 020000000001")),
    "na": (LL2, LL1, h("8800 181a 60000000") + LL2 + h("0201 020000000002")),  # S+O
    # NS with an option unknown to us (type 14, nonce of RFC 3971): kept.
    "ns_unknown_opt": (LL1, SOLICITED_2, h("8700 668c 00000000") + LL2 + h("0e01 010203040506")),
}


@pytest.mark.parametrize("name", list(VECTORS))
def test_vector_checksums_and_round_trip(name: str) -> None:
    src, dst, msg = VECTORS[name]
    assert ref_checksum(src, dst, msg[:2] + b"\x00\x00" + msg[4:]) == \
        struct.unpack_from("!H", msg, 2)[0]
    v = Icmpv6View(msg)
    assert v.checksum_ok(src, dst)
    assert not v.checksum_ok(dst, src[:15] + bytes([src[15] ^ 1]))
    m = parse_icmpv6(msg, src, dst)
    assert m.checksum_valid is True
    assert bytes(m.build(src, dst)) == msg


def test_echo_vectors() -> None:
    _, _, msg = VECTORS["echo_request"]
    v = Icmpv6View(msg)
    assert (v.type, v.code, v.ident, v.seq, bytes(v.data)) == (ECHO_REQUEST, 0, 0x1234, 1, b"abcd")
    assert bytes(echo_request(0x1234, 1, b"abcd").build(S, D)) == msg
    assert bytes(echo_reply(0x1234, 1, b"abcd").build(D, S)) == VECTORS["echo_reply"][2]
    m = parse_icmpv6(VECTORS["echo_reply"][2])
    assert isinstance(m, Icmpv6) and m.type == ECHO_REPLY and m.checksum_valid is None
    assert m.summary() == "ICMP6, echo reply, id 4660, seq 1, length 12"


def test_error_vectors() -> None:
    v = Icmpv6View(VECTORS["packet_too_big"][2])
    assert (v.type, v.mtu, v.quoted) == (PACKET_TOO_BIG, 1280, QUOTE)
    assert bytes(packet_too_big(1280, QUOTE).build(D, S)) == VECTORS["packet_too_big"][2]
    assert bytes(dest_unreachable(4, QUOTE).build(D, S)) == VECTORS["port_unreachable"][2]
    assert bytes(time_exceeded(0, QUOTE).build(D, S)) == VECTORS["time_exceeded"][2]
    assert bytes(param_problem(1, 40, QUOTE).build(D, S)) == VECTORS["param_problem"][2]
    v = Icmpv6View(VECTORS["param_problem"][2])
    assert (v.type, v.code, v.pointer) == (PARAM_PROBLEM, 1, 40)
    assert parse_icmpv6(VECTORS["packet_too_big"][2]).summary() == \
        "ICMP6, packet too big, mtu 1280, length 56"
    assert parse_icmpv6(VECTORS["port_unreachable"][2]).summary() == \
        "ICMP6, destination unreachable, unreachable port, 2001:db8::2 udp port 53, length 56"
    assert parse_icmpv6(VECTORS["time_exceeded"][2]).summary() == \
        "ICMP6, time exceeded in-transit, 2001:db8::2, length 56"


def test_quote_fits_minimum_mtu() -> None:
    m = packet_too_big(1280, QUOTE + bytes(2000))
    assert len(m.quoted) == MAX_QUOTE and 40 + len(m.build(D, S)) == 1280


def test_rs_vector() -> None:
    m = parse_icmpv6(VECTORS["rs"][2])
    assert m == RouterSolicitation([SourceLinkAddrOpt(MAC1)])
    assert Icmpv6View(VECTORS["rs"][2]).source_lladdr() == MAC1
    assert m.summary() == ("ICMP6, router solicitation, length 16, "
                           "source link-address option (02:00:00:00:00:01)")


def test_ra_vector() -> None:
    msg = VECTORS["ra"][2]
    v = Icmpv6View(msg)
    assert (v.cur_hop_limit, v.managed, v.other, v.router_lifetime) == (64, True, False, 1800)
    assert (v.reachable_time, v.retrans_timer) == (0, 0)
    prefix = PrefixInfoOpt(64, True, True, 2592000, 604800, ip6_bytes("2001:db8::"))
    want = RouterAdvertisement(64, True, False, 1800, 0, 0,
                               [SourceLinkAddrOpt(MAC1), MtuOpt(1500), prefix])
    assert RouterAdvertisement.parse(msg) == want and v.ndp_options() == want.options
    assert bytes(want.build(LL1, ALL_NODES)) == msg
    assert "prefix info option (2001:db8::/64, Flags [LA]" in want.summary()


def test_ns_na_vectors() -> None:
    ns = NeighborSolicitation.parse(VECTORS["ns"][2], LL1, SOLICITED_2)
    assert ns == NeighborSolicitation(LL2, [SourceLinkAddrOpt(MAC1)]) and ns.checksum_valid
    assert ns.summary().startswith("ICMP6, neighbor solicitation, who has fe80::2, length 32")
    v = Icmpv6View(VECTORS["na"][2])
    assert (v.target, v.router, v.solicited, v.override) == (LL2, False, True, True)
    assert v.target_lladdr() == MAC2 and v.source_lladdr() is None
    na = NeighborAdvertisement(LL2, False, True, True, [TargetLinkAddrOpt(MAC2)])
    assert bytes(na.build(LL2, LL1)) == VECTORS["na"][2]
    assert "tgt is fe80::2, length 32, Flags [SO]" in na.summary()
    unk = parse_icmpv6(VECTORS["ns_unknown_opt"][2])
    assert unk.options == [UnknownNdpOpt(14, h("010203040506"))]


def _ns(options: bytes) -> bytes:
    return h("8700 0000 00000000") + LL2 + options


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        (b"\x80\x00\x00", "length"),
        (VECTORS["echo_request"][2][:7], "length"),
        (VECTORS["ns"][2][:23], "length"),
        (VECTORS["ra"][2][:15], "length"),
        (h("8800 0000 60000000") + LL2[:8], "length"),
        (h("0200 0000 00000500") + QUOTE[:39], "quoted"),
        (h("0200 0000 00000500") + b"\x40" + QUOTE[1:], "quoted"),  # quotes IPv4
        (_ns(h("0100 020000000001")), "option_length"),  # length 0 (RFC 4861 §4.6)
        (_ns(h("0102 020000000001")), "option_length"),  # 16 bytes, 8 present
        (_ns(h("01")), "option_length"),  # no length byte
        (_ns(h("0302") + bytes(14)), "option_length"),  # prefix info must be 32 bytes
        (_ns(h("0502") + bytes(14)), "option_length"),  # MTU must be 8 bytes
        (h("8500 0000 00000000 0000 000000000000"), "option_length"),
    ],
)
def test_malformed(msg: bytes, field: str) -> None:
    with pytest.raises(MalformedPacket) as e:
        Icmpv6View(msg)
    assert e.value.layer == "icmpv6" and e.value.field == field
    with pytest.raises(MalformedPacket):
        parse_icmpv6(msg, LL1, LL2)


def test_specific_parse_refuses_other_types() -> None:
    with pytest.raises(MalformedPacket) as e:
        NeighborAdvertisement.parse(VECTORS["ns"][2])
    assert e.value.field == "type"


@settings(max_examples=150)
@given(name=st.sampled_from(list(VECTORS)), bit=st.integers(0, 10_000))
def test_bit_flip_detected(name: str, bit: int) -> None:
    src, dst, msg = VECTORS[name]
    buf = bytearray(msg)
    bit %= len(buf) * 8
    buf[bit // 8] ^= 1 << (bit % 8)
    try:
        v = Icmpv6View(buf)
    except MalformedPacket:
        return  # the flip broke the structure (type, option length...): caught earlier
    assert not v.checksum_ok(src, dst)


# -- scapy cross-checks -------------------------------------------------------------------------


def _zeroed(msg: bytes) -> bytes:
    return msg[:2] + b"\x00\x00" + msg[4:]


def _scapy_parse(src: bytes, dst: bytes, msg: bytes) -> IPv6:
    return IPv6(bytes(IPv6(src=ip6_str(src), dst=ip6_str(dst), nh=58) / Raw(msg)))


def _scapy_wire(src: bytes, dst: bytes, layers: object) -> bytes:
    return bytes(IPv6(src=ip6_str(src), dst=ip6_str(dst)) / layers)[40:]


def _check_scapy_checksum(src: bytes, dst: bytes, msg: bytes, parsed: object) -> None:
    assert parsed.cksum == in6_chksum(58, IPv6(src=ip6_str(src), dst=ip6_str(dst)), _zeroed(msg))


@settings(max_examples=100, deadline=None)
@given(src=ip6s, dst=ip6s, ident=u16, seq=u16, data=st.binary(max_size=1232),
       reply=st.booleans())
def test_echo_both_ways(src: bytes, dst: bytes, ident: int, seq: int, data: bytes,
                        reply: bool) -> None:
    ours = bytes((echo_reply if reply else echo_request)(ident, seq, data).build(src, dst))
    cls = ICMPv6EchoReply if reply else ICMPv6EchoRequest
    p = _scapy_parse(src, dst, ours)[cls]
    assert (p.id, p.seq, bytes(p.data)) == (ident, seq, data)
    _check_scapy_checksum(src, dst, ours, p)
    theirs = _scapy_wire(src, dst, cls(id=ident, seq=seq, data=data))
    v = Icmpv6View(theirs)
    assert (v.type, v.ident, v.seq, bytes(v.data)) == (129 if reply else 128, ident, seq, data)
    assert v.checksum_ok(src, dst) and theirs == ours


quoted6 = st.builds(lambda hl, extra: bytes(IPv6(src="2001:db8::a", dst="2001:db8::b", hlim=hl)
                                            / Raw(extra)),
                    u8, st.binary(min_size=8, max_size=1300))


@settings(max_examples=100, deadline=None)
@given(src=ip6s, dst=ip6s, kind=st.sampled_from([1, 2, 3, 4]), code=u8, value=u32,
       quoted=quoted6)
def test_errors_both_ways(src: bytes, dst: bytes, kind: int, code: int, value: int,
                          quoted: bytes) -> None:
    if kind == DEST_UNREACH:
        ours_m, cls, kw = dest_unreachable(code, quoted), ICMPv6DestUnreach, {"code": code}
    elif kind == PACKET_TOO_BIG:
        ours_m, cls, kw = packet_too_big(value, quoted), ICMPv6PacketTooBig, {"mtu": value}
    elif kind == TIME_EXCEEDED:
        ours_m, cls, kw = time_exceeded(code, quoted), ICMPv6TimeExceeded, {"code": code}
    else:
        ours_m = param_problem(code, value, quoted)
        cls, kw = ICMPv6ParamProblem, {"code": code, "ptr": value}
    ours = bytes(ours_m.build(src, dst))
    p = _scapy_parse(src, dst, ours)[cls]
    _check_scapy_checksum(src, dst, ours, p)
    for k, val in kw.items():
        assert getattr(p, k) == val
    theirs = _scapy_wire(src, dst, cls(**kw) / Raw(quoted))
    v = Icmpv6View(theirs)
    assert v.checksum_ok(src, dst) and v.type == kind
    assert v.quoted == quoted[:len(theirs) - 8]
    if kind == PACKET_TOO_BIG:
        assert v.mtu == value
    if kind == PARAM_PROBLEM:
        assert v.pointer == value
    assert bytes(parse_icmpv6(theirs).build(src, dst)) == theirs


prefixes = st.builds(
    PrefixInfoOpt, st.integers(0, 128), st.booleans(), st.booleans(), u32, u32, ip6s)
ndp_option = st.one_of(
    st.builds(SourceLinkAddrOpt, macs),
    st.builds(TargetLinkAddrOpt, macs),
    prefixes,
    st.builds(MtuOpt, u32),
    st.builds(UnknownNdpOpt, st.integers(200, 250),
              st.integers(0, 3).flatmap(lambda n: st.binary(min_size=8 * n + 6,
                                                           max_size=8 * n + 6))),
)
ndp_options = st.lists(ndp_option, max_size=5)


def to_scapy(o: object) -> object:
    match o:
        case SourceLinkAddrOpt(lladdr=a):
            return ICMPv6NDOptSrcLLAddr(lladdr=mac_str(a))
        case TargetLinkAddrOpt(lladdr=a):
            return ICMPv6NDOptDstLLAddr(lladdr=mac_str(a))
        case PrefixInfoOpt():
            return ICMPv6NDOptPrefixInfo(prefixlen=o.prefix_len, L=o.on_link, A=o.autonomous,
                                         validlifetime=o.valid_lifetime,
                                         preferredlifetime=o.preferred_lifetime,
                                         prefix=ip6_str(o.prefix))
        case MtuOpt(mtu=m):
            return ICMPv6NDOptMTU(mtu=m)
        case UnknownNdpOpt(type=t, data=d):
            return ICMPv6NDOptUnknown(type=t, len=(len(d) + 2) // 8, data=d)
    raise AssertionError(o)


def _stack(head: object, opts: list) -> object:
    for o in opts:
        head = head / to_scapy(o)
    return head


def _scapy_options(p: object) -> list:
    """Walk scapy's parsed option layers back into our option objects."""
    out: list = []
    layer = p.payload
    while layer is not None and layer.__class__.__name__.startswith("ICMPv6NDOpt"):
        if isinstance(layer, ICMPv6NDOptDstLLAddr):  # (a subclass of SrcLLAddr in scapy)
            out.append(TargetLinkAddrOpt(bytes.fromhex(layer.lladdr.replace(":", ""))))
        elif isinstance(layer, ICMPv6NDOptSrcLLAddr):
            out.append(SourceLinkAddrOpt(bytes.fromhex(layer.lladdr.replace(":", ""))))
        elif isinstance(layer, ICMPv6NDOptPrefixInfo):
            out.append(PrefixInfoOpt(layer.prefixlen, bool(layer.L), bool(layer.A),
                                     layer.validlifetime, layer.preferredlifetime,
                                     ip6_bytes(layer.prefix)))
        elif isinstance(layer, ICMPv6NDOptMTU):
            out.append(MtuOpt(layer.mtu))
        elif isinstance(layer, ICMPv6NDOptUnknown):
            out.append(UnknownNdpOpt(layer.type, bytes(layer.data)))
        else:
            raise AssertionError(layer)
        layer = layer.payload if layer.payload else None
    return out


ndp_messages = st.one_of(
    st.builds(RouterSolicitation, ndp_options),
    st.builds(RouterAdvertisement, u8, st.booleans(), st.booleans(), u16, u32, u32, ndp_options),
    st.builds(NeighborSolicitation, ip6s, ndp_options),
    st.builds(NeighborAdvertisement, ip6s, st.booleans(), st.booleans(), st.booleans(),
              ndp_options),
)


def _scapy_head(m: object) -> object:
    match m:
        case RouterSolicitation():
            return ICMPv6ND_RS()
        case RouterAdvertisement():
            return ICMPv6ND_RA(chlim=m.cur_hop_limit, M=m.managed, O=m.other, prf=0,
                               routerlifetime=m.router_lifetime, reachabletime=m.reachable_time,
                               retranstimer=m.retrans_timer)
        case NeighborSolicitation():
            return ICMPv6ND_NS(tgt=ip6_str(m.target))
        case NeighborAdvertisement():
            return ICMPv6ND_NA(tgt=ip6_str(m.target), R=m.router, S=m.solicited, O=m.override)
    raise AssertionError(m)


@settings(max_examples=200, deadline=None)
@given(src=ip6s, dst=ip6s, m=ndp_messages)
def test_ndp_we_build_scapy_parses(src: bytes, dst: bytes, m: object) -> None:
    ours = bytes(m.build(src, dst))
    head = _scapy_head(m)
    p = _scapy_parse(src, dst, ours)[type(head)]
    _check_scapy_checksum(src, dst, ours, p)
    for f in head.fields:
        assert getattr(p, f) == getattr(head, f), f
    assert _scapy_options(p) == m.options


@settings(max_examples=200, deadline=None)
@given(src=ip6s, dst=ip6s, m=ndp_messages)
def test_ndp_scapy_builds_we_parse(src: bytes, dst: bytes, m: object) -> None:
    theirs = _scapy_wire(src, dst, _stack(_scapy_head(m), m.options))
    parsed = parse_icmpv6(theirs, src, dst)
    assert parsed == m and parsed.checksum_valid
    assert Icmpv6View(theirs).ndp_options() == m.options
    assert bytes(parsed.build(src, dst)) == theirs


# -- garbage ------------------------------------------------------------------------------------


def _read_everything(buf: bytes) -> None:
    try:
        v = Icmpv6View(buf)
        v.checksum_ok(S, D)
        # the getters each type carries (the view checked that type's minimum length)
        getters = {128: ("ident", "seq", "data"), 129: ("ident", "seq", "data"),
                   1: ("quoted",), 2: ("mtu", "quoted"), 3: ("quoted",), 4: ("pointer", "quoted"),
                   134: ("cur_hop_limit", "managed", "other", "router_lifetime",
                         "reachable_time", "retrans_timer"),
                   135: ("target",), 136: ("target", "router", "solicited", "override")}
        for name in getters.get(v.type, ()):
            getattr(v, name)
        v.ndp_options(), v.source_lladdr(), v.target_lladdr()
        parse_icmpv6(buf, S, D).summary()
    except MalformedPacket:
        pass


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=80),
                 st.tuples(st.sampled_from([1, 2, 3, 4, 128, 129, 133, 134, 135, 136, 137]),
                           st.binary(max_size=80)).map(lambda t: bytes([t[0]]) + t[1])))
def test_garbage_raises_only_malformed(buf: bytes) -> None:
    _read_everything(buf)


@pytest.mark.parametrize("name", list(VECTORS))
def test_every_truncation_raises_only_malformed(name: str) -> None:
    msg = VECTORS[name][2]
    for n in range(len(msg)):
        _read_everything(msg[:n])
    with pytest.raises(MalformedPacket):
        Icmpv6View(msg[:3])


def test_getters_of_another_message_type_raise_malformed_not_struct_error():
    import pytest

    from stacklab.wire import MalformedPacket
    from stacklab.wire.icmpv6 import Icmpv6View

    echo = bytes([128, 0, 0, 0, 0, 1, 0, 2])  # 8-byte echo request
    v = Icmpv6View(echo)
    assert (v.ident, v.seq) == (1, 2)
    for name in ("reachable_time", "retrans_timer", "target"):
        with pytest.raises(MalformedPacket):
            getattr(v, name)
    short = Icmpv6View(bytes([200, 0, 0, 0]))  # unknown type, header only
    for name in ("ident", "seq", "mtu", "pointer", "na_flags", "cur_hop_limit", "managed"):
        with pytest.raises(MalformedPacket):
            getattr(short, name)
