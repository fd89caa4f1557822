"""IPv6 (RFC 8200) input, output and forwarding.

Input walks the extension header chain (Hop-by-Hop only first, Routing with segments left is
refused with Parameter Problem, Destination Options skipped, unknown next header ⇒ Parameter
Problem code 1), reassembles fragments (overlap ⇒ whole datagram dropped, RFC 5722; 60 s),
delivers to the upper layer. Routers never fragment: too big ⇒ Packet Too Big with the next-hop
MTU; hop limit ⇒ Time Exceeded; no route ⇒ Destination Unreachable code 0; link-local sources
are not forwarded (code 2, beyond scope). Sources fragment with a Fragment header when a
datagram exceeds the path MTU (minimum 1280, RFC 8200 §5).
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from stacklab.stack.route import DstCache
from stacklab.wire.addr import ip_str, is_link_local, multicast_mac
from stacklab.wire.ethernet import ETH_P_IPV6
from stacklab.wire.ipv6 import MIN_MTU, IPv6View, build_ipv6
from stacklab.wire.proto import PROTO_DSTOPTS as NH_DEST_OPTS
from stacklab.wire.proto import PROTO_FRAGMENT as NH_FRAGMENT
from stacklab.wire.proto import PROTO_HOPOPTS as NH_HOP_BY_HOP
from stacklab.wire.proto import PROTO_ICMPV6, PROTO_TCP, PROTO_UDP
from stacklab.wire.proto import PROTO_NONE as NH_NONE
from stacklab.wire.proto import PROTO_ROUTING as NH_ROUTING

from .context import RxInfo
from .frag import Key, Reassembler, fragment_ipv6
from .interface import LOOPBACK6
from .ipid import IpIdGenerator

if TYPE_CHECKING:
    from .context import HostContext
    from .interface import Interface

_ETH_IPV6 = ETH_P_IPV6.to_bytes(2, "big")
UPPER_FAST = frozenset((PROTO_TCP, PROTO_UDP, PROTO_ICMPV6))


# the upper-layer header a first fragment must hold (Linux's check: TCP, UDP, ICMPv6 headers;
# any other protocol at least one byte)
_UPPER_HEADER = {PROTO_TCP: 20, PROTO_UDP: 8, PROTO_ICMPV6: 8}


def _chain_complete(buf: memoryview | bytes, off: int, end: int, nh: int) -> bool:
    """Whether ``buf[off:end]`` (after a Fragment header) holds every extension header and the
    upper-layer header that follow (RFC 7112 §5)."""
    for _ in range(16):
        if nh in (NH_HOP_BY_HOP, NH_DEST_OPTS, NH_ROUTING):
            if off + 2 > end:
                return False
            nh, off = buf[off], off + (buf[off + 1] + 1) * 8
        elif nh == NH_FRAGMENT:
            if off + 8 > end:
                return False
            nh, off = buf[off], off + 8
        elif nh == NH_NONE:
            return off <= end
        else:
            return off + _UPPER_HEADER.get(nh, 1) <= end
    return True  # too long a chain: the walk after reassembly drops it


class Ipv6:
    def __init__(self, host: HostContext) -> None:
        self.host = host
        # 60 s: net.ipv6.ip6frag_time; memory: ip6frag_high_thresh / ip6frag_low_thresh
        self.reasm = Reassembler("ipv6", 60.0, 65535, host.counters,
                                 on_timeout=self._reasm_timeout)
        self.ids = IpIdGenerator(host.rng)  # RFC 7739 per-destination hashed IDs
        self.dst_cache = DstCache(host)

    # -- input ---------------------------------------------------------------------------------
    def receive(self, iface: Interface, buf: memoryview, l2_mcast: bool, now: float) -> None:
        h = self.host
        c = h.counters
        ip = IPv6View(buf)  # raises MalformedPacket
        src = ip.src
        dst = ip.dst
        if src[0] == 0xFF:
            c["drop.ipv6.multicast_source"] += 1
            return
        if dst[0] == 0xFF:
            if dst not in iface.groups6:
                c["ipv6.rx.not_member"] += 1
                return
            mcast = True
        elif dst in h.local6:
            if (dst == LOOPBACK6 or src == LOOPBACK6) and iface is not h.lo:
                # RFC 4291 §2.5.3: ::1 never comes in from a link
                c["drop.ipv6.martian_loopback"] += 1
                return
            mcast = l2_mcast
        elif h.forwarding:
            self.forward(iface, ip, l2_mcast, now)
            return
        else:
            c["drop.ipv6.not_for_us"] += 1
            return
        c["ipv6.rx.delivered"] += 1
        nh = ip.next_header
        end = 40 + ip.payload_length
        packet = ip.buf[:end]
        if nh in UPPER_FAST:
            h.deliver(src, dst, nh, ip.payload, now,
                      RxInfo(6, iface.index, ip.hop_limit, ip.traffic_class, mcast, packet))
            return
        self._walk(iface, ip, packet, nh, 40, end, mcast, now, first_pass=True)

    def _walk(self, iface: Interface, ip: IPv6View, packet: memoryview | bytes, nh: int,
              off: int, end: int, mcast: bool, now: float, first_pass: bool,
              quote: memoryview | bytes | None = None) -> None:
        """Walk extension headers from ``off`` in ``packet`` until the upper layer."""
        h = self.host
        c = h.counters
        buf = packet
        for _ in range(16):
            if nh in (NH_HOP_BY_HOP, NH_DEST_OPTS, NH_ROUTING):
                if nh == NH_HOP_BY_HOP and (off != 40 or not first_pass):
                    c["drop.ipv6.hop_by_hop_not_first"] += 1
                    h.send_icmp_error6(quote or packet, 4, 1, now, param=off, l2_mcast=mcast)
                    return
                if off + 8 > end:
                    c["drop.ipv6.ext_header"] += 1
                    return
                size = (buf[off + 1] + 1) * 8
                if off + size > end:
                    c["drop.ipv6.ext_header"] += 1
                    return
                if nh == NH_ROUTING and buf[off + 3] != 0:
                    # segments left with a type we do not implement (RFC 8200 §4.4)
                    c["drop.ipv6.routing_header"] += 1
                    h.send_icmp_error6(quote or packet, 4, 0, now, param=off + 2, l2_mcast=mcast)
                    return
                nh = buf[off]
                off += size
            elif nh == NH_FRAGMENT:
                if not first_pass:
                    c["drop.ipv6.nested_fragment"] += 1
                    return
                if off + 8 > end:
                    c["drop.ipv6.ext_header"] += 1
                    return
                nxt = buf[off]
                word = (buf[off + 2] << 8) | buf[off + 3]
                ident = int.from_bytes(buf[off + 4:off + 8], "big")
                foff = word & 0xFFF8
                more = bool(word & 1)
                if foff == 0 and more and not _chain_complete(buf, off + 8, end, nxt):
                    # RFC 7112 / RFC 8200 §4.5: a first fragment must hold the whole header
                    # chain up to the upper-layer header; Parameter Problem code 3, pointer 0
                    c["drop.ipv6.frag_incomplete_chain"] += 1
                    h.send_icmp_error6(packet, 4, 3, now, param=0, l2_mcast=mcast)
                    return
                first = bytes(buf[:end]) if foff == 0 else None
                res = self.reasm.add((ip.src, ip.dst, ident), foff, buf[off + 8:end], more, now,
                                     (first, nxt) if first is not None else None,
                                     len(first) if first is not None else 0)
                if res is None:
                    return
                data, firstinfo = res
                c["ipv6.reassembled"] += 1
                first, nxt = firstinfo if firstinfo else (b"", nxt)
                self._walk(iface, ip, data, nxt, 0, len(data), mcast, now, first_pass=False,
                           quote=first)
                return
            elif nh == NH_NONE:
                return
            else:
                break
        else:
            c["drop.ipv6.ext_header_chain"] += 1
            return
        info = RxInfo(6, iface.index, ip.hop_limit, ip.traffic_class, mcast,
                      quote if quote is not None else packet, not first_pass)
        h.deliver(ip.src, ip.dst, nh, memoryview(buf)[off:end], now, info)

    def _reasm_timeout(self, key: Key, first: tuple[bytes, int] | None,
                       now: float) -> None:
        self.host.trace(now, "ipv6", "drop", reason="reassembly timeout")
        if first is not None and first[0]:
            self.host.send_icmp_error6(first[0], 3, 1, now)

    # -- forwarding ----------------------------------------------------------------------------
    def forward(self, iface: Interface, ip: IPv6View, l2_mcast: bool, now: float) -> None:
        h = self.host
        c = h.counters
        src, dst = ip.src, ip.dst
        packet = ip.buf[:40 + ip.payload_length]
        if src == bytes(16) or is_link_local(dst):
            c["drop.ipv6.not_forwardable"] += 1
            return
        if is_link_local(src):
            c["drop.ipv6.beyond_scope"] += 1
            h.send_icmp_error6(packet, 1, 2, now, l2_mcast=l2_mcast)
            return
        if ip.hop_limit <= 1:
            c["drop.ipv6.hop_limit_exceeded"] += 1
            h.trace(now, "ipv6", "drop", reason="hop limit exceeded", dst=ip_str(dst))
            h.send_icmp_error6(packet, 3, 0, now, l2_mcast=l2_mcast)
            return
        route = h.routes.lookup(dst)
        out, nexthop = h.route_out(route, dst) if route is not None else (None, dst)
        if out is None:
            c["drop.ipv6.no_route"] += 1
            h.trace(now, "ipv6", "drop", reason="no route", dst=ip_str(dst))
            h.send_icmp_error6(packet, 1, 0, now, l2_mcast=l2_mcast)
            return
        mtu = out.mtu
        if len(packet) > mtu:
            c["drop.ipv6.packet_too_big"] += 1
            h.trace(now, "ipv6", "drop", reason="packet too big", mtu=mtu, dst=ip_str(dst))
            h.send_icmp_error6(packet, 2, 0, now, param=mtu, l2_mcast=l2_mcast)
            return
        pkt = bytearray(packet)
        pkt[7] -= 1
        c["ipv6.forwarded"] += 1
        self.output(out, nexthop, pkt, now)

    # -- output --------------------------------------------------------------------------------
    def send(self, src: bytes | None, dst: bytes, nh: int, payload: bytes | bytearray | memoryview,
             now: float, df: bool | None, hop_limit: int | None, tclass: int,
             ifindex: int | None) -> None:
        h = self.host
        c = h.counters
        iface: Interface | None
        if dst in h.local6:  # ours (::1 included): out by lo, from the address itself
            iface = h.lo
            nexthop = dst
            if src is None:
                src = dst
        elif dst[0] == 0xFF or is_link_local(dst):
            iface = h.interfaces[ifindex] if ifindex is not None else h.default_link_iface(dst)
            if iface is None:
                raise OSError(errno.EHOSTUNREACH, os.strerror(errno.EHOSTUNREACH))
            nexthop = dst
        else:
            entry = self.dst_cache.get(dst)
            if entry is None:
                c["drop.ipv6.tx_no_route"] += 1
                raise OSError(errno.ENETUNREACH, os.strerror(errno.ENETUNREACH))
            iface, nexthop, _ = entry
            if src is None:
                src = iface.v6_source_for(dst)
                if src is None:
                    raise OSError(errno.EADDRNOTAVAIL, os.strerror(errno.EADDRNOTAVAIL))
            if hop_limit is None:
                hop_limit = 255 if nh == 58 and dst[0] == 0xFF and dst[1] == 2 else h.hop_limit6
            # the path MTU: h.path_mtu(dst) without its second route lookup (this interface)
            mtu = iface.mtu
            if len(h.pmtu):
                pmtu = h.pmtu.get(dst, mtu, None)
                if pmtu < mtu:
                    mtu = pmtu
            return self._send_on(iface, nexthop, src, dst, nh, payload, now, df, hop_limit,
                                 tclass, mtu)
        if src is None:
            src = iface.v6_source_for(dst)
            if src is None:
                raise OSError(errno.EADDRNOTAVAIL, os.strerror(errno.EADDRNOTAVAIL))
        if hop_limit is None:
            hop_limit = 255 if nh == 58 and dst[0] == 0xFF and dst[1] == 2 else h.hop_limit6
        mtu = iface.mtu if iface is h.lo else min(iface.mtu, h.path_mtu(dst))
        return self._send_on(iface, nexthop, src, dst, nh, payload, now, df, hop_limit, tclass,
                             mtu)

    def _send_on(self, iface: Interface, nexthop: bytes, src: bytes, dst: bytes, nh: int,
                 payload: bytes | bytearray | memoryview, now: float, df: bool | None,
                 hop_limit: int,
                 tclass: int, mtu: int) -> None:
        c = self.host.counters
        n = 40 + len(payload)
        if n <= mtu:
            self.output(iface, nexthop, build_ipv6(src, dst, nh, payload, hop_limit, tclass),
                        now)
            return None
        if df or n - 40 > 65535:
            c["drop.ipv6.tx_too_big"] += 1
            raise OSError(errno.EMSGSIZE, os.strerror(errno.EMSGSIZE))
        # Linux never uses 0 (a receiver may treat it as "no ID"): it takes 1 << 31 instead
        ident = self.ids.next(src, dst, nh, now) or 1 << 31
        frags = fragment_ipv6(src, dst, nh, payload, max(mtu, MIN_MTU), ident, hop_limit,
                              tclass)
        c["ipv6.tx.fragmented"] += 1
        for f in frags:
            self.output(iface, nexthop, f, now)
        return None

    def output(self, iface: Interface, nexthop: bytes, packet: bytes | bytearray,
               now: float) -> None:
        h = self.host
        if iface is h.lo:
            h.loopback(packet, now)
            return
        mac: bytes | None
        if nexthop[0] == 0xFF:
            mac = multicast_mac(nexthop)
            if packet[6] == PROTO_UDP and nexthop in iface.groups6:
                h.loopback(packet, now, iface)  # IPV6_MULTICAST_LOOP: members here get a copy
        else:
            mac = iface.nd.resolve(nexthop, packet, now)
            if mac is None:
                return
        h.counters["ipv6.tx.packets"] += 1
        # one copy into an immutable frame (what a link wants) instead of a bytearray
        h.send_frame(iface.index, b"".join((mac, iface.mac, _ETH_IPV6, packet)))
