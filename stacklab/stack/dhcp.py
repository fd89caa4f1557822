"""The DHCPv4 client (RFC 2131 §4.4), one per interface, sans-IO.

States as RFC 2131 Figure 5: INIT → SELECTING (DISCOVER, retransmitted after 4, 8, 16, 32, 64 s
± 1 s, §4.1) → REQUESTING (REQUEST naming the chosen server) → on ACK a PROBING step (RFC 2131
§2.2 "SHOULD probe": the host's RFC 5227 conflict detection, ``host.acd.claim``, stack/acd.py:
three ARP probes, then the address and its announcements; a conflict means somebody uses it:
DECLINE, and INIT again after 10 s, §3.1.5) → BOUND: the address, its
subnet route, the default route via the router option, the MTU option (26) and the resolver
configuration (DNS servers 6, domain 15) are applied. At T1 (option 58, default lease / 2)
RENEWING: REQUEST unicast to the server; at T2 (option 59, default 7/8 lease) REBINDING: REQUEST
broadcast; retransmissions at half the time left, at least 60 s (§4.4.5). At the lease's end, or
on a NAK, everything is removed and the client starts over. ``release()`` sends RELEASE.

All the clients of a host share one UDP socket on port 68 (:class:`DhcpClients`), which hands
each message to the client whose interface MAC and transaction id it carries. The replies we
ask for are broadcast (the BROADCAST flag, §4.1: we cannot receive unicast before we have an
address).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from stacklab.wire.addr import ip4_str
from stacklab.wire.dhcp import (
    ACK,
    BOOTREPLY,
    BOOTREQUEST,
    CLIENT_PORT,
    DECLINE,
    DISCOVER,
    FLAG_BROADCAST,
    MESSAGE_TYPE_NAMES,
    NAK,
    OFFER,
    OPT_DNS,
    OPT_DOMAIN,
    OPT_LEASE,
    OPT_MSG_TYPE,
    OPT_MTU,
    OPT_PARAMS,
    OPT_REQUESTED_IP,
    OPT_ROUTER,
    OPT_SERVER_ID,
    OPT_SUBNET,
    OPT_T1,
    OPT_T2,
    RELEASE,
    REQUEST,
    SERVER_PORT,
    DhcpMessage,
)
from stacklab.wire.errors import MalformedPacket
from stacklab.wire.proto import PROTO_UDP
from stacklab.wire.udp import build_udp

from .context import HostContext

if TYPE_CHECKING:
    from .dns import ResolverConfig
    from .interface import Interface
    from .udp import Udp

__all__ = ["DhcpClient", "DhcpClients", "Lease"]

LIMITED_BCAST = b"\xff\xff\xff\xff"
ZERO4 = bytes(4)
INIT, SELECTING, REQUESTING, PROBING, BOUND, RENEWING, REBINDING = (
    "INIT", "SELECTING", "REQUESTING", "PROBING", "BOUND", "RENEWING", "REBINDING")
# what we ask for (option 55): subnet, router, DNS, domain, MTU, lease, T1, T2
PARAMS = bytes((OPT_SUBNET, OPT_ROUTER, OPT_DNS, OPT_DOMAIN, OPT_MTU, OPT_LEASE, OPT_T1, OPT_T2))


class DhcpHost(HostContext, Protocol):
    """What the DHCP engines need beyond :class:`HostContext`: the UDP layer and the resolver
    configuration they fill."""

    udp: Udp
    resolv: ResolverConfig

    def remove_address(self, ifindex: int, cidr: str) -> None: ...

    def add_route(self, prefix: str, via: str | None = None,
                  ifindex: int | None = None) -> None: ...


@dataclass(slots=True)
class Lease:
    """What a bound client holds (times absolute, in the host's clock)."""

    address: bytes
    plen: int
    server: bytes
    obtained: float
    lease_time: float
    t1: float
    t2: float
    routers: list[bytes] = field(default_factory=list)
    dns: list[bytes] = field(default_factory=list)
    domain: str | None = None
    mtu: int | None = None

    def summary(self, now: float) -> dict[str, Any]:
        return {"address": f"{ip4_str(self.address)}/{self.plen}",
                "server": ip4_str(self.server),
                "lease_time": self.lease_time,
                "expires_in": round(self.obtained + self.lease_time - now, 3),
                "router": ip4_str(self.routers[0]) if self.routers else None,
                "dns": [ip4_str(a) for a in self.dns], "domain": self.domain, "mtu": self.mtu}


def _prefix_len(msg: DhcpMessage) -> int | None:
    """The subnet mask option as a prefix length (no option: /24, as a classful guess would
    give for the private ranges); None for a mask that is not a prefix (255.0.255.0)."""
    mask = msg.ip(OPT_SUBNET)
    if mask is None:
        return 24
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{ip4_str(mask)}").prefixlen
    except ValueError:
        return None


class DhcpClient:
    """The client on one interface. ``start(now)`` begins; ``lease`` is set while BOUND."""

    # retransmission (§4.1): 4 s doubling to 64 s, ± 1 s; that many DISCOVERs / REQUESTs
    first_timeout = 4.0
    max_timeout = 64.0
    decline_wait = 10.0  # §3.1.5: at least 10 s before trying again after a DECLINE

    def __init__(self, host: DhcpHost, iface: Interface, clients: DhcpClients) -> None:
        self.host = host
        self.iface = iface
        self.clients = clients
        self.state = INIT
        self.xid = 0
        self.lease: Lease | None = None
        self.history: list[str] = []  # the messages sent and received, by name
        self._offer: DhcpMessage | None = None
        self._timer: float | None = None
        self._timeout = self.first_timeout
        self._started = 0.0

    # -- user calls ------------------------------------------------------------------------------
    def start(self, now: float) -> None:
        self._discover(now)
        self.host.request_wake()

    def release(self, now: float) -> None:
        """Give the lease back (RELEASE unicast to the server, §4.4.6) and unconfigure."""
        lease = self.lease
        if lease is None:
            return
        msg = self._message(RELEASE, ciaddr=lease.address)
        msg.options[OPT_SERVER_ID] = lease.server
        msg.flags = 0
        self._send(msg, now, src=lease.address, dst=lease.server)
        self._unconfigure()
        self.state = INIT
        self._timer = None
        self.host.request_wake()

    # -- timers ----------------------------------------------------------------------------------
    def get_timer(self) -> float | None:
        return self._timer

    def handle_timer(self, now: float) -> None:
        s = self.state
        lease = self.lease
        if s == INIT:
            self._discover(now)
        elif s == SELECTING:
            self._send_discover(now)
        elif s == REQUESTING:
            if self._timeout > self.max_timeout:
                self._count("dhcp.client.request_timeout")
                self._discover(now)
            else:
                self._send_request(now)
        elif lease is not None:
            end = lease.obtained + lease.lease_time
            if now >= end:  # §4.4.5: the lease expired: stop using the address
                self._count("dhcp.client.expired")
                self.host.trace(now, "dhcp", "expired", addr=ip4_str(lease.address))
                self._unconfigure()
                self._discover(now)
            elif now >= lease.obtained + lease.t2:
                self.state = REBINDING
                self._send_request(now)
                self._renew_timer(now, end)
            elif now >= lease.obtained + lease.t1:
                self.state = RENEWING
                self._send_request(now)
                self._renew_timer(now, lease.obtained + lease.t2)

    def _renew_timer(self, now: float, until: float) -> None:
        # §4.4.5: wait half the remaining time (down to 60 s) before retransmitting
        self._timer = min(until, now + max(60.0, (until - now) / 2))

    # -- messages --------------------------------------------------------------------------------
    def _message(self, kind: int, ciaddr: bytes = ZERO4) -> DhcpMessage:
        msg = DhcpMessage(BOOTREQUEST, self.xid, self.iface.mac, {OPT_MSG_TYPE: bytes((kind,))},
                          ciaddr=ciaddr, flags=FLAG_BROADCAST)
        return msg

    def _discover(self, now: float) -> None:
        self.state = SELECTING
        self.xid = self.host.rng.getrandbits(32)
        self._offer = None
        self._timeout = self.first_timeout
        self._started = now
        self._send_discover(now)

    def _arm(self, now: float) -> None:
        self._timer = now + self._timeout + self.host.rng.uniform(-1.0, 1.0)
        self._timeout *= 2

    def _send_discover(self, now: float) -> None:
        msg = self._message(DISCOVER)
        msg.options[OPT_PARAMS] = PARAMS
        if self.lease is not None:
            msg.options[OPT_REQUESTED_IP] = self.lease.address
        self._timeout = min(self._timeout, self.max_timeout)
        self._send(msg, now)
        self._arm(now)

    def _send_request(self, now: float) -> None:
        s = self.state
        lease = self.lease
        if s in (RENEWING, REBINDING) and lease is not None:
            # §4.3.2: ciaddr filled, no server id / requested address; unicast when renewing
            msg = self._message(REQUEST, ciaddr=lease.address)
            msg.flags = 0
            msg.options[OPT_PARAMS] = PARAMS
            self._send(msg, now, src=lease.address,
                       dst=lease.server if s == RENEWING else LIMITED_BCAST)
            return
        offer = self._offer
        assert offer is not None
        msg = self._message(REQUEST)
        msg.options[OPT_REQUESTED_IP] = offer.yiaddr
        msg.options[OPT_SERVER_ID] = offer.ip(OPT_SERVER_ID) or ZERO4
        msg.options[OPT_PARAMS] = PARAMS
        msg.secs = min(0xFFFF, int(now - self._started))
        self._send(msg, now)
        self._arm(now)

    def _send(self, msg: DhcpMessage, now: float, src: bytes = ZERO4,
              dst: bytes = LIMITED_BCAST) -> None:
        h = self.host
        name = MESSAGE_TYPE_NAMES[msg.msg_type or 0]
        self.history.append(name)
        self._count(f"dhcp.client.tx.{name.lower()}")
        h.trace(now, "dhcp", "tx", msg=name, xid=f"0x{msg.xid:08x}", iface=self.iface.name)
        dgram = build_udp(src, dst, CLIENT_PORT, SERVER_PORT, msg.build())
        try:
            h.ip_send(src, dst, PROTO_UDP, dgram, now,
                      ifindex=self.iface.index if dst == LIMITED_BCAST else None)
        except OSError as e:  # e.g. no route to the server any more: the timers retry
            self._count("dhcp.client.tx_error")
            h.trace(now, "dhcp", "drop", reason=str(e))

    def receive(self, msg: DhcpMessage, now: float) -> None:
        kind = msg.msg_type
        if msg.op != BOOTREPLY or msg.xid != self.xid:
            self._count("dhcp.client.rx.ignored")
            return
        name = MESSAGE_TYPE_NAMES.get(kind or 0, "?")
        self.history.append(name)
        self._count(f"dhcp.client.rx.{name.lower()}")
        self.host.trace(now, "dhcp", "rx", msg=name, xid=f"0x{msg.xid:08x}",
                        iface=self.iface.name)
        s = self.state
        if kind == OFFER and s == SELECTING:
            # an address we could use: not 0/8, loopback or multicast, and a server to ask
            if msg.yiaddr[0] in (0, 127) or msg.yiaddr[0] >= 224 \
                    or msg.ip(OPT_SERVER_ID) is None:
                self._count("dhcp.client.rx.bad_offer")
                return
            self._offer = msg  # the first offer wins (§4.4.1 lets the client choose)
            self.state = REQUESTING
            self._timeout = self.first_timeout
            self._send_request(now)
        elif kind == ACK and s in (REQUESTING, RENEWING, REBINDING):
            if _prefix_len(msg) is None:  # a mask that is no prefix: unusable, dropped
                self._count("drop.dhcp.subnet_mask")
                return
            if s == REQUESTING:
                self._offer = msg
                self._start_probe(msg, now)
            else:
                self._bind(msg, now)
        elif kind == NAK and s in (REQUESTING, RENEWING, REBINDING):
            # §3.1.4 / §4.4.5: the server refuses: stop using the address, start again
            self._unconfigure()
            self._discover(now)
        else:
            self._count("dhcp.client.rx.unexpected")
        self.host.request_wake()

    # -- conflict detection (RFC 2131 §2.2: "SHOULD probe"; RFC 5227 in stack/acd.py) ----------
    def _start_probe(self, ack: DhcpMessage, now: float) -> None:
        self.state = PROBING
        self._timer = None  # the conflict detection calls back

        def done(ok: bool, t: float) -> None:
            self._probe_done(ack, ok, t)
        plen = _prefix_len(ack)
        self.host.acd.claim(self.iface.index, f"{ip4_str(ack.yiaddr)}/{plen}", now, done)

    def _probe_done(self, ack: DhcpMessage, ok: bool, now: float) -> None:
        if not ok:
            self._count("dhcp.client.conflict")
            self.host.trace(now, "dhcp", "conflict", addr=ip4_str(ack.yiaddr))
            msg = self._message(DECLINE)
            msg.flags = 0
            msg.options[OPT_REQUESTED_IP] = ack.yiaddr
            msg.options[OPT_SERVER_ID] = ack.ip(OPT_SERVER_ID) or ZERO4
            self._send(msg, now)
            self.state = INIT
            self._timer = now + self.decline_wait
            self.host.request_wake()
            return
        self._bind(ack, now)

    # -- configuration -------------------------------------------------------------------------
    def _bind(self, ack: DhcpMessage, now: float) -> None:
        lease_time = float(ack.u32(OPT_LEASE) or 0xFFFFFFFF)
        t1 = ack.u32(OPT_T1)
        t2 = ack.u32(OPT_T2)
        plen = _prefix_len(ack)
        assert plen is not None  # receive() drops an ACK with a bad mask
        server = ack.ip(OPT_SERVER_ID) or (self.lease.server if self.lease else ZERO4)
        old = self.lease
        mtu = ack.u16(OPT_MTU)
        lease = Lease(ack.yiaddr, plen, server, now, lease_time,
                      float(t1) if t1 is not None else lease_time * 0.5,
                      float(t2) if t2 is not None else lease_time * 0.875,
                      ack.ips(OPT_ROUTER), ack.ips(OPT_DNS), ack.text(OPT_DOMAIN),
                      mtu if mtu is not None and mtu >= 68 else None)
        if old is not None and (old.address, old.plen, old.routers) != (
                lease.address, lease.plen, lease.routers):
            self._unconfigure()
            old = None
        self.lease = lease
        self.state = BOUND
        self._timer = now + lease.t1
        if old is None:
            self._configure(lease, now)
        self._count("dhcp.client.bound")

    def _configure(self, lease: Lease, now: float) -> None:
        h = self.host
        h.add_address(self.iface.index, f"{ip4_str(lease.address)}/{lease.plen}")
        if lease.routers:
            h.add_route("0.0.0.0/0", via=ip4_str(lease.routers[0]), ifindex=self.iface.index)
        self.iface.dhcp_mtu = lease.mtu
        h.resolv.learn(f"dhcp:{self.iface.name}", [ip4_str(a) for a in lease.dns],
                       [lease.domain] if lease.domain else [])
        h.trace(now, "dhcp", "bound", addr=f"{ip4_str(lease.address)}/{lease.plen}",
                iface=self.iface.name)

    def _unconfigure(self) -> None:
        lease = self.lease
        if lease is None:
            return
        h = self.host
        self.lease = None
        if lease.routers:
            h.routes.remove(ZERO4, 0)
        h.remove_address(self.iface.index, f"{ip4_str(lease.address)}/{lease.plen}")
        self.iface.dhcp_mtu = None
        h.resolv.forget(f"dhcp:{self.iface.name}")

    def _count(self, key: str) -> None:
        self.host.counters[key] += 1

    def summary(self, now: float) -> dict[str, Any]:
        out: dict[str, Any] = {"iface": self.iface.name, "state": self.state}
        if self.lease is not None:
            out.update(self.lease.summary(now))
        return out


class DhcpClients:
    """The DHCPv4 clients of one host (one per interface) and their shared port-68 socket."""

    def __init__(self, host: DhcpHost) -> None:
        self.host = host
        self.by_ifindex: dict[int, DhcpClient] = {}
        self._pcb: Any = None

    def client(self, ifindex: int) -> DhcpClient:
        """The client of interface ``ifindex`` (made and registered on first use)."""
        c = self.by_ifindex.get(ifindex)
        if c is None:
            h = self.host
            if self._pcb is None:
                self._pcb = h.udp.socket(4)
                self._pcb.bind(None, CLIENT_PORT)
                self._pcb.listener = self
            c = self.by_ifindex[ifindex] = DhcpClient(h, h.interfaces[ifindex], self)
            h.add_timer_source(c)
        return c

    def datagram_received(self, data: bytes, addr: tuple[bytes, int], now: float) -> None:
        try:
            msg = DhcpMessage.parse(data)
        except MalformedPacket as e:
            self.host.counters[f"drop.dhcp.{e.field}"] += 1
            self.host.trace(now, "dhcp", "drop", reason=e.message)
            return
        for c in self.by_ifindex.values():
            if c.iface.mac == msg.chaddr:
                c.receive(msg, now)
                return
        self.host.counters["dhcp.client.rx.not_ours"] += 1

    def error_received(self, exc: Exception, now: float) -> None:
        return None
