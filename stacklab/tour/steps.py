"""The tour's steps, in the seed's order. Each builds a network, runs it and reports facts.

Every fact is measured from the run (frames tapped on the links, the trace, the nodes'
counters and TCP's own figures), never written down in advance; the tests check them.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import time
from typing import Any

from stacklab.trace.diagram import Arrow, Note, Row
from stacklab.trace.stats import connection_stats
from stacklab.wire import ipv4, ipv6, tcp
from stacklab.wire.ethernet import ETH_P_ARP, ETH_P_IPV4, ETH_P_IPV6, EthernetView

from .lab import (
    Dropper,
    Lab,
    Mangler,
    arrows,
    cut,
    l4,
    nth,
    squeeze,
    tcp_data,
    tcp_view,
    udp_view,
)
from .runner import StepContext, StepResult, step

# -- helpers ----------------------------------------------------------------------------------


def _ip(host: Any, family: int = 4) -> str:
    return str(host.address(family)).split("/")[0]


def _packed(addr: str) -> bytes:
    return ipaddress.ip_address(addr).packed


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _ipv4_frames(frames: list[tuple[float, bytes]]) -> list[ipv4.IPv4View]:
    out = []
    for _, f in frames:
        eth = EthernetView(f)
        if eth.ethertype == ETH_P_IPV4:
            out.append(ipv4.IPv4View(eth.payload))
    return out


async def _sink(host: Any, port: int, got: bytearray, close_after: float = 0.0) -> Any:
    """A TCP server that reads everything, then (after ``close_after``) closes."""

    async def handle(r: Any, w: Any) -> None:
        while True:
            chunk = await r.read(65536)
            if not chunk:
                break
            got.extend(chunk)
        if close_after:
            await asyncio.sleep(close_after)
        w.close()

    return await host.start_server(handle, port)


async def _send(host: Any, dst: str, port: int, data: bytes) -> None:
    r, w = await host.open_connection(dst, port)
    w.write(data)
    await w.drain()
    w.close()
    await w.wait_closed()
    await r.read()


def _payload(n: int, seed: int = 0) -> bytes:
    return bytes((i * 7 + seed) & 0xFF for i in range(n))


# -- MTU, MSS, PMTUD --------------------------------------------------------------------------


@step("mtu-fragmentation")
def mtu_fragmentation(ctx: StepContext) -> StepResult:
    res = StepResult()
    with Lab(ctx, "mtu-fragmentation") as lab:
        net = lab.net
        a, net_r, b = net.add_host("a"), net.add_router("r"), net.add_host("b")
        del net_r
        lab.connect("a", "r", mtu=1500, delay="2ms", tap=True)
        lab.connect("r", "b", mtu=576, delay="2ms", tap=True)
        lab.start()
        data = _payload(3000)
        got: list[bytes] = []

        async def main() -> None:
            rx = b.udp_socket(4)
            rx.bind(("", 7000))
            tx = a.udp_socket(4, df=False)
            await asyncio.sleep(1.0)
            await tx.sendto(data, (_ip(b), 7000))
            got.append((await rx.recvfrom())[0])

        lab.run(main(), until=10)
        first = _ipv4_frames(lab.sent("a>r"))
        second = _ipv4_frames(lab.sent("r>b"))
        frags1 = [ip for ip in first if ip.mf or ip.frag_offset]
        frags2 = [ip for ip in second if ip.mf or ip.frag_offset]
        res.facts = {
            "link MTUs a-r, r-b": "1500, 576",
            "UDP datagram": f"{len(data)} bytes of data + 8 header = {len(data) + 8}",
            "fragments a -> r": len(frags1),
            "fragments r -> b": len(frags2),
            "largest packet on r-b": max(ip.total_length for ip in second),
            "fragment offsets r -> b": [ip.frag_offset for ip in frags2],
            "reassembled by b": a_count(b, "ipv4.reassembled"),
            "received intact": bool(got) and got[0] == data,
        }
        lines = ["a", "r", "b"]
        rows = lab.rows(lines, kinds={"udp", "ip"}, start=1.0)
        lab.diagram(res, rows, lines, "IPv4 fragmentation: 1500 then 576")
    return res


def a_count(node: Any, key: str) -> int:
    return int(node.counters.get(key, 0))


@step("df-frag-needed")
def df_frag_needed(ctx: StepContext) -> StepResult:
    res = StepResult()
    with Lab(ctx, "df-frag-needed") as lab:
        net = lab.net
        a, r, b = net.add_host("a"), net.add_router("r"), net.add_host("b")
        lab.connect("a", "r", mtu=1500, delay="2ms", tap=True)
        lab.connect("r", "b", mtu=1400, delay="2ms", tap=True)
        lab.start()
        out: dict[str, Any] = {}

        async def main() -> None:
            rx = b.udp_socket(4)
            rx.bind(("", 7000))
            tx = a.udp_socket(4, df=True)
            dst = (_ip(b), 7000)
            await asyncio.sleep(1.0)
            out["pmtu_before"] = a.path_mtu(_packed(_ip(b)))
            await tx.sendto(b"x" * 1472, dst)
            await asyncio.sleep(0.1)
            out["pmtu_after"] = a.path_mtu(_packed(_ip(b)))
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
        dfs = [ip for ip in _ipv4_frames(lab.sent("a>r")) if ip.proto == 17]
        res.facts = {
            "first datagram": f"{dfs[0].total_length} bytes, DF={int(dfs[0].df)}",
            "router dropped (frag needed)": a_count(r, "drop.ipv4.frag_needed"),
            "ICMP back to a (type, code, mtu)": icmp[0] if icmp else None,
            "a's path MTU to b": f"{out['pmtu_before']} -> {out['pmtu_after']}",
            "same size again": out["again"],
            "resent with": f"{out['resized']} bytes of data (IP packet {out['resized'] + 28})",
            "b received": f"{out['got']} bytes",
        }
        res.notes = [a.route_get(_ip(b))]
        lines = ["a", "r", "b"]
        rows = lab.rows(lines, kinds={"udp", "icmp"}, start=1.0)
        lab.diagram(res, rows, lines, "DF set: Fragmentation Needed")
    return res


@step("ipv6-ptb")
def ipv6_ptb(ctx: StepContext) -> StepResult:
    res = StepResult()
    with Lab(ctx, "ipv6-ptb") as lab:
        net = lab.net
        a, r, b = net.add_host("a"), net.add_router("r"), net.add_host("b")
        lab.connect("a", "r", mtu=1500, delay="2ms", tap=True)
        lab.connect("r", "b", mtu=1280, delay="2ms", tap=True)
        lab.start()
        out: dict[str, Any] = {}
        data = _payload(1452, 3)

        async def main() -> None:
            rx = b.udp_socket(6)
            rx.bind(("", 7000))
            tx = a.udp_socket(6)
            dst = (_ip(b, 6), 7000)
            await asyncio.sleep(2.0)  # duplicate address detection done
            await tx.sendto(data, dst)  # 1500-byte packet: too big for r-b
            await asyncio.sleep(0.1)
            out["pmtu"] = a.path_mtu(_packed(_ip(b, 6)))
            await tx.sendto(data, dst)  # a fragments it itself now
            out["got"] = (await rx.recvfrom())[0]

        lab.run(main(), until=10)
        ptb = []
        for _, f in lab.sent("r>a"):
            got = l4(f)
            if got is not None and got[0] == 58 and got[2][0] == 2:
                ptb.append(int.from_bytes(bytes(got[2][4:8]), "big"))
        frag_rb = frag_ab = 0
        for label in ("a>r", "r>b"):
            for _, f in lab.sent(label):
                eth = EthernetView(f)
                if eth.ethertype != ETH_P_IPV6:
                    continue
                _, _, frag, _ = ipv6.walk_ext_headers(ipv6.IPv6View(eth.payload))
                if frag is not None:
                    if label == "a>r":
                        frag_ab += 1
                    else:
                        frag_rb += 1
        res.facts = {
            "link MTUs a-r, r-b": "1500, 1280",
            "first packet": f"{len(data) + 48} bytes (40 IPv6 + 8 UDP + {len(data)})",
            "router dropped it": a_count(r, "drop.ipv6.packet_too_big")
            or a_count(r, "icmpv6.tx.2/0"),
            "Packet Too Big MTU": ptb[0] if ptb else None,
            "a's path MTU to b": out.get("pmtu"),
            "fragments made by a (after PTB)": frag_ab,
            "fragments on r-b (all from a)": frag_rb,
            "fragmented by the router": a_count(r, "ipv6.fragmented"),
            "b received intact": out.get("got") == data,
        }
        lines = ["a", "r", "b"]
        rows = lab.rows(lines, kinds={"udp", "icmpv6", "ip"}, start=2.0)
        lab.diagram(res, rows, lines, "IPv6: Packet Too Big, fragments only at the source")
    return res


@step("mss")
def mss(ctx: StepContext) -> StepResult:
    res = StepResult()
    with Lab(ctx, "mss") as lab:
        net = lab.net
        a, b = net.add_host("a"), net.add_host("b")
        lab.connect("a", "b", mtu=1500, delay="2ms", tap=True)
        lab.start()
        got4, got6 = bytearray(), bytearray()
        udp_frames: dict[int, int] = {}

        async def main() -> None:
            await _sink(b, 80, got4)
            await _sink(b, 81, got6)
            await asyncio.sleep(2.0)
            await _send(a, _ip(b, 4), 80, _payload(20000))
            await _send(a, _ip(b, 6), 81, _payload(20000))
            rx = b.udp_socket(4)
            rx.bind(("", 7000))
            tx = a.udp_socket(4)
            for size in (1472, 1473):
                before = len(lab.sent("a>b"))
                await tx.sendto(b"u" * size, (_ip(b), 7000))
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
        res.facts = {
            "link MTU": 1500,
            "SYN MSS, IPv4": f"{syn_mss.get(4)} (= 1500 - 20 IP - 20 TCP)",
            "SYN MSS, IPv6": f"{syn_mss.get(6)} (= 1500 - 40 IP - 20 TCP)",
            "largest TCP payload, IPv4": f"{biggest[4]} (TCP header {hdr.get(4)} bytes: "
                                         f"{hdr.get(4, 20) - 20} of options)",
            "largest TCP payload, IPv6": biggest[6],
            "bytes delivered v4 / v6": f"{len(got4)} / {len(got6)}",
            "UDP 1472 bytes (= 1500 - 28)": f"{udp_frames.get(1472)} packet(s)",
            "UDP 1473 bytes": f"{udp_frames.get(1473)} fragments",
        }
        res.data = {"syn_mss": syn_mss, "biggest": biggest, "udp": udp_frames, "hdr": hdr}
        lines = ["a", "b"]
        rows = lab.rows(lines, kinds={"tcp"}, start=2.0, notes=False)
        rows = cut(rows, 8)
        lab.diagram(res, rows, lines, "MSS in the SYNs, full-size segments")
    return res


@step("pmtud")
def pmtud(ctx: StepContext) -> StepResult:
    res = StepResult()
    with Lab(ctx, "pmtud") as lab:
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
        data = _payload(20000, 5)

        async def main() -> None:
            await _sink(b, 80, got)
            await asyncio.sleep(1.0)
            await _send(a, _ip(b), 80, data)

        lab.run(main(), until=30)
        fn = [int(ev.details.get("mtu", 0)) for ev in lab.select("icmp", "rx", "a")
              if ev.details.get("type") == 3 and ev.details.get("code") == 4]
        mss_steps = [int(ev.details["mss"]) for ev in lab.select("tcp", "pmtu", "a")
                     if ev.details.get("mss") != ev.details.get("old_mss")]
        syn = next(tcp_view(f) for _, f in lab.sent("a>r1")
                   if (v := tcp_view(f)) is not None and v.flags & tcp.SYN)
        sizes = [ip.total_length for ip in _ipv4_frames(lab.sent("a>r1")) if ip.proto == 6]
        res.facts = {
            "link MTUs a-r1-r2-r3-b": "1500, 1400, 1300, 1500",
            "MSS in a's SYN": syn.mss() if syn else None,
            "Frag Needed heard by a (MTU)": list(dict.fromkeys(fn)),
            "a's MSS after each": mss_steps,
            "a's path MTU to b": a.path_mtu(_packed(_ip(b))),
            "largest packets a sent": sorted(set(sizes))[-3:][::-1],
            "b received intact": bytes(got) == data,
        }
        res.data = {"fn": fn, "mss": mss_steps, "syn_mss": syn.mss() if syn else None}
        lines = ["a", "r1", "r2"]
        rows = lab.rows(lines, kinds={"tcp", "icmp"}, start=1.0)
        last_fn = max((r.time for r in rows if isinstance(r, Arrow) and "frag" in r.label),
                      default=1.0)
        rows = [r for r in rows if r.time <= last_fn + 0.02
                and (isinstance(r, Note) or "len" in r.label or "frag" in r.label
                     or "[S" in r.label)]
        lab.diagram(res, cut(squeeze(rows), 30), lines,
                    "Path MTU discovery: 1500 -> 1400 -> 1300")
    return res


@step("pmtud-blackhole")
def pmtud_blackhole(ctx: StepContext) -> StepResult:
    from stacklab.stack.pmtu import apply_node_options

    res = StepResult()
    with Lab(ctx, "pmtud-blackhole") as lab:
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
        data = _payload(30000, 9)
        done: dict[str, float] = {}
        until = 20.0

        async def one(host: Any, port: int, key: str) -> None:
            await _send(host, _ip(srv), port, data)
            done[key] = net.now

        async def main() -> None:
            await _sink(srv, 80, got1)
            await _sink(srv, 81, got2)
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
        res.facts = {
            "ICMP Frag Needed lost in the black hole": lost_icmp,
            "classic PMTUD (c1): delivered": f"{len(got1)} of {len(data)} bytes in "
                                            f"{until - 1:.0f} s",
            "classic PMTUD (c1): finished": "c1" in done,
            "PLPMTUD (c2): delivered": f"{len(got2)} of {len(data)} bytes",
            "PLPMTUD (c2): finished after": f"{done['c2'] - 1:.3f} s" if "c2" in done else "no",
            "PLPMTUD (c2): MSS steps": mss2,
            "c2's RTO firings": len(lab.select("tcp", "rto", "c2")),
        }
        res.data = {"got1": len(got1), "got2": len(got2), "total": len(data),
                    "c2_done": "c2" in done, "c1_done": "c1" in done, "mss2": mss2,
                    "lost_icmp": lost_icmp, "intact": bytes(got2) == data}
        lines = ["c2", "r1"]
        rows = lab.rows(lines, kinds={"tcp", "icmp"}, start=1.0)
        first_ok = done.get("c2", until)
        rows = [r for r in rows if r.time <= first_ok and (
            isinstance(r, Note) or r.dropped or "len" in r.label or "[S" in r.label)]
        lab.diagram(res, cut(squeeze(rows), 40), lines,
                    "PMTUD black hole; PLPMTUD gets through")
    return res
