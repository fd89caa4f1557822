"""IPv6 fixed header (RFC 8200 §3) and the extension headers of §4.

Fixed header (40 bytes)::

    ver(4) traffic class(8) flow label(20) | payload length(16) next header(8) hop limit(8)
    source(128) | destination(128)

Extension headers handled: Hop-by-Hop Options (0), Routing (43), Fragment (44), Destination
Options (60); No Next Header (59) ends a chain with no upper layer. Any other Next Header value
ends the walk and is the upper-layer protocol (TCP, UDP, ICMPv6, but also ESP/AH, which stacklab
does not decode). Options in Hop-by-Hop/Destination Options are kept as raw bytes; see
:func:`parse_tlv_options` and :func:`pad_options`. The payload is sliced by ``payload_length``:
bytes after it (Ethernet padding) are ignored.

``offset`` in :class:`Fragment` is in **bytes** (multiple of 8), as everywhere in stacklab.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .addr import ip6_str
from .errors import MalformedPacket
from .proto import (
    PROTO_AH,
    PROTO_DSTOPTS,
    PROTO_ESP,
    PROTO_FRAGMENT,
    PROTO_HOPOPTS,
    PROTO_ICMPV6,
    PROTO_IPIP,
    PROTO_IPV6,
    PROTO_NONE,
    PROTO_ROUTING,
    PROTO_TCP,
    PROTO_UDP,
)

# Next Header values are the IP protocol numbers (wire/proto.py), extension headers included.
EXT_HEADER_TYPES = frozenset((PROTO_HOPOPTS, PROTO_ROUTING, PROTO_FRAGMENT, PROTO_DSTOPTS))
MAX_EXT_HEADERS = 10  # a bound on the chain walk (RFC 8200 does not fix one; 7112/9098 advise)
IPV6_HEADER_LEN = 40
MIN_MTU = 1280  # the smallest MTU of a link that carries IPv6 (RFC 8200 §5)

OPT_PAD1 = 0
OPT_PADN = 1
OPT_ROUTER_ALERT = 5
OPT_JUMBO = 0xC2

_HDR = struct.Struct("!IHBB16s16s")
_EXT2 = struct.Struct("!BB")
_ROUTING = struct.Struct("!BBBB")
_FRAG = struct.Struct("!BBHI")

Buffer = bytes | bytearray | memoryview


class IPv6View:
    """A validated view over an IPv6 packet; ``payload`` is everything after the fixed header
    (extension headers included) up to ``payload_length``. Use :func:`walk_ext_headers` to find
    the upper layer."""

    __slots__ = ("buf", "vtcfl", "payload_length", "next_header", "hop_limit", "src", "dst",
                 "payload")
    buf: memoryview
    vtcfl: int  # version, traffic class, flow label
    payload_length: int
    next_header: int
    hop_limit: int
    src: bytes
    dst: bytes
    payload: memoryview

    def __init__(self, buf: Buffer) -> None:
        mv = buf if type(buf) is memoryview else memoryview(buf)
        n = len(mv)
        if n < 40:
            raise MalformedPacket("ipv6", "length", f"{n} bytes < 40")
        vtcfl, plen, nh, hlim, src, dst = _HDR.unpack_from(mv)
        if vtcfl >> 28 != 6:
            raise MalformedPacket("ipv6", "version", f"version {vtcfl >> 28} is not 6")
        if plen > n - 40:
            raise MalformedPacket("ipv6", "payload_length",
                                  f"payload length {plen} > {n - 40} bytes received")
        self.buf = mv
        self.vtcfl = vtcfl
        self.payload_length = plen
        self.next_header = nh
        self.hop_limit = hlim
        self.src = src
        self.dst = dst
        self.payload = mv[40:40 + plen]

    @property
    def version(self) -> int:
        return 6

    @property
    def traffic_class(self) -> int:
        return (self.vtcfl >> 20) & 0xFF

    @property
    def flow_label(self) -> int:
        return self.vtcfl & 0xFFFFF


# -- extension headers -------------------------------------------------------------------------


def pad_options(options: bytes) -> bytes:
    """Pad the option area of a HbH/DstOpts header so that 2 + len is a multiple of 8
    (RFC 8200 §4.2: Pad1 for one octet, PadN otherwise)."""
    need = -(2 + len(options)) % 8
    if need == 0:
        return bytes(options)
    if need == 1:
        return bytes(options) + b"\x00"
    return bytes(options) + bytes((OPT_PADN, need - 2)) + bytes(need - 2)


def parse_tlv_options(data: Buffer, keep_padding: bool = False) -> list[tuple[int, bytes]]:
    """Split a HbH/DstOpts option area into ``(type, value)`` pairs.

    Pad1 (a lone 0 octet) is ``(0, b"")`` and PadN ``(1, zeros)``; both are dropped unless
    ``keep_padding``. A TLV running past the end raises :class:`MalformedPacket`.
    """
    out: list[tuple[int, bytes]] = []
    i = 0
    n = len(data)
    while i < n:
        t = data[i]
        if t == OPT_PAD1:
            if keep_padding:
                out.append((OPT_PAD1, b""))
            i += 1
            continue
        if i + 2 > n:
            raise MalformedPacket("ipv6", "option", f"option type {t} truncated at {i}")
        ln = data[i + 1]
        if i + 2 + ln > n:
            raise MalformedPacket("ipv6", "option",
                                  f"option type {t} length {ln} runs past the header")
        if t != OPT_PADN or keep_padding:
            out.append((t, bytes(data[i + 2:i + 2 + ln])))
        i += 2 + ln
    return out


def build_tlv_options(options: list[tuple[int, bytes]]) -> bytes:
    """Encode ``(type, value)`` pairs (Pad1 as ``(0, b"")``); no padding is added."""
    out = bytearray()
    for t, v in options:
        if t == OPT_PAD1:
            out.append(0)
        else:
            if len(v) > 255:
                raise ValueError(f"option value of {len(v)} bytes > 255")
            out += bytes((t, len(v)))
            out += v
    return bytes(out)


@dataclass(slots=True)
class HopByHop:
    """Hop-by-Hop Options header (next header 0). ``options``: raw option bytes (TLVs)."""

    options: bytes = b""
    proto = PROTO_HOPOPTS

    def build(self, next_header: int) -> bytes:
        return _build_opts_header(next_header, self.options)

    def tlvs(self) -> list[tuple[int, bytes]]:
        return parse_tlv_options(self.options)


@dataclass(slots=True)
class DestinationOptions:
    """Destination Options header (next header 60). ``options``: raw option bytes (TLVs)."""

    options: bytes = b""
    proto = PROTO_DSTOPTS

    def build(self, next_header: int) -> bytes:
        return _build_opts_header(next_header, self.options)

    def tlvs(self) -> list[tuple[int, bytes]]:
        return parse_tlv_options(self.options)


@dataclass(slots=True)
class Routing:
    """Routing header (next header 43). ``data`` is the type-specific data after Segments Left
    (4 + 8k bytes: the reserved/flags word and the addresses or segments)."""

    type: int = 0
    segleft: int = 0
    data: bytes = b"\x00\x00\x00\x00"
    proto = PROTO_ROUTING

    def build(self, next_header: int) -> bytes:
        ln = 4 + len(self.data)
        if ln % 8 or ln > 2048:
            raise ValueError(f"Routing header of {ln} bytes is not a multiple of 8 up to 2048")
        return _ROUTING.pack(next_header, ln // 8 - 1, self.type, self.segleft) + bytes(self.data)


@dataclass(slots=True)
class Fragment:
    """Fragment header (next header 44). ``offset`` in bytes (multiple of 8); ``more`` is the M
    flag; ``next_header`` is the header that follows it, filled on parse — on build the chain
    order (or the packet's ``next_header``) decides what is written."""

    offset: int = 0
    more: bool = False
    ident: int = 0
    next_header: int = 0
    proto = PROTO_FRAGMENT

    def build(self, next_header: int) -> bytes:
        if self.offset & 7 or not 0 <= self.offset <= 0xFFF8:
            raise ValueError(f"fragment offset {self.offset} is not a multiple of 8 in 0..65528")
        return _FRAG.pack(next_header, 0, self.offset | (1 if self.more else 0), self.ident)


ExtHeader = HopByHop | Routing | Fragment | DestinationOptions


def _build_opts_header(next_header: int, options: bytes) -> bytes:
    body = pad_options(options)
    ln = 2 + len(body)
    if ln > 2048:
        raise ValueError(f"options header of {ln} bytes > 2048")
    return bytes((next_header, ln // 8 - 1)) + body


def walk_ext_headers(
    view: IPv6View,
) -> tuple[int, int, Fragment | None, list[ExtHeader]]:
    """Walk the extension header chain of ``view``.

    Returns ``(upper_proto, upper_offset, fragment, ext_headers)``: the protocol after the last
    extension header (59 = No Next Header), its offset from the start of the IPv6 packet (so the
    upper-layer data is ``view.buf[upper_offset:40 + view.payload_length]``), the Fragment header
    if present, and the list of headers parsed. The walk stops after a Fragment header with a
    non-zero offset (what follows is fragment data). Hop-by-Hop anywhere but first, a header
    running past the payload or more than :data:`MAX_EXT_HEADERS` headers are malformed.
    """
    nh = view.next_header
    if nh not in EXT_HEADER_TYPES:
        return nh, 40, None, []
    buf = view.buf
    end = 40 + view.payload_length
    off = 40
    frag: Fragment | None = None
    exts: list[ExtHeader] = []
    while nh in EXT_HEADER_TYPES:
        if len(exts) >= MAX_EXT_HEADERS:
            raise MalformedPacket("ipv6", "ext_headers",
                                  f"more than {MAX_EXT_HEADERS} extension headers")
        if off + 8 > end:
            raise MalformedPacket("ipv6", "ext_header",
                                  f"extension header {nh} at {off} truncated")
        if nh == PROTO_FRAGMENT:
            nxt, _res, word, ident = _FRAG.unpack_from(buf, off)
            frag = Fragment(word & 0xFFF8, bool(word & 1), ident, nxt)
            exts.append(frag)
            off += 8
            nh = nxt
            if frag.offset:
                break
            continue
        nxt, hlen = _EXT2.unpack_from(buf, off)
        size = (hlen + 1) * 8
        if off + size > end:
            raise MalformedPacket("ipv6", "ext_header",
                                  f"extension header {nh} of {size} bytes runs past the payload")
        if nh == PROTO_HOPOPTS:
            if off != 40:
                raise MalformedPacket("ipv6", "hop_by_hop", "Hop-by-Hop header not first")
            exts.append(HopByHop(bytes(buf[off + 2:off + size])))
        elif nh == PROTO_DSTOPTS:
            exts.append(DestinationOptions(bytes(buf[off + 2:off + size])))
        else:
            exts.append(Routing(buf[off + 2], buf[off + 3], bytes(buf[off + 4:off + size])))
        off += size
        nh = nxt
    return nh, off, frag, exts


@dataclass(slots=True)
class IPv6:
    """An IPv6 packet as a value.

    ``next_header`` is the **upper-layer** protocol (what follows the last extension header);
    ``build()`` chains ``ext_headers`` in order, fills every Next Header field and the payload
    length. ``parse()`` does the reverse: ``payload`` is the upper-layer data.
    """

    src: bytes
    dst: bytes
    next_header: int
    payload: bytes = b""
    hop_limit: int = 64
    traffic_class: int = 0
    flow_label: int = 0
    ext_headers: list[ExtHeader] = field(default_factory=list)

    @classmethod
    def parse(cls, buf: Buffer) -> IPv6:
        v = IPv6View(buf)
        upper, off, _frag, exts = walk_ext_headers(v)
        return cls(v.src, v.dst, upper, bytes(v.buf[off:40 + v.payload_length]), v.hop_limit,
                   v.traffic_class, v.flow_label, exts)

    def build(self) -> bytearray:
        if len(self.src) != 16 or len(self.dst) != 16:
            raise ValueError("IPv6 addresses are 16 bytes")
        chain = bytearray()
        exts = self.ext_headers
        for i, ext in enumerate(exts):
            nxt = exts[i + 1].proto if i + 1 < len(exts) else self.next_header
            chain += ext.build(nxt)
        first = exts[0].proto if exts else self.next_header
        chain += self.payload
        return build_ipv6(self.src, self.dst, first, chain, self.hop_limit, self.traffic_class,
                          self.flow_label)

    def summary(self) -> str:
        return summary_line(self.src, self.dst, self.next_header, self.ext_headers,
                            len(self.payload), self.hop_limit)


_EXT_NAMES = {PROTO_HOPOPTS: "HBH", PROTO_ROUTING: "srcrt", PROTO_FRAGMENT: "frag",
              PROTO_DSTOPTS: "DSTOPT"}
_NH_NAMES = {PROTO_TCP: "TCP", PROTO_UDP: "UDP", PROTO_ICMPV6: "ICMPv6",
             PROTO_NONE: "no next header", PROTO_ESP: "ESP", PROTO_AH: "AH", PROTO_IPIP: "IPv4",
             PROTO_IPV6: "IPv6"}


def ext_summary(exts: list[ExtHeader]) -> str:
    """tcpdump-ish text for the extension headers, e.g. ``HBH frag (0x5:0|1448+) ``."""
    parts = []
    for e in exts:
        if isinstance(e, Fragment):
            parts.append(f"frag (0x{e.ident:x}:{e.offset}{'+' if e.more else ''})")
        elif isinstance(e, Routing):
            parts.append(f"srcrt (type {e.type}, segleft {e.segleft})")
        else:
            parts.append(_EXT_NAMES[e.proto])
    return "".join(p + " " for p in parts)


def summary_line(src: bytes, dst: bytes, upper: int, exts: list[ExtHeader], payload_len: int,
                 hop_limit: int) -> str:
    """tcpdump-like line for an IPv6 packet whose upper layer is not decoded further."""
    name = _NH_NAMES.get(upper, f"next-header {upper}")
    return (f"{ip6_str(src)} > {ip6_str(dst)}: {ext_summary(exts)}{name}, hlim {hop_limit}, "
            f"length {payload_len}")


def build_ipv6(src: bytes, dst: bytes, next_header: int, payload: Buffer, hop_limit: int = 64,
               traffic_class: int = 0, flow_label: int = 0) -> bytearray:
    """Fast path: fixed header + payload (which starts with any extension headers)."""
    plen = len(payload)
    if plen > 0xFFFF:
        raise ValueError(f"IPv6 payload length {plen} > 65535 (jumbograms not supported)")
    if not 0 <= traffic_class <= 0xFF or not 0 <= flow_label <= 0xFFFFF:
        raise ValueError(f"traffic class {traffic_class} / flow label {flow_label} out of range")
    out = bytearray(_HDR.pack(0x6000_0000 | (traffic_class << 20) | flow_label, plen,
                              next_header, hop_limit, src, dst))
    out += payload
    return out
