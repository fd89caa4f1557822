"""ARP (RFC 826) on one interface: requests, replies, gratuitous ARP, feeding the neighbour cache.

The cache itself (states, queue, retries) is :class:`~stacklab.stack.neighbor.NeighborCache`;
this module is the IPv4/Ethernet glue: how to solicit, how to send a resolved packet, and what a
received ARP packet means for the cache. We answer only for addresses assigned to the interface
the request came in on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stacklab.wire.addr import BROADCAST_MAC, ZERO_MAC, ip_str, mac_str
from stacklab.wire.arp import ARP_REPLY, ARP_REQUEST, ArpView, build_arp
from stacklab.wire.ethernet import ETH_P_ARP, ETH_P_IPV4, build_ethernet, pad_frame

if TYPE_CHECKING:
    from .context import HostContext
    from .interface import Interface

ZERO_IP = b"\x00\x00\x00\x00"


class ArpResolver:
    """The neighbour-cache owner for IPv4 on one interface."""

    __slots__ = ("host", "iface")
    iface: Interface  # set by the host once the interface exists

    def __init__(self, host: HostContext) -> None:
        self.host = host

    def solicit(self, ip: bytes, mac: bytes | None, now: float) -> None:
        """Who-has ``ip``: broadcast while INCOMPLETE, unicast to ``mac`` while PROBE."""
        iface = self.iface
        src = iface.v4_source_for(ip) or ZERO_IP
        frame = build_ethernet(mac or BROADCAST_MAC, iface.mac, ETH_P_ARP,
                               build_arp(ARP_REQUEST, iface.mac, src, ZERO_MAC, ip))
        self.host.counters["arp.tx.request"] += 1
        self.host.send_frame(iface.index, pad_frame(frame))
        self.host.trace(now, "arp", "tx", op="request", who_has=ip_str(ip), tell=ip_str(src))

    def transmit(self, mac: bytes, packet: bytes) -> None:
        self.host.send_frame(self.iface.index,
                             build_ethernet(mac, self.iface.mac, ETH_P_IPV4, packet))

    def failed(self, ip: bytes, packets: list[bytes | bytearray], now: float) -> None:
        self.host.trace(now, "arp", "drop", reason="unresolved", ip=ip_str(ip),
                        packets=len(packets))
        self.host.resolution_failed(self.iface, ip, packets, now)


def gratuitous_arp(host: HostContext, iface: Interface, addr: bytes) -> None:
    """Announce ``addr`` (RFC 5227 §3: an ARP request with sender = target = our address)."""
    frame = build_ethernet(BROADCAST_MAC, iface.mac, ETH_P_ARP,
                           build_arp(ARP_REQUEST, iface.mac, addr, ZERO_MAC, addr))
    host.counters["arp.tx.gratuitous"] += 1
    host.send_frame(iface.index, pad_frame(frame))


def arp_receive(host: HostContext, iface: Interface, payload: memoryview, eth_dst: bytes,
                now: float) -> None:
    a = ArpView(payload)  # raises MalformedPacket
    c = host.counters
    op = a.op
    if op != ARP_REQUEST and op != ARP_REPLY:
        c["drop.arp.op"] += 1
        return
    sha, spa, tpa = a.sha, a.spa, a.tpa
    if sha == iface.mac:
        c["drop.arp.own_frame"] += 1
        return
    if sha[0] & 1:
        c["drop.arp.bad_sender_mac"] += 1  # a multicast/broadcast sender is never valid
        return
    own_target = iface.has_v4(tpa)
    host.acd.arp_seen(iface, op, sha, spa, tpa, now)  # a probe of ours in progress?
    if spa != ZERO_IP and host.is_local4(spa):
        # somebody else claims one of our addresses (RFC 5227 §2.4 (b)): count, keep ours and
        # defend it with one announcement (at most one per DEFEND_INTERVAL)
        c["arp.conflicts"] += 1
        host.trace(now, "arp", "drop", reason="address conflict", ip=ip_str(spa),
                   mac=mac_str(sha))
        if iface.has_v4(spa):
            host.acd.defend(iface, spa, now)
        return
    cache = iface.arp
    if op == ARP_REQUEST:
        c["arp.rx.request"] += 1
        if spa != ZERO_IP and (own_target or spa in cache.entries):
            # RFC 826 merge: requests to us create the entry, others only refresh one (a
            # request for another host from a sender we do not know: nothing to do, the
            # common case on a switched LAN, where every host hears every request)
            cache.update(spa, sha, now, solicited=False, create=own_target)
        if own_target:
            reply = build_ethernet(sha, iface.mac, ETH_P_ARP,
                                   build_arp(ARP_REPLY, iface.mac, tpa, sha, spa))
            c["arp.tx.reply"] += 1
            host.send_frame(iface.index, pad_frame(reply))
        return
    c["arp.rx.reply"] += 1
    if spa == ZERO_IP:
        c["drop.arp.bad_sender_ip"] += 1
        return
    # a unicast reply to our request confirms reachability; a broadcast (gratuitous) one
    # only tells us where the address is now
    solicited = own_target and eth_dst == iface.mac
    cache.update(spa, sha, now, solicited=solicited, create=own_target)
