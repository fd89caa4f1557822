"""The tour's LAN chapter: a host that boots with DHCP and finds a name with DNS.

``laptop`` starts without an IPv4 address, on a link to the router ``gw``. ``gw`` serves DHCP
(a pool, itself as router and as DNS server, the search domain lab.example) and runs a
recursive resolver, which asks ``ns``, authoritative for lab.example, behind ``gw``. The
diagram shows DISCOVER, OFFER, REQUEST, ACK, the three ARP probes (RFC 5227), then the query
for "www" (the search domain appended), the recursion and the answer, then a ping to the
address found.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from stacklab.trace.diagram import Arrow, Note, Row
from stacklab.wire import MalformedPacket
from stacklab.wire.arp import ArpView
from stacklab.wire.dhcp import MESSAGE_TYPE_NAMES, DhcpMessage
from stacklab.wire.dns import parse_message
from stacklab.wire.ethernet import ETH_P_ARP, EthernetView

from .lab import Lab, addr, counter, l4, lab_step, udp_view
from .registry import StepResult

_LINES = ["laptop", "gw", "ns"]
_DELAY = 0.002

def _label(frame: bytes) -> str | None:
    """What a frame is, for the diagram; None for what the chapter leaves out (NDP...)."""
    try:
        eth = EthernetView(frame)
        if eth.ethertype == ETH_P_ARP:
            a = ArpView(eth.payload)
            if a.op == 1 and a.spa == bytes(4):
                return f"ARP probe {ipaddress.IPv4Address(a.tpa)}?"
            return None
        got = l4(frame)
        if got is None:
            return None
        proto, ip, _ = got
        if proto == 1 and len(ip.dst) == 4:
            return "ICMP echo request" if ip.payload[0] == 8 else "ICMP echo reply"
        v = udp_view(frame)
        if v is None:
            return None
        if {v.src_port, v.dst_port} == {67, 68}:
            m = DhcpMessage.parse(v.payload)
            name = MESSAGE_TYPE_NAMES.get(m.msg_type or 0, "?")
            extra = f" {ipaddress.IPv4Address(m.yiaddr)}" if m.yiaddr != bytes(4) else ""
            return f"DHCP {name}{extra}"
        if 53 in (v.src_port, v.dst_port):
            msg = parse_message(v.payload)
            q = msg.question[0]
            what = f"{q.name} {q.rdtype.name}"
            if not msg.flags & 0x8000:
                return f"DNS query {what}"
            answers = [str(rd) for rr in msg.answer for rd in rr]
            return f"DNS answer {', '.join(answers) or msg.rcode().name}"
    except (MalformedPacket, IndexError):
        return None
    return None


def _rows(lab: Lab) -> list[Row]:
    rows: list[Row] = []
    for t, d, frame in lab.frames:
        label = _label(frame)
        if label is None:
            continue
        src, dst = d.split(">")
        rows.append(Arrow(t, t + _DELAY, src, dst, label))  # (tapped as sent)
    for ev in lab.select("dhcp", "bound", "laptop"):
        rows.append(Note(ev.time, "laptop", f"bound {ev.details['addr']}"))
    rows.sort(key=lambda r: r.time)
    return rows


@lab_step("lan-dhcp-dns")
def lan_step(lab: Lab, res: StepResult) -> None:
    from stacklab.api.dns import query
    from stacklab.apps.dns import Authority, Recursor, make_zone, serve_dns
    from stacklab.stack.dhcp_server import DhcpServer, PoolConfig

    net = lab.net
    laptop, gw, ns = net.add_host("laptop"), net.add_router("gw"), net.add_host("ns")
    lab.connect("laptop", "gw", delay=f"{_DELAY}s", tap=True)
    lab.connect("gw", "ns", delay=f"{_DELAY}s", tap=True)
    lab.start()
    for a, plen in list(laptop.interfaces[0].v4):  # laptop: IPv4 from DHCP only
        laptop.remove_address(0, f"{ipaddress.IPv4Address(a)}/{plen}")
    laptop.routes.remove_where(lambda r: r.family == 4)
    gw_ip, ns_ip = gw.interfaces[0].v4[0][0], addr(ns)
    gw_text = str(ipaddress.IPv4Address(gw_ip))
    server = DhcpServer(gw, 0, PoolConfig(
        "10.0.1.100", "10.0.1.150", 24, router=gw_text, dns=(gw_text,), domain="lab.example",
        lease_time=3600))
    out: dict[str, Any] = {}

    async def main() -> None:
        await serve_dns(ns, Authority({"lab.example": make_zone(
            "lab.example", {"www": ns_ip})}))

        async def ask(srv: str, qname: str, rdtype: Any) -> Any:
            return await query(gw, srv, qname, rdtype, rd=False)

        await serve_dns(gw, Recursor([ns_ip], ask, clock=gw.now))
        client = laptop.dhcp4.client(0)
        client.start(net.now)
        while client.state != "BOUND":
            await asyncio.sleep(0.1)
        out["lease"] = client.summary(net.now)
        out["www"] = await laptop.resolve_name("www", 4)
        out["ping"] = await laptop.ping(out["www"][0], count=1, out=None)

    lab.run(main(), until=60)
    lease = out["lease"]
    t_bound = lab.select("dhcp", "bound", "laptop")[0].time
    res.show("laptop's address (DHCP)", lease["address"], key="address")
    res.show("router, DNS server", (lease["router"], lease["dns"][0]), key="router_dns")
    res.show("search domain", lease["domain"], key="domain")
    res.show("lease, renewal at T1", (lease["lease_time"], lease["lease_time"] / 2),
             f"{lease['lease_time']:g} s, T1 after {lease['lease_time'] / 2:g} s", key="lease")
    res.show("time to an address", t_bound, f"{t_bound:.3f} s (most of it the ARP probes)",
             key="t_bound")
    res.show("www resolves to", out["www"], key="www")
    res.show("ping www", out["ping"].received == 1, key="ping_ok")
    res.keep("history", laptop.dhcp4.client(0).history)
    res.keep("probes", counter(laptop, "arp.tx.probe"))
    res.keep("server_leases", server.summary(net.now)["leases"])
    lab.diagram(res, _rows(lab), _LINES, "DHCP, then a DNS lookup through a recursive resolver")
