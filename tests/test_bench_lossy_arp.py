"""bench/lossy_linux.py resolves the receiver's MAC before its clock starts, by ARP alone: the
first connection then takes one round trip, not two, and the relay sees no extra IPv4 frame."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import stacklab

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.lossy_linux import resolve_arp  # noqa: E402


def test_resolve_arp_then_connect_takes_one_round_trip() -> None:
    net = stacklab.Network(seed=1)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="10ms")
    net.autoconfigure()
    out: dict[str, float] = {}

    async def sink(reader, writer):
        await reader.read()
        writer.close()

    async def main():
        server = await b.start_server(sink, 80)
        ip = b.resolve("b")
        ifname = next(i.name for i in a.interfaces if i.name != "lo")
        before = Counter(a.counters)
        out["arp"] = await resolve_arp(a, ip, ifname)
        sent = Counter(a.counters) - before
        # every frame sent an ARP request or IPv6 (the host's own DAD), none IPv4
        out["arp_requests"] = sent["arp.tx.request"]
        out["other"] = sent["tx.frames"] - sent["arp.tx.request"] - sent["ipv6.tx.packets"]
        t0 = a.now()
        _, writer = await a.open_connection(ip, 80)
        out["connect"] = a.now() - t0
        writer.close()
        server.close()

    net.run(main(), until="10s")
    net.close()
    assert 0.019 < out["arp"] < 0.03, out  # the ARP exchange: one round trip
    assert out["arp_requests"] == 1 and out["other"] == 0, out
    assert 0.019 < out["connect"] < 0.03, out  # SYN, SYN-ACK: no ARP left to wait for
