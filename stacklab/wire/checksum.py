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
  digit); buffers over :data:`SPLIT_AT` bytes are read as two halves of even length whose sum has
  half the digits.
"""

from __future__ import annotations

Buffer = bytes | bytearray | memoryview

SPLIT_AT = 1024
_fb = int.from_bytes


def le_sum(data: Buffer) -> int:
    """A non-negative int equal to 256 x the one's-complement sum of ``data`` (mod 0xFFFF).

    ``data`` read little-endian, in two halves when it is longer than :data:`SPLIT_AT` bytes.
    Zero only for an all-zero (or empty) buffer.
    """
    n = len(data)
    if n <= SPLIT_AT:
        return _fb(data, "little")
    h = (n >> 2) << 1  # even, so the second half's words stay aligned
    if type(data) is not bytes:  # int.from_bytes copies anything but bytes: slice a view
        data = data if type(data) is memoryview else memoryview(data)
    return _fb(data[:h], "little") + _fb(data[h:], "little")


def ones_sum(data: Buffer, initial: int = 0) -> int:
    """Unfolded partial sum of ``data`` (any int, only meaningful modulo 0xFFFF)."""
    return (le_sum(data) << 8) + initial


def internet_checksum(data: Buffer, initial: int = 0) -> int:
    """The 16-bit checksum to store in a header whose checksum field is zero in ``data``.

    ``initial`` is a partial sum (e.g. from :func:`pseudo_header_v4`) added to the data's sum.
    """
    total = le_sum(data) + (initial << 8)  # 256 x the big-endian sum
    r = ((total % 0xFFFF) << 8) % 0xFFFF  # x 256 again: 65536 == 1, the big-endian remainder
    if r:
        return 0xFFFF - r
    return 0 if total else 0xFFFF


def checksum_ok(data: Buffer, initial: int = 0) -> bool:
    """True when ``data`` (checksum field included) plus ``initial`` sums to 0xFFFF (or -0)."""
    total = le_sum(data) + (initial << 8)
    return total % 0xFFFF == 0 and total != 0


def pseudo_header_v4(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """Partial sum of the IPv4 pseudo-header (RFC 793 §3.1, RFC 768)."""
    return _fb(src, "big") + _fb(dst, "big") + proto + length


def pseudo_header_v6(src: bytes, dst: bytes, next_header: int, length: int) -> int:
    """Partial sum of the IPv6 pseudo-header (RFC 8200 §8.1)."""
    return _fb(src, "big") + _fb(dst, "big") + next_header + length


def pseudo_header(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """Pseudo-header sum for either family, chosen by the address length (4 or 16 bytes)."""
    return _fb(src, "big") + _fb(dst, "big") + proto + length
