"""NAT on a router: masquerade, port forwards and connection tracking, sans-IO.

What ``iptables -t nat -A POSTROUTING -o eth1 -j MASQUERADE`` (plus ``-j DNAT`` port forwards)
does on Linux, as one engine the router's IPv4 forwarding calls at one place
(:meth:`Nat.forward`, after the TTL check, before the route lookup; and :meth:`Nat.claims`,
asked before a packet to one of the router's addresses is delivered locally):

* **connection tracking** (Linux's nf_conntrack): a connection is two tuples
  ``(proto, src, sport, dst, dport)``, the original direction and the reply the far end will
  send; both index the one table. ICMP echo uses its identifier as the port (the request's
  source port, the reply's destination port). TCP states and every timeout are Linux's
  defaults (:data:`TIMEOUTS`, ``net.netfilter.nf_conntrack_*_timeout*``; loose pick-up of a
  connection seen mid-stream, as ``nf_conntrack_tcp_loose = 1``). Expired entries go at
  lookup and on a sweep timer;
* **source NAT** (masquerade, RFC 3022 NAPT): a new connection leaving by the outside
  interface gets that interface's address as its source; its source port (ICMP identifier)
  is kept when the reply tuple is free, else one is picked in the same class as Linux
  (1-511, 600-1023, 1024-65535) — endpoint-independent mapping whenever it can be
  (RFC 4787 REQ-1, RFC 5382 REQ-1), port preservation as Linux;
* **port forwards** (DNAT): ``forward = [{ proto = "tcp", port = 8080, to = "srv:80" }]``;
  **hairpinning** (RFC 4787 REQ-9, RFC 5382 REQ-8): an inside host reaching a port forward
  at the outside address has its source translated to the outside address too, so the inside
  server's answers come back through the router;
* **ICMP errors** (RFC 5508 §4): an error about a tracked connection is translated both
  outside (destination, and source when the error comes from the translated endpoint itself)
  and inside: the quoted IP header and transport ports are rewritten back, their checksums
  adjusted (RFC 1624), the ICMP checksum recomputed — so a traceroute from behind the NAT sees
  every hop. Errors the router itself sends about a forwarded packet quote the packet as it
  arrived (the forwarding path keeps it);
* fragments are reassembled before tracking (Linux's nf_defrag_ipv4) and fragmented again on
  the way out when they do not fit.

Addresses are rewritten with incremental checksum updates (RFC 1624), as Linux's
``nf_nat_l4proto`` does. Packets that cannot be translated (truncated headers, no free port) are
dropped and counted (``drop.nat.*``), never raised.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stacklab.errors import StacklabError
from stacklab.wire.addr import ip_str
from stacklab.wire.checksum import checksum_adjust, internet_checksum
from stacklab.wire.proto import PROTO_ICMP, PROTO_TCP, PROTO_UDP

from .frag import Reassembler

if TYPE_CHECKING:
    from .context import HostContext
    from .interface import Interface

__all__ = ["TIMEOUTS", "Conn", "Nat", "NatConfigError", "PortForward", "parse_nat"]

# Linux's defaults, seconds (nf_conntrack_proto_{tcp,udp,icmp,generic}.c; the sysctls are
# net.netfilter.nf_conntrack_<key>, e.g. nf_conntrack_tcp_timeout_established)
TIMEOUTS: dict[str, float] = {
    "tcp_timeout_syn_sent": 120, "tcp_timeout_syn_recv": 60,
    "tcp_timeout_established": 432000, "tcp_timeout_fin_wait": 120,
    "tcp_timeout_close_wait": 60, "tcp_timeout_last_ack": 30, "tcp_timeout_time_wait": 120,
    "tcp_timeout_close": 10, "udp_timeout": 30, "udp_timeout_stream": 120,
    "icmp_timeout": 30, "generic_timeout": 600,
}
SWEEP = 10.0  # at most this often the table is swept for expired entries (lookups check too)

_ECHO_REQUEST, _ECHO_REPLY = 8, 0
_ICMP_ERRORS = (3, 4, 11, 12)  # the errors that quote a packet (RFC 5508 §4.1; 5 is a redirect)
_FIN, _SYN, _RST, _ACK = 0x01, 0x02, 0x04, 0x10

Tuple = tuple[int, bytes, int, bytes, int]  # proto, src, sport, dst, dport


def _inverse(t: Tuple) -> Tuple:
    return (t[0], t[3], t[4], t[1], t[2])


class NatConfigError(StacklabError, ValueError):
    """A ``nat = ...`` value that does not parse (raised at scenario check time)."""


@dataclass(frozen=True, slots=True)
class PortForward:
    """``-j DNAT``: ``proto`` traffic to ``port`` of the router goes to ``to``:``to_port``
    (``to`` an address, or a node name resolved with the router's hosts table)."""

    proto: int
    port: int
    to: str
    to_port: int


@dataclass(slots=True)
class Conn:
    """One tracked connection (a ``conntrack -L`` line)."""

    orig: Tuple
    reply: Tuple
    state: str  # TCP: Linux's state names; UDP/ICMP/other: "-"
    expires: float
    seen_reply: bool = False
    fin: list[bool] = field(default_factory=lambda: [False, False])  # FIN seen per direction

    def tuple_of(self, d: int) -> Tuple:
        return self.orig if d == 0 else self.reply

    def describe(self, now: float) -> str:
        names = {PROTO_TCP: "tcp", PROTO_UDP: "udp", PROTO_ICMP: "icmp"}
        p = self.orig[0]
        parts = [names.get(p, "unknown"), str(p), str(max(0, int(self.expires - now)))]
        if p == PROTO_TCP:
            parts.append(self.state)
        for t in (self.orig, self.reply):
            parts += [f"src={ip_str(t[1])}", f"dst={ip_str(t[3])}"]
            if p == PROTO_ICMP:
                parts.append(f"id={t[2] or t[4]}")
            elif p in (PROTO_TCP, PROTO_UDP):
                parts += [f"sport={t[2]}", f"dport={t[4]}"]
            if t is self.orig and not self.seen_reply:
                parts.append("[UNREPLIED]")
        return " ".join(parts)


def _ports(pkt: bytes | bytearray | memoryview, l4: int, proto: int, n: int
           ) -> tuple[int, int] | None:
    """The tuple's ports of the transport header at ``pkt[l4:]`` (``n`` bytes present), or
    None when too short to translate. ICMP echo: the identifier as sport (request) / dport
    (reply); other ICMP types: None (only errors and echo are handled)."""
    if proto in (PROTO_TCP, PROTO_UDP):
        if n < 4:
            return None
        return (pkt[l4] << 8) | pkt[l4 + 1], (pkt[l4 + 2] << 8) | pkt[l4 + 3]
    if proto == PROTO_ICMP:
        if n < 8 or pkt[l4] not in (_ECHO_REQUEST, _ECHO_REPLY):
            return None
        ident = (pkt[l4 + 4] << 8) | pkt[l4 + 5]
        return (ident, 0) if pkt[l4] == _ECHO_REQUEST else (0, ident)
    return 0, 0  # generic: addresses only


def _put16(buf: bytearray, off: int, value: int) -> None:
    buf[off] = value >> 8
    buf[off + 1] = value & 0xFF


def _rewrite(pkt: bytearray, ip: int, new: Tuple, quoted: bool = False) -> None:
    """Rewrite the IPv4 packet at ``pkt[ip:]`` to the tuple ``new`` (addresses, ports or echo
    identifier), adjusting every checksum that covers them (RFC 1624). ``quoted``: the packet is
    the inside of an ICMP error, maybe truncated (checksums beyond the end are not there)."""
    hl = (pkt[ip] & 0x0F) * 4
    end = len(pkt)
    proto = pkt[ip + 9]
    l4 = ip + hl
    old_addr = bytes(pkt[ip + 12:ip + 20])
    new_addr = new[1] + new[3]
    ports = _ports(pkt, l4, proto, end - l4)
    if proto in (PROTO_TCP, PROTO_UDP) and ports is not None:
        old_p = bytes(pkt[l4:l4 + 4])
        new_p = new[2].to_bytes(2, "big") + new[4].to_bytes(2, "big")
        coff = l4 + (16 if proto == PROTO_TCP else 6)
        if coff + 2 <= end:
            c = (pkt[coff] << 8) | pkt[coff + 1]
            if c or proto == PROTO_TCP:  # a UDP checksum of 0 means none (RFC 768)
                c = checksum_adjust(c, old_addr + old_p, new_addr + new_p)
                if proto == PROTO_UDP and c == 0:
                    c = 0xFFFF
                _put16(pkt, coff, c)
        pkt[l4:l4 + 4] = new_p
    elif proto == PROTO_ICMP and ports is not None:
        ident = new[2] if pkt[l4] == _ECHO_REQUEST else new[4]
        old_id = bytes(pkt[l4 + 4:l4 + 6])  # (_ports saw the whole 8-byte echo header)
        _put16(pkt, l4 + 2, checksum_adjust((pkt[l4 + 2] << 8) | pkt[l4 + 3], old_id,
                                            ident.to_bytes(2, "big")))
        _put16(pkt, l4 + 4, ident)
    pkt[ip + 12:ip + 20] = new_addr
    _put16(pkt, ip + 10, checksum_adjust((pkt[ip + 10] << 8) | pkt[ip + 11], old_addr,
                                         new_addr))


class Nat:
    """Masquerade on the interface named ``outside`` plus ``forwards``; see the module text."""

    def __init__(self, host: HostContext, outside: str,
                 forwards: tuple[PortForward, ...] = (),
                 resolve: Callable[[str], str] = str) -> None:
        self.host = host
        self.resolve = resolve  # a port forward's ``to`` (a node name) -> an address
        self.outside = outside
        self.forwards = forwards
        self.timeouts = dict(TIMEOUTS)
        self.table: dict[Tuple, tuple[Conn, int]] = {}  # tuple -> (connection, direction)
        self._sweep_at: float | None = None
        # Linux's nf_defrag_ipv4: tracking needs whole datagrams (30 s as ipfrag_time)
        self.defrag = Reassembler("nat", 30.0, 65535 - 20, host.counters)
        host.add_timer_source(self)

    # -- the seam: called by Ipv4 ---------------------------------------------------------------
    def claims(self, iface: Interface, pkt: bytes | memoryview, now: float) -> bool:
        """Is this packet to one of the router's addresses NAT's (a reply to a translated
        connection, a port forward, an ICMP error about one)? Then it is forwarded, not
        delivered."""
        t = self._tuple(pkt)
        if t is None:
            return False
        hl = (pkt[0] & 0x0F) * 4
        if t[0] == PROTO_ICMP and pkt[hl] in _ICMP_ERRORS:
            return self._error_conn(pkt, now) is not None
        return self._lookup(t, now) is not None or self._forward_rule(t) is not None

    def forward(self, iface: Interface, pkt: bytearray, now: float) -> bytearray | None:
        """Translate a packet being forwarded (TTL already lowered), in place. Returns the
        packet to route (rewritten or not), or None when it was dropped or is a fragment held
        for reassembly (counted)."""
        c = self.host.counters
        if (pkt[6] << 8 | pkt[7]) & 0x3FFF:
            whole = self._reassemble(pkt, now)
            if whole is None:
                return None
            pkt = whole
        t = self._tuple(pkt)
        if t is None:
            if pkt[9] in (PROTO_TCP, PROTO_UDP):
                c["drop.nat.truncated"] += 1
                return None
            return pkt  # ICMP other than echo and errors: not translated
        if t[0] == PROTO_ICMP and pkt[(pkt[0] & 0x0F) * 4] in _ICMP_ERRORS:
            return self._translate_error(pkt, now)  # (by its quote, never by its own tuple)
        found = self._lookup(t, now)
        if found is not None:
            conn, d = found
            self._track(conn, d, pkt, now)
            _rewrite(pkt, 0, _inverse(conn.tuple_of(1 - d)))
            c["nat.translated"] += 1
            return pkt
        return self._new(iface, t, pkt, now)

    # -- connections ----------------------------------------------------------------------------
    def _tuple(self, pkt: bytes | bytearray | memoryview) -> Tuple | None:
        if len(pkt) < 20:
            return None
        hl = (pkt[0] & 0x0F) * 4
        proto = pkt[9]
        if proto == PROTO_ICMP and len(pkt) >= hl + 8 and pkt[hl] in _ICMP_ERRORS:
            return (proto, bytes(pkt[12:16]), 0, bytes(pkt[16:20]), 0)  # looked up by its quote
        ports = _ports(pkt, hl, proto, len(pkt) - hl)
        if ports is None:
            return None
        return (proto, bytes(pkt[12:16]), ports[0], bytes(pkt[16:20]), ports[1])

    def _lookup(self, t: Tuple, now: float) -> tuple[Conn, int] | None:
        found = self.table.get(t)
        if found is not None and found[0].expires <= now:
            self._remove(found[0])
            self.host.counters["nat.conntrack.expired"] += 1
            return None
        return found

    def _remove(self, conn: Conn) -> None:
        self.table.pop(conn.orig, None)
        self.table.pop(conn.reply, None)

    def _forward_rule(self, t: Tuple) -> PortForward | None:
        if t[3] not in self.host.local4:
            return None
        for f in self.forwards:
            if f.proto == t[0] and f.port == t[4]:
                return f
        return None

    def _out_iface(self, dst: bytes) -> tuple[Interface | None, bytes]:
        route = self.host.routes.lookup(dst)
        if route is None:
            return None, dst
        return self.host.route_out(route, dst)

    def _new(self, iface: Interface, t: Tuple, pkt: bytearray, now: float) -> bytearray | None:
        c = self.host.counters
        proto = t[0]
        if proto == PROTO_TCP and pkt[(pkt[0] & 0x0F) * 4 + 13] & _RST:
            return pkt  # a RST opens nothing (conntrack: INVALID, not translated)
        if proto == PROTO_ICMP and pkt[(pkt[0] & 0x0F) * 4] != _ECHO_REQUEST:
            return pkt  # an echo reply with no request tracked
        rule = self._forward_rule(t)
        dst, dport = t[3], t[4]
        if rule is not None:
            try:
                dst = ipaddress.IPv4Address(self.resolve(rule.to)).packed
            except (OSError, ValueError):
                c["drop.nat.forward_unresolved"] += 1
                return None
            dport = rule.to_port
        out, nexthop = self._out_iface(dst)
        if out is None:
            return pkt  # the forwarding path answers Net Unreachable about the original
        outside = out.name == self.outside
        hairpin = rule is not None and iface.name != self.outside and not outside
        src, sport = t[1], t[2]
        if outside or hairpin:
            oif = out if outside else self._outside_iface()
            ext = oif.v4_source_for(nexthop) if oif is not None else None
            if ext is None:
                c["drop.nat.no_address"] += 1
                return None
            port = self._pick_port(proto, dst, dport, ext, sport)
            if port is None:
                c["drop.nat.no_port"] += 1
                self.host.trace(now, "nat", "drop", reason="no free port", src=ip_str(src))
                return None
            src, sport = ext, port
        elif rule is None:
            return pkt  # neither masqueraded nor forwarded: not NAT's
        # the reply tuple: the far end answers the (translated) source
        reply: Tuple = (proto, dst, dport, src, sport)
        if proto == PROTO_ICMP:
            reply = (proto, dst, 0, src, sport)
        if reply in self.table:
            c["drop.nat.no_port"] += 1
            return None
        conn = Conn(t, reply, "-", now)
        self.table[t] = (conn, 0)
        self.table[reply] = (conn, 1)
        c["nat.conntrack.new"] += 1
        self._track(conn, 0, pkt, now)
        note = (f"SNAT {ip_str(t[1])}:{t[2]} -> {ip_str(src)}:{sport}" if src != t[1]
                else f"DNAT {ip_str(t[3])}:{t[4]} -> {ip_str(dst)}:{dport}")
        self.host.trace(now, "nat", "new", conn=conn.describe(now), note=note)
        _rewrite(pkt, 0, _inverse(reply))
        c["nat.translated"] += 1
        if self._sweep_at is None:
            self._sweep_at = now + SWEEP
            self.host.request_wake()
        return pkt

    def _outside_iface(self) -> Interface | None:
        for i in self.host.interfaces:
            if i.name == self.outside:
                return i
        return None

    def _pick_port(self, proto: int, rdst: bytes, rport: int, ext: bytes, want: int
                   ) -> int | None:
        """``want`` if the reply tuple is free (port preservation), else the first free one
        from a random start in Linux's class of ``want`` (nf_nat_l4proto_unique_tuple)."""
        def free(p: int) -> bool:
            key = (proto, rdst, 0, ext, p) if proto == PROTO_ICMP else (proto, rdst, rport, ext, p)
            return key not in self.table
        if proto not in (PROTO_TCP, PROTO_UDP, PROTO_ICMP):
            return want if free(want) else None
        if free(want):
            return want
        if proto == PROTO_ICMP:
            lo, hi = 0, 65535
        elif want < 512:
            lo, hi = 1, 511
        elif want < 1024:
            lo, hi = 600, 1023
        else:
            lo, hi = 1024, 65535
        span = hi - lo + 1
        start = self.host.rng.randrange(span)
        for i in range(span):
            p = lo + (start + i) % span
            if free(p):
                return p
        return None

    def _track(self, conn: Conn, d: int, pkt: bytes | bytearray, now: float) -> None:
        """Advance the connection's state and timeout with a packet in direction ``d``."""
        to = self.timeouts
        proto = conn.orig[0]
        if d == 1:
            conn.seen_reply = True
        if proto == PROTO_TCP:
            flags = pkt[(pkt[0] & 0x0F) * 4 + 13]
            conn.state = _tcp_next(conn, d, flags)
            conn.expires = now + to["tcp_timeout_" + conn.state.lower()]
        elif proto == PROTO_UDP:
            conn.expires = now + to["udp_timeout_stream" if conn.seen_reply else "udp_timeout"]
        elif proto == PROTO_ICMP:
            conn.expires = now + to["icmp_timeout"]
        else:
            conn.expires = now + to["generic_timeout"]

    # -- ICMP errors (RFC 5508 §4) --------------------------------------------------------------
    def _error_conn(self, pkt: bytes | bytearray | memoryview, now: float
                    ) -> tuple[Conn, int, int] | None:
        """The connection an ICMP error's quoted packet belongs to: (conn, the direction the
        error travels, the quote's offset), or None."""
        hl = (pkt[0] & 0x0F) * 4
        q = hl + 8
        if len(pkt) < q + 20 or pkt[q] >> 4 != 4:
            return None
        qhl = (pkt[q] & 0x0F) * 4
        qproto = pkt[q + 9]
        ports = _ports(pkt, q + qhl, qproto, len(pkt) - q - qhl)
        if ports is None or qhl < 20:
            return None
        quoted: Tuple = (qproto, bytes(pkt[q + 12:q + 16]), ports[0], bytes(pkt[q + 16:q + 20]),
                         ports[1])
        # the quote is a packet we sent, translated: the inverse of the error's own direction
        found = self._lookup(_inverse(quoted), now)
        if found is None:
            return None
        return found[0], found[1], q

    def _translate_error(self, pkt: bytearray, now: float) -> bytearray | None:
        found = self._error_conn(pkt, now)
        if found is None:
            return pkt  # not about a tracked connection: forwarded as it is
        conn, d, q = found
        mine, other = conn.tuple_of(d), conn.tuple_of(1 - d)
        # inside: the quote back to the packet as its sender sent it
        _rewrite(pkt, q, other, quoted=True)
        # outside: the destination; the source only when the translated endpoint sent it
        src, dst = bytes(pkt[12:16]), bytes(pkt[16:20])
        new_src = other[3] if src == mine[1] else src
        new_dst = other[1] if dst == mine[3] else dst
        hl = (pkt[0] & 0x0F) * 4
        pkt[hl + 2] = pkt[hl + 3] = 0
        _put16(pkt, hl + 2, internet_checksum(pkt[hl:]))
        old = bytes(pkt[12:20])
        pkt[12:16], pkt[16:20] = new_src, new_dst
        _put16(pkt, 10, checksum_adjust((pkt[10] << 8) | pkt[11], old, new_src + new_dst))
        self.host.counters["nat.icmp_error_translated"] += 1
        return pkt

    # -- fragments ------------------------------------------------------------------------------
    def _reassemble(self, pkt: bytearray, now: float) -> bytearray | None:
        hl = (pkt[0] & 0x0F) * 4
        ff = (pkt[6] << 8) | pkt[7]
        total = (pkt[2] << 8) | pkt[3]
        key = (bytes(pkt[12:16]), bytes(pkt[16:20]), pkt[9], bytes(pkt[4:6]))
        off = (ff & 0x1FFF) * 8
        first = bytes(pkt[:hl]) if off == 0 else None
        res = self.defrag.add(key, off, bytes(pkt[hl:total]), bool(ff & 0x2000), now, first,
                              hl if first is not None else 0)
        if res is None:
            self.host.request_wake()  # the reassembly timeout is a timer
            return None
        payload, header = res
        whole = bytearray(header) + payload
        _put16(whole, 2, len(whole))
        whole[6] &= 0x40  # keep DF, clear MF and the offset
        whole[7] = 0
        whole[10] = whole[11] = 0
        _put16(whole, 10, internet_checksum(whole[:hl]))
        self.host.counters["nat.defragmented"] += 1
        return whole

    # -- timers, report ---------------------------------------------------------------------------
    def get_timer(self) -> float | None:
        t = self.defrag.get_timer()
        s = self._sweep_at
        if s is not None and (t is None or s < t):
            return s
        return t

    def handle_timer(self, now: float) -> None:
        self.defrag.handle_timer(now)
        if self._sweep_at is None or now < self._sweep_at:
            return
        for conn in {id(cn): cn for cn, _ in self.table.values()}.values():
            if conn.expires <= now:
                self._remove(conn)
                self.host.counters["nat.conntrack.expired"] += 1
        if self.table:
            soonest = min(cn.expires for cn, _ in self.table.values())
            self._sweep_at = max(now + SWEEP, soonest)
        else:
            self._sweep_at = None

    def connections(self) -> Iterator[Conn]:
        seen: set[int] = set()
        for conn, _ in self.table.values():
            if id(conn) not in seen:
                seen.add(id(conn))
                yield conn

    def describe(self, now: float) -> list[str]:
        """``conntrack -L``-like lines."""
        return [conn.describe(now) for conn in self.connections() if conn.expires > now]


def _tcp_next(conn: Conn, d: int, flags: int) -> str:
    """Linux's TCP conntrack states, simplified to the transitions a well-behaved connection
    makes (nf_conntrack_proto_tcp.c's table): a SYN opens, SYN+ACK answers, the ACK
    establishes; FINs close; a RST ends it; a connection first seen mid-stream is picked up
    established (``nf_conntrack_tcp_loose``)."""
    s = conn.state
    if flags & _RST:
        return "CLOSE"
    if flags & _SYN:
        if flags & _ACK:
            return "SYN_RECV" if s in ("-", "SYN_SENT", "SYN_RECV") else s
        return "SYN_SENT" if s in ("-", "SYN_SENT", "CLOSE", "TIME_WAIT") else s
    if s == "-":
        s = "ESTABLISHED"
    if flags & _FIN:
        conn.fin[d] = True
        if conn.fin[1 - d]:
            return "LAST_ACK"
        return "FIN_WAIT" if s in ("ESTABLISHED", "SYN_RECV") else s
    if flags & _ACK:
        if s == "SYN_RECV" and d == 0:
            return "ESTABLISHED"
        if s == "FIN_WAIT" and not conn.fin[d]:
            return "CLOSE_WAIT"
        if s == "LAST_ACK" and all(conn.fin):
            return "TIME_WAIT"
    return s


def parse_nat(value: object) -> tuple[str, tuple[PortForward, ...]] | None:
    """A scenario's ``nat``: ``"eth1"`` (masquerade out of eth1), ``{ outside = "eth1",
    forward = [{ proto = "tcp", port = 8080, to = "srv:80" }] }``, or false/"off"."""
    if value is None or value is False or value == "off":
        return None
    if isinstance(value, str):
        value = {"outside": value}
    if not isinstance(value, Mapping):
        raise NatConfigError(f'expected "eth1" or {{ outside = "eth1", forward = [...] }}, '
                             f"got {value!r}")
    unknown = set(value) - {"outside", "forward"}
    if unknown:
        raise NatConfigError(f"unknown key(s) {sorted(unknown)} (known: outside, forward)")
    outside = value.get("outside")
    if not isinstance(outside, str) or not outside:
        raise NatConfigError('outside: the interface name, e.g. outside = "eth1"')
    forwards = []
    for f in value.get("forward", []):
        if not isinstance(f, Mapping):
            raise NatConfigError(f"forward: expected tables, got {f!r}")
        proto = {"tcp": PROTO_TCP, "udp": PROTO_UDP}.get(str(f.get("proto", "tcp")))
        port, to = f.get("port"), f.get("to")
        if proto is None:
            raise NatConfigError(f"forward: proto is tcp or udp, not {f.get('proto')!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise NatConfigError(f"forward: port is 1..65535, not {port!r}")
        if not isinstance(to, str) or not to:
            raise NatConfigError('forward: to = "node:port" or "address:port"')
        name, _, p = to.rpartition(":")
        if not name or not p.isdigit() or not 0 < int(p) < 65536:
            raise NatConfigError(f'forward: to = "node:port", not {to!r}')
        forwards.append(PortForward(proto, port, name, int(p)))
    return outside, tuple(forwards)
