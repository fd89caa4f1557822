"""A router: a :class:`~stacklab.stack.host.Host` that forwards between its interfaces.

Forwarding itself lives in :mod:`stacklab.stack.ipv4` / :mod:`stacklab.stack.ipv6`
(``Ipv4.forward``, ``Ipv6.forward``): TTL/hop limit ⇒ Time Exceeded, no route ⇒ Destination
Unreachable, IPv4 too big ⇒ fragmented or (DF) Fragmentation Needed with the next-hop MTU,
IPv6 too big ⇒ Packet Too Big. A router joins ff02::2, sets the R flag in its Neighbor
Advertisements, ignores Router Advertisements and can announce prefixes with
``router.advertise(ifindex, "fd00:1::/64")``.

MSS clamping (``router.mss_clamp``, like ``iptables -j TCPMSS``): the MSS option of every TCP SYN
the router forwards is lowered to a number (``--set-mss``) or, with ``"pmtu"``
(``--clamp-mss-to-pmtu``), to the smaller MTU of the two interfaces the SYN crosses minus the
IP and TCP headers. Both ends then send segments that fit without ever needing an ICMP message —
the usual fix for PMTUD black holes on PPPoE/tunnel links, at the price of the end-to-end
principle (the router rewrites a transport header and its checksum).

NAT (``router.enable_nat("eth1")``, like ``iptables -t nat -A POSTROUTING -o eth1 -j
MASQUERADE``; port forwards and hairpinning too): :mod:`stacklab.stack.nat`, hooked into the
IPv4 forwarding path (``ipv4.nat``); ``router.nat.describe(now)`` lists the tracked connections
like ``conntrack -L``.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from stacklab.trace.events import Tracer
from stacklab.wire.addr import ip_str
from stacklab.wire.checksum import internet_checksum, pseudo_header
from stacklab.wire.frame import PartialFrame, complete_checksum
from stacklab.wire.ipv4 import IPv4View
from stacklab.wire.ipv6 import IPv6View
from stacklab.wire.proto import PROTO_TCP

from .host import Host
from .nat import Nat, PortForward

if TYPE_CHECKING:
    from .interface import Interface

_SYN = 0x02


def parse_mss_clamp(value: object) -> int | str | None:
    """``"pmtu"``, an MSS in bytes (88..65495), or None/false (off)."""
    if value is None or value is False or value == "off":
        return None
    if value == "pmtu":
        return "pmtu"
    if isinstance(value, bool) or not isinstance(value, int) or not 88 <= value <= 65495:
        raise ValueError(f"expected \"pmtu\" or an MSS between 88 and 65495, got {value!r}")
    return value


def clamp_syn_mss(packet: bytearray, l4: int, src: bytes, dst: bytes, limit: int) -> int | None:
    """Lower the MSS option of the TCP SYN at ``packet[l4:]`` to ``limit`` and fix the TCP
    checksum. Returns the old MSS when it was changed, else None (not a SYN, no MSS option,
    already small enough, or a malformed option list — then the packet is left alone)."""
    n = len(packet)
    if l4 + 20 > n or not packet[l4 + 13] & _SYN:
        return None
    end = l4 + (packet[l4 + 12] >> 4) * 4
    if end > n:
        return None
    i = l4 + 20
    while i < end:
        kind = packet[i]
        if kind == 0:
            return None
        if kind == 1:
            i += 1
            continue
        if i + 1 >= end or packet[i + 1] < 2 or i + packet[i + 1] > end:
            return None
        if kind == 2 and packet[i + 1] == 4:
            old = (packet[i + 2] << 8) | packet[i + 3]
            if old <= limit:
                return None
            packet[i + 2] = limit >> 8
            packet[i + 3] = limit & 0xFF
            seg = packet[l4:]
            seg[16] = seg[17] = 0
            csum = internet_checksum(seg, pseudo_header(src, dst, PROTO_TCP, len(seg)))
            packet[l4 + 16] = csum >> 8
            packet[l4 + 17] = csum & 0xFF
            return old
        i += packet[i + 1]
    return None


class Router(Host):
    kind = "router"
    forwarding = True

    def __init__(self, name: str, *, rng: random.Random | None = None,
                 tracer: Tracer | None = None) -> None:
        super().__init__(name, rng=rng, tracer=tracer)
        self.ndp.accept_ra = False
        self.mss_clamp: int | str | None = None  # see the module docstring
        self.nat: Nat | None = None  # see enable_nat
        self._forward4 = self.ipv4.forward
        self._forward6 = self.ipv6.forward
        # the MSS clamp wraps this router's forwarding (per instance, not per class)
        self.ipv4.forward = self._clamp_forward4  # type: ignore[method-assign]
        self.ipv6.forward = self._clamp_forward6  # type: ignore[method-assign]

    def receive_frame(self, ifindex: int, frame: bytes | memoryview, now: float,
                      csum_valid: bool = False, gso_size: int = 0) -> None:
        """A transit IPv4 frame to our MAC goes through :meth:`Ipv4.forward_frame`, the
        forwarding fast path (without MSS clamping, which rewrites SYNs); everything else, and
        whatever that path declines, is received as a host receives it."""
        # (bytes, or the bytearray a simulated sender built; a device's memoryview is not)
        if not isinstance(frame, memoryview) and not gso_size and self.mss_clamp is None \
                and 0 <= ifindex < len(self.interfaces) and frame[12:14] == b"\x08\x00":
            iface = self.interfaces[ifindex]
            if iface.port.up and frame.startswith(iface.mac) \
                    and self.ipv4.forward_frame(iface, frame, now):
                self.counters["rx.frames"] += 1
                return
        if type(frame) is PartialFrame:
            # forwarding's other paths (NAT, MSS clamping, fragmentation, ICMP errors quoting
            # the packet) read and rewrite it: real checksums first (skb_checksum_help)
            frame = complete_checksum(frame)
        super().receive_frame(ifindex, frame, now, csum_valid, gso_size)

    def advertise(self, ifindex: int, prefix: str | None = None, *,
                  autonomous: bool = True) -> None:
        """Send Router Advertisements on ``ifindex`` (prefix + this router as default)."""
        self.ndp.advertise(ifindex, prefix, autonomous=autonomous)

    def enable_nat(self, outside: str, forwards: tuple[PortForward, ...] = ()) -> Nat:
        """Masquerade what leaves by the interface named ``outside`` (and apply ``forwards``,
        port forwards to inside hosts); see :mod:`stacklab.stack.nat`."""
        self.nat = Nat(self, outside, forwards, resolve=lambda name: self.resolve(name, 4))
        self.ipv4.nat = self.nat
        return self.nat

    # -- MSS clamping ----------------------------------------------------------------------------
    def _mss_limit(self, iface: Interface, dst: bytes, header: int) -> int | None:
        clamp = self.mss_clamp
        if clamp is None:
            return None
        if clamp != "pmtu":
            return int(clamp)
        route = self.routes.lookup(dst)
        if route is None:
            return None
        out, _ = self.route_out(route, dst)
        if out is None:
            return None
        return min(iface.mtu, out.mtu) - header

    def _clamp(self, ip: IPv4View | IPv6View, l4: int, iface: Interface, header: int,
               now: float) -> bytearray | None:
        limit = self._mss_limit(iface, ip.dst, header)
        if limit is None:
            return None
        pkt = bytearray(ip.buf[:l4 + (len(ip.payload))])
        old = clamp_syn_mss(pkt, l4, ip.src, ip.dst, limit)
        if old is None:
            return None
        self.counters["tcp.mss_clamped"] += 1
        self.trace(now, "tcp", "mss_clamp", src=ip_str(ip.src), dst=ip_str(ip.dst), old=old,
                   new=limit)
        return pkt

    def _clamp_forward4(self, iface: Interface, ip: IPv4View, l2_bcast: bool, now: float) -> None:
        if self.mss_clamp is not None and ip.proto == PROTO_TCP and not ip.flags_frag & 0x3FFF \
                and len(ip.payload) >= 20 and ip.payload[13] & _SYN:
            pkt = self._clamp(ip, ip.header_len, iface, 40, now)
            if pkt is not None:
                ip = IPv4View(pkt)
        self._forward4(iface, ip, l2_bcast, now)

    def _clamp_forward6(self, iface: Interface, ip: IPv6View, l2_mcast: bool, now: float) -> None:
        if self.mss_clamp is not None and ip.next_header == PROTO_TCP \
                and len(ip.payload) >= 20 and ip.payload[13] & _SYN:
            pkt = self._clamp(ip, 40, iface, 60, now)
            if pkt is not None:
                ip = IPv6View(pkt)
        self._forward6(iface, ip, l2_mcast, now)
