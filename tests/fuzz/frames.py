"""The bench's addresses, frame builders (all through ``stacklab.wire``), the seed corpus and the
checksum fix-up the fuzzers apply after a mutation (a frame with a bad checksum stops at the
first check: fixing it lets the mutation reach the layer above)."""

from __future__ import annotations

import struct

from stacklab.wire.addr import ip_bytes, solicited_node
from stacklab.wire.arp import ARP_REPLY, ARP_REQUEST, build_arp
from stacklab.wire.checksum import (
    internet_checksum,
    ipv4_header_store,
    pseudo_header,
    pseudo_store,
)
from stacklab.wire.ethernet import ETH_P_ARP, ETH_P_IPV4, ETH_P_IPV6, build_ethernet
from stacklab.wire.icmpv4 import build_icmpv4
from stacklab.wire.icmpv6 import (
    MtuOpt,
    NeighborAdvertisement,
    NeighborSolicitation,
    PrefixInfoOpt,
    RouterAdvertisement,
    RouterSolicitation,
    SourceLinkAddrOpt,
    TargetLinkAddrOpt,
    build_icmpv6,
)
from stacklab.wire.igmp import (
    HBH_ROUTER_ALERT6,
    ROUTER_ALERT4,
    GroupRecord,
    build_igmp_query,
    build_igmp_report,
    build_igmp_v3_report,
    build_mld_query,
    build_mld_v2_report,
)
from stacklab.wire.ipv4 import build_ipv4
from stacklab.wire.ipv6 import (
    DestinationOptions,
    Fragment,
    HopByHop,
    IPv6,
    IPv6View,
    Routing,
    build_ipv6,
    walk_ext_headers,
)
from stacklab.wire.proto import (
    PROTO_HOPOPTS,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_IGMP,
    PROTO_TCP,
    PROTO_UDP,
)
from stacklab.wire.tcp import ACK, FIN, PSH, RST, SYN, build_tcp, encode_options
from stacklab.wire.udp import build_udp

MAC_A = bytes.fromhex("02000000000a")
MAC_B = bytes.fromhex("02000000000b")
MAC_R0 = bytes.fromhex("020000000100")
MAC_R1 = bytes.fromhex("020000000101")
MAC_X = bytes.fromhex("0200000000ee")  # an on-link attacker
BCAST = b"\xff" * 6
A4, R04, R14, B4 = (ip_bytes(x) for x in ("10.0.1.2", "10.0.1.1", "10.0.2.1", "10.0.2.2"))
A6, R06, R16, B6 = (ip_bytes(x) for x in ("fd01::2", "fd01::1", "fd02::1", "fd02::2"))
X4, X6 = ip_bytes("10.0.1.66"), ip_bytes("fd01::66")
R0_LL = ip_bytes("fe80::1")
HTTP_PORT, SSH_PORT, DNS_PORT, B_UDP_PORT = 80, 22, 53, 5353
ALL_NODES = ip_bytes("ff02::1")
ALL_ROUTERS = ip_bytes("ff02::2")


def eth(pkt: bytes | bytearray, *, dst: bytes = MAC_A, src: bytes = MAC_R0,
        ethertype: int | None = None) -> bytes:
    if ethertype is None:
        ethertype = ETH_P_IPV4 if pkt[0] >> 4 == 4 else ETH_P_IPV6
    return bytes(build_ethernet(dst, src, ethertype, pkt))


def udp4(src: bytes, dst: bytes, sport: int, dport: int, data: bytes, **kw: object) -> bytes:
    return bytes(build_ipv4(src, dst, PROTO_UDP, build_udp(src, dst, sport, dport, data), **kw))


def udp6(src: bytes, dst: bytes, sport: int, dport: int, data: bytes) -> bytes:
    return bytes(build_ipv6(src, dst, PROTO_UDP, build_udp(src, dst, sport, dport, data)))


def frags4(src: bytes, dst: bytes, proto: int, l4: bytes, ident: int,
           size: int = 64) -> list[bytes]:
    """``l4`` as IPv4 fragments of ``size`` bytes (a multiple of 8)."""
    out = []
    for off in range(0, len(l4), size):
        out.append(bytes(build_ipv4(src, dst, proto, l4[off:off + size], ident=ident,
                                    mf=off + size < len(l4), frag_offset=off)))
    return out


def frags6(src: bytes, dst: bytes, proto: int, l4: bytes, ident: int,
           size: int = 64) -> list[bytes]:
    out = []
    for off in range(0, len(l4), size):
        out.append(bytes(IPv6(src, dst, proto, l4[off:off + size], ext_headers=[
            Fragment(off, off + size < len(l4), ident)]).build()))
    return out


def tcp4(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
         data: bytes = b"", opts: bytes = b"", window: int = 65535) -> bytes:
    return bytes(build_ipv4(src, dst, PROTO_TCP, build_tcp(src, dst, sport, dport, seq, ack, flags,
                                                            window, data, opts)))


def tcp6(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
         data: bytes = b"", opts: bytes = b"", window: int = 65535) -> bytes:
    return bytes(build_ipv6(src, dst, PROTO_TCP, build_tcp(src, dst, sport, dport, seq, ack, flags,
                                                            window, data, opts)))


def ra(prefix: bytes = ip_bytes("fd09::"), plen: int = 64, *, src: bytes = R0_LL,
       mtu: int | None = 1500, lifetime: int = 1800) -> bytes:
    opts: list = [SourceLinkAddrOpt(MAC_R0), PrefixInfoOpt(plen, True, True, 86400, 14400, prefix)]
    if mtu is not None:
        opts.append(MtuOpt(mtu))
    body = RouterAdvertisement(router_lifetime=lifetime, options=opts).build(src, ALL_NODES)
    return eth(build_ipv6(src, ALL_NODES, PROTO_ICMPV6, body, hop_limit=255),
               dst=b"\x33\x33\x00\x00\x00\x01")


def seeds(http_sport: int, ssh_sport: int) -> dict[str, tuple[str, bytes]]:
    """The seed corpus: name -> (target, frame). The TCP seeds use the live 4-tuples (the
    fuzzers rebase their sequence numbers) and the listener's port."""
    syn_opts = encode_options(mss=1460, wscale=7, sack_permitted=True, timestamps=(1, 0))
    ts = encode_options(timestamps=(5, 6))
    udp_data = bytes(range(200))
    big = build_udp(B4, A4, B_UDP_PORT, DNS_PORT, udp_data)
    big6 = build_udp(B6, A6, B_UDP_PORT, DNS_PORT, udp_data)
    quoted4 = tcp4(A4, B4, http_sport, HTTP_PORT, 1000, 2000, ACK, b"x" * 20)[:28]
    quoted6 = tcp6(A6, B6, SSH_PORT, ssh_sport, 1000, 2000, ACK, b"x" * 20)
    ns_body = NeighborSolicitation(A6, [SourceLinkAddrOpt(MAC_X)]).build(X6, solicited_node(A6))
    na_body = NeighborAdvertisement(R06, router=True, solicited=False, override=True,
                                    options=[TargetLinkAddrOpt(MAC_X)]).build(X6, ALL_NODES)
    rs_body = RouterSolicitation([SourceLinkAddrOpt(MAC_X)]).build(X6, ALL_ROUTERS)
    hbh = HopByHop(b"\x05\x02\x00\x00")  # router alert
    dst_opts = DestinationOptions(b"\x1e\x04abcd")  # an unknown option, skippable (00 bits)
    rh0 = Routing(0, 1, bytes(4) + B6)
    out: dict[str, tuple[str, bytes]] = {
        "arp-request": ("A", eth(build_arp(ARP_REQUEST, MAC_X, X4, bytes(6), A4), dst=BCAST,
                                 src=MAC_X, ethertype=ETH_P_ARP)),
        "arp-reply": ("A", eth(build_arp(ARP_REPLY, MAC_X, X4, MAC_A, A4), src=MAC_X,
                               ethertype=ETH_P_ARP)),
        "arp-router": ("R0", eth(build_arp(ARP_REQUEST, MAC_X, X4, bytes(6), R04), dst=BCAST,
                                 src=MAC_X, ethertype=ETH_P_ARP)),
        "vlan": ("A", eth(b"\x00\x05\x08\x00" + udp4(B4, A4, 1, DNS_PORT, b"v"),
                          ethertype=0x8100)),
        "echo4": ("A", eth(build_ipv4(B4, A4, PROTO_ICMP,
                                      build_icmpv4(8, 0, struct.pack("!HH", 1, 1), b"ping")))),
        "echo4-rr": ("A", eth(build_ipv4(B4, A4, PROTO_ICMP,
                                         build_icmpv4(8, 0, struct.pack("!HH", 1, 2), b"rr"),
                                         options=bytes([7, 11, 4]) + bytes(8) + b"\x00"))),
        "echo4-bcast": ("A", eth(build_ipv4(X4, ip_bytes("10.0.1.255"), PROTO_ICMP,
                                            build_icmpv4(8, 0, struct.pack("!HH", 1, 3))),
                                 dst=BCAST, src=MAC_X)),
        "udp4": ("A", eth(udp4(B4, A4, B_UDP_PORT, DNS_PORT, b"query"))),
        "udp4-closed": ("A", eth(udp4(B4, A4, 999, 7777, b"nobody"))),
        "frag4-first": ("A", eth(frags4(B4, A4, PROTO_UDP, bytes(big), 7)[0])),
        "frag4-last": ("A", eth(frags4(B4, A4, PROTO_UDP, bytes(big), 7)[-1])),
        "frag4-overlap": ("A", eth(build_ipv4(B4, A4, PROTO_UDP, bytes(40), ident=7, mf=True,
                                              frag_offset=56))),
        "frag4-tiny": ("A", eth(build_ipv4(B4, A4, PROTO_TCP, bytes(8), ident=9, mf=True))),
        "tcp4-syn-closed": ("A", eth(tcp4(B4, A4, 4444, 8080, 77, 0, SYN, opts=syn_opts))),
        "tcp4-data": ("A", eth(tcp4(B4, A4, HTTP_PORT, http_sport, 5000, 6000, ACK | PSH,
                                    b"hello", ts))),
        "tcp4-rst": ("A", eth(tcp4(B4, A4, HTTP_PORT, http_sport, 5000, 0, RST))),
        "tcp4-fin": ("A", eth(tcp4(B4, A4, HTTP_PORT, http_sport, 5000, 6000, FIN | ACK))),
        "tcp4-syn-live": ("A", eth(tcp4(B4, A4, HTTP_PORT, http_sport, 5000, 0, SYN,
                                        opts=syn_opts))),
        "icmp4-unreach": ("A", eth(build_ipv4(R04, A4, PROTO_ICMP,
                                              build_icmpv4(3, 1, b"\x00" * 4, quoted4)))),
        "icmp4-ptb": ("A", eth(build_ipv4(R04, A4, PROTO_ICMP, build_icmpv4(
            3, 4, struct.pack("!HH", 0, 576), quoted4)))),
        "icmp4-quench-ttl": ("A", eth(build_ipv4(R04, A4, PROTO_ICMP,
                                                 build_icmpv4(11, 0, b"\x00" * 4, quoted4)))),
        "fwd4": ("R0", eth(tcp4(A4, B4, http_sport, HTTP_PORT, 1, 1, ACK, b"via r"),
                           dst=MAC_R0, src=MAC_A)),
        "fwd4-ttl1": ("R0", eth(build_ipv4(A4, B4, PROTO_UDP, build_udp(A4, B4, 1, 2, b"t"),
                                           ttl=1), dst=MAC_R0, src=MAC_A)),
        "fwd4-df-big": ("R1", eth(build_ipv4(B4, A4, PROTO_UDP, build_udp(B4, A4, 1, 2, bytes(
            1400)), df=True), dst=MAC_R1, src=MAC_B)),
        "echo6": ("A", eth(build_ipv6(B6, A6, PROTO_ICMPV6, build_icmpv6(
            B6, A6, 128, 0, struct.pack("!HH", 1, 1) + b"ping")))),
        "udp6": ("A", eth(udp6(B6, A6, B_UDP_PORT, DNS_PORT, b"query6"))),
        "udp6-ext": ("A", eth(IPv6(B6, A6, PROTO_UDP, bytes(build_udp(
            B6, A6, B_UDP_PORT, DNS_PORT, b"ext")), ext_headers=[hbh, dst_opts]).build())),
        "rh0": ("A", eth(IPv6(B6, A6, PROTO_UDP, bytes(build_udp(B6, A6, 1, DNS_PORT, b"rh")),
                              ext_headers=[rh0]).build())),
        "frag6-first": ("A", eth(frags6(B6, A6, PROTO_UDP, bytes(big6), 8)[0])),
        "frag6-last": ("A", eth(frags6(B6, A6, PROTO_UDP, bytes(big6), 8)[-1])),
        "frag6-atomic": ("A", eth(IPv6(B6, A6, PROTO_UDP, bytes(build_udp(
            B6, A6, B_UDP_PORT, DNS_PORT, b"atomic")), ext_headers=[Fragment(0, False, 3)]
        ).build())),
        "tcp6-data": ("A", eth(tcp6(B6, A6, ssh_sport, SSH_PORT, 5000, 6000, ACK | PSH,
                                    b"ssh", ts))),
        "tcp6-syn-listen": ("A", eth(tcp6(B6, A6, 3333, SSH_PORT, 99, 0, SYN, opts=syn_opts))),
        "tcp4-syn-listen": ("A", eth(tcp4(B4, A4, 3334, SSH_PORT, 99, 0, SYN, opts=syn_opts))),
        "tcp6-rst": ("A", eth(tcp6(B6, A6, ssh_sport, SSH_PORT, 5000, 0, RST))),
        "icmp6-ptb": ("A", eth(build_ipv6(R06, A6, PROTO_ICMPV6, build_icmpv6(
            R06, A6, 2, 0, struct.pack("!I", 1280) + quoted6)))),
        "icmp6-unreach": ("A", eth(build_ipv6(R06, A6, PROTO_ICMPV6, build_icmpv6(
            R06, A6, 1, 4, bytes(4) + quoted6)))),
        "icmp6-param": ("A", eth(build_ipv6(R06, A6, PROTO_ICMPV6, build_icmpv6(
            R06, A6, 4, 1, struct.pack("!I", 6) + quoted6)))),
        "ns": ("A", eth(build_ipv6(X6, solicited_node(A6), PROTO_ICMPV6, ns_body,
                                   hop_limit=255), dst=bytes.fromhex("3333ff000002"), src=MAC_X)),
        "na-spoof-router": ("A", eth(build_ipv6(X6, ALL_NODES, PROTO_ICMPV6, na_body,
                                                hop_limit=255), dst=b"\x33\x33\x00\x00\x00\x01",
                                     src=MAC_X)),
        "ra": ("A", ra()),
        "ra-mtu-low": ("A", ra(mtu=1280)),
        "rs-router": ("R0", eth(build_ipv6(X6, ALL_ROUTERS, PROTO_ICMPV6, rs_body,
                                           hop_limit=255), dst=b"\x33\x33\x00\x00\x00\x02",
                                src=MAC_X)),
        "fwd6": ("R0", eth(tcp6(A6, B6, SSH_PORT, ssh_sport, 1, 1, ACK, b"via r"), dst=MAC_R0,
                           src=MAC_A)),
        "fwd6-hop1": ("R0", eth(bytes(build_ipv6(A6, B6, PROTO_UDP, build_udp(A6, B6, 1, 2, b"h"),
                                                 hop_limit=1)), dst=MAC_R0, src=MAC_A)),
        "fwd6-hbh": ("R1", eth(IPv6(B6, A6, PROTO_UDP, bytes(build_udp(B6, A6, 1, 2, b"hbh")),
                                    ext_headers=[hbh]).build(), dst=MAC_R1, src=MAC_B)),
        # IGMP (RFC 2236/3376) and MLD (RFC 3810): queries to all systems / all nodes, reports
        "igmp-query-v3": ("A", eth(build_ipv4(R04, ip_bytes("224.0.0.1"), PROTO_IGMP,
                                              build_igmp_query(), ttl=1, options=ROUTER_ALERT4),
                                   dst=bytes.fromhex("01005e000001"), src=MAC_R0)),
        "igmp-query-v2": ("A", eth(build_ipv4(R04, ip_bytes("224.0.0.1"), PROTO_IGMP,
                                              build_igmp_query(version=2), ttl=1),
                                   dst=bytes.fromhex("01005e000001"), src=MAC_R0)),
        "igmp-report-v3": ("R0", eth(build_ipv4(X4, ip_bytes("224.0.0.22"), PROTO_IGMP,
                                                build_igmp_v3_report([GroupRecord(
                                                    4, ip_bytes("239.1.2.3"), [X4])]), ttl=1),
                                     dst=bytes.fromhex("01005e000016"), src=MAC_X)),
        "igmp-report-v2": ("A", eth(build_ipv4(X4, ip_bytes("239.1.2.3"), PROTO_IGMP,
                                               build_igmp_report(ip_bytes("239.1.2.3")), ttl=1),
                                    dst=bytes.fromhex("01005e010203"), src=MAC_X)),
        "mld-query-v2": ("A", eth(build_ipv6(R0_LL, ALL_NODES, PROTO_HOPOPTS, HBH_ROUTER_ALERT6
                                             + build_mld_query(R0_LL, ALL_NODES), hop_limit=1),
                                  dst=b"\x33\x33\x00\x00\x00\x01", src=MAC_R0)),
        "mld-report-v2": ("A", eth(build_ipv6(R0_LL, ALL_NODES, PROTO_HOPOPTS, HBH_ROUTER_ALERT6
                                              + build_mld_v2_report(R0_LL, ALL_NODES, [
                                                  GroupRecord(2, ip_bytes("ff15::1"), [A6])]),
                                              hop_limit=1),
                                   dst=b"\x33\x33\x00\x00\x00\x01", src=MAC_R0)),
    }
    return out


def fix_checksums(frame: bytearray) -> None:
    """Recompute the IPv4 header checksum and the checksum of an unfragmented TCP, UDP, ICMP
    or ICMPv6 payload in place, wherever the (mutated) lengths still make sense."""
    if len(frame) < 34:
        return
    et = (frame[12] << 8) | frame[13]
    if et == ETH_P_IPV4 and frame[14] >> 4 == 4:
        ihl = (frame[14] & 15) * 4
        if ihl < 20 or len(frame) < 14 + ihl:
            return
        hdr = bytearray(frame[14:14 + ihl])
        hdr[10:12] = b"\x00\x00"
        ipv4_header_store(hdr)
        frame[14:14 + ihl] = hdr
        total = (frame[16] << 8) | frame[17]
        frag = ((frame[20] << 8) | frame[21]) & 0x3FFF
        if frag or total < ihl or 14 + total > len(frame):
            return
        _fix_l4(frame, 14 + ihl, 14 + total, frame[23], bytes(frame[26:30]), bytes(frame[30:34]))
    elif et == ETH_P_IPV6 and len(frame) >= 54 and frame[14] >> 4 == 6:
        try:
            v = IPv6View(memoryview(frame)[14:])
            upper, off, fr, _ = walk_ext_headers(v)
            end = 40 + v.payload_length
            src, dst = v.src, v.dst
        except Exception:  # noqa: BLE001 - a header our parser refuses: leave it as it is
            return
        if fr is not None or 14 + end > len(frame):
            return
        _fix_l4(frame, 14 + off, 14 + end, upper, src, dst)


_CSUM_AT = {PROTO_TCP: 16, PROTO_UDP: 6, PROTO_ICMP: 2, PROTO_ICMPV6: 2, PROTO_IGMP: 2}


def _fix_l4(frame: bytearray, start: int, end: int, proto: int, src: bytes, dst: bytes) -> None:
    at = _CSUM_AT.get(proto)
    if at is None or end - start < at + 2:
        return
    seg = bytearray(frame[start:end])
    seg[at:at + 2] = b"\x00\x00"
    if proto in (PROTO_ICMP, PROTO_IGMP):
        seg[at:at + 2] = internet_checksum(seg).to_bytes(2, "big")
    else:
        pseudo_store(seg, at, pseudo_header(src, dst, proto, 0))
        if proto == PROTO_UDP and seg[at:at + 2] == b"\x00\x00":
            seg[at:at + 2] = b"\xff\xff"
    frame[start:end] = seg
