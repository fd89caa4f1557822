"""DNS on the simulator: the stub resolver (search domains, CNAME, NXDOMAIN/NODATA, timeouts
and retries, TCP after truncation), the authoritative server and the recursive resolver."""

from __future__ import annotations

import socket

import dns.message
import dns.rcode
import pytest

import stacklab
from stacklab.api.dns import query
from stacklab.apps.dns import Authority, Recursor, make_zone, serve_dns


def _lan(n: int = 3):
    net = stacklab.Network(seed=5)
    sw = net.add_switch("sw")
    hosts = []
    for i in range(n):
        h = net.add_host(f"h{i}")
        net.connect(h, sw)
        hosts.append(h)
    net.autoconfigure()
    return net, hosts


ZONE = {"www": ["10.0.1.10", "fd00::10"], "web": "CNAME www", "far": "CNAME www.other.test.",
        "mx": "MX 10 www", "big": [f"10.9.0.{i}" for i in range(1, 61)]}


def _serve(net, host, zones):
    server = {}

    async def start():
        server["s"] = await serve_dns(host, Authority(
            {o: make_zone(o, r) for o, r in zones.items()}))

    net.run(start(), until=1)
    return server["s"]


def test_stub_search_domains_cname_and_both_families():
    net, (srv, cli, _) = _lan()
    _serve(net, srv, {"lab.example": ZONE})
    cli.resolv.learn("static", [srv.address(4)], ["lab.example"])

    async def main():
        return (await cli.resolve_name("web", 4), await cli.resolve_name("www.lab.example"),
                await cli.resolve_name("web.lab.example.", 6))

    assert net.run(main(), until=20) == (["10.0.1.10"], ["10.0.1.10", "fd00::10"],
                                         ["fd00::10"])
    net.close()


def test_stub_errors_name_nodata_and_no_server():
    net, (srv, cli, silent) = _lan()
    _serve(net, srv, {"lab.example": ZONE})
    cli.resolv.learn("static", [srv.address(4)], [])

    async def codes():
        out = []
        for name, fam in (("nosuch.lab.example", None), ("mx.lab.example", 4)):
            with pytest.raises(socket.gaierror) as e:
                await cli.resolve_name(name, fam)
            out.append(e.value.errno)
        return out

    assert net.run(codes(), until=30) == [socket.EAI_NONAME, socket.EAI_NODATA]
    # a server that never answers: 2 attempts of 5 s (resolv.conf's defaults), then EAI_AGAIN

    async def sink():
        sock = silent.udp_socket(4)
        sock.bind(("", 53))
        while True:
            await sock.recvfrom()

    task = net.loop.create_task(sink())
    cli.resolv.learn("static", [silent.address(4)], [])

    async def timeout():
        t0 = net.now
        with pytest.raises(socket.gaierror) as e:
            await cli.resolve_name("www.lab.example", 4)
        return e.value.errno, net.now - t0

    code, took = net.run(timeout(), until=100)
    assert code == socket.EAI_AGAIN and 10 <= took < 11
    assert cli.counters["dns.stub.timeouts"] == 2
    task.cancel()
    net.close()


def test_truncated_udp_answer_is_fetched_over_tcp():
    net, (srv, cli, _) = _lan()
    _serve(net, srv, {"lab.example": ZONE})
    cli.resolv.learn("static", [srv.address(4)], [])

    async def main():
        return await cli.resolve_name("big.lab.example", 4)

    got = net.run(main(), until=30)
    assert sorted(got) == sorted(f"10.9.0.{i}" for i in range(1, 61))
    assert cli.counters["dns.stub.tcp_fallback"] == 1
    net.close()


def test_authority_answers_refused_nxdomain_with_soa_and_malformed_is_counted():
    net, (srv, cli, _) = _lan()
    server = _serve(net, srv, {"lab.example": ZONE})

    async def main():
        ip = srv.address(4)
        r1 = await query(cli, ip, "www.elsewhere.test.", dns.rdatatype.A)
        r2 = await query(cli, ip, "nosuch.lab.example.", dns.rdatatype.A)
        r3 = await query(cli, ip, "far.lab.example.", dns.rdatatype.A)
        sock = cli.udp_socket(4)
        for junk in (b"", b"\x00" * 5, b"\xff" * 40):
            await sock.sendto(junk, (ip, 53))
        return r1, r2, r3

    r1, r2, r3 = net.run(main(), until=30)
    assert r1.rcode() == dns.rcode.REFUSED
    assert r2.rcode() == dns.rcode.NXDOMAIN and r2.flags & dns.flags.AA
    assert r2.authority[0].rdtype == dns.rdatatype.SOA
    assert [str(rr.name) for rr in r3.answer] == ["far.lab.example."]  # alias out of zone
    net.run(until=net.now + 1)
    assert server.errors["malformed"] == 3 and server.errors["refused"] == 1
    net.close()


def test_recursor_follows_a_referral_and_caches():
    net, (root, sub, cli) = _lan()
    _serve(net, root, {"example": {"lab": "NS ns.lab", "ns.lab": sub.address(4),
                                   "alias": "CNAME www.lab.example."}})
    _serve(net, sub, {"lab.example": ZONE})

    async def ask(server, qname, rdtype):
        return await query(cli, server, qname, rdtype, rd=False)

    rec = Recursor([root.address(4)], ask, clock=cli.now)

    async def main():
        a = await rec.resolve(dns.name.from_text("alias.example."), dns.rdatatype.A)
        b = await rec.resolve(dns.name.from_text("alias.example."), dns.rdatatype.A)
        n = await rec.resolve(dns.name.from_text("no.lab.example."), dns.rdatatype.A)
        n2 = await rec.resolve(dns.name.from_text("no.lab.example."), dns.rdatatype.A)
        return a, b, n, n2

    a, b, n, n2 = net.run(main(), until=30)
    assert a[0] == dns.rcode.NOERROR
    assert [r.address for r in a[1][-1]] == ["10.0.1.10"]
    assert b == a and rec.hits == 2 and rec.misses == 2
    assert n[0] == dns.rcode.NXDOMAIN and n2 == n  # negative caching (RFC 2308)
    net.close()


def test_the_lan_example_boots_with_dhcp_and_resolves_names():
    from pathlib import Path

    from stacklab.scenario.runner import run_scenario
    path = Path(__file__).parents[2] / "examples" / "lan-dhcp-dns.toml"
    out = run_scenario(path)
    assert all(a["ok"] for a in out["apps"]), out["apps"]
    laptop = out["nodes"]["laptop"]["dhcp"][0]
    assert laptop["state"] == "BOUND" and laptop["address"].startswith("10.0.1.1")
    assert laptop["dns"] == ["10.0.1.1"] and laptop["domain"] == "lab.example"
    server = next(a for a in out["apps"] if a["kind"] == "dhcp-server")
    assert len(server["leases"]) == 2
    resolver = next(a for a in out["apps"] if a["kind"] == "dns-resolver")
    assert resolver["cache_hits"] == 1  # phone's www A: the end of laptop's site -> www chain
    phone6 = out["nodes"]["phone"]["dhcp6"][0]
    assert phone6["state"] == "BOUND" and phone6["address"] == "fd00:0:0:1::1000"
    assert phone6["dns"] == ["fd00:0:0:1::1"]


def test_a_server_without_dns_is_skipped_at_once_on_port_unreachable():
    """glibc connects its UDP socket: the ICMP Port Unreachable from a host that runs no DNS
    server ends the wait for it at once, and the next server is asked."""
    net, (srv, cli, other) = _lan()
    _serve(net, srv, {"lab.example": ZONE})
    cli.resolv.learn("static", [other.address(4), srv.address(4)], [])

    async def main():
        t0 = net.now
        return await cli.resolve_name("www.lab.example", 4), net.now - t0

    addrs, took = net.run(main(), until=30)
    assert addrs == ["10.0.1.10"] and took < 1.0
    assert cli.counters["dns.stub.unreachable"] == 1
    net.close()
