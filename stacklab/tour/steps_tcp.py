"""The tour's transport chapter: TCP's handshake, retransmission, checksums, teardown and
TIME-WAIT, then UDP alone and side by side with TCP under loss."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from stacklab.trace.diagram import Arrow, Note
from stacklab.trace.stats import ConnStats, connection_stats
from stacklab.wire import tcp

from .lab import (
    Dropper,
    Lab,
    Mangler,
    addr,
    counter,
    cut,
    l4,
    lab_step,
    nth,
    payload,
    send,
    sink,
    squeeze,
    tcp_data,
    tcp_view,
    udp_view,
)
from .registry import StepResult


def _with_old(lab: Lab, node: str) -> list[str]:
    """The TCP states ``node`` went through, starting from the one before the first change
    (a listener's CLOSED before LISTEN left out)."""
    evs = lab.select("tcp", "state", node)
    if not evs:
        return []
    first = str(evs[0].details["old"])
    states = [str(ev.details["new"]) for ev in evs]
    return states if first == "CLOSED" and states[0] == "LISTEN" else [first, *states]


def _stats(lab: Lab, node: str) -> ConnStats:
    """The figures of ``node``'s first connection."""
    return [x for x in connection_stats(lab.net.nodes, lab.events) if x.node == node][0]


@lab_step("tcp-handshake")
def tcp_handshake(lab: Lab, res: StepResult) -> None:
    c, s = lab.pair()

    async def main() -> None:
        await sink(s, 80, bytearray())
        await asyncio.sleep(1.0)
        r, w = await c.open_connection(addr(s), 80)
        await asyncio.sleep(0.1)
        w.close()
        await w.wait_closed()

    lab.run(main(), until=10)
    segs = [(d, v) for _, d, f in lab.frames if (v := tcp_view(f)) is not None][:3]
    flags = [(tcp.flags_str(v.flags), d) for d, v in segs]
    syn, synack, ack = (v for _, v in segs)
    cstates = _with_old(lab, "client")
    sstates = _with_old(lab, "server")
    cstates = cstates[:cstates.index("ESTABLISHED") + 1]
    sstates = sstates[:sstates.index("ESTABLISHED") + 1]
    res.show("segments", flags, ", ".join(f"{f} {d}" for f, d in flags))
    res.show("client ISN (SYN seq)", syn.seq)
    res.show("server ISN (SYN+ACK seq)", synack.seq)
    res.show("SYN+ACK ack = client ISN + 1", synack.ack == (syn.seq + 1) & 0xFFFFFFFF)
    res.show("ACK ack = server ISN + 1", ack.ack == (synack.seq + 1) & 0xFFFFFFFF)
    res.keep("SYN+ACK (seq, ack)", (synack.seq, synack.ack))
    res.keep("ACK (seq, ack)", (ack.seq, ack.ack))
    res.show("client states", cstates, " > ".join(cstates))
    res.show("server states", sstates, " > ".join(sstates))
    end = max(ev.time for ev in lab.select("tcp", "state") if ev.details["new"] ==
              "ESTABLISHED")
    lines = ["client", "server"]
    rows = lab.rows(lines, kinds={"tcp"}, start=1.0, end=end)
    lab.diagram(res, rows, lines, "TCP 3-way handshake")


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


@lab_step("tcp-retransmit")
def tcp_retransmit(lab: Lab, res: StepResult) -> None:
    c, s = lab.net.add_host("client"), lab.net.add_host("server")
    link = lab.connect("client", "server", delay="10ms", tap=True)
    data = payload(12 * 1448, 1)
    pick = _FirstTransmission(len(data), {4})
    link.add_middleware(lambda d: Dropper(d, pick, "tour_loss"), reverse=False)
    lab.start()
    got = bytearray()

    async def main() -> None:
        await sink(s, 80, got)
        await asyncio.sleep(1.0)
        await send(c, addr(s), 80, data)

    lab.run(main(), until=30)
    st = _stats(lab, "client")
    res.show("segments of data", len(data) // 1448, f"{len(data) // 1448} x 1448 bytes")
    res.show("dropped on the link", pick.dropped)
    res.show("retransmissions (why)",
             [str(ev.details.get("why")) for ev in lab.select("tcp", "retransmit", "client")])
    res.show("fast retransmits", st.fast_retransmits)
    res.show("RTO expiries", st.rto_expiries)
    res.show("server got every byte, in order", bytes(got) == data)
    lines = ["client", "server"]
    rows = lab.rows(lines, kinds={"tcp"}, start=1.0)
    rows = [r for r in rows if isinstance(r, Note) and r.text == "RTO" or
            isinstance(r, Arrow) and ("len" in r.label or r.dropped or r.src == "server")]
    lab.diagram(res, cut(squeeze(rows, 3), 44), lines, "TCP retransmission")


@lab_step("checksum")
def checksum(lab: Lab, res: StepResult) -> None:
    c, s = lab.net.add_host("client"), lab.net.add_host("server")
    link = lab.connect("client", "server", delay="10ms", tap=True)
    pick_tcp = nth(tcp_data, 3)
    pick_udp = nth(lambda f: udp_view(f) is not None, 2)
    link.add_middleware(lambda d: Mangler(d, lambda f: pick_tcp(f) or pick_udp(f), 5),
                        reverse=False)
    lab.start()
    got = bytearray()
    data = payload(6 * 1448, 2)
    udp_got: list[bytes] = []

    async def main() -> None:
        await sink(s, 80, got)
        rx = s.udp_socket(4)
        rx.bind(("", 7000))
        await asyncio.sleep(1.0)
        await send(c, addr(s), 80, data)
        tx = c.udp_socket(4)
        for i in range(3):
            await tx.sendto(b"datagram %d" % i, (addr(s), 7000))
            await asyncio.sleep(0.05)
        while True:
            try:
                udp_got.append((await asyncio.wait_for(rx.recvfrom(), 1.0))[0])
            except TimeoutError:
                break

    lab.run(main(), until=30)
    res.show("frames with a flipped bit",
             sum(d.get("corrupt", 0) for d in link.counters().values()))
    res.show("TCP segments dropped (bad checksum)", counter(s, "drop.tcp.bad_checksum"))
    res.show("TCP retransmissions", _stats(lab, "client").retransmits)
    res.show("TCP data intact", bytes(got) == data)
    res.show("UDP datagrams dropped (bad checksum)", counter(s, "drop.udp.bad_checksum"))
    res.show("UDP datagrams received", [d.decode() for d in udp_got])
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


def _teardown(lab: Lab, until: float, lose_last_ack: bool = False) -> tuple[Any, float]:
    """A connection the client closes first, run until ``until``: (the client, close time).
    ``lose_last_ack`` drops the client's ACK of the server's FIN (its first pure ACK after its
    own FIN), so the server resends its FIN into the client's TIME-WAIT."""
    c, s = lab.net.add_host("client"), lab.net.add_host("server")
    link = lab.connect("client", "server", delay="10ms", tap=True)
    if lose_last_ack:
        seen = {"fin": False, "dropped": False}

        def last_ack(frame: bytes) -> bool:
            v = tcp_view(frame)
            if v is None or seen["dropped"]:
                return False
            if v.flags & tcp.FIN:
                seen["fin"] = True
                return False
            seen["dropped"] = seen["fin"] and not v.payload_len
            return seen["dropped"]

        link.add_middleware(lambda d: Dropper(d, last_ack, "tour_loss"), reverse=False)
    lab.start()
    out: dict[str, float] = {}

    async def main() -> None:
        await sink(s, 80, bytearray(), close_after=0.2)
        await asyncio.sleep(1.0)
        r, w = await c.open_connection(addr(s), 80)
        w.write(b"bye")
        await asyncio.sleep(0.5)
        out["close_at"] = lab.net.now
        w.close()
        await w.wait_closed()
        await r.read()
        await asyncio.sleep(until - lab.net.now - 0.001)

    lab.run(main(), until=until)
    return c, out["close_at"]


@lab_step("tcp-teardown")
def tcp_teardown(lab: Lab, res: StepResult) -> None:
    _, t0 = _teardown(lab, 5.0)
    segs = [(tcp.flags_str(v.flags), d) for t, d, f in lab.frames
            if t >= t0 and (v := tcp_view(f)) is not None]
    c_after = [x for x in _with_old(lab, "client") if x not in ("SYN-SENT", "CLOSED")]
    s_after = [x for x in _with_old(lab, "server") if x not in ("LISTEN", "SYN-RECEIVED")]
    res.show("segments after close()", segs, ", ".join(f"{f} {d}" for f, d in segs))
    res.show("client (closes first)", c_after, " > ".join(c_after))
    res.show("server", s_after, " > ".join(s_after))
    lines = ["client", "server"]
    rows = lab.rows(lines, kinds={"tcp"}, start=t0 - 0.001)
    lab.diagram(res, rows, lines, "TCP 4-way teardown")


@lab_step("time-wait")
def time_wait(lab: Lab, res: StepResult) -> None:
    """The part after the FIN exchange the tcp-teardown step draws: the client's last ACK is
    lost, the server resends its FIN, TIME-WAIT answers it and waits 2*MSL again
    (RFC 9293 §3.10.7.4), then CLOSED."""
    wall = time.perf_counter()
    c, _ = _teardown(lab, 70.0, lose_last_ack=True)
    wall = time.perf_counter() - wall
    evs = lab.select("tcp", "state", "client")
    tw = next(ev.time for ev in evs if ev.details["new"] == "TIME-WAIT")
    closed = next(ev.time for ev in evs if ev.details["new"] == "CLOSED" and ev.time > tw)
    fins = [t for t, d, f in lab.frames
            if d == "server>client" and (v := tcp_view(f)) is not None and v.flags & tcp.FIN]
    late = fins[-1]
    reack = next((t for t, d, f in lab.frames if d == "client>server" and t > late), None)
    msl = c.tcp.config.msl
    res.show("MSL", msl, f"{msl:g} s")
    res.show("TIME-WAIT entered at", tw, f"{tw:.6f} s (virtual)")
    res.show("server FINs (the first one's ACK lost)", len(fins))
    res.show("client ACKs the resent FIN at", reack,
             f"{reack:.6f} s: 2 x MSL starts again" if reack is not None else "never")
    res.show("CLOSED at", closed, f"{closed:.6f} s (virtual)")
    res.show("time spent in TIME-WAIT", closed - tw, f"{closed - tw:.6f} s")
    res.show("wall time for the whole run", wall, f"{wall:.2f} s")
    lines = ["client", "server"]
    rows = lab.rows(lines, kinds={"tcp"}, start=fins[0] - 0.001)
    lab.diagram(res, rows, lines, "TIME-WAIT: a late FIN is ACKed again, then 2 MSL")


@lab_step("udp")
def udp_step(lab: Lab, res: StepResult) -> None:
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
            await tx.sendto(m, (addr(b), 7000))
            await asyncio.sleep(0.01)
        while True:
            try:
                got.append((await asyncio.wait_for(rx.recvfrom(), 3.0))[0])
            except TimeoutError:
                break

    lab.run(main(), until=30)
    after = [f for t, d, f in lab.frames if t >= 1.0 and d == "a>b"]
    udps = [u for f in after if (u := udp_view(f)) is not None]
    first = next(hit for f in after if (hit := l4(f)) is not None)
    hdr = udps[0].length - len(udps[0].payload) if udps else None
    res.show("UDP header", hdr, f"{hdr} bytes (ports, length, checksum)")
    res.show("first IP packet a sent", first[0], f"protocol {first[0]} (17 = UDP): no handshake")
    res.show("datagrams sent", len(msgs))
    res.show("UDP frames a put on the link", len(udps))
    res.show("lost on the link",
             lab.net.counters()["links"]["a-b"]["a>b"].get("drop.tour_loss", 0))
    res.show("b received", [m.decode() for m in got])
    res.show("retransmissions", "none: UDP does not resend")
    res.keep("TCP frames", sum(1 for f in after if tcp_view(f) is not None))
    lines = ["a", "b"]
    rows = lab.rows(lines, kinds={"udp"}, start=1.0)
    lab.diagram(res, rows, lines, "UDP: no handshake, no resend")


@lab_step("tcp-vs-udp")
def tcp_vs_udp(lab: Lab, res: StepResult) -> None:
    a, b = lab.net.add_host("a"), lab.net.add_host("b")
    lab.connect("a", "b", delay="10ms", loss=0.1, reorder=0.2, reorder_delay="15ms")
    lab.start()
    got = bytearray()
    data = payload(30000, 4)
    seqs: list[int] = []
    n = 40

    async def udp_side() -> None:
        tx = a.udp_socket(4)
        for i in range(n):
            await tx.sendto(i.to_bytes(2, "big") + b"." * 100, (addr(b), 7000))
            await asyncio.sleep(0.005)

    async def main() -> None:
        await sink(b, 80, got)
        rx = b.udp_socket(4)
        rx.bind(("", 7000))
        await asyncio.sleep(1.0)
        await asyncio.gather(send(a, addr(b), 80, data), udp_side())
        while True:
            try:
                d = (await asyncio.wait_for(rx.recvfrom(), 2.0))[0]
            except TimeoutError:
                break
            seqs.append(int.from_bytes(d[:2], "big"))

    lab.run(main(), until=60)
    c = lab.net.counters()["links"]["a-b"]["a>b"]
    intact = bytes(got) == data
    res.show("link a>b", c.get("drop.loss", 0),
             f"loss 10%, reorder 20%: {c.get('drop.loss', 0)} frames lost, "
             f"{c.get('reorder', 0)} reordered")
    res.show("TCP: bytes delivered", intact,
             f"{len(got)} of {len(data)}, in order: {'yes' if intact else 'NO'}")
    res.show("TCP: retransmissions", _stats(lab, "a").retransmits)
    res.keep("UDP: datagrams sent", n)
    res.show("UDP: datagrams delivered", len(seqs), f"{len(seqs)} of {n}")
    res.show("UDP: arrived out of order",
             sum(1 for i in range(1, len(seqs)) if seqs[i] < max(seqs[:i])))
    res.show("UDP: first arrivals", seqs[:12])
    lines = ["a", "b"]
    rows = lab.rows(lines, kinds={"udp"}, start=1.0, notes=False)
    lab.diagram(res, cut(rows, 24), lines, "UDP under loss and reordering")
