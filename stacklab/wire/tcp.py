"""TCP segments (RFC 9293 §3.1) and their options (MSS, window scale, SACK, timestamps, TCP Fast
Open, AccECN).

Two levels, as everywhere in ``stacklab.wire``:

* :class:`TcpView` — the per-segment view the TCP engine reads. The fixed header is read with one
  precompiled ``struct`` call; options are scanned lazily, once, by the first of the getters
  :meth:`TcpView.mss`, :meth:`~TcpView.wscale`, :meth:`~TcpView.sack_permitted`,
  :meth:`~TcpView.sack_blocks`, :meth:`~TcpView.timestamps` (or listed with
  :meth:`~TcpView.options`). A bad option raises :class:`MalformedPacket` from that getter.
  :meth:`~TcpView.fastopen` reads the TCP Fast Open option (RFC 7413) with a walk of its own: only
  SYNs carry it; :meth:`~TcpView.accecn` the AccECN option (RFC 9768 §3.2.3), likewise: only an
  AccECN connection asks.
* :class:`TcpSegment` — the value object for tests, printing and building.

``build_tcp`` is the engine's segment builder; ``encode_options`` prebuilds option bytes in the
layout Linux uses (so captures look familiar: ``mss,sackOK,TS,nop,wscale`` on a SYN).

Checksums: the stored checksum is ``~sum`` (a folded sum of 0xFFFF gives 0x0000, as Linux and
scapy do); verification is explicit with :meth:`TcpView.checksum_ok` or ``TcpSegment.parse(buf,
src_ip, dst_ip).checksum_valid``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from .addr import ip_str
from .checksum import pseudo_header, pseudo_ok, pseudo_store
from .errors import MalformedPacket
from .proto import PROTO_TCP

__all__ = [
    "FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "NS", "AE",
    "TcpView", "TcpSegment", "TcpOption", "MssOpt", "WscaleOpt", "SackPermOpt", "SackOpt",
    "TimestampOpt", "NopOpt", "EolOpt", "FastOpenOpt", "AccEcnOpt", "UnknownOpt", "build_tcp",
    "encode_options", "EngineOptions",
    "pack_options", "parse_options", "flags_str", "HEADER_LEN", "FLAG_MASK",
]

HEADER_LEN = 20
MAX_OPTIONS_LEN = 40

# Control bits (RFC 9293 §3.1, RFC 3168 ECE/CWR). Bit 8 was NS (RFC 3540, historic) and is now
# AE in AccECN (RFC 9768); both names are kept.
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80
NS = 0x100
AE = NS
FLAG_MASK = 0x1FF  # the nine control bits of the offset/flags word

# Option kinds (IANA "TCP Option Kind Numbers").
OPT_EOL = 0
OPT_NOP = 1
OPT_MSS = 2
OPT_WSCALE = 3
OPT_SACK_PERM = 4
OPT_SACK = 5
OPT_TIMESTAMP = 8
OPT_FASTOPEN = 34  # RFC 7413 §4.1.1
OPT_ACCECN0 = 172  # RFC 9768 §3.2.3: AccECN option, field order 0 (EE0B, ECEB, EE1B)
OPT_ACCECN1 = 174  # order 1 (EE1B, ECEB, EE0B), the one Linux sends
OPT_EXP = 254  # RFC 6994 experimental, with the 16-bit ExID below: TFO before kind 34 (Linux FOEXP)
FASTOPEN_MAGIC = 0xF989

_HDR = struct.Struct("!HHIIHHHH")
_HDR_RX = struct.Struct("!HHIIHH")  # checksum and urgent pointer are read on demand
_HDR_TS = struct.Struct("!HHIIHHHH4sII")  # the header and nop,nop,TS (data offset 8 words)
_NOPNOP_TS_BYTES = b"\x01\x01\x08\x0a"  # packed as bytes: ~50 ns faster than as an "I" word
_U16 = struct.Struct("!H")
_U32X2 = struct.Struct("!II")
_MSS = struct.Struct("!BBH")
_WS = struct.Struct("!BBB")
_TS = struct.Struct("!BBII")
# The common layouts, read with one unpack into ints (no slice, no bytes object; wire/frame.py reads
# them with the frame's headers and fills in TcpView._opts, the scan's result, with these):
# nop,nop,TS (12 bytes): the word 01 01 08 0a, tsval, tsecr
_NOPNOP_TS = struct.Struct("!III")
_NOPNOP_TS_WORD = 0x0101080A
# Linux's SYN / SYN-ACK options: mss(4) sackOK(2) TS(10) nop wscale(3) = 20 bytes:
# 02 04 mss | 04 02 08 0a | tsval | tsecr | 01 03 03 shift
_LINUX_SYN = struct.Struct("!HHIIII")
# What the engine reads of the options: (mss, wscale, sack_permitted, sack_blocks, timestamps).
_Options = tuple[int | None, int | None, bool, tuple[tuple[int, int], ...], tuple[int, int] | None]
_NO_OPTIONS: _Options = (None, None, False, (), None)
EngineOptions = _Options  # the name outside wire/ (TcpView.engine_options, SegmentLike)

# tcpdump's order and letters (print-tcp.c): F S R P . U E W, plus 'e' for AE.
_FLAG_CHARS = ((FIN, "F"), (SYN, "S"), (RST, "R"), (PSH, "P"), (ACK, "."), (URG, "U"),
               (ECE, "E"), (CWR, "W"), (AE, "e"))

Buffer = bytes | bytearray | memoryview


def flags_str(flags: int) -> str:
    """tcpdump's flag letters, e.g. ``S.`` for SYN+ACK, ``none`` for no flag."""
    s = "".join(ch for bit, ch in _FLAG_CHARS if flags & bit)
    return s or "none"


# -- options --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MssOpt:
    mss: int
    kind = OPT_MSS

    def encode(self) -> bytes:
        return _MSS.pack(OPT_MSS, 4, self.mss)

    def summary(self) -> str:
        return f"mss {self.mss}"


@dataclass(frozen=True, slots=True)
class WscaleOpt:
    shift: int
    kind = OPT_WSCALE

    def encode(self) -> bytes:
        return _WS.pack(OPT_WSCALE, 3, self.shift)

    def summary(self) -> str:
        return f"wscale {self.shift}"


@dataclass(frozen=True, slots=True)
class SackPermOpt:
    kind = OPT_SACK_PERM

    def encode(self) -> bytes:
        return b"\x04\x02"

    def summary(self) -> str:
        return "sackOK"


@dataclass(frozen=True, slots=True)
class SackOpt:
    """SACK blocks (RFC 2018): 1 to 4 ``(left, right)`` edges, right exclusive."""

    blocks: tuple[tuple[int, int], ...]
    kind = OPT_SACK

    def encode(self) -> bytes:
        n = len(self.blocks)
        if not 1 <= n <= 4:
            raise ValueError(f"a SACK option carries 1 to 4 blocks, not {n}")
        out = bytearray((OPT_SACK, 2 + 8 * n))
        for left, right in self.blocks:
            out += _U32X2.pack(left, right)
        return bytes(out)

    def summary(self) -> str:
        return f"sack {len(self.blocks)} " + "".join(f"{{{a}:{b}}}" for a, b in self.blocks)


@dataclass(frozen=True, slots=True)
class TimestampOpt:
    tsval: int
    tsecr: int
    kind = OPT_TIMESTAMP

    def encode(self) -> bytes:
        return _TS.pack(OPT_TIMESTAMP, 10, self.tsval, self.tsecr)

    def summary(self) -> str:
        return f"TS val {self.tsval} ecr {self.tsecr}"


@dataclass(frozen=True, slots=True)
class NopOpt:
    kind = OPT_NOP

    def encode(self) -> bytes:
        return b"\x01"

    def summary(self) -> str:
        return "nop"


@dataclass(frozen=True, slots=True)
class EolOpt:
    """End of option list; what follows it in the header is padding (not kept)."""

    kind = OPT_EOL

    def encode(self) -> bytes:
        return b"\x00"

    def summary(self) -> str:
        return "eol"


@dataclass(frozen=True, slots=True)
class FastOpenOpt:
    """TCP Fast Open (RFC 7413 §4.1.1): ``cookie`` (empty: a cookie request), as kind 34, or with
    ``exp`` as the experimental kind 254 with ExID 0xF989 that Linux still understands."""

    cookie: bytes = b""
    exp: bool = False

    @property
    def kind(self) -> int:
        return OPT_EXP if self.exp else OPT_FASTOPEN

    def encode(self) -> bytes:
        if self.exp:
            return bytes((OPT_EXP, 4 + len(self.cookie))) + _U16.pack(FASTOPEN_MAGIC) + self.cookie
        return bytes((OPT_FASTOPEN, 2 + len(self.cookie))) + self.cookie

    def summary(self) -> str:
        name = "FOEXP" if self.exp else "FO"
        return name + (f" {self.cookie.hex()}" if self.cookie else "")


@dataclass(frozen=True, slots=True)
class AccEcnOpt:
    """The AccECN option (RFC 9768 §3.2.3): 0 to 3 24-bit byte counters, ``fields`` in the
    order of its kind: 172 (``order`` 0) EE0B, ECEB, EE1B; 174 (``order`` 1) EE1B, ECEB, EE0B.
    :meth:`counters` names them."""

    order: int
    fields: tuple[int, ...] = ()

    @property
    def kind(self) -> int:
        return OPT_ACCECN1 if self.order else OPT_ACCECN0

    def encode(self) -> bytes:
        if len(self.fields) > 3:
            raise ValueError("an AccECN option carries at most 3 counters")
        return bytes((self.kind, 2 + 3 * len(self.fields))) + b"".join(
            (f & 0xFFFFFF).to_bytes(3, "big") for f in self.fields)

    def counters(self) -> dict[str, int]:
        """The counters present, by name: ``e0b``, ``ceb``, ``e1b``."""
        names = ("e1b", "ceb", "e0b") if self.order else ("e0b", "ceb", "e1b")
        return dict(zip(names, self.fields, strict=False))

    def summary(self) -> str:
        return f"accecn{self.order}" + "".join(f" {k} {v}" for k, v in self.counters().items())


def _accecn_at(mv: Buffer, kind: int, i: int, length: int) -> AccEcnOpt | None:
    """The AccECN option at ``mv[i]`` if it is one of whole 24-bit fields; None otherwise (a
    malformed one is not interpreted, as Linux ignores it: kept as :class:`UnknownOpt`)."""
    if kind in (OPT_ACCECN0, OPT_ACCECN1) and (length - 2) % 3 == 0 and length <= 11:
        return AccEcnOpt(1 if kind == OPT_ACCECN1 else 0, tuple(
            int.from_bytes(mv[j:j + 3], "big") for j in range(i + 2, i + length, 3)))
    return None


@dataclass(frozen=True, slots=True)
class UnknownOpt:
    """An option we do not interpret, kept as ``(kind, data)`` (data without kind and length)."""

    kind: int
    data: bytes = b""

    def encode(self) -> bytes:
        if len(self.data) > MAX_OPTIONS_LEN - 2:
            raise ValueError("option data too long")
        return bytes((self.kind, 2 + len(self.data))) + self.data

    def summary(self) -> str:
        return f"unknown-{self.kind}" + (f" 0x{self.data.hex()}" if self.data else "")


TcpOption = (MssOpt | WscaleOpt | SackPermOpt | SackOpt | TimestampOpt | NopOpt | EolOpt
             | FastOpenOpt | AccEcnOpt | UnknownOpt)

# Required total length of each known kind with a fixed length.
_FIXED_LEN = {OPT_MSS: 4, OPT_WSCALE: 3, OPT_SACK_PERM: 2, OPT_TIMESTAMP: 10}
_NAMES = {OPT_MSS: "mss", OPT_WSCALE: "wscale", OPT_SACK_PERM: "sackOK", OPT_SACK: "sack",
          OPT_TIMESTAMP: "timestamp"}


def _check_len(kind: int, length: int) -> None:
    want = _FIXED_LEN.get(kind)
    if want is not None:
        if length != want:
            raise MalformedPacket("tcp", "option_length",
                                  f"{_NAMES[kind]} option length {length}, must be {want}")
    elif kind == OPT_SACK and (length < 10 or (length - 2) % 8):
        raise MalformedPacket("tcp", "option_length",
                              f"sack option length {length}, must be 2 + 8*n (n = 1..4)")


def _walk(mv: Buffer, start: int, end: int) -> Iterable[tuple[int, int, int]]:
    """Yield ``(kind, offset, length)`` for each option in ``mv[start:end]``; EOL ends the walk."""
    i = start
    while i < end:
        kind = mv[i]
        if kind == OPT_EOL:
            yield OPT_EOL, i, 1
            return
        if kind == OPT_NOP:
            yield OPT_NOP, i, 1
            i += 1
            continue
        if i + 1 >= end:
            raise MalformedPacket("tcp", "option_length",
                                  f"option kind {kind} at offset {i} has no length byte")
        length = mv[i + 1]
        if length < 2:
            raise MalformedPacket("tcp", "option_length",
                                  f"option kind {kind} has length {length} (< 2)")
        if i + length > end:
            raise MalformedPacket("tcp", "option_length",
                                  f"option kind {kind} length {length} runs past the header")
        _check_len(kind, length)
        yield kind, i, length
        i += length


def _fastopen_at(mv: Buffer, kind: int, i: int, length: int) -> FastOpenOpt | None:
    """The TCP Fast Open option at ``mv[i]``, kind 34 or 254 with the magic; None otherwise."""
    if kind == OPT_FASTOPEN:
        return FastOpenOpt(bytes(mv[i + 2:i + length]))
    if kind == OPT_EXP and length >= 4 and _U16.unpack_from(mv, i + 2)[0] == FASTOPEN_MAGIC:
        return FastOpenOpt(bytes(mv[i + 4:i + length]), exp=True)
    return None


def parse_options(buf: Buffer, start: int = 0, end: int | None = None) -> list[TcpOption]:
    """Parse an options area into option objects (EOL kept as :class:`EolOpt`, padding dropped)."""
    mv = buf if isinstance(buf, memoryview) else memoryview(buf)
    if end is None:
        end = len(mv)
    out: list[TcpOption] = []
    for kind, i, length in _walk(mv, start, end):
        if kind == OPT_NOP:
            out.append(NopOpt())
        elif kind == OPT_EOL:
            out.append(EolOpt())
        elif kind == OPT_MSS:
            out.append(MssOpt(_U16.unpack_from(mv, i + 2)[0]))
        elif kind == OPT_WSCALE:
            out.append(WscaleOpt(mv[i + 2]))
        elif kind == OPT_SACK_PERM:
            out.append(SackPermOpt())
        elif kind == OPT_TIMESTAMP:
            out.append(TimestampOpt(*_U32X2.unpack_from(mv, i + 2)))
        elif kind == OPT_SACK:
            out.append(SackOpt(tuple(_U32X2.iter_unpack(mv[i + 2:i + length]))))
        elif (fo := _fastopen_at(mv, kind, i, length)) is not None:
            out.append(fo)
        elif (ae := _accecn_at(mv, kind, i, length)) is not None:
            out.append(ae)
        else:
            out.append(UnknownOpt(kind, bytes(mv[i + 2:i + length])))
    return out


def pack_options(options: Iterable[TcpOption]) -> bytes:
    """Encode option objects and pad with zero (EOL) bytes to a multiple of 4 bytes."""
    raw = b"".join(o.encode() for o in options)
    pad = -len(raw) & 3
    if pad:
        raw += b"\x00" * pad
    if len(raw) > MAX_OPTIONS_LEN:
        raise ValueError(f"TCP options take {len(raw)} bytes, at most 40 fit")
    return raw


def encode_options(*, mss: int | None = None, wscale: int | None = None,
                   sack_permitted: bool = False, timestamps: tuple[int, int] | None = None,
                   sack_blocks: Iterable[tuple[int, int]] = (),
                   fastopen: FastOpenOpt | None = None,
                   accecn: AccEcnOpt | None = None) -> bytes:
    """Option bytes for the TCP engine, laid out as Linux does, always a multiple of 4 bytes.

    SYN: ``mss, sackOK, TS, nop, wscale`` (20 bytes), then the Fast Open option padded with
    ``nop, nop`` to a word (Linux tcp_options_write); data segments: ``nop, nop, TS`` and
    ``nop, nop, sack N`` blocks. Blocks that no longer fit in 40 bytes are left out. The AccECN
    option (RFC 9768) comes last, after the ``nop`` bytes that end it on a word (the sender
    chose its length to fit, accecn.py).
    """
    out = bytearray()
    if mss is not None:
        out += _MSS.pack(OPT_MSS, 4, mss)
    if timestamps is not None:
        out += b"\x04\x02" if sack_permitted else b"\x01\x01"
        out += _TS.pack(OPT_TIMESTAMP, 10, timestamps[0], timestamps[1])
    elif sack_permitted:
        out += b"\x01\x01\x04\x02"
    if wscale is not None:
        out += b"\x01" + _WS.pack(OPT_WSCALE, 3, wscale)
    blocks = list(sack_blocks)
    if blocks:
        room = (MAX_OPTIONS_LEN - len(out) - 4) // 8
        blocks = blocks[: min(4, room)]
        if blocks:
            out += b"\x01\x01" + bytes((OPT_SACK, 2 + 8 * len(blocks)))
            for left, right in blocks:
                out += _U32X2.pack(left, right)
    if fastopen is not None:
        out += fastopen.encode()
        if len(out) & 3 == 2:
            out += b"\x01\x01"
    if accecn is not None:
        raw = accecn.encode()
        out += b"\x01" * (-len(raw) & 3) + raw
    return bytes(out)


# -- view -----------------------------------------------------------------------------------------


class TcpView:
    """A validating view over one TCP segment (the IP payload, already trimmed to its length).

    Attributes are plain ints read once on construction: ``src_port dst_port seq ack flags window
    header_len`` (``checksum`` and ``urgent`` are read on demand). ``flags`` holds the nine
    control bits (NS/AE included). ``payload`` is a memoryview of the data, sliced on
    construction: the engine reads it for every segment, and a property costs ~0.1 us a read in
    CPython 3.11.
    """

    __slots__ = ("buf", "src_port", "dst_port", "seq", "ack", "flags", "window", "header_len",
                 "payload", "_opts")
    buf: memoryview
    src_port: int
    dst_port: int
    seq: int
    ack: int
    flags: int
    window: int
    header_len: int
    payload: memoryview
    _opts: _Options | None  # the option scan's result, once made (wire/frame.py fills it in)

    def __init__(self, buf: Buffer) -> None:
        mv = buf if type(buf) is memoryview else memoryview(buf)
        n = len(mv)
        if n < 20:
            raise MalformedPacket("tcp", "length", f"{n} bytes, the header needs 20")
        (self.src_port, self.dst_port, self.seq, self.ack, off_flags,
         self.window) = _HDR_RX.unpack_from(mv)
        hl = (off_flags >> 10) & 0x3C
        if hl < 20 or hl > n:
            raise MalformedPacket("tcp", "data_offset",
                                  f"data offset {hl >> 2} words, segment has {n} bytes")
        self.header_len = hl
        self.flags = off_flags & FLAG_MASK
        self.buf = mv
        self.payload = mv[hl:]
        self._opts = None

    @property
    def data_offset(self) -> int:
        return self.header_len >> 2

    @property
    def checksum(self) -> int:
        """The checksum field as received (verify with :meth:`checksum_ok`)."""
        v: int = _U16.unpack_from(self.buf, 16)[0]
        return v

    @property
    def urgent(self) -> int:
        """The urgent pointer field (meaningful with URG)."""
        v: int = _U16.unpack_from(self.buf, 18)[0]
        return v

    @property
    def payload_len(self) -> int:
        return len(self.buf) - self.header_len

    @property
    def options_bytes(self) -> memoryview:
        return self.buf[20:self.header_len]

    def checksum_ok(self, src_ip: bytes, dst_ip: bytes) -> bool:
        return pseudo_ok(self.buf, src_ip, dst_ip, PROTO_TCP)

    def options(self) -> list[TcpOption]:
        """All options, parsed (raises :class:`MalformedPacket` on a bad option)."""
        return parse_options(self.buf, 20, self.header_len)

    # Lazy single scan for the engine: (mss, wscale, sack_permitted, sack_blocks, timestamps).
    def _scan(self) -> _Options:
        hl = self.header_len
        mv = self.buf
        if hl == 20:
            r: _Options = _NO_OPTIONS
        elif hl == 32 and (u := _NOPNOP_TS.unpack_from(mv, 20))[0] == _NOPNOP_TS_WORD:
            r = (None, None, False, (), u[1:])
        elif hl == 40 and (u := _LINUX_SYN.unpack_from(mv, 20))[0] == 0x0204 \
                and u[2] == 0x0402080A and u[5] >> 8 == 0x010303:
            r = (u[1], u[5] & 0xFF, True, (), (u[3], u[4]))
        else:
            mss: int | None = None
            wscale: int | None = None
            ts: tuple[int, int] | None = None
            sack_perm = False
            blocks: tuple[tuple[int, int], ...] = ()
            i = 20
            while i < hl:  # inline walk (no generator): this runs for every SYN and SACK
                kind = mv[i]
                if kind == OPT_NOP:
                    i += 1
                    continue
                if kind == OPT_EOL:
                    break
                if i + 1 >= hl:
                    raise MalformedPacket("tcp", "option_length",
                                          f"option kind {kind} at offset {i} has no length byte")
                length = mv[i + 1]
                if length < 2 or i + length > hl:
                    raise MalformedPacket("tcp", "option_length",
                                          f"option kind {kind} has bad length {length}")
                if kind <= OPT_TIMESTAMP:
                    _check_len(kind, length)
                    if kind == OPT_TIMESTAMP:
                        ts = _U32X2.unpack_from(mv, i + 2)
                    elif kind == OPT_SACK:
                        blocks = tuple(_U32X2.iter_unpack(mv[i + 2:i + length]))
                    elif kind == OPT_MSS:
                        mss = _U16.unpack_from(mv, i + 2)[0]
                    elif kind == OPT_WSCALE:
                        wscale = mv[i + 2]
                    elif kind == OPT_SACK_PERM:
                        sack_perm = True
                i += length
            r = (mss, wscale, sack_perm, blocks, ts)
        self._opts = r
        return r

    def engine_options(self) -> EngineOptions:
        """``(mss, wscale, sack_permitted, sack_blocks, timestamps)`` in one call: what the five
        getters below read (the header prediction reads two of them per segment)."""
        return self._opts or self._scan()

    def mss(self) -> int | None:
        return (self._opts or self._scan())[0]

    def wscale(self) -> int | None:
        return (self._opts or self._scan())[1]

    def sack_permitted(self) -> bool:
        return (self._opts or self._scan())[2]

    def sack_blocks(self) -> tuple[tuple[int, int], ...]:
        return (self._opts or self._scan())[3]

    def timestamps(self) -> tuple[int, int] | None:
        """``(tsval, tsecr)`` or None."""
        return (self._opts or self._scan())[4]

    def fastopen(self) -> FastOpenOpt | None:
        """The TCP Fast Open option (RFC 7413), or None. Its own walk, for SYNs: the engine's
        scan above stays as it is for every other segment."""
        for kind, i, length in _walk(self.buf, 20, self.header_len):
            if (fo := _fastopen_at(self.buf, kind, i, length)) is not None:
                return fo
        return None

    def accecn(self) -> AccEcnOpt | None:
        """The AccECN option (RFC 9768 §3.2.3), or None: a walk of its own, made only for the
        segments of an AccECN connection."""
        if self.header_len == 20:
            return None
        for kind, i, length in _walk(self.buf, 20, self.header_len):
            if (ae := _accecn_at(self.buf, kind, i, length)) is not None:
                return ae
        return None


# -- value object ---------------------------------------------------------------------------------


@dataclass(slots=True)
class TcpSegment:
    src_port: int
    dst_port: int
    seq: int
    ack: int
    flags: int
    window: int
    payload: bytes = b""
    urgent: int = 0
    options: list[TcpOption] = field(default_factory=list)
    # As read by parse(); build() always computes the checksum.
    checksum: int | None = field(default=None, compare=False)
    checksum_valid: bool | None = field(default=None, compare=False)

    @classmethod
    def from_view(cls, v: TcpView) -> TcpSegment:
        return cls(v.src_port, v.dst_port, v.seq, v.ack, v.flags, v.window, bytes(v.payload),
                   v.urgent, v.options(), v.checksum)

    @classmethod
    def parse(cls, buf: Buffer, src_ip: bytes | None = None,
              dst_ip: bytes | None = None) -> TcpSegment:
        """Parse a segment; with both addresses, ``checksum_valid`` says whether it verifies."""
        v = TcpView(buf)
        seg = cls.from_view(v)
        if src_ip is not None and dst_ip is not None:
            seg.checksum_valid = v.checksum_ok(src_ip, dst_ip)
        return seg

    def build(self, src_ip: bytes, dst_ip: bytes) -> bytearray:
        """Wire bytes with data offset, option padding and checksum filled in."""
        return build_tcp(src_ip, dst_ip, self.src_port, self.dst_port, self.seq, self.ack,
                         self.flags, self.window, self.payload, pack_options(self.options),
                         self.urgent)

    def summary(self) -> str:
        """tcpdump's TCP part: ``Flags [S.], seq 1, ack 2, win 65535, options [...], length 0``."""
        flags = self.flags
        n = len(self.payload)
        parts = [f"Flags [{flags_str(flags)}]"]
        if n or flags & (SYN | FIN | RST):
            end = (self.seq + n) & 0xFFFFFFFF
            parts.append(f"seq {self.seq}:{end}" if n else f"seq {self.seq}")
        if flags & ACK:
            parts.append(f"ack {self.ack}")
        parts.append(f"win {self.window}")
        if flags & URG:
            parts.append(f"urg {self.urgent}")
        if self.options:
            parts.append("options [" + ",".join(o.summary() for o in self.options) + "]")
        parts.append(f"length {n}")
        return ", ".join(parts)

    def summary_with_addresses(self, src_ip: bytes, dst_ip: bytes) -> str:
        return f"{ip_str(src_ip)}.{self.src_port} > {ip_str(dst_ip)}.{self.dst_port}: " + \
            self.summary()


# -- fast builder ---------------------------------------------------------------------------------


def build_tcp(src_ip: bytes, dst_ip: bytes, src_port: int, dst_port: int, seq: int, ack: int,
              flags: int, window: int, payload: Buffer = b"", options_bytes: bytes = b"",
              urgent: int = 0, *, psum: int | None = None,
              timestamps: tuple[int, int] | None = None) -> bytearray:
    """One segment with checksum. ``options_bytes`` should already be padded to 4 bytes (as
    :func:`encode_options` returns them); if not, zero padding is added.

    For the engine, which builds every segment it sends with this:

    * ``timestamps=(tsval, tsecr)`` stands for the options ``nop,nop,TS`` alone (the bytes
      ``encode_options(timestamps=...)`` returns; ``options_bytes`` must then be empty), packed
      with the header in one call: the layout of every segment once timestamps are negotiated.
    * ``psum`` is the pseudo-header's sum without the length, ``pseudo_header(src_ip, dst_ip,
      PROTO_TCP, 0)``, for a caller that keeps it per connection; the addresses are then unused.
    """
    if timestamps is not None:
        if options_bytes:
            raise ValueError("timestamps= is the whole options area: options_bytes must be empty")
        buf = bytearray(_HDR_TS.pack(src_port, dst_port, seq, ack, 0x8000 | (flags & FLAG_MASK),
                                     window, 0, urgent, _NOPNOP_TS_BYTES, timestamps[0],
                                     timestamps[1]))
    else:
        olen = len(options_bytes)
        if olen & 3:
            options_bytes = bytes(options_bytes) + b"\x00" * (-olen & 3)
            olen = len(options_bytes)
        if olen > MAX_OPTIONS_LEN:
            raise ValueError(f"TCP options take {olen} bytes, at most 40 fit")
        buf = bytearray(_HDR.pack(src_port, dst_port, seq, ack,
                                  ((20 + olen) << 10) | (flags & FLAG_MASK), window, 0, urgent))
        if olen:
            buf += options_bytes
    if payload:
        buf += payload
    pseudo_store(buf, 16, pseudo_header(src_ip, dst_ip, PROTO_TCP, 0) if psum is None else psum)
    return buf
