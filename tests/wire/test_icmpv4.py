from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, UDP, IPerror, UDPerror
from scapy.utils import checksum as scapy_checksum

from stacklab.wire import MalformedPacket
from stacklab.wire.icmpv4 import (
    DEST_UNREACH,
    ECHO_REPLY,
    ECHO_REQUEST,
    MAX_QUOTE,
    PARAM_PROBLEM,
    TIME_EXCEEDED,
    UNREACH_NAMES,
    UNREACH_NEEDFRAG,
    UNREACH_PORT,
    Icmpv4,
    IcmpView,
    build_icmpv4,
    code_name,
    dest_unreachable,
    echo_reply,
    echo_request,
    param_problem,
    time_exceeded,
)

from .conftest import h, u8, u16


def ref_checksum(msg: bytes) -> int:
    """RFC 1071 word by word, independent of stacklab."""
    data = msg + (b"\x00" if len(msg) % 2 else b"")
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


# The quoted datagram: an IPv4 header 192.168.0.1 > 192.168.0.199 UDP and the first 8 bytes of
# its payload, the UDP header 5000 > 53.
QUOTE = h("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7 1388 0035 005f 0000")
# RFC 792 layouts, checksums computed with ref_checksum.
ECHO_REQ = h("0800 5435 1234 0001 6162636465666768")
ECHO_REP = h("0000 5c35 1234 0001 6162636465666768")
ECHO_ODD = h("0800 339a 0001 0002 616263")  # odd length: padded with a zero for the sum
PORT_UNREACH = h("0303 e8e0 00000000") + QUOTE
NEED_FRAG = h("0304 e367 0000 0578") + QUOTE  # RFC 1191: next-hop MTU 1400 in the low 16 bits
TTL_EXCEEDED = h("0b00 e0e3 00000000") + QUOTE
PARAM_PROB = h("0c00 cbe3 14000000") + QUOTE  # pointer 20
VECTORS = [ECHO_REQ, ECHO_REP, ECHO_ODD, PORT_UNREACH, NEED_FRAG, TTL_EXCEEDED, PARAM_PROB]


@pytest.mark.parametrize("msg", VECTORS)
def test_vector_checksums(msg: bytes) -> None:
    assert ref_checksum(msg[:2] + b"\x00\x00" + msg[4:]) == struct.unpack_from("!H", msg, 2)[0]
    v = IcmpView(msg)
    assert v.checksum_ok()
    m = Icmpv4.parse(msg)
    assert m.checksum_valid is True
    assert bytes(m.build()) == msg


def test_echo_vectors() -> None:
    v = IcmpView(ECHO_REQ)
    assert (v.type, v.code, v.checksum, v.ident, v.seq) == (ECHO_REQUEST, 0, 0x5435, 0x1234, 1)
    assert isinstance(v.data, memoryview) and bytes(v.data) == b"abcdefgh"
    assert bytes(echo_request(0x1234, 1, b"abcdefgh").build()) == ECHO_REQ
    assert bytes(echo_reply(0x1234, 1, b"abcdefgh").build()) == ECHO_REP
    assert bytes(echo_request(1, 2, b"abc").build()) == ECHO_ODD
    m = Icmpv4.parse(ECHO_REP)
    assert (m.type, m.ident, m.seq, m.data) == (ECHO_REPLY, 0x1234, 1, b"abcdefgh")
    assert m.summary() == "ICMP echo reply, id 4660, seq 1, length 16"
    assert Icmpv4.parse(ECHO_REQ).summary() == "ICMP echo request, id 4660, seq 1, length 16"


def test_port_unreachable_vector() -> None:
    v = IcmpView(PORT_UNREACH)
    assert (v.type, v.code) == (DEST_UNREACH, UNREACH_PORT)
    assert isinstance(v.quoted, bytes) and v.quoted == QUOTE
    assert bytes(dest_unreachable(UNREACH_PORT, QUOTE).build()) == PORT_UNREACH
    assert Icmpv4.parse(PORT_UNREACH).summary() == (
        "ICMP 192.168.0.199 udp port 53 unreachable, length 36")


def test_need_frag_vector_carries_next_hop_mtu() -> None:
    v = IcmpView(NEED_FRAG)
    assert (v.type, v.code, v.next_hop_mtu) == (DEST_UNREACH, UNREACH_NEEDFRAG, 1400)
    assert v.quoted == QUOTE
    assert bytes(dest_unreachable(UNREACH_NEEDFRAG, QUOTE, next_hop_mtu=1400).build()) == NEED_FRAG
    m = Icmpv4.parse(NEED_FRAG)
    assert m.next_hop_mtu == 1400
    assert m.summary() == "ICMP 192.168.0.199 unreachable - need to frag (mtu 1400), length 36"
    # The MTU only goes with code 4: other codes keep the second word zero.
    assert dest_unreachable(UNREACH_PORT, QUOTE, next_hop_mtu=1400).rest == b"\x00" * 4


def test_time_exceeded_and_param_problem_vectors() -> None:
    assert bytes(time_exceeded(0, QUOTE).build()) == TTL_EXCEEDED
    m = Icmpv4.parse(TTL_EXCEEDED)
    assert (m.type, m.code, m.quoted) == (TIME_EXCEEDED, 0, QUOTE)
    assert m.summary() == "ICMP time exceeded in-transit, length 36"
    assert time_exceeded(1, QUOTE).summary() == "ICMP ip reassembly time exceeded, length 36"
    assert bytes(param_problem(20, QUOTE).build()) == PARAM_PROB
    v = IcmpView(PARAM_PROB)
    assert (v.type, v.pointer) == (PARAM_PROBLEM, 20)


def test_all_unreachable_codes_have_names_and_build() -> None:
    for code in range(16):
        msg = dest_unreachable(code, QUOTE).build()
        v = IcmpView(msg)
        assert (v.type, v.code) == (DEST_UNREACH, code) and v.checksum_ok()
        assert code_name(DEST_UNREACH, code) == UNREACH_NAMES[code]
        assert Icmpv4.parse(msg).summary().endswith(", length 36")


def test_quote_is_cut_to_fit_576_bytes() -> None:
    big = QUOTE[:20] + bytes(1000)
    m = dest_unreachable(UNREACH_PORT, big)
    assert len(m.quoted) == MAX_QUOTE and 20 + len(m.build()) == 576
    assert len(time_exceeded(0, big).build()) == 556


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        (b"", "length"),
        (ECHO_REQ[:7], "length"),
        (PORT_UNREACH[:8 + 27], "quoted"),  # IP header + 7 bytes
        (h("0303 0000 00000000") + b"\x65" + QUOTE[1:], "quoted"),  # not IPv4
        (h("0303 0000 00000000") + b"\x46" + QUOTE[1:], "quoted"),  # IHL 24 leaves 4 bytes
        (h("0b00 0000 00000000") + b"\x44" + QUOTE[1:], "quoted"),  # IHL < 5
    ],
)
def test_malformed(msg: bytes, field: str) -> None:
    with pytest.raises(MalformedPacket) as e:
        IcmpView(msg)
    assert e.value.layer == "icmp" and e.value.field == field
    with pytest.raises(MalformedPacket):
        Icmpv4.parse(msg)


@settings(max_examples=150)
@given(data=st.binary(max_size=100), bit=st.integers(0, 10_000))
def test_bit_flip_detected(data: bytes, bit: int) -> None:
    msg = echo_request(7, 9, data).build()
    bit %= len(msg) * 8
    msg[bit // 8] ^= 1 << (bit % 8)
    try:
        v = IcmpView(msg)
    except MalformedPacket:
        assert bit < 8  # the type became an error type whose quote is missing
        return
    assert not v.checksum_ok()
    assert Icmpv4.parse(msg).checksum_valid is False


# -- scapy cross-checks -------------------------------------------------------------------------


def _scapy_recomputed(msg: bytes) -> int:
    return scapy_checksum(msg[:2] + b"\x00\x00" + msg[4:])


@settings(max_examples=150, deadline=None)
@given(ident=u16, seq=u16, data=st.binary(max_size=1472), reply=st.booleans())
def test_echo_we_build_scapy_parses(ident: int, seq: int, data: bytes, reply: bool) -> None:
    msg = bytes((echo_reply if reply else echo_request)(ident, seq, data).build())
    p = ICMP(msg)
    assert (p.type, p.code, p.id, p.seq) == (0 if reply else 8, 0, ident, seq)
    assert bytes(p.payload) == data
    assert p.chksum == _scapy_recomputed(msg)


@settings(max_examples=150, deadline=None)
@given(ident=u16, seq=u16, data=st.binary(max_size=1472), reply=st.booleans())
def test_echo_scapy_builds_we_parse(ident: int, seq: int, data: bytes, reply: bool) -> None:
    msg = bytes(ICMP(type=0 if reply else 8, id=ident, seq=seq) / data)
    v = IcmpView(msg)
    assert (v.type, v.ident, v.seq, bytes(v.data)) == (0 if reply else 8, ident, seq, data)
    assert v.checksum_ok()
    assert bytes(Icmpv4.parse(msg).build()) == msg


quoted_datagrams = st.builds(
    lambda sport, dport, ttl, extra: bytes(
        IP(src="10.1.2.3", dst="10.9.8.7", ttl=ttl) / UDP(sport=sport, dport=dport) / extra),
    u16, u16, u8, st.binary(max_size=600),
)


@settings(max_examples=100, deadline=None)
@given(code=st.integers(0, 15), quoted=quoted_datagrams, mtu=u16)
def test_unreachable_both_ways(code: int, quoted: bytes, mtu: int) -> None:
    msg = bytes(dest_unreachable(code, quoted, next_hop_mtu=mtu).build())
    p = ICMP(msg)
    assert (p.type, p.code) == (3, code)
    assert p.nexthopmtu == (mtu if code == 4 else 0)
    assert p.chksum == _scapy_recomputed(msg)
    assert isinstance(p.payload, IPerror) and p[IPerror].dst == "10.9.8.7"
    assert p[UDPerror].dport == struct.unpack_from("!H", quoted, 22)[0]
    assert bytes(p.payload) == quoted[:MAX_QUOTE]

    theirs = bytes(ICMP(type=3, code=code, nexthopmtu=mtu if code == 4 else 0) / quoted)
    v = IcmpView(theirs)
    assert v.checksum_ok() and v.code == code and v.quoted == quoted
    assert v.next_hop_mtu == (mtu if code == 4 else 0)


@settings(max_examples=50, deadline=None)
@given(code=st.integers(0, 1), quoted=quoted_datagrams)
def test_time_exceeded_both_ways(code: int, quoted: bytes) -> None:
    msg = bytes(time_exceeded(code, quoted).build())
    p = ICMP(msg)
    assert (p.type, p.code, p.chksum) == (11, code, _scapy_recomputed(msg))
    theirs = bytes(ICMP(type=11, code=code) / quoted)
    v = IcmpView(theirs)
    assert v.checksum_ok() and (v.type, v.code, v.quoted) == (11, code, quoted)


# -- garbage ------------------------------------------------------------------------------------


def _read_everything(buf: bytes) -> None:
    try:
        v = IcmpView(buf)
        v.checksum_ok(), v.ident, v.seq, v.next_hop_mtu, v.pointer, v.gateway, v.quoted
        Icmpv4.parse(buf).summary()
    except MalformedPacket:
        pass


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=60),
                 st.tuples(st.sampled_from([3, 4, 5, 11, 12]), u8, st.binary(max_size=60))
                 .map(lambda t: bytes(t[:2]) + t[2])))
def test_garbage_raises_only_malformed(buf: bytes) -> None:
    _read_everything(buf)


@pytest.mark.parametrize("msg", VECTORS)
def test_every_truncation_raises_only_malformed(msg: bytes) -> None:
    for n in range(len(msg)):
        _read_everything(msg[:n])
    for n in range(8):
        with pytest.raises(MalformedPacket):
            IcmpView(msg[:n])


def test_fast_builder_matches_vectors() -> None:
    assert bytes(build_icmpv4(8, 0, h("1234 0001"), b"abcdefgh")) == ECHO_REQ
    with pytest.raises(ValueError):
        build_icmpv4(8, 0, b"\x00", b"")


def test_all_zero_echo_reply_gets_ffff() -> None:
    # type 0, code 0, id 0, seq 0, no data: the sum is 0, so the checksum is ~0 = 0xFFFF.
    msg = echo_reply(0, 0).build()
    assert bytes(msg) == h("0000 ffff 0000 0000") and IcmpView(msg).checksum_ok()
    assert not IcmpView(h("0000 0000 0000 0000")).checksum_ok()
