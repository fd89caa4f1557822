"""One tcpdump-like line for any frame; never raises.

    summarize(frame)              # an Ethernet II frame
    summarize(packet, link="raw") # an IP packet (TUN-like links); version nibble picks v4/v6

Examples::

    10.0.0.1.5000 > 10.0.0.2.80: Flags [S], seq 1, win 65535, options [mss 1460,...], length 0
    ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28
    10.0.0.1 > 10.0.0.2: ICMP echo request, id 1, seq 1, length 64

Malformed input gives a line naming what is malformed (``[malformed tcp: data_offset: ...]``)
after whatever outer layers did parse. Bad checksums are noted (``[bad tcp cksum]``) but the
packet is still decoded. The upper-layer modules (udp, tcp, icmpv4, icmpv6) are used when present.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .addr import ip4_str, ip6_str, mac_str
from .arp import Arp
from .errors import MalformedPacket
from .ethernet import ETH_P_ARP, ETH_P_IPV4, ETH_P_IPV6, ETHERTYPE_NAMES, EthernetView
from .ipv4 import FLAG_DF, FLAG_MF, IPv4View
from .ipv4 import summary_line as ipv4_line
from .ipv6 import IPv6View, ext_summary, walk_ext_headers
from .ipv6 import summary_line as ipv6_line
from .proto import PROTO_ICMP, PROTO_ICMPV6, PROTO_NONE, PROTO_TCP, PROTO_UDP

Buffer = bytes | bytearray | memoryview


def _optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"stacklab.wire.{name}")
    except ImportError:
        return None


_tcp = _optional("tcp")
_udp = _optional("udp")
_icmpv4 = _optional("icmpv4")
_icmpv6 = _optional("icmpv6")


def _malformed(e: MalformedPacket) -> str:
    return f"[malformed {e.layer}: {e.field}: {e.message}]"


def summarize(frame: Buffer, link: str = "ether") -> str:
    """A tcpdump-like one-line description of ``frame``; never raises."""
    try:
        if link == "raw":
            return _ip(memoryview(frame))
        if link != "ether":
            return f"[unknown link type {link!r}], length {len(frame)}"
        return _ether(frame)
    except MalformedPacket as e:  # pragma: no cover - every layer catches its own
        return _malformed(e)
    except Exception as e:  # noqa: BLE001 - a printer must not take the caller down
        return f"[summary error: {type(e).__name__}: {e}], length {len(frame)}"


def _ether(frame: Buffer) -> str:
    try:
        eth = EthernetView(frame)
    except MalformedPacket as e:
        return f"{_malformed(e)}, length {len(frame)}"
    prefix = f"vlan {eth.vlan}, p {eth.pcp}, " if eth.vlan is not None else ""
    et = eth.ethertype
    if et in (ETH_P_IPV4, ETH_P_IPV6):
        return prefix + _ip(eth.payload, 4 if et == ETH_P_IPV4 else 6)
    if et == ETH_P_ARP:
        try:
            return prefix + Arp.parse(eth.payload).summary()
        except MalformedPacket as e:
            return f"{prefix}ARP, {_malformed(e)}, length {len(eth.payload)}"
    name = ETHERTYPE_NAMES.get(et, f"ethertype 0x{et:04x}")
    return (f"{prefix}{mac_str(eth.src)} > {mac_str(eth.dst)}, {name}, "
            f"length {len(eth.payload)}")


def _ip(buf: memoryview, version: int | None = None) -> str:
    if version is None:
        if not len(buf):
            return "[malformed ip: length: empty packet], length 0"
        version = buf[0] >> 4
    if version == 4:
        return _ipv4(buf)
    if version == 6:
        return _ipv6(buf)
    return f"[malformed ip: version: version {version} is neither 4 nor 6], length {len(buf)}"


def _ipv4(buf: memoryview) -> str:
    try:
        ip = IPv4View(buf)
    except MalformedPacket as e:
        return f"IP {_malformed(e)}, length {len(buf)}"
    ff = ip.flags_frag
    off = (ff & 0x1FFF) << 3
    mf = bool(ff & FLAG_MF)
    note = "" if ip.checksum_ok() else " [bad ipv4 cksum]"
    if off:  # a later fragment: no upper-layer header in it
        return ipv4_line(ip.src, ip.dst, ip.proto, ip.ident, bool(ff & FLAG_DF), mf, off,
                         len(ip.payload), ip.ttl) + note
    try:
        line = _upper(ip.src, ip.dst, ip.proto, ip.payload, check=not mf)
    except MalformedPacket as e:
        if not mf:
            return f"{ip4_str(ip.src)} > {ip4_str(ip.dst)}: {_malformed(e)}, " \
                f"length {len(ip.payload)}{note}"
        line = None  # a first fragment may cut the upper-layer header short
    if line is None:
        line = ipv4_line(ip.src, ip.dst, ip.proto, ip.ident, bool(ff & FLAG_DF), mf, 0,
                         len(ip.payload), ip.ttl)
        return line + note
    frag = f" (frag {ip.ident}:{len(ip.payload)}@0+)" if mf else ""
    return line + frag + note


def _ipv6(buf: memoryview) -> str:
    try:
        ip = IPv6View(buf)
    except MalformedPacket as e:
        return f"IP6 {_malformed(e)}, length {len(buf)}"
    try:
        upper, off, frag, exts = walk_ext_headers(ip)
    except MalformedPacket as e:
        return (f"{ip6_str(ip.src)} > {ip6_str(ip.dst)}: {_malformed(e)}, "
                f"length {ip.payload_length}")
    data = ip.buf[off:40 + ip.payload_length]
    line = None
    if upper != PROTO_NONE and (frag is None or not frag.offset):  # later fragments: data only
        try:
            line = _upper(ip.src, ip.dst, upper, data, check=frag is None)
        except MalformedPacket as e:
            if frag is None:
                return (f"{ip6_str(ip.src)} > {ip6_str(ip.dst)}: {ext_summary(exts)}"
                        f"{_malformed(e)}, length {len(data)}")
    if line is None:
        return ipv6_line(ip.src, ip.dst, upper, exts, len(data), ip.hop_limit)
    if exts:
        # put the extension headers between the addresses and the upper layer, like tcpdump
        head, sep, rest = line.partition(": ")
        line = f"{head}{sep}{ext_summary(exts)}{rest}"
    return line


def _upper(src: bytes, dst: bytes, proto: int, data: memoryview, check: bool) -> str | None:
    """The upper-layer line with addresses, or None when the protocol is not decoded here.

    Raises MalformedPacket when the upper-layer header does not parse. ``check``: verify the
    checksum (not for a first fragment, whose data is incomplete)."""
    a, b = (ip4_str(src), ip4_str(dst)) if len(src) == 4 else (ip6_str(src), ip6_str(dst))
    cs_src, cs_dst = (src, dst) if check else (None, None)
    line: str
    if proto == PROTO_TCP and _tcp is not None:
        seg = _tcp.TcpSegment.parse(data, cs_src, cs_dst)
        line, layer = seg.summary_with_addresses(src, dst), "tcp"
    elif proto == PROTO_UDP and _udp is not None:
        seg = _udp.Udp.parse(data, cs_src, cs_dst)
        line, layer = seg.summary_with_addresses(src, dst), "udp"
    elif proto == PROTO_ICMP and len(src) == 4 and _icmpv4 is not None:
        seg = _icmpv4.Icmpv4.parse(data)
        line, layer = f"{a} > {b}: {seg.summary()}", "icmp"
        if not check:
            seg.checksum_valid = None
    elif proto == PROTO_ICMPV6 and len(src) == 16 and _icmpv6 is not None:
        seg = _icmpv6.parse_icmpv6(data, cs_src, cs_dst)
        line, layer = f"{a} > {b}: {seg.summary()}", "icmp6"
    else:
        return None
    if seg.checksum_valid is False:
        line += f" [bad {layer} cksum]"
    return line
