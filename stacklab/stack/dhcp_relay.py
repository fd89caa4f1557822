"""A DHCPv4 relay agent (RFC 1542 §4, RFC 2131 §4.1) on a router, sans-IO.

Requests broadcast on the client interface go to the ``servers`` (unicast, port 67) with
``giaddr`` set to the router's address on that interface and ``hops`` counted (over 16: dropped,
RFC 1542 §4.1.1); a server's reply to ``giaddr`` is broadcast back on the client interface to
port 68. (Option 82, RFC 3046, is not added.)
"""

from __future__ import annotations

import ipaddress

from stacklab.wire.dhcp import BOOTREPLY, BOOTREQUEST, CLIENT_PORT, SERVER_PORT, DhcpMessage
from stacklab.wire.errors import MalformedPacket
from stacklab.wire.proto import PROTO_UDP
from stacklab.wire.udp import build_udp

from .dhcp import DhcpHost

__all__ = ["DhcpRelay"]

LIMITED_BCAST = b"\xff\xff\xff\xff"
MAX_HOPS = 16


class DhcpRelay:
    def __init__(self, host: DhcpHost, ifindex: int, servers: list[str]) -> None:
        self.host = host
        self.iface = host.interfaces[ifindex]
        if not self.iface.v4:
            raise ValueError(f"{self.iface.name} has no IPv4 address to relay for")
        self.servers = [ipaddress.IPv4Address(s).packed for s in servers]
        if not self.servers:
            raise ValueError("a relay needs at least one server")
        self._pcb = host.udp.socket(4)
        self._pcb.bind(None, SERVER_PORT)
        self._pcb.listener = self

    def close(self) -> None:
        self._pcb.close()

    def datagram_received(self, data: bytes, peer: tuple[bytes, int], now: float) -> None:
        h = self.host
        try:
            msg = DhcpMessage.parse(data)
        except MalformedPacket as e:
            h.counters[f"drop.dhcp.{e.field}"] += 1
            return
        giaddr = self.iface.v4[0][0]
        if msg.op == BOOTREQUEST:
            if msg.hops >= MAX_HOPS:
                h.counters["drop.dhcp.hops"] += 1
                return
            msg.hops += 1
            if msg.giaddr == bytes(4):
                msg.giaddr = giaddr
            wire = msg.build()
            for server in self.servers:
                h.counters["dhcp.relay.to_server"] += 1
                self._send(giaddr, server, SERVER_PORT, wire, now, None)
        elif msg.op == BOOTREPLY and msg.giaddr == giaddr:
            h.counters["dhcp.relay.to_client"] += 1
            self._send(giaddr, LIMITED_BCAST, CLIENT_PORT, msg.build(), now, self.iface.index)

    def _send(self, src: bytes, dst: bytes, port: int, wire: bytes, now: float,
              ifindex: int | None) -> None:
        try:
            self.host.ip_send(src, dst, PROTO_UDP, build_udp(src, dst, SERVER_PORT, port, wire),
                              now, ifindex=ifindex)
        except OSError:
            self.host.counters["dhcp.relay.tx_error"] += 1

    def error_received(self, exc: Exception, now: float) -> None:
        return None
