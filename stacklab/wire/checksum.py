"""The Internet checksum (RFC 1071) and the pseudo-header sums of UDP, TCP and ICMPv6.

Because 2**16 == 1 (mod 0xFFFF), the one's-complement sum of the 16-bit words of a buffer is the
buffer read as one big-endian integer, modulo 0xFFFF. CPython's ``int.from_bytes`` does that in C,
about 4x faster than summing words in Python. Two details: an odd-length buffer is padded with a
zero byte (multiply by 256), and a zero remainder means the sum was 0xFFFF (a non-zero buffer) or 0
(an all-zero buffer).

Speed notes (the per-packet path verifies a checksum on every segment):

* Reading the buffer **little-endian** is ~10 % faster in CPython and needs no padding for an odd
  length. It swaps the two bytes of every word, and a byte swap of a 16-bit word is a
  multiplication by 256 modulo 0xFFFF (RFC 1071 §2(B), byte-order independence), so
  ``le(data) == 256 * be(data) (mod 0xFFFF)`` for either parity. A big-endian partial sum (a
  pseudo-header) joins a little-endian one shifted left by 8 bits.
* The remainder of a big integer costs more than reading it (one hardware division per 30-bit
  digit); buffers over :data:`SPLIT_AT` bytes are read as four parts of even length whose sum has
  a quarter of the digits.

So the per-packet paths work with a **little-endian total**: :func:`le_sum` of the message plus
:func:`le_pseudo` of its pseudo-header, then :func:`ok_le` to verify it or :func:`store_le`
(:func:`store_le_udp`) to write the checksum; the byte swap makes the stored bytes equal to those
of the big-endian RFC 1071 computation (:func:`internet_checksum`). This module is the only place a
sum is folded or stored: the one-call helpers below (:func:`pseudo_ok`, :func:`pseudo_store`,
:func:`ipv4_header_ok`, :func:`ipv4_header_store`, :func:`ipv4_tcp_ok`, a frame template's
:func:`ipv4_words` and :func:`ipv4_tcp_fields`; for offloaded frames
:func:`ipv4_tcp_partial_store` and :func:`ipv4_tcp_partial_complete`) are those steps fused
for the per-packet paths, each tested against RFC 1071 written out (tests/wire/test_checksum.py,
tests/wire/test_frame_fast_path.py).
"""

from __future__ import annotations

import struct

from .proto import PROTO_TCP

Buffer = bytes | bytearray | memoryview

SPLIT_AT = 1024
_fb = int.from_bytes
_CSUM_LE = struct.Struct("<H")  # the checksum of a little-endian total, stored byte-swapped


# -- sums -----------------------------------------------------------------------------------------


def le_sum(data: Buffer) -> int:
    """A non-negative int equal to 256 x the one's-complement sum of ``data`` (mod 0xFFFF).

    ``data`` read little-endian, in four parts when it is longer than :data:`SPLIT_AT` bytes.
    Zero only for an all-zero (or empty) buffer.
    """
    n = len(data)
    if n <= SPLIT_AT:
        return _fb(data, "little")
    # int.from_bytes copies anything but bytes: slice a view of a bytearray
    return le_sum_at(memoryview(data) if isinstance(data, bytearray) else data, 0, n)


def le_sum_at(buf: bytes | memoryview, start: int, end: int) -> int:
    """:func:`le_sum` of ``buf[start:end]``, also for a part of a frame. Above :data:`SPLIT_AT`
    bytes, the sum of four parts of even length (so that each part's words stay aligned): the
    remainder of that sum divides a quarter of the digits (a 1480-byte segment's sum costs ~10 %
    less than in two halves, ~25 % less than in one piece)."""
    n = end - start
    if n <= SPLIT_AT:
        return _fb(buf[start:end], "little")
    q = (n >> 3) << 1
    a = start + q
    b = a + q
    c = b + q
    return _fb(buf[start:a], "little") + _fb(buf[a:b], "little") + _fb(buf[b:c], "little") \
        + _fb(buf[c:end], "little")


def le_pseudo(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """The little-endian partial sum of a pseudo-header (IPv4: RFC 9293 §3.1, RFC 768; IPv6: RFC
    8200 §8.1), to add to :func:`le_sum` of the segment; the family follows the address length.
    The two addresses are read in one go: both have an even length."""
    return _fb(src + dst, "little") + ((proto + length) << 8)


def pseudo_header(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """The big-endian partial sum of a pseudo-header (either family), for :func:`internet_checksum`,
    :func:`checksum_ok` and :func:`pseudo_store`; with ``length`` 0, the part of a TCP sender's
    sum that is the same for all the segments of a connection. Only meaningful modulo 0xFFFF: the
    two addresses are read as one integer (2**32 and 2**128 are 1 modulo 0xFFFF)."""
    return _fb(src + dst, "big") + proto + length


# -- the fold: verify and store -------------------------------------------------------------------


def ok_le(total: int) -> bool:
    """Whether a little-endian total (checksum field included) verifies: the one's-complement sum
    is 0xFFFF (-0). An all-zero message sums to +0, which does not verify."""
    return total % 0xFFFF == 0 and total != 0


def store_le(buf: bytearray, off: int, total: int) -> None:
    """Write at ``off`` the checksum of a little-endian total computed with the field zero:
    ``~sum``, so a folded 0xFFFF is stored as 0x0000 (as Linux and scapy do), and an all-zero
    message gets 0xFFFF (+0 has no complement in 16 bits but -0)."""
    _CSUM_LE.pack_into(buf, off, -total % 0xFFFF if total else 0xFFFF)


def store_le_udp(buf: bytearray, off: int, total: int) -> None:
    """:func:`store_le` for UDP, where a zero field means "no checksum": a computed 0x0000 is sent
    as 0xFFFF, its other one's-complement form (RFC 768; mandatory over IPv6, RFC 8200 §8.1)."""
    _CSUM_LE.pack_into(buf, off, 0xFFFF - total % 0xFFFF)


# -- one call for the per-packet cases -----------------------------------------------------------
#
# Each does what the primitives above do in one call, with no nested one for a buffer of up to
# SPLIT_AT bytes (a Python call costs ~40 ns, a tenth of a parsed ACK): the checks are ok_le's
# first half, because none of these totals can be zero (a pseudo-header's protocol number, an IPv4
# header's version nibble).


def pseudo_ok(data: Buffer, src: bytes, dst: bytes, proto: int) -> bool:
    """Whether ``data`` (a TCP segment, UDP datagram or ICMPv6 message, checksum field included)
    verifies under its pseudo-header: :func:`ok_le` of :func:`le_sum` plus :func:`le_pseudo`."""
    n = len(data)
    total = (_fb(data, "little") if n <= SPLIT_AT else le_sum(data)) + _fb(src + dst, "little")
    return (total + ((proto + n) << 8)) % 0xFFFF == 0


def pseudo_store(buf: bytearray, off: int, psum: int) -> None:
    """Write at ``off`` the checksum of ``buf`` (a TCP segment or ICMPv6 message, the field zero)
    under a pseudo-header whose big-endian sum without the length is ``psum``
    (``pseudo_header(src, dst, proto, 0)``, which a TCP sender computes once per connection):
    :func:`store_le` of :func:`le_sum` plus the pseudo-header's sum x 256."""
    n = len(buf)
    total = _fb(buf, "little") if n <= SPLIT_AT else le_sum_at(memoryview(buf), 0, n)
    total += (psum + n) << 8
    _CSUM_LE.pack_into(buf, off, -total % 0xFFFF)


def ipv4_header_ok(header: Buffer) -> bool:
    """Whether an IPv4 header (exactly its ``IHL * 4`` bytes, version 4) has a valid checksum
    (RFC 791)."""
    return _fb(header, "little") % 0xFFFF == 0


def ipv4_header_store(header: bytearray) -> None:
    """Fill in the checksum of an IPv4 header (exactly its bytes, version 4, checksum zero)."""
    _CSUM_LE.pack_into(header, 10, -_fb(header, "little") % 0xFFFF)


def ipv4_tcp_ok(buf: bytes | memoryview, off: int, total_length: int) -> tuple[bool, bool]:
    """The verdicts ``(header_ok, segment_ok)`` of an IPv4 packet at ``buf[off:]`` with a 20-byte
    header (no options) carrying TCP: the fused frame parse's two checks in one call, the same as
    :func:`ipv4_header_ok` and :func:`pseudo_ok`. The segment's sum starts at the header's
    addresses (``off + 12``): they are the pseudo-header's address part, read with the segment."""
    hdr = _fb(buf[off:off + 20], "little")
    start = off + 12
    end = off + total_length
    total = _fb(buf[start:end], "little") if total_length - 12 <= SPLIT_AT \
        else le_sum_at(buf, start, end)
    total += (PROTO_TCP + total_length - 20) << 8
    return hdr % 0xFFFF == 0, total % 0xFFFF == 0


def ipv4_words(src: bytes, dst: bytes, ttl: int, flags_frag: int, proto: int) -> int:
    """The big-endian sum (modulo 0xFFFF only) of the words of an IPv4 header without options
    that are the same in all of a flow's packets: version/IHL (the TOS byte zero), flags and
    fragment offset, TTL and protocol, the addresses; a packet's own TOS, total length and ID
    add to it (:func:`ipv4_tcp_fields`)."""
    return 0x4500 + flags_frag + (ttl << 8) + proto + _fb(src + dst, "big")


def ipv4_tcp_fields(ip_words: int, tcp_words: int, pseudo: int,
                    payload: Buffer | None) -> tuple[int, int]:
    """The two checksum fields (big-endian values) of an IPv4 packet (20-byte header) holding a
    TCP segment, from big-endian sums of words, no header byte read (a frame template's,
    ``stacklab.wire.frame.TcpFrameTemplate``): ``ip_words`` the IPv4 header's (:func:`ipv4_words`
    plus TOS, length and ID), ``tcp_words`` the TCP header's (the checksum zero), ``pseudo`` the
    pseudo-header's with the segment's length; each only meaningful modulo 0xFFFF, so a 32-bit
    field is added whole (2**16 == 1). ``payload`` None: the TCP field holds the folded
    pseudo-header sum, for a device (or a link's peer) to complete (CHECKSUM_PARTIAL, as
    :func:`ipv4_tcp_partial_store`); else the checksum over the header and ``payload``. The
    values :func:`ipv4_header_store` and :func:`pseudo_store` write: a big-endian sum is the
    little-endian one byte-swapped (x 256), and so is the stored field."""
    ip = -ip_words % 0xFFFF
    if payload is None:
        return ip, pseudo % 0xFFFF or 0xFFFF  # fold(pseudo): not zero (the protocol is not)
    m = len(payload)
    if not m:
        return ip, -(tcp_words + pseudo) % 0xFFFF
    # le_sum's two cases without its call (int.from_bytes copies anything but bytes: a
    # bytearray is summed through a view)
    le = _fb(payload, "little") if m <= SPLIT_AT else le_sum_at(
        memoryview(payload) if isinstance(payload, bytearray) else payload, 0, m)
    return ip, -(tcp_words + pseudo + (le << 8)) % 0xFFFF


def ipv4_tcp_partial_store(hdr: bytearray, payload_len: int, psum: int) -> None:
    """For a frame a device completes (TSO, CHECKSUM_PARTIAL), an Ethernet + IPv4 (20 bytes, at
    14) + TCP header ``hdr`` (both checksum fields zero): the IPv4 header's checksum, and in the
    TCP field the folded pseudo-header sum (not complemented; ``psum`` its big-endian sum
    without the length) for a segment of ``len(hdr) - 34 + payload_len`` bytes, the data
    unsummed."""
    _CSUM_LE.pack_into(hdr, 24, -_fb(hdr[14:34], "little") % 0xFFFF)
    hdr[50:52] = fold(psum + len(hdr) - 34 + payload_len).to_bytes(2, "big")


def ipv4_tcp_partial_complete(buf: bytearray, off: int, total_length: int) -> None:
    """Complete the TCP checksum of the IPv4 packet at ``buf[off:]`` (a 20-byte header,
    ``total_length`` bytes) whose field holds the pseudo-header's partial sum
    (:func:`ipv4_tcp_partial_store`): the segment summed with that field in it, complemented
    (Linux's ``skb_checksum_help``). The same bytes as the checksum computed with the field
    zero: the field's folded sum equals the pseudo-header's modulo 0xFFFF."""
    start = off + 20
    total = le_sum_at(memoryview(buf), start, off + total_length)
    _CSUM_LE.pack_into(buf, start + 16, -total % 0xFFFF)  # (not 0: the field is not)


# -- the big-endian API (RFC 1071 as written) -----------------------------------------------------


def internet_checksum(data: Buffer, initial: int = 0) -> int:
    """The 16-bit checksum to store in a header whose checksum field is zero in ``data``.

    ``initial`` is a big-endian partial sum (e.g. from :func:`pseudo_header`) added to the data's
    sum. The value :func:`store_le` writes, as an int.
    """
    out = bytearray(2)
    store_le(out, 0, le_sum(data) + (initial << 8))  # a big-endian sum x 256 joins le_sum
    return _fb(out, "big")


def fold(total: int) -> int:
    """A big-endian sum folded to 16 bits, not complemented (a partial checksum, as a NIC's
    CHECKSUM_PARTIAL field holds the pseudo-header's): 0xFFFF, never 0, for a non-zero sum."""
    return total % 0xFFFF or (0xFFFF if total else 0)


def checksum_ok(data: Buffer, initial: int = 0) -> bool:
    """True when ``data`` (checksum field included) plus ``initial`` sums to 0xFFFF (-0)."""
    return ok_le(le_sum(data) + (initial << 8))


def checksum_adjust(csum: int, old: Buffer, new: Buffer) -> int:
    """RFC 1624 eqn. 3, ``HC' = ~(~HC + ~m + m')``: the checksum ``csum`` after the 16-bit
    words ``old`` (even length, at an even offset of the summed data) became ``new`` — what a
    NAT rewriting addresses and ports does instead of summing the whole segment again."""
    total = ~csum & 0xFFFF
    o, n = bytes(old), bytes(new)
    for i in range(0, len(o), 2):
        total += (~((o[i] << 8) | o[i + 1]) & 0xFFFF) + ((n[i] << 8) | n[i + 1])
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
