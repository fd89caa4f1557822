"""Hostile input for the LAN services: seeded mutations of valid DHCPv4, DHCPv6 and DNS
messages, fed to the parsers and to the engines that receive them. A parser may only raise
MalformedPacket; an engine never raises (bad input is a counted drop or an error answer)."""

from __future__ import annotations

import asyncio
import random

import dns.message
import dns.rdatatype

from stacklab.apps.dns import Authority, DnsServer, make_zone
from stacklab.stack.dhcp6_server import Dhcp6Pool, Dhcp6Server
from stacklab.stack.dhcp_server import DhcpServer, PoolConfig
from stacklab.stack.host import Host
from stacklab.wire.dhcp import ACK, DISCOVER, OFFER, DhcpMessage
from stacklab.wire.dhcp6 import ADVERTISE, REPLY, Dhcp6Message, IaAddr, IaNa, duid_ll
from stacklab.wire.dns import parse_message
from stacklab.wire.errors import MalformedPacket

ROUNDS = 1500


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        if op == 0 and b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b[rng.randrange(len(b))] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, 3, 53, 255))
        elif op == 2:
            del b[rng.randrange(len(b) + 1):]
        else:
            i = rng.randrange(len(b) + 1)
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return bytes(b)


def _host(name: str, v4: str, v6: str) -> Host:
    h = Host(name)
    h.add_interface("eth0", bytes.fromhex("020000000001" if name == "srv" else "020000000002"))
    h.add_address(0, v4)
    h.add_address(0, v6)
    h.ndp.handle_timer(10.0)
    return h


def test_dhcp_messages_and_engines_survive_mutations():
    rng = random.Random(21)
    srv = _host("srv", "10.0.0.1/24", "fd00:1::1/64")
    cli = Host("cli")
    cli.add_interface("eth0", bytes.fromhex("020000000002"))
    server = DhcpServer(srv, 0, PoolConfig("10.0.0.100", "10.0.0.110", router="10.0.0.1",
                                           dns=("10.0.0.1",), domain="lab.example", mtu=1400))
    client = cli.dhcp4.client(0)
    client.start(0.0)
    mac = cli.interfaces[0].mac
    seeds = [DhcpMessage(1, 7, mac, {53: bytes((DISCOVER,)), 50: bytes([10, 0, 0, 105])}).build()]
    for kind in (OFFER, ACK):
        seeds.append(DhcpMessage(2, client.xid, mac, {
            53: bytes((kind,)), 54: bytes([10, 0, 0, 1]), 1: bytes([255, 255, 255, 0]),
            3: bytes([10, 0, 0, 1]), 6: bytes([10, 0, 0, 1]), 15: b"lab.example",
            26: (1400).to_bytes(2, "big"), 51: (600).to_bytes(4, "big")},
            yiaddr=bytes([10, 0, 0, 100])).build())
    for i in range(ROUNDS):
        data = mutate(rng, rng.choice(seeds))
        try:
            DhcpMessage.parse(data)
        except MalformedPacket:
            pass
        server.datagram_received(data, (bytes(4), 68), float(i))
        cli.dhcp4.datagram_received(data, (bytes([10, 0, 0, 1]), 67), float(i))
        cli.handle_timer(float(i))
        srv.frames_to_send()
        cli.frames_to_send()
    assert sum(v for k, v in srv.counters.items() if k.startswith("drop.dhcp.")) > 100


def test_dhcp6_messages_and_engines_survive_mutations():
    rng = random.Random(22)
    srv = _host("srv", "10.0.0.1/24", "fd00:1::1/64")
    cli = _host("cli", "10.0.0.2/24", "fd00:1::2/64")
    server = Dhcp6Server(srv, 0, Dhcp6Pool("fd00:1::1000", "fd00:1::1010", ("fd00:1::53",),
                                           ("lab.example",)))
    client = cli.dhcp6.client(0)
    client.start(0.0)
    duid = duid_ll(cli.interfaces[0].mac)
    ia = IaNa(1, 300, 480, [IaAddr(bytes.fromhex("fd000001" + "0" * 20 + "1000"), 600, 1200)])
    seeds = [Dhcp6Message(kind, client.xid, [(1, duid), (2, duid_ll(srv.interfaces[0].mac)),
                                             (3, ia.encode()), (23, bytes(16)),
                                             (24, b"\x03lab\x07example\x00")]).build()
             for kind in (1, ADVERTISE, 3, REPLY, 11)]
    for i in range(ROUNDS):
        data = mutate(rng, rng.choice(seeds))
        try:
            Dhcp6Message.parse(data)
        except MalformedPacket:
            pass
        server.datagram_received(data, (bytes.fromhex("fe80" + "0" * 27 + "2"), 546), float(i))
        cli.dhcp6.datagram_received(data, (bytes(16), 547), float(i))
        cli.handle_timer(float(i))
        srv.frames_to_send()
        cli.frames_to_send()
    assert sum(v for k, v in srv.counters.items() if k.startswith("drop.dhcp6.")) > 100


def test_dns_parser_and_servers_survive_mutations():
    rng = random.Random(23)
    server = DnsServer(Authority({"lab.example": make_zone(
        "lab.example", {"www": ["10.0.0.80", "fd00::80"], "web": "CNAME www",
                        "sub": "NS ns.sub", "ns.sub": "10.0.0.53"})}), 53)
    seeds = []
    for name, t in (("www.lab.example.", "A"), ("web.lab.example.", "AAAA"),
                    ("x.sub.lab.example.", "A"), ("nosuch.test.", "MX")):
        q = dns.message.make_query(name, t, use_edns=True)
        seeds.append(q.to_wire())
        seeds.append(dns.message.make_response(q).to_wire())
    loop = asyncio.new_event_loop()
    try:
        for _ in range(ROUNDS):
            data = mutate(rng, rng.choice(seeds))
            try:
                parse_message(data)
            except MalformedPacket:
                pass
            q = server.parse(data)
            if q is not None:
                r = loop.run_until_complete(server.answer(q))
                if r is not None:
                    r.to_wire()
    finally:
        loop.close()
    assert server.errors["malformed"] > 100 and server.errors["internal"] == 0
