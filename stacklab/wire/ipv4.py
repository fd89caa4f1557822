"""IPv4 header (RFC 791), options kept as raw bytes.

Layout (20 bytes + options)::

    ver(4) ihl(4) | tos(8) | total length(16)
    identification(16) | flags(3: 0 DF MF) fragment offset(13, in 8-octet units)
    ttl(8) | protocol(8) | header checksum(16)
    source(32) | destination(32) | options (ihl*4 - 20 bytes)

``frag_offset`` is in **bytes** everywhere in stacklab (a multiple of 8), not 8-octet units.
The payload is sliced by ``total_length``: Ethernet padding after it is ignored.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .addr import ip4_str
from .checksum import ipv4_header_ok, ipv4_header_store
from .errors import MalformedPacket
from .proto import (
    PROTO_AH,
    PROTO_ESP,
    PROTO_GRE,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_IGMP,
    PROTO_IPV6,
    PROTO_SCTP,
    PROTO_TCP,
    PROTO_UDP,
)

PROTO_NAMES = {PROTO_ICMP: "ICMP", PROTO_IGMP: "IGMP", PROTO_TCP: "TCP", PROTO_UDP: "UDP",
               PROTO_IPV6: "IPv6", PROTO_GRE: "GRE", PROTO_ESP: "ESP", PROTO_AH: "AH",
               PROTO_ICMPV6: "ICMPv6", PROTO_SCTP: "SCTP"}

IPV4_HEADER_LEN = 20
IPV4_MAX_OPTIONS = 40
FLAG_DF = 0x4000
FLAG_MF = 0x2000

_HDR = struct.Struct("!BBHHHBBH4s4s")
_HDR_RX = struct.Struct("!BBHHHBB2x4s4s")  # the checksum field is read on demand
_U16 = struct.Struct("!H")

Buffer = bytes | bytearray | memoryview


class IPv4View:
    """A validated view over an IPv4 packet; ``payload`` is a memoryview of the data.

    Validated on construction: length >= 20, version 4, IHL >= 5, header within the buffer,
    header length <= total length <= buffer length. The checksum is *not* checked: call
    :meth:`checksum_ok` (the stack counts bad checksums instead of raising).
    """

    __slots__ = ("buf", "header_len", "tos", "total_length", "ident", "flags_frag", "ttl",
                 "proto", "src", "dst", "payload")
    buf: memoryview
    header_len: int
    tos: int
    total_length: int
    ident: int
    flags_frag: int
    ttl: int
    proto: int
    src: bytes
    dst: bytes
    payload: memoryview

    def __init__(self, buf: Buffer) -> None:
        mv = buf if type(buf) is memoryview else memoryview(buf)
        n = len(mv)
        if n < 20:
            raise MalformedPacket("ipv4", "length", f"{n} bytes < 20")
        (vihl, self.tos, tlen, self.ident, self.flags_frag, self.ttl, self.proto, self.src,
         self.dst) = _HDR_RX.unpack_from(mv)
        if vihl == 0x45:  # the common case: version 4, no options
            hl = 20
        else:
            if vihl >> 4 != 4:
                raise MalformedPacket("ipv4", "version", f"version {vihl >> 4} is not 4")
            hl = (vihl & 0x0F) << 2
            if hl < 20:
                raise MalformedPacket("ipv4", "ihl", f"IHL {hl >> 2} < 5")
        if tlen < hl:
            raise MalformedPacket("ipv4", "total_length", f"total length {tlen} < header {hl}")
        if tlen > n:
            raise MalformedPacket("ipv4", "total_length",
                                  f"total length {tlen} > {n} bytes received")
        self.buf = mv
        self.header_len = hl
        self.total_length = tlen
        self.payload = mv[hl:tlen]

    @property
    def version(self) -> int:
        return 4

    @property
    def checksum(self) -> int:
        """The header checksum field as received (verify with :meth:`checksum_ok`)."""
        v: int = _U16.unpack_from(self.buf, 10)[0]
        return v

    @property
    def dscp(self) -> int:
        return self.tos >> 2

    @property
    def ecn(self) -> int:
        return self.tos & 3

    @property
    def df(self) -> bool:
        return bool(self.flags_frag & FLAG_DF)

    @property
    def mf(self) -> bool:
        return bool(self.flags_frag & FLAG_MF)

    @property
    def evil(self) -> bool:
        """The reserved flag bit (RFC 3514's 'evil bit'); must be zero."""
        return bool(self.flags_frag & 0x8000)

    @property
    def frag_offset(self) -> int:
        """Fragment offset in bytes."""
        return (self.flags_frag & 0x1FFF) << 3

    @property
    def is_fragment(self) -> bool:
        return bool(self.flags_frag & 0x3FFF)

    @property
    def options(self) -> memoryview:
        return self.buf[20:self.header_len]

    def checksum_ok(self) -> bool:
        return ipv4_header_ok(self.buf[:self.header_len])


@dataclass(slots=True)
class IPv4:
    """An IPv4 packet as a value. ``build()`` fills IHL, total length and the header checksum.

    ``options`` are raw bytes; ``build()`` pads them with zero (End of Option List) octets to a
    multiple of 4. ``frag_offset`` is in bytes (multiple of 8).
    """

    src: bytes
    dst: bytes
    proto: int
    payload: bytes = b""
    ttl: int = 64
    ident: int = 0
    df: bool = False
    mf: bool = False
    frag_offset: int = 0
    tos: int = 0
    options: bytes = b""

    @classmethod
    def parse(cls, buf: Buffer) -> IPv4:
        v = IPv4View(buf)
        ff = v.flags_frag
        return cls(v.src, v.dst, v.proto, bytes(v.payload), v.ttl, v.ident, bool(ff & FLAG_DF),
                   bool(ff & FLAG_MF), (ff & 0x1FFF) << 3, v.tos, bytes(v.options))

    def build(self) -> bytearray:
        if len(self.src) != 4 or len(self.dst) != 4:
            raise ValueError("IPv4 addresses are 4 bytes")
        return build_ipv4(self.src, self.dst, self.proto, self.payload, self.ttl, self.ident,
                          self.df, self.mf, self.frag_offset, self.tos, self.options)

    def summary(self) -> str:
        return summary_line(self.src, self.dst, self.proto, self.ident, self.df, self.mf,
                            self.frag_offset, len(self.payload), self.ttl)


def summary_line(src: bytes, dst: bytes, proto: int, ident: int, df: bool, mf: bool,
                 frag_offset: int, payload_len: int, ttl: int) -> str:
    """tcpdump-like line for an IPv4 packet whose payload is not decoded further."""
    name = PROTO_NAMES.get(proto, f"proto {proto}")
    flags = "+" if mf else ""
    frag = ""
    if mf or frag_offset:
        frag = f", frag {ident}:{payload_len}@{frag_offset}{flags}"
    elif df:
        frag = ", DF"
    return f"{ip4_str(src)} > {ip4_str(dst)}: {name}{frag}, ttl {ttl}, length {payload_len}"


def build_ipv4(src: bytes, dst: bytes, proto: int, payload: Buffer, ttl: int = 64,
               ident: int = 0, df: bool = False, mf: bool = False, frag_offset: int = 0,
               tos: int = 0, options: bytes = b"") -> bytearray:
    """Fast path: header with checksum + payload in a new bytearray."""
    if frag_offset & 7 or not 0 <= frag_offset <= 0xFFF8:
        raise ValueError(f"fragment offset {frag_offset} is not a multiple of 8 in 0..65528")
    ff = frag_offset >> 3
    if df:
        ff |= FLAG_DF
    if mf:
        ff |= FLAG_MF
    if options:
        olen = len(options)
        if olen & 3:
            options = bytes(options) + bytes(4 - (olen & 3))
            olen = len(options)
        if olen > IPV4_MAX_OPTIONS:
            raise ValueError(f"{olen} bytes of IPv4 options > 40")
        hl = 20 + olen
        total = hl + len(payload)
        if total > 0xFFFF:
            raise ValueError(f"IPv4 total length {total} > 65535")
        out = bytearray(_HDR.pack(0x40 | (hl >> 2), tos, total, ident, ff, ttl, proto, 0, src,
                                  dst))
        out += options
    else:
        total = 20 + len(payload)
        if total > 0xFFFF:
            raise ValueError(f"IPv4 total length {total} > 65535")
        out = bytearray(_HDR.pack(0x45, tos, total, ident, ff, ttl, proto, 0, src, dst))
    ipv4_header_store(out)
    out += payload
    return out
