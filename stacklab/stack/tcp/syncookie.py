"""SYN cookies: a listener whose SYN queue is full answers statelessly (Linux tcp_syncookies=1).

The ISS of the SYN,ACK is the cookie (32 bits)::

    bits 31..27  t: a 64-second counter (mod 32); cookies older than two counter steps are refused
    bits 26..24  an index into MSS_TABLE: the largest entry not above the MSS the client offered
    bits 23..0   a keyed MAC (BLAKE2s with the host's secret) over the 4-tuple, the client's ISN,
                 t and the MSS index

Window scaling and SACK survive only with timestamps, as in Linux: the low 6 bits of our TSval in
the SYN,ACK carry them (bits 0-3 the client's wscale, 0xF for none; bit 4 SACK permitted; bit 5
ECN accepted, ecn.py), and the client echoes the TSval in every ACK. Without timestamps a cookie
connection has none of them.
The secret comes from the host's seeded random generator (no os.urandom in the simulator).
"""

from __future__ import annotations

import hashlib
import random
import struct

from .seq import MASK

MSS_TABLE = (216, 536, 1024, 1220, 1300, 1380, 1440, 1460)
COUNTER_PERIOD = 64.0  # seconds per counter step
MAX_AGE_STEPS = 2  # Linux: cookies are valid for about two minutes
TS_OPT_BITS = 6
TS_NO_WSCALE = 0xF
TS_ECN = 0x20  # bit 5: ECN accepted (Linux TS_OPT_ECN)
_PACK = struct.Struct("!HHIB")


class SynCookies:
    __slots__ = ("_secret", "ts_offset", "sent", "accepted", "rejected")

    def __init__(self, rng: random.Random) -> None:
        self._secret = rng.getrandbits(128).to_bytes(16, "big")
        self.ts_offset = rng.getrandbits(32)
        self.sent = 0
        self.accepted = 0
        self.rejected = 0

    def _mac(self, laddr: bytes, lport: int, raddr: bytes, rport: int, peer_isn: int,
             counter: int, mss_idx: int) -> int:
        h = hashlib.blake2s(key=self._secret, digest_size=4)
        h.update(laddr)
        h.update(raddr)
        h.update(_PACK.pack(lport, rport, peer_isn & MASK, (counter << 3) | mss_idx))
        return int.from_bytes(h.digest(), "big") & 0xFFFFFF

    @staticmethod
    def mss_index(mss: int) -> int:
        idx = 0
        for i, v in enumerate(MSS_TABLE):
            if v <= mss:
                idx = i
        return idx

    def make(self, laddr: bytes, lport: int, raddr: bytes, rport: int, peer_isn: int,
             peer_mss: int, now: float) -> int:
        """The ISS for a SYN,ACK answering a SYN whose sequence number is ``peer_isn``."""
        counter = int(now // COUNTER_PERIOD) & 0x1F
        idx = self.mss_index(peer_mss)
        self.sent += 1
        return (counter << 27) | (idx << 24) | self._mac(laddr, lport, raddr, rport, peer_isn,
                                                         counter, idx)

    def check(self, laddr: bytes, lport: int, raddr: bytes, rport: int, peer_isn: int,
              cookie: int, now: float) -> int | None:
        """The MSS encoded in ``cookie`` (= SEG.ACK - 1 of the client's ACK) if it is ours and
        fresh, else None."""
        counter = (cookie >> 27) & 0x1F
        age = (int(now // COUNTER_PERIOD) - counter) & 0x1F
        idx = (cookie >> 24) & 0x7
        if age > MAX_AGE_STEPS or self._mac(laddr, lport, raddr, rport, peer_isn, counter,
                                            idx) != cookie & 0xFFFFFF:
            self.rejected += 1
            return None
        self.accepted += 1
        return MSS_TABLE[idx]

    def ts_value(self, now: float, wscale: int | None, sack: bool, ecn: bool = False) -> int:
        """Our TSval for a cookie SYN,ACK with the options encoded in its low bits."""
        clock = (int(now * 1000) + self.ts_offset) & MASK
        bits = (TS_NO_WSCALE if wscale is None else min(wscale, 14)) | (0x10 if sack else 0) \
            | (TS_ECN if ecn else 0)
        return (clock & ~((1 << TS_OPT_BITS) - 1) & MASK) | bits

    @staticmethod
    def ts_options(tsecr: int) -> tuple[int | None, bool]:
        """(the client's wscale or None, SACK permitted) from the TSecr of its ACK."""
        ws = tsecr & 0xF
        return (None if ws == TS_NO_WSCALE else ws), bool(tsecr & 0x10)

    @staticmethod
    def ts_ecn(tsecr: int) -> bool:
        """Whether the cookie SYN,ACK this TSecr echoes accepted ECN (Linux TS_OPT_ECN)."""
        return bool(tsecr & TS_ECN)


__all__ = ["MSS_TABLE", "SynCookies"]
