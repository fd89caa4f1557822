"""A DHCPv6 server (RFC 8415 §18.3), sans-IO, on one interface: stateless answers (DNS servers
and search list, RFC 3646) to INFORMATION-REQUEST, and addresses from a pool in IA_NA options:
SOLICIT → ADVERTISE, REQUEST / RENEW / REBIND → REPLY (the client's binding, by DUID and IAID),
RELEASE → REPLY and the address freed. An empty pool answers NoAddrsAvail (§21.13) and counts
``dhcp6.server.pool_exhausted``. It listens on port 547 and joins ff02::1:2 on its interface.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from stacklab.wire.addr import ip6_str
from stacklab.wire.dhcp6 import (
    ADVERTISE,
    ALL_DHCP_SERVERS,
    CLIENT_PORT,
    INFORMATION_REQUEST,
    MESSAGE_TYPE_NAMES,
    OPT_CLIENTID,
    OPT_DNS_SERVERS,
    OPT_DOMAIN_LIST,
    OPT_IA_NA,
    OPT_SERVERID,
    OPT_STATUS_CODE,
    REBIND,
    RELEASE,
    RENEW,
    REPLY,
    REQUEST,
    SERVER_PORT,
    SOLICIT,
    STATUS_NO_ADDRS_AVAIL,
    Dhcp6Message,
    IaAddr,
    IaNa,
    duid_ll,
    encode_domains,
)
from stacklab.wire.errors import MalformedPacket
from stacklab.wire.proto import PROTO_UDP
from stacklab.wire.udp import build_udp

from .dhcp import DhcpHost

__all__ = ["Dhcp6Pool", "Dhcp6Server"]


@dataclass(slots=True)
class Dhcp6Pool:
    first: str | None = None  # None: stateless only
    last: str | None = None
    dns: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    preferred: int = 1800
    valid: int = 3600

    def addresses(self) -> list[bytes]:
        """The pool's addresses; ValueError for a bad range (none: stateless only)."""
        if self.first is None or self.last is None:
            return []
        lo = int(ipaddress.IPv6Address(self.first))
        hi = int(ipaddress.IPv6Address(self.last))
        if not 0 <= hi - lo < 65536:
            raise ValueError(f"pool {self.first}-{self.last}: first above last or over 65536 "
                             "addresses")
        return [(lo + i).to_bytes(16, "big") for i in range(hi - lo + 1)]


class Dhcp6Server:
    def __init__(self, host: DhcpHost, ifindex: int, pool: Dhcp6Pool) -> None:
        self.host = host
        self.iface = host.interfaces[ifindex]
        self.pool = pool
        self.duid = duid_ll(self.iface.mac)
        self._addresses = pool.addresses()
        self.bindings: dict[tuple[bytes, int], tuple[bytes, float]] = {}  # (duid, iaid)
        self.iface.groups6.add(ALL_DHCP_SERVERS)
        self._pcb = host.udp.socket(6)
        self._pcb.bind(None, SERVER_PORT)
        self._pcb.listener = self

    def close(self) -> None:
        self._pcb.close()
        self.iface.groups6.discard(ALL_DHCP_SERVERS)

    def _pick(self, key: tuple[bytes, int], now: float) -> bytes | None:
        for k, (_a, exp) in list(self.bindings.items()):
            if exp <= now:
                del self.bindings[k]
        b = self.bindings.get(key)
        if b is not None:
            return b[0]
        used = {a for a, _ in self.bindings.values()}
        return next((a for a in self._addresses if a not in used), None)

    def datagram_received(self, data: bytes, peer: tuple[bytes, int], now: float) -> None:
        h = self.host
        try:
            msg = Dhcp6Message.parse(data)
        except MalformedPacket as e:
            h.counters[f"drop.dhcp6.{e.field}"] += 1
            return
        kind = msg.msg_type
        name = MESSAGE_TYPE_NAMES[kind]
        h.counters[f"dhcp6.server.rx.{name.lower()}"] += 1
        duid = msg.get(OPT_CLIENTID)
        sid = msg.get(OPT_SERVERID)
        if duid is None or (sid is not None and sid != self.duid):
            return  # §16: no client id, or meant for another server
        opts: list[tuple[int, bytes]] = [(OPT_CLIENTID, duid), (OPT_SERVERID, self.duid)]
        if self.pool.dns:
            opts.append((OPT_DNS_SERVERS, b"".join(ipaddress.IPv6Address(a).packed
                                                   for a in self.pool.dns)))
        if self.pool.domains:
            opts.append((OPT_DOMAIN_LIST, encode_domains(list(self.pool.domains))))
        if kind == INFORMATION_REQUEST:
            self._reply(peer, REPLY, msg.xid, opts, now)
            return
        if kind not in (SOLICIT, REQUEST, RENEW, REBIND, RELEASE):
            return
        for ia in msg.ia_na():
            key = (duid, ia.iaid)
            if kind == RELEASE:
                self.bindings.pop(key, None)
                continue
            addr = self._pick(key, now)
            if addr is None:
                h.counters["dhcp6.server.pool_exhausted"] += 1
                opts.append((OPT_IA_NA, IaNa(ia.iaid, 0, 0, [],
                                             STATUS_NO_ADDRS_AVAIL).encode()))
                continue
            p = self.pool
            hold = now + (60.0 if kind == SOLICIT else p.valid)
            self.bindings[key] = (addr, max(hold, self.bindings.get(key, (addr, 0.0))[1]))
            opts.append((OPT_IA_NA, IaNa(ia.iaid, p.preferred // 2, p.preferred * 4 // 5,
                                         [IaAddr(addr, p.preferred, p.valid)]).encode()))
        if kind == RELEASE:
            opts.append((OPT_STATUS_CODE, b"\x00\x00" + b"released"))
        self._reply(peer, ADVERTISE if kind == SOLICIT else REPLY, msg.xid, opts, now)

    def _reply(self, peer: tuple[bytes, int], kind: int, xid: int,
               opts: list[tuple[int, bytes]], now: float) -> None:
        h = self.host
        src = self.iface.link_local
        if src is None:
            return
        dst, port = peer
        name = MESSAGE_TYPE_NAMES[kind]
        h.counters[f"dhcp6.server.tx.{name.lower()}"] += 1
        h.trace(now, "dhcp6", "tx", msg=name, to=ip6_str(dst))
        dgram = build_udp(src, dst, SERVER_PORT, port or CLIENT_PORT,
                          Dhcp6Message(kind, xid, opts).build())
        try:
            h.ip_send(src, dst, PROTO_UDP, dgram, now, ifindex=self.iface.index)
        except OSError:
            h.counters["dhcp6.server.tx_error"] += 1

    def error_received(self, exc: Exception, now: float) -> None:
        return None

    def summary(self, now: float) -> dict[str, Any]:
        return {"leases": {duid.hex(): {"address": ip6_str(a), "expires_in": round(e - now, 3)}
                           for (duid, _iaid), (a, e) in self.bindings.items()}}
