"""The tour's chapter on a real network's services: a home network behind NAT, a multicast
stream.

Every fact is measured from the run (the nodes' counters, the NAT's connection table, what the
far end saw, frames tapped on the links), as in the other chapters; the tests check them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from stacklab.wire.addr import ip_str

from .lab import Lab, addr, counter, lab_step, payload
from .registry import StepResult


@lab_step("home-nat")
def home_nat(lab: Lab, res: StepResult) -> None:
    net = lab.net
    laptop, home, isp, web = (net.add_host("laptop"), net.add_router("home"),
                              net.add_router("isp"), net.add_host("web"))
    lab.connect("laptop", "home", delay="1ms", tap=True)
    lab.connect("home", "isp", delay="10ms", tap=True)  # home's eth1: the outside
    lab.connect("isp", "web", delay="5ms", tap=True)
    home.enable_nat("eth1")
    lab.start()
    out: dict[str, Any] = {}
    data = payload(1000)

    async def handle(reader: Any, writer: Any) -> None:
        out["peer"] = writer.get_extra_info("peername")
        writer.write(await reader.readexactly(len(data)))
        await writer.drain()
        await reader.read()
        writer.close()

    async def main() -> None:
        await web.start_server(handle, 80)
        await asyncio.sleep(1.0)
        reader, writer = await laptop.open_connection(addr(web), 80)
        out["local"] = writer.get_extra_info("sockname")
        writer.write(data)
        out["echo"] = await reader.readexactly(len(data))
        out["conntrack"] = home.nat.describe(net.now) if home.nat else []
        writer.close()
        await asyncio.sleep(0.5)
        out["trace"] = await laptop.traceroute(addr(web), wait=1.0, out=None)

    lab.run(main(), until=30)
    res.show("laptop's address", addr(laptop))
    res.show("home's outside address", ip_str(home.interfaces[1].v4[0][0]), key="outside")
    res.show("laptop's socket", f"{out['local'][0]}:{out['local'][1]}", key="local")
    res.show("web saw the peer", f"{out['peer'][0]}:{out['peer'][1]}", key="peer")
    res.show("source port kept", out["peer"][1] == out["local"][1], key="port kept")
    res.show("echoed intact", out["echo"] == data, key="echo")
    res.show("isp's route to 10.0.1.0/24", isp.routes.lookup(bytes([10, 0, 1, 1])) is not None,
             "none (only the outside address is reachable)", key="isp route")
    res.show("connections tracked", len(out["conntrack"]), key="tracked")
    res.show("traceroute hops", out["trace"].addresses, key="hops")
    res.show("ICMP errors translated back", counter(home, "nat.icmp_error_translated"),
             key="icmp translated")
    res.notes = ["conntrack -L on home:", *out["conntrack"]]
    lines = ["laptop", "home", "isp", "web"]
    rows = lab.rows(lines, kinds={"tcp"}, start=1.0, end=1.066)
    lab.diagram(res, rows, lines, "masquerade: the source rewritten on the way out")


@lab_step("multicast-stream")
def multicast_stream(lab: Lab, res: StepResult) -> None:
    net = lab.net
    net.add_switch("sw")
    camera, screen, printer = (net.add_host("camera"), net.add_host("screen"),
                               net.add_host("printer"))
    r = net.add_router("r")
    lab.connect("camera", "sw", delay="1ms", tap=True)
    lab.connect("screen", "sw", delay="1ms", tap=True)
    lab.connect("printer", "sw", delay="1ms", tap=True)
    lab.connect("r", "sw", delay="1ms", tap=True)
    lab.start()
    group = "239.1.2.3"
    out: dict[str, Any] = {}

    async def main() -> None:
        r.igmp.start_querier(0, net.now)
        rx = screen.udp_socket(4)
        rx.bind(("", 5004))
        rx.join_group(group)
        idle = printer.udp_socket(4)
        idle.bind(("", 5004))
        await asyncio.sleep(1.0)
        tx = camera.udp_socket(4)
        for i in range(10):
            await tx.sendto(b"frame %d" % i, (group, 5004))
            await asyncio.sleep(0.02)
        out["got"] = [await rx.recv() for _ in range(10)]
        out["members"] = r.igmp.members(0, net.now)
        rx.leave_group(group)
        await asyncio.sleep(3.0)
        out["after"] = r.igmp.members(0, net.now)

    lab.run(main(), until=20)
    data = [f for _, f in lab.sent("sw>printer") if b"frame " in f]
    res.show("group", group)
    res.show("destination MAC", data[0][:6].hex(":") if data else None,
             key="mac")
    res.show("TTL of the stream", data[0][22] if data else None, key="ttl")
    res.show("IGMP messages from screen", counter(screen, "igmp.tx"), key="reports")
    res.show("screen received", len(out["got"]), f"{len(out['got'])} of 10 datagrams",
             key="received")
    res.show("printer's frames of the stream", len(data), f"{len(data)} (flooded by sw)",
             key="flooded")
    res.show("printer kept (not a member)", counter(printer, "udp.rx.datagrams"),
             key="printer kept")
    res.show("querier's members", out["members"], key="members")
    res.show("after the leave", out["after"] or "none", key="after")
    lines = ["camera", "sw", "screen", "r"]
    rows = [row for row in lab.rows(lines, kinds={"igmp", "udp"}, start=0.0, end=1.05)
            if getattr(row, "dst", None) != "camera"]  # the flooded copies back: noise
    lab.diagram(res, rows, lines, "IGMPv3 join, then the stream")
