"""DHCPv6 (RFC 8415) on the simulator: stateless (INFORMATION-REQUEST) and stateful (SOLICIT,
ADVERTISE, REQUEST, REPLY, RENEW), pool exhaustion, malformed messages counted."""

from __future__ import annotations

import stacklab
from stacklab.stack.dhcp6_server import Dhcp6Pool, Dhcp6Server
from stacklab.wire.dhcp6 import Dhcp6Message, decode_domains, encode_domains


def _lan(n=1, **kw):
    net = stacklab.Network(seed=6)
    sw = net.add_switch("sw")
    srv = net.add_host("srv")
    net.connect(srv, sw)
    clients = []
    for i in range(n):
        c = net.add_host(f"c{i}")
        net.connect(c, sw)
        clients.append(c)
    pool = {"first": "fd00:1::1000", "last": "fd00:1::10ff", "dns": ("fd00:1::53",),
            "domains": ("lab.example",), "preferred": 600, "valid": 1200}
    pool.update(kw)
    server = Dhcp6Server(srv, 0, Dhcp6Pool(**pool))
    net.run(until=2)  # link-local addresses past DAD
    return net, srv, server, clients


def test_stateless_information_request_gives_dns_servers_and_search_list():
    net, srv, server, (c,) = _lan()
    client = c.dhcp6.client(0)
    client.start(net.now, stateful=False)
    net.run(until=5)
    assert client.history == ["INFORMATION-REQUEST", "REPLY"] and client.state == "INFORMED"
    assert c.resolv.nameservers == ["fd00:1::53"] and c.resolv.search == ["lab.example"]
    assert c.addresses(6) == [c.address(6)]  # only the link-local: no address was asked for
    net.close()


def test_stateful_exchange_assigns_an_address_and_renews_it():
    net, srv, server, (c,) = _lan()
    client = c.dhcp6.client(0)
    client.start(net.now)
    net.run(until=8)
    assert client.history == ["SOLICIT", "ADVERTISE", "REQUEST", "REPLY"]
    assert "fd00:1::1000" in c.addresses(6) and client.state == "BOUND"
    assert c.resolv.nameservers == ["fd00:1::53"]
    net.run(until=2 + 300 + 10)  # T1 = preferred / 2 = 300 s: RENEW, REPLY
    assert client.history[-2:] == ["RENEW", "REPLY"] and client.state == "BOUND"
    server.close()  # no server: RENEW until T2, REBIND until the valid lifetime, then gone
    net.run(until=2 + 300 + 1300)
    assert "fd00:1::1000" not in c.addresses(6)
    assert "REBIND" in client.history and c.counters["dhcp6.client.expired"] == 1
    net.close()


def test_an_empty_pool_answers_no_addrs_avail_and_the_client_keeps_soliciting():
    net, srv, server, (a, b) = _lan(2, last="fd00:1::1000")
    ca, cb = a.dhcp6.client(0), b.dhcp6.client(0)
    ca.start(net.now)
    net.run(until=8)
    cb.start(net.now)
    net.run(until=20)
    assert ca.state == "BOUND" and cb.state == "SOLICIT"
    assert srv.counters["dhcp6.server.pool_exhausted"] >= 1
    assert b.counters["dhcp6.client.no_addrs"] >= 1
    net.close()


def test_malformed_dhcpv6_is_a_counted_drop():
    net, srv, server, (c,) = _lan()
    good = Dhcp6Message(11, 5, [(1, b"\x00\x03\x00\x01" + bytes(6))]).build()
    for data in (b"", b"\x63abc", good + b"\x00\x01\x00\x09", good + b"\x00\x03\x00\x02ab",
                 good + b"\x00\x17\x00\x03abc"):
        server.datagram_received(data, (bytes(16), 546), net.now)
    for field in ("length", "msg_type", "option", "ia_na", "dns_servers"):
        assert srv.counters[f"drop.dhcp6.{field}"] == 1, field
    assert decode_domains(encode_domains(["lab.example", "x.y"])) == ["lab.example", "x.y"]
    net.close()
