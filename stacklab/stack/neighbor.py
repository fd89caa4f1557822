"""A neighbour cache with Linux's NUD state machine, shared by ARP (IPv4) and NDP (IPv6).

States (``ip neigh`` names)::

    INCOMPLETE  resolution in progress: multicast/broadcast solicitations every retrans_time,
                packets queued (bounded, oldest dropped); after mcast_solicit tries -> FAILED
    REACHABLE   confirmed within reachable_time (randomised 0.5..1.5 x base, RFC 4861 §6.3.2)
    STALE       link-layer address known but unconfirmed; used as is, first use -> DELAY
    DELAY       waiting delay_first_probe_time for an upper-layer confirmation, else -> PROBE
    PROBE       unicast solicitations every retrans_time; after ucast_solicit tries -> FAILED
    FAILED      unreachable; the queue is dropped. The next packet restarts resolution.

Events in (sans-IO, ``now`` passed in): :meth:`resolve` (a packet wants to go out),
:meth:`update` (a reply/advertisement/request told us an address), :meth:`confirm` (an upper
layer saw forward progress, e.g. TCP ACKs), :meth:`handle_timer`.
Effects out go through the ``owner`` callbacks: ``solicit(ip, mac_or_None, now)`` (None =
broadcast/multicast), ``transmit(mac, packet)`` for each queued packet once resolved, and
``failed(ip, packets, now)`` when resolution gives up (routers send Host Unreachable).

Size and cost, as Linux's neighbour tables (``net.ipv4.neigh.default.*``, ``net.ipv6.neigh.*``):
``gc_thresh1`` 128 (below it unused entries are never collected), ``gc_thresh2`` 512 (above it,
at most every 5 s, a forced collection runs), ``gc_thresh3`` 1024 (the hard limit: a new entry
needs a forced collection to free room, else it is refused and counted
``drop.<layer>.table_full``). A forced collection removes FAILED entries and entries neither
updated nor used for 5 s, oldest first, down to ``gc_thresh2``. Linux counts the limits over the
family's whole table; here each interface's cache counts its own. One step beyond Linux: when
the host itself needs a new entry (a packet to send) and the collection freed nothing, the least
recently updated entry not in use goes, so a flood of spoofed solicitations (entries we only
learned, never used) cannot stop the host from resolving the neighbours it talks to.

Deadlines live in a heap (stale items are skipped when they surface) and the collection walks
entries in the order they were last updated, so one frame costs O(log n) whatever the table
holds: a flood of spoofed solicitations no longer rescans the table after every change.
"""

from __future__ import annotations

import enum
import heapq
import ipaddress
import random
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Protocol

from stacklab.wire.addr import ip_str, mac_str


class Nud(enum.Enum):
    NONE = "NONE"  # Linux's NUD_NONE: a new entry, before its first transition
    INCOMPLETE = "INCOMPLETE"
    REACHABLE = "REACHABLE"
    STALE = "STALE"
    DELAY = "DELAY"
    PROBE = "PROBE"
    FAILED = "FAILED"
    PERMANENT = "PERMANENT"


# for resolve(), which runs for every packet sent: an enum class attribute costs ~70 ns
_REACHABLE, _PERMANENT, _DELAY, _PROBE = Nud.REACHABLE, Nud.PERMANENT, Nud.DELAY, Nud.PROBE


@dataclass(slots=True)
class NeighborParams:
    base_reachable_time: float = 30.0
    retrans_time: float = 1.0
    delay_first_probe_time: float = 5.0
    mcast_solicit: int = 3
    ucast_solicit: int = 3
    queue_len: int = 101  # Linux unres_qlen default
    gc_stale_time: float = 60.0  # unused STALE/FAILED entries are removed after this...
    gc_thresh1: int = 128  # neigh.default.gc_thresh1: ...only while the table holds more
    gc_thresh2: int = 512  # neigh.default.gc_thresh2: forced collection, at most every 5 s
    gc_thresh3: int = 1024  # neigh.default.gc_thresh3: the hard limit


GC_MIN_AGE = 5.0  # a forced collection spares entries updated or used in the last 5 s (Linux)


@dataclass(slots=True)
class Neighbor:
    ip: bytes
    state: Nud
    mac: bytes | None = None
    deadline: float | None = None
    probes: int = 0
    confirmed: float = 0.0
    used: float = 0.0
    updated: float = 0.0
    is_router: bool = False
    queue: deque[Any] = field(default_factory=deque)

    def line(self, ifname: str) -> str:
        parts = [ip_str(self.ip), "dev", ifname]
        if self.mac is not None:
            parts += ["lladdr", mac_str(self.mac)]
        if self.is_router:
            parts.append("router")
        parts.append(self.state.value)
        return " ".join(parts)


class NeighborCache:
    """The neighbour table of one interface for one family."""

    def __init__(self, owner: Any, rng: random.Random, params: NeighborParams | None = None,
                 counters: Any = None, layer: str = "arp",
                 trace: Callable[..., None] | None = None,
                 timer_changed: Callable[[], None] | None = None) -> None:
        self.owner = owner
        self.rng = rng
        self.params = params or NeighborParams()
        self.entries: dict[bytes, Neighbor] = {}
        self.gen = 0  # counts the entries gone from the table (a holder of one checks it)
        self.counters = counters if counters is not None else {}
        self.layer = layer
        self._trace = trace
        self.reachable_time = self._new_reachable_time()
        # (deadline, tie-break, entry): an item is live while the entry is in the table and
        # still has that deadline; stale ones are dropped when they reach the top
        self._heap: list[tuple[float, int, Neighbor]] = []
        self._seq = 0
        # non-permanent entries, least recently updated first (the forced collection's order)
        self._by_update: dict[bytes, None] = {}
        self._failed: dict[bytes, None] = {}  # entries in FAILED: collected first
        self._last_flush = 0.0
        # called whenever :meth:`get_timer`'s answer may change (a deadline set, moved or
        # removed, an entry gone, the timer run): the host keeps the earliest deadline of all
        # its caches and walks them again only after such a call
        self._timer_changed = timer_changed

    def _new_reachable_time(self) -> float:
        return self.params.base_reachable_time * self.rng.uniform(0.5, 1.5)

    def _count(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    def _arm(self, n: Neighbor, deadline: float | None) -> None:
        n.deadline = deadline
        if self._timer_changed is not None:
            self._timer_changed()
        if deadline is not None:
            self._seq += 1
            heapq.heappush(self._heap, (deadline, self._seq, n))
            if len(self._heap) > 2 * len(self.entries) + 64:
                # too many stale items: rebuild from the live deadlines (amortised O(1))
                heap = []
                for x in self.entries.values():
                    if x.deadline is not None:
                        self._seq += 1
                        heap.append((x.deadline, self._seq, x))
                heapq.heapify(heap)
                self._heap = heap

    def _set(self, n: Neighbor, state: Nud, now: float, cause: str,
             deadline: float | None) -> None:
        old = n.state
        n.state = state
        n.updated = now
        self._arm(n, deadline)
        ip = n.ip
        if state is Nud.FAILED:
            self._failed[ip] = None
        elif old is Nud.FAILED:
            self._failed.pop(ip, None)
        by_update = self._by_update
        by_update.pop(ip, None)
        if state is not Nud.PERMANENT:
            by_update[ip] = None
        if self._trace is not None and old is not state:
            self._trace(now, self.layer, "cache", ip=ip_str(n.ip), old=old.value,
                        new=state.value, cause=cause)

    # -- events ---------------------------------------------------------------------------------
    def usable(self, ip: bytes, now: float) -> bytes | None:
        """The MAC of ``ip`` when its entry is used as it is (REACHABLE, PERMANENT, DELAY, PROBE),
        marked used; None when :meth:`resolve` would change or create the entry."""
        n = self.entries.get(ip)
        if n is not None:
            st = n.state
            if st is _REACHABLE or st is _PERMANENT or st is _DELAY or st is _PROBE:
                n.used = now
                return n.mac
        return None

    def resolve(self, ip: bytes, packet: Any, now: float) -> bytes | None:
        """A packet wants to go to ``ip``: the MAC to use now, or None (queued or dropped)."""
        mac = self.usable(ip, now)
        if mac is not None:
            return mac
        n = self.entries.get(ip)
        if n is not None:
            st = n.state
            if st is Nud.STALE:
                n.used = now
                self._set(n, Nud.DELAY, now, "used",
                          now + self.params.delay_first_probe_time)
                return n.mac
            if st is Nud.INCOMPLETE:
                self._enqueue(n, packet)
                return None
        # new or FAILED: start resolving
        if n is None:
            if not self._room(now, own=True):
                return None  # the packet is dropped (Linux: ENOBUFS)
            n = Neighbor(ip, Nud.NONE)
            self.entries[ip] = n
        n.mac = None
        n.probes = 1
        n.used = now
        self._set(n, Nud.INCOMPLETE, now, "resolve", now + self.params.retrans_time)
        self._enqueue(n, packet)
        self.owner.solicit(ip, None, now)
        return None

    def _enqueue(self, n: Neighbor, packet: Any) -> None:
        if packet is None:
            return
        if len(n.queue) >= self.params.queue_len:
            n.queue.popleft()
            self._count(f"drop.{self.layer}.queue_full")
        n.queue.append(packet)

    def update(self, ip: bytes, mac: bytes, now: float, *, solicited: bool,
               override: bool = True, create: bool = True, is_router: bool | None = None) -> None:
        """We learned ``ip`` is at ``mac``.

        ``solicited`` = a reply to our solicitation (ARP reply unicast to us, NA with S=1): the
        entry becomes REACHABLE. Otherwise (a request from the neighbour, gratuitous ARP, NA
        with S=0) it becomes STALE if the address changed or was unknown (RFC 4861 §7.2.5/7.2.6).
        ``override`` False (NA with O=0) does not replace a known, different address.
        """
        n = self.entries.get(ip)
        if n is None:
            if not create or not self._room(now, own=False):
                return
            n = Neighbor(ip, Nud.STALE, mac)
            self.entries[ip] = n
            if is_router is not None:
                n.is_router = is_router
            if solicited:
                n.confirmed = now
                self._set(n, Nud.REACHABLE, now, "reply", now + self.reachable_time)
            else:
                self._set(n, Nud.STALE, now, "learned", now + self.params.gc_stale_time)
            return
        if n.state is Nud.PERMANENT:
            return
        if is_router is not None:
            n.is_router = is_router
        changed = n.mac is not None and n.mac != mac
        if n.state is Nud.INCOMPLETE or n.state is Nud.FAILED:
            n.mac = mac
            if solicited:
                n.confirmed = now
                self._set(n, Nud.REACHABLE, now, "reply", now + self.reachable_time)
            else:
                self._set(n, Nud.STALE, now, "learned", now + self.params.gc_stale_time)
            self._flush(n)
            return
        if changed and not override:
            # RFC 4861 §7.2.5: a solicited NA without O for a different address only
            # downgrades a REACHABLE entry to STALE; the address is kept.
            if n.state is Nud.REACHABLE:
                self._set(n, Nud.STALE, now, "conflict", now + self.params.gc_stale_time)
            return
        n.mac = mac
        if solicited:
            n.confirmed = now
            self._set(n, Nud.REACHABLE, now, "reply", now + self.reachable_time)
        elif changed:
            self._set(n, Nud.STALE, now, "lladdr changed", now + self.params.gc_stale_time)

    def confirm(self, ip: bytes, now: float) -> None:
        """Upper-layer reachability confirmation (Linux ``dst_confirm``; RFC 4861 §7.3.1)."""
        n = self.entries.get(ip)
        if n is None or n.mac is None or n.state is Nud.PERMANENT:
            return
        n.confirmed = now
        if n.state is not Nud.REACHABLE:
            self._set(n, Nud.REACHABLE, now, "confirmed", now + self.reachable_time)
        # REACHABLE: the timer, when it fires, sees the new ``confirmed`` and re-arms

    def add_permanent(self, ip: bytes, mac: bytes, now: float = 0.0) -> None:
        self.forget(ip)  # a FAILED entry it replaces must not stay on the collection's lists
        n = Neighbor(ip, Nud.PERMANENT, mac)
        self.entries[ip] = n
        self._set(n, Nud.PERMANENT, now, "static", None)

    def lookup(self, ip: bytes) -> Neighbor | None:
        return self.entries.get(ip)

    def forget(self, ip: bytes) -> None:
        if self.entries.pop(ip, None) is not None:
            self.gen += 1
            if self._timer_changed is not None:
                self._timer_changed()
        self._by_update.pop(ip, None)
        self._failed.pop(ip, None)

    # -- size limits ----------------------------------------------------------------------------
    def _room(self, now: float, own: bool) -> bool:
        """Whether a new entry may be created (Linux ``neigh_alloc``): over ``gc_thresh3``, or
        over ``gc_thresh2`` with the last forced collection 5 s ago, collect first; still at
        ``gc_thresh3`` afterwards, refuse — unless the entry is for our ``own`` traffic and an
        entry not in use can give way."""
        p = self.params
        size = len(self.entries)
        if size < p.gc_thresh2 or (size < p.gc_thresh3 and now < self._last_flush + 5.0):
            return True
        if self._forced_gc(now) or size < p.gc_thresh3 or (own and self._evict_unused(now)):
            return True
        self._count(f"drop.{self.layer}.table_full")
        return False

    def _spare(self, ip: bytes) -> None:
        """An entry in use: moved behind the others, looked at again after them."""
        self._by_update.pop(ip)
        self._by_update[ip] = None

    def _forced_gc(self, now: float) -> int:
        """Remove FAILED entries, then entries neither updated nor used for ``GC_MIN_AGE``
        (oldest update first), until the table is down to ``gc_thresh2``. Returns how many
        went. Stops at the first recently updated entry: the cost is what is removed, plus
        the entries in use it moves to the back."""
        self._last_flush = now
        want = len(self.entries) - self.params.gc_thresh2
        gone = 0
        for ip in list(islice(self._failed, max(want, 0))):
            self.forget(ip)
            gone += 1
        by_update = self._by_update
        horizon = now - GC_MIN_AGE
        for _ in range(len(by_update)):
            if gone >= want:
                break
            ip = next(iter(by_update))
            n = self.entries[ip]
            if n.updated > horizon:
                break  # everything behind it was updated later still
            if n.used > horizon:
                self._spare(ip)
                continue
            self.forget(ip)
            gone += 1
        if gone:
            self._count(f"{self.layer}.forced_gc", gone)
        return gone

    def _evict_unused(self, now: float) -> bool:
        """Remove the least recently updated entry not used for ``GC_MIN_AGE``, however fresh."""
        horizon = now - GC_MIN_AGE
        for _ in range(len(self._by_update)):
            ip = next(iter(self._by_update))
            if self.entries[ip].used > horizon:
                self._spare(ip)
                continue
            self.forget(ip)
            self._count(f"{self.layer}.evicted_for_own")
            return True
        return False

    def _flush(self, n: Neighbor) -> None:
        q = n.queue
        mac = n.mac
        while q:
            self.owner.transmit(mac, q.popleft())

    # -- timers ---------------------------------------------------------------------------------
    def _live(self, item: tuple[float, int, Neighbor]) -> bool:
        n = item[2]
        return n.deadline == item[0] and self.entries.get(n.ip) is n

    def get_timer(self) -> float | None:
        heap = self._heap
        while heap:
            if self._live(heap[0]):
                return heap[0][0]
            heapq.heappop(heap)
        return None

    def handle_timer(self, now: float) -> None:
        heap = self._heap
        if not heap or heap[0][0] > now:
            return  # nothing due (the common call: the host runs every cache's timer)
        if self._timer_changed is not None:
            self._timer_changed()
        due = []
        while heap and heap[0][0] <= now:
            item = heapq.heappop(heap)
            if self._live(item):
                due.append(item[2])
        p = self.params
        for n in due:
            if n.deadline is None or n.deadline > now or self.entries.get(n.ip) is not n:
                continue  # changed by an earlier one's callbacks
            st = n.state
            if st is Nud.INCOMPLETE:
                if n.probes >= p.mcast_solicit:
                    self._fail(n, now)
                else:
                    n.probes += 1
                    self._set(n, Nud.INCOMPLETE, now, "retry", now + p.retrans_time)
                    self._count(f"{self.layer}.retries")
                    self.owner.solicit(n.ip, None, now)
            elif st is Nud.REACHABLE:
                if n.confirmed + self.reachable_time > now:
                    self._arm(n, n.confirmed + self.reachable_time)
                else:
                    self._set(n, Nud.STALE, now, "timeout", now + p.gc_stale_time)
            elif st is Nud.DELAY:
                if n.mac is not None and now <= n.confirmed + p.delay_first_probe_time:
                    self._set(n, Nud.REACHABLE, now, "confirmed",
                              n.confirmed + self.reachable_time)
                else:
                    n.probes = 1
                    self._set(n, Nud.PROBE, now, "delay expired", now + p.retrans_time)
                    self.owner.solicit(n.ip, n.mac, now)
            elif st is Nud.PROBE:
                if n.probes >= p.ucast_solicit:
                    self._fail(n, now)
                else:
                    n.probes += 1
                    self._set(n, Nud.PROBE, now, "retry", now + p.retrans_time)
                    self._count(f"{self.layer}.retries")
                    self.owner.solicit(n.ip, n.mac, now)
            elif st is Nud.STALE or st is Nud.FAILED:
                # garbage collection of unused entries, as Linux: only in a big table
                if len(self.entries) <= p.gc_thresh1:
                    n.deadline = None
                elif n.used + p.gc_stale_time <= now:
                    self.forget(n.ip)
                else:
                    self._arm(n, n.used + p.gc_stale_time)

    def _fail(self, n: Neighbor, now: float) -> None:
        n.mac = None
        self._set(n, Nud.FAILED, now, "no reply", now + self.params.gc_stale_time)
        dropped = list(n.queue)
        n.queue.clear()
        if dropped:
            self._count(f"drop.{self.layer}.unresolved", len(dropped))
        self.owner.failed(n.ip, dropped, now)

    # -- printing -------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Neighbor]:
        return iter(sorted(self.entries.values(), key=lambda n: n.ip))

    def __len__(self) -> int:
        return len(self.entries)


class _WithCaches(Protocol):
    """An interface as the neighbour table sees it."""

    name: str
    arp: NeighborCache
    nd: NeighborCache


class NeighborTable:
    """``str()`` prints all neighbour caches like ``ip neigh``; iterable as (iface, Neighbor)."""

    def __init__(self, interfaces: Sequence[_WithCaches]) -> None:
        self.interfaces = interfaces

    def __iter__(self) -> Iterator[tuple[_WithCaches, Neighbor]]:
        for iface in self.interfaces:
            for n in iface.arp:
                yield iface, n
            for n in iface.nd:
                yield iface, n

    def lookup(self, addr: str) -> Neighbor | None:
        a = ipaddress.ip_address(addr).packed
        for iface in self.interfaces:
            n = (iface.arp if len(a) == 4 else iface.nd).lookup(a)
            if n is not None:
                return n
        return None

    def __str__(self) -> str:
        return "\n".join(n.line(iface.name) for iface, n in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)
