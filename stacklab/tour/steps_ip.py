"""The tour's network chapter: routing and TTL (traceroute), ICMP echo, ARP."""

from __future__ import annotations

import asyncio
from typing import Any

from stacklab.wire import arp
from stacklab.wire.ethernet import ETH_P_ARP, EthernetView

from .lab import Lab, addr, counter, cut, ipv4_frames, l4, lab_step
from .registry import StepResult


@lab_step("routing-ttl")
def routing_ttl(lab: Lab, res: StepResult) -> None:
    net = lab.net
    a, b = net.add_host("a"), net.add_host("b")
    r1, r2 = net.add_router("r1"), net.add_router("r2")
    lab.connect("a", "r1", delay="2ms")
    lab.connect("r1", "r2", delay="2ms")
    lab.connect("r2", "b", delay="2ms", tap=True)
    lab.start()
    out: dict[str, Any] = {}

    async def main() -> None:
        await asyncio.sleep(1.0)
        out["tr"] = await a.traceroute(addr(b), method="icmp", probes=1, wait=1.0, out=None)
        out["ping"] = await a.ping(addr(b), count=1, out=None)
        out["ttl1"] = await a.ping(addr(b), count=1, ttl=1, timeout=1.0, out=None)

    lab.run(main(), until=30)
    ttl_at_b = [ip.ttl for ip in ipv4_frames(lab.sent("r2>b")) if ip.proto == 1]
    last_ttl = ttl_at_b[-1] if ttl_at_b else None
    res.show("traceroute a -> b (hops)", out["tr"].addresses)
    res.show("routers' addresses", (addr(r1), addr(r2)), f"r1 {addr(r1)}, r2 {addr(r2)}")
    res.keep("b's address", addr(b))
    res.show("TTL a sends / TTL arriving at b", last_ttl, f"64 / {last_ttl}")
    res.show("ping with TTL 1", out["ttl1"].errors[0] if out["ttl1"].errors else "no error")
    res.show("Time Exceeded sent by r1", counter(r1, "icmp.tx.11/0"))
    res.notes = ["r1's routing table (longest prefix wins):"] + [
        "  " + line for line in str(r1.routes).splitlines() if "." in line.split()[0]]
    lines = ["a", "r1", "r2", "b"]
    rows = lab.rows(lines, kinds={"icmp"}, start=1.0)
    lab.diagram(res, cut(rows, 30), lines, "Routing and TTL: traceroute")


@lab_step("ping")
def ping_step(lab: Lab, res: StepResult) -> None:
    net = lab.net
    a, b = net.add_host("a"), net.add_host("b")
    net.add_router("r")
    lab.connect("a", "r", delay="5ms")
    lab.connect("r", "b", delay="10ms")
    lab.start()
    lines_out: list[str] = []
    out: dict[str, Any] = {}

    async def main() -> None:
        await asyncio.sleep(1.0)
        out["p"] = await a.ping(addr(b), count=3, out=lines_out.append)

    lab.run(main(), until=30)
    p = out["p"]
    res.show("echo requests / replies", (p.transmitted, p.received),
             f"{p.transmitted} / {p.received}")
    res.show("round-trip times (ms)", [round(x * 1000, 3) for x in p.rtts])
    res.show("one-way delay a-r-b", "5 ms + 10 ms: RTT >= 30 ms")
    res.notes = lines_out[:6]
    lines = ["a", "r", "b"]
    rows = lab.rows(lines, kinds={"icmp"}, start=1.0)
    lab.diagram(res, rows, lines, "ICMP echo")


@lab_step("arp")
def arp_step(lab: Lab, res: StepResult) -> None:
    a, b = lab.net.add_host("a"), lab.net.add_host("b")
    lab.connect("a", "b", delay="5ms", tap=True)
    lab.start()
    out: dict[str, Any] = {}

    async def main() -> None:
        await asyncio.sleep(1.0)
        out["p"] = await a.ping(addr(b), count=1, family=4, out=None)
        out["after"] = str(a.neighbors)

    lab.run(main(), until=10)
    req: tuple[str, Any] | None = None
    rep: tuple[str, str] | None = None
    echo_t: float | None = None
    rep_t: float | None = None
    for t, d, f in lab.frames:
        if t < 1.0:
            continue
        eth = EthernetView(f)
        if eth.ethertype == ETH_P_ARP:
            v = arp.ArpView(eth.payload)
            if v.op == arp.ARP_REQUEST and d == "a>b" and req is None:
                req = (eth.dst.hex(":"), v.tpa)
            elif v.op == arp.ARP_REPLY and d == "b>a" and rep is None:
                rep = (eth.dst.hex(":"), v.sha.hex(":"))
                rep_t = t
        elif d == "a>b" and echo_t is None and (got := l4(f)) is not None and got[0] == 1:
            echo_t = t
    cache = [f"{ev.details['old']}>{ev.details['new']}" for ev in
             lab.select("arp", "cache", "a") if ev.time >= 1.0
             and ev.details.get("ip") == addr(b)]
    res.show("who-has sent to", req[0] if req else None,
             f"{req[0] if req else None} (broadcast)")
    res.show("reply sent to", rep[0] if rep else None,
             f"{rep[0] if rep else None} (a's MAC, unicast)")
    res.show("b's MAC in the reply", rep[1] if rep else None)
    res.keep("reply sent at", rep_t)
    res.show("echo request waited until", echo_t,
             f"{echo_t:.6f} s (reply sent at {rep_t:.6f}, arrives 5 ms later)"
             if echo_t and rep_t else None)
    res.show("a's cache entry for b", cache)
    res.notes = ["ip neigh on a:"] + ["  " + x for x in out["after"].splitlines()
                                       if "." in x.split(" ")[0]]
    lines = ["a", "b"]
    rows = lab.rows(lines, kinds={"arp", "icmp"}, start=1.0)
    lab.diagram(res, rows, lines, "ARP: who-has, is-at")
