"""wire/checksum.py, the one place a sum is folded or stored, against RFC 1071 written out: 16-bit
big-endian words (an odd byte padded with zero) added with end-around carry, and the checksum its
one's complement. Every helper the fast paths call must agree with it, byte for byte."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stacklab.wire import checksum as c
from stacklab.wire.proto import PROTO_ICMPV6, PROTO_TCP, PROTO_UDP

from .conftest import ip4s, ip6s

# Lengths on both sides of SPLIT_AT, where the sums switch to two halves.
datas = st.one_of(st.binary(max_size=64), st.binary(min_size=c.SPLIT_AT - 3, max_size=3000))


def rfc1071_sum(data: bytes) -> int:
    """The one's-complement sum of the 16-bit words of ``data`` (RFC 1071 §4.1), folded."""
    if len(data) & 1:
        data += b"\x00"
    s = 0
    for (w,) in struct.iter_unpack("!H", data):
        s += w
        s = (s & 0xFFFF) + (s >> 16)
    return s


def rfc1071_checksum(data: bytes) -> int:
    return ~rfc1071_sum(data) & 0xFFFF


def pseudo(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    """The pseudo-header as bytes: RFC 9293 §3.1 (IPv4), RFC 8200 §8.1 (IPv6)."""
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!I3xB", length, proto)


def stored(buf: bytes | bytearray, off: int) -> int:
    return struct.unpack_from("!H", buf, off)[0]


@given(datas)
def test_le_sums_are_256_times_the_rfc_sum(data: bytes) -> None:
    want = (rfc1071_sum(data) << 8) % 0xFFFF
    for total in (c.le_sum(data), c.le_sum(bytearray(data)), c.le_sum(memoryview(data))):
        assert total % 0xFFFF == want
        assert (total == 0) == (not any(data))


@given(datas)
def test_store_le_writes_the_rfc_checksum_and_ok_le_accepts_it(data: bytes) -> None:
    buf = bytearray(b"\x00\x00" + data)
    want = rfc1071_checksum(bytes(buf))
    c.store_le(buf, 0, c.le_sum(buf))
    # so a non-zero message whose sum is 0xFFFF gets 0x0000, an all-zero one 0xFFFF
    assert stored(buf, 0) == want
    assert rfc1071_sum(bytes(buf)) == 0xFFFF
    assert c.ok_le(c.le_sum(buf))


def test_the_all_zero_message_does_not_verify_and_gets_0xffff() -> None:
    assert not c.ok_le(c.le_sum(bytes(8)))
    buf = bytearray(8)
    c.store_le(buf, 2, c.le_sum(buf))
    assert buf == b"\x00\x00\xff\xff" + bytes(4)
    assert c.internet_checksum(bytes(8)) == 0xFFFF


def test_a_sum_of_0xffff_is_stored_0x0000_but_0xffff_for_udp() -> None:
    data = b"\x00\x00\xff\xff"  # checksum field first, then words summing to 0xFFFF
    buf = bytearray(data)
    c.store_le(buf, 0, c.le_sum(buf))
    assert stored(buf, 0) == 0x0000
    buf = bytearray(data)
    c.store_le_udp(buf, 0, c.le_sum(buf))
    assert stored(buf, 0) == 0xFFFF  # RFC 768: a zero field would mean "no checksum"
    assert c.ok_le(c.le_sum(buf))


@given(datas)
def test_store_le_udp_differs_from_store_le_only_for_zero(data: bytes) -> None:
    a, b = bytearray(b"\x00\x00" + data), bytearray(b"\x00\x00" + data)
    c.store_le(a, 0, c.le_sum(a) + 1)  # + 1: a pseudo-header makes the total non-zero
    c.store_le_udp(b, 0, c.le_sum(b) + 1)
    assert stored(b, 0) != 0
    assert stored(a, 0) == stored(b, 0) or (stored(a, 0), stored(b, 0)) == (0, 0xFFFF)


@given(st.one_of(st.tuples(ip4s, ip4s), st.tuples(ip6s, ip6s)), datas,
       st.sampled_from((PROTO_TCP, PROTO_UDP, PROTO_ICMPV6)))
def test_pseudo_header_sums_and_the_one_call_helpers(addrs: tuple[bytes, bytes], data: bytes,
                                                     proto: int) -> None:
    src, dst = addrs
    seg = bytearray(b"\x00" * 4 + data)  # checksum field at offset 2
    n = len(seg)
    ph = pseudo(src, dst, proto, n)
    assert c.le_pseudo(src, dst, proto, n) % 0xFFFF == (rfc1071_sum(ph) << 8) % 0xFFFF
    assert c.pseudo_header(src, dst, proto, n) % 0xFFFF == rfc1071_sum(ph) % 0xFFFF
    c.pseudo_store(seg, 2, c.pseudo_header(src, dst, proto, 0))
    assert stored(seg, 2) == rfc1071_checksum(ph + bytes(seg[:2]) + b"\x00\x00" + bytes(seg[4:]))
    assert rfc1071_sum(ph + bytes(seg)) == 0xFFFF
    assert c.pseudo_ok(seg, src, dst, proto)
    assert c.pseudo_ok(memoryview(seg), src, dst, proto)
    assert c.checksum_ok(seg, c.pseudo_header(src, dst, proto, n))
    seg[-1] ^= 0x01
    assert not c.pseudo_ok(seg, src, dst, proto)
    assert not c.checksum_ok(seg, c.pseudo_header(src, dst, proto, n))


@given(datas, st.integers(0, 0xFFFF))
def test_internet_checksum_is_rfc1071(data: bytes, initial: int) -> None:
    # ``initial`` is one more big-endian word of the sum
    assert c.internet_checksum(data, initial) == rfc1071_checksum(struct.pack("!H", initial) + data)


@given(st.binary(min_size=20, max_size=20), st.integers(0, 10))
def test_ipv4_header_helpers(raw: bytes, opt_words: int) -> None:
    hdr = bytearray(bytes([0x45 + opt_words]) + raw[1:10] + b"\x00\x00" + raw[12:]
                    + bytes(4 * opt_words))
    c.ipv4_header_store(hdr)
    assert stored(hdr, 10) == rfc1071_checksum(bytes(hdr[:10]) + b"\x00\x00" + bytes(hdr[12:]))
    assert c.ipv4_header_ok(hdr) and c.ipv4_header_ok(memoryview(hdr))
    hdr[1] ^= 0x10
    assert not c.ipv4_header_ok(hdr)


@pytest.mark.parametrize("size", [0, 1, 500, c.SPLIT_AT - 13, c.SPLIT_AT - 12, 1460, 8000])
@pytest.mark.parametrize(("flip", "verdicts"), [
    (None, (True, True)),
    (14 + 1, (False, True)),  # TOS: the header only
    (14 + 12, (False, False)),  # the source address: the header and the pseudo-header
    (14 + 20 + 16, (True, False)),  # the TCP checksum field
    (-1, (True, True)),  # Ethernet padding after the datagram
])
def test_ipv4_tcp_ok_is_both_verdicts(size: int, flip: int | None,
                                      verdicts: tuple[bool, bool]) -> None:
    src, dst = bytes([10, 0, 0, 1]), bytes([192, 168, 7, 9])
    seg = bytearray(struct.pack("!HHIIHHHH", 1, 2, 3, 4, 0x5010, 5, 0, 0)
                    + bytes(range(256)) * (size // 256) + bytes(size % 256))
    c.pseudo_store(seg, 16, c.pseudo_header(src, dst, PROTO_TCP, 0))
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), 7, 0x4000, 64, PROTO_TCP,
                               0, src, dst))
    c.ipv4_header_store(ip)
    frame = bytearray(b"\x02" * 12 + b"\x08\x00" + ip + seg + b"\x00" * 6)  # Ethernet padding
    if flip is not None:
        frame[flip] ^= 0x04
    tlen = 20 + len(seg)
    want = (c.ipv4_header_ok(frame[14:34]),
            c.pseudo_ok(frame[34:14 + tlen], frame[26:30], frame[30:34], PROTO_TCP))
    assert want == verdicts
    assert c.ipv4_tcp_ok(bytes(frame), 14, tlen) == verdicts
    assert c.ipv4_tcp_ok(memoryview(frame), 14, tlen) == verdicts


@given(st.binary(min_size=c.SPLIT_AT - 40, max_size=9000), st.integers(0, 40),
       st.integers(0, 40))
def test_le_sum_at_is_le_sum_of_the_slice(data: bytes, a: int, b: int) -> None:
    start, end = a, len(data) - b
    want = (rfc1071_sum(data[start:end]) << 8) % 0xFFFF
    for buf in (data, memoryview(data)):
        assert c.le_sum_at(buf, start, end) % 0xFFFF == want


@given(st.binary(max_size=300))
def test_fold_is_the_rfc_partial_sum_uncomplemented(data: bytes) -> None:
    """What a NIC's CHECKSUM_PARTIAL field holds (the TAP device's super-frames): the folded
    one's-complement sum, 0xFFFF (never 0) for a non-zero sum."""
    padded = data + b"\0" * (len(data) & 1)
    assert c.fold(int.from_bytes(padded, "big")) == rfc1071_sum(data)
