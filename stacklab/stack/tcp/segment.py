"""The TCB's own segment value: what it emits, and what tests hand from one TCB to another.

An incoming segment may be this class or a :class:`stacklab.wire.tcp.TcpView`: the TCB reads only
``seq ack flags window payload`` and the option getters ``mss() wscale() sack_permitted()
sack_blocks() timestamps()`` (or all five in one tuple, ``engine_options()``, the header
prediction's one call), which both provide (and, on a SYN, ``fastopen()``; on an AccECN
connection ``accecn()``). The layer turns
an outgoing ``Segment`` into bytes with ``build_tcp(..., seg.options_bytes())``.
"""

from __future__ import annotations

import struct
from typing import Protocol

from stacklab.wire.tcp import (
    ACK,
    CWR,
    ECE,
    FIN,
    PSH,
    RST,
    SYN,
    URG,
    AccEcnOpt,
    EngineOptions,
    FastOpenOpt,
    encode_options,
    flags_str,
)

__all__ = ["ACK", "CWR", "ECE", "FIN", "PSH", "RST", "SYN", "URG", "Segment", "SegmentLike"]

Buffer = bytes | bytearray | memoryview
_NOPNOP_TS = struct.Struct("!4sII")  # nop, nop, TS: as encode_options(timestamps=...)


class SegmentLike(Protocol):
    seq: int
    ack: int
    flags: int
    window: int

    @property
    def payload(self) -> Buffer: ...
    def mss(self) -> int | None: ...
    def wscale(self) -> int | None: ...
    def sack_permitted(self) -> bool: ...
    def sack_blocks(self) -> tuple[tuple[int, int], ...]: ...
    def timestamps(self) -> tuple[int, int] | None: ...
    def engine_options(self) -> EngineOptions: ...
    @property
    def urgent(self) -> int: ...

    def fastopen(self) -> FastOpenOpt | None: ...
    def accecn(self) -> AccEcnOpt | None: ...


class Segment:
    __slots__ = ("seq", "ack", "flags", "window", "payload", "_mss", "_wscale", "_sack_perm",
                 "_ts", "_sack", "urgent", "ecn", "_fo",
                 "_acc", "plain")

    def __init__(self, seq: int, ack: int, flags: int, window: int, payload: Buffer = b"",
                 ts: tuple[int, int] | None = None,
                 sack: tuple[tuple[int, int], ...] = (), *,
                 mss: int | None = None, wscale: int | None = None, sack_perm: bool = False,
                 fastopen: FastOpenOpt | None = None) -> None:
        """``ts`` and ``sack`` may come by position (the per-segment builders: a class called
        with keywords packs them in a dict each time), the options of a SYN by keyword."""
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.window = window
        self.payload = payload
        self._mss = mss
        self._wscale = wscale
        self._sack_perm = sack_perm
        self._ts = ts
        self._sack = sack
        self.urgent = 0  # the urgent pointer field, set by the sender in urgent mode (urgent.py)
        self.ecn = 0  # the IP header's ECN field it leaves with (ecn.py: ECT(0) on new data)
        self._fo = fastopen  # RFC 7413, on SYNs only
        self._acc: AccEcnOpt | None = None  # the AccECN option (RFC 9768): _aco, by accecn.py
        # ts_only(): no option but timestamps, if any (the options are set here, but for the
        # AccECN option, whose setter clears it): what the frame builders read of every
        # segment, without a call
        self.plain = mss is None and wscale is None and not sack_perm and not sack \
            and fastopen is None

    @property
    def _aco(self) -> AccEcnOpt | None:
        return self._acc

    @_aco.setter
    def _aco(self, opt: AccEcnOpt | None) -> None:
        self._acc = opt
        if opt is not None:
            self.plain = False

    def mss(self) -> int | None:
        return self._mss

    def wscale(self) -> int | None:
        return self._wscale

    def sack_permitted(self) -> bool:
        return self._sack_perm

    def sack_blocks(self) -> tuple[tuple[int, int], ...]:
        return self._sack

    def timestamps(self) -> tuple[int, int] | None:
        return self._ts

    def engine_options(self) -> EngineOptions:
        """As :meth:`TcpView.engine_options`: the five getters' values in one tuple."""
        return (self._mss, self._wscale, self._sack_perm, self._sack, self._ts)

    def fastopen(self) -> FastOpenOpt | None:
        return self._fo

    def accecn(self) -> AccEcnOpt | None:
        return self._acc

    @property
    def seg_len(self) -> int:
        """SEG.LEN: payload plus one for SYN and one for FIN."""
        return len(self.payload) + (self.flags & SYN != 0) + (self.flags & FIN != 0)

    def ts_only(self) -> bool:
        """No option but timestamps, if any: the layouts the segment builders pack with the
        header in one call (``build_tcp(timestamps=)``, ``TcpFrameTemplate.build``): the
        ``plain`` slot (``__init__`` and the ``_aco`` setter keep it)."""
        return self.plain

    def options_bytes(self) -> bytes:
        if self.ts_only():
            ts = self._ts
            if ts is None:
                return b""
            return _NOPNOP_TS.pack(b"\x01\x01\x08\x0a", ts[0], ts[1])
        return encode_options(mss=self._mss, wscale=self._wscale, sack_permitted=self._sack_perm,
                              timestamps=self._ts, sack_blocks=self._sack, fastopen=self._fo,
                              accecn=self._aco)

    def __repr__(self) -> str:
        parts = [f"[{flags_str(self.flags)}] seq={self.seq} ack={self.ack} win={self.window}"]
        if self.payload:
            parts.append(f"len={len(self.payload)}")
        for name in ("_mss", "_wscale", "_ts"):
            v = getattr(self, name)
            if v is not None:
                parts.append(f"{name[1:]}={v}")
        if self._sack_perm:
            parts.append("sackOK")
        return "Segment(" + " ".join(parts) + ")"
