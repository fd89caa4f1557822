"""ICMP for IPv4 (RFC 792), with the next-hop MTU of "fragmentation needed" (RFC 1191 §4).

Every message is ``type, code, checksum`` followed by a 4-byte "rest of header" (``rest``) and a
body (``payload``): the echo data, or for error messages the quoted original datagram (its IP
header and at least the first 8 bytes of its payload). The checksum covers the whole ICMP message.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .checksum import le_sum, ok_le, store_le
from .errors import MalformedPacket
from .proto import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP

__all__ = [
    "IcmpView", "Icmpv4View", "Icmpv4", "build_icmpv4", "echo_request", "echo_reply",
    "dest_unreachable", "time_exceeded", "param_problem", "type_name", "code_name",
    "ECHO_REPLY", "DEST_UNREACH", "SOURCE_QUENCH", "REDIRECT", "ECHO_REQUEST", "TIME_EXCEEDED",
    "PARAM_PROBLEM", "TIMESTAMP", "TIMESTAMP_REPLY", "ERROR_TYPES", "QUERY_TYPES", "MAX_QUOTE",
]

ECHO_REPLY = 0
DEST_UNREACH = 3
SOURCE_QUENCH = 4
REDIRECT = 5
ECHO_REQUEST = 8
ROUTER_ADVERT = 9
ROUTER_SOLICIT = 10
TIME_EXCEEDED = 11
PARAM_PROBLEM = 12
TIMESTAMP = 13
TIMESTAMP_REPLY = 14
INFO_REQUEST = 15  # obsolete (RFC 6918), still a query
INFO_REPLY = 16
MASK_REQUEST = 17  # RFC 950, obsolete too
MASK_REPLY = 18

# Destination unreachable codes (RFC 792, RFC 1122 §3.2.2.1, RFC 1812 §5.2.7.1).
UNREACH_NET = 0
UNREACH_HOST = 1
UNREACH_PROTOCOL = 2
UNREACH_PORT = 3
UNREACH_NEEDFRAG = 4
UNREACH_SRCFAIL = 5
UNREACH_NET_UNKNOWN = 6
UNREACH_HOST_UNKNOWN = 7
UNREACH_ISOLATED = 8
UNREACH_NET_PROHIB = 9
UNREACH_HOST_PROHIB = 10
UNREACH_TOSNET = 11
UNREACH_TOSHOST = 12
UNREACH_FILTER_PROHIB = 13
UNREACH_HOST_PRECEDENCE = 14
UNREACH_PRECEDENCE_CUTOFF = 15

# Time exceeded codes.
TIMXCEED_INTRANS = 0
TIMXCEED_REASS = 1

# Messages that quote the offending datagram.
ERROR_TYPES = frozenset((DEST_UNREACH, SOURCE_QUENCH, REDIRECT, TIME_EXCEEDED, PARAM_PROBLEM))
# Queries and replies: no error is ever sent about one of these (RFC 1812 §4.3.2.7).
QUERY_TYPES = frozenset((ECHO_REPLY, ECHO_REQUEST, ROUTER_ADVERT, ROUTER_SOLICIT, TIMESTAMP,
                         TIMESTAMP_REPLY, INFO_REQUEST, INFO_REPLY, MASK_REQUEST, MASK_REPLY))

# An error message should not exceed 576 bytes of IP datagram (RFC 1812 §4.3.2.3):
# 576 - 20 (IP header) - 8 (ICMP header) bytes of quote.
MAX_QUOTE = 548

TYPE_NAMES = {
    ECHO_REPLY: "echo reply", DEST_UNREACH: "destination unreachable",
    SOURCE_QUENCH: "source quench", REDIRECT: "redirect", ECHO_REQUEST: "echo request",
    ROUTER_ADVERT: "router advertisement", ROUTER_SOLICIT: "router solicitation",
    TIME_EXCEEDED: "time exceeded", PARAM_PROBLEM: "parameter problem",
    TIMESTAMP: "time stamp request", TIMESTAMP_REPLY: "time stamp reply",
}
UNREACH_NAMES = {
    UNREACH_NET: "net unreachable", UNREACH_HOST: "host unreachable",
    UNREACH_PROTOCOL: "protocol unreachable", UNREACH_PORT: "port unreachable",
    UNREACH_NEEDFRAG: "need to frag", UNREACH_SRCFAIL: "source route failed",
    UNREACH_NET_UNKNOWN: "net unknown", UNREACH_HOST_UNKNOWN: "host unknown",
    UNREACH_ISOLATED: "source host isolated", UNREACH_NET_PROHIB: "net prohibited",
    UNREACH_HOST_PROHIB: "host prohibited", UNREACH_TOSNET: "net unreachable for tos",
    UNREACH_TOSHOST: "host unreachable for tos", UNREACH_FILTER_PROHIB: "prohibited by filter",
    UNREACH_HOST_PRECEDENCE: "host precedence violation",
    UNREACH_PRECEDENCE_CUTOFF: "precedence cutoff",
}
TIMXCEED_NAMES = {TIMXCEED_INTRANS: "time exceeded in-transit",
                  TIMXCEED_REASS: "ip reassembly time exceeded"}

_IP_PROTO_NAMES = {PROTO_ICMP: "icmp", PROTO_TCP: "tcp", PROTO_UDP: "udp", PROTO_ICMPV6: "icmp6"}

_HDR = struct.Struct("!BBH")
_ECHO = struct.Struct("!BBHHH")
_U16 = struct.Struct("!H")

Buffer = bytes | bytearray | memoryview


def type_name(icmp_type: int) -> str:
    return TYPE_NAMES.get(icmp_type, f"type-#{icmp_type}")


def code_name(icmp_type: int, code: int) -> str:
    if icmp_type == DEST_UNREACH:
        return UNREACH_NAMES.get(code, f"unreachable code {code}")
    if icmp_type == TIME_EXCEEDED:
        return TIMXCEED_NAMES.get(code, f"time exceeded code {code}")
    return str(code)


def _check_quote(q: memoryview) -> None:
    """The quoted datagram must hold an IPv4 header and 8 bytes of its payload (RFC 792)."""
    if len(q) < 28:
        raise MalformedPacket("icmp", "quoted",
                              f"{len(q)} bytes quoted, need an IP header and 8 more bytes")
    ver_ihl = q[0]
    if ver_ihl >> 4 != 4 or (ver_ihl & 15) < 5:
        raise MalformedPacket("icmp", "quoted", f"quoted datagram is not IPv4 (0x{ver_ihl:02x})")
    ihl = (ver_ihl & 15) * 4
    if len(q) < ihl + 8:
        raise MalformedPacket("icmp", "quoted",
                              f"{len(q)} bytes quoted, IP header of {ihl} needs {ihl + 8}")


class IcmpView:
    """A validating view over an ICMP message (the IPv4 payload).

    ``type code checksum`` are ints; ``rest`` the 4 bytes after the checksum; ``payload`` the body
    as a memoryview. Error messages (unreachable, time exceeded, ...) are checked to quote an IPv4
    header plus 8 bytes, available as ``quoted``.
    """

    __slots__ = ("buf", "type", "code", "checksum")
    buf: memoryview
    type: int
    code: int
    checksum: int

    def __init__(self, buf: Buffer) -> None:
        mv = buf if type(buf) is memoryview else memoryview(buf)
        if len(mv) < 8:
            raise MalformedPacket("icmp", "length", f"{len(mv)} bytes, the header needs 8")
        self.type, self.code, self.checksum = _HDR.unpack_from(mv)
        if self.type in ERROR_TYPES:
            _check_quote(mv[8:])
        self.buf = mv

    @property
    def rest(self) -> memoryview:
        return self.buf[4:8]

    @property
    def payload(self) -> memoryview:
        return self.buf[8:]

    # echo request/reply (and timestamp, information) fields
    @property
    def ident(self) -> int:
        v: int = _U16.unpack_from(self.buf, 4)[0]
        return v

    @property
    def seq(self) -> int:
        v: int = _U16.unpack_from(self.buf, 6)[0]
        return v

    @property
    def data(self) -> memoryview:
        """Echo data (same as ``payload``)."""
        return self.buf[8:]

    # errors
    @property
    def next_hop_mtu(self) -> int:
        """Fragmentation needed (type 3 code 4): the low 16 bits of the second word (RFC 1191)."""
        v: int = _U16.unpack_from(self.buf, 6)[0]
        return v

    @property
    def pointer(self) -> int:
        """Parameter problem: offset of the octet in error."""
        return self.buf[4]

    @property
    def gateway(self) -> bytes:
        """Redirect: the gateway address."""
        return bytes(self.buf[4:8])

    @property
    def quoted(self) -> bytes:
        """The original datagram quoted by an error message."""
        return bytes(self.buf[8:])

    def checksum_ok(self) -> bool:
        return ok_le(le_sum(self.buf))


Icmpv4View = IcmpView


def build_icmpv4(icmp_type: int, code: int, rest: Buffer = b"\x00\x00\x00\x00",
                 payload: Buffer = b"") -> bytearray:
    """An ICMP message with its checksum. ``rest`` is the 4-byte second word."""
    if len(rest) != 4:
        raise ValueError(f"the rest of the ICMP header is 4 bytes, not {len(rest)}")
    buf = bytearray(_HDR.pack(icmp_type, code, 0))
    buf += rest
    if payload:
        buf += payload
    store_le(buf, 2, le_sum(buf))
    return buf


@dataclass(slots=True)
class Icmpv4:
    type: int
    code: int
    rest: bytes = b"\x00\x00\x00\x00"
    payload: bytes = b""
    # As read by parse(); build() always computes the checksum.
    checksum: int | None = field(default=None, compare=False)
    checksum_valid: bool | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, buf: Buffer) -> Icmpv4:
        v = IcmpView(buf)
        return cls(v.type, v.code, bytes(v.rest), bytes(v.payload), v.checksum, v.checksum_ok())

    def build(self) -> bytearray:
        return build_icmpv4(self.type, self.code, self.rest, self.payload)

    # field accessors, as on the view
    @property
    def ident(self) -> int:
        v: int = _U16.unpack_from(self.rest, 0)[0]
        return v

    @property
    def seq(self) -> int:
        v: int = _U16.unpack_from(self.rest, 2)[0]
        return v

    @property
    def next_hop_mtu(self) -> int:
        v: int = _U16.unpack_from(self.rest, 2)[0]
        return v

    @property
    def data(self) -> bytes:
        return self.payload

    @property
    def quoted(self) -> bytes:
        return self.payload

    def summary(self) -> str:
        """tcpdump-like: ``ICMP echo request, id 1, seq 2, length 64``."""
        t = self.type
        n = 8 + len(self.payload)
        if t in (ECHO_REQUEST, ECHO_REPLY):
            return f"ICMP {type_name(t)}, id {self.ident}, seq {self.seq}, length {n}"
        if t == DEST_UNREACH:
            return f"ICMP {self._unreach_text()}, length {n}"
        if t == TIME_EXCEEDED:
            return f"ICMP {code_name(t, self.code)}, length {n}"
        if t == PARAM_PROBLEM:
            return f"ICMP parameter problem - octet {self.rest[0]}, length {n}"
        return f"ICMP {type_name(t)}, code {self.code}, length {n}"

    def _unreach_text(self) -> str:
        code = self.code
        q = self.payload
        if len(q) < 20 or q[0] >> 4 != 4:
            return UNREACH_NAMES.get(code, f"unreachable code {code}")
        from .addr import ip4_str

        dst = ip4_str(q[16:20])
        proto = q[9]
        ihl = (q[0] & 15) * 4
        if code == UNREACH_NET:
            return f"net {dst} unreachable"
        if code == UNREACH_HOST:
            return f"host {dst} unreachable"
        if code == UNREACH_PROTOCOL:
            return f"{dst} protocol {proto} unreachable"
        if code == UNREACH_PORT and len(q) >= ihl + 4:
            port = _U16.unpack_from(q, ihl + 2)[0]
            return f"{dst} {_IP_PROTO_NAMES.get(proto, str(proto))} port {port} unreachable"
        if code == UNREACH_NEEDFRAG:
            return f"{dst} unreachable - need to frag (mtu {self.next_hop_mtu})"
        return f"{dst} {UNREACH_NAMES.get(code, f'unreachable code {code}')}"


def echo_request(ident: int, seq: int, data: bytes = b"") -> Icmpv4:
    return Icmpv4(ECHO_REQUEST, 0, _ECHO.pack(0, 0, 0, ident, seq)[4:], bytes(data))


def echo_reply(ident: int, seq: int, data: bytes = b"") -> Icmpv4:
    return Icmpv4(ECHO_REPLY, 0, _ECHO.pack(0, 0, 0, ident, seq)[4:], bytes(data))


def dest_unreachable(code: int, quoted: Buffer, next_hop_mtu: int = 0) -> Icmpv4:
    """Destination unreachable quoting ``quoted`` (cut to :data:`MAX_QUOTE` bytes); code 4
    carries ``next_hop_mtu`` in the low 16 bits of the second word (RFC 1191 §4)."""
    rest = b"\x00\x00" + _U16.pack(next_hop_mtu if code == UNREACH_NEEDFRAG else 0)
    return Icmpv4(DEST_UNREACH, code, rest, bytes(quoted[:MAX_QUOTE]))


def time_exceeded(code: int, quoted: Buffer) -> Icmpv4:
    return Icmpv4(TIME_EXCEEDED, code, b"\x00\x00\x00\x00", bytes(quoted[:MAX_QUOTE]))


def param_problem(pointer: int, quoted: Buffer, code: int = 0) -> Icmpv4:
    return Icmpv4(PARAM_PROBLEM, code, bytes((pointer, 0, 0, 0)), bytes(quoted[:MAX_QUOTE]))
