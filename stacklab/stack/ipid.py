"""IP identification values (IPv4 ID, IPv6 Fragment header ID) as RFC 7739 §5.3 and Linux do.

A single host-wide counter (what stacklab had) lets anyone who receives two packets from us learn
how many we sent to everybody else in between (idle scans) and predict the ID of our next
datagram to a victim, so a forged fragment can be planted in its reassembly queue. Instead:

* a keyed hash of (source, destination, protocol) picks one of ``BUCKETS`` counters (RFC 7739's
  double-hash algorithm; Linux's ``ip_idents``): a peer sees the counter of its own flows only;
* the key is a host secret drawn from the host's seeded ``rng``, so IDs are unpredictable to
  others yet the same for the same seed (the simulator's determinism);
* a counter, when time moved since its last use, first jumps by a random amount below the
  milliseconds elapsed (Linux's ``ip_idents_reserve``): even a peer sharing a bucket cannot count
  someone else's packets between two of its own.
"""

from __future__ import annotations

import hashlib
import random

BUCKETS = 2048  # Linux IP_IDENTS_SZ (the minimum of its scaled table)
FLOW_CACHE_MAX = 4096  # flows whose bucket is remembered (cleared when full, as the dst cache)


class IpIdCounter:
    """One of the generator's counters: the IDs of the flows whose hash picks it. A sender that
    keeps it (``Ipv4.tcp_flow``) takes IDs from it without the generator's look-up: the same
    IDs, as the generator's buckets are never replaced."""

    __slots__ = ("value", "tick", "_rng")

    def __init__(self, value: int, tick: int, rng: random.Random) -> None:
        self.value = value  # the last ID given
        self.tick = tick  # the millisecond of its last use
        self._rng = rng

    def take(self, now: float, count: int = 1) -> int:
        """The next 32-bit ID (IPv4 uses the low 16 bits), ``count`` IDs from it on for as many
        datagrams at once (a TSO packet's segments, a flush's frames: Linux's
        ``ip_idents_reserve(segs)``); first the jump by a random amount below the milliseconds
        since its last use."""
        tick = int(now * 1000)
        if tick > self.tick:
            self.value += int(self._rng.random() * (tick - self.tick))
            self.tick = tick
        v = self.value
        self.value = (v + count) & 0xFFFFFFFF
        return (v + 1) & 0xFFFFFFFF


class IpIdGenerator:
    """Per-destination hashed IP IDs; one per IP version of a host."""

    __slots__ = ("_hash", "_rng", "_buckets", "_flows")

    def __init__(self, rng: random.Random) -> None:
        key = rng.getrandbits(128).to_bytes(16, "big")
        self._hash = hashlib.blake2b(key=key, digest_size=8)
        self._rng = random.Random(key)  # the increments; not the host's stream
        # bucket -> its counter; at most BUCKETS entries, never replaced
        self._buckets: dict[int, IpIdCounter] = {}
        # (src, dst, proto) -> its bucket's counter: the hash once per flow, not per packet
        self._flows: dict[tuple[bytes, bytes, int], IpIdCounter] = {}

    def counter(self, src: bytes, dst: bytes, proto: int, now: float) -> IpIdCounter:
        """The counter of datagrams ``src`` → ``dst`` of ``proto``: :meth:`next` is its
        :meth:`IpIdCounter.take`."""
        b = self._flows.get((src, dst, proto))
        if b is None:
            b = self._counter(src, dst, proto, int(now * 1000))
        return b

    def _counter(self, src: bytes, dst: bytes, proto: int, tick: int) -> IpIdCounter:
        h = self._hash.copy()
        h.update(src + dst + bytes((proto,)))
        v = int.from_bytes(h.digest(), "big")
        b = self._buckets.get(v % BUCKETS)
        if b is None:
            # a fresh counter starts at a secret offset (the hash's other bits)
            b = self._buckets[v % BUCKETS] = IpIdCounter((v >> 32) & 0xFFFFFFFF, tick,
                                                         self._rng)
        if len(self._flows) >= FLOW_CACHE_MAX:
            self._flows.clear()
        self._flows[(src, dst, proto)] = b
        return b

    def next(self, src: bytes, dst: bytes, proto: int, now: float, count: int = 1) -> int:
        """The next 32-bit ID for a datagram ``src`` → ``dst`` of ``proto`` (IPv4 uses the low
        16 bits); ``count`` IDs from it on for a TSO packet of that many segments (Linux's
        ``ip_idents_reserve(segs)``: its device numbers them up)."""
        b = self._flows.get((src, dst, proto))
        if b is None:
            b = self._counter(src, dst, proto, int(now * 1000))
        return b.take(now, count)
