"""The DHCPv6 client (RFC 8415), one per interface, sans-IO: stateless and stateful.

Stateless (§6.1, ``start(now, stateful=False)``): INFORMATION-REQUEST, the REPLY's DNS servers
and search list (RFC 3646) go to the host's resolver configuration (source ``dhcp6:<iface>``).
Stateful (§6.2, ``stateful=True``): SOLICIT → ADVERTISE (the first one wins: no preference
wait, as §18.2.1 allows when the preference is not known better) → REQUEST → REPLY with an IA_NA
address, added as a /128 (§18.2.10.1: the prefix length comes from RAs, not DHCPv6), with the
DNS configuration; RENEW at T1 and REBIND at T2 (multicast, §18.2.4-5), the address removed at
its valid lifetime; a REPLY with NoAddrsAvail keeps soliciting. Messages leave from the link-local
address to All_DHCP_Relay_Agents_and_Servers (ff02::1:2, port 547); retransmissions as §15:
RT = 2·RT ± 10 %, from 1 s, capped at SOL_MAX_RT (3600 s) / INF_MAX_RT (3600 s) / 30 s for
REQUEST (REQ_MAX_RT), RENEW and REBIND (600 s).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    OPT_ELAPSED_TIME,
    OPT_IA_NA,
    OPT_ORO,
    OPT_SERVERID,
    REBIND,
    RENEW,
    REPLY,
    REQUEST,
    SERVER_PORT,
    SOLICIT,
    Dhcp6Message,
    IaNa,
    duid_ll,
)
from stacklab.wire.errors import MalformedPacket
from stacklab.wire.proto import PROTO_UDP
from stacklab.wire.udp import build_udp

from .dhcp import DhcpHost

if TYPE_CHECKING:
    from .interface import Interface

__all__ = ["Dhcp6Client", "Dhcp6Clients"]

ORO = (OPT_DNS_SERVERS.to_bytes(2, "big") + OPT_DOMAIN_LIST.to_bytes(2, "big"))
MAX_RT = {SOLICIT: 3600.0, REQUEST: 30.0, INFORMATION_REQUEST: 3600.0, RENEW: 600.0,
          REBIND: 600.0}


class Dhcp6Client:
    def __init__(self, host: DhcpHost, iface: Interface) -> None:
        self.host = host
        self.iface = iface
        self.duid = duid_ll(iface.mac)
        self.iaid = iface.index + 1
        self.state = "INIT"  # INIT | SOLICIT | REQUEST | INFORMATION-REQUEST | BOUND | RENEW
        # | REBIND | INFORMED
        self.stateful = True
        self.history: list[str] = []
        self.xid = 0
        self.server_duid: bytes | None = None
        self.address: bytes | None = None
        self.lease: dict[str, Any] = {}
        self._ia: IaNa | None = None
        self._timer: float | None = None
        self._rt = 1.0
        self._started = 0.0
        self._bound_at = 0.0

    # -- user call -----------------------------------------------------------------------------
    def start(self, now: float, *, stateful: bool = True) -> None:
        self.stateful = stateful
        self._begin(SOLICIT if stateful else INFORMATION_REQUEST, now)
        self.host.request_wake()

    def _begin(self, kind: int, now: float) -> None:
        self.state = MESSAGE_TYPE_NAMES[kind]
        self.xid = self.host.rng.getrandbits(24)
        self._rt = 1.0 * (1 + self.host.rng.uniform(-0.1, 0.1))  # §15: IRT ± RAND
        self._started = now
        self._transmit(now)

    # -- timers ----------------------------------------------------------------------------------
    def get_timer(self) -> float | None:
        return self._timer

    def handle_timer(self, now: float) -> None:
        s = self.state
        if s in ("SOLICIT", "REQUEST", "INFORMATION-REQUEST", "RENEW", "REBIND"):
            valid_end = self._bound_at + self.lease.get("valid", 0)
            if s in ("RENEW", "REBIND") and now >= valid_end:
                self._expire(now)
                return
            if s == "RENEW" and now >= self._bound_at + self.lease.get("t2", 0):
                self._begin(REBIND, now)
                return
            self._transmit(now)
        elif s == "BOUND":
            self._begin(RENEW, now)

    def _transmit(self, now: float) -> None:
        kind = next(k for k, v in MESSAGE_TYPE_NAMES.items() if v == self.state)
        opts: list[tuple[int, bytes]] = [(OPT_CLIENTID, self.duid), (OPT_ORO, ORO),
                                         (OPT_ELAPSED_TIME, min(0xFFFF, int(
                                             (now - self._started) * 100)).to_bytes(2, "big"))]
        if kind in (REQUEST, RENEW) and self.server_duid is not None:
            opts.append((OPT_SERVERID, self.server_duid))
        if kind != INFORMATION_REQUEST:
            ia = IaNa(self.iaid, 0, 0, list(self._ia.addrs) if self._ia and kind != SOLICIT
                      else [])
            opts.append((OPT_IA_NA, ia.encode()))
        self._send(Dhcp6Message(kind, self.xid, opts), now)
        # §15: RT = 2·RTprev + RAND·RTprev, capped at MRT (± 10 % there too)
        self._timer = now + self._rt
        if kind in (RENEW, REBIND):  # §18.2.4-5: RENEW ends at T2, REBIND at the valid lifetime
            end = self.lease.get("t2" if kind == RENEW else "valid", 0)
            self._timer = min(self._timer, self._bound_at + end)
        mrt = MAX_RT[kind]
        self._rt = min(2 * self._rt, mrt) * (1 + self.host.rng.uniform(-0.1, 0.1))

    def _send(self, msg: Dhcp6Message, now: float) -> None:
        h = self.host
        src = self.iface.link_local
        name = MESSAGE_TYPE_NAMES[msg.msg_type]
        if src is None:  # §13.1: a client needs its link-local address
            h.counters["dhcp6.client.no_link_local"] += 1
            return
        self.history.append(name)
        h.counters[f"dhcp6.client.tx.{name.lower()}"] += 1
        h.trace(now, "dhcp6", "tx", msg=name, xid=f"0x{msg.xid:06x}", iface=self.iface.name)
        dgram = build_udp(src, ALL_DHCP_SERVERS, CLIENT_PORT, SERVER_PORT, msg.build())
        try:
            h.ip_send(src, ALL_DHCP_SERVERS, PROTO_UDP, dgram, now, ifindex=self.iface.index)
        except OSError as e:
            h.counters["dhcp6.client.tx_error"] += 1
            h.trace(now, "dhcp6", "drop", reason=str(e))

    # -- replies -----------------------------------------------------------------------------------
    def receive(self, msg: Dhcp6Message, now: float) -> None:
        h = self.host
        if msg.xid != self.xid or msg.get(OPT_CLIENTID) != self.duid:
            h.counters["dhcp6.client.rx.ignored"] += 1  # §16.10 / §16.11: not our transaction
            return
        name = MESSAGE_TYPE_NAMES[msg.msg_type]
        self.history.append(name)
        h.counters[f"dhcp6.client.rx.{name.lower()}"] += 1
        server = msg.get(OPT_SERVERID)
        if server is None:
            h.counters["drop.dhcp6.no_server_id"] += 1
            return
        s = self.state
        if s == "SOLICIT" and msg.msg_type == ADVERTISE:
            ias = [ia for ia in msg.ia_na() if ia.iaid == self.iaid and ia.addrs]
            if not ias:  # §18.2.9: an ADVERTISE without addresses (NoAddrsAvail): keep on
                h.counters["dhcp6.client.no_addrs"] += 1
                return
            self.server_duid = server
            self._ia = ias[0]
            self._begin(REQUEST, now)
        elif msg.msg_type == REPLY and s == "INFORMATION-REQUEST":
            self._dns(msg)
            self.state = "INFORMED"
            self._timer = None  # (§18.2.6's refresh time, 86400 s by default, is not kept)
        elif msg.msg_type == REPLY and s in ("REQUEST", "RENEW", "REBIND"):
            ias = [ia for ia in msg.ia_na() if ia.iaid == self.iaid and ia.addrs]
            if not ias:
                self._expire(now)
                return
            self.server_duid = server
            self._bind(ias[0], msg, now)
        else:
            h.counters["dhcp6.client.rx.unexpected"] += 1
        h.request_wake()

    def _dns(self, msg: Dhcp6Message) -> None:
        self.lease["dns"] = [ip6_str(a) for a in msg.dns_servers()]
        self.lease["domains"] = msg.domains()
        self.host.resolv.learn(f"dhcp6:{self.iface.name}", self.lease["dns"],
                               self.lease["domains"])

    def _bind(self, ia: IaNa, msg: Dhcp6Message, now: float) -> None:
        h = self.host
        a = ia.addrs[0]
        if self.address is not None and self.address != a.addr:
            self._unconfigure()
        if self.address is None:
            h.add_address(self.iface.index, f"{ip6_str(a.addr)}/128")
            self.address = a.addr
            h.trace(now, "dhcp6", "bound", addr=ip6_str(a.addr), iface=self.iface.name)
        self._ia = ia
        # §21.4: T1/T2 of 0 leave the times to the client: 0.5 and 0.8 of the preferred lifetime
        t1 = ia.t1 or a.preferred * 0.5
        t2 = ia.t2 or a.preferred * 0.8
        self.lease.update(address=ip6_str(a.addr), valid=a.valid, preferred=a.preferred,
                          t1=t1, t2=t2)
        self._dns(msg)
        self._bound_at = now
        self.state = "BOUND"
        self._timer = now + t1
        h.counters["dhcp6.client.bound"] += 1

    def _expire(self, now: float) -> None:
        self.host.counters["dhcp6.client.expired"] += 1
        self._unconfigure()
        self._begin(SOLICIT, now)

    def _unconfigure(self) -> None:
        if self.address is not None:
            self.host.address_expired(self.iface, self.address)
            self.address = None
        self.host.resolv.forget(f"dhcp6:{self.iface.name}")
        self.lease = {}

    def summary(self) -> dict[str, Any]:
        return {"iface": self.iface.name, "state": self.state, **self.lease}


class Dhcp6Clients:
    """The DHCPv6 clients of a host and their shared port-546 socket."""

    def __init__(self, host: DhcpHost) -> None:
        self.host = host
        self.by_ifindex: dict[int, Dhcp6Client] = {}
        self._pcb: Any = None

    def client(self, ifindex: int) -> Dhcp6Client:
        c = self.by_ifindex.get(ifindex)
        if c is None:
            h = self.host
            if self._pcb is None:
                self._pcb = h.udp.socket(6)
                self._pcb.bind(None, CLIENT_PORT)
                self._pcb.listener = self
            c = self.by_ifindex[ifindex] = Dhcp6Client(h, h.interfaces[ifindex])
            h.add_timer_source(c)
        return c

    def datagram_received(self, data: bytes, addr: tuple[bytes, int], now: float) -> None:
        try:
            msg = Dhcp6Message.parse(data)
        except MalformedPacket as e:
            self.host.counters[f"drop.dhcp6.{e.field}"] += 1
            self.host.trace(now, "dhcp6", "drop", reason=e.message)
            return
        duid = msg.get(OPT_CLIENTID)
        for c in self.by_ifindex.values():
            if c.duid == duid:
                c.receive(msg, now)
                return
        self.host.counters["dhcp6.client.rx.not_ours"] += 1

    def error_received(self, exc: Exception, now: float) -> None:
        return None
