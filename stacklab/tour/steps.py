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

from stacklab.trace.diagram import Arrow, Note
from stacklab.trace.stats import connection_stats
from stacklab.wire import ipv4, ipv6, tcp
from stacklab.wire.ethernet import ETH_P_ARP, ETH_P_IPV4, ETH_P_IPV6, EthernetView

from .lab import (
    Dropper,
    Lab,
    Mangler,
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
    from stacklab.scenario.node_options import apply_node_options

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


# -- the transport layer ----------------------------------------------------------------------


def _pair(ctx: StepContext, name: str, **link: Any) -> tuple[Lab, Any, Any]:
    lab = Lab(ctx, name)
    c, s = lab.net.add_host("client"), lab.net.add_host("server")
    link.setdefault("delay", "10ms")
    lab.connect("client", "server", tap=True, **link)
    lab.start()
    return lab, c, s


def _with_old(lab: Lab, node: str) -> list[str]:
    evs = lab.select("tcp", "state", node)
    if not evs:
        return []
    first = str(evs[0].details["old"])
    states = [str(ev.details["new"]) for ev in evs]
    return states if first == "CLOSED" and states[0] == "LISTEN" else [first, *states]


@step("tcp-handshake")
def tcp_handshake(ctx: StepContext) -> StepResult:
    res = StepResult()
    lab, c, s = _pair(ctx, "tcp-handshake")
    with lab:
        async def main() -> None:
            await _sink(s, 80, bytearray())
            await asyncio.sleep(1.0)
            r, w = await c.open_connection(_ip(s), 80)
            await asyncio.sleep(0.1)
            w.close()
            await w.wait_closed()

        lab.run(main(), until=10)
        segs = [(d, v) for _, d, f in lab.frames if (v := tcp_view(f)) is not None][:3]
        names = [tcp.flags_str(v.flags) for _, v in segs]
        syn, synack, ack = (v for _, v in segs)
        cstates = _with_old(lab, "client")
        sstates = _with_old(lab, "server")
        est_c = cstates.index("ESTABLISHED") + 1
        est_s = sstates.index("ESTABLISHED") + 1
        res.facts = {
            "segments": f"{names[0]} client>server, {names[1]} server>client, "
                        f"{names[2]} client>server",
            "client ISN (SYN seq)": syn.seq,
            "server ISN (SYN+ACK seq)": synack.seq,
            "SYN+ACK ack = client ISN + 1": synack.ack == (syn.seq + 1) & 0xFFFFFFFF,
            "ACK ack = server ISN + 1": ack.ack == (synack.seq + 1) & 0xFFFFFFFF,
            "client states": " > ".join(cstates[:est_c]),
            "server states": " > ".join(sstates[:est_s]),
        }
        res.data = {"flags": names, "dirs": [d for d, _ in segs], "client": cstates[:est_c],
                    "server": sstates[:est_s], "syn": syn.seq, "synack": (synack.seq,
                    synack.ack), "ack": (ack.seq, ack.ack)}
        end = max(ev.time for ev in lab.select("tcp", "state") if ev.details["new"] ==
                  "ESTABLISHED")
        lines = ["client", "server"]
        rows = lab.rows(lines, kinds={"tcp"}, start=1.0, end=end)
        lab.diagram(res, rows, lines, "TCP 3-way handshake")
    return res


@step("tcp-retransmit")
def tcp_retransmit(ctx: StepContext) -> StepResult:
    res = StepResult()
    lab = Lab(ctx, "tcp-retransmit")
    with lab:
        c, s = lab.net.add_host("client"), lab.net.add_host("server")
        link = lab.connect("client", "server", delay="10ms", tap=True)
        data = _payload(12 * 1448, 1)
        pick = _FirstTransmission(len(data), {4})
        link.add_middleware(lambda d: Dropper(d, pick, "tour_loss"), reverse=False)
        lab.start()
        got = bytearray()

        async def main() -> None:
            await _sink(s, 80, got)
            await asyncio.sleep(1.0)
            await _send(c, _ip(s), 80, data)

        lab.run(main(), until=30)
        st = [x for x in connection_stats(lab.net.nodes, lab.events) if x.node == "client"][0]
        why = [str(ev.details.get("why")) for ev in lab.select("tcp", "retransmit", "client")]
        res.facts = {
            "segments of data": f"{len(data) // 1448} x 1448 bytes",
            "dropped on the link": pick.dropped,
            "retransmissions (why)": why,
            "fast retransmits": st.fast_retransmits,
            "RTO expiries": st.rto_expiries,
            "server got every byte, in order": bytes(got) == data,
        }
        res.data = {"dropped": pick.dropped, "why": why, "fast": st.fast_retransmits,
                    "rto": st.rto_expiries, "intact": bytes(got) == data}
        lines = ["client", "server"]
        rows = lab.rows(lines, kinds={"tcp"}, start=1.0)
        rows = [r for r in rows if isinstance(r, Note) and r.text == "RTO" or
                isinstance(r, Arrow) and ("len" in r.label or r.dropped or r.src == "server")]
        lab.diagram(res, cut(squeeze(rows, 3), 44), lines, "TCP retransmission")
    return res


class _FirstTransmission:
    """Picks the first transmission of the ``which``-th data segment (1-based) and of the
    segment carrying the last byte of ``total``: one fast retransmit, one RTO."""

    def __init__(self, total: int, which: set[int]) -> None:
        self.total = total
        self.which = which
        self.isn: int | None = None
        self.seen: set[int] = set()
        self.dropped = 0

    def __call__(self, frame: bytes) -> bool:
        v = tcp_view(frame)
        if v is None:
            return False
        if v.flags & tcp.SYN:
            self.isn = v.seq
            return False
        if not v.payload_len or self.isn is None:
            return False
        off = (v.seq - self.isn - 1) & 0xFFFFFFFF
        if off in self.seen:
            return False
        self.seen.add(off)
        if len(self.seen) in self.which or off + v.payload_len == self.total:
            self.dropped += 1
            return True
        return False


@step("checksum")
def checksum(ctx: StepContext) -> StepResult:
    res = StepResult()
    lab = Lab(ctx, "checksum")
    with lab:
        c, s = lab.net.add_host("client"), lab.net.add_host("server")
        link = lab.connect("client", "server", delay="10ms", tap=True)
        pick_tcp = nth(tcp_data, 3)
        pick_udp = nth(lambda f: udp_view(f) is not None, 2)
        link.add_middleware(lambda d: Mangler(d, lambda f: pick_tcp(f) or pick_udp(f), 5),
                            reverse=False)
        lab.start()
        got = bytearray()
        data = _payload(6 * 1448, 2)
        udp_got: list[bytes] = []

        async def main() -> None:
            await _sink(s, 80, got)
            rx = s.udp_socket(4)
            rx.bind(("", 7000))
            await asyncio.sleep(1.0)
            await _send(c, _ip(s), 80, data)
            tx = c.udp_socket(4)
            for i in range(3):
                await tx.sendto(b"datagram %d" % i, (_ip(s), 7000))
                await asyncio.sleep(0.05)
            while True:
                try:
                    udp_got.append((await asyncio.wait_for(rx.recvfrom(), 1.0))[0])
                except TimeoutError:
                    break

        lab.run(main(), until=30)
        corrupted = sum(d.get("corrupt", 0) for d in link.counters().values())
        st = [x for x in connection_stats(lab.net.nodes, lab.events) if x.node == "client"][0]
        res.facts = {
            "frames with a flipped bit": corrupted,
            "TCP segments dropped (bad checksum)": a_count(s, "drop.tcp.bad_checksum"),
            "TCP retransmissions": st.retransmits,
            "TCP data intact": bytes(got) == data,
            "UDP datagrams dropped (bad checksum)": a_count(s, "drop.udp.bad_checksum"),
            "UDP datagrams received": [d.decode() for d in udp_got],
        }
        res.data = {"corrupted": corrupted, "tcp_bad": a_count(s, "drop.tcp.bad_checksum"),
                    "udp_bad": a_count(s, "drop.udp.bad_checksum"), "udp_got": udp_got,
                    "retx": st.retransmits, "intact": bytes(got) == data}
        lines = ["client", "server"]
        rows = lab.rows(lines, kinds={"tcp", "udp"}, start=1.0)
        for ev in lab.events:
            if ev.node == "server" and ev.event == "drop" and "checksum" in str(
                    ev.details.get("reason")):
                rows.append(Note(ev.time, "server", f"{ev.layer} checksum bad: dropped"))
        rows.sort(key=lambda r: r.time)
        rows = [r for r in rows if isinstance(r, Note) and "checksum" in r.text
                or isinstance(r, Arrow) and ("len" in r.label or r.src == "server")]
        lab.diagram(res, cut(squeeze(rows, 3), 40), lines, "Checksums catch a flipped bit")
    return res


def _teardown(ctx: StepContext, name: str, until: float) -> tuple[Lab, dict[str, Any]]:
    lab, c, s = _pair(ctx, name)
    out: dict[str, Any] = {}

    async def main() -> None:
        await _sink(s, 80, bytearray(), close_after=0.2)
        await asyncio.sleep(1.0)
        r, w = await c.open_connection(_ip(s), 80)
        w.write(b"bye")
        await asyncio.sleep(0.5)
        out["close_at"] = lab.net.now
        w.close()
        await w.wait_closed()
        await r.read()
        await asyncio.sleep(until - lab.net.now - 0.001)

    lab.run(main(), until=until)
    return lab, out


@step("tcp-teardown")
def tcp_teardown(ctx: StepContext) -> StepResult:
    res = StepResult()
    lab, out = _teardown(ctx, "tcp-teardown", 5.0)
    with lab:
        t0 = out["close_at"]
        segs = [(d, tcp.flags_str(v.flags)) for t, d, f in lab.frames
                if t >= t0 and (v := tcp_view(f)) is not None]
        c_after = [x for x in _with_old(lab, "client") if x not in ("SYN-SENT", "CLOSED")]
        s_after = [x for x in _with_old(lab, "server")
                   if x not in ("LISTEN", "SYN-RECEIVED")]
        res.facts = {
            "segments after close()": ", ".join(f"{f} {d}" for d, f in segs),
            "client (closes first)": " > ".join(c_after),
            "server": " > ".join(s_after),
        }
        res.data = {"segs": segs, "client": c_after, "server": s_after}
        lines = ["client", "server"]
        rows = lab.rows(lines, kinds={"tcp"}, start=t0 - 0.001)
        lab.diagram(res, rows, lines, "TCP 4-way teardown")
    return res


@step("time-wait")
def time_wait(ctx: StepContext) -> StepResult:
    res = StepResult()
    wall = time.perf_counter()
    lab, out = _teardown(ctx, "time-wait", 70.0)
    wall = time.perf_counter() - wall
    with lab:
        evs = lab.select("tcp", "state", "client")
        tw = next(ev.time for ev in evs if ev.details["new"] == "TIME-WAIT")
        closed = next(ev.time for ev in evs if ev.details["new"] == "CLOSED" and ev.time > tw)
        c = lab.net.node("client")
        msl = c.tcp.config.msl
        res.facts = {
            "MSL": f"{msl:g} s",
            "TIME-WAIT entered at": f"{tw:.6f} s (virtual)",
            "CLOSED at": f"{closed:.6f} s (virtual)",
            "time spent in TIME-WAIT": f"{closed - tw:.6f} s = 2 x MSL",
            "wall time for the whole run": f"{wall:.2f} s",
        }
        res.data = {"tw": tw, "closed": closed, "msl": msl, "wall": wall}
        lines = ["client", "server"]
        rows = lab.rows(lines, kinds={"tcp"}, start=out["close_at"] - 0.001)
        lab.diagram(res, rows, lines, "TIME-WAIT lasts 2 MSL")
    return res


@step("udp")
def udp_step(ctx: StepContext) -> StepResult:
    res = StepResult()
    lab = Lab(ctx, "udp")
    with lab:
        a, b = lab.net.add_host("a"), lab.net.add_host("b")
        link = lab.connect("a", "b", delay="10ms", tap=True)
        link.add_middleware(lambda d: Dropper(d, nth(lambda f: udp_view(f) is not None, 2),
                                              "tour_loss"), reverse=False)
        lab.start()
        got: list[bytes] = []
        msgs = [b"first", b"second", b"third"]

        async def main() -> None:
            rx = b.udp_socket(4)
            rx.bind(("", 7000))
            tx = a.udp_socket(4)
            await asyncio.sleep(1.0)
            for m in msgs:
                await tx.sendto(m, (_ip(b), 7000))
                await asyncio.sleep(0.01)
            while True:
                try:
                    got.append((await asyncio.wait_for(rx.recvfrom(), 3.0))[0])
                except TimeoutError:
                    break

        lab.run(main(), until=30)
        after = [f for t, d, f in lab.frames if t >= 1.0 and d == "a>b"]
        udps = [u for f in after if (u := udp_view(f)) is not None]
        first_ip = next(f for f in after if l4(f) is not None)
        hdr = udps[0].length - len(udps[0].payload) if udps else None
        res.facts = {
            "UDP header": f"{hdr} bytes (ports, length, checksum)",
            "first IP packet a sent": f"protocol {l4(first_ip)[0]} (17 = UDP): no handshake",
            "datagrams sent": len(msgs),
            "UDP frames a put on the link": len(udps),
            "lost on the link": lab.net.counters()["links"]["a-b"]["a>b"].get(
                "drop.tour_loss", 0),
            "b received": [m.decode() for m in got],
            "retransmissions": "none: UDP does not resend",
        }
        res.data = {"hdr": hdr, "got": got, "first_proto": l4(first_ip)[0],
                    "tcp_frames": sum(1 for f in after if tcp_view(f) is not None)}
        lines = ["a", "b"]
        rows = lab.rows(lines, kinds={"udp"}, start=1.0)
        lab.diagram(res, rows, lines, "UDP: no handshake, no resend")
    return res


@step("tcp-vs-udp")
def tcp_vs_udp(ctx: StepContext) -> StepResult:
    res = StepResult()
    lab = Lab(ctx, "tcp-vs-udp")
    with lab:
        a, b = lab.net.add_host("a"), lab.net.add_host("b")
        lab.connect("a", "b", delay="10ms", loss=0.1, reorder=0.2, reorder_delay="15ms")
        lab.start()
        got = bytearray()
        data = _payload(30000, 4)
        seqs: list[int] = []
        n = 40

        async def udp_side() -> None:
            tx = a.udp_socket(4)
            for i in range(n):
                await tx.sendto(i.to_bytes(2, "big") + b"." * 100, (_ip(b), 7000))
                await asyncio.sleep(0.005)

        async def main() -> None:
            await _sink(b, 80, got)
            rx = b.udp_socket(4)
            rx.bind(("", 7000))
            await asyncio.sleep(1.0)
            await asyncio.gather(_send(a, _ip(b), 80, data), udp_side())
            while True:
                try:
                    d = (await asyncio.wait_for(rx.recvfrom(), 2.0))[0]
                except TimeoutError:
                    break
                seqs.append(int.from_bytes(d[:2], "big"))

        lab.run(main(), until=60)
        st = [x for x in connection_stats(lab.net.nodes, lab.events) if x.node == "a"][0]
        late = sum(1 for i in range(1, len(seqs)) if seqs[i] < max(seqs[:i]))
        c = lab.net.counters()["links"]["a-b"]["a>b"]
        res.facts = {
            "link a>b": f"loss 10%, reorder 20%: {c.get('drop.loss', 0)} frames lost, "
                        f"{c.get('reorder', 0)} reordered",
            "TCP: bytes delivered": f"{len(got)} of {len(data)}, in order: "
                                    f"{'yes' if bytes(got) == data else 'NO'}",
            "TCP: retransmissions": st.retransmits,
            "UDP: datagrams delivered": f"{len(seqs)} of {n}",
            "UDP: arrived out of order": late,
            "UDP: first arrivals": seqs[:12],
        }
        res.data = {"tcp_ok": bytes(got) == data, "udp": seqs, "n": n, "late": late,
                    "retx": st.retransmits}
        lines = ["a", "b"]
        rows = lab.rows(lines, kinds={"udp"}, start=1.0, notes=False)
        lab.diagram(res, cut(rows, 24), lines, "UDP under loss and reordering")
    return res


# -- the network layer ------------------------------------------------------------------------


@step("routing-ttl")
def routing_ttl(ctx: StepContext) -> StepResult:
    res = StepResult()
    lab = Lab(ctx, "routing-ttl")
    with lab:
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
            out["tr"] = await a.traceroute(_ip(b), method="icmp", probes=1, wait=1.0, out=None)
            out["ping"] = await a.ping(_ip(b), count=1, out=None)
            out["ttl1"] = await a.ping(_ip(b), count=1, ttl=1, timeout=1.0, out=None)

        lab.run(main(), until=30)
        ttl_at_b = [ip.ttl for ip in _ipv4_frames(lab.sent("r2>b")) if ip.proto == 1]
        tr = out["tr"]
        res.facts = {
            "traceroute a -> b (hops)": tr.addresses,
            "routers' addresses": f"r1 {_ip(r1)}, r2 {_ip(r2)}",
            "TTL a sends / TTL arriving at b": f"64 / {ttl_at_b[-1] if ttl_at_b else None}",
            "ping with TTL 1": out["ttl1"].errors[0] if out["ttl1"].errors else "no error",
            "Time Exceeded sent by r1": a_count(r1, "icmp.tx.11/0"),
        }
        res.data = {"hops": tr.addresses, "r1": [str(x).split("/")[0] for x in r1.addresses()],
                    "r2": [str(x).split("/")[0] for x in r2.addresses()], "b": _ip(b),
                    "ttl_at_b": ttl_at_b, "te": a_count(r1, "icmp.tx.11/0")}
        res.notes = ["r1's routing table (longest prefix wins):"] + [
            "  " + line for line in str(r1.routes).splitlines() if "." in line.split()[0]]
        lines = ["a", "r1", "r2", "b"]
        rows = lab.rows(lines, kinds={"icmp"}, start=1.0)
        lab.diagram(res, cut(rows, 30), lines, "Routing and TTL: traceroute")
    return res


@step("ping")
def ping_step(ctx: StepContext) -> StepResult:
    res = StepResult()
    lab = Lab(ctx, "ping")
    with lab:
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
            out["p"] = await a.ping(_ip(b), count=3, out=lines_out.append)

        lab.run(main(), until=30)
        p = out["p"]
        res.facts = {
            "echo requests / replies": f"{p.transmitted} / {p.received}",
            "round-trip times (ms)": [round(x * 1000, 3) for x in p.rtts],
            "one-way delay a-r-b": "5 ms + 10 ms: RTT >= 30 ms",
        }
        res.data = {"tx": p.transmitted, "rx": p.received, "rtts": p.rtts}
        res.notes = lines_out[:6]
        lines = ["a", "r", "b"]
        rows = lab.rows(lines, kinds={"icmp"}, start=1.0)
        lab.diagram(res, rows, lines, "ICMP echo")
    return res


@step("arp")
def arp_step(ctx: StepContext) -> StepResult:
    from stacklab.wire import arp

    res = StepResult()
    lab = Lab(ctx, "arp")
    with lab:
        a, b = lab.net.add_host("a"), lab.net.add_host("b")
        lab.connect("a", "b", delay="5ms", tap=True)
        lab.start()
        out: dict[str, Any] = {}

        async def main() -> None:
            await asyncio.sleep(1.0)
            out["before"] = str(a.neighbors)
            out["p"] = await a.ping(_ip(b), count=1, family=4, out=None)
            out["after"] = str(a.neighbors)

        lab.run(main(), until=10)
        req = rep = echo_t = None
        rep_t = None
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
                 and ev.details.get("ip") == _ip(b)]
        res.facts = {
            "who-has sent to": f"{req[0] if req else None} (broadcast)",
            "reply sent to": f"{rep[0] if rep else None} (a's MAC, unicast)",
            "b's MAC in the reply": rep[1] if rep else None,
            "echo request waited until": f"{echo_t:.6f} s (reply sent at {rep_t:.6f}, "
                                         f"arrives 5 ms later)" if echo_t and rep_t else None,
            "a's cache entry for b": cache,
        }
        res.data = {"req": req, "rep": rep, "echo_t": echo_t, "rep_t": rep_t, "cache": cache,
                    "a_mac": lab.net.node("a").interfaces[0].mac.hex(":")
                    if hasattr(lab.net.node("a").interfaces[0], "mac") else None}
        res.notes = ["ip neigh on a:"] + ["  " + x for x in out["after"].splitlines()
                                           if "." in x.split(" ")[0]]
        lines = ["a", "b"]
        rows = lab.rows(lines, kinds={"arp", "icmp"}, start=1.0)
        lab.diagram(res, rows, lines, "ARP: who-has, is-at")
    return res


# -- the application layer --------------------------------------------------------------------


def _text_of(payload: bytes) -> str:
    """The first line of a payload when it is text; ``<N bytes of binary>`` otherwise."""
    line = payload[:120].split(b"\n")[0].rstrip(b"\r")
    if len(line) >= 3 and all(32 <= ch < 127 for ch in line):
        return line.decode("ascii")
    return f"<{len(payload)} bytes, binary>"


def _app_rows(lab: Lab, lines: list[str], start: float, port: int | None = None) -> list[Any]:
    """TCP rows between client and server, data segments labelled with what they carry."""
    payloads: dict[str, list[bytes]] = {}
    for _, d, f in lab.frames:
        v = tcp_view(f)
        if v is None:
            continue
        payloads.setdefault(d, []).append(bytes(v.payload) if v.payload_len else b"")
    index: dict[str, int] = {}
    rows: list[Any] = []
    for r in lab.rows(lines, kinds={"tcp"}):
        if isinstance(r, Arrow):
            key = f"{r.src}>{r.dst}"
            i = index.get(key, 0)
            index[key] = i + 1
            data = payloads.get(key, [])[i] if i < len(payloads.get(key, [])) else b""
            if r.time < start:
                continue
            if data:
                r = Arrow(r.t_send, r.t_recv, r.src, r.dst, f"len {len(data)}: {_text_of(data)}")
            elif "[S" not in r.label and "F" not in r.label.split("]")[0]:
                continue  # bare ACKs
        elif r.time < start:
            continue
        rows.append(r)
    return rows


def _wire_text(lab: Lab, direction: str) -> bytes:
    return b"".join(bytes(v.payload) for _, d, f in lab.frames
                    if d == direction and (v := tcp_view(f)) is not None and v.payload_len)


@step("http")
def http_step(ctx: StepContext) -> StepResult:
    from stacklab.apps.http import http_get, serve_http

    res = StepResult()
    lab, c, s = _pair(ctx, "http", delay="5ms")
    with lab:
        out: dict[str, Any] = {}

        async def main() -> None:
            server = await serve_http(s, 80, bytes=3000)
            await asyncio.sleep(1.0)
            out["r"] = await http_get(c, _ip(s), "/hello.txt", 80)
            await server.close()

        lab.run(main(), until=30)
        r = out["r"]
        up = _wire_text(lab, "client>server")
        down = _wire_text(lab, "server>client")
        req_lines = up.split(b"\r\n\r\n")[0].decode().split("\r\n")
        status = down.split(b"\r\n")[0].decode()
        res.facts = {
            "request line": req_lines[0],
            "request headers": [h.split(":")[0] for h in req_lines[1:]],
            "status line": status,
            "response body": f"{len(r.body)} bytes, sha256 {r.sha256[:16]}...",
            "body readable on the wire": r.body[:64] in down,
        }
        res.data = {"status": r.status, "request": req_lines[0], "status_line": status,
                    "body_on_wire": r.body[:64] in down, "body": len(r.body)}
        lines = ["client", "server"]
        lab.diagram(res, cut(_app_rows(lab, lines, 1.0), 24), lines, "HTTP/1.1 GET")
    return res


@step("ssh")
def ssh_step(ctx: StepContext) -> StepResult:
    from stacklab.apps.ssh import serve_ssh, ssh_exec

    res = StepResult()
    lab, c, s = _pair(ctx, "ssh", delay="5ms")
    with lab:
        out: dict[str, Any] = {}
        secret = "echo the-secret-word-is-swordfish"

        async def main() -> None:
            server = await serve_ssh(s, 22)
            await asyncio.sleep(1.0)
            out["r"] = await ssh_exec(c, _ip(s), 22, secret,
                                      host_key=server.host_public_key)
            await server.close()

        lab.run(main(), until=60)
        r = out["r"]
        up = _wire_text(lab, "client>server")
        down = _wire_text(lab, "server>client")
        banners = [x.split(b"\r\n")[0].decode() for x in (up, down)]
        res.facts = {
            "client banner (clear text)": banners[0],
            "server banner (clear text)": banners[1],
            "command's output": r.stdout.decode().strip(),
            "output visible on the wire": b"swordfish" in up + down,
            "bytes on the wire after the banners": len(up) + len(down) - sum(
                len(b) + 2 for b in banners),
        }
        res.data = {"banners": banners, "stdout": r.stdout, "leak": b"swordfish" in up + down,
                    "exit": r.exit_status}
        lines = ["client", "server"]
        lab.diagram(res, cut(_app_rows(lab, lines, 1.0), 20), lines, "SSH: all ciphertext")
    return res


@step("ftp")
def ftp_step(ctx: StepContext) -> StepResult:
    from stacklab.apps.ftp import ftp_get, serve_ftp

    res = StepResult()
    lab, c, s = _pair(ctx, "ftp", delay="5ms")
    with lab:
        out: dict[str, Any] = {}

        async def main() -> None:
            server = await serve_ftp(s, 21, bytes=5000)
            await asyncio.sleep(1.0)
            out["r"] = await ftp_get(c, _ip(s), 21, "/file.bin", mode="passive")
            await server.close()

        lab.run(main(), until=60)
        r = out["r"]
        conns = [x for x in connection_stats(lab.net.nodes, lab.events) if x.node == "client"]
        control = [x for x in conns if x.remote.endswith(":21")]
        data_c = [x for x in conns if not x.remote.endswith(":21")]
        up = _wire_text(lab, "client>server").decode("latin-1")
        verbs = [ln.split(" ")[0] for ln in up.split("\r\n") if ln[:4].isalpha()]
        res.facts = {
            "connections": len(conns),
            "control": f"{control[0].local} > {control[0].remote}" if control else None,
            "data (passive)": f"{data_c[0].local} > {data_c[0].remote}" if data_c else None,
            "commands sent": verbs,
            "file": f"{r.bytes} bytes, sha256 {r.sha256[:16]}...",
            "bytes on the data connection": data_c[0].bytes_received if data_c else None,
        }
        res.data = {"conns": len(conns), "verbs": verbs, "bytes": r.bytes,
                    "data_bytes": data_c[0].bytes_received if data_c else None,
                    "control": bool(control)}
        lines = ["client", "server"]
        lab.diagram(res, cut(_app_rows(lab, lines, 1.0), 30), lines, "FTP: control and data")
    return res


@step("smtp")
def smtp_step(ctx: StepContext) -> StepResult:
    from stacklab.apps.smtp import make_message, send_mail, serve_smtp

    res = StepResult()
    lab, c, s = _pair(ctx, "smtp", delay="5ms")
    with lab:
        out: dict[str, Any] = {}
        message = make_message("alice@client.stacklab", "bob@server.stacklab", 600)

        async def main() -> None:
            server = await serve_smtp(s, 25)
            await asyncio.sleep(1.0)
            out["r"] = await send_mail(c, _ip(s), 25, "alice@client.stacklab",
                                       "bob@server.stacklab", message)
            out["stored"] = server.last_sha256
            await server.close()

        lab.run(main(), until=60)
        r = out["r"]
        up = _wire_text(lab, "client>server").decode("latin-1")
        down = _wire_text(lab, "server>client").decode("latin-1")
        cmds = [ln.split(":")[0].split(" ")[0] if not ln.startswith(("MAIL", "RCPT"))
                else " ".join(ln.split(" ")[:2]).split(":")[0]
                for ln in up.split("\r\n") if ln[:4].isupper() and ln[:4].isalpha()]
        codes = [ln[:3] for ln in down.split("\r\n") if ln[:3].isdigit() and ln[3:4] == " "]
        res.facts = {
            "client commands": cmds,
            "server replies": codes,
            "message": f"{len(message)} bytes; stored copy sha256 matches: "
                       f"{'yes' if out['stored'] == _sha(message) else 'NO'}",
            "final reply": f"{r.code} {r.reply}"[:50],
        }
        res.data = {"cmds": cmds, "codes": codes, "stored_ok": out["stored"] == _sha(message)}
        lines = ["client", "server"]
        lab.diagram(res, cut(_app_rows(lab, lines, 1.0), 30), lines, "SMTP: one message")
    return res
