"""A host: interfaces, addresses, neighbour caches, routing table, IP, ICMP, UDP — sans-IO.

The Host is a :class:`~stacklab.stack.node.Node`: the driver hands it frames
(``receive_frame(ifindex, frame, now)``), drains ``frames_to_send()``, and calls
``handle_timer(now)`` at ``get_timer()``. Everything the host owns (ARP/NDP caches, routes,
fragment stores, sockets) lives on the instance; two hosts never share state.

Hooks for transports (TCP plugs in here; see docs/DESIGN.md "Host hooks"):

* ``register_protocol(proto, handler)`` — ``handler(src, dst, payload, now, info)`` for each
  delivered (reassembled) datagram of IP protocol ``proto``; ``info`` is an
  :class:`RxInfo` (``family ifindex ttl tos bcast packet fragmented``);
* ``register_icmp_error(proto, handler)`` — ``handler(now, kind, code, mtu, quoted_src,
  quoted_dst, quoted_l4)`` for ICMP/ICMPv6 errors quoting ``proto``;
* ``ip_send(src, dst, proto, payload, now, *, df=None, ttl=None)`` (raises ``OSError``);
* ``source_address_for(dst)``, ``path_mtu(dst)``, ``learn_path_mtu(dst, mtu, now)``;
* ``add_timer_source(obj)`` — ``obj.get_timer()`` / ``obj.handle_timer(now)`` are folded into
  the host's own timers.

Applications do not use this class directly: :class:`stacklab.api.host.Host` adds the asyncio
API (``open_connection``, ``ping``...) and the driver's clock on top of it.
"""

from __future__ import annotations

import errno
import ipaddress
import random
import socket
from collections.abc import Callable
from functools import cached_property
from typing import Any

from stacklab.trace.events import Tracer
from stacklab.wire.addr import ZERO_MAC, ip_str, is_link_local, solicited_node
from stacklab.wire.errors import MalformedPacket
from stacklab.wire.ethernet import ETH_P_ARP, ETH_P_IPV4, ETH_P_IPV6, EthernetView, build_ethernet
from stacklab.wire.ipv6 import MIN_MTU
from stacklab.wire.proto import PROTO_ICMP, PROTO_ICMPV6, PROTO_IGMP, PROTO_UDP

from .acd import Acd
from .arp import ArpResolver, arp_receive, gratuitous_arp
from .context import ProtocolHandler, RxInfo, TimerSource, ViewHandler
from .dhcp import DhcpClients
from .dhcp6 import Dhcp6Clients
from .dns import ResolverConfig
from .icmp import UNREACHABLE, Icmp
from .igmp import Igmp, Mld
from .interface import ALL_ROUTERS, LO_IFINDEX, LO_MTU, LOOPBACK4, LOOPBACK6, Addr6, Interface
from .ipv4 import Ipv4
from .ipv6 import Ipv6
from .ndp import Ndp, NdResolver, eui64_address
from .neighbor import NeighborCache, NeighborParams, NeighborTable
from .node import Node, Port
from .pmtu import PathMtuCache, tcp_quote_check
from .redirect import Redirects
from .route import CONNECTED, NO_METRICS, Route, RouteMetrics, RoutingTable, parse_prefix
from .sysctl import HostSysctl
from .tcp.config import TcpConfig
from .tcp.layer import TcpLayer
from .udp import Udp

__all__ = ["Host"]

BROADCAST = b"\xff" * 6


class Host(Node):
    kind = "host"
    forwarding = False

    def __init__(self, name: str, *, rng: random.Random | None = None,
                 tracer: Tracer | None = None) -> None:
        super().__init__(name, tracer)
        self.rng = rng if rng is not None else random.Random(f"stacklab-host:{name}")
        self.interfaces: list[Interface] = []
        self.routes = RoutingTable(ifname=self._ifname)
        self.hosts: dict[str, list[str]] = {}
        self.local4: dict[bytes, Interface] = {}
        self.local6: dict[bytes, Interface] = {}
        self._bcast4_all: set[bytes] = set()
        # bumped when interfaces or addresses change: with routes.gen it validates the IP
        # layers' per-destination caches (route, interface, next hop, source)
        self.addr_gen = 0
        self.default_ttl = 64
        self.hop_limit6 = 64
        # the settings of every interface's ARP / NDP cache (net.ipv4/ipv6.neigh.default.*)
        self.arp_params = NeighborParams()
        self.nd_params = NeighborParams()
        self.protocols: dict[int, ProtocolHandler] = {}
        self.view_handlers: dict[int, ViewHandler] = {}
        # the segment size of the GRO/GSO aggregate being received (receive_frame's gso_size),
        # 0 outside such a frame: what TCP measures its receive MSS by (tcp_measure_rcv_mss)
        self.rx_gso_size = 0
        self.icmp_error_handlers: dict[int, Callable[..., None]] = {}
        self._timer_sources: list[TimerSource] = []
        # get_timer's questions as bound methods (reassembly, NDP, the timer sources), made
        # again after the sources change: no attribute walk per frame
        self._timer_getters: list[Callable[[], float | None]] | None = None
        # the earliest deadline of the interfaces' ARP/NDP caches, valid while not
        # _neigh_stale: a cache reports each change (timer_changed), so the timer the driver
        # asks for after every frame does not walk every cache of every interface
        self._neigh_at: float | None = None
        self._neigh_stale = False
        # sent to ourselves, not received yet: (packet, the interface it comes back in on)
        self._loop_q: list[tuple[bytes, Interface]] = []
        self._loop_at = 0.0  # when the first of them was sent
        # RFC 1191 / RFC 8201 path MTU per destination; entries age out on the host's timer
        self.pmtu = PathMtuCache(counters=self.counters)
        # one set of neighbour-table settings per family, shared by every interface's cache
        # (Linux's net.ipv4.neigh.default.* / net.ipv6.neigh.default.*)
        self.arp_params = NeighborParams()
        self.nd_params = NeighborParams()
        self.add_timer_source(self.pmtu)
        self.ipv4 = Ipv4(self)
        self.ipv6 = Ipv6(self)
        self.icmp = Icmp(self)
        self.ndp = Ndp(self)
        self.icmp.nd_receiver = self.ndp.receive
        self.igmp, self.mld = Igmp(self), Mld(self)  # multicast group membership
        self.acd = Acd(self)  # RFC 5227 conflict detection, RFC 3927 link-local (for DHCP)
        self.redirects = Redirects(self)  # ICMP redirects, sent (routers) and honoured (hosts)
        self.icmp.redirect_receiver = self.ipv4.redirects = self.redirects
        self.icmp.mld_receiver = self.mld.receive
        self.register_protocol(PROTO_IGMP, self.igmp.receive)
        self.register_protocol(PROTO_ICMP, self.icmp.receive4)
        self.register_protocol(PROTO_ICMPV6, self.icmp.receive6)
        self._make_transports(None)

    def _make_transports(self, tcp_config: TcpConfig | None) -> None:
        self.udp = Udp(self)
        self.register_protocol(PROTO_UDP, self.udp.receive)
        self.register_icmp_error(17, self.udp.icmp_error)
        self.icmp.register_validator(17, self.udp.icmp_matches)
        self.tcp = TcpLayer(self, tcp_config)  # registers protocol 6, its ICMP errors, its timers
        self.icmp.register_validator(6, tcp_quote_check(self.tcp))
        # the loopback interface (Linux's lo: MTU 65536, 127.0.0.1/8 and ::1/128). It is not one
        # of ``interfaces`` (those are the ports on links, ifindex = port index): every packet to
        # one of our own addresses leaves by it and comes back in on it (see loopback())
        # (its neighbour caches are never consulted: a Random of their own leaves self.rng's
        # draws, hence every ISN and port, as they were before lo existed)
        lo_rng = random.Random(0)
        self.lo = Interface(Port(LO_IFINDEX, "lo", ZERO_MAC, LO_MTU),
                            NeighborCache(ArpResolver(self), lo_rng, self.arp_params),
                            NeighborCache(NdResolver(self, self.ndp), lo_rng, self.nd_params))
        self.lo.v4.append((LOOPBACK4, 8))
        self.local4[LOOPBACK4] = self.lo
        self.lo.v6.append(Addr6(LOOPBACK6, 128, "preferred"))
        self.local6[LOOPBACK6] = self.lo
        # lo_taps: tap(frame, now) sees each looped packet as an Ethernet frame with zero MACs
        # (what tcpdump -i lo shows on Linux); the simulator's ``lo`` capture point
        self.lo_taps: list[Callable[[bytes, float], None]] = []
        # interfaces whose device queue takes nothing (``tc qdisc add dev X root pfifo limit
        # 0``): every frame sent there is dropped locally, and TCP holds its data back as
        # Linux's does when the queue refuses it (NET_XMIT_DROP; stack/tcp/local_drop.py)
        self.qdisc_drop: set[int] = set()
        self.resolv = ResolverConfig()  # name servers and search domains (resolv.conf)
        self.dhcp4 = DhcpClients(self)  # DHCPv4 clients, one per interface that asks
        self.dhcp6 = Dhcp6Clients(self)  # DHCPv6 clients, likewise

    def reset_transports(self) -> None:
        """What a crash leaves: every TCP connection and listener and every UDP socket gone at
        once, with nothing sent for them (no FIN, no RST); a peer learns it from the RST our
        fresh TCP answers its next segment with (RFC 9293 §3.10.7.1) or from its own timeouts.
        The TCP settings (``tcp.config`` and the layer's knobs) stay, as a boot's sysctl.conf
        would restore them; sequence numbers and ports continue from the host's random stream."""
        old = self.tcp
        self.remove_timer_source(old)
        self._make_transports(old.config)
        for knob in ("syncookies", "max_syn_backlog", "max_connections", "max_orphans",
                     "challenge_ack_limit"):
            setattr(self.tcp, knob, getattr(old, knob))

    def _ifname(self, ifindex: int) -> str:
        if ifindex == LO_IFINDEX:
            return "lo"
        return self.interfaces[ifindex].name if 0 <= ifindex < len(self.interfaces) else str(
            ifindex)

    # -- configuration ---------------------------------------------------------------------------
    def add_interface(self, name: str, mac: bytes, mtu: int = 1500) -> Port:
        """A new interface with its IPv6 link-local address (EUI-64 of ``mac``)."""
        port = self.add_port(name, mac, mtu)
        trace = self.trace if self.tracer is not None else None
        arp_owner, nd_owner = ArpResolver(self), NdResolver(self, self.ndp)
        changed = self._neigh_timer_changed
        iface = Interface(port,
                          NeighborCache(arp_owner, self.rng, self.arp_params,
                                        counters=self.counters, layer="arp", trace=trace,
                                        timer_changed=changed),
                          NeighborCache(nd_owner, self.rng, self.nd_params,
                                        counters=self.counters, layer="ndp", trace=trace,
                                        timer_changed=changed))
        arp_owner.iface = nd_owner.iface = iface
        self.interfaces.append(iface)
        self.addr_gen += 1
        if mtu >= MIN_MTU:
            ll = eui64_address(bytes.fromhex("fe80000000000000"), mac)
            self._add6(iface, ll, 64)
            iface.link_local = ll
        if self.forwarding:
            iface.groups6.add(ALL_ROUTERS)
        return port

    def add_address(self, ifindex: int, cidr: str, *, route: bool = True) -> None:
        """``"10.0.1.1/24"`` or ``"fd00::1/64"``: the address, its connected route, then a
        gratuitous ARP (IPv4) or DAD (IPv6)."""
        iface = self.interfaces[ifindex]
        itf = ipaddress.ip_interface(cidr)
        addr = itf.ip.packed
        plen = itf.network.prefixlen
        if itf.version == 4:
            if iface.has_v4(addr):
                return
            iface.v4.append((addr, plen))
            self.addr_gen += 1
            self.local4.setdefault(addr, iface)
            if plen <= 30:
                iface.bcast4.add(itf.network.broadcast_address.packed)
                self._bcast4_all.add(itf.network.broadcast_address.packed)
            if route:
                self.routes.add(Route(itf.network.network_address.packed, plen, None, ifindex,
                                      CONNECTED, src=addr))
            gratuitous_arp(self, iface, addr)
        else:
            if iface.mtu < MIN_MTU:
                # RFC 8200 §5: IPv6 needs 1280; such a link carries IPv4 only
                self.counters["ipv6.disabled_link_mtu"] += 1
                self.trace(0.0, "ipv6", "drop", reason="link MTU below 1280",
                           iface=iface.name, addr=cidr)
                return
            if iface.has_v6(addr):
                return
            self._add6(iface, addr, plen)
            if route and plen < 128:
                self.routes.add(Route(itf.network.network_address.packed, plen, None, ifindex,
                                      CONNECTED, src=addr))
        self.request_wake()

    def remove_address(self, ifindex: int, cidr: str) -> None:
        """Undo :meth:`add_address` for an IPv4 ``cidr`` (a DHCP lease that ended): the address,
        its broadcast address and its connected route."""
        iface = self.interfaces[ifindex]
        itf = ipaddress.IPv4Interface(cidr)
        addr, plen = itf.ip.packed, itf.network.prefixlen
        if (addr, plen) not in iface.v4:
            return
        iface.v4.remove((addr, plen))
        self.addr_gen += 1
        if self.local4.get(addr) is iface:
            del self.local4[addr]
        bcast = itf.network.broadcast_address.packed
        iface.bcast4.discard(bcast)
        if not any(bcast in i.bcast4 for i in self.interfaces):
            self._bcast4_all.discard(bcast)
        route = self.routes.get(itf.network.network_address.packed, plen)
        if route is not None and route.proto == CONNECTED and route.src == addr:
            self.routes.remove(route.prefix, plen)

    def address_duplicate(self, iface: Interface, addr: bytes) -> None:
        """DAD found ``addr`` in use on ``iface``'s link (RFC 4862 §5.4.5): not ours any more."""
        self.addr_gen += 1
        iface.mark_duplicate(addr)
        if self.local6.get(addr) is iface:
            del self.local6[addr]

    def address_expired(self, iface: Interface, addr: bytes) -> None:
        """``addr``'s valid lifetime ended (RFC 4862 §5.5.4): removed from ``iface``."""
        iface.v6 = [x for x in iface.v6 if x.addr != addr]
        self.addr_gen += 1
        if self.local6.get(addr) is iface:
            del self.local6[addr]
        group = solicited_node(addr)
        if all(solicited_node(x.addr) != group for x in iface.v6):
            iface.groups6.discard(group)

    def _add6(self, iface: Interface, addr: bytes, plen: int) -> None:
        iface.v6.append(Addr6(addr, plen))
        self.addr_gen += 1
        self.local6.setdefault(addr, iface)
        iface.groups6.add(solicited_node(addr))
        self.ndp.start_dad(iface, addr)

    def add_route(self, prefix: str, via: str | None = None, ifindex: int | None = None,
                  metrics: RouteMetrics = NO_METRICS) -> None:
        """A static route (replacing the one of the same prefix, as ``ip route replace``),
        with Linux's per-route ``metrics`` (``advmss``, ``mtu lock``, ``initcwnd``...)."""
        p, n = parse_prefix(prefix)
        gw = ipaddress.ip_address(via).packed if via else None
        if gw is not None and len(gw) != len(p):
            raise ValueError(f"route {prefix} via {via}: families differ")
        if gw is None and ifindex is None:
            raise ValueError(f"route {prefix}: give a gateway (via) or an interface")
        self.routes.add(Route(p, n, gw, ifindex, metrics=metrics))

    def address(self, family: int = 4) -> str | None:
        """The primary address of ``family`` (global IPv6 preferred over link-local)."""
        for iface in self.interfaces:
            if family == 4 and iface.v4:
                return ip_str(iface.v4[0][0])
            if family == 6:
                for x in iface.v6:
                    if not is_link_local(x.addr) and x.state != "duplicate":
                        return ip_str(x.addr)
        if family == 6:
            for iface in self.interfaces:
                if iface.link_local:
                    return ip_str(iface.link_local)
        return None

    def addresses(self, family: int | None = None) -> list[str]:
        out = []
        for iface in self.interfaces:
            if family in (None, 4):
                out += [ip_str(a) for a, _ in iface.v4]
            if family in (None, 6):
                out += [ip_str(x.addr) for x in iface.v6 if x.state != "duplicate"]
        return out

    def resolve_all(self, name: str, family: int | None = None) -> list[str]:
        """Like /etc/hosts: ``name`` → its addresses (text), the network's names (``hosts``) and
        the host's own; literal addresses pass through. Raises ``socket.gaierror`` (naming the
        known hosts when the name is not one)."""
        try:
            literal = ipaddress.ip_address(name)
        except ValueError:
            pass
        else:
            if family is not None and literal.version != family:
                raise socket.gaierror(socket.EAI_ADDRFAMILY,
                                      f"{name} is not an IPv{family} address")
            return [str(literal)]
        addrs = self.hosts.get(name) or self.hosts.get(name.rstrip("."))
        if addrs is None and name == self.name:
            addrs = self.addresses()
        if not addrs:
            known = ", ".join(sorted(self.hosts)) or "none: run net.autoconfigure()"
            raise socket.gaierror(socket.EAI_NONAME, f"unknown host {name!r} on the simulated "
                                  f"network (known: {known})")
        out = [a for a in addrs if family is None or ipaddress.ip_address(a).version == family]
        if not out:
            raise socket.gaierror(socket.EAI_ADDRFAMILY, f"{name} has no IPv{family} address")
        return out

    def resolve(self, name: str, family: int | None = None) -> str:
        """The first of :meth:`resolve_all`."""
        return self.resolve_all(name, family)[0]

    @cached_property
    def sysctl(self) -> HostSysctl:
        """Linux's sysctl names over this host's knobs: ``host.sysctl["net.ipv4.tcp_sack"] = 0``,
        reads in Linux's format (:mod:`stacklab.stack.sysctl`, the one table)."""
        return HostSysctl(self)

    @property
    def neighbors(self) -> NeighborTable:
        """All neighbour caches, printable like ``ip neigh``."""
        return NeighborTable(self.interfaces)

    def is_local4(self, a: bytes) -> bool:
        return a in self.local4

    def is_local(self, a: bytes) -> bool:
        return a in self.local4 or a in self.local6

    def is_bcast4(self, a: bytes) -> bool:
        return a == b"\xff\xff\xff\xff" or a in self._bcast4_all

    # -- transport hooks -----------------------------------------------------------------------
    def register_protocol(self, proto: int, handler: ProtocolHandler,
                          view_handler: ViewHandler | None = None) -> None:
        """``handler`` gets every delivered datagram of IP protocol ``proto``; a
        ``view_handler`` (TCP) gets the frames the fused IPv4 fast path parsed, as a view."""
        self.protocols[proto] = handler
        if view_handler is not None:
            self.view_handlers[proto] = view_handler
        else:
            self.view_handlers.pop(proto, None)

    def register_icmp_error(self, proto: int, handler: Callable[..., None]) -> None:
        self.icmp_error_handlers[proto] = handler

    def register_icmp_validator(self, proto: int,
                                check: Callable[[bytes, bytes, bytes], str | None]) -> None:
        """``check(src, dst, quoted_l4)`` vets ICMP errors quoting ``proto`` (RFC 5927)."""
        self.icmp.register_validator(proto, check)

    def add_timer_source(self, obj: TimerSource) -> None:
        self._timer_sources.append(obj)
        self._timer_getters = None

    def remove_timer_source(self, obj: TimerSource) -> None:
        if obj in self._timer_sources:
            self._timer_sources.remove(obj)
            self._timer_getters = None

    def ip_send(self, src: bytes | None, dst: bytes, proto: int,
                payload: bytes | bytearray | memoryview, now: float, *, df: bool | None = None,
                ttl: int | None = None, tos: int = 0, ifindex: int | None = None,
                options: bytes = b"") -> None:
        """Route, pick a source, fragment if needed and allowed, queue behind ARP/NDP.
        ``options``: IPv4 options (an echo reply's Record Route, see icmp.py).

        Returns when the packet left (or waits for resolution); raises ``OSError`` with
        ENETUNREACH (no route), EHOSTUNREACH, EADDRNOTAVAIL (no source address) or EMSGSIZE
        (bigger than the path MTU with ``df`` set — then ``path_mtu(dst)`` says how big it may
        be), as a Linux ``sendmsg`` would.
        """
        if len(dst) == 4:
            self.ipv4.send(src, dst, proto, payload, now, df, ttl, tos, ifindex, options)
        else:
            self.ipv6.send(src, dst, proto, payload, now, df, ttl, tos, ifindex)

    def source_address_for(self, dst: bytes) -> bytes | None:
        if len(dst) == 4:
            if dst in self.local4:
                return dst
            if dst[0] == 127:
                return LOOPBACK4
            route = self.routes.lookup(dst)
            if route is None:
                return None
            if route.src is not None:
                return route.src
            iface, nh = self.route_out(route, dst)
            return iface.v4_source_for(nh) if iface is not None else None
        if dst in self.local6:
            return dst
        if dst[0] == 0xFF or is_link_local(dst):
            iface = self.default_link_iface(dst)
        else:
            route = self.routes.lookup(dst)
            if route is None:
                return None
            iface, _ = self.route_out(route, dst)
        return iface.v6_source_for(dst) if iface is not None else None

    def link_mtu(self, dst: bytes) -> int:
        """The MTU of the interface packets to ``dst`` leave by, or the route's ``mtu`` metric
        when lower (for our own addresses lo's, as an IP packet can carry: 65535)."""
        if dst in self.local4 or dst in self.local6 or dst[0] == 127 and len(dst) == 4:
            return min(self.lo.mtu, 0xFFFF)
        route = self.routes.lookup(dst)
        if route is not None:
            iface, _ = self.route_out(route, dst)
            if iface is not None:
                mtu = route.metrics.mtu  # the route's own MTU (ip route ... mtu N), if lower
                return mtu if mtu is not None and mtu < iface.mtu else iface.mtu
        elif self.interfaces:
            return self.interfaces[0].mtu
        return 65535

    def path_mtu(self, dst: bytes, now: float | None = None) -> int:
        """The MTU for packets to ``dst``: the outgoing link's, lowered by what a validated ICMP
        Packet Too Big / Fragmentation Needed taught us (``self.pmtu``, a
        :class:`~stacklab.stack.pmtu.PathMtuCache`; entries live ``pmtu.expires`` s)."""
        return self.pmtu.get(dst, self.link_mtu(dst), now)

    def learn_path_mtu(self, dst: bytes, mtu: int, now: float, original_length: int = 0
                       ) -> int | None:
        """A validated Frag Needed / Packet Too Big says the path to ``dst`` carries ``mtu``
        (0: an RFC 1191 "old" router, ``original_length`` picks the plateau). Returns the new
        path MTU when it dropped, else None. Floors: 552 (IPv4, Linux min_pmtu) / 1280 (IPv6)."""
        route = self.routes.lookup(dst)
        if route is not None and route.metrics.mtu_lock:
            self.counters["pmtu.locked"] += 1  # "mtu lock": ICMP cannot lower it (Linux)
            return None
        new = self.pmtu.report(dst, mtu, now, self.link_mtu(dst), original_length)
        if new is not None:
            self.counters["pmtu.updates"] += 1
            self.trace(now, "pmtu", "pmtu", dst=ip_str(dst), mtu=new, reported=mtu)
            self.request_wake()  # the cache's expiry is a new timer
        return new

    def route_get(self, dst: str | bytes, now: float) -> str:
        """``ip route get``-like: ``10.0.3.2 via 10.0.1.2 dev eth0 src 10.0.1.1 mtu 1400
        expires 597s`` at time ``now`` (``mtu … expires`` only while a learned path MTU is
        cached)."""
        d = ipaddress.ip_address(self.resolve(dst) if isinstance(dst, str) else dst).packed
        parts = [ip_str(d)]
        if d in self.local4 or d in self.local6 or d[0] == 127 and len(d) == 4:
            parts = ["local", ip_str(d), "dev", "lo", "src", ip_str(self.source_address_for(d)
                                                                     or d)]
        else:
            route = self.routes.lookup(d)
            if route is None:
                raise OSError(errno.ENETUNREACH, f"{ip_str(d)}: Network is unreachable")
            iface, nh = self.route_out(route, d)
            if route.via is not None:
                parts += ["via", ip_str(route.via)]
            if iface is not None:
                parts += ["dev", iface.name]
            src = self.source_address_for(d)
            if src is not None:
                parts += ["src", ip_str(src)]
        entry = self.pmtu.lookup(d, now)
        if entry is not None:
            parts += ["mtu", str(min(entry.mtu, self.link_mtu(d))),
                      "expires", f"{max(0, int(entry.expires - now))}s"]
        return " ".join(parts)

    def route_metrics(self, dst: bytes) -> RouteMetrics:
        """The metrics of the route to ``dst`` (none set: :data:`~.route.NO_METRICS`)."""
        route = self.routes.lookup(dst)
        return route.metrics if route is not None else NO_METRICS

    def confirm_neighbor(self, dst: bytes, now: float) -> None:
        """Upper-layer reachability confirmation (forward progress on a connection to dst)."""
        route = self.routes.lookup(dst)
        if route is None:
            return
        iface, nh = self.route_out(route, dst)
        if iface is not None:
            (iface.arp if len(dst) == 4 else iface.nd).confirm(nh, now)

    # -- internals used by the protocol modules --------------------------------------------------
    def route_out(self, route: Route, dst: bytes) -> tuple[Interface | None, bytes]:
        nexthop = route.via if route.via is not None else dst
        ifindex = route.ifindex
        if ifindex is None:
            r2 = self.routes.lookup(nexthop)
            if r2 is None or r2.ifindex is None or r2.via is not None:
                return None, nexthop
            ifindex = r2.ifindex
        if not 0 <= ifindex < len(self.interfaces):
            return None, nexthop
        return self.interfaces[ifindex], nexthop

    def default_link_iface(self, dst: bytes) -> Interface | None:
        """For link-local/multicast destinations without an interface: the one whose
        neighbour cache knows ``dst``, else the first interface."""
        for iface in self.interfaces:
            if iface.nd.lookup(dst) is not None:
                return iface
        return self.interfaces[0] if self.interfaces else None

    def deliver(self, src: bytes, dst: bytes, proto: int, payload: memoryview, now: float,
                info: RxInfo) -> None:
        handler = self.protocols.get(proto)
        if handler is not None:
            handler(src, dst, payload, now, info)
            return
        self.counters[f"drop.ipv{info.family}.unknown_protocol"] += 1
        if info.bcast:
            return
        if info.family == 4:
            self.send_icmp_error4(info.packet, 3, 2, now)
        else:
            self.send_icmp_error6(info.packet, 4, 1, now, param=6)

    def loopback(self, packet: bytes | bytearray, now: float,
                 iface: Interface | None = None) -> None:
        """A packet sent on ``lo`` (to one of our own addresses): received back on ``lo`` at
        ``now`` from the host's timer (after the call that sent it has returned, as Linux defers
        loopback), not from inside the send. With ``iface``: the copy of a multicast packet
        sent on it that the host's own members get (IP_MULTICAST_LOOP), received on ``iface``
        (Linux's dev_loopback_xmit), not captured on ``lo``."""
        if not self._loop_q:
            self._loop_at = now
        pkt = bytes(packet)
        self._loop_q.append((pkt, iface or self.lo))
        if iface is not None:
            self.request_wake()
            return
        self.counters["lo.tx.packets"] += 1
        if self.lo_taps:
            frame = bytes(build_ethernet(ZERO_MAC, ZERO_MAC,
                                         ETH_P_IPV4 if pkt[0] >> 4 == 4 else ETH_P_IPV6, pkt))
            for tap in self.lo_taps:
                tap(frame, now)
        self.request_wake()

    def resolution_failed(self, iface: Interface, ip: bytes, packets: list[bytes | bytearray],
                          now: float) -> None:
        """ARP/NDP gave up: our own packets get a local Host Unreachable (EHOSTUNREACH at the
        socket); a router answers forwarded ones with ICMP Host/Address Unreachable."""
        for pkt in packets:
            v4 = pkt[0] >> 4 == 4
            src = bytes(pkt[12:16]) if v4 else bytes(pkt[8:24])
            if self.is_local(src):
                self.icmp.local_error(pkt, UNREACHABLE, 1 if v4 else 3, now)
            elif v4:
                self.send_icmp_error4(pkt, 3, 1, now)
            else:
                self.send_icmp_error6(pkt, 1, 3, now)

    def send_icmp_error4(self, packet: bytes | bytearray | memoryview, icmp_type: int,
                         code: int, now: float, *, mtu: int = 0, l2_bcast: bool = False) -> None:
        """An ICMP error about ``packet`` (rate-limited, never about an ICMP error)."""
        self.icmp.send_error4(packet, icmp_type, code, now, mtu=mtu, l2_bcast=l2_bcast)

    def send_icmp_error6(self, packet: bytes | bytearray | memoryview, icmp_type: int,
                         code: int, now: float, *, param: int = 0, l2_mcast: bool = False) -> None:
        self.icmp.send_error6(packet, icmp_type, code, now, param=param, l2_mcast=l2_mcast)

    def ipv6_output(self, iface: Interface, nexthop: bytes, packet: bytes | bytearray,
                    now: float) -> None:
        """Hand an IPv6 ``packet`` to ``iface`` for ``nexthop`` (NDP's own messages)."""
        self.ipv6.output(iface, nexthop, packet, now)

    def send_frame(self, ifindex: int, frame: bytes | bytearray) -> None:
        if self.qdisc_drop and ifindex in self.qdisc_drop:
            self.counters["drop.qdisc"] += 1  # the device queue takes nothing
            return
        self.counters["tx.frames"] += 1
        self._out.append((ifindex, frame))

    def send_frames(self, ifindex: int, frames: list[bytes]) -> None:
        """:meth:`send_frame` of each of ``frames``, in order (a TCB's burst, built by
        ``Ipv4.send_tcp_frames``)."""
        if self.qdisc_drop and ifindex in self.qdisc_drop:
            self.counters["drop.qdisc"] += len(frames)
            return
        self.counters["tx.frames"] += len(frames)
        out = self._out
        for frame in frames:  # (a loop, not a comprehension: no call of its own)
            out.append((ifindex, frame))

    def xmit_blocked(self, dst: bytes) -> bool:
        """Whether the device queue of the interface packets to ``dst`` leave by refuses them
        (``qdisc_drop``): Linux's local congestion, NET_XMIT_DROP."""
        if not self.qdisc_drop:
            return False
        route = self.routes.lookup(dst)
        if route is None:
            return False
        iface, _ = self.route_out(route, dst)
        return iface is not None and iface.index in self.qdisc_drop

    # -- Node interface ---------------------------------------------------------------------------
    def receive_frame(self, ifindex: int, frame: bytes | memoryview, now: float,
                      csum_valid: bool = False, gso_size: int = 0) -> None:
        """``gso_size``: the frame is an aggregate of segments that size (a GRO packet: what a
        TAP's virtio-net header or packetdrill's ``--mss`` says; 0: an ordinary frame).
        ``csum_valid``: the device vouches for the transport checksum (CHECKSUM_UNNECESSARY)."""
        if gso_size:
            self.rx_gso_size = gso_size
            try:
                self.receive_frame(ifindex, frame, now, csum_valid=csum_valid)
            finally:
                self.rx_gso_size = 0
            return
        c = self.counters
        c["rx.frames"] += 1
        try:
            iface = self.interfaces[ifindex] if ifindex >= 0 else None
        except IndexError:
            iface = None
        if iface is None:
            c["drop.link.no_interface"] += 1
            return
        if not iface.port.up:
            c["drop.link.down"] += 1
            return
        try:
            # the common frame, untagged IPv4 to our MAC, without building an EthernetView
            # (its payload would be the same memoryview from byte 14)
            # (a memoryview too: a TAP device hands over the frame after its virtio header;
            # its slice compares equal to the bytes it holds)
            n = len(frame)
            if n >= 14 and frame[12] == 8 and frame[13] == 0 and frame[:6] == iface.mac:
                # TCP (protocol byte 23): all three headers in one go, else IPv4's own path
                if n < 54 or frame[23] != 6 \
                        or not self.ipv4.receive_tcp_frame(iface, frame, now, csum_valid, n):
                    self.ipv4.receive(iface, memoryview(frame)[14:], False, now)
                return
            eth = EthernetView(frame)
            d = eth.dst
            bcast = False
            if d != iface.mac:
                if d[0] & 1:
                    bcast = True  # broadcast or multicast
                else:
                    c["drop.ethernet.not_our_mac"] += 1
                    return
            if eth.vlan is not None:
                c["drop.ethernet.vlan"] += 1
                return
            et = eth.ethertype
            if et == ETH_P_IPV4:
                self.ipv4.receive(iface, eth.payload, bcast, now)
            elif et == ETH_P_IPV6:
                self.ipv6.receive(iface, eth.payload, bcast, now)
            elif et == ETH_P_ARP:
                arp_receive(self, iface, eth.payload, d, now)
            else:
                c["drop.ethernet.unknown_ethertype"] += 1
        except MalformedPacket as e:
            c[f"drop.{e.layer}.{e.field}"] += 1
            if self.tracer is not None:
                self.trace(now, e.layer, "drop", reason=e.message)

    def get_timer(self) -> float | None:
        if self._loop_q:
            return self._loop_at  # due at once: the time the first looped packet was sent
        # called after every frame by the driver: no temporary list, one pass
        if self._neigh_stale:
            self._neigh_at = self._neigh_timer()
            self._neigh_stale = False
        best = self._neigh_at
        getters = self._timer_getters
        if getters is None:
            getters = self._timer_getters = [
                self.ipv4.reasm.get_timer, self.ipv6.reasm.get_timer, self.ndp.get_timer,
                *(src.get_timer for src in self._timer_sources)]
        for get in getters:
            t = get()
            if t is not None and (best is None or t < best):
                best = t
        return best

    def _neigh_timer_changed(self) -> None:
        self._neigh_stale = True

    def _neigh_timer(self) -> float | None:
        """The earliest deadline of every interface's ARP and NDP cache."""
        best = None
        for iface in self.interfaces:
            t = iface.arp.get_timer()
            if t is not None and (best is None or t < best):
                best = t
            t = iface.nd.get_timer()
            if t is not None and (best is None or t < best):
                best = t
        return best

    def handle_timer(self, now: float) -> None:
        if self._loop_q:
            q, self._loop_q = self._loop_q, []
            for pkt, on in q:
                self.receive_looped(pkt, on, now)
        elif self.tcp.settle(now):
            # the TCP layer's timer index answered early (a deadline moved later or went):
            # with nothing due, this wake changes nothing (no router solicitation begins)
            t = self.get_timer()
            if t is None or t > now:
                return
        for iface in self.interfaces:
            self.ndp.maybe_solicit_routers(iface, now)
        self.ndp.handle_timer(now)
        self.ipv4.reasm.handle_timer(now)
        self.ipv6.reasm.handle_timer(now)
        if self._neigh_stale or (self._neigh_at is not None and self._neigh_at <= now):
            for iface in self.interfaces:
                iface.arp.handle_timer(now)
                iface.nd.handle_timer(now)
        for src in list(self._timer_sources):
            t = src.get_timer()
            if t is not None and t <= now:
                src.handle_timer(now)

    def receive_looped(self, pkt: bytes, iface: Interface, now: float) -> None:
        try:
            if pkt[0] >> 4 == 4:
                self.ipv4.receive(iface, memoryview(pkt), False, now)
            else:
                self.ipv6.receive(iface, memoryview(pkt), False, now)
        except MalformedPacket as e:
            self.counters[f"drop.{e.layer}.{e.field}"] += 1

    # -- reports -------------------------------------------------------------------------------
    def tcp_connections_summary(self) -> list[dict[str, Any]]:
        """One dict per TCP connection (node, local, remote, states, retransmits, mss, pmtu)."""
        return self.tcp.summary()

