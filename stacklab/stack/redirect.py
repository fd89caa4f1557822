"""ICMP Redirect (RFC 792, RFC 1122 §3.2.2.2, RFC 1812 §5.2.7.2) as Linux sends and honours it.

**Sending** (a router, ``net.ipv4.conf.all.send_redirects = 1``): a packet forwarded back out of
the interface it came in by is still forwarded, and its source is told the better first hop
with a Redirect for Host (type 5 code 1, the gateway field the next hop), from the router's
address on that link. Not for source-routed packets (RFC 1812 §5.2.7.2). Linux's backoff per
source host (``ip_rt_send_redirect``): after a redirect number *n* the next waits
``redirect_load << n`` (20 ms, 40 ms...), at most ``redirect_number`` (9) are sent, and the count
starts again after ``redirect_silence`` (20.48 s) without any.

**Honouring** (a host, ``net.ipv4.conf.all.accept_redirects = 1``; 0 on a router, as Linux
sets it when forwarding is turned on): a redirect is believed only when it comes from the
current first hop to the quoted destination, quotes a packet from one of our addresses, and
names a unicast gateway on the link it arrived on (not ours); then the destination is reached
through that gateway — a host route ``proto redirect`` — for 300 s (``ip_rt_gc_timeout``,
Linux's next-hop exception lifetime). Every rejection is counted
(``icmp.redirect.ignored.<why>``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from stacklab.wire.addr import ip_str
from stacklab.wire.icmpv4 import REDIRECT, build_icmpv4
from stacklab.wire.proto import PROTO_ICMP

from .route import Route

if TYPE_CHECKING:
    from stacklab.wire.icmpv4 import IcmpView

    from .context import HostContext
    from .interface import Interface

__all__ = ["REDIRECT_ROUTE", "Redirects"]

REDIRECT_ROUTE = "redirect"  # the routes a redirect made (`ip route`'s proto)
REDIRECT_LOAD = 0.02  # net.ipv4.route.redirect_load (HZ/50)
REDIRECT_NUMBER = 9  # net.ipv4.route.redirect_number
REDIRECT_SILENCE = REDIRECT_LOAD * (1 << (REDIRECT_NUMBER + 1))  # redirect_silence, 20.48 s
EXPIRES = 300.0  # ip_rt_gc_timeout: how long a learned redirect lives
_HOST_REDIRECT = 1
_SOURCE_ROUTES = (0x83, 0x89)  # IPv4 options LSRR, SSRR


def _on_link(iface: Interface, a: bytes) -> bool:
    n = int.from_bytes(a, "big")
    return any(int.from_bytes(addr, "big") >> (32 - plen) == n >> (32 - plen)
               for addr, plen in iface.v4)


class Redirects:
    """A host's IPv4 redirects, both directions (see the module docstring)."""

    def __init__(self, host: HostContext) -> None:
        self.host = host
        self.send_redirects = True  # net.ipv4.conf.all.send_redirects
        self.accept_redirects = not host.forwarding  # net.ipv4.conf.all.accept_redirects
        self._peers: OrderedDict[bytes, tuple[float, int]] = OrderedDict()  # last, number
        self.learned: dict[bytes, float] = {}  # destination -> expiry
        host.add_timer_source(self)

    # -- sending (Ipv4.forward calls it) ---------------------------------------------------------
    def forwarded(self, iface: Interface, out: Interface, packet: bytes | memoryview,
                  nexthop: bytes, now: float) -> None:
        """A packet from ``iface`` is leaving by ``out`` for ``nexthop``."""
        if out is not iface or not self.send_redirects:
            return
        h = self.host
        c = h.counters
        hl = (packet[0] & 0x0F) * 4
        if hl > 20 and any(b in _SOURCE_ROUTES for b in bytes(packet[20:hl])):
            return
        src = bytes(packet[12:16])
        last, n = self._peers.get(src, (-1e9, 0))
        if now - last > REDIRECT_SILENCE:
            n = 0
        if n >= REDIRECT_NUMBER:
            self._peers[src] = (now, n)  # Linux: each one restarts the silence
            c["icmp.redirect.suppressed"] += 1
            return
        if n and now < last + REDIRECT_LOAD * (1 << n):
            c["icmp.redirect.suppressed"] += 1
            return
        self._peers[src] = (now, n + 1)
        self._peers.move_to_end(src)
        if len(self._peers) > 1024:
            self._peers.popitem(last=False)
        me = iface.v4_source_for(src)
        msg = build_icmpv4(REDIRECT, _HOST_REDIRECT, nexthop, packet[:576 - 28])
        try:
            h.ip_send(me, src, PROTO_ICMP, msg, now)
        except OSError:
            return
        c["icmp.tx.5/1"] += 1
        h.trace(now, "icmp", "tx", type=5, code=1, to=ip_str(src), gateway=ip_str(nexthop),
                dst=ip_str(bytes(packet[16:20])))

    # -- honouring (Icmp.receive4 calls it) ------------------------------------------------------
    def received(self, src: bytes, m: IcmpView, ifindex: int, now: float) -> None:
        h = self.host
        c = h.counters

        def ignore(why: str) -> None:
            c[f"icmp.redirect.ignored.{why}"] += 1
            h.trace(now, "icmp", "drop", reason=f"redirect: {why}", sender=ip_str(src))

        if not self.accept_redirects:
            return ignore("disabled")
        q = m.quoted
        if len(q) < 20 or q[0] >> 4 != 4:
            return ignore("quote")
        qsrc, qdst = bytes(q[12:16]), bytes(q[16:20])
        if not h.is_local4(qsrc):
            return ignore("not_our_packet")
        gw = m.gateway
        route = h.routes.lookup(qdst)
        if route is None:
            return ignore("no_route")
        iface, nexthop = h.route_out(route, qdst)
        if iface is None or iface.index != ifindex or nexthop != src:
            return ignore("not_from_gateway")  # RFC 1122 §3.2.2.2
        if gw == nexthop:
            return ignore("same_gateway")
        if h.is_local4(gw) or h.is_bcast4(gw) or gw[0] >= 224 or gw[0] in (0, 127) \
                or not _on_link(iface, gw):
            return ignore("bad_gateway")
        h.routes.add(Route(qdst, 32, gw, iface.index, REDIRECT_ROUTE))
        self.learned[qdst] = now + EXPIRES
        c["icmp.redirect.accepted"] += 1
        h.trace(now, "icmp", "redirect", dst=ip_str(qdst), gateway=ip_str(gw),
                old=ip_str(nexthop))
        h.request_wake()

    # -- expiry ----------------------------------------------------------------------------------
    def get_timer(self) -> float | None:
        return min(self.learned.values()) if self.learned else None

    def handle_timer(self, now: float) -> None:
        for dst, t in list(self.learned.items()):
            if t <= now:
                del self.learned[dst]
                r = self.host.routes.get(dst, 32)
                if r is not None and r.proto == REDIRECT_ROUTE:
                    self.host.routes.remove(dst, 32)
                self.host.counters["icmp.redirect.expired"] += 1
