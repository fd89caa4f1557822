"""The tour's first chapter: MTU and fragmentation, MSS, path MTU discovery and its black hole.

Every fact is measured from the run (frames tapped on the links, the trace, the nodes'
counters and TCP's own figures), never written down in advance; the tests check them.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from stacklab.trace.diagram import Arrow, Note
from stacklab.wire import ipv6, tcp
from stacklab.wire.ethernet import ETH_P_IPV4, ETH_P_IPV6, EthernetView

from .lab import (
    Lab,
    addr,
    counter,
    cut,
    ipv4_frames,
    l4,
    lab_step,
    payload,
    send,
    sink,
    squeeze,
    tcp_view,
)
from .registry import StepResult


def _packed(address: str) -> bytes:
    return ipaddress.ip_address(address).packed


@lab_step("mtu-fragmentation")
def mtu_fragmentation(lab: Lab, res: StepResult) -> None:
    a, _, b = lab.through_router(576)
    data = payload(3000)
    got: list[bytes] = []

    async def main() -> None:
        rx = b.udp_socket(4)
        rx.bind(("", 7000))
        tx = a.udp_socket(4, df=False)
        await asyncio.sleep(1.0)
        await tx.sendto(data, (addr(b), 7000))
        got.append((await rx.recvfrom())[0])

    lab.run(main(), until=10)
    first = ipv4_frames(lab.sent("a>r"))
    second = ipv4_frames(lab.sent("r>b"))
    frags1 = [ip for ip in first if ip.mf or ip.frag_offset]
    frags2 = [ip for ip in second if ip.mf or ip.frag_offset]
    res.show("link MTUs a-r, r-b", "1500, 576")
    res.show("UDP datagram", len(data) + 8,
             f"{len(data)} bytes of data + 8 header = {len(data) + 8}")
    res.show("fragments a -> r", len(frags1))
    res.show("fragments r -> b", len(frags2))
    res.show("largest packet on r-b", max(ip.total_length for ip in second))
    res.show("fragment offsets r -> b", [ip.frag_offset for ip in frags2])
    res.show("reassembled by b", counter(b, "ipv4.reassembled"))
    res.show("received intact", bool(got) and got[0] == data)
    lines = ["a", "r", "b"]
    rows = lab.rows(lines, kinds={"udp", "ip"}, start=1.0)
    lab.diagram(res, rows, lines, "IPv4 fragmentation: 1500 then 576")


@lab_step("df-frag-needed")
def df_frag_needed(lab: Lab, res: StepResult) -> None:
    a, r, b = lab.through_router(1400)
    out: dict[str, Any] = {}

    async def main() -> None:
        rx = b.udp_socket(4)
        rx.bind(("", 7000))
        tx = a.udp_socket(4, df=True)
        dst = (addr(b), 7000)
        await asyncio.sleep(1.0)
        out["pmtu_before"] = a.path_mtu(_packed(addr(b)))
        await tx.sendto(b"x" * 1472, dst)
        await asyncio.sleep(0.1)
        out["pmtu_after"] = a.path_mtu(_packed(addr(b)))
        try:
            await tx.sendto(b"x" * 1472, dst)
            out["again"] = "sent"
        except OSError as exc:
            out["again"] = f"refused locally: {exc.strerror or exc}"
        n = tx.max_payload(dst)
        out["resized"] = n
        await tx.sendto(b"y" * n, dst)
        out["got"] = len((await rx.recvfrom())[0])

    lab.run(main(), until=10)
    icmp = []
    for _, f in lab.sent("r>a"):
        got = l4(f)
        if got is not None and got[0] == 1:
            p = bytes(got[2])
            icmp.append((p[0], p[1], int.from_bytes(p[6:8], "big")))
    dfs = [ip for ip in ipv4_frames(lab.sent("a>r")) if ip.proto == 17]
    res.show("first datagram", dfs[0].total_length,
             f"{dfs[0].total_length} bytes, DF={int(dfs[0].df)}")
    res.show("router dropped (frag needed)", counter(r, "drop.ipv4.frag_needed"))
    res.show("ICMP back to a (type, code, mtu)", icmp[0] if icmp else None)
    res.show("a's path MTU to b", (out["pmtu_before"], out["pmtu_after"]),
             f"{out['pmtu_before']} -> {out['pmtu_after']}")
    res.show("same size again", out["again"])
    res.show("resent with", out["resized"],
             f"{out['resized']} bytes of data (IP packet {out['resized'] + 28})")
    res.show("b received", out["got"], f"{out['got']} bytes")
    res.notes = [a.route_get(addr(b))]
    lines = ["a", "r", "b"]
    rows = lab.rows(lines, kinds={"udp", "icmp"}, start=1.0)
    lab.diagram(res, rows, lines, "DF set: Fragmentation Needed")


@lab_step("ipv6-ptb")
def ipv6_ptb(lab: Lab, res: StepResult) -> None:
    a, r, b = lab.through_router(1280)
    out: dict[str, Any] = {}
    data = payload(1452, 3)

    async def main() -> None:
        rx = b.udp_socket(6)
        rx.bind(("", 7000))
        tx = a.udp_socket(6)
        dst = (addr(b, 6), 7000)
        await asyncio.sleep(2.0)  # duplicate address detection done
        await tx.sendto(data, dst)  # 1500-byte packet: too big for r-b
        await asyncio.sleep(0.1)
        out["pmtu"] = a.path_mtu(_packed(addr(b, 6)))
        await tx.sendto(data, dst)  # a fragments it itself now
        out["got"] = (await rx.recvfrom())[0]

    lab.run(main(), until=10)
    ptb = []
    for _, f in lab.sent("r>a"):
        got = l4(f)
        if got is not None and got[0] == 58 and got[2][0] == 2:
            ptb.append(int.from_bytes(bytes(got[2][4:8]), "big"))
    frags = {"a>r": 0, "r>b": 0}
    for label in frags:
        for _, f in lab.sent(label):
            eth = EthernetView(f)
            if eth.ethertype != ETH_P_IPV6:
                continue
            _, _, frag, _ = ipv6.walk_ext_headers(ipv6.IPv6View(eth.payload))
            if frag is not None:
                frags[label] += 1
    res.show("link MTUs a-r, r-b", "1500, 1280")
    res.show("first packet", len(data) + 48,
             f"{len(data) + 48} bytes (40 IPv6 + 8 UDP + {len(data)})")
    res.show("router dropped it",
             counter(r, "drop.ipv6.packet_too_big") or counter(r, "icmpv6.tx.2/0"))
    res.show("Packet Too Big MTU", ptb[0] if ptb else None)
    res.show("a's path MTU to b", out.get("pmtu"))
    res.show("fragments made by a (after PTB)", frags["a>r"])
    res.show("fragments on r-b (all from a)", frags["r>b"])
    res.show("fragmented by the router", counter(r, "ipv6.fragmented"))
    res.show("b received intact", out.get("got") == data)
    lines = ["a", "r", "b"]
    rows = lab.rows(lines, kinds={"udp", "icmpv6", "ip"}, start=2.0)
    lab.diagram(res, rows, lines, "IPv6: Packet Too Big, fragments only at the source")


@lab_step("mss")
def mss(lab: Lab, res: StepResult) -> None:
    net = lab.net
    a, b = net.add_host("a"), net.add_host("b")
    lab.connect("a", "b", mtu=1500, delay="2ms", tap=True)
    lab.start()
    got4, got6 = bytearray(), bytearray()
    udp_frames: dict[int, int] = {}

    async def main() -> None:
        await sink(b, 80, got4)
        await sink(b, 81, got6)
        await asyncio.sleep(2.0)
        await send(a, addr(b, 4), 80, payload(20000))
        await send(a, addr(b, 6), 81, payload(20000))
        rx = b.udp_socket(4)
        rx.bind(("", 7000))
        tx = a.udp_socket(4)
        for size in (1472, 1473):
            before = len(lab.sent("a>b"))
            await tx.sendto(b"u" * size, (addr(b), 7000))
            await rx.recvfrom()
            udp_frames[size] = len(lab.sent("a>b")) - before

    lab.run(main(), until=30)
    syn_mss: dict[int, int | None] = {}
    biggest: dict[int, int] = {4: 0, 6: 0}
    hdr: dict[int, int] = {}
    for _, f in lab.sent("a>b"):
        v = tcp_view(f)
        if v is None:
            continue
        fam = 4 if EthernetView(f).ethertype == ETH_P_IPV4 else 6
        if v.flags & tcp.SYN:
            syn_mss[fam] = v.mss()
        if v.payload_len > biggest[fam]:
            biggest[fam] = v.payload_len
            hdr[fam] = v.header_len
    res.show("link MTU", 1500)
    res.show("SYN MSS, IPv4", syn_mss.get(4), f"{syn_mss.get(4)} (= 1500 - 20 IP - 20 TCP)")
    res.show("SYN MSS, IPv6", syn_mss.get(6), f"{syn_mss.get(6)} (= 1500 - 40 IP - 20 TCP)")
    res.show("largest TCP payload, IPv4", biggest[4],
             f"{biggest[4]} (TCP header {hdr.get(4)} bytes: {hdr.get(4, 20) - 20} of options)")
    res.show("largest TCP payload, IPv6", biggest[6])
    res.keep("TCP header of the largest", hdr)
    res.show("bytes delivered v4 / v6", (len(got4), len(got6)), f"{len(got4)} / {len(got6)}")
    res.show("UDP 1472 bytes (= 1500 - 28)", udp_frames.get(1472),
             f"{udp_frames.get(1472)} packet(s)")
    res.show("UDP 1473 bytes", udp_frames.get(1473), f"{udp_frames.get(1473)} fragments")
    lines = ["a", "b"]
    rows = lab.rows(lines, kinds={"tcp"}, start=2.0, notes=False)
    rows = cut(rows, 8)
    lab.diagram(res, rows, lines, "MSS in the SYNs, full-size segments")


@lab_step("pmtud")
def pmtud(lab: Lab, res: StepResult) -> None:
    net = lab.net
    a, b = net.add_host("a"), net.add_host("b")
    for r in ("r1", "r2", "r3"):
        net.add_router(r)
    lab.connect("a", "r1", mtu=1500, delay="2ms", tap=True)
    lab.connect("r1", "r2", mtu=1400, delay="5ms")
    lab.connect("r2", "r3", mtu=1300, delay="5ms")
    lab.connect("r3", "b", mtu=1500, delay="2ms")
    lab.start()
    got = bytearray()
    data = payload(20000, 5)

    async def main() -> None:
        await sink(b, 80, got)
        await asyncio.sleep(1.0)
        await send(a, addr(b), 80, data)

    lab.run(main(), until=30)
    fn = [int(ev.details.get("mtu", 0)) for ev in lab.select("icmp", "rx", "a")
          if ev.details.get("type") == 3 and ev.details.get("code") == 4]
    mss_steps = [int(ev.details["mss"]) for ev in lab.select("tcp", "pmtu", "a")
                 if ev.details.get("mss") != ev.details.get("old_mss")]
    syn = next(tcp_view(f) for _, f in lab.sent("a>r1")
               if (v := tcp_view(f)) is not None and v.flags & tcp.SYN)
    sizes = [ip.total_length for ip in ipv4_frames(lab.sent("a>r1")) if ip.proto == 6]
    res.show("link MTUs a-r1-r2-r3-b", "1500, 1400, 1300, 1500")
    res.show("MSS in a's SYN", syn.mss() if syn else None)
    res.show("Frag Needed heard by a (MTU)", list(dict.fromkeys(fn)))
    res.show("a's MSS after each", mss_steps)
    res.show("a's path MTU to b", a.path_mtu(_packed(addr(b))))
    res.show("largest packets a sent", sorted(set(sizes))[-3:][::-1])
    res.show("b received intact", bytes(got) == data)
    lines = ["a", "r1", "r2", "r3", "b"]
    # from a's ESTABLISHED (the SYNs' MSS is in the table) until data sent after the last
    # Frag Needed reaches b
    est = next(ev.time for ev in lab.select("tcp", "state", "a")
               if ev.details["new"] == "ESTABLISHED")
    rows = lab.rows(lines, kinds={"tcp", "icmp"}, start=est)
    last_fn = max(r.time for r in rows if isinstance(r, Arrow) and "frag" in r.label)
    at_b = min(r.time for r in rows if isinstance(r, Arrow) and r.dst == "b"
               and "len" in r.label and r.time > last_fn)
    rows = [r for r in rows if r.time <= at_b
            and (isinstance(r, Note) or "len" in r.label or "frag" in r.label)]
    lab.diagram(res, cut(squeeze(rows), 40), lines, "Path MTU discovery: 1500 -> 1400 -> 1300")


@lab_step("pmtud-blackhole")
def pmtud_blackhole(lab: Lab, res: StepResult) -> None:
    from stacklab.scenario.node_options import apply_node_options

    net = lab.net
    c1, c2, srv = net.add_host("c1"), net.add_host("c2"), net.add_host("srv")
    net.add_router("r1")
    net.add_router("r2")
    apply_node_options(c1, {"plpmtud": "off"})
    lab.connect("c1", "r1", delay="1ms", reverse={"icmp_blackhole": True})
    lab.connect("c2", "r1", delay="1ms", reverse={"icmp_blackhole": True}, tap=True)
    lab.connect("r1", "r2", mtu=1280, delay="10ms")
    lab.connect("r2", "srv", delay="1ms")
    lab.start()
    got1, got2 = bytearray(), bytearray()
    data = payload(30000, 9)
    done: dict[str, float] = {}
    until = 20.0

    async def one(host: Any, port: int, key: str) -> None:
        await send(host, addr(srv), port, data)
        done[key] = net.now

    async def main() -> None:
        await sink(srv, 80, got1)
        await sink(srv, 81, got2)
        await asyncio.sleep(1.0)
        t1 = asyncio.ensure_future(one(c1, 80, "c1"))
        t2 = asyncio.ensure_future(one(c2, 81, "c2"))
        await asyncio.sleep(until - 1.0 - 0.001)
        for t in (t1, t2):
            t.cancel()
        await asyncio.gather(t1, t2, return_exceptions=True)

    lab.run(main(), until=until)
    lost_icmp = sum(d.get("drop.icmp_blackhole", 0)
                    for link in net.links for d in link.counters().values())
    plp = [ev for ev in lab.select("tcp", "plpmtud", "c2")]
    mss2 = [int(ev.details["mss"]) for ev in plp if "mss" in ev.details]
    c2_took = done["c2"] - 1 if "c2" in done else None
    res.keep("bytes sent", len(data))
    res.show("ICMP Frag Needed lost in the black hole", lost_icmp, key="lost_icmp")
    res.show("classic PMTUD (c1): delivered", len(got1),
             f"{len(got1)} of {len(data)} bytes in {until - 1:.0f} s", key="c1_got")
    res.show("classic PMTUD (c1): finished", "c1" in done, key="c1_done")
    res.show("PLPMTUD (c2): delivered", len(got2), f"{len(got2)} of {len(data)} bytes",
             key="c2_got")
    res.show("PLPMTUD (c2): finished after", c2_took,
             f"{c2_took:.3f} s" if c2_took is not None else "no", key="c2_took")
    res.show("PLPMTUD (c2): MSS steps", mss2, key="mss2")
    res.show("c2's RTO firings", len(lab.select("tcp", "rto", "c2")))
    res.keep("c2_intact", bytes(got2) == data)
    lines = ["c2", "r1"]
    rows = lab.rows(lines, kinds={"tcp", "icmp"}, start=1.0)
    first_ok = done.get("c2", until)
    rows = [r for r in rows if r.time <= first_ok and (
        isinstance(r, Note) or r.dropped or "len" in r.label or "[S" in r.label)]
    lab.diagram(res, cut(squeeze(rows), 40), lines, "PMTUD black hole; PLPMTUD gets through")
