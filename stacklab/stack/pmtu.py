"""Per-destination Path MTU cache (RFC 1191 for IPv4, RFC 8201 for IPv6).

Each host owns one :class:`PathMtuCache`. The path MTU to a destination starts as the outgoing
link's MTU; an ICMP Fragmentation Needed (v4) or Packet Too Big (v6) that passed validation lowers
it; entries age out (10 minutes by default, as Linux's ``mtu_expires``) so a larger path MTU is
rediscovered. The cache never goes below the floor: 552 bytes for IPv4 (Linux's
``net.ipv4.route.min_pmtu``, chosen over RFC 791's 68 so a forged "MTU 68" cannot make a sender
spray tiny segments) and 1280 for IPv6 (RFC 8200's minimum link MTU).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stacklab.wire.addr import ip_str

# RFC 1191 §7: plateaus for routers that send Fragmentation Needed with a next-hop MTU of 0.
PLATEAUS = (65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68)

MIN_PMTU_V4 = 552
MIN_PMTU_V6 = 1280
DEFAULT_EXPIRES = 600.0


def plateau_below(length: int) -> int:
    """The largest plateau strictly below ``length`` (RFC 1191 §5, "MTU 0" routers)."""
    for p in PLATEAUS:
        if p < length:
            return p
    return PLATEAUS[-1]


@dataclass(slots=True)
class PmtuEntry:
    mtu: int
    expires: float
    learned_at: float


class PathMtuCache:
    def __init__(self, expires: float = DEFAULT_EXPIRES, min_v4: int = MIN_PMTU_V4,
                 min_v6: int = MIN_PMTU_V6, counters: Counter[str] | None = None) -> None:
        self.expires = expires
        self.min_v4 = min_v4
        self.min_v6 = min_v6
        self._entries: dict[bytes, PmtuEntry] = {}
        self.gen = 0  # counts the changes of the entries (a holder of an answer checks it)
        self.counters: Counter[str] = counters if counters is not None else Counter()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, dst: bytes, now: float | None) -> PmtuEntry | None:
        """The live entry for ``dst``; ``now`` None skips the age check (the owner's timer
        removes expired entries on time)."""
        entry = self._entries.get(dst)
        if entry is not None and now is not None and now >= entry.expires:
            del self._entries[dst]
            self.gen += 1
            self.counters["pmtu.expired"] += 1
            return None
        return entry

    def get(self, dst: bytes, link_mtu: int, now: float | None) -> int:
        """The path MTU to ``dst``: the learned value, or the outgoing link MTU."""
        entry = self.lookup(dst, now)
        if entry is None:
            return link_mtu
        return entry.mtu if entry.mtu < link_mtu else link_mtu

    def report(self, dst: bytes, mtu: int, now: float, link_mtu: int,
               original_length: int = 0) -> int | None:
        """A validated Frag Needed / Packet Too Big says ``mtu``; returns the new PMTU if it
        dropped, else None.

        ``mtu`` 0 (an RFC 1191 "old router") picks the plateau below ``original_length``.
        Values under the floor are clamped to it; reports that would raise the PMTU are ignored
        (RFC 1191 §3, RFC 8201 §4).
        """
        floor = self.min_v4 if len(dst) == 4 else self.min_v6
        if mtu == 0 and len(dst) == 4:
            mtu = plateau_below(original_length or link_mtu)
            self.counters["pmtu.plateau"] += 1
        if mtu < floor:
            self.counters["pmtu.clamped"] += 1
            mtu = floor
        current = self.get(dst, link_mtu, now)
        if mtu >= current:
            self.counters["pmtu.ignored_not_lower"] += 1
            return None
        self._entries[dst] = PmtuEntry(mtu, now + self.expires, now)
        self.gen += 1
        self.counters["pmtu.lowered"] += 1
        return mtu

    def set(self, dst: bytes, mtu: int, now: float) -> None:
        """Record a PMTU found another way (PLPMTUD probing): not clamped below the floor."""
        self._entries[dst] = PmtuEntry(mtu, now + self.expires, now)
        self.gen += 1

    def get_timer(self) -> float | None:
        if not self._entries:
            return None
        return min(e.expires for e in self._entries.values())

    def handle_timer(self, now: float) -> None:
        for dst in [d for d, e in self._entries.items() if now >= e.expires]:
            del self._entries[dst]
            self.gen += 1
            self.counters["pmtu.expired"] += 1

    def entries(self, now: float) -> list[tuple[bytes, PmtuEntry]]:
        self.handle_timer(now)
        return sorted(self._entries.items(), key=lambda kv: (len(kv[0]), kv[0]))

    def format(self, now: float) -> str:
        """``ip route show cache``-like lines: ``10.0.3.2 mtu 1400 expires 597s``."""
        lines = []
        for dst, e in self.entries(now):
            lines.append(f"{ip_str(dst)} mtu {e.mtu} expires {int(e.expires - now)}s")
        return "\n".join(lines)


def tcp_quote_check(layer: Any) -> Callable[[bytes, bytes, bytes], str | None]:
    """The RFC 5927 §4.1 / RFC 8201 §5 check for ICMP errors quoting TCP, for
    ``host.icmp.register_validator(6, ...)``: the quoted 4-tuple must be a connection of
    ``layer`` (a TcpLayer) and the quoted sequence number must lie in SND.UNA..SND.MAX — what
    we sent and is not yet acknowledged (SND.MAX rather than SND.NXT because after a timeout
    SND.NXT goes back to SND.UNA while the segments sent before are still out there)."""

    def check(qsrc: bytes, qdst: bytes, ql4: bytes) -> str | None:
        if len(ql4) < 8:
            return "truncated"
        sport = (ql4[0] << 8) | ql4[1]
        dport = (ql4[2] << 8) | ql4[3]
        tcb = layer.conns.get((qsrc, sport, qdst, dport))
        if tcb is None:
            return "no_flow"
        seq = int.from_bytes(ql4[4:8], "big")
        una = tcb.snd_una
        if (seq - una) & 0xFFFFFFFF >= max(1, (tcb.snd_max - una) & 0xFFFFFFFF):
            return "seq_outside_window"
        return None

    return check
