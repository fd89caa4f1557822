"""UDP datagrams (RFC 768; over IPv6, RFC 8200 §8.1).

The checksum covers the pseudo-header of either IP family (chosen by the address length). A
computed checksum of zero is sent as 0xFFFF. On receive, a zero checksum over IPv4 means the sender
did not compute one (nothing to verify, :meth:`UdpView.checksum_ok` is True); over IPv6 a zero
checksum is invalid (RFC 8200 §8.1), so ``checksum_ok`` is False.

The length field must be at least 8 and at most the bytes available; bytes beyond it (link
padding the IP layer did not trim) are not part of the datagram.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .addr import ip_str
from .checksum import le_pseudo, le_sum, pseudo_ok, store_le_udp
from .errors import MalformedPacket
from .proto import PROTO_UDP

__all__ = ["UdpView", "Udp", "build_udp", "HEADER_LEN"]
HEADER_LEN = 8

_HDR = struct.Struct("!HHHH")

Buffer = bytes | bytearray | memoryview


class UdpView:
    """A validating view: ``src_port dst_port length checksum`` are ints, ``payload`` a memoryview
    of exactly ``length - 8`` bytes (sliced on construction: a property costs more per read)."""

    __slots__ = ("buf", "src_port", "dst_port", "length", "checksum", "payload")
    buf: memoryview
    src_port: int
    dst_port: int
    length: int
    checksum: int
    payload: memoryview

    def __init__(self, buf: Buffer) -> None:
        mv = buf if type(buf) is memoryview else memoryview(buf)
        n = len(mv)
        if n < 8:
            raise MalformedPacket("udp", "length", f"{n} bytes, the header needs 8")
        self.src_port, self.dst_port, length, self.checksum = _HDR.unpack_from(mv)
        if length < 8 or length > n:
            raise MalformedPacket("udp", "length",
                                  f"length field {length}, datagram has {n} bytes")
        self.length = length
        self.buf = dgram = mv if length == n else mv[:length]
        self.payload = dgram[8:]

    @property
    def has_checksum(self) -> bool:
        return self.checksum != 0

    def checksum_ok(self, src_ip: bytes, dst_ip: bytes) -> bool:
        """Verify against the pseudo-header of ``src_ip``/``dst_ip`` (4 or 16 bytes each)."""
        if self.checksum == 0:
            return len(src_ip) == 4  # IPv4: "no checksum"; IPv6: zero is invalid
        return pseudo_ok(self.buf, src_ip, dst_ip, PROTO_UDP)


def build_udp(src_ip: bytes, dst_ip: bytes, src_port: int, dst_port: int,
              payload: Buffer = b"") -> bytearray:
    """A datagram with its length and checksum (family from the address length)."""
    n = 8 + len(payload)
    if n > 0xFFFF:
        raise ValueError(f"UDP datagram of {n} bytes does not fit the 16-bit length field")
    buf = bytearray(_HDR.pack(src_port, dst_port, n, 0))
    if payload:
        buf += payload
    store_le_udp(buf, 6, le_sum(buf) + le_pseudo(src_ip, dst_ip, PROTO_UDP, n))
    return buf


@dataclass(slots=True)
class Udp:
    src_port: int
    dst_port: int
    payload: bytes = b""
    # As read by parse(); build() always computes the checksum.
    checksum: int | None = field(default=None, compare=False)
    checksum_valid: bool | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, buf: Buffer, src_ip: bytes | None = None,
              dst_ip: bytes | None = None) -> Udp:
        """Parse; with both addresses, ``checksum_valid`` tells whether the checksum verifies."""
        v = UdpView(buf)
        u = cls(v.src_port, v.dst_port, bytes(v.payload), v.checksum)
        if src_ip is not None and dst_ip is not None:
            u.checksum_valid = v.checksum_ok(src_ip, dst_ip)
        return u

    def build(self, src_ip: bytes, dst_ip: bytes) -> bytearray:
        return build_udp(src_ip, dst_ip, self.src_port, self.dst_port, self.payload)

    def summary(self) -> str:
        """tcpdump's UDP part: ``UDP, length 5``."""
        return f"UDP, length {len(self.payload)}"

    def summary_with_addresses(self, src_ip: bytes, dst_ip: bytes) -> str:
        return f"{ip_str(src_ip)}.{self.src_port} > {ip_str(dst_ip)}.{self.dst_port}: " + \
            self.summary()
