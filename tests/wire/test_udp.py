from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP, in4_chksum
from scapy.layers.inet6 import IPv6, in6_chksum

from stacklab.wire import MalformedPacket
from stacklab.wire.addr import ip_str
from stacklab.wire.udp import Udp, UdpView, build_udp

from .conftest import h, ip4s, ip6s, u16

SRC = bytes([10, 0, 0, 1])
DST = bytes([10, 0, 0, 2])
SRC6 = bytes.fromhex("20010db8000000000000000000000001")
DST6 = bytes.fromhex("20010db8000000000000000000000002")


def ref_checksum(src: bytes, dst: bytes, dgram: bytes) -> int:
    """RFC 1071 word by word over pseudo-header + datagram, independent of stacklab."""
    if len(src) == 4:
        pseudo = src + dst + struct.pack("!BBH", 0, 17, len(dgram))
    else:
        pseudo = src + dst + struct.pack("!IxxxB", len(dgram), 17)
    data = pseudo + dgram + (b"\x00" if len(dgram) % 2 else b"")
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


# RFC 768 layout: 10.0.0.1.5000 > 10.0.0.2.53, length 13, "hello".
HELLO4 = h("1388 0035 000d 9442 68656c6c6f")
# The same datagram between 2001:db8::1 and 2001:db8::2.
HELLO6 = h("1388 0035 000d 4cd0 68656c6c6f")
# A datagram (payload d81a) whose computed checksum is zero: it is sent as ffff.
ZERO_SUM = h("1388 0035 000a ffff d81a")


def _zeroed(d: bytes) -> bytes:
    return d[:6] + b"\x00\x00" + d[8:]


def test_vectors_checksums_are_right() -> None:
    assert ref_checksum(SRC, DST, _zeroed(HELLO4)) == 0x9442
    assert ref_checksum(SRC6, DST6, _zeroed(HELLO6)) == 0x4CD0
    assert ref_checksum(SRC, DST, _zeroed(ZERO_SUM)) == 0  # hence sent as 0xFFFF


def test_v4_vector() -> None:
    v = UdpView(HELLO4)
    assert (v.src_port, v.dst_port, v.length, v.checksum) == (5000, 53, 13, 0x9442)
    assert isinstance(v.payload, memoryview) and bytes(v.payload) == b"hello"
    assert v.has_checksum and v.checksum_ok(SRC, DST)
    assert not v.checksum_ok(SRC, bytes([10, 0, 0, 3]))
    u = Udp.parse(HELLO4, SRC, DST)
    assert u == Udp(5000, 53, b"hello") and u.checksum_valid and u.checksum == 0x9442
    assert bytes(u.build(SRC, DST)) == HELLO4
    assert bytes(build_udp(SRC, DST, 5000, 53, b"hello")) == HELLO4
    assert u.summary() == "UDP, length 5"
    assert u.summary_with_addresses(SRC, DST) == "10.0.0.1.5000 > 10.0.0.2.53: UDP, length 5"


def test_v6_vector() -> None:
    assert bytes(build_udp(SRC6, DST6, 5000, 53, b"hello")) == HELLO6
    assert UdpView(HELLO6).checksum_ok(SRC6, DST6)
    assert not UdpView(HELLO6).checksum_ok(SRC, DST)
    assert Udp.parse(HELLO6, SRC6, DST6).checksum_valid


def test_computed_zero_is_sent_as_ffff() -> None:
    assert bytes(build_udp(SRC, DST, 5000, 53, b"\xd8\x1a")) == ZERO_SUM
    assert UdpView(ZERO_SUM).checksum_ok(SRC, DST)


def test_zero_checksum_means_none_on_v4_and_invalid_on_v6() -> None:
    no_sum4 = _zeroed(HELLO4)
    v = UdpView(no_sum4)
    assert not v.has_checksum and v.checksum_ok(SRC, DST)
    assert Udp.parse(no_sum4, SRC, DST).checksum_valid is True
    no_sum6 = _zeroed(HELLO6)
    assert not UdpView(no_sum6).checksum_ok(SRC6, DST6)
    assert Udp.parse(no_sum6, SRC6, DST6).checksum_valid is False


def test_bytes_after_length_are_not_part_of_the_datagram() -> None:
    padded = HELLO4 + b"\x00" * 33  # e.g. Ethernet minimum-frame padding
    v = UdpView(padded)
    assert bytes(v.payload) == b"hello" and v.length == 13
    assert v.checksum_ok(SRC, DST)


@pytest.mark.parametrize(
    "dgram",
    [b"", HELLO4[:7], h("1388 0035 0007 0000"), h("1388 0035 0000 0000"),
     HELLO4[:12], h("1388 0035 ffff 0000") + b"x" * 100],
)
def test_bad_length_is_malformed(dgram: bytes) -> None:
    with pytest.raises(MalformedPacket) as e:
        UdpView(dgram)
    assert e.value.layer == "udp" and e.value.field == "length"


def test_oversized_payload_refused_by_builder() -> None:
    with pytest.raises(ValueError):
        build_udp(SRC, DST, 1, 2, b"x" * 65528)
    assert len(build_udp(SRC, DST, 1, 2, b"x" * 65527)) == 0xFFFF


# -- corruption ---------------------------------------------------------------------------------

addresses = st.one_of(st.tuples(ip4s, ip4s), st.tuples(ip6s, ip6s))


@settings(max_examples=200)
@given(addrs=addresses, payload=st.binary(max_size=300), bit=st.integers(0, 100_000))
def test_bit_flip_detected(addrs: tuple[bytes, bytes], payload: bytes, bit: int) -> None:
    src, dst = addrs
    d = build_udp(src, dst, 1234, 5678, payload)
    assert UdpView(d).checksum_ok(src, dst)
    bit %= len(d) * 8
    d[bit // 8] ^= 1 << (bit % 8)
    try:
        v = UdpView(d)
    except MalformedPacket:
        assert bit // 8 in (4, 5)  # only a flipped length field may make it unparseable
        return
    if v.length != len(d):
        return  # a shorter length cut the datagram: another datagram, checked below
    if len(src) == 4 and v.checksum == 0:
        assert v.checksum_ok(src, dst)  # v4 "no checksum": the one flip UDP cannot detect
        return
    assert not v.checksum_ok(src, dst)


@settings(max_examples=100)
@given(payload=st.binary(min_size=1, max_size=100), cut=st.integers(1, 100))
def test_shortened_length_field_detected(payload: bytes, cut: int) -> None:
    d = build_udp(SRC6, DST6, 1, 2, payload)
    new_len = max(8, len(d) - cut)
    struct.pack_into("!H", d, 4, new_len)
    assert not UdpView(d).checksum_ok(SRC6, DST6)


# -- scapy cross-checks -------------------------------------------------------------------------


def _ip(src: bytes, dst: bytes) -> IP | IPv6:
    return (IP if len(src) == 4 else IPv6)(src=ip_str(src), dst=ip_str(dst))


@settings(max_examples=200, deadline=None)
@given(addrs=addresses, sport=u16, dport=u16, payload=st.binary(max_size=1472))
def test_we_build_scapy_parses(addrs: tuple[bytes, bytes], sport: int, dport: int,
                               payload: bytes) -> None:
    src, dst = addrs
    ours = bytes(Udp(sport, dport, payload).build(src, dst))
    theirs = UDP(ours)
    assert (theirs.sport, theirs.dport, theirs.len) == (sport, dport, 8 + len(payload))
    assert bytes(theirs.payload) == payload
    f = in4_chksum if len(src) == 4 else in6_chksum
    expected = f(17, _ip(src, dst), _zeroed(ours)) or 0xFFFF
    assert theirs.chksum == expected


@settings(max_examples=200, deadline=None)
@given(addrs=addresses, sport=u16, dport=u16, payload=st.binary(max_size=1472))
def test_scapy_builds_we_parse(addrs: tuple[bytes, bytes], sport: int, dport: int,
                               payload: bytes) -> None:
    src, dst = addrs
    wire = bytes(_ip(src, dst) / UDP(sport=sport, dport=dport) / payload)
    wire = wire[20 if len(src) == 4 else 40:]
    v = UdpView(wire)
    assert (v.src_port, v.dst_port, v.length) == (sport, dport, len(wire))
    assert bytes(v.payload) == payload and v.checksum_ok(src, dst)
    u = Udp.parse(wire, src, dst)
    assert u.checksum_valid and bytes(u.build(src, dst)) == wire


# -- garbage ------------------------------------------------------------------------------------


@settings(max_examples=300)
@given(st.binary(max_size=40))
def test_garbage_raises_only_malformed(buf: bytes) -> None:
    try:
        v = UdpView(buf)
        bytes(v.payload)
        v.checksum_ok(SRC, DST)
        v.checksum_ok(SRC6, DST6)
        Udp.parse(buf, SRC, DST).summary()
    except MalformedPacket:
        pass


def test_every_truncation_raises_only_malformed() -> None:
    for n in range(len(HELLO4)):
        with pytest.raises(MalformedPacket):
            UdpView(HELLO4[:n])
