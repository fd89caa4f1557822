"""ICMPv6 (RFC 4443) and Neighbor Discovery (RFC 4861).

Messages: echo request/reply, destination unreachable, Packet Too Big (32-bit MTU), time exceeded,
parameter problem, and the NDP router/neighbor solicitations and advertisements with their
options (source/target link-layer address, prefix information, MTU; others kept as
:class:`UnknownNdpOpt`). The checksum covers the IPv6 pseudo-header (RFC 8200 §8.1), so building
and verifying take the source and destination addresses: ``build(src, dst)``,
``Icmpv6View.checksum_ok(src, dst)``.

:class:`Icmpv6` is the generic value object (``type, code, rest, payload``) used for echo and error
messages; the four NDP messages have their own dataclasses. :func:`parse_icmpv6` picks the right
one. Rules enforced on parse: error messages quote at least an IPv6 header; NDP messages have
their minimum length, and an option of length 0 or one running past the message is malformed
(RFC 4861 §4.6). Hop limit 255 and code 0 are for the NDP engine to check.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from .addr import ip6_str, mac_str
from .checksum import pseudo_header, pseudo_ok, pseudo_store
from .errors import MalformedPacket
from .ipv6 import MIN_MTU
from .proto import PROTO_ICMPV6

__all__ = [
    "Icmpv6View", "Icmpv6", "RouterSolicitation", "RouterAdvertisement", "NeighborSolicitation",
    "NeighborAdvertisement", "SourceLinkAddrOpt", "TargetLinkAddrOpt", "PrefixInfoOpt", "MtuOpt",
    "RdnssOpt", "UnknownNdpOpt", "NdpOption", "parse_icmpv6", "parse_ndp_options",
    "pack_ndp_options",
    "build_icmpv6", "echo_request", "echo_reply", "dest_unreachable", "packet_too_big",
    "time_exceeded", "param_problem",
    "DEST_UNREACH", "PACKET_TOO_BIG", "TIME_EXCEEDED", "PARAM_PROBLEM", "ECHO_REQUEST",
    "ECHO_REPLY", "ROUTER_SOLICIT", "ROUTER_ADVERT", "NEIGHBOR_SOLICIT", "NEIGHBOR_ADVERT",
    "REDIRECT", "MIN_MTU",
]


DEST_UNREACH = 1
PACKET_TOO_BIG = 2
TIME_EXCEEDED = 3
PARAM_PROBLEM = 4
ECHO_REQUEST = 128
ECHO_REPLY = 129
ROUTER_SOLICIT = 133
ROUTER_ADVERT = 134
NEIGHBOR_SOLICIT = 135
NEIGHBOR_ADVERT = 136
REDIRECT = 137

# Destination unreachable codes (RFC 4443 §3.1).
UNREACH_NOROUTE = 0
UNREACH_ADMIN = 1
UNREACH_BEYONDSCOPE = 2
UNREACH_ADDR = 3
UNREACH_PORT = 4
UNREACH_POLICY = 5
UNREACH_REJECT_ROUTE = 6
# Time exceeded codes (§3.3).
TIMXCEED_HOPLIMIT = 0
TIMXCEED_REASS = 1
# Parameter problem codes (§3.4).
PARAMPROB_HEADER = 0
PARAMPROB_NEXTHEADER = 1
PARAMPROB_OPTION = 2

ERROR_TYPES = frozenset((DEST_UNREACH, PACKET_TOO_BIG, TIME_EXCEEDED, PARAM_PROBLEM))

# An error message must fit the minimum MTU: 1280 - 40 (IPv6) - 8 (ICMPv6 header) of quote.
MAX_QUOTE = MIN_MTU - 48

# NDP option types (RFC 4861 §4.6).
OPT_SOURCE_LLADDR = 1
OPT_TARGET_LLADDR = 2
OPT_PREFIX_INFO = 3
OPT_REDIRECTED_HEADER = 4
OPT_MTU = 5
OPT_RDNSS = 25  # RFC 8106 §5.1: Recursive DNS Server

# NA flags (§4.4) and RA flags (§4.2), prefix information flags (§4.6.2).
NA_ROUTER = 0x80
NA_SOLICITED = 0x40
NA_OVERRIDE = 0x20
RA_MANAGED = 0x80
RA_OTHER = 0x40
PI_ONLINK = 0x80
PI_AUTONOMOUS = 0x40

TYPE_NAMES = {
    DEST_UNREACH: "destination unreachable", PACKET_TOO_BIG: "packet too big",
    TIME_EXCEEDED: "time exceeded", PARAM_PROBLEM: "parameter problem",
    ECHO_REQUEST: "echo request", ECHO_REPLY: "echo reply",
    ROUTER_SOLICIT: "router solicitation", ROUTER_ADVERT: "router advertisement",
    NEIGHBOR_SOLICIT: "neighbor solicitation", NEIGHBOR_ADVERT: "neighbor advertisement",
    REDIRECT: "redirect",
}
UNREACH_NAMES = {
    UNREACH_NOROUTE: "unreachable route", UNREACH_ADMIN: "unreachable prohibited",
    UNREACH_BEYONDSCOPE: "beyond scope", UNREACH_ADDR: "unreachable address",
    UNREACH_PORT: "unreachable port", UNREACH_POLICY: "failed policy",
    UNREACH_REJECT_ROUTE: "reject route",
}
TIMXCEED_NAMES = {TIMXCEED_HOPLIMIT: "time exceeded in-transit",
                  TIMXCEED_REASS: "ip6 reassembly time exceeded"}
PARAMPROB_NAMES = {PARAMPROB_HEADER: "erroneous - octet",
                   PARAMPROB_NEXTHEADER: "next header - octet",
                   PARAMPROB_OPTION: "option - octet"}

# Minimum length of each message, header included (RFC 4443, RFC 4861).
_MIN_LEN = {DEST_UNREACH: 8, PACKET_TOO_BIG: 8, TIME_EXCEEDED: 8, PARAM_PROBLEM: 8,
            ECHO_REQUEST: 8, ECHO_REPLY: 8, ROUTER_SOLICIT: 8, ROUTER_ADVERT: 16,
            NEIGHBOR_SOLICIT: 24, NEIGHBOR_ADVERT: 24, REDIRECT: 40}
# Where the options start in each NDP message.
_OPT_START = {ROUTER_SOLICIT: 8, ROUTER_ADVERT: 16, NEIGHBOR_SOLICIT: 24, NEIGHBOR_ADVERT: 24,
              REDIRECT: 40}

_HDR = struct.Struct("!BBH")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U16X2 = struct.Struct("!HH")
_RA = struct.Struct("!BBHII")
_PI = struct.Struct("!BBBBIII16s")
_MTU = struct.Struct("!BBHI")

Buffer = bytes | bytearray | memoryview


def build_icmpv6(src: bytes, dst: bytes, icmp_type: int, code: int, body: Buffer) -> bytearray:
    """``type, code, checksum`` + ``body`` (everything after the checksum), checksum filled."""
    buf = bytearray(_HDR.pack(icmp_type, code, 0))
    buf += body
    # over the message and its pseudo-header (RFC 4443 §2.3)
    pseudo_store(buf, 2, pseudo_header(src, dst, PROTO_ICMPV6, 0))
    return buf


# -- NDP options ----------------------------------------------------------------------------------


def _pad8(raw: bytes) -> bytes:
    pad = -len(raw) & 7
    return raw + b"\x00" * pad if pad else raw


@dataclass(frozen=True, slots=True)
class SourceLinkAddrOpt:
    """Source link-layer address (type 1); for Ethernet ``lladdr`` is the 6-byte MAC."""

    lladdr: bytes
    type = OPT_SOURCE_LLADDR

    def encode(self) -> bytes:
        n = -(-(len(self.lladdr) + 2) // 8)
        return _pad8(bytes((self.type, n)) + self.lladdr)

    def summary(self) -> str:
        return f"source link-address option ({_ll_str(self.lladdr)})"


@dataclass(frozen=True, slots=True)
class TargetLinkAddrOpt:
    """Target link-layer address (type 2)."""

    lladdr: bytes
    type = OPT_TARGET_LLADDR

    def encode(self) -> bytes:
        n = -(-(len(self.lladdr) + 2) // 8)
        return _pad8(bytes((self.type, n)) + self.lladdr)

    def summary(self) -> str:
        return f"destination link-address option ({_ll_str(self.lladdr)})"


def _ll_str(lladdr: bytes) -> str:
    return mac_str(lladdr) if len(lladdr) == 6 else lladdr.hex(":")


@dataclass(frozen=True, slots=True)
class PrefixInfoOpt:
    """Prefix information (type 3, RFC 4861 §4.6.2). Lifetimes in seconds (0xFFFFFFFF =
    infinity). ``other_flags`` keeps the flag bits other than L and A."""

    prefix_len: int
    on_link: bool
    autonomous: bool
    valid_lifetime: int
    preferred_lifetime: int
    prefix: bytes
    other_flags: int = 0
    type = OPT_PREFIX_INFO

    def encode(self) -> bytes:
        flags = (PI_ONLINK if self.on_link else 0) | (PI_AUTONOMOUS if self.autonomous else 0)
        return _PI.pack(OPT_PREFIX_INFO, 4, self.prefix_len, flags | (self.other_flags & 0x3F),
                        self.valid_lifetime, self.preferred_lifetime, 0, self.prefix)

    def summary(self) -> str:
        fl = ("L" if self.on_link else "") + ("A" if self.autonomous else "")
        return (f"prefix info option ({ip6_str(self.prefix)}/{self.prefix_len}, Flags [{fl}], "
                f"valid time {self.valid_lifetime}s, pref. time {self.preferred_lifetime}s)")


@dataclass(frozen=True, slots=True)
class MtuOpt:
    """MTU (type 5)."""

    mtu: int
    type = OPT_MTU

    def encode(self) -> bytes:
        return _MTU.pack(OPT_MTU, 1, 0, self.mtu)

    def summary(self) -> str:
        return f"mtu option ({self.mtu})"


@dataclass(frozen=True, slots=True)
class RdnssOpt:
    """Recursive DNS Server (type 25, RFC 8106 §5.1): ``lifetime`` seconds, the servers."""

    lifetime: int
    servers: tuple[bytes, ...]
    type = OPT_RDNSS

    def encode(self) -> bytes:
        return (bytes((OPT_RDNSS, 1 + 2 * len(self.servers), 0, 0))
                + self.lifetime.to_bytes(4, "big") + b"".join(self.servers))

    def summary(self) -> str:
        return (f"rdnss option (lifetime {self.lifetime}s, "
                f"{', '.join(ip6_str(a) for a in self.servers)})")


@dataclass(frozen=True, slots=True)
class UnknownNdpOpt:
    """An option we do not interpret: ``type`` and ``data`` (the bytes after type and length,
    ``8 * length - 2`` of them)."""

    type: int
    data: bytes

    def encode(self) -> bytes:
        return _pad8(bytes((self.type, -(-(len(self.data) + 2) // 8))) + self.data)

    def summary(self) -> str:
        return f"option-{self.type} ({len(self.data) + 2} bytes)"


NdpOption = (SourceLinkAddrOpt | TargetLinkAddrOpt | PrefixInfoOpt | MtuOpt | RdnssOpt
             | UnknownNdpOpt)


def _walk_ndp(mv: memoryview, start: int) -> Iterable[tuple[int, int, int]]:
    """``(type, offset, length in bytes)`` of each option from ``start`` to the end."""
    i = start
    end = len(mv)
    while i < end:
        if i + 2 > end:
            raise MalformedPacket("icmpv6", "option_length",
                                  f"option at offset {i} has no length byte")
        otype = mv[i]
        olen = mv[i + 1] * 8
        if olen == 0:
            raise MalformedPacket("icmpv6", "option_length",
                                  f"option type {otype} has length 0 (RFC 4861 §4.6)")
        if i + olen > end:
            raise MalformedPacket("icmpv6", "option_length",
                                  f"option type {otype} of {olen} bytes runs past the message")
        if otype == OPT_PREFIX_INFO and olen != 32:
            raise MalformedPacket("icmpv6", "option_length",
                                  f"prefix information option of {olen} bytes, must be 32")
        if otype == OPT_MTU and olen != 8:
            raise MalformedPacket("icmpv6", "option_length",
                                  f"MTU option of {olen} bytes, must be 8")
        yield otype, i, olen
        i += olen


def parse_ndp_options(buf: Buffer, start: int = 0) -> list[NdpOption]:
    mv = buf if type(buf) is memoryview else memoryview(buf)
    out: list[NdpOption] = []
    for otype, i, olen in _walk_ndp(mv, start):
        if otype == OPT_SOURCE_LLADDR:
            out.append(SourceLinkAddrOpt(bytes(mv[i + 2:i + olen])))
        elif otype == OPT_TARGET_LLADDR:
            out.append(TargetLinkAddrOpt(bytes(mv[i + 2:i + olen])))
        elif otype == OPT_PREFIX_INFO:
            _, _, plen, flags, valid, pref, _, prefix = _PI.unpack_from(mv, i)
            out.append(PrefixInfoOpt(plen, bool(flags & PI_ONLINK), bool(flags & PI_AUTONOMOUS),
                                     valid, pref, prefix, flags & 0x3F))
        elif otype == OPT_MTU:
            out.append(MtuOpt(_U32.unpack_from(mv, i + 4)[0]))
        elif otype == OPT_RDNSS and olen >= 24 and olen % 16 == 8:
            # (RFC 8106 §5.3.1: a length below 3 or even makes the option invalid: it is then
            # left uninterpreted, an UnknownNdpOpt, and ignored)
            out.append(RdnssOpt(_U32.unpack_from(mv, i + 4)[0],
                                tuple(bytes(mv[j:j + 16]) for j in range(i + 8, i + olen, 16))))
        else:
            out.append(UnknownNdpOpt(otype, bytes(mv[i + 2:i + olen])))
    return out


def pack_ndp_options(options: Iterable[NdpOption]) -> bytes:
    return b"".join(o.encode() for o in options)


# -- view -----------------------------------------------------------------------------------------


class Icmpv6View:
    """A validating view over an ICMPv6 message (the upper-layer payload of an IPv6 packet).

    ``type code checksum`` are ints read on construction; the getters below read what each type
    carries. NDP messages have their options checked on construction (length 0 is malformed).
    """

    __slots__ = ("buf", "type", "code", "checksum")
    buf: memoryview
    type: int
    code: int
    checksum: int

    def __init__(self, buf: Buffer) -> None:
        mv = buf if type(buf) is memoryview else memoryview(buf)
        n = len(mv)
        if n < 4:
            raise MalformedPacket("icmpv6", "length", f"{n} bytes, the header needs 4")
        t, self.code, self.checksum = _HDR.unpack_from(mv)
        need = _MIN_LEN.get(t, 4)
        if n < need:
            raise MalformedPacket("icmpv6", "length",
                                  f"{TYPE_NAMES.get(t, t)} of {n} bytes, needs {need}")
        if t in ERROR_TYPES:
            if n < 48:
                raise MalformedPacket("icmpv6", "quoted",
                                      f"{n - 8} bytes quoted, need an IPv6 header (40)")
            if mv[8] >> 4 != 6:
                raise MalformedPacket("icmpv6", "quoted", "quoted datagram is not IPv6")
        start = _OPT_START.get(t)
        if start is not None and start < n:
            for _ in _walk_ndp(mv, start):
                pass
        self.type = t
        self.buf = mv

    def _need(self, end: int) -> None:
        if len(self.buf) < end:
            raise MalformedPacket("icmpv6", "length", f"{TYPE_NAMES.get(self.type, self.type)} "
                                  f"of {len(self.buf)} bytes has no field ending at byte {end}")

    def _u8(self, off: int) -> int:
        self._need(off + 1)
        return self.buf[off]

    def _u16(self, off: int) -> int:
        self._need(off + 2)
        v: int = _U16.unpack_from(self.buf, off)[0]
        return v

    def _u32(self, off: int) -> int:
        self._need(off + 4)
        v: int = _U32.unpack_from(self.buf, off)[0]
        return v

    def checksum_ok(self, src: bytes, dst: bytes) -> bool:
        return pseudo_ok(self.buf, src, dst, PROTO_ICMPV6)

    @property
    def rest(self) -> memoryview:
        return self.buf[4:8]

    @property
    def payload(self) -> memoryview:
        """Everything after the first 8 bytes (echo data, quoted packet)."""
        return self.buf[8:]

    # echo
    @property
    def ident(self) -> int:
        return self._u16(4)

    @property
    def seq(self) -> int:
        return self._u16(6)

    @property
    def data(self) -> memoryview:
        return self.buf[8:]

    # errors
    @property
    def mtu(self) -> int:
        """Packet Too Big: the 32-bit MTU."""
        return self._u32(4)

    @property
    def pointer(self) -> int:
        """Parameter problem: offset of the octet in error (32-bit)."""
        return self._u32(4)

    @property
    def quoted(self) -> bytes:
        return bytes(self.buf[8:])

    # NDP
    @property
    def target(self) -> bytes:
        """Neighbor solicitation/advertisement (and redirect): the target address."""
        self._need(24)
        return bytes(self.buf[8:24])

    @property
    def na_flags(self) -> int:
        return self._u8(4)

    @property
    def router(self) -> bool:
        return bool(self._u8(4) & NA_ROUTER)

    @property
    def solicited(self) -> bool:
        return bool(self._u8(4) & NA_SOLICITED)

    @property
    def override(self) -> bool:
        return bool(self._u8(4) & NA_OVERRIDE)

    @property
    def cur_hop_limit(self) -> int:
        return self._u8(4)

    @property
    def managed(self) -> bool:
        return bool(self._u8(5) & RA_MANAGED)

    @property
    def other(self) -> bool:
        return bool(self._u8(5) & RA_OTHER)

    @property
    def router_lifetime(self) -> int:
        return self._u16(6)

    @property
    def reachable_time(self) -> int:
        return self._u32(8)

    @property
    def retrans_timer(self) -> int:
        return self._u32(12)

    def ndp_options(self) -> list[NdpOption]:
        start = _OPT_START.get(self.type)
        if start is None:
            return []
        return parse_ndp_options(self.buf, start)

    def _find_lladdr(self, otype: int) -> bytes | None:
        start = _OPT_START.get(self.type)
        if start is None:
            return None
        mv = self.buf
        for t, i, olen in _walk_ndp(mv, start):
            if t == otype:
                return bytes(mv[i + 2:i + olen])
        return None

    def source_lladdr(self) -> bytes | None:
        """The source link-layer address option's address, if present."""
        return self._find_lladdr(OPT_SOURCE_LLADDR)

    def target_lladdr(self) -> bytes | None:
        return self._find_lladdr(OPT_TARGET_LLADDR)


# -- value objects --------------------------------------------------------------------------------


def _proto_name(nh: int) -> str:
    return {6: "tcp", 17: "udp", 58: "icmp6"}.get(nh, str(nh))


@dataclass(slots=True)
class Icmpv6:
    """Any ICMPv6 message as ``type, code, rest (4 bytes), payload``: echo and errors."""

    type: int
    code: int
    rest: bytes = b"\x00\x00\x00\x00"
    payload: bytes = b""
    checksum: int | None = field(default=None, compare=False)
    checksum_valid: bool | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, buf: Buffer, src: bytes | None = None, dst: bytes | None = None) -> Icmpv6:
        v = Icmpv6View(buf)
        if len(v.buf) < 8:
            raise MalformedPacket("icmpv6", "length", "message shorter than 8 bytes")
        m = cls(v.type, v.code, bytes(v.rest), bytes(v.payload), v.checksum)
        if src is not None and dst is not None:
            m.checksum_valid = v.checksum_ok(src, dst)
        return m

    def build(self, src: bytes, dst: bytes) -> bytearray:
        if len(self.rest) != 4:
            raise ValueError("rest of the ICMPv6 header is 4 bytes")
        return build_icmpv6(src, dst, self.type, self.code, self.rest + self.payload)

    @property
    def ident(self) -> int:
        v: int = _U16.unpack_from(self.rest, 0)[0]
        return v

    @property
    def seq(self) -> int:
        v: int = _U16.unpack_from(self.rest, 2)[0]
        return v

    @property
    def mtu(self) -> int:
        v: int = _U32.unpack_from(self.rest, 0)[0]
        return v

    @property
    def pointer(self) -> int:
        v: int = _U32.unpack_from(self.rest, 0)[0]
        return v

    @property
    def data(self) -> bytes:
        return self.payload

    @property
    def quoted(self) -> bytes:
        return self.payload

    def summary(self) -> str:
        """tcpdump-like: ``ICMP6, echo request, id 1, seq 2, length 64``."""
        t = self.type
        n = 8 + len(self.payload)
        if t in (ECHO_REQUEST, ECHO_REPLY):
            return f"ICMP6, {TYPE_NAMES[t]}, id {self.ident}, seq {self.seq}, length {n}"
        if t == PACKET_TOO_BIG:
            return f"ICMP6, packet too big, mtu {self.mtu}, length {n}"
        if t == DEST_UNREACH:
            what = UNREACH_NAMES.get(self.code, f"code-#{self.code}")
            return f"ICMP6, destination unreachable, {what}{self._quote_text()}, length {n}"
        if t == TIME_EXCEEDED:
            what = TIMXCEED_NAMES.get(self.code, f"time exceeded code {self.code}")
            return f"ICMP6, {what}{self._quote_text()}, length {n}"
        if t == PARAM_PROBLEM:
            what = PARAMPROB_NAMES.get(self.code, f"code-#{self.code} - octet")
            return f"ICMP6, parameter problem, {what} {self.pointer}, length {n}"
        name = TYPE_NAMES.get(t, f"type-#{t}")
        return f"ICMP6, {name}, code {self.code}, length {n}"

    def _quote_text(self) -> str:
        q = self.payload
        if len(q) < 40 or q[0] >> 4 != 6:
            return ""
        dst = ip6_str(q[24:40])
        nh = q[6]
        if self.code == UNREACH_PORT and self.type == DEST_UNREACH and len(q) >= 44:
            return f", {dst} {_proto_name(nh)} port {_U16.unpack_from(q, 42)[0]}"
        return f", {dst}"


def _opts_text(options: list[NdpOption]) -> str:
    if not options:
        return ""
    return ", " + ", ".join(o.summary() for o in options)


def _check_type(v: Icmpv6View, want: int) -> None:
    if v.type != want:
        raise MalformedPacket("icmpv6", "type", f"type {v.type}, expected {want}")


@dataclass(slots=True)
class RouterSolicitation:
    options: list[NdpOption] = field(default_factory=list)
    checksum: int | None = field(default=None, compare=False)
    checksum_valid: bool | None = field(default=None, compare=False)
    type = ROUTER_SOLICIT

    @classmethod
    def parse(cls, buf: Buffer, src: bytes | None = None,
              dst: bytes | None = None) -> RouterSolicitation:
        v = Icmpv6View(buf)
        _check_type(v, ROUTER_SOLICIT)
        m = cls(v.ndp_options(), v.checksum)
        if src is not None and dst is not None:
            m.checksum_valid = v.checksum_ok(src, dst)
        return m

    def build(self, src: bytes, dst: bytes) -> bytearray:
        return build_icmpv6(src, dst, ROUTER_SOLICIT, 0,
                            b"\x00\x00\x00\x00" + pack_ndp_options(self.options))

    def summary(self) -> str:
        n = 8 + len(pack_ndp_options(self.options))
        return f"ICMP6, router solicitation, length {n}{_opts_text(self.options)}"


@dataclass(slots=True)
class RouterAdvertisement:
    cur_hop_limit: int = 64
    managed: bool = False
    other: bool = False
    router_lifetime: int = 1800
    reachable_time: int = 0
    retrans_timer: int = 0
    options: list[NdpOption] = field(default_factory=list)
    other_flags: int = 0  # flag bits other than M and O (H, Prf, ...), kept as read
    checksum: int | None = field(default=None, compare=False)
    checksum_valid: bool | None = field(default=None, compare=False)
    type = ROUTER_ADVERT

    @classmethod
    def parse(cls, buf: Buffer, src: bytes | None = None,
              dst: bytes | None = None) -> RouterAdvertisement:
        v = Icmpv6View(buf)
        _check_type(v, ROUTER_ADVERT)
        _, _, _, hop, flags, life, reach, retrans = struct.unpack_from("!BBHBBHII", v.buf)
        m = cls(hop, bool(flags & RA_MANAGED), bool(flags & RA_OTHER), life, reach, retrans,
                v.ndp_options(), flags & 0x3F, v.checksum)
        if src is not None and dst is not None:
            m.checksum_valid = v.checksum_ok(src, dst)
        return m

    def build(self, src: bytes, dst: bytes) -> bytearray:
        flags = ((RA_MANAGED if self.managed else 0) | (RA_OTHER if self.other else 0)
                 | (self.other_flags & 0x3F))
        body = _RA.pack(self.cur_hop_limit, flags, self.router_lifetime, self.reachable_time,
                        self.retrans_timer)
        return build_icmpv6(src, dst, ROUTER_ADVERT, 0, body + pack_ndp_options(self.options))

    def summary(self) -> str:
        n = 16 + len(pack_ndp_options(self.options))
        fl = ("managed " if self.managed else "") + ("other stateful" if self.other else "")
        return (f"ICMP6, router advertisement, length {n}, hop limit {self.cur_hop_limit}, "
                f"Flags [{fl.strip() or 'none'}], router lifetime {self.router_lifetime}s, "
                f"reachable time {self.reachable_time}ms, retrans timer {self.retrans_timer}ms"
                + _opts_text(self.options))


@dataclass(slots=True)
class NeighborSolicitation:
    target: bytes
    options: list[NdpOption] = field(default_factory=list)
    checksum: int | None = field(default=None, compare=False)
    checksum_valid: bool | None = field(default=None, compare=False)
    type = NEIGHBOR_SOLICIT

    @classmethod
    def parse(cls, buf: Buffer, src: bytes | None = None,
              dst: bytes | None = None) -> NeighborSolicitation:
        v = Icmpv6View(buf)
        _check_type(v, NEIGHBOR_SOLICIT)
        m = cls(v.target, v.ndp_options(), v.checksum)
        if src is not None and dst is not None:
            m.checksum_valid = v.checksum_ok(src, dst)
        return m

    def build(self, src: bytes, dst: bytes) -> bytearray:
        return build_icmpv6(src, dst, NEIGHBOR_SOLICIT, 0,
                            b"\x00\x00\x00\x00" + self.target + pack_ndp_options(self.options))

    def summary(self) -> str:
        n = 24 + len(pack_ndp_options(self.options))
        return (f"ICMP6, neighbor solicitation, who has {ip6_str(self.target)}, length {n}"
                + _opts_text(self.options))


@dataclass(slots=True)
class NeighborAdvertisement:
    target: bytes
    router: bool = False
    solicited: bool = False
    override: bool = False
    options: list[NdpOption] = field(default_factory=list)
    checksum: int | None = field(default=None, compare=False)
    checksum_valid: bool | None = field(default=None, compare=False)
    type = NEIGHBOR_ADVERT

    @classmethod
    def parse(cls, buf: Buffer, src: bytes | None = None,
              dst: bytes | None = None) -> NeighborAdvertisement:
        v = Icmpv6View(buf)
        _check_type(v, NEIGHBOR_ADVERT)
        m = cls(v.target, v.router, v.solicited, v.override, v.ndp_options(), v.checksum)
        if src is not None and dst is not None:
            m.checksum_valid = v.checksum_ok(src, dst)
        return m

    def build(self, src: bytes, dst: bytes) -> bytearray:
        flags = ((NA_ROUTER if self.router else 0) | (NA_SOLICITED if self.solicited else 0)
                 | (NA_OVERRIDE if self.override else 0))
        return build_icmpv6(src, dst, NEIGHBOR_ADVERT, 0, bytes((flags, 0, 0, 0)) + self.target
                            + pack_ndp_options(self.options))

    def summary(self) -> str:
        n = 24 + len(pack_ndp_options(self.options))
        fl = "".join(c for c, on in (("R", self.router), ("S", self.solicited),
                                     ("O", self.override)) if on)
        return (f"ICMP6, neighbor advertisement, tgt is {ip6_str(self.target)}, length {n}, "
                f"Flags [{fl or 'none'}]" + _opts_text(self.options))


Icmpv6Message = (Icmpv6 | RouterSolicitation | RouterAdvertisement | NeighborSolicitation
                 | NeighborAdvertisement)

_NDP_CLASSES: dict[int, type[RouterSolicitation] | type[RouterAdvertisement]
                   | type[NeighborSolicitation] | type[NeighborAdvertisement]] = {
    ROUTER_SOLICIT: RouterSolicitation, ROUTER_ADVERT: RouterAdvertisement,
    NEIGHBOR_SOLICIT: NeighborSolicitation, NEIGHBOR_ADVERT: NeighborAdvertisement,
}


def parse_icmpv6(buf: Buffer, src: bytes | None = None, dst: bytes | None = None) -> Icmpv6Message:
    """Parse into the NDP dataclass for types 133-136, else into :class:`Icmpv6`."""
    if len(buf) >= 1:
        cls = _NDP_CLASSES.get(buf[0])
        if cls is not None:
            return cls.parse(buf, src, dst)
    return Icmpv6.parse(buf, src, dst)


# -- helpers --------------------------------------------------------------------------------------


def echo_request(ident: int, seq: int, data: bytes = b"") -> Icmpv6:
    return Icmpv6(ECHO_REQUEST, 0, _U16X2.pack(ident, seq), bytes(data))


def echo_reply(ident: int, seq: int, data: bytes = b"") -> Icmpv6:
    return Icmpv6(ECHO_REPLY, 0, _U16X2.pack(ident, seq), bytes(data))


def dest_unreachable(code: int, quoted: Buffer) -> Icmpv6:
    """Quoting as much of ``quoted`` as fits in the minimum MTU (RFC 4443 §2.4 (c))."""
    return Icmpv6(DEST_UNREACH, code, b"\x00\x00\x00\x00", bytes(quoted[:MAX_QUOTE]))


def packet_too_big(mtu: int, quoted: Buffer) -> Icmpv6:
    return Icmpv6(PACKET_TOO_BIG, 0, _U32.pack(mtu), bytes(quoted[:MAX_QUOTE]))


def time_exceeded(code: int, quoted: Buffer) -> Icmpv6:
    return Icmpv6(TIME_EXCEEDED, code, b"\x00\x00\x00\x00", bytes(quoted[:MAX_QUOTE]))


def param_problem(code: int, pointer: int, quoted: Buffer) -> Icmpv6:
    return Icmpv6(PARAM_PROBLEM, code, _U32.pack(pointer), bytes(quoted[:MAX_QUOTE]))
