"""IPv4 (RFC 791, RFC 1122, RFC 1812 for forwarding) input, output and forwarding.

Input: header checksum checked (bad ⇒ dropped and counted), local delivery (our addresses,
limited/subnet broadcast, all-hosts multicast), reassembly of fragments, else forwarding on a
router: TTL ⇒ Time Exceeded, no route ⇒ Net Unreachable, too big ⇒ fragmented, or with DF
dropped with Fragmentation Needed carrying the next-hop MTU (RFC 1191). Options are not
interpreted but are carried (and copied into fragments when their copy bit says so).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from stacklab.stack.route import DstCache
from stacklab.wire.addr import BROADCAST_MAC, ip_str, multicast_mac
from stacklab.wire.checksum import ipv4_header_ok
from stacklab.wire.errors import MalformedPacket
from stacklab.wire.ethernet import ETH_P_IPV4
from stacklab.wire.frame import (
    PartialFrame,
    TcpFrameTemplate,
    build_ipv4_tcp_tso_frame,
    complete_checksum,
    parse_ipv4_tcp_frame,
    parse_ipv4_tcp_segment,
)
from stacklab.wire.ipv4 import IPv4View, build_ipv4
from stacklab.wire.proto import PROTO_TCP, PROTO_UDP

from .context import EarlyHandler, RxInfo
from .frag import Key, Reassembler, fragment_ipv4
from .ipid import IpIdCounter, IpIdGenerator
from .node import GsoFrame

if TYPE_CHECKING:
    from .context import HostContext
    from .interface import Interface
    from .nat import Nat
    from .neighbor import Neighbor, Nud
    from .redirect import Redirects

# Ipv4.tcp_path's answer: (interface, the next hop's MAC, the path MTU, the TTL, whether the port
# offloads checksums, the frame templates of the flows on it by (source, source port,
# destination port, DF)); then what it was made from, by which it is carried (tcp_path): the
# generations and values it read, the neighbour entry and that entry's state
TcpPath = tuple["Interface", bytes, int, int, bool,
                dict[tuple[bytes, int, int, bool], TcpFrameTemplate],
                tuple[object, ...], "Neighbor", "Nud"]



class TcpOut(Protocol):
    """What :meth:`Ipv4.send_tcp_frames` reads of a TCP segment to send (the TCB's
    ``stack/tcp/segment.py`` Segment): its fields, the IP header's ECN field it leaves with,
    its timestamps and whether they are its only option."""

    seq: int
    ack: int
    flags: int
    window: int
    payload: bytes | bytearray | memoryview
    urgent: int
    ecn: int
    _ts: tuple[int, int] | None
    plain: bool  # ts_only(), without the call


class TcpFlow:
    """What a connection's frames need to leave by :meth:`Ipv4.send_tcp_frames` on one
    :meth:`Ipv4.tcp_path` answer (``path``): the flow's frame template (its ``build``), the
    interface's index, the path MTU, DF and the IP TOS without the ECN field, and the IP ID
    counter of its source and destination (``IpIdGenerator.counter``). Made by
    :meth:`Ipv4.tcp_flow`; valid while ``tcp_path`` gives the same ``path`` object and what the
    caller gave it (DF, TOS, the connection's addresses and ports) is the same; the TCP layer
    carries its last one between flushes on that rule (``TcpLayer._last_flow``)."""

    __slots__ = ("path", "build", "ifindex", "mtu", "df", "tos", "ids")

    def __init__(self, path: TcpPath, template: TcpFrameTemplate, df: bool, tos: int,
                 ids: IpIdCounter) -> None:
        self.path = path
        self.build = template.build
        self.ifindex = path[0].index
        self.mtu = path[2]
        self.df = df
        self.tos = tos
        self.ids = ids


# The paths and frame templates tcp_path and send_tcp_frames keep, at most (each; all forgotten
# when one is full, as the dst cache): the flows a host sends on at a time, not every connection
# it has (what an idle connection costs stays its own, tests/api/test_idle_connection_memory.py)
TCP_TEMPLATES_MAX = 64

LIMITED_BCAST = b"\xff\xff\xff\xff"
ALL_HOSTS = bytes([224, 0, 0, 1])
_ETH_IPV4 = ETH_P_IPV4.to_bytes(2, "big")
# flows the early demux remembers at most (forgotten all at once beyond: a cache, not a table)
EARLY_DEMUX_MAX = 256


class Ipv4:
    def __init__(self, host: HostContext) -> None:
        self.host = host
        # 30 s: net.ipv4.ipfrag_time; memory: ipfrag_high_thresh / ipfrag_low_thresh
        self.reasm = Reassembler("ipv4", 30.0, 65535 - 20, host.counters,
                                 on_timeout=self._reasm_timeout)
        self.ids = IpIdGenerator(host.rng)  # RFC 7739 per-destination hashed IDs
        # dst -> (interface, next hop, route's preferred source): Linux's dst cache, valid while
        # the routing table and the addresses stay as they were (routes.gen, host.addr_gen)
        self.dst_cache = DstCache(host)
        # the same for forwarded packets (forward_frame), apart so that transit traffic to many
        # destinations does not flush the entries of the host's own connections
        self.fwd_cache = DstCache(host)
        # dst -> tcp_path's answer, kept while it stays the same: its frame templates with it
        self._tcp_paths: dict[bytes, TcpPath] = {}
        self._tcp_templates = 0  # templates made since the paths were last forgotten
        # a router's NAT (stack/nat.py), the one seam: asked before a packet to our address is
        # delivered (claims), and translating every forwarded packet (forward)
        self.nat: Nat | None = None
        self.redirects: Redirects | None = None  # sends ICMP redirects (stack/redirect.py)
        # early demux (Linux's ip_rcv_finish -> tcp_v4_early_demux): the TCP flows whose
        # segments receive_tcp_frame handed over, by their frame's bytes 26..38 (source and
        # destination address, ports), to what the TCP layer's view handler returned for them
        # (its connection) and the host's addr_gen when the packet was admitted as a local
        # unicast delivery: a frame of such a flow skips _admit and the demux
        self.early: dict[bytes, tuple[Any, int]] = {}
        self._early_rx: EarlyHandler | None = None

    # -- input ---------------------------------------------------------------------------------
    def _admit(self, iface: Interface, ip: IPv4View, l2_bcast: bool, now: float) -> bool | None:
        """The admission rules every received packet passes (RFC 1122 §3.2.1.3, RFC 1812):
        martian sources dropped, our addresses and broadcasts delivered, the rest forwarded
        (router) or dropped. Returns whether a delivered packet was a broadcast, or None when
        it was consumed here (dropped or forwarded; counted either way)."""
        h = self.host
        src = ip.src
        dst = ip.dst
        if iface is h.lo:  # sent by ourselves: 127.0.0.0/8 is only valid here (RFC 1122)
            h.counters["ipv4.rx.delivered"] += 1
            return False
        if src[0] == 127 or src[0] >= 224:
            h.counters["drop.ipv4.martian_source"] += 1
            return None
        if dst[0] == 127:  # RFC 1122 §3.2.1.3(g): never seen outside a host (Linux: martian)
            h.counters["drop.ipv4.martian_destination"] += 1
            return None
        if dst in h.local4:
            if self.nat is not None and self.nat.claims(iface, ip.buf[:ip.total_length], now):
                self.forward(iface, ip, l2_bcast, now)  # a reply or port forward to translate
                return None
            bcast = l2_bcast
        elif dst in (LIMITED_BCAST, ALL_HOSTS) or dst in iface.bcast4 or dst in iface.groups4:
            bcast = True
        elif h.forwarding:
            self.forward(iface, ip, l2_bcast, now)
            return None
        else:
            h.counters["drop.ipv4.not_for_us"] += 1
            return None
        h.counters["ipv4.rx.delivered"] += 1
        return bcast

    def _bad_checksum(self, now: float) -> None:
        self.host.counters["drop.ipv4.bad_checksum"] += 1
        self.host.trace(now, "ipv4", "drop", reason="bad checksum")

    def receive(self, iface: Interface, buf: memoryview, l2_bcast: bool, now: float) -> None:
        h = self.host
        ip = IPv4View(buf)  # raises MalformedPacket
        if not ip.checksum_ok():
            self._bad_checksum(now)
            return
        bcast = self._admit(iface, ip, l2_bcast, now)
        if bcast is None:
            return
        src, dst = ip.src, ip.dst
        if ip.flags_frag & 0x3FFF:
            off = ip.frag_offset
            first = bytes(ip.buf[:ip.header_len + 8]) if off == 0 else None
            res = self.reasm.add((src, dst, ip.proto, ip.ident), off, ip.payload, ip.mf, now,
                                 first, len(first) if first is not None else 0)
            if res is None:
                return
            payload, first = res
            h.counters["ipv4.reassembled"] += 1
            h.deliver(src, dst, ip.proto, memoryview(payload), now,
                      RxInfo(4, iface.index, ip.ttl, ip.tos, bcast, first or b"", True))
            return
        self._deliver(iface, ip, bcast, now)

    def _deliver(self, iface: Interface, ip: IPv4View, bcast: bool, now: float) -> None:
        buf = ip.buf
        info = RxInfo(4, iface.index, ip.ttl, ip.tos, bcast,
                      buf if len(buf) == ip.total_length else buf[:ip.total_length])
        self.host.deliver(ip.src, ip.dst, ip.proto, ip.payload, now, info)

    def receive_tcp_frame(self, iface: Interface, frame: bytes | memoryview, now: float,
                          csum_valid: bool = False, length: int = -1) -> bool:
        """:meth:`receive` for a whole frame to our MAC holding one unfragmented IPv4 TCP
        segment, with the three views and both checksums from one
        :func:`~stacklab.wire.tcp.parse_ipv4_tcp_frame`; a transport that registered a view
        handler for TCP gets the parsed view. False (nothing done): not such a frame, or
        malformed: the per-layer path takes it and counts exactly what it would have.
        ``csum_valid``: the device vouched for the TCP checksum (``Node.receive_frame``), which
        is then not summed; the IPv4 header's still is (20 bytes; Linux's ``ip_rcv`` too).
        A segment of a flow in :attr:`early` goes to the transport's early-demux handler
        without :meth:`_admit` and the view handler's lookup, counted as they count it.
        ``length``: ``len(frame)``, when the caller has it. The early demux takes only the
        common frame (:func:`~stacklab.wire.frame.parse_ipv4_tcp_segment`'s: untagged, IPv4
        without options), whose bytes 26..38 are the flow's addresses and ports, and looks it up
        before the rest of the frame is parsed."""
        h = self.host
        early = self.early
        if early:
            r0 = parse_ipv4_tcp_segment(frame, csum_valid, length)
            if r0 is not None:
                seg, tos, ip_ok, tcp_ok = r0
                if not ip_ok:
                    self._bad_checksum(now)
                    return True
                key = frame[26:38]
                try:  # (a subscript, no call: the flow is there for nearly every segment)
                    flow = early[key if type(key) is bytes else bytes(key)]  # (a TAP's memoryview)
                except KeyError:
                    flow = None
                # admitted as before while the addresses are (no NAT to ask, not on lo); the
                # handler declines (False, nothing done) a connection no longer ESTABLISHED
                if flow is not None and flow[1] == h.addr_gen and self.nat is None \
                        and iface is not h.lo and self._early_rx is not None \
                        and self._early_rx(flow[0], seg, tcp_ok, now, tos & 3):
                    h.counters["ipv4.rx.delivered"] += 1  # (what _admit counts)
                    return True
        try:
            r = parse_ipv4_tcp_frame(frame, csum_valid, length)
        except MalformedPacket:
            return False
        if r is None:
            return False
        _eth, ip, seg, ip_ok, tcp_ok = r
        if not ip_ok:
            self._bad_checksum(now)
            return True
        bcast = self._admit(iface, ip, False, now)  # l2_bcast False: sent to our MAC
        if bcast is None:
            return True
        view_handler = h.view_handlers.get(PROTO_TCP)
        if view_handler is not None:
            vflow = view_handler(ip.src, ip.dst, seg, tcp_ok, now, bcast, iface.index, ip.tos & 3)
            if vflow is not None and not bcast and iface is not h.lo and ip.header_len == 20 \
                    and _eth.header_len == 14:  # (bytes 26..38: the addresses and ports)
                if len(early) >= EARLY_DEMUX_MAX:
                    early.clear()
                early[bytes(frame[26:38])] = (vflow, h.addr_gen)
        else:
            self._deliver(iface, ip, bcast, now)
        return True

    def early_forget(self, src: bytes, dst: bytes, src_port: int, dst_port: int) -> None:
        """The flow of segments from ``src``:``src_port`` to ``dst``:``dst_port`` out of
        :attr:`early` (its connection left the transport's table)."""
        self.early.pop(src + dst + src_port.to_bytes(2, "big") + dst_port.to_bytes(2, "big"),
                       None)

    def set_early_demux(self, handler: EarlyHandler) -> None:
        """The transport's early-demux entry (the TCP layer's ``receive_established``), the
        flows remembered for the one before forgotten (a crash's new TCP layer)."""
        self._early_rx = handler
        self.early.clear()

    def _reasm_timeout(self, key: Key, first: bytes | None,
                       now: float) -> None:
        self.host.trace(now, "ipv4", "drop", reason="reassembly timeout")
        if first is not None:
            self.host.send_icmp_error4(first, 11, 1, now)

    # -- forwarding ----------------------------------------------------------------------------
    def forward(self, iface: Interface, ip: IPv4View, l2_bcast: bool, now: float) -> None:
        h = self.host
        c = h.counters
        dst = ip.dst
        if l2_bcast or dst[0] >= 224 or dst[0] == 0 or dst[0] == 127:
            c["drop.ipv4.not_forwardable"] += 1
            return
        packet = ip.buf[:ip.total_length]
        if ip.ttl <= 1:
            c["drop.ipv4.ttl_exceeded"] += 1
            h.trace(now, "ipv4", "drop", reason="ttl exceeded", dst=ip_str(dst))
            h.send_icmp_error4(packet, 11, 0, now)
            return
        pkt = bytearray(packet)
        pkt[8] -= 1
        # RFC 1624 incremental update: TTL is the high byte of word 4, so the sum drops 0x100
        csum = ((pkt[10] << 8) | pkt[11]) + 0x100
        csum = (csum & 0xFFFF) + (csum >> 16)
        pkt[10] = csum >> 8
        pkt[11] = csum & 0xFF
        if self.nat is not None:
            # translated in place (or reassembled first); the errors below quote ``packet``,
            # the packet as it arrived, to its own sender (RFC 5508 §4.2 end to end)
            nat_pkt = self.nat.forward(iface, pkt, now)
            if nat_pkt is None:
                return
            pkt = nat_pkt
            dst = bytes(pkt[16:20])
        route = h.routes.lookup(dst)
        if route is None:
            c["drop.ipv4.no_route"] += 1
            h.trace(now, "ipv4", "drop", reason="no route", dst=ip_str(dst))
            h.send_icmp_error4(packet, 3, 0, now)
            return
        out, nexthop = h.route_out(route, dst)
        if out is None:
            c["drop.ipv4.no_route"] += 1
            h.send_icmp_error4(packet, 3, 0, now)
            return
        if self.redirects is not None and pkt[12:20] == packet[12:20]:  # (not translated)
            self.redirects.forwarded(iface, out, packet, nexthop, now)
        mtu = out.mtu
        c["ipv4.forwarded"] += 1
        if len(pkt) <= mtu:
            self.output(out, nexthop, pkt, now)
            return
        if pkt[6] & 0x40:  # DF (of the packet as translated/reassembled)
            c["drop.ipv4.frag_needed"] += 1
            h.trace(now, "ipv4", "drop", reason="fragmentation needed", mtu=mtu,
                    dst=ip_str(dst))
            h.send_icmp_error4(packet, 3, 4, now, mtu=mtu)
            return
        hl = (pkt[0] & 0x0F) * 4
        frags = fragment_ipv4(pkt[:hl], memoryview(pkt)[hl:], mtu)
        c["ipv4.fragmented"] += 1
        c["ipv4.fragments_created"] += len(frags)
        for f in frags:
            self.output(out, nexthop, f, now)

    def forward_frame(self, iface: Interface, frame: bytes | bytearray, now: float) -> bool:
        """:meth:`receive` then :meth:`forward` in one step for the common transit frame: sent
        to our MAC, an IPv4 packet without options, not for us, TTL above 1, a valid header
        checksum, routed (through ``fwd_cache``) out of another interface to a unicast next
        hop whose neighbour entry is usable as it is, within that interface's MTU, no NAT.
        The frame out is the one :meth:`forward` builds — TTL decremented, the checksum
        updated incrementally (RFC 1624), new MACs — in one copy, with the same counters.
        False (nothing done, nothing counted): any other frame, which the ordinary path takes.
        """
        n = len(frame)
        if n < 34 or frame[14] != 0x45:
            return False
        total = (frame[16] << 8) | frame[17]
        d0, s0 = frame[30], frame[26]
        if total < 20 or total > n - 14 or frame[22] <= 1 or d0 >= 224 or d0 == 0 \
                or d0 == 127 or s0 >= 224 or s0 == 127 or self.nat is not None:
            return False
        h = self.host
        dst = bytes(frame[30:34])
        if dst in h.local4 or dst in iface.bcast4 or not ipv4_header_ok(frame[14:34]):
            return False
        entry = self.fwd_cache.get(dst)
        if entry is None:
            return False
        out, nexthop, _ = entry
        # the same interface: maybe a redirect (forward's business); too big: fragments or
        # Fragmentation Needed; broadcast or multicast next hops: output's own MACs
        if out is iface or total > out.mtu or nexthop in out.bcast4 or nexthop[0] >= 224:
            return False
        mac = out.arp.usable(nexthop, now)
        if mac is None:
            return False  # resolution to start or to wait for: output queues the packet
        c = h.counters
        c["ipv4.forwarded"] += 1
        c["ipv4.tx.packets"] += 1
        csum = ((frame[24] << 8) | frame[25]) + 0x100  # as forward: TTL is word 4's high byte
        csum = (csum & 0xFFFF) + (csum >> 16)
        fwd = b"".join((
            mac, out.mac, frame[12:22], bytes((frame[22] - 1, frame[23], csum >> 8, csum & 0xFF)),
            memoryview(frame)[26:14 + total]))
        if type(frame) is PartialFrame:
            # still partial (neither the TTL nor the MACs are in the TCP sum): to a port that
            # offloads as it is, to any other completed (Linux's validate_xmit_skb)
            fwd = PartialFrame(fwd)
            if not out.port.csum_offload:
                fwd = complete_checksum(fwd)
        h.send_frame(out.index, fwd)
        return True

    # -- output --------------------------------------------------------------------------------
    def send(self, src: bytes | None, dst: bytes, proto: int,
             payload: bytes | bytearray | memoryview, now: float, df: bool | None,
             ttl: int | None, tos: int, ifindex: int | None, options: bytes = b""
             ) -> None:
        h = self.host
        c = h.counters
        if dst == LIMITED_BCAST or dst[0] >> 4 == 14:
            # broadcast, or multicast (RFC 1112 §6: out of the chosen interface, IP_MULTICAST_IF,
            # else the route's, else the first one: a scenario's hosts have no default route)
            if ifindex is None and dst != LIMITED_BCAST:
                entry = self.dst_cache.get(dst)
                ifindex = entry[0].index if entry is not None else None
            iface = h.interfaces[ifindex if ifindex is not None else 0]
            nexthop = dst
            route_src: bytes | bool | None = False  # False: not routed
        elif dst in h.local4 or dst[0] == 127:
            # ours, or anywhere in 127.0.0.0/8 (Linux's "local 127.0.0.0/8 dev lo" route): out by
            # lo, from the address itself (from 127.0.0.1 for the rest of 127/8)
            iface = h.lo
            nexthop = dst
            route_src = False
            if src is None and dst in h.local4:
                src = dst
        else:
            entry = self.dst_cache.get(dst)
            if entry is None:
                c["drop.ipv4.tx_no_route"] += 1
                raise OSError(errno.ENETUNREACH, os.strerror(errno.ENETUNREACH))
            iface, nexthop, route_src = entry
            if src is None and route_src is not None:
                src = route_src
        if src is None:
            src = iface.v4_source_for(nexthop)
            if src is None:
                raise OSError(errno.EADDRNOTAVAIL, os.strerror(errno.EADDRNOTAVAIL))
        if ttl is None:
            ttl = h.default_ttl
        ident = self.ids.next(src, dst, proto, now) & 0xFFFF
        n = 20 + (len(options) + 3) // 4 * 4 + len(payload)  # (options padded to 32 bits)
        # the path MTU: the interface's, lowered by what the PMTU cache learned (h.path_mtu
        # without its second route lookup: the interface is the one found above)
        mtu = iface.mtu
        if route_src is not False:  # routed: the link MTU is this interface's
            if len(h.pmtu):  # nothing learned (the usual case): no lookup
                pmtu = h.pmtu.get(dst, mtu, None)
                if pmtu < mtu:
                    mtu = pmtu
        elif iface is not h.lo:
            mtu = min(mtu, h.path_mtu(dst))
        if n <= mtu:
            self.output(iface, nexthop, build_ipv4(src, dst, proto, payload, ttl, ident,
                                                   bool(df), False, 0, tos, options), now)
            return None
        if df or n > 65535:
            c["drop.ipv4.tx_too_big"] += 1
            raise OSError(errno.EMSGSIZE, os.strerror(errno.EMSGSIZE))
        header = build_ipv4(src, dst, proto, b"", ttl, ident, False, False, 0, tos, options)
        frags = fragment_ipv4(header, memoryview(payload), mtu)
        c["ipv4.tx.fragmented"] += 1
        for f in frags:
            self.output(iface, nexthop, f, now)
        return None

    def tcp_path(self, dst: bytes, now: float) -> TcpPath | None:
        """Where :meth:`send` would put a TCP segment to ``dst`` when it takes its plain route:
        (interface, the next hop's MAC, the path MTU, ...: :data:`TcpPath`) for a unicast
        destination not ours, routed through the dst cache to a unicast next hop whose
        neighbour entry is usable as it is. None: anything else, which :meth:`send` handles.
        The TCP layer asks once per flush and builds those frames itself
        (:meth:`send_tcp_frames`). The same answer while the route, the neighbour's MAC, the
        MTU, the TTL and the port's offload stay as they were, and with it the flows' frame
        templates; a change makes a new one (the templates made again).

        The answer is carried, without the look-ups, while nothing it was read from moved: the
        routing table and the addresses (``routes.gen``, ``addr_gen``: the dst cache's
        validity), the neighbour table (``NeighborCache.gen``: no entry gone), the entry's
        state and MAC, the path MTU cache (``PathMtuCache.gen``), the port's MTU and offload,
        the interface's MTU cap and the TTL; the entry is then marked used as
        :meth:`NeighborCache.usable` would. ``tests/stack/test_tcp_path_carried.py`` compares it
        with the look-ups (:meth:`_tcp_path`) after random changes of each."""
        h = self.host
        p = self._tcp_paths.get(dst)
        if p is not None:
            iface = p[0]
            port = iface.port
            n = p[7]
            if n.state is p[8] and n.mac is p[1] and port.csum_offload is p[4] and p[6] == (
                    h.routes.gen, h.addr_gen, iface.arp.gen, h.pmtu.gen, port.mtu,
                    iface._mtu_cap, h.default_ttl):
                n.used = now  # (usable's mark)
                return p
        return self._tcp_path(dst, now)

    def _tcp_path(self, dst: bytes, now: float) -> TcpPath | None:
        """:meth:`tcp_path` by its look-ups (the specification of its carried answer)."""
        h = self.host
        if dst == LIMITED_BCAST or dst[0] >> 4 == 14 or dst in h.local4 or dst[0] == 127:
            return None
        entry = self.dst_cache.get(dst)
        if entry is None:
            return None
        iface, nexthop, _ = entry
        if iface is h.lo or nexthop == LIMITED_BCAST or nexthop in iface.bcast4 \
                or nexthop[0] >> 4 == 14:
            return None
        arp = iface.arp
        mac = arp.usable(nexthop, now)
        if mac is None:
            return None
        n = arp.entries[nexthop]  # (usable found it)
        port = iface.port
        check = (h.routes.gen, h.addr_gen, arp.gen, h.pmtu.gen, port.mtu, iface._mtu_cap,
                 h.default_ttl)
        mtu = iface.mtu
        if len(h.pmtu):  # as in send
            pmtu = h.pmtu.get(dst, mtu, None)
            if pmtu < mtu:
                mtu = pmtu
        ttl = h.default_ttl
        offload = port.csum_offload
        paths = self._tcp_paths
        p = paths.get(dst)
        if p is None or p[0] is not iface or p[1] != mac or p[2] != mtu or p[3] != ttl \
                or p[4] is not offload:
            if len(paths) >= TCP_TEMPLATES_MAX:
                paths.clear()
                self._tcp_templates = 0
            p = paths[dst] = (iface, mac, mtu, ttl, offload, {}, check, n, n.state)
        elif p[6] != check or p[7] is not n or p[8] is not n.state or p[1] is not mac:
            # the same path, read from new generations: carried from them on (the templates
            # kept)
            p = paths[dst] = (iface, mac, mtu, ttl, offload, p[5], check, n, n.state)
        return p

    def tcp_flow(self, path: TcpPath, src: bytes, dst: bytes, now: float, df: bool,
                 src_port: int, dst_port: int, psum: int, tos: int = 0) -> TcpFlow:
        """The :class:`TcpFlow` of a connection ``src``:``src_port`` → ``dst``:``dst_port`` on
        ``path`` (:meth:`tcp_path`'s answer for ``dst``), with its frame template, made on its
        first flow on this path (``psum``: the pseudo-header's sum of ``src`` and ``dst``, the
        connection's; ``tos``: the IP TOS without the ECN field, which is each segment's)."""
        templates = path[5]
        key = (src, src_port, dst_port, df)
        t = templates.get(key)
        if t is None:
            if self._tcp_templates >= TCP_TEMPLATES_MAX:
                self._tcp_paths.clear()  # (this path's templates go when its flows do)
                self._tcp_templates = 0
            self._tcp_templates += 1
            t = templates[key] = TcpFrameTemplate(path[1], path[0].mac, src, dst, path[3], df,
                                                  src_port, dst_port, psum, path[4])
        return TcpFlow(path, t, df, tos, self.ids.counter(src, dst, PROTO_TCP, now))

    def send_tcp_frames(self, flow: TcpFlow, now: float, segs: Sequence[TcpOut],
                        start: int) -> int:
        """:meth:`send` of the segments of ``segs`` from ``start`` on, as long as each is one
        ``flow``'s frame template builds (no option but timestamps, fitting its path's MTU): in
        one pass, each built in one buffer with its IPv4 and Ethernet headers, the IP IDs of as
        many datagrams at one instant taken at once, the frames handed to the interface
        together; the same frames, counters and IP IDs as ``send`` then :meth:`output` of each.
        Returns the index of the first segment not sent (``len(segs)``: all)."""
        n = len(segs)
        mtu = flow.mtu
        end = start
        while end < n:
            seg = segs[end]
            if not seg.plain or (52 if seg._ts is not None else 40) + len(seg.payload) > mtu:
                break
            end += 1
        if end == start:
            return start
        ident = flow.ids.take(now, end - start)
        build = flow.build
        tos = flow.tos
        if end - start == 1:
            seg = segs[start]
            frames = [build(ident & 0xFFFF, seg.seq, seg.ack, seg.flags, seg.window,
                            seg.payload, seg._ts, tos | seg.ecn, seg.urgent)]
        else:  # (a loop, not a comprehension: no call of its own)
            frames = []
            for i in range(start, end):
                seg = segs[i]
                frames.append(build(ident & 0xFFFF, seg.seq, seg.ack, seg.flags, seg.window,
                                    seg.payload, seg._ts, tos | seg.ecn, seg.urgent))
                ident += 1
        h = self.host
        h.counters["ipv4.tx.packets"] += end - start
        h.send_frames(flow.ifindex, frames)
        return end

    def send_tso_frame(self, path: TcpPath, src: bytes, dst: bytes,
                       now: float, df: bool, src_port: int, dst_port: int, psum: int, seq: int,
                       ack: int, flags: int, window: int, payload: bytes | bytearray | memoryview,
                       timestamps: tuple[int, int] | None, gso_size: int) -> None:
        """:meth:`send_tcp_frames` of a TSO packet (``stack/tcp/gso.py``) for ``path``'s
        device, which cuts it into segments of ``gso_size`` bytes (``Port.gso_max``): one
        :class:`~stacklab.stack.node.GsoFrame`, an IP ID per segment (the device counts them
        up from the first), the packets counted as the segments they become."""
        iface, mac = path[0], path[1]
        h = self.host
        segs = -(-len(payload) // gso_size)
        ident = self.ids.next(src, dst, PROTO_TCP, now, segs) & 0xFFFF
        frame = GsoFrame()
        build_ipv4_tcp_tso_frame(frame, mac, iface.mac, src, dst, ident, h.default_ttl, df,
                                 src_port, dst_port, seq, ack, flags, window, payload, psum,
                                 timestamps)
        frame.gso_size = gso_size
        h.counters["ipv4.tx.packets"] += segs
        h.send_frame(iface.index, frame)

    def output(self, iface: Interface, nexthop: bytes, packet: bytearray, now: float) -> None:
        """The one way out for every IPv4 packet (sent, forwarded or a fragment): on lo back
        to ourselves, to a broadcast MAC, or to ``nexthop``'s MAC resolved by ARP (the packet
        waits in the neighbour queue meanwhile)."""
        h = self.host
        if iface is h.lo:
            h.loopback(packet, now)
            return
        mac: bytes | None
        if nexthop == LIMITED_BCAST or nexthop in iface.bcast4:
            mac = BROADCAST_MAC
        elif nexthop[0] >> 4 == 14:
            mac = multicast_mac(nexthop)
            if nexthop in iface.groups4 and packet[9] == PROTO_UDP:
                h.loopback(packet, now, iface)  # IP_MULTICAST_LOOP: members here get a copy
        else:
            mac = iface.arp.resolve(nexthop, packet, now)
            if mac is None:
                return
        h.counters["ipv4.tx.packets"] += 1
        # one copy into an immutable frame (what a link wants) instead of a bytearray
        h.send_frame(iface.index, b"".join((mac, iface.mac, _ETH_IPV4, packet)))
