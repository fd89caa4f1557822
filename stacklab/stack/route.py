"""The routing table of a node: longest-prefix match over connected, static and RA-learned routes.

One table holds both families (keyed by address length). Lookup walks the prefix lengths present
in the table from the longest down and probes a dict per length, so a lookup costs a handful of
dict probes whatever the number of routes. ``str(table)`` prints it like ``ip route`` /
``ip -6 route``.

A route may carry Linux's per-route metrics (:class:`RouteMetrics`, ``ip route ... advmss 600 mtu
lock 640 initcwnd 11``): the MTU of the path (``lock``: not lowered by ICMP, RFC 1191 messages are
ignored for it, as Linux's locked ``RTAX_MTU``), the MSS TCP advertises, TCP's initial congestion
window (segments) and its minimum RTO (Linux's ``initrwnd``, ``quickack`` and the others are not
modelled: :func:`parse_metrics` leaves them with the other words). TCP reads them for the route to
its peer (``stack/tcp/route_metrics.py``); :func:`parse_metrics` reads ``ip route``'s words.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from stacklab.wire.addr import ip_str

# Route kinds, as `ip route` calls their origin (`proto ...`).
CONNECTED = "kernel"
STATIC = "static"
RA = "ra"


@dataclass(frozen=True, slots=True)
class RouteMetrics:
    """Linux's route metrics (``RTAX_*``); None: not set (the defaults apply)."""

    mtu: int | None = None  # RTAX_MTU: the path MTU, at most the interface's
    mtu_lock: bool = False  # "mtu lock N": ICMP cannot lower it
    advmss: int | None = None  # RTAX_ADVMSS: the MSS option TCP sends
    initcwnd: int | None = None  # RTAX_INITCWND: TCP's initial cwnd, segments
    rto_min: float | None = None  # RTAX_RTO_MIN: TCP's minimum RTO, seconds

    def words(self) -> list[str]:
        """As ``ip route`` prints them."""
        out: list[str] = []
        if self.mtu is not None:
            out += ["mtu", "lock", str(self.mtu)] if self.mtu_lock else ["mtu", str(self.mtu)]
        if self.advmss is not None:
            out += ["advmss", str(self.advmss)]
        if self.rto_min is not None:
            out += ["rto_min", f"{self.rto_min * 1000:g}ms"]
        if self.initcwnd is not None:
            out += ["initcwnd", str(self.initcwnd)]
        return out


NO_METRICS = RouteMetrics()
METRIC_NAMES = ("mtu", "advmss", "initcwnd", "rto_min")


def _metric_time(text: str) -> float:
    """``rto_min``'s value as ``ip route`` takes it: ``200ms``, ``1s``, bare milliseconds."""
    for suffix, scale in (("ms", 1e-3), ("msec", 1e-3), ("s", 1.0), ("sec", 1.0)):
        if text.endswith(suffix) and text[:-len(suffix)].replace(".", "", 1).isdigit():
            return float(text[:-len(suffix)]) * scale
    return int(text) / 1000


def parse_metrics(words: list[str]) -> tuple[RouteMetrics, list[str]]:
    """The metrics among ``ip route add/change`` words (``mtu lock 640 advmss 600``), and the
    words that are not metrics. ValueError for a metric without a valid value."""
    vals: dict[str, object] = {}
    rest: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w not in METRIC_NAMES:
            rest.append(w)
            i += 1
            continue
        lock = w == "mtu" and i + 1 < len(words) and words[i + 1] == "lock"
        j = i + 2 if lock else i + 1
        if j >= len(words):
            raise ValueError(f"route metric {w} without a value")
        v = words[j]
        try:
            if w == "rto_min":
                vals[w] = _metric_time(v)
            else:
                vals[w] = int(v)
        except ValueError:
            raise ValueError(f"route metric {w}: bad value {v!r}") from None
        if lock:
            vals["mtu_lock"] = True
        i = j + 1
    return RouteMetrics(**vals), rest  # type: ignore[arg-type]


@dataclass(slots=True)
class Route:
    """One route. ``via`` None means the destination is on-link (next hop = destination)."""

    prefix: bytes  # network address, host bits zero
    plen: int
    via: bytes | None = None
    ifindex: int | None = None
    proto: str = STATIC
    src: bytes | None = None  # preferred source (connected routes)
    expires: float | None = None  # RA-learned routes
    metrics: RouteMetrics = NO_METRICS  # Linux's per-route metrics (ip route ... advmss 600)

    @property
    def family(self) -> int:
        return 4 if len(self.prefix) == 4 else 6

    def dest_str(self) -> str:
        if self.plen == 0:
            return "default"
        return f"{ip_str(self.prefix)}/{self.plen}"

    def line(self, ifname: Callable[[int], str] = str) -> str:
        parts = [self.dest_str()]
        if self.via is not None:
            parts.append(f"via {ip_str(self.via)}")
        if self.ifindex is not None:
            parts.append(f"dev {ifname(self.ifindex)}")
        if self.proto != STATIC:
            parts.append(f"proto {self.proto}")
        if self.proto == CONNECTED and self.family == 4:
            parts.append("scope link")
        if self.src is not None and self.family == 4:
            parts.append(f"src {ip_str(self.src)}")
        if self.expires is not None:
            parts.append(f"expires {self.expires:.0f}")
        parts += self.metrics.words()
        return " ".join(parts)


def parse_prefix(text: str) -> tuple[bytes, int]:
    """``"10.0.1.0/24"`` / ``"fd00::/64"`` / ``"default"`` / ``"default6"`` → (network, plen).

    Host bits are cleared (as ``ip route`` does when given ``10.0.1.7/24``).
    """
    if text in ("default", "0.0.0.0/0"):
        return bytes(4), 0
    if text in ("default6", "::/0"):
        return bytes(16), 0
    net = ipaddress.ip_network(text, strict=False)
    return net.network_address.packed, net.prefixlen


def _mask(alen: int, plen: int) -> int:
    bits = alen * 8
    return ((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1)


class RoutingTable:
    """Routes of both families with longest-prefix-match lookup."""

    def __init__(self, ifname: Callable[[int], str] = str) -> None:
        self.ifname = ifname
        # per family (4 or 16 = address length): plen -> {network int -> Route}
        self._by_len: dict[int, dict[int, dict[int, Route]]] = {4: {}, 16: {}}
        # (plen, mask) pairs, longest first
        self._plens: dict[int, list[tuple[int, int]]] = {4: [], 16: []}
        self.gen = 0  # bumped by every change: the IP layers' destination caches check it

    # -- changes -------------------------------------------------------------------------------
    def add(self, route: Route) -> Route:
        alen = len(route.prefix)
        if not 0 <= route.plen <= alen * 8:
            # engines validate what they learn (an RA's /200 is dropped by NDP): this is a bug
            raise ValueError(f"prefix length {route.plen} out of range for a {alen}-byte "
                             "address")
        mask = _mask(alen, route.plen)
        net = int.from_bytes(route.prefix, "big") & mask
        route.prefix = net.to_bytes(alen, "big")
        table = self._by_len[alen]
        if route.plen not in table:
            table[route.plen] = {}
            self._plens[alen] = sorted(((p, _mask(alen, p)) for p in table), reverse=True)
        table[route.plen][net] = route
        self.gen += 1
        return route

    def remove(self, prefix: bytes, plen: int) -> Route | None:
        alen = len(prefix)
        table = self._by_len[alen]
        bucket = table.get(plen)
        if not bucket:
            return None
        route = bucket.pop(int.from_bytes(prefix, "big") & _mask(alen, plen), None)
        self.gen += 1
        if not bucket:
            del table[plen]
            self._plens[alen] = sorted(((p, _mask(alen, p)) for p in table), reverse=True)
        return route

    def remove_where(self, pred: Callable[[Route], bool]) -> list[Route]:
        gone = [r for r in self if pred(r)]
        for r in gone:
            self.remove(r.prefix, r.plen)
        return gone

    # -- lookup --------------------------------------------------------------------------------
    def lookup(self, dst: bytes) -> Route | None:
        """The most specific route covering ``dst``, or None."""
        alen = len(dst)
        table = self._by_len[alen]
        a = int.from_bytes(dst, "big")
        for plen, mask in self._plens[alen]:
            r = table[plen].get(a & mask)
            if r is not None:
                return r
        return None

    def get(self, prefix: bytes, plen: int) -> Route | None:
        bucket = self._by_len[len(prefix)].get(plen)
        if bucket is None:
            return None
        return bucket.get(int.from_bytes(prefix, "big") & _mask(len(prefix), plen))

    def __iter__(self) -> Iterator[Route]:
        for alen in (4, 16):
            for plen, _ in self._plens[alen]:
                yield from sorted(self._by_len[alen][plen].values(), key=lambda r: r.prefix)

    def __len__(self) -> int:
        return sum(len(b) for t in self._by_len.values() for b in t.values())

    def family(self, family: int) -> list[Route]:
        alen = 4 if family == 4 else 16
        return [r for r in self if len(r.prefix) == alen]

    def format(self, family: int | None = None) -> str:
        """``ip route``-like text: default first, then by prefix."""
        lines = []
        for fam in (4, 6) if family is None else (family,):
            routes = self.family(fam)
            routes.sort(key=lambda r: (r.plen != 0, r.prefix, -r.plen))
            lines += [r.line(self.ifname) for r in routes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        return f"<RoutingTable {len(self)} routes>"


DST_CACHE_MAX = 4096  # destinations remembered by a send path (cleared when full)


class DstCache:
    """The send path's destination cache (Linux's dst cache, small): ``dst`` → (interface, next
    hop, the route's preferred source) while the routing table and the host's addresses are as
    they were (``routes.gen`` and ``host.addr_gen`` count their changes). One per IP version."""

    __slots__ = ("host", "_entries", "_gen")

    def __init__(self, host: Any) -> None:
        self.host = host
        self._entries: dict[bytes, tuple[Any, bytes, bytes | None]] = {}
        self._gen = (-1, -1)

    def get(self, dst: bytes) -> tuple[Any, bytes, bytes | None] | None:
        """(interface, next hop, route source) for ``dst``; None when there is no usable route."""
        h = self.host
        gen = (h.routes.gen, h.addr_gen)
        entries = self._entries
        if gen != self._gen or len(entries) >= DST_CACHE_MAX:
            entries.clear()
            self._gen = gen
        entry = entries.get(dst)
        if entry is None:
            route = h.routes.lookup(dst)
            if route is None:
                return None
            out, hop = h.route_out(route, dst)
            if out is None:
                return None
            entry = entries[dst] = (out, hop, route.src)
        return entry
