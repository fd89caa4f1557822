"""IGMP (RFC 2236 v2, RFC 3376 v3, RFC 1112 v1) and MLD (RFC 2710 v1, RFC 3810 v2) messages.

Both protocols carry the same things — queries, reports of group records, leaves — so one
parsed form, :class:`GroupMessage`, serves both: :func:`parse_igmp` reads an IGMP message
(the IPv4 payload, protocol 2), :func:`parse_mld` an MLD one (an ICMPv6 message, types 130,
131, 132, 143). The builders return the bytes to send, checksums included (IGMP's over the
message, MLD's over the ICMPv6 pseudo-header too).

Record types (RFC 3376 §4.2.12, RFC 3810 §5.2.12): MODE_IS_INCLUDE 1, MODE_IS_EXCLUDE 2,
CHANGE_TO_INCLUDE 3, CHANGE_TO_EXCLUDE 4, ALLOW_NEW_SOURCES 5, BLOCK_OLD_SOURCES 6.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .checksum import checksum_ok, internet_checksum, pseudo_header
from .errors import MalformedPacket
from .proto import PROTO_ICMPV6

__all__ = ["GroupMessage", "GroupRecord", "build_igmp_leave", "build_igmp_query",
           "build_igmp_report", "build_igmp_v3_report", "build_mld_done", "build_mld_query",
           "build_mld_v1_report", "build_mld_v2_report", "decode_code", "parse_igmp",
           "parse_mld"]

# IGMP types
IGMP_QUERY = 0x11
IGMP_V1_REPORT = 0x12
IGMP_V2_REPORT = 0x16
IGMP_V2_LEAVE = 0x17
IGMP_V3_REPORT = 0x22
# MLD (ICMPv6) types
MLD_QUERY = 130
MLD_V1_REPORT = 131
MLD_V1_DONE = 132
MLD_V2_REPORT = 143

MODE_IS_INCLUDE, MODE_IS_EXCLUDE = 1, 2
CHANGE_TO_INCLUDE, CHANGE_TO_EXCLUDE = 3, 4

# the multicast addresses the protocols talk to
ALL_SYSTEMS = bytes([224, 0, 0, 1])
ALL_ROUTERS4 = bytes([224, 0, 0, 2])
IGMPV3_ROUTERS = bytes([224, 0, 0, 22])
ALL_NODES6 = bytes.fromhex("ff020000000000000000000000000001")
ALL_ROUTERS6 = bytes.fromhex("ff020000000000000000000000000002")
MLDV2_ROUTERS = bytes.fromhex("ff020000000000000000000000000016")

# IPv4 Router Alert (RFC 2113), which IGMP messages carry (RFC 2236 §2, RFC 3376 §4)
ROUTER_ALERT4 = b"\x94\x04\x00\x00"
# IPv6 Hop-by-Hop header with Router Alert value 0 = MLD (RFC 2711, RFC 3810 §5), then PadN
HBH_ROUTER_ALERT6 = bytes([PROTO_ICMPV6, 0, 5, 2, 0, 0, 1, 0])

_V3_QUERY = struct.Struct("!BBH4sBBH")
_MLD_HDR = struct.Struct("!BBHHH16s")


@dataclass(slots=True)
class GroupRecord:
    type: int
    group: bytes
    sources: list[bytes] = field(default_factory=list)


@dataclass(slots=True)
class GroupMessage:
    """A parsed IGMP or MLD message.

    ``kind``: ``query`` | ``report`` | ``leave``; ``version`` 1, 2 or 3 (IGMP; MLD's v1 is 2
    here and v2 is 3, so one number says "the version with source lists": 3);
    ``max_resp`` the maximum response delay in seconds; ``group`` the query's or v1/v2
    report's group (zero bytes: a general query); ``records`` a v3/MLDv2 report's records;
    ``sources`` a v3 query's source list, ``qrv``/``qqic`` its robustness and interval.
    """

    kind: str
    version: int
    group: bytes
    max_resp: float = 0.0
    records: list[GroupRecord] = field(default_factory=list)
    sources: list[bytes] = field(default_factory=list)
    qrv: int = 0
    qqic: float = 0.0


def decode_code(code: int, mant_bits: int = 4, exp_bits: int = 3) -> int:
    """RFC 3376 §4.1.1 / RFC 3810 §5.1.3 floating point: below 2**(mant+exp) literal, else
    ``(mant | 1 << mant_bits) << (exp + 3)``."""
    if code < 1 << (mant_bits + exp_bits):
        return code
    mant = code & ((1 << mant_bits) - 1)
    exp = (code >> mant_bits) & ((1 << exp_bits) - 1)
    return (mant | 1 << mant_bits) << (exp + 3)


def _encode_code(value: int, mant_bits: int = 4, exp_bits: int = 3) -> int:
    """The inverse of :func:`decode_code`, rounding down."""
    if value < 1 << (mant_bits + exp_bits):
        return value
    for exp in range((1 << exp_bits) - 1, -1, -1):
        mant = (value >> (exp + 3)) - (1 << mant_bits)
        if 0 <= mant < 1 << mant_bits:
            return 1 << (mant_bits + exp_bits) | exp << mant_bits | mant
    return (1 << (mant_bits + exp_bits + 1)) - 1


def _records(buf: bytes | memoryview, off: int, n: int, alen: int) -> list[GroupRecord]:
    out = []
    for _ in range(n):
        if off + 4 + alen > len(buf):
            raise MalformedPacket("igmp" if alen == 4 else "mld", "records",
                                  "group record runs past the end")
        rtype, aux, nsrc = buf[off], buf[off + 1], (buf[off + 2] << 8) | buf[off + 3]
        group = bytes(buf[off + 4:off + 4 + alen])
        start = off + 4 + alen
        end = start + nsrc * alen + aux * 4
        if end > len(buf):
            raise MalformedPacket("igmp" if alen == 4 else "mld", "records",
                                  "source list runs past the end")
        sources = [bytes(buf[start + i * alen:start + (i + 1) * alen]) for i in range(nsrc)]
        out.append(GroupRecord(rtype, group, sources))
        off = end
    return out


def parse_igmp(buf: bytes | memoryview) -> GroupMessage:
    """An IGMP message (raises :class:`MalformedPacket` for short, bad-checksum or unknown)."""
    n = len(buf)
    if n < 8:
        raise MalformedPacket("igmp", "length", f"{n} bytes, IGMP needs 8")
    if not checksum_ok(buf):
        raise MalformedPacket("igmp", "checksum", "bad IGMP checksum")
    t = buf[0]
    group = bytes(buf[4:8])
    if t == IGMP_QUERY:
        if n == 8:
            # v1 (code 0: RFC 2236 §4 says treat as 10 s) or v2, tenths of a second
            return GroupMessage("query", 1 if buf[1] == 0 else 2, group,
                                (buf[1] or 100) / 10)
        if n < 12:
            raise MalformedPacket("igmp", "length", f"a {n}-byte query (v2: 8, v3: 12+)")
        _, code, _, _, sqrv, qqic, nsrc = _V3_QUERY.unpack_from(buf)
        if 12 + 4 * nsrc > n:
            raise MalformedPacket("igmp", "sources", "source list runs past the end")
        sources = [bytes(buf[12 + 4 * i:16 + 4 * i]) for i in range(nsrc)]
        return GroupMessage("query", 3, group, decode_code(code) / 10, sources=sources,
                            qrv=sqrv & 7, qqic=decode_code(qqic))
    if t in (IGMP_V1_REPORT, IGMP_V2_REPORT):
        return GroupMessage("report", 1 if t == IGMP_V1_REPORT else 2, group)
    if t == IGMP_V2_LEAVE:
        return GroupMessage("leave", 2, group)
    if t == IGMP_V3_REPORT:
        nrec = (buf[6] << 8) | buf[7]
        return GroupMessage("report", 3, b"", records=_records(buf, 8, nrec, 4))
    raise MalformedPacket("igmp", "type", f"unknown IGMP type {t:#x}")


def _igmp(body: bytearray) -> bytes:
    body[2] = body[3] = 0
    c = internet_checksum(body)
    body[2], body[3] = c >> 8, c & 0xFF
    return bytes(body)


def build_igmp_query(group: bytes = bytes(4), max_resp: float = 10.0, version: int = 3, *,
                     qrv: int = 2, qqic: int = 125) -> bytes:
    code = min(255, int(max_resp * 10)) if version == 2 else _encode_code(int(max_resp * 10))
    if version == 2:
        return _igmp(bytearray([IGMP_QUERY, code, 0, 0]) + group)
    return _igmp(bytearray(_V3_QUERY.pack(IGMP_QUERY, code, 0, group, qrv & 7,
                                          _encode_code(qqic), 0)))


def build_igmp_report(group: bytes, version: int = 2) -> bytes:
    """A v2 Membership Report (``version`` 1: RFC 1112's v1 report, same layout)."""
    return _igmp(bytearray([IGMP_V1_REPORT if version == 1 else IGMP_V2_REPORT, 0, 0, 0])
                 + group)


def build_igmp_leave(group: bytes) -> bytes:
    return _igmp(bytearray([IGMP_V2_LEAVE, 0, 0, 0]) + group)


def _record_bytes(records: list[GroupRecord]) -> bytes:
    return b"".join(bytes([r.type, 0]) + len(r.sources).to_bytes(2, "big") + r.group
                    + b"".join(r.sources) for r in records)


def build_igmp_v3_report(records: list[GroupRecord]) -> bytes:
    return _igmp(bytearray([IGMP_V3_REPORT, 0, 0, 0, 0, 0]) + len(records).to_bytes(2, "big")
                 + _record_bytes(records))


# -- MLD --------------------------------------------------------------------------------------


def parse_mld(buf: bytes | memoryview) -> GroupMessage:
    """An MLD message, the ICMPv6 message from its type byte (checksum checked by ICMPv6)."""
    n = len(buf)
    t = buf[0] if n else 0
    if t == MLD_V2_REPORT:
        if n < 8:
            raise MalformedPacket("mld", "length", f"{n} bytes, an MLDv2 report needs 8")
        nrec = (buf[6] << 8) | buf[7]
        return GroupMessage("report", 3, b"", records=_records(buf, 8, nrec, 16))
    if n < 24:
        raise MalformedPacket("mld", "length", f"{n} bytes, MLD needs 24")
    _, _, _, code, _, group = _MLD_HDR.unpack_from(buf)
    if t == MLD_QUERY:
        if n == 24:
            return GroupMessage("query", 2, group, code / 1000)
        if n < 28:
            raise MalformedPacket("mld", "length", f"a {n}-byte query (v1: 24, v2: 28+)")
        sqrv, qqic, nsrc = buf[24], buf[25], (buf[26] << 8) | buf[27]
        if 28 + 16 * nsrc > n:
            raise MalformedPacket("mld", "sources", "source list runs past the end")
        sources = [bytes(buf[28 + 16 * i:44 + 16 * i]) for i in range(nsrc)]
        return GroupMessage("query", 3, group, decode_code(code, 12, 3) / 1000,
                            sources=sources, qrv=sqrv & 7, qqic=decode_code(qqic))
    if t == MLD_V1_REPORT:
        return GroupMessage("report", 2, group)
    if t == MLD_V1_DONE:
        return GroupMessage("leave", 2, group)
    raise MalformedPacket("mld", "type", f"not an MLD type: {t}")


def _icmp6(src: bytes, dst: bytes, body: bytearray) -> bytes:
    body[2] = body[3] = 0
    c = internet_checksum(body, pseudo_header(src, dst, PROTO_ICMPV6, len(body)))
    body[2], body[3] = c >> 8, c & 0xFF
    return bytes(body)


def build_mld_query(src: bytes, dst: bytes, group: bytes = bytes(16), max_resp: float = 10.0,
                    version: int = 3, *, qrv: int = 2, qqic: int = 125) -> bytes:
    ms = int(max_resp * 1000)
    if version == 2:
        return _icmp6(src, dst, bytearray(_MLD_HDR.pack(MLD_QUERY, 0, 0, min(ms, 0xFFFF), 0,
                                                        group)))
    body = bytearray(_MLD_HDR.pack(MLD_QUERY, 0, 0, _encode_code(ms, 12, 3), 0, group))
    body += bytes([qrv & 7, _encode_code(qqic), 0, 0])
    return _icmp6(src, dst, body)


def build_mld_v1_report(src: bytes, dst: bytes, group: bytes) -> bytes:
    return _icmp6(src, dst, bytearray(_MLD_HDR.pack(MLD_V1_REPORT, 0, 0, 0, 0, group)))


def build_mld_done(src: bytes, dst: bytes, group: bytes) -> bytes:
    return _icmp6(src, dst, bytearray(_MLD_HDR.pack(MLD_V1_DONE, 0, 0, 0, 0, group)))


def build_mld_v2_report(src: bytes, dst: bytes, records: list[GroupRecord]) -> bytes:
    return _icmp6(src, dst, bytearray([MLD_V2_REPORT, 0, 0, 0, 0, 0])
                  + len(records).to_bytes(2, "big") + _record_bytes(records))
