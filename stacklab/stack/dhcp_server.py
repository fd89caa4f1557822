"""A DHCPv4 server (RFC 2131 §4.3), sans-IO, serving one pool on one interface.

DISCOVER → OFFER (the client's current or last address if free, else the lowest free one;
none free: no answer, ``dhcp.server.pool_exhausted`` counted and traced); REQUEST → ACK or NAK
as §4.3.2 (SELECTING: the address we offered; INIT-REBOOT: the one we leased it; RENEWING /
REBINDING: its current lease); DECLINE → the address is taken out of the pool for one lease
time (§4.3.3); RELEASE → freed; INFORM → ACK with the options only. Replies are broadcast on the
serving interface (the client sets the BROADCAST flag or not: broadcasting reaches both kinds),
unicast to ``ciaddr`` for a renewal or an INFORM, and to the relay (``giaddr``, port 67) when a
relay agent forwarded the request. Offers are held ``offer_hold`` seconds.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from stacklab.wire.addr import ip4_str, mac_str
from stacklab.wire.dhcp import (
    ACK,
    BOOTREPLY,
    BOOTREQUEST,
    CLIENT_PORT,
    DECLINE,
    DISCOVER,
    INFORM,
    MESSAGE_TYPE_NAMES,
    NAK,
    OFFER,
    OPT_DNS,
    OPT_DOMAIN,
    OPT_LEASE,
    OPT_MESSAGE,
    OPT_MSG_TYPE,
    OPT_MTU,
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

from .dhcp import DhcpHost

__all__ = ["DhcpServer", "PoolConfig"]

LIMITED_BCAST = b"\xff\xff\xff\xff"
ZERO4 = bytes(4)


@dataclass(slots=True)
class PoolConfig:
    """What the server hands out (addresses as text, times in seconds)."""

    first: str
    last: str
    plen: int = 24
    router: str | None = None
    dns: tuple[str, ...] = ()
    domain: str | None = None
    mtu: int | None = None
    lease_time: float = 3600.0

    def validate(self) -> None:
        a, b = ipaddress.IPv4Address(self.first), ipaddress.IPv4Address(self.last)
        if a > b:
            raise ValueError(f"pool {self.first}-{self.last}: first above last")
        if ipaddress.IPv4Network(f"{a}/{self.plen}", strict=False) != ipaddress.IPv4Network(
                f"{b}/{self.plen}", strict=False):
            raise ValueError(f"pool {self.first}-{self.last} is not inside one /{self.plen}")
        if self.mtu is not None and not 68 <= self.mtu <= 65535:
            raise ValueError(f"mtu {self.mtu}: 68..65535")
        if self.lease_time < 10:
            raise ValueError(f"lease time {self.lease_time}: at least 10 s")


@dataclass(slots=True)
class _Binding:
    mac: bytes
    address: bytes
    expires: float
    state: str  # "offered" | "bound"


class DhcpServer:
    """Serves ``pool`` from interface ``ifindex`` of ``host`` (whose address there is the
    server identifier). ``close()`` stops it."""

    offer_hold = 30.0

    def __init__(self, host: DhcpHost, ifindex: int, pool: PoolConfig) -> None:
        pool.validate()
        self.host = host
        self.iface = host.interfaces[ifindex]
        self.pool = pool
        lo = int(ipaddress.IPv4Address(pool.first))
        self._addresses = [(lo + i).to_bytes(4, "big")
                           for i in range(int(ipaddress.IPv4Address(pool.last)) - lo + 1)]
        self.bindings: dict[bytes, _Binding] = {}  # by client MAC
        self.declined: dict[bytes, float] = {}  # address -> until when it is out of the pool
        self._pcb = host.udp.socket(4)
        self._pcb.bind(None, SERVER_PORT)
        self._pcb.listener = self

    def close(self) -> None:
        self._pcb.close()

    @property
    def server_id(self) -> bytes:
        net = ipaddress.IPv4Network(f"{self.pool.first}/{self.pool.plen}", strict=False)
        for addr, _plen in self.iface.v4:
            if ipaddress.IPv4Address(addr) in net:
                return addr
        return self.iface.v4[0][0] if self.iface.v4 else ZERO4

    # -- the pool ----------------------------------------------------------------------------------
    def _expire(self, now: float) -> None:
        for mac in [m for m, b in self.bindings.items() if b.expires <= now]:
            del self.bindings[mac]
        for addr in [a for a, t in self.declined.items() if t <= now]:
            del self.declined[addr]

    def _in_use(self, addr: bytes, mac: bytes) -> bool:
        return addr in self.declined or addr == self.server_id or any(
            b.address == addr and b.mac != mac for b in self.bindings.values())

    def _pick(self, mac: bytes, requested: bytes | None) -> bytes | None:
        b = self.bindings.get(mac)
        if b is not None:
            return b.address
        if requested in self._addresses and not self._in_use(requested, mac):
            return requested
        for addr in self._addresses:
            if not self._in_use(addr, mac):
                return addr
        return None

    # -- messages ----------------------------------------------------------------------------------
    def datagram_received(self, data: bytes, peer: tuple[bytes, int], now: float) -> None:
        h = self.host
        try:
            msg = DhcpMessage.parse(data)
        except MalformedPacket as e:
            h.counters[f"drop.dhcp.{e.field}"] += 1
            h.trace(now, "dhcp", "drop", reason=e.message)
            return
        if msg.op != BOOTREQUEST:
            h.counters["drop.dhcp.not_request"] += 1
            return
        kind = msg.msg_type
        name = MESSAGE_TYPE_NAMES.get(kind or 0, "?")
        h.counters[f"dhcp.server.rx.{name.lower()}"] += 1
        h.trace(now, "dhcp", "rx", msg=name, xid=f"0x{msg.xid:08x}", chaddr=mac_str(msg.chaddr))
        self._expire(now)
        mac = msg.chaddr
        sid = msg.ip(OPT_SERVER_ID)
        if kind == DISCOVER:
            offer = self._pick(mac, msg.ip(OPT_REQUESTED_IP))
            if offer is None:
                h.counters["dhcp.server.pool_exhausted"] += 1
                h.trace(now, "dhcp", "drop", reason="pool exhausted", chaddr=mac_str(mac))
                return
            if mac not in self.bindings or self.bindings[mac].state == "offered":
                self.bindings[mac] = _Binding(mac, offer, now + self.offer_hold, "offered")
            self._reply(msg, OFFER, offer, now)
        elif kind == REQUEST:
            self._request(msg, sid, now)
        elif kind == DECLINE:
            if sid != self.server_id:
                return
            addr = msg.ip(OPT_REQUESTED_IP)
            b = self.bindings.get(mac)
            if b is not None and b.address == addr:
                del self.bindings[mac]
            if addr is not None:
                self.declined[addr] = now + self.pool.lease_time
                h.trace(now, "dhcp", "declined", addr=ip4_str(addr))
        elif kind == RELEASE:
            b = self.bindings.get(mac)
            if sid == self.server_id and b is not None and b.address == msg.ciaddr:
                del self.bindings[mac]
        elif kind == INFORM:
            self._reply(msg, ACK, ZERO4, now, lease=False)

    def _request(self, msg: DhcpMessage, sid: bytes | None, now: float) -> None:
        mac = msg.chaddr
        b = self.bindings.get(mac)
        requested = msg.ip(OPT_REQUESTED_IP)
        if sid is not None:  # SELECTING (§4.3.2): the client chose a server
            if sid != self.server_id:
                if b is not None and b.state == "offered":
                    del self.bindings[mac]  # it took another server's offer
                return
            if b is not None and b.address == requested:
                self._ack(msg, b, now)
            else:
                self._reply(msg, NAK, ZERO4, now, text="requested address not offered")
            return
        wanted = requested if msg.ciaddr == ZERO4 else msg.ciaddr  # INIT-REBOOT / RENEWING
        if wanted is None:
            return
        if b is not None and b.address == wanted:
            self._ack(msg, b, now)
        elif wanted not in self._addresses or self._in_use(wanted, mac):
            self._reply(msg, NAK, ZERO4, now, text="address not available")
        # else: not ours to judge (another server's client, §4.3.2 INIT-REBOOT): silent

    def _ack(self, msg: DhcpMessage, b: _Binding, now: float) -> None:
        b.state = "bound"
        b.expires = now + self.pool.lease_time
        self._reply(msg, ACK, b.address, now)

    def _reply(self, req: DhcpMessage, kind: int, yiaddr: bytes, now: float, *,
               lease: bool = True, text: str | None = None) -> None:
        h = self.host
        p = self.pool
        sid = self.server_id
        opts: dict[int, bytes] = {OPT_MSG_TYPE: bytes((kind,)), OPT_SERVER_ID: sid}
        if kind != NAK:
            if lease:
                opts[OPT_LEASE] = int(p.lease_time).to_bytes(4, "big")
                opts[OPT_T1] = int(p.lease_time * 0.5).to_bytes(4, "big")
                opts[OPT_T2] = int(p.lease_time * 0.875).to_bytes(4, "big")
            opts[OPT_SUBNET] = (0xFFFFFFFF << (32 - p.plen) & 0xFFFFFFFF).to_bytes(4, "big")
            if p.router:
                opts[OPT_ROUTER] = ipaddress.IPv4Address(p.router).packed
            if p.dns:
                opts[OPT_DNS] = b"".join(ipaddress.IPv4Address(a).packed for a in p.dns)
            if p.domain:
                opts[OPT_DOMAIN] = p.domain.encode("ascii")
            if p.mtu:
                opts[OPT_MTU] = p.mtu.to_bytes(2, "big")
        elif text:
            opts[OPT_MESSAGE] = text.encode("ascii")
        rep = DhcpMessage(BOOTREPLY, req.xid, req.chaddr, opts, flags=req.flags,
                          ciaddr=req.ciaddr if kind == ACK else ZERO4, yiaddr=yiaddr,
                          giaddr=req.giaddr)
        name = MESSAGE_TYPE_NAMES[kind]
        h.counters[f"dhcp.server.tx.{name.lower()}"] += 1
        h.trace(now, "dhcp", "tx", msg=name, xid=f"0x{req.xid:08x}",
                yiaddr=ip4_str(yiaddr))
        if req.giaddr != ZERO4:  # through a relay agent (§4.1)
            dst, port, ifindex = req.giaddr, SERVER_PORT, None
        elif req.ciaddr != ZERO4 and kind != NAK:
            dst, port, ifindex = req.ciaddr, CLIENT_PORT, None
        else:
            dst, port, ifindex = LIMITED_BCAST, CLIENT_PORT, self.iface.index
        try:
            h.ip_send(sid, dst, PROTO_UDP, build_udp(sid, dst, SERVER_PORT, port, rep.build()),
                      now, ifindex=ifindex)
        except OSError as e:
            h.counters["dhcp.server.tx_error"] += 1
            h.trace(now, "dhcp", "drop", reason=str(e))

    def error_received(self, exc: Exception, now: float) -> None:
        return None

    def summary(self, now: float) -> dict[str, Any]:
        self._expire(now)
        return {"pool": f"{self.pool.first}-{self.pool.last}",
                "leases": {mac_str(b.mac): {"address": ip4_str(b.address),
                                            "state": b.state,
                                            "expires_in": round(b.expires - now, 3)}
                           for b in self.bindings.values()},
                "declined": sorted(ip4_str(a) for a in self.declined)}
