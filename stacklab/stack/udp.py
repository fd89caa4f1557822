"""UDP (RFC 768) sockets of a host, sans-IO.

A :class:`UdpPcb` (protocol control block, as BSD calls it) is bound to a local port and maybe
connected to a remote address. Received datagrams and errors go synchronously to its
``listener`` (``datagram_received(data, (addr, port), now)``, ``error_received(exc, now)``);
the asyncio endpoint and the coroutine socket in :mod:`stacklab.api.udp` are such listeners.

As on Linux, ICMP errors are reported only to connected sockets (an unconnected one cannot
tell which of its peers the error is about), and a datagram to a port nobody listens on is
answered with Port Unreachable unless it was sent to a broadcast/multicast address.

Multicast (RFC 1112, RFC 3493 §5.2): ``join_group(group, ifindex)`` is ``IP_ADD_MEMBERSHIP`` /
``IPV6_JOIN_GROUP`` (the host's IGMP/MLD engine reports it; the membership is dropped when the
socket closes); a datagram to a group goes to every socket bound to its port (on the wildcard
address or the group), as Linux delivers multicast and broadcast; sending to a group uses
``mcast_ttl`` (``IP_MULTICAST_TTL`` / ``IPV6_MULTICAST_HOPS``, default 1, not the unicast TTL)
and ``mcast_if`` (``IP_MULTICAST_IF``, an interface index); a host that is itself a member gets
a copy of what it sends (``IP_MULTICAST_LOOP`` on, Linux's default).

Datagram PLPMTUD (RFC 8899): ``enable_plpmtud()`` on a connected socket sets DF and runs a
:class:`~stacklab.stack.plpmtu.Dplpmtud` for the path: ``send_probe(prefix)`` sends the probe
the search wants (a datagram of exactly that IP size, ``prefix`` then zeros), the application
reports its peer's confirmation with ``probe_acked(size)``, validated Packet Too Big messages
feed it, and ``max_payload()`` is the PLPMTU's payload — alongside DF, EMSGSIZE and
``path_mtu()`` (``IP_MTU``), which keep their classic PMTUD meaning.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any

from stacklab.errors import StacklabError
from stacklab.wire.addr import ip_str
from stacklab.wire.proto import PROTO_UDP
from stacklab.wire.udp import UdpView, build_udp

from .icmp import PACKET_TOO_BIG, TIME_EXCEEDED, UNREACHABLE
from .plpmtu import Dplpmtud

if TYPE_CHECKING:
    from .context import HostContext, RxInfo

EPHEMERAL_LOW = 32768
EPHEMERAL_HIGH = 60999  # Linux ip_local_port_range


class PacketTooBigError(StacklabError, OSError):
    """A send that does not fit the path MTU with DF set: ``errno`` EMSGSIZE, ``mtu`` the limit."""

    def __init__(self, mtu: int) -> None:
        super().__init__(errno.EMSGSIZE, f"{os.strerror(errno.EMSGSIZE)} (path MTU {mtu})")
        self.mtu = mtu


def error_from_icmp(family: int, kind: str, code: int, mtu: int) -> OSError:
    """The socket error Linux reports for an ICMP error (its ``icmp_err_convert`` table)."""
    if kind == PACKET_TOO_BIG:
        return PacketTooBigError(mtu)
    if kind == TIME_EXCEEDED:
        return OSError(errno.EHOSTUNREACH, os.strerror(errno.EHOSTUNREACH))
    if kind == UNREACHABLE:
        if family == 4:
            table = {0: errno.ENETUNREACH, 1: errno.EHOSTUNREACH, 2: errno.ENOPROTOOPT,
                     3: errno.ECONNREFUSED, 5: errno.EOPNOTSUPP, 6: errno.ENETUNREACH,
                     7: errno.EHOSTDOWN, 9: errno.ENETUNREACH, 10: errno.EHOSTUNREACH,
                     13: errno.EACCES}
        else:
            table = {0: errno.ENETUNREACH, 1: errno.EACCES, 2: errno.EHOSTUNREACH,
                     3: errno.EHOSTUNREACH, 4: errno.ECONNREFUSED, 5: errno.EACCES,
                     6: errno.EACCES}
        num = table.get(code, errno.EHOSTUNREACH)
        if num == errno.ECONNREFUSED:
            return ConnectionRefusedError(num, os.strerror(num))
        return OSError(num, os.strerror(num))
    return OSError(errno.EPROTO, os.strerror(errno.EPROTO))


class UdpPcb:
    """One UDP socket. Addresses are bytes (4 or 16), ports ints."""

    def __init__(self, udp: Udp, family: int = 4) -> None:
        if family not in (4, 6):
            raise ValueError(f"family is 4 or 6, not {family}")
        self.udp = udp
        self.family = family
        self.local_addr: bytes | None = None
        self.local_port: int | None = None
        self.remote: tuple[bytes, int] | None = None
        self.listener: Any = None
        self.df = False  # IP_PMTUDISC_DO / IPV6_DONTFRAG
        self.ttl: int | None = None
        self.closed = False
        self.reuse = False
        self.mcast_ttl = 1  # IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS
        self.mcast_if: int | None = None  # IP_MULTICAST_IF / IPV6_MULTICAST_IF (ifindex)
        self.memberships: list[tuple[int, bytes]] = []  # (ifindex, group) joined
        self.plpmtud: Dplpmtud | None = None  # RFC 8899, see enable_plpmtud

    # -- datagram PLPMTUD (RFC 8899) -------------------------------------------------------------
    def enable_plpmtud(self) -> Dplpmtud:
        """DPLPMTUD on this connected socket's path (ENOTCONN when not connected)."""
        if self.remote is None:
            raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))
        if self.plpmtud is None:
            self.df = True  # RFC 8899 §3 (probes and data never fragmented)
            host = self.udp.host
            self.plpmtud = Dplpmtud(self.family, host.link_mtu(self.remote[0]))
            host.add_timer_source(self.plpmtud)
        return self.plpmtud

    def send_probe(self, now: float, prefix: bytes = b"") -> int | None:
        """Send the probe DPLPMTUD wants now: a datagram of exactly that IP packet size,
        ``prefix`` then zeros, DF set. Returns its size, or None (none wanted now)."""
        pl, remote = self.plpmtud, self.remote
        if pl is None or remote is None:
            raise OSError(errno.EINVAL, "DPLPMTUD is not enabled on this socket")
        host = self.udp.host
        size = pl.probe_size(host.link_mtu(remote[0]), now)
        if size is None:
            return None
        hdr = 28 if self.family == 4 else 48
        data = prefix[:size - hdr].ljust(size - hdr, b"\0")
        src = self.local_addr or host.source_address_for(remote[0])
        assert self.local_port is not None  # connect() bound it
        if src is None:
            raise OSError(errno.ENETUNREACH, os.strerror(errno.ENETUNREACH))
        pl.probe_sent(size, now)
        host.request_wake()  # the probe timer
        host.ip_send(src, remote[0], PROTO_UDP, build_udp(src, remote[0], self.local_port,
                                                          remote[1], data), now, df=True)
        host.counters["udp.tx.plpmtud_probes"] += 1
        return size

    # -- multicast -------------------------------------------------------------------------------
    def _group_iface(self, group: bytes, ifindex: int | None) -> int:
        host = self.udp.host
        if len(group) != (4 if self.family == 4 else 16) or not _is_multicast(group):
            raise OSError(errno.EINVAL, f"{ip_str(group)} is not a multicast address")
        if ifindex is None:
            ifindex = self.mcast_if
        if ifindex is None:  # Linux: the interface of the route to the group, else the first
            route = host.routes.lookup(group)
            out = host.route_out(route, group)[0] if route is not None else None
            ifindex = out.index if out is not None else 0
        if not 0 <= ifindex < len(host.interfaces):
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        return ifindex

    def join_group(self, group: bytes, ifindex: int | None, now: float) -> None:
        """``IP_ADD_MEMBERSHIP`` / ``IPV6_JOIN_GROUP`` (EADDRINUSE if already joined there)."""
        i = self._group_iface(group, ifindex)
        if (i, group) in self.memberships:
            raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))
        self.memberships.append((i, group))
        host = self.udp.host
        (host.igmp if self.family == 4 else host.mld).join(i, group, now)

    def leave_group(self, group: bytes, ifindex: int | None, now: float) -> None:
        """``IP_DROP_MEMBERSHIP`` / ``IPV6_LEAVE_GROUP`` (EADDRNOTAVAIL if not joined)."""
        i = self._group_iface(group, ifindex)
        if (i, group) not in self.memberships:
            raise OSError(errno.EADDRNOTAVAIL, os.strerror(errno.EADDRNOTAVAIL))
        self.memberships.remove((i, group))
        host = self.udp.host
        (host.igmp if self.family == 4 else host.mld).leave(i, group, now)

    # -- control -------------------------------------------------------------------------------
    def bind(self, addr: bytes | None = None, port: int = 0) -> None:
        if self.closed:
            raise OSError(errno.EBADF, "socket is closed")
        if self.local_port is not None:
            raise OSError(errno.EINVAL, "socket already bound")
        udp = self.udp
        if addr is not None:
            if len(addr) != (4 if self.family == 4 else 16):
                raise OSError(errno.EAFNOSUPPORT, "address family does not match the socket")
            if not udp.host.is_local(addr) and addr != bytes(len(addr)) \
                    and not _is_multicast(addr):  # a group: Linux binds to it as well
                raise OSError(errno.EADDRNOTAVAIL, os.strerror(errno.EADDRNOTAVAIL))
            if addr == bytes(len(addr)):
                addr = None
        if port == 0:
            port = udp.ephemeral_port(self.family)
        elif not self.reuse:
            for other in udp.ports.get(port, ()):
                if other.family == self.family and (
                        other.local_addr is None or addr is None or other.local_addr == addr):
                    raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))
        self.local_addr = addr
        self.local_port = port
        udp.ports.setdefault(port, []).append(self)

    def connect(self, addr: bytes, port: int) -> None:
        if len(addr) != (4 if self.family == 4 else 16):
            raise OSError(errno.EAFNOSUPPORT, "address family does not match the socket")
        if self.local_port is None:
            self.bind(None, 0)
        self.remote = (addr, port)

    def close(self, now: float = 0.0) -> None:
        if self.closed:
            return
        for i, group in self.memberships:
            host = self.udp.host
            (host.igmp if self.family == 4 else host.mld).leave(i, group, now)
        self.memberships = []
        if self.plpmtud is not None:
            self.udp.host.remove_timer_source(self.plpmtud)
        self.closed = True
        if self.local_port is not None:
            lst = self.udp.ports.get(self.local_port)
            if lst and self in lst:
                lst.remove(self)
                if not lst:
                    del self.udp.ports[self.local_port]

    def path_mtu(self) -> int:
        """``getsockopt(IP_MTU)`` / ``IPV6_MTU``: the path MTU to the connected peer (ENOTCONN
        when not connected, as Linux)."""
        if self.remote is None:
            raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))
        return self.udp.host.path_mtu(self.remote[0])

    def max_payload(self, dst: bytes | None = None) -> int:
        """The largest datagram payload that leaves unfragmented (path MTU − IP − UDP; with
        DPLPMTUD, the PLPMTU's when smaller)."""
        if dst is None:
            if self.remote is None:
                raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN))
            dst = self.remote[0]
        mtu = self.udp.host.path_mtu(dst)
        if self.plpmtud is not None and self.remote is not None and dst == self.remote[0]:
            mtu = min(mtu, self.plpmtud.plpmtu)
        return mtu - (28 if len(dst) == 4 else 48)

    def sockname(self) -> tuple[bytes, int]:
        return (self.local_addr or bytes(4 if self.family == 4 else 16), self.local_port or 0)

    # -- data ----------------------------------------------------------------------------------
    def sendto(self, data: bytes | bytearray | memoryview, addr: tuple[bytes, int] | None,
               now: float) -> None:
        """Send one datagram; raises OSError (EMSGSIZE as :class:`PacketTooBigError`)."""
        if self.closed:
            raise OSError(errno.EBADF, "socket is closed")
        if addr is None:
            if self.remote is None:
                raise OSError(errno.EDESTADDRREQ, os.strerror(errno.EDESTADDRREQ))
            addr = self.remote
        dst, dport = addr
        if len(dst) != (4 if self.family == 4 else 16):
            raise OSError(errno.EAFNOSUPPORT, "address family does not match the socket")
        if not 0 < dport < 65536:
            raise OSError(errno.EINVAL, f"bad port {dport}")
        if self.local_port is None:
            self.bind(None, 0)
        sport = self.local_port
        assert sport is not None  # bind() picked one
        host = self.udp.host
        mcast = _is_multicast(dst)
        ifindex = None
        if mcast:
            ifindex = self._group_iface(dst, None)
            src = self.local_addr
            if src is None:
                iface = host.interfaces[ifindex]
                src = iface.v4_source_for(dst) if self.family == 4 else iface.v6_source_for(dst)
        else:
            src = self.local_addr or host.source_address_for(dst)
        if src is None:
            raise OSError(errno.ENETUNREACH, os.strerror(errno.ENETUNREACH))
        if len(data) > 65535 - 8 - (20 if self.family == 4 else 0):
            raise OSError(errno.EMSGSIZE, os.strerror(errno.EMSGSIZE))
        dgram = build_udp(src, dst, sport, dport, data)
        if self.df:
            mtu = host.path_mtu(dst)
            if len(dgram) + (20 if self.family == 4 else 40) > mtu:
                host.counters["udp.tx.emsgsize"] += 1
                raise PacketTooBigError(mtu)
        try:
            host.ip_send(src, dst, PROTO_UDP, dgram, now, df=self.df,
                         ttl=self.mcast_ttl if mcast else self.ttl, ifindex=ifindex)
        except OSError as e:
            if e.errno == errno.EMSGSIZE:
                raise PacketTooBigError(host.path_mtu(dst)) from None
            raise
        host.counters["udp.tx.datagrams"] += 1


def _is_multicast(a: bytes) -> bool:
    return a[0] >> 4 == 14 if len(a) == 4 else a[0] == 0xFF


class Udp:
    """The UDP layer of a host: port table, demultiplexing, ICMP errors to sockets."""

    def __init__(self, host: HostContext) -> None:
        self.host = host
        self.ports: dict[int, list[UdpPcb]] = {}
        self._next_port = EPHEMERAL_LOW + host.rng.randrange(EPHEMERAL_HIGH - EPHEMERAL_LOW)

    def socket(self, family: int = 4) -> UdpPcb:
        return UdpPcb(self, family)

    def ephemeral_port(self, family: int) -> int:
        span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1
        for _ in range(span):
            p = self._next_port
            self._next_port = EPHEMERAL_LOW + (p + 1 - EPHEMERAL_LOW) % span
            if not any(s.family == family for s in self.ports.get(p, ())):
                return p
        raise OSError(errno.EADDRINUSE, "no free ephemeral port")

    def _lookup(self, dst: bytes, dport: int, src: bytes, sport: int) -> UdpPcb | None:
        socks = self.ports.get(dport)
        if not socks:
            return None
        fam = 4 if len(dst) == 4 else 6
        best = None
        best_score = -1
        for s in socks:
            if s.family != fam:
                continue
            score = 0
            if s.local_addr is not None:
                if s.local_addr != dst:
                    continue
                score += 1
            if s.remote is not None:
                if s.remote != (src, sport):
                    continue
                score += 2
            if score > best_score:
                best, best_score = s, score
        return best

    def receive(self, src: bytes, dst: bytes, payload: memoryview, now: float,
                info: RxInfo) -> None:
        h = self.host
        c = h.counters
        u = UdpView(payload)  # raises MalformedPacket
        if not u.checksum_ok(src, dst):
            c["drop.udp.bad_checksum"] += 1
            h.trace(now, "udp", "drop", reason="bad checksum")
            return
        if _is_multicast(dst) or (info.family == 4 and h.is_bcast4(dst)):
            self._deliver_all(dst, src, u, now, info)
            return
        pcb = self._lookup(dst, u.dst_port, src, u.src_port)
        if pcb is None:
            c["udp.no_port"] += 1
            if not info.bcast:
                if info.family == 4:
                    h.send_icmp_error4(info.packet, 3, 3, now)
                else:
                    h.send_icmp_error6(info.packet, 1, 4, now)
            return
        c["udp.rx.datagrams"] += 1
        if pcb.listener is not None:
            pcb.listener.datagram_received(bytes(u.payload), (src, u.src_port), now)

    def _deliver_all(self, dst: bytes, src: bytes, u: UdpView, now: float,
                     info: RxInfo) -> None:
        """Multicast and broadcast: every socket on the port whose address and peer fit
        (Linux's __udp4_lib_mcast_deliver)."""
        c = self.host.counters
        fam = info.family
        hits = [s for s in self.ports.get(u.dst_port, ()) if s.family == fam
                and (s.local_addr is None or s.local_addr == dst)
                and (s.remote is None or s.remote == (src, u.src_port))]
        if not hits:
            c["udp.no_port"] += 1
            return
        data = bytes(u.payload)
        for s in hits:
            c["udp.rx.datagrams"] += 1
            if s.listener is not None:
                s.listener.datagram_received(data, (src, u.src_port), now)

    def icmp_matches(self, qsrc: bytes, qdst: bytes, ql4: bytes) -> str | None:
        """RFC 5927 / RFC 8201 §5: an ICMP error quoting a datagram is believed only when a
        socket of ours could have sent it (local port and address; the peer if connected).
        Registered with ``host.icmp.register_validator(17, ...)``; None = believe it."""
        if len(ql4) < 4:
            return "truncated"
        sport = (ql4[0] << 8) | ql4[1]
        dport = (ql4[2] << 8) | ql4[3]
        fam = 4 if len(qsrc) == 4 else 6
        for s in self.ports.get(sport, ()):
            if s.family == fam and (s.local_addr is None or s.local_addr == qsrc) and (
                    s.remote is None or s.remote == (qdst, dport)):
                return None
        return "no_flow"

    def icmp_error(self, now: float, kind: str, code: int, mtu: int, qsrc: bytes, qdst: bytes,
                   ql4: bytes) -> None:
        """Registered with ``HostContext.register_icmp_error(17, ...)``."""
        if len(ql4) < 4:
            return
        sport = (ql4[0] << 8) | ql4[1]
        dport = (ql4[2] << 8) | ql4[3]
        for s in self.ports.get(sport, ()):
            if s.remote == (qdst, dport) and (s.local_addr is None or s.local_addr == qsrc):
                self.host.counters["udp.rx.errors"] += 1
                if s.plpmtud is not None and kind == PACKET_TOO_BIG:
                    s.plpmtud.on_ptb(mtu, now)  # RFC 8899 §4.6.2 (validated: our flow)
                if s.listener is not None:
                    s.listener.error_received(
                        error_from_icmp(4 if len(qsrc) == 4 else 6, kind, code, mtu), now)
                return

    def describe(self) -> list[str]:
        out = []
        for port, socks in sorted(self.ports.items()):
            for s in socks:
                local = f"{ip_str(s.local_addr) if s.local_addr else '*'}:{port}"
                remote = f"{ip_str(s.remote[0])}:{s.remote[1]}" if s.remote else "*:*"
                out.append(f"udp{'6' if s.family == 6 else ''} {local} {remote}")
        return out
