"""IPv4 (RFC 791, RFC 1122, RFC 1812 for forwarding) input, output and forwarding.

Input: header checksum checked (bad ⇒ dropped and counted), local delivery (our addresses,
limited/subnet broadcast, all-hosts multicast), reassembly of fragments, else forwarding on a
router: TTL ⇒ Time Exceeded, no route ⇒ Net Unreachable, too big ⇒ fragmented, or with DF
dropped with Fragmentation Needed carrying the next-hop MTU (RFC 1191). Options are not
interpreted but are carried (and copied into fragments when their copy bit says so).
"""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING

from stacklab.stack.route import DstCache
from stacklab.wire.addr import BROADCAST_MAC, ip_str
from stacklab.wire.errors import MalformedPacket
from stacklab.wire.ethernet import ETH_P_IPV4
from stacklab.wire.frame import parse_ipv4_tcp_frame
from stacklab.wire.ipv4 import IPv4View, build_ipv4
from stacklab.wire.proto import PROTO_TCP

from .frag import Reassembler, fragment_ipv4

if TYPE_CHECKING:
    from .host import Host, Interface

LIMITED_BCAST = b"\xff\xff\xff\xff"
ALL_HOSTS = bytes([224, 0, 0, 1])
_HDR = struct.Struct("!BBHHHBBH4s4s")
_CSUM = struct.Struct("!H")
_ETH_IPV4 = ETH_P_IPV4.to_bytes(2, "big")


class RxInfo:
    """What the IP layer tells a transport about a delivered datagram.

    ``packet`` is the IP packet (header first; for a reassembled datagram, the first fragment's
    header and data) for quoting in ICMP errors; ``bcast`` is true when it was sent to a
    broadcast or multicast address (link or IP level).
    """

    __slots__ = ("family", "ifindex", "ttl", "tos", "bcast", "packet", "fragmented")

    def __init__(self, family: int, ifindex: int, ttl: int, tos: int, bcast: bool,
                 packet: memoryview | bytes, fragmented: bool = False) -> None:
        self.family = family
        self.ifindex = ifindex
        self.ttl = ttl
        self.tos = tos
        self.bcast = bcast
        self.packet = packet
        self.fragmented = fragmented


class Ipv4:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.reasm = Reassembler("ipv4", 30.0, 4 << 20, 65535 - 20, host.counters,
                                 on_timeout=self._reasm_timeout)
        self.ident = host.rng.randrange(65536)
        # dst -> (interface, next hop, route's preferred source): Linux's dst cache, valid while
        # the routing table and the addresses stay as they were (routes.gen, host.addr_gen)
        self.dst_cache = DstCache(host)

    # -- input ---------------------------------------------------------------------------------
    def receive(self, iface: Interface, buf: memoryview, l2_bcast: bool, now: float) -> None:
        h = self.host
        c = h.counters
        ip = IPv4View(buf)  # raises MalformedPacket
        if not ip.checksum_ok():
            c["drop.ipv4.bad_checksum"] += 1
            h.trace(now, "ipv4", "drop", reason="bad checksum")
            return
        src = ip.src
        if src[0] == 127 or src[0] >= 224:
            c["drop.ipv4.martian_source"] += 1
            return
        dst = ip.dst
        bcast = l2_bcast
        if dst in h.local4:
            pass
        elif dst in (LIMITED_BCAST, ALL_HOSTS) or dst in iface.bcast4:
            bcast = True
        elif h.forwarding:
            self.forward(iface, ip, l2_bcast, now)
            return
        else:
            c["drop.ipv4.not_for_us"] += 1
            return
        c["ipv4.rx.delivered"] += 1
        if ip.flags_frag & 0x3FFF:
            off = ip.frag_offset
            first = bytes(ip.buf[:ip.header_len + 8]) if off == 0 else None
            res = self.reasm.add((src, dst, ip.proto, ip.ident), off, ip.payload, ip.mf, now,
                                 first)
            if res is None:
                return
            payload, first = res
            c["ipv4.reassembled"] += 1
            h.deliver(src, dst, ip.proto, memoryview(payload), now,
                      RxInfo(4, iface.index, ip.ttl, ip.tos, bcast, first or b"", True))
            return
        buf = ip.buf
        info = RxInfo(4, iface.index, ip.ttl, ip.tos, bcast,
                      buf if len(buf) == ip.total_length else buf[:ip.total_length])
        handler = h.protocols.get(ip.proto)
        if handler is not None:  # h.deliver, inlined for the common case
            handler(src, dst, ip.payload, now, info)
        else:
            h.deliver(src, dst, ip.proto, ip.payload, now, info)

    def receive_tcp_frame(self, iface: Interface, frame: bytes, now: float) -> bool:
        """:meth:`receive` for a whole frame to our MAC holding one unfragmented IPv4 TCP
        segment, with the three views and both checksums from one
        :func:`~stacklab.wire.tcp.parse_ipv4_tcp_frame` and the TCP layer handed its view.
        False (nothing done): not such a frame, or malformed: the per-layer path takes it and
        counts exactly what it would have."""
        try:
            r = parse_ipv4_tcp_frame(frame)
        except MalformedPacket:
            return False
        if r is None:
            return False
        _eth, ip, seg, ip_ok, tcp_ok = r
        h = self.host
        c = h.counters
        # from here on as receive() (l2_bcast False: the frame was sent to our MAC)
        if not ip_ok:
            c["drop.ipv4.bad_checksum"] += 1
            h.trace(now, "ipv4", "drop", reason="bad checksum")
            return True
        src = ip.src
        if src[0] == 127 or src[0] >= 224:
            c["drop.ipv4.martian_source"] += 1
            return True
        dst = ip.dst
        bcast = False
        if dst in h.local4:
            pass
        elif dst in (LIMITED_BCAST, ALL_HOSTS) or dst in iface.bcast4:
            bcast = True
        elif h.forwarding:
            self.forward(iface, ip, False, now)
            return True
        else:
            c["drop.ipv4.not_for_us"] += 1
            return True
        c["ipv4.rx.delivered"] += 1
        handler = h.protocols.get(PROTO_TCP)
        tcp = getattr(h, "tcp", None)
        if tcp is not None and handler is tcp.rx_handler:
            # our TCP layer: its view and verdict, and the two RxInfo fields it reads
            tcp.receive_view(src, dst, seg, tcp_ok, now, bcast, iface.index)
            return True
        buf = ip.buf
        info = RxInfo(4, iface.index, ip.ttl, ip.tos, bcast,
                      buf if len(buf) == ip.total_length else buf[:ip.total_length])
        if handler is not None:
            handler(src, dst, ip.payload, now, info)
        else:
            h.deliver(src, dst, PROTO_TCP, ip.payload, now, info)
        return True

    def _reasm_timeout(self, key: tuple, first: bytes | None, now: float) -> None:
        self.host.trace(now, "ipv4", "drop", reason="reassembly timeout")
        if first is not None:
            self.host.icmp.send_error4(first, 11, 1, now)

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
            h.icmp.send_error4(packet, 11, 0, now)
            return
        route = h.routes.lookup(dst)
        if route is None:
            c["drop.ipv4.no_route"] += 1
            h.trace(now, "ipv4", "drop", reason="no route", dst=ip_str(dst))
            h.icmp.send_error4(packet, 3, 0, now)
            return
        out, nexthop = h.route_out(route, dst)
        if out is None:
            c["drop.ipv4.no_route"] += 1
            h.icmp.send_error4(packet, 3, 0, now)
            return
        pkt = bytearray(packet)
        pkt[8] -= 1
        # RFC 1624 incremental update: TTL is the high byte of word 4, so the sum drops 0x100
        csum = ((pkt[10] << 8) | pkt[11]) + 0x100
        csum = (csum & 0xFFFF) + (csum >> 16)
        pkt[10] = csum >> 8
        pkt[11] = csum & 0xFF
        mtu = out.mtu
        c["ipv4.forwarded"] += 1
        if len(pkt) <= mtu:
            self.output(out, nexthop, pkt, now)
            return
        if ip.df:
            c["drop.ipv4.frag_needed"] += 1
            h.trace(now, "ipv4", "drop", reason="fragmentation needed", mtu=mtu,
                    dst=ip_str(dst))
            h.icmp.send_error4(packet, 3, 4, now, mtu=mtu)
            return
        hl = ip.header_len
        frags = fragment_ipv4(pkt[:hl], memoryview(pkt)[hl:], mtu)
        c["ipv4.fragmented"] += 1
        c["ipv4.fragments_created"] += len(frags)
        for f in frags:
            self.output(out, nexthop, f, now)

    # -- output --------------------------------------------------------------------------------
    def send(self, src: bytes | None, dst: bytes, proto: int, payload: bytes | bytearray,
             now: float, df: bool | None, ttl: int | None, tos: int, ifindex: int | None
             ) -> int | None:
        h = self.host
        c = h.counters
        if dst == LIMITED_BCAST:
            iface = h.interfaces[ifindex if ifindex is not None else 0]
            nexthop = LIMITED_BCAST
            route_src: bytes | bool | None = False  # False: not routed
        elif dst in h.local4:
            iface = h.local4[dst]
            nexthop = dst
            route_src = False
        else:
            entry = self.dst_cache.get(dst)
            if entry is None:
                c["drop.ipv4.tx_no_route"] += 1
                return errno.ENETUNREACH
            iface, nexthop, route_src = entry
            if src is None and route_src is not None:
                src = route_src
        if src is None:
            src = iface.v4_source_for(nexthop)
            if src is None:
                return errno.EADDRNOTAVAIL
        if ttl is None:
            ttl = h.default_ttl
        self.ident = ident = (self.ident + 1) & 0xFFFF
        n = 20 + len(payload)
        # the path MTU: the interface's, lowered by what the PMTU cache learned (h.path_mtu
        # without its second route lookup: the interface is the one found above)
        mtu = iface.mtu
        if route_src is not False:  # routed: the link MTU is this interface's
            if len(h.pmtu):  # nothing learned (the usual case): no lookup
                pmtu = h.pmtu.get(dst, mtu, None)
                if pmtu < mtu:
                    mtu = pmtu
        elif dst not in h.local4:
            mtu = min(mtu, h.path_mtu(dst))
        if n <= mtu:
            if n > 0xFFFF:
                raise ValueError(f"IPv4 total length {n} > 65535")
            hdr = bytearray(_HDR.pack(0x45, tos, n, ident, 0x4000 if df else 0, ttl, proto, 0,
                                      src, dst))
            _CSUM.pack_into(hdr, 10, -int.from_bytes(hdr, "big") % 0xFFFF)
            hdr += payload
            if nexthop in h.local4 or nexthop == LIMITED_BCAST or nexthop in iface.bcast4:
                self.output(iface, nexthop, hdr, now)
                return None
            # output() and host.send_frame() inline for a unicast next hop (every segment)
            mac = iface.arp.resolve(nexthop, hdr, now)
            if mac is not None:
                c["ipv4.tx.packets"] += 1
                c["tx.frames"] += 1
                h._out.append((iface.index, b"".join((mac, iface.mac, _ETH_IPV4, hdr))))
            return None
        if df or n > 65535:
            c["drop.ipv4.tx_too_big"] += 1
            return errno.EMSGSIZE
        header = build_ipv4(src, dst, proto, b"", ttl, ident, False, False, 0, tos)
        frags = fragment_ipv4(header, memoryview(payload), mtu)
        c["ipv4.tx.fragmented"] += 1
        for f in frags:
            self.output(iface, nexthop, f, now)
        return None

    def output(self, iface: Interface, nexthop: bytes, packet: bytearray, now: float) -> None:
        """Hand ``packet`` to the link, resolving ``nexthop`` with ARP (queued meanwhile)."""
        h = self.host
        if nexthop in h.local4:
            h.loopback(iface, packet)
            return
        if nexthop == LIMITED_BCAST or nexthop in iface.bcast4:
            mac = BROADCAST_MAC
        else:
            mac = iface.arp.resolve(nexthop, packet, now)
            if mac is None:
                return
        h.counters["ipv4.tx.packets"] += 1
        # one copy into an immutable frame (what a link wants) instead of a bytearray
        h.send_frame(iface.index, b"".join((mac, iface.mac, _ETH_IPV4, packet)))
