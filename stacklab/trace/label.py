"""Short labels for the arrows of a sequence diagram: ``[S] seq 0 win 65535 mss 1460``.

TCP sequence numbers are shown relative to each direction's ISN (as Wireshark does), so a
:class:`Labeler` keeps the ISNs it has seen; use one per diagram or per run. Never raises: a frame
that does not parse gets a label that says so.
"""

from __future__ import annotations

from stacklab.wire import MalformedPacket, arp, icmpv4, icmpv6, igmp, ipv4, ipv6, tcp, tls, udp
from stacklab.wire.addr import ip_str
from stacklab.wire.ethernet import ETH_P_ARP, ETH_P_IPV4, ETH_P_IPV6, EthernetView
from stacklab.wire.proto import PROTO_ICMP, PROTO_ICMPV6, PROTO_IGMP, PROTO_TCP, PROTO_UDP

_ICMP4 = {
    (0, None): "echo reply", (8, None): "echo request", (11, None): "time exceeded",
    (3, 0): "net unreachable", (3, 1): "host unreachable", (3, 3): "port unreachable",
    (3, 4): "frag needed",
}
_ICMP6 = {
    128: "echo request", 129: "echo reply", 1: "unreachable", 2: "packet too big",
    3: "time exceeded", 133: "RS", 134: "RA", 135: "NS", 136: "NA",
}


class Labeler:
    def __init__(self) -> None:
        self._isn: dict[tuple[bytes, int, bytes, int], int] = {}  # (src, sport, dst, dport)

    def label(self, frame: bytes | bytearray | memoryview) -> str:
        try:
            eth = EthernetView(frame)
            if eth.ethertype == ETH_P_ARP:
                a = arp.ArpView(eth.payload)
                if a.op == arp.ARP_REQUEST:
                    return f"ARP who-has {ip_str(a.tpa)}"
                return f"ARP {ip_str(a.spa)} is-at {a.sha.hex(':')}"
            if eth.ethertype == ETH_P_IPV4:
                return self._ipv4(eth.payload)
            if eth.ethertype == ETH_P_IPV6:
                return self._ipv6(eth.payload)
            return f"ethertype 0x{eth.ethertype:04x}"
        except MalformedPacket as exc:
            return f"malformed {exc.layer} {exc.field}"

    def _ipv4(self, buf: memoryview) -> str:
        ip = ipv4.IPv4View(buf)
        frag = ""
        if ip.mf or ip.frag_offset:
            frag = f" frag@{ip.frag_offset}{'+' if ip.mf else ''}"
            if ip.frag_offset:
                return f"IP{frag} len {len(ip.payload)}"
        df = " DF" if ip.df else ""
        body = self._l4(ip.proto, ip.src, ip.dst, ip.payload, 4, ip.ttl)
        return f"{body}{frag}{df if ip.proto != 6 else ''}"

    def _ipv6(self, buf: memoryview) -> str:
        ip = ipv6.IPv6View(buf)
        proto, off, frag, _ = ipv6.walk_ext_headers(ip)
        fr = ""
        if frag is not None:
            fr = f" frag@{frag.offset}{'+' if frag.more else ''}"
            if frag.offset:
                return f"IP6{fr} len {40 + ip.payload_length - off}"
        payload = ip.buf[off:40 + ip.payload_length]
        return self._l4(proto, ip.src, ip.dst, payload, 6, ip.hop_limit) + fr

    def _l4(self, proto: int, src: bytes, dst: bytes, payload: memoryview, fam: int,
            ttl: int) -> str:
        try:
            return self._l4_full(proto, src, dst, payload, fam, ttl)
        except MalformedPacket:
            # a first fragment: the header is there, the rest of the datagram is not
            if proto in (PROTO_TCP, PROTO_UDP) and len(payload) >= 8:
                name = "TCP" if proto == PROTO_TCP else "UDP"
                sport = int.from_bytes(payload[0:2], "big")
                dport = int.from_bytes(payload[2:4], "big")
                extra = ""
                if proto == PROTO_UDP:
                    extra = f" len {int.from_bytes(payload[4:6], 'big') - 8}"
                return f"{name} {sport} > {dport}{extra}"
            raise

    def _l4_full(self, proto: int, src: bytes, dst: bytes, payload: memoryview,
                 fam: int, ttl: int) -> str:
        if proto == PROTO_TCP:
            return self._tcp(src, dst, payload)
        if proto == PROTO_UDP:
            u = udp.UdpView(payload)
            return f"UDP {u.src_port} > {u.dst_port} len {len(u.payload)}"
        if proto == PROTO_ICMP:
            v = icmpv4.IcmpView(payload)
            name = _ICMP4.get((v.type, v.code)) or _ICMP4.get((v.type, None)) or f"type {v.type}"
            if v.type == 3 and v.code == 4:
                return f"ICMP frag needed mtu {v.next_hop_mtu}"
            if v.type in (0, 8):  # the TTL: what traceroute and `ping -t` are about
                return f"ICMP {name} seq {v.seq} ttl {ttl}"
            return f"ICMP {name}"
        if proto == PROTO_IGMP:
            return _group_label("IGMP", igmp.parse_igmp(payload))
        if proto == PROTO_ICMPV6 and len(payload) and payload[0] in (130, 131, 132, 143):
            return _group_label("MLD", igmp.parse_mld(payload))
        if proto == PROTO_ICMPV6:
            v6 = icmpv6.Icmpv6View(payload)
            name = _ICMP6.get(v6.type, f"type {v6.type}")
            if v6.type == 2:
                return f"ICMPv6 packet too big mtu {v6.mtu}"
            if v6.type in (135, 136):
                return f"{name} {ip_str(v6.target)}"
            if v6.type in (128, 129):
                return f"ICMPv6 {name} seq {v6.seq} hlim {ttl}"
            return f"ICMPv6 {name}"
        return f"proto {proto} {'v6' if fam == 6 else ''}".strip()

    def _tcp(self, src: bytes, dst: bytes, payload: memoryview) -> str:
        t = tcp.TcpView(payload)
        key = (src, t.src_port, dst, t.dst_port)
        rkey = (dst, t.dst_port, src, t.src_port)
        flags = t.flags
        if flags & tcp.SYN:
            self._isn[key] = t.seq
        isn = self._isn.get(key)
        risn = self._isn.get(rkey)
        seq = (t.seq - isn) & 0xFFFFFFFF if isn is not None else t.seq
        parts = [f"[{tcp.flags_str(flags)}] seq {seq}"]
        if flags & tcp.ACK:
            ack = (t.ack - risn) & 0xFFFFFFFF if risn is not None else t.ack
            parts.append(f"ack {ack}")
        n = t.payload_len
        if n:
            parts.append(f"len {n}")
            records = tls.describe(t.payload)  # the TLS handshake, named (wire/tls.py)
            if records is not None:
                parts.append(records)
        if flags & tcp.SYN:
            parts.append(f"win {t.window}")
            mss = t.mss()
            if mss is not None:
                parts.append(f"mss {mss}")
        return " ".join(parts)


def _group_label(name: str, m: igmp.GroupMessage) -> str:
    """``IGMPv3 report 239.1.2.3``, ``MLDv2 query`` (MLD's own version numbers)."""
    version = m.version - 1 if name == "MLD" else m.version
    groups = [r.group for r in m.records] if m.records else [m.group] if any(m.group) else []
    return " ".join([f"{name}v{version} {m.kind}", *(ip_str(g) for g in groups[:2])])


_KINDS = (("[", "tcp"), ("ARP", "arp"), ("IGMP", "igmp"), ("MLD", "mld"), ("ICMPv6", "icmpv6"),
          ("ICMP", "icmp"), ("UDP", "udp"),
          ("NS ", "ndp"), ("NA ", "ndp"), ("RS", "ndp"), ("RA", "ndp"), ("IP", "ip"))


def label_kind(label: str) -> str:
    """What a :class:`Labeler` label is about: tcp, udp, arp, ndp, icmp, icmpv6, ip (a later
    fragment) or other."""
    for prefix, kind in _KINDS:
        if label.startswith(prefix):
            return kind
    return "other"

