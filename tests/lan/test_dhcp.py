"""DHCPv4 on the simulator: a client gets, renews, rebinds, loses and releases a lease; the server
hands out its pool, NAKs, honours DECLINE after the client's ARP probes (RFC 5227) find a
conflict; bad messages are counted drops."""

from __future__ import annotations

import stacklab
from stacklab.stack.dhcp_server import DhcpServer, PoolConfig
from stacklab.wire.dhcp import DISCOVER, REQUEST, DhcpMessage


def _lan(n_clients: int = 1, **pool_kw):
    net = stacklab.Network(seed=3)
    sw = net.add_switch("sw")
    srv = net.add_host("srv")
    net.connect(srv, sw)
    srv.add_address(0, "10.0.0.1/24")
    clients = []
    for i in range(n_clients):
        c = net.add_host(f"c{i}")
        net.connect(c, sw)
        clients.append(c)
    kw = {"first": "10.0.0.100", "last": "10.0.0.199", "router": "10.0.0.1",
          "dns": ("10.0.0.1",), "domain": "lab.example", "mtu": 1400, "lease_time": 600.0}
    kw.update(pool_kw)
    server = DhcpServer(srv, 0, PoolConfig(**kw))
    return net, srv, server, clients


def test_a_client_gets_a_lease_with_router_dns_domain_and_mtu():
    net, srv, server, (c,) = _lan()
    client = c.dhcp4.client(0)
    client.start(net.now)
    net.run(until=10)  # RFC 5227: up to 1 s wait, 3 probes 1-2 s apart, 2 s ANNOUNCE_WAIT
    assert client.state == "BOUND"
    assert client.history == ["DISCOVER", "OFFER", "REQUEST", "ACK"]
    assert c.addresses(4) == ["10.0.0.100"]
    assert c.route_get("192.0.2.1", net.now).startswith("192.0.2.1 via 10.0.0.1 dev eth0")
    assert c.interfaces[0].mtu == 1400
    assert c.resolv.nameservers == ["10.0.0.1"] and c.resolv.search == ["lab.example"]
    assert c.counters["arp.tx.probe"] == 3  # RFC 5227 PROBE_NUM, then the announcements
    assert c.counters["arp.tx.gratuitous"] == 2
    lease = client.summary(net.now)
    assert lease["address"] == "10.0.0.100/24" and lease["lease_time"] == 600.0

    async def ping():
        return (await c.ping("10.0.0.1", count=1)).received

    assert net.run(ping(), until=15) == 1
    assert server.summary(net.now)["leases"][
        ":".join(f"{b:02x}" for b in c.interfaces[0].mac)]["state"] == "bound"
    net.close()


def test_renewal_at_t1_unicast_then_rebinding_at_t2_then_expiry():
    net, srv, server, (c,) = _lan()
    client = c.dhcp4.client(0)
    client.start(net.now)
    net.run(until=310)  # past T1 = 300 s: renewed by unicast
    assert client.state == "BOUND" and client.history[-2:] == ["REQUEST", "ACK"]
    assert c.counters["dhcp.client.tx.request"] == 2
    server.close()  # the server goes away: RENEWING, REBINDING, then the lease ends
    net.run(until=310 + 600)
    assert client.state in ("SELECTING", "INIT")
    assert c.counters["dhcp.client.expired"] == 1
    assert c.addresses(4) == [] and c.resolv.nameservers == []
    net.close()


def test_release_frees_the_address_for_another_client():
    net, srv, server, (a, b) = _lan(2, last="10.0.0.100")  # a pool of one
    ca = a.dhcp4.client(0)
    ca.start(net.now)
    net.run(until=10)
    assert a.addresses(4) == ["10.0.0.100"]
    cb = b.dhcp4.client(0)
    cb.start(net.now)
    net.run(until=15)
    assert cb.state == "SELECTING" and srv.counters["dhcp.server.pool_exhausted"] >= 1
    ca.release(net.now)
    net.run(until=50)  # b's next DISCOVER (after 8 s ± 1, then 16 s) gets it
    assert a.addresses(4) == [] and b.addresses(4) == ["10.0.0.100"]
    net.close()


def test_arp_probe_conflict_sends_decline_and_the_next_address_is_used():
    net, srv, server, (c, squatter) = _lan(2)
    squatter.add_address(0, "10.0.0.100/24")  # uses the pool's first address statically
    client = c.dhcp4.client(0)
    client.start(net.now)
    net.run(until=30)
    assert "DECLINE" in client.history
    assert c.counters["dhcp.client.conflict"] == 1
    assert c.addresses(4) == ["10.0.0.101"]
    assert server.summary(net.now)["declined"] == ["10.0.0.100"]
    net.close()


def test_requests_for_addresses_not_offered_are_nakked_and_the_client_starts_over():
    """RFC 2131 §4.3.2: SELECTING with an address the server did not offer, and INIT-REBOOT
    with an address outside the pool, get a NAK; a NAK sends the client back to DISCOVER."""
    net, srv, server, (c,) = _lan()
    mac = c.interfaces[0].mac
    sid = bytes([10, 0, 0, 1])
    selecting = DhcpMessage(1, 9, mac, {53: bytes((REQUEST,)), 50: bytes([10, 0, 0, 150]),
                                        54: sid})
    reboot = DhcpMessage(1, 10, mac, {53: bytes((REQUEST,)), 50: bytes([192, 0, 2, 7])})
    server.datagram_received(selecting.build(), (bytes(4), 68), net.now)
    server.datagram_received(reboot.build(), (bytes(4), 68), net.now)
    assert srv.counters["dhcp.server.tx.nak"] == 2
    client = c.dhcp4.client(0)
    client.start(net.now)
    net.run(until=5)
    # the server forgets the lease and the address is taken out of its pool: the renewal at
    # T1 (300 s) is refused
    server.bindings.clear()
    server.declined[bytes([10, 0, 0, 100])] = net.now + 6000
    net.run(until=320)
    assert client.history[4:] == ["REQUEST", "NAK", "DISCOVER", "OFFER", "REQUEST", "ACK"]
    assert c.addresses(4) == ["10.0.0.101"]
    net.close()


def test_malformed_dhcp_messages_are_counted_drops():
    net, srv, server, (c,) = _lan()
    good = DhcpMessage(1, 7, c.interfaces[0].mac, {53: bytes((DISCOVER,))}).build()
    cases = [b"", good[:100], good[:236] + b"XXXX" + good[240:],
             good[:240] + b"\x35\x05\x01", good[:240] + b"\x01\x04\x00",
             bytes([9]) + good[1:]]
    for data in cases:
        server.datagram_received(data, (bytes(4), 68), net.now)
    for field in ("length", "cookie", "option", "op"):
        assert srv.counters[f"drop.dhcp.{field}"] >= 1
    assert not srv.counters["dhcp.server.tx.offer"]
    net.close()


def test_a_bad_netmask_in_an_ack_is_refused_not_a_crash():
    """An ACK whose subnet mask is not a prefix (255.0.255.0): dropped and counted
    (drop.dhcp.subnet_mask), never a crash (it was one: NetmaskValueError at the bind)."""
    net, srv, server, (c,) = _lan()
    server.close()  # the messages come from the test
    client = c.dhcp4.client(0)
    client.start(net.now)
    mac = c.interfaces[0].mac
    opts = {54: bytes([10, 0, 0, 1]), 1: bytes([255, 0, 255, 0]), 51: (600).to_bytes(4, "big")}
    for kind in (2, 5):  # OFFER, ACK
        msg = DhcpMessage(2, client.xid, mac, {53: bytes((kind,)), **opts},
                          yiaddr=bytes([10, 0, 0, 100]))
        c.dhcp4.datagram_received(msg.build(), (bytes([10, 0, 0, 1]), 67), net.now)
    net.run(until=3)
    assert c.counters["drop.dhcp.subnet_mask"] == 1
    assert c.addresses(4) == [] and client.state == "REQUESTING"
    net.close()


def test_a_relay_on_the_router_brings_a_lease_from_a_server_two_links_away():
    """RFC 1542 / RFC 2131 §4.1: the router relays (giaddr = its LAN address), the server
    answers the relay, the relay broadcasts the answer on the LAN."""
    from stacklab.stack.dhcp_relay import DhcpRelay

    net = stacklab.Network(seed=4)
    c, r, srv = net.add_host("c"), net.add_router("r"), net.add_host("srv")
    net.connect(c, r)
    net.connect(r, srv)
    r.add_address(0, "10.0.1.1/24")
    r.add_address(1, "10.0.2.1/24")
    srv.add_address(0, "10.0.2.2/24")
    srv.add_route("10.0.1.0/24", via="10.0.2.1")
    server = DhcpServer(srv, 0, PoolConfig("10.0.1.100", "10.0.1.110", router="10.0.1.1"))
    DhcpRelay(r, 0, ["10.0.2.2"])
    client = c.dhcp4.client(0)
    client.start(net.now)
    net.run(until=5)
    assert client.state == "BOUND" and c.addresses(4) == ["10.0.1.100"]
    assert r.counters["dhcp.relay.to_server"] == 2 and r.counters["dhcp.relay.to_client"] == 2
    assert client.lease is not None and client.lease.server == bytes([10, 0, 2, 2])

    async def ping():
        return (await c.ping("10.0.2.2", count=1)).received

    assert net.run(ping(), until=15) == 1
    assert len(server.bindings) == 1
    net.close()
