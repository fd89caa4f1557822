"""Neighbor Discovery (RFC 4861) and address autoconfiguration (RFC 4862), sans-IO.

* address resolution: Neighbor Solicitation to the solicited-node group, Neighbor Advertisement
  back; the cache states are the shared :class:`~stacklab.stack.neighbor.NeighborCache`;
* Duplicate Address Detection on every address added: one NS from ``::`` after which the
  address is preferred. Addresses are usable while tentative (optimistic DAD, RFC 4429) so a
  simulation can send at t=0; a duplicate found by DAD removes the address and is counted;
* routers: Router Advertisements (periodic, and in answer to Router Solicitations) carrying the
  prefixes configured with :meth:`Ndp.advertise`, their MTU and a router lifetime;
* hosts: RAs install a default route via the router's link-local address (proto ``ra``, with
  the router lifetime), on-link prefixes, SLAAC addresses (prefix + EUI-64) and the link MTU.
  A host without a global address on an interface sends up to 3 Router Solicitations.
  Prefix options obey RFC 4861 §6.3.4 and RFC 4862 §5.5.3: preferred > valid is ignored, a
  valid lifetime of 0 creates nothing, an address's valid lifetime is never cut below two hours
  by an RA (the "two-hour rule", e), addresses are deprecated when their preferred lifetime ends
  and removed with their valid lifetime. A flood of RAs is bounded: at most ``max_addresses``
  addresses per interface (Linux ``net.ipv6.conf.<if>.max_addresses``, 16) and
  ``max_prefixes`` on-link prefixes learned per interface (FreeBSD's
  ``net.inet6.ip6.maxifprefixes``, 16: Linux has no such cap and relies on ``max_addresses``;
  its prefix routes are unbounded), the rest counted and ignored.

Every received NDP message is validated as §7.1.1/§7.1.2/§6.1.2 require (hop limit 255, code 0,
link-local source for RAs, no SLLA from ``::``); invalid ones are dropped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from stacklab.wire.addr import ip6_bytes, ip_str, is_link_local, multicast_mac, solicited_node
from stacklab.wire.ethernet import ETH_P_IPV6, build_ethernet
from stacklab.wire.icmpv6 import (
    NA_OVERRIDE,
    NA_ROUTER,
    NA_SOLICITED,
    NEIGHBOR_ADVERT,
    NEIGHBOR_SOLICIT,
    ROUTER_ADVERT,
    ROUTER_SOLICIT,
    Icmpv6View,
    MtuOpt,
    PrefixInfoOpt,
    RdnssOpt,
    SourceLinkAddrOpt,
    TargetLinkAddrOpt,
    build_icmpv6,
)
from stacklab.wire.ipv6 import build_ipv6

from .interface import ALL_NODES, ALL_ROUTERS
from .route import RA, Route

if TYPE_CHECKING:
    from .context import HostContext, RxInfo
    from .interface import Interface

UNSPECIFIED = bytes(16)
INFINITY = 0xFFFFFFFF
TWO_HOURS = 7200  # RFC 4862 §5.5.3 e
_USABLE = ("tentative", "preferred")  # the states a preferred lifetime's end deprecates


def eui64_address(prefix: bytes, mac: bytes) -> bytes:
    """``prefix`` (first 8 bytes used) + modified EUI-64 interface id of ``mac`` (RFC 4291)."""
    iid = bytes([mac[0] ^ 0x02, mac[1], mac[2], 0xFF, 0xFE, mac[3], mac[4], mac[5]])
    return prefix[:8] + iid


class NdResolver:
    """The neighbour-cache owner for IPv6 on one interface."""

    __slots__ = ("host", "ndp", "iface")
    iface: Interface  # set by the host once the interface exists

    def __init__(self, host: HostContext, ndp: Ndp) -> None:
        self.host = host
        self.ndp = ndp

    def solicit(self, ip: bytes, mac: bytes | None, now: float) -> None:
        iface = self.iface
        src = iface.link_local
        if src is None:
            return
        dst = solicited_node(ip) if mac is None else ip
        body = bytes(4) + ip + SourceLinkAddrOpt(iface.mac).encode()
        self.ndp.send(iface, src, dst, NEIGHBOR_SOLICIT, body, mac)
        self.host.counters["ndp.tx.ns"] += 1
        self.host.trace(now, "ndp", "tx", msg="NS", target=ip_str(ip))

    def transmit(self, mac: bytes, packet: bytes) -> None:
        self.host.send_frame(self.iface.index,
                             build_ethernet(mac, self.iface.mac, ETH_P_IPV6, packet))

    def failed(self, ip: bytes, packets: list[bytes | bytearray], now: float) -> None:
        self.host.trace(now, "ndp", "drop", reason="unresolved", ip=ip_str(ip),
                        packets=len(packets))
        self.host.resolution_failed(self.iface, ip, packets, now)


@dataclass(slots=True)
class _Dad:
    iface: Interface
    addr: bytes
    left: int  # NS still to send
    deadline: float | None  # None: start at the next timer call


@dataclass(slots=True)
class _Advert:
    prefix: bytes
    plen: int
    autonomous: bool = True
    valid: int = 2592000
    preferred: int = 604800


class Ndp:
    def __init__(self, host: HostContext) -> None:
        self.host = host
        self.dad_transmits = 1
        self.retrans_time = 1.0
        self._dad: list[_Dad] = []
        # router side
        self.adverts: dict[int, list[_Advert]] = {}
        self.router_lifetime = 1800
        self.ra_interval = 200.0  # MaxRtrAdvInterval is 600 s; Linux radvd-like default
        self.ra_mtu = True
        self.rdnss: dict[int, list[bytes]] = {}  # ifindex -> DNS servers announced (RFC 8106)
        self._ra_next: dict[int, float | None] = {}
        # host side
        self.accept_ra = True
        self.rs_max = 3
        self.rs_interval = 4.0
        self._rs: dict[int, tuple[int, float | None]] = {}  # ifindex -> (sent, deadline)
        self.max_addresses = 16  # net.ipv6.conf.<if>.max_addresses: no SLAAC past this many
        self.max_prefixes = 16  # FreeBSD net.inet6.ip6.maxifprefixes: RA on-link prefixes
        # RFC 4861's Prefix List: ifindex -> {(prefix, plen): expiry (None: infinite)}
        self._prefixes: dict[int, dict[tuple[bytes, int], float | None]] = {}
        self._expiry: float | None = None  # the earliest RA-learned lifetime to end
        self._rdnss_until: dict[int, float] = {}  # ifindex -> when its RDNSS servers expire
        # get_timer's answer, valid until one of the deadlines above changes (_changed()):
        # the driver asks after every frame, the deadlines move a few times a minute
        self._timer: float | None = None
        self._timer_valid = False

    # -- sending -------------------------------------------------------------------------------
    def send(self, iface: Interface, src: bytes, dst: bytes, icmp_type: int, body: bytes,
             mac: bytes | None = None) -> None:
        msg = build_icmpv6(src, dst, icmp_type, 0, body)
        pkt = build_ipv6(src, dst, 58, msg, 255)
        if mac is None:
            mac = multicast_mac(dst) if dst[0] == 0xFF else None
        if mac is None:
            self.host.ipv6_output(iface, dst, pkt, 0.0)
            return
        self.host.counters["ipv6.tx.packets"] += 1
        self.host.send_frame(iface.index, build_ethernet(mac, iface.mac, ETH_P_IPV6, pkt))

    def send_na(self, iface: Interface, target: bytes, dst: bytes, solicited: bool,
                mac: bytes | None, now: float) -> None:
        flags = NA_OVERRIDE | (NA_SOLICITED if solicited else 0)
        if self.host.forwarding:
            flags |= NA_ROUTER
        body = bytes([flags, 0, 0, 0]) + target + TargetLinkAddrOpt(iface.mac).encode()
        src = target
        if mac is None and dst[0] != 0xFF:
            # no link-layer address for the soliciting node yet: go through the cache
            msg = build_icmpv6(src, dst, NEIGHBOR_ADVERT, 0, body)
            self.host.ipv6_output(iface, dst, build_ipv6(src, dst, 58, msg, 255), now)
        else:
            self.send(iface, src, dst, NEIGHBOR_ADVERT, body, mac)
        self.host.counters["ndp.tx.na"] += 1

    # -- DAD -----------------------------------------------------------------------------------
    def start_dad(self, iface: Interface, addr: bytes) -> None:
        if self.dad_transmits <= 0:
            # RFC 4862 §5.4: no DAD, the address is assigned at once (not left tentative, where
            # one spoofed NA or DAD NS for it would make it "duplicate" and remove it)
            iface.mark_preferred(addr)
            return
        self._dad.append(_Dad(iface, addr, self.dad_transmits, None))
        self._timer_valid = False

    def _dad_failed(self, iface: Interface, addr: bytes, now: float) -> None:
        h = self.host
        h.counters["ndp.dad_failed"] += 1
        h.trace(now, "ndp", "drop", reason="duplicate address", addr=ip_str(addr))
        self._dad = [d for d in self._dad if d.addr != addr]
        self._timer_valid = False
        h.address_duplicate(iface, addr)

    # -- router advertisements ------------------------------------------------------------------
    def advertise(self, ifindex: int, prefix: str | None = None, *, autonomous: bool = True,
                  dns: list[str] | None = None) -> None:
        """Make this (router) node send RAs on ``ifindex``, announcing ``prefix`` if given
        (default: the interface's global /64 prefixes), itself as default router and ``dns``
        as recursive DNS servers (an RDNSS option, RFC 8106)."""
        from .route import parse_prefix

        if dns:
            self.rdnss[ifindex] = [ip6_bytes(a) for a in dns]
        ads = self.adverts.setdefault(ifindex, [])
        if prefix is not None:
            p, n = parse_prefix(prefix)
            ads.append(_Advert(p, n, autonomous))
        else:
            iface = self.host.interfaces[ifindex]
            for a in iface.v6:
                if not is_link_local(a.addr):
                    net = int.from_bytes(a.addr, "big") >> (128 - a.plen) << (128 - a.plen)
                    ads.append(_Advert(net.to_bytes(16, "big"), a.plen, autonomous))
        self._ra_next[ifindex] = None  # send at the next timer
        self._timer_valid = False
        self.host.request_wake()

    def _send_ra(self, iface: Interface, now: float) -> None:
        src = iface.link_local
        if src is None:
            return
        body = bytearray([64, 0]) + self.router_lifetime.to_bytes(2, "big") + bytes(8)
        body += SourceLinkAddrOpt(iface.mac).encode()
        if self.ra_mtu:
            body += MtuOpt(iface.mtu).encode()
        for ad in self.adverts.get(iface.index, ()):
            body += PrefixInfoOpt(ad.plen, True, ad.autonomous, ad.valid, ad.preferred,
                                  ad.prefix).encode()
        servers = self.rdnss.get(iface.index)
        if servers:
            # RFC 8106 §5.1: a lifetime of at least MaxRtrAdvInterval; radvd uses 3 times it
            body += RdnssOpt(int(3 * self.ra_interval), tuple(servers)).encode()
        self.send(iface, src, ALL_NODES, ROUTER_ADVERT, bytes(body))
        self.host.counters["ndp.tx.ra"] += 1
        self.host.trace(now, "ndp", "tx", msg="RA", ifindex=iface.index)

    def _send_rs(self, iface: Interface, now: float) -> None:
        src = iface.link_local
        if src is None:
            return
        body = bytes(4) + SourceLinkAddrOpt(iface.mac).encode()
        self.send(iface, src, ALL_ROUTERS, ROUTER_SOLICIT, body)
        self.host.counters["ndp.tx.rs"] += 1

    # -- timers --------------------------------------------------------------------------------
    def get_timer(self) -> float | None:
        if self._timer_valid:
            return self._timer
        best: float | None = None
        for d in self._dad:
            t = d.deadline if d.deadline is not None else 0.0
            if best is None or t < best:
                best = t
        for ra in self._ra_next.values():
            ra = 0.0 if ra is None else ra
            if best is None or ra < best:
                best = ra
        for _sent, rs in self._rs.values():
            if rs is not None and (best is None or rs < best):
                best = rs
        if self._expiry is not None and (best is None or self._expiry < best):
            best = self._expiry
        self._timer = best
        self._timer_valid = True
        return best

    def handle_timer(self, now: float) -> None:
        h = self.host
        for d in list(self._dad):
            if d.deadline is not None and d.deadline > now:
                continue
            if d.left > 0:
                d.left -= 1
                d.deadline = now + self.retrans_time
                body = bytes(4) + d.addr
                self.send(d.iface, UNSPECIFIED, solicited_node(d.addr), NEIGHBOR_SOLICIT, body)
                h.counters["ndp.tx.dad_ns"] += 1
            else:
                self._dad.remove(d)
                d.iface.mark_preferred(d.addr)
                h.trace(now, "ndp", "state", addr=ip_str(d.addr), old="tentative",
                        new="preferred", cause="DAD")
        for ifindex, t in list(self._ra_next.items()):
            if t is None or t <= now:
                self._send_ra(h.interfaces[ifindex], now)
                jitter = h.rng.uniform(0.75, 1.0)
                self._ra_next[ifindex] = now + self.ra_interval * jitter
        for ifindex, (sent, t) in list(self._rs.items()):
            if t is not None and t <= now:
                self._send_rs(h.interfaces[ifindex], now)
                sent += 1
                self._rs[ifindex] = (sent, now + self.rs_interval if sent < self.rs_max else None)
        if self._expiry is not None and self._expiry <= now:
            self._expire(now)
        self._timer_valid = False

    # -- RA-learned state: lifetimes ------------------------------------------------------------
    def _expire(self, now: float) -> None:
        """End what the RAs' lifetimes say has ended: the default route, on-link prefixes,
        SLAAC addresses (deprecated at the preferred lifetime, removed at the valid one)."""
        h = self.host
        default = h.routes.get(UNSPECIFIED, 0)
        if default is not None and default.proto == RA and default.expires is not None \
                and default.expires <= now:
            h.routes.remove(UNSPECIFIED, 0)
            h.trace(now, "ndp", "state", route="default", cause="router lifetime expired")
        for prefixes in self._prefixes.values():
            for (prefix, plen), exp in list(prefixes.items()):
                if exp is not None and exp <= now:
                    del prefixes[(prefix, plen)]
                    self._remove_prefix_route(prefix, plen)
                    h.trace(now, "ndp", "state", route=f"{ip_str(prefix)}/{plen}",
                            cause="valid lifetime expired")
        for ifindex, until in list(self._rdnss_until.items()):
            if until <= now:
                del self._rdnss_until[ifindex]
                h.resolv.forget(f"ra:{h.interfaces[ifindex].name}")
                h.trace(now, "ndp", "state", rdnss="expired", ifindex=ifindex)
        for iface in h.interfaces:
            for a in list(iface.v6):
                if a.valid_until is not None and a.valid_until <= now:
                    h.address_expired(iface, a.addr)
                    h.trace(now, "ndp", "state", addr=ip_str(a.addr), cause="valid lifetime")
                elif (a.preferred_until is not None and a.preferred_until <= now
                      and a.state in _USABLE):
                    h.trace(now, "ndp", "state", addr=ip_str(a.addr), old=a.state,
                            new="deprecated", cause="preferred lifetime")
                    a.state = "deprecated"
                    h.addr_gen += 1
        self._rearm()

    def _rearm(self) -> None:
        """The earliest lifetime still to end (a handful per interface: bounded by the caps)."""
        h = self.host
        times: list[float] = []
        default = h.routes.get(UNSPECIFIED, 0)
        if default is not None and default.proto == RA and default.expires is not None:
            times.append(default.expires)
        for prefixes in self._prefixes.values():
            times += [t for t in prefixes.values() if t is not None]
        times += self._rdnss_until.values()
        for iface in h.interfaces:
            for a in iface.v6:
                if a.valid_until is not None:
                    times.append(a.valid_until)
                if a.preferred_until is not None and a.state in _USABLE:
                    times.append(a.preferred_until)
        self._expiry = min(times) if times else None
        self._timer_valid = False

    def _remove_prefix_route(self, prefix: bytes, plen: int) -> None:
        r = self.host.routes.get(prefix, plen)
        if r is not None and r.proto == RA:
            self.host.routes.remove(prefix, plen)

    def maybe_solicit_routers(self, iface: Interface, now: float) -> None:
        if (self.accept_ra and not self.host.forwarding and iface.index not in self._rs
                and not iface.has_global_v6()):
            self._rs[iface.index] = (0, now)
            self._timer_valid = False

    # -- receive -------------------------------------------------------------------------------
    def receive(self, info: RxInfo, src: bytes, dst: bytes, m: Icmpv6View, now: float) -> None:
        h = self.host
        c = h.counters
        iface = h.interfaces[info.ifindex]
        t = m.type
        if info.ttl != 255 or m.code != 0:
            c["drop.ndp.invalid"] += 1  # off-link forgery (RFC 4861 §6.1, §7.1)
            return
        n = len(m.buf)
        if t == NEIGHBOR_SOLICIT:
            if n < 24 or m.target[0] == 0xFF:
                c["drop.ndp.invalid"] += 1
                return
            target = m.target
            slla = m.source_lladdr()
            if not self._lladdr_ok(slla):
                return
            if src == UNSPECIFIED:
                if slla is not None or dst[:13] != solicited_node(target)[:13]:
                    c["drop.ndp.invalid"] += 1
                    return
                if iface.is_tentative(target):
                    self._dad_failed(iface, target, now)  # someone else is trying it too
                elif iface.has_v6(target):
                    self.send_na(iface, target, ALL_NODES, False, None, now)
                return
            if not iface.has_v6(target):
                c["ndp.rx.ns_not_ours"] += 1
                return
            if slla is not None:
                iface.nd.update(src, slla, now, solicited=False)
            self.send_na(iface, target, src, True, slla, now)
        elif t == NEIGHBOR_ADVERT:
            if n < 24 or m.target[0] == 0xFF or (m.solicited and dst[0] == 0xFF):
                c["drop.ndp.invalid"] += 1
                return
            target = m.target
            if iface.has_v6(target):
                if iface.is_tentative(target):
                    self._dad_failed(iface, target, now)
                else:
                    c["ndp.conflicts"] += 1
                return
            tlla = m.target_lladdr()
            if not self._lladdr_ok(tlla):
                return
            if tlla is None:
                n_ = iface.nd.lookup(target)
                if n_ is not None and n_.mac is not None and m.solicited:
                    iface.nd.confirm(target, now)
                return
            iface.nd.update(target, tlla, now, solicited=m.solicited, override=m.override,
                            create=False, is_router=m.router)
        elif t == ROUTER_SOLICIT:
            if not h.forwarding or info.ifindex not in self.adverts:
                return
            slla = m.source_lladdr()
            if not self._lladdr_ok(slla):
                return
            if src == UNSPECIFIED and slla is not None:
                c["drop.ndp.invalid"] += 1
                return
            if slla is not None:
                iface.nd.update(src, slla, now, solicited=False)
            self._send_ra(iface, now)
        elif t == ROUTER_ADVERT:
            if not is_link_local(src) or n < 16:
                c["drop.ndp.invalid"] += 1
                return
            if h.forwarding or not self.accept_ra:
                return
            if not self._lladdr_ok(m.source_lladdr()):
                return
            self._accept_ra(iface, src, m, now)

    def _lladdr_ok(self, lladdr: bytes | None) -> bool:
        """A link-layer address option must carry an Ethernet address (RFC 4861 §4.6.1: one
        8-byte unit on Ethernet); Linux drops the whole message otherwise."""
        if lladdr is None or len(lladdr) == 6:
            return True
        self.host.counters["drop.ndp.lladdr_length"] += 1
        return False

    def _accept_ra(self, iface: Interface, src: bytes, m: Icmpv6View, now: float) -> None:
        h = self.host
        h.counters["ndp.rx.ra"] += 1
        if iface.index in self._rs:
            self._rs[iface.index] = (self.rs_max, None)
            self._timer_valid = False
        if m.cur_hop_limit:
            h.hop_limit6 = m.cur_hop_limit
        opts = m.ndp_options()
        for o in opts:
            if isinstance(o, SourceLinkAddrOpt):
                iface.nd.update(src, o.lladdr, now, solicited=False, is_router=True)
            elif isinstance(o, MtuOpt) and 1280 <= o.mtu <= iface.port.mtu:
                iface.ra_mtu = o.mtu
            elif isinstance(o, RdnssOpt):
                self._learn_rdnss(iface, o, now)
        lifetime = m.router_lifetime
        default = h.routes.get(UNSPECIFIED, 0)
        if (default is not None and default.proto == RA and default.via == src
                and default.ifindex == iface.index):
            h.routes.remove(UNSPECIFIED, 0)
        if lifetime:
            h.routes.add(Route(UNSPECIFIED, 0, src, iface.index, RA, expires=now + lifetime))
        for o in opts:
            if not isinstance(o, PrefixInfoOpt):
                continue
            if o.prefix_len > 128:  # Linux: "prefix length > 128", the option is ignored
                h.counters["drop.ndp.prefix_length"] += 1
                continue
            if is_link_local(o.prefix) or o.prefix[0] == 0xFF:  # RFC 4862 §5.5.3 b, Linux
                h.counters["drop.ndp.prefix_scope"] += 1
                continue
            if o.valid_lifetime < o.preferred_lifetime:  # RFC 4862 §5.5.3 c
                h.counters["drop.ndp.prefix_lifetime"] += 1
                continue
            if o.on_link:
                self._on_link_prefix(iface, o, now)
            if o.autonomous and o.prefix_len == 64:
                self._slaac(iface, o, now)
        self._rearm()

    def _learn_rdnss(self, iface: Interface, o: RdnssOpt, now: float) -> None:
        """RFC 8106 §5.3.1: the servers replace what this interface's RAs said; lifetime 0
        removes them, otherwise they expire with it."""
        source = f"ra:{iface.name}"
        if o.lifetime == 0:
            self.host.resolv.forget(source)
            self._rdnss_until.pop(iface.index, None)
            return
        self.host.resolv.learn(source, [ip_str(a) for a in o.servers], [])
        if o.lifetime != 0xFFFFFFFF:
            self._rdnss_until[iface.index] = now + o.lifetime
        self.host.counters["ndp.rdnss"] += 1

    def _on_link_prefix(self, iface: Interface, o: PrefixInfoOpt, now: float) -> None:
        """RFC 4861 §6.3.4: a new prefix with a non-zero valid lifetime joins the Prefix List
        (while it has room), a known one gets the new lifetime, and 0 times it out at once."""
        h = self.host
        prefixes = self._prefixes.setdefault(iface.index, {})
        key = (int.from_bytes(o.prefix, "big") >> (128 - o.prefix_len) << (128 - o.prefix_len)
               ).to_bytes(16, "big"), o.prefix_len
        if o.valid_lifetime == 0:
            if key in prefixes:
                del prefixes[key]
                self._remove_prefix_route(*key)
            return
        existing = h.routes.get(*key)
        if existing is not None and existing.proto != RA:
            return  # configured by hand: not the RA's to change
        if key not in prefixes and len(prefixes) >= self.max_prefixes:
            h.counters["drop.ndp.max_prefixes"] += 1
            return
        exp = None if o.valid_lifetime == INFINITY else now + o.valid_lifetime
        prefixes[key] = exp
        h.routes.add(Route(key[0], key[1], None, iface.index, RA, expires=exp))

    def _slaac(self, iface: Interface, o: PrefixInfoOpt, now: float) -> None:
        """RFC 4862 §5.5.3 d/e: form an address for a new prefix (valid lifetime not 0, room
        under ``max_addresses``), or update a known one's lifetimes by the two-hour rule."""
        h = self.host
        addr = eui64_address(o.prefix, iface.mac)
        valid, preferred = o.valid_lifetime, o.preferred_lifetime
        a = next((x for x in iface.v6 if x.addr == addr and x.state != "duplicate"), None)
        if a is None:
            if not valid:
                return
            if len(iface.v6) >= self.max_addresses:
                h.counters["drop.ndp.max_addresses"] += 1
                return
            h.add_address(iface.index, f"{ip_str(addr)}/64", route=False)
            a = next((x for x in iface.v6 if x.addr == addr), None)
            if a is None:
                return  # the link cannot carry IPv6 (the host counted it)
            a.valid_until = None if valid == INFINITY else now + valid
            h.trace(now, "ndp", "state", addr=ip_str(addr), cause="SLAAC")
        else:
            remaining = None if a.valid_until is None else a.valid_until - now
            if valid == INFINITY:
                a.valid_until = None
            elif valid > TWO_HOURS or (remaining is not None and valid > remaining):
                a.valid_until = now + valid
            elif remaining is None or remaining > TWO_HOURS:
                a.valid_until = now + TWO_HOURS
            # else: two hours or less remain: the RA is ignored (an attacker's valid=0)
        a.preferred_until = None if preferred == INFINITY else now + preferred
        if a.state == "deprecated" and preferred:
            a.state = "preferred"
            h.addr_gen += 1
