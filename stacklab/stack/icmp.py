"""ICMP (RFC 792, RFC 1812 §4.3) and ICMPv6 (RFC 4443) on a host or router.

* echo: we answer requests; replies and errors about our own echo requests go to the listener
  registered for the echo identifier (ping, traceroute -I);
* errors we send obey the rules of RFC 1812 §4.3.2.7 / RFC 4443 §2.4: never about an ICMP error,
  a broadcast/multicast, a non-first fragment, or a packet from an invalid source; they quote as
  much of the original as fits in 576 (IPv4) / 1280 (IPv6) bytes; and they are rate-limited by
  token buckets like Linux (global 1000/s burst 50, per destination 1/s burst 6), except
  Fragmentation Needed and Packet Too Big which Path MTU Discovery depends on;
* errors we receive are decoded once into an :class:`IcmpReport` and handed to the handler the
  transport registered with ``register_icmp_error(proto, handler)``, and to raw listeners.
"""

from __future__ import annotations

import errno
import os
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stacklab.wire import icmpv4 as i4
from stacklab.wire import icmpv6 as i6
from stacklab.wire.addr import ip_str
from stacklab.wire.icmpv4 import IcmpView, build_icmpv4
from stacklab.wire.icmpv6 import Icmpv6View, build_icmpv6
from stacklab.wire.proto import PROTO_ICMP, PROTO_ICMPV6

if TYPE_CHECKING:
    from .context import HostContext, RxInfo
    from .redirect import Redirects

# Kinds of errors handed to the transports (family-neutral)
UNREACHABLE = "unreachable"
PACKET_TOO_BIG = "packet-too-big"  # IPv4 Fragmentation Needed (3/4) and ICMPv6 Packet Too Big
TIME_EXCEEDED = "time-exceeded"
PARAMETER_PROBLEM = "parameter-problem"

_ECHO = struct.Struct("!HH")
_U32 = struct.Struct("!I")

# IPv4 ICMP types that are queries/replies (everything else is an error, RFC 1812 §4.3.2.7)
_V4_INFO_TYPES = i4.QUERY_TYPES


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp: float | None = None

    def allow(self, now: float) -> bool:
        if self.stamp is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(slots=True)
class IcmpReport:
    """A received ICMP/ICMPv6 error, decoded once."""

    family: int
    sender: bytes  # who sent the error (a router, or the destination)
    type: int
    code: int
    kind: str
    mtu: int  # Packet Too Big / Fragmentation Needed (0 when absent)
    quoted_src: bytes
    quoted_dst: bytes
    quoted_proto: int
    quoted_l4: bytes  # the quoted transport header and whatever data follows
    now: float
    quoted_len: int = 0  # the quoted packet's own length field (IPv4 total length)

    def describe(self) -> str:
        """ping-like text, e.g. ``Frag needed and DF set (mtu = 576)``."""
        if self.family == 4:
            if self.type == 3:
                if self.code == 4:
                    return f"Frag needed and DF set (mtu = {self.mtu})"
                return {0: "Destination Net Unreachable", 1: "Destination HostContext Unreachable",
                        2: "Destination Protocol Unreachable",
                        3: "Destination Port Unreachable"}.get(
                            self.code, f"Dest Unreachable, Bad Code: {self.code}")
            if self.type == 11:
                if self.code == 0:
                    return "Time to live exceeded"
                return "Frag reassembly time exceeded"
            return f"ICMP type {self.type} code {self.code}"
        if self.type == 2:
            return f"Packet too big: mtu={self.mtu}"
        if self.type == 1:
            return {0: "Destination unreachable: No route",
                    1: "Destination unreachable: Administratively prohibited",
                    2: "Destination unreachable: Beyond scope",
                    3: "Destination unreachable: Address unreachable",
                    4: "Destination unreachable: Port unreachable"}.get(
                        self.code, f"Destination unreachable: code {self.code}")
        if self.type == 3:
            return "Time exceeded: Hop limit" if self.code == 0 else "Time exceeded: Reassembly"
        return f"ICMPv6 type {self.type} code {self.code}"


_IPOPT_RR = 7  # Record Route (RFC 791 §3.1)


def _echo_options4(packet: memoryview | bytes, me: bytes) -> bytes:
    """The IPv4 options of the reply to an echo request: its Record Route reflected, with our
    address recorded as the request arrived and again as the reply leaves while there is room,
    so the route is the whole round trip (RFC 1122 §3.2.2.6 SHOULD; Linux's ip_options_compile
    on input, then ip_options_echo). Other options are not reflected; a malformed Record Route
    is not either."""
    options = bytes(packet[20:(packet[0] & 0x0F) * 4])
    i = 0
    while i + 1 < len(options) and options[i] != 0:  # up to End of Option List
        if options[i] == 1:  # No Operation
            i += 1
            continue
        length = options[i + 1]
        if length < 2 or i + length > len(options):
            return b""
        if options[i] == _IPOPT_RR:
            rr = bytearray(options[i:i + length])
            if length < 3 or rr[2] < 4:
                return b""
            for _ in range(2):  # arriving, leaving
                ptr = rr[2]
                if ptr + 3 > length:  # full (or no room for a whole address)
                    break
                rr[ptr - 1:ptr + 3] = me
                rr[2] = ptr + 4
            return bytes(rr)
        i += length
    return b""


def _kind4(t: int, code: int) -> str | None:
    if t == 3:
        return PACKET_TOO_BIG if code == 4 else UNREACHABLE
    if t == 11:
        return TIME_EXCEEDED
    if t == 12:
        return PARAMETER_PROBLEM
    return None  # source quench (RFC 6633: ignore), redirect


def _kind6(t: int) -> str | None:
    return {1: UNREACHABLE, 2: PACKET_TOO_BIG, 3: TIME_EXCEEDED, 4: PARAMETER_PROBLEM}.get(t)


class Icmp:
    """ICMP and ICMPv6 for one host."""

    def __init__(self, host: HostContext) -> None:
        self.host = host
        self.rate_global = TokenBucket(1000.0, 50.0)
        self.peer_rate = 1.0
        self.peer_burst = 6.0
        self._peers: OrderedDict[bytes, TokenBucket] = OrderedDict()
        self.echo_listeners: dict[int, Any] = {}  # ident -> obj with echo_reply / echo_error
        self.error_taps: list[Callable[[IcmpReport], None]] = []
        self.echo_ignore_broadcasts = True  # Linux icmp_echo_ignore_broadcasts=1
        # RFC 5927 / RFC 8201 §5: per quoted protocol, fn(quoted_src, quoted_dst, quoted_l4)
        # -> None when the quote matches one of our flows, else the reason to ignore the error
        self.validators: dict[int, Callable[[bytes, bytes, bytes], str | None]] = {}
        # NDP's receive (the host wires it): RS/RA/NS/NA/redirect arrive as ICMPv6
        self.nd_receiver: Callable[[RxInfo, bytes, bytes, Icmpv6View, float], None] | None = None
        self.mld_receiver: Callable[[RxInfo, bytes, bytes, memoryview, float], None] | None = None
        self.redirect_receiver: Redirects | None = None  # IPv4 redirects (stack/redirect.py)

    def register_validator(self, proto: int,
                           fn: Callable[[bytes, bytes, bytes], str | None]) -> None:
        self.validators[proto] = fn

    # -- rate limit --------------------------------------------------------------------------
    def _allow(self, dst: bytes, now: float) -> bool:
        b = self._peers.get(dst)
        if b is None:
            b = TokenBucket(self.peer_rate, self.peer_burst)
            self._peers[dst] = b
            if len(self._peers) > 1024:
                self._peers.popitem(last=False)
        else:
            self._peers.move_to_end(dst)
        if not b.allow(now):
            return False
        return self.rate_global.allow(now)

    # -- sending errors ------------------------------------------------------------------------
    def send_error4(self, packet: memoryview | bytes | bytearray, icmp_type: int, code: int,
                    now: float, *, mtu: int = 0, l2_bcast: bool = False) -> bool:
        """Send an ICMPv4 error about ``packet`` (the offending IP packet, header first)."""
        h = self.host
        c = h.counters
        if len(packet) < 20:
            return False
        ihl = (packet[0] & 0x0F) * 4
        src = bytes(packet[12:16])
        dst = bytes(packet[16:20])
        frag = ((packet[6] << 8) | packet[7]) & 0x1FFF
        if frag:
            c["icmp.suppressed.non_first_fragment"] += 1
            return False
        if l2_bcast or dst == b"\xff\xff\xff\xff" or 224 <= dst[0] < 240 or h.is_bcast4(dst):
            c["icmp.suppressed.broadcast"] += 1
            return False
        if src == b"\x00\x00\x00\x00" or src[0] == 127 or src[0] >= 224 or h.is_bcast4(src):
            c["icmp.suppressed.bad_source"] += 1
            return False
        if packet[9] == PROTO_ICMP and len(packet) > ihl and packet[ihl] not in _V4_INFO_TYPES:
            c["icmp.suppressed.about_error"] += 1
            return False
        if not (icmp_type == 3 and code == 4) and not self._allow(src, now):
            c["icmp.ratelimited"] += 1
            h.trace(now, "icmp", "drop", reason="ratelimit", type=icmp_type, code=code)
            return False
        quote = packet[:576 - 28]
        rest = struct.pack("!HH", 0, mtu) if icmp_type == 3 and code == 4 else bytes(4)
        msg = build_icmpv4(icmp_type, code, rest, quote)
        try:
            h.ip_send(None, src, PROTO_ICMP, msg, now, ttl=64)
        except OSError:
            return False
        c[f"icmp.tx.{icmp_type}/{code}"] += 1
        h.trace(now, "icmp", "tx", type=icmp_type, code=code, to=ip_str(src),
                **({"mtu": mtu} if mtu else {}))
        return True

    def send_error6(self, packet: memoryview | bytes | bytearray, icmp_type: int, code: int,
                    now: float, *, param: int = 0, l2_mcast: bool = False) -> bool:
        """Send an ICMPv6 error about ``packet``; ``param`` is the MTU or the pointer."""
        h = self.host
        c = h.counters
        if len(packet) < 40:
            return False
        src = bytes(packet[8:24])
        dst = bytes(packet[24:40])
        # RFC 4443 §2.4 (e): not about multicast, except Packet Too Big and option problems
        exempt = icmp_type == 2 or (icmp_type == 4 and code == 2)
        if (dst[0] == 0xFF or l2_mcast) and not exempt:
            c["icmpv6.suppressed.multicast"] += 1
            return False
        if src == bytes(16) or src[0] == 0xFF:
            c["icmpv6.suppressed.bad_source"] += 1
            return False
        if _is_icmp6_error(packet):
            c["icmpv6.suppressed.about_error"] += 1
            return False
        if icmp_type != 2 and _is_non_first_fragment6(packet):
            c["icmpv6.suppressed.non_first_fragment"] += 1
            return False
        if icmp_type != 2 and not self._allow(src, now):
            c["icmpv6.ratelimited"] += 1
            h.trace(now, "icmpv6", "drop", reason="ratelimit", type=icmp_type, code=code)
            return False
        me = h.source_address_for(src)
        if me is None:
            return False
        body = _U32.pack(param) + bytes(packet[:i6.MAX_QUOTE])
        msg = build_icmpv6(me, src, icmp_type, code, body)
        try:
            h.ip_send(me, src, PROTO_ICMPV6, msg, now, ttl=64)
        except OSError:
            return False
        c[f"icmpv6.tx.{icmp_type}/{code}"] += 1
        h.trace(now, "icmpv6", "tx", type=icmp_type, code=code, to=ip_str(src),
                **({"mtu": param} if icmp_type == 2 else {}))
        return True

    # -- echo ----------------------------------------------------------------------------------
    def send_echo(self, dst: bytes, ident: int, seq: int, data: bytes, now: float, *,
                  df: bool | None = None, ttl: int | None = None, src: bytes | None = None
                  ) -> None:
        """An echo request; ``OSError`` (ENETUNREACH, EMSGSIZE...) when it cannot leave."""
        h = self.host
        if len(dst) == 4:
            msg = build_icmpv4(i4.ECHO_REQUEST, 0, _ECHO.pack(ident, seq), data)
            h.ip_send(src, dst, PROTO_ICMP, msg, now, df=df, ttl=ttl)
            h.counters["icmp.tx.8/0"] += 1
            return
        me = src or h.source_address_for(dst)
        if me is None:
            raise OSError(errno.ENETUNREACH, os.strerror(errno.ENETUNREACH))
        msg = build_icmpv6(me, dst, i6.ECHO_REQUEST, 0, _ECHO.pack(ident, seq) + data)
        h.ip_send(me, dst, PROTO_ICMPV6, msg, now, df=df, ttl=ttl)
        h.counters["icmpv6.tx.128/0"] += 1

    # -- receive -------------------------------------------------------------------------------
    def receive4(self, src: bytes, dst: bytes, payload: memoryview, now: float,
                 info: RxInfo) -> None:
        h = self.host
        c = h.counters
        m = IcmpView(payload)  # raises MalformedPacket
        if not m.checksum_ok():
            c["drop.icmp.bad_checksum"] += 1
            return
        t = m.type
        c[f"icmp.rx.{t}/{m.code}"] += 1
        if t == i4.ECHO_REQUEST:
            if info.bcast and self.echo_ignore_broadcasts:
                c["icmp.echo_ignored_broadcast"] += 1
                return
            reply = build_icmpv4(i4.ECHO_REPLY, 0, m.rest, m.payload)
            options = _echo_options4(info.packet, dst) if info.packet[0] != 0x45 else b""
            try:
                h.ip_send(dst, src, PROTO_ICMP, reply, now, options=options)
            except OSError:
                return  # no way back (no route): nothing to answer with
            c["icmp.tx.0/0"] += 1
            return
        if t == i4.ECHO_REPLY:
            lst = self.echo_listeners.get(m.ident)
            if lst is not None:
                lst.echo_reply(src, m.seq, len(payload) - 8, info.ttl, now)
            return
        if t == i4.REDIRECT:
            if self.redirect_receiver is not None:
                self.redirect_receiver.received(src, m, info.ifindex, now)
            return
        kind = _kind4(t, m.code)
        if kind is None:
            return
        q = m.buf[8:]
        ihl = (q[0] & 0x0F) * 4
        if len(q) < ihl + 8:  # the view checked 20 + 8; options make it longer
            c["drop.icmp.quoted"] += 1
            return
        mtu = m.next_hop_mtu if kind == PACKET_TOO_BIG else 0
        self._dispatch(IcmpReport(4, src, t, m.code, kind, mtu, bytes(q[12:16]),
                                 bytes(q[16:20]), q[9], bytes(q[ihl:]), now,
                                 (q[2] << 8) | q[3]))

    def receive6(self, src: bytes, dst: bytes, payload: memoryview, now: float,
                 info: RxInfo) -> None:
        h = self.host
        c = h.counters
        m = Icmpv6View(payload)
        if not m.checksum_ok(src, dst):
            c["drop.icmpv6.bad_checksum"] += 1
            return
        t = m.type
        c[f"icmpv6.rx.{t}/{m.code}"] += 1
        if 133 <= t <= 137:
            if self.nd_receiver is not None:
                self.nd_receiver(info, src, dst, m, now)
            return
        if t in (130, 131, 132, 143):  # MLD (RFC 3810)
            if self.mld_receiver is not None:
                self.mld_receiver(info, src, dst, m.buf, now)
            return
        if t == i6.ECHO_REQUEST:
            me = dst
            if dst[0] == 0xFF:
                mine = h.source_address_for(src)
                if mine is None:
                    return
                me = mine
            reply = build_icmpv6(me, src, i6.ECHO_REPLY, 0, m.buf[4:])
            try:
                h.ip_send(me, src, PROTO_ICMPV6, reply, now)
            except OSError:
                return
            c["icmpv6.tx.129/0"] += 1
            return
        if t == i6.ECHO_REPLY:
            lst = self.echo_listeners.get(m.ident)
            if lst is not None:
                lst.echo_reply(src, m.seq, len(payload) - 8, info.ttl, now)
            return
        kind = _kind6(t)
        if kind is None:
            return
        q = m.buf[8:]
        proto, off = _upper6(q)
        mtu = m.mtu if t == i6.PACKET_TOO_BIG else 0
        self._dispatch(IcmpReport(6, src, t, m.code, kind, mtu, bytes(q[8:24]), bytes(q[24:40]),
                                 proto, bytes(q[off:]) if off >= 0 else b"", now))

    def _dispatch(self, e: IcmpReport) -> None:
        """Raw taps see every error; the PMTU cache and the transport only errors whose quoted
        header matches one of our flows (RFC 5927 §4, RFC 8201 §5): a forged Packet Too Big
        cannot shrink the path MTU of a connection it cannot name (with its sequence
        numbers, for TCP). Ignored errors are counted ``icmp.ignored.<reason>`` (and
        ``pmtu.ignored.<reason>`` for Frag Needed / Packet Too Big)."""
        h = self.host
        h.trace(e.now, "icmp" if e.family == 4 else "icmpv6", "rx", type=e.type, code=e.code,
                kind=e.kind, sender=ip_str(e.sender), **({"mtu": e.mtu} if e.mtu else {}))
        for tap in list(self.error_taps):
            tap(e)
        echo_type = 8 if e.family == 4 else 128
        if e.quoted_proto == (PROTO_ICMP if e.family == 4 else PROTO_ICMPV6):
            lst = None
            if len(e.quoted_l4) >= 8 and e.quoted_l4[0] == echo_type:
                lst = self.echo_listeners.get(_ECHO.unpack_from(e.quoted_l4, 4)[0])
            if lst is None:
                self._ignore(e, "no_flow")
                return
            if e.kind == PACKET_TOO_BIG:
                h.learn_path_mtu(e.quoted_dst, e.mtu, e.now, e.quoted_len)
            lst.echo_error(e, _ECHO.unpack_from(e.quoted_l4, 4)[1])
            return
        handler = h.icmp_error_handlers.get(e.quoted_proto)
        check = self.validators.get(e.quoted_proto)
        reason = None
        if handler is None:
            reason = "no_transport"
        elif check is not None:
            reason = check(e.quoted_src, e.quoted_dst, e.quoted_l4)
        if reason is not None:
            self._ignore(e, reason)
            return
        if e.kind == PACKET_TOO_BIG:
            h.learn_path_mtu(e.quoted_dst, e.mtu, e.now, e.quoted_len)
        assert handler is not None
        handler(e.now, e.kind, e.code, e.mtu, e.quoted_src, e.quoted_dst, e.quoted_l4)

    def _ignore(self, e: IcmpReport, reason: str) -> None:
        c = self.host.counters
        c[f"icmp.ignored.{reason}"] += 1
        if e.kind == PACKET_TOO_BIG:
            c[f"pmtu.ignored.{reason}"] += 1
        self.host.trace(e.now, "pmtu" if e.kind == PACKET_TOO_BIG else "icmp", "drop",
                        reason=f"ICMP error ignored: {reason}", sender=ip_str(e.sender),
                        quoted_dst=ip_str(e.quoted_dst), **({"mtu": e.mtu} if e.mtu else {}))

    def local_error(self, packet: bytes | bytearray, kind: str, code: int, now: float) -> None:
        """Deliver an error about our own ``packet`` without the network (e.g. neighbour
        resolution failed: Linux reports EHOSTUNREACH to the socket)."""
        h = self.host
        if packet[0] >> 4 == 4:
            ihl = (packet[0] & 0x0F) * 4
            e = IcmpReport(4, bytes(packet[12:16]), 3, code, kind, 0, bytes(packet[12:16]),
                          bytes(packet[16:20]), packet[9], bytes(packet[ihl:ihl + 64]), now)
        else:
            proto, off = _upper6(memoryview(packet))
            e = IcmpReport(6, bytes(packet[8:24]), 1, code, kind, 0, bytes(packet[8:24]),
                          bytes(packet[24:40]), proto,
                          bytes(packet[off:off + 64]) if off >= 0 else b"", now)
        h.counters["icmp.local_errors"] += 1
        self._dispatch(e)


def _upper6(q: memoryview) -> tuple[int, int]:
    """Upper-layer protocol and offset in a quoted IPv6 packet (-1 when not reachable)."""
    nh = q[6]
    off = 40
    n = len(q)
    for _ in range(8):
        if nh in (0, 43, 60):
            if off + 2 > n:
                return nh, -1
            nxt = q[off]
            off += (q[off + 1] + 1) * 8
            nh = nxt
        elif nh == 44:
            if off + 8 > n:
                return nh, -1
            nxt = q[off]
            if (q[off + 2] << 8 | q[off + 3]) & 0xFFF8:
                return nxt, -1  # a non-first fragment: no transport header
            off += 8
            nh = nxt
        else:
            return nh, off if off <= n else -1
    return nh, -1


def _is_icmp6_error(packet: memoryview | bytes | bytearray) -> bool:
    proto, off = _upper6(memoryview(packet))
    return proto == PROTO_ICMPV6 and 0 <= off < len(packet) and packet[off] < 128


def _is_non_first_fragment6(packet: memoryview | bytes | bytearray) -> bool:
    mv = memoryview(packet)
    nh = mv[6]
    off = 40
    for _ in range(8):
        if nh in (0, 43, 60) and off + 2 <= len(mv):
            nh, off = mv[off], off + (mv[off + 1] + 1) * 8
        elif nh == 44 and off + 4 <= len(mv):
            return bool((mv[off + 2] << 8 | mv[off + 3]) & 0xFFF8)
        else:
            return False
    return False
