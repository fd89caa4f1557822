"""Checksum offload on simulated links, as Linux's veth: a TCP frame crosses a link with its
checksum partial (``PartialFrame``) and its peer trusts it; whatever reads or rewrites a frame
(a capture, Corrupt, a router's forwarding to a port without offload or its slow path) sees real
checksums, and a frame anyone changed is verified as any."""

from __future__ import annotations

import asyncio
import random
import subprocess

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

import stacklab
from stacklab.net.aqm import mark_ce
from stacklab.net.stages import frame_summary
from stacklab.testing import require_tool
from stacklab.trace.events import Tracer
from stacklab.wire.checksum import pseudo_header
from stacklab.wire.frame import PartialFrame, TcpFrameTemplate, complete_checksum

SIZE = 200_000


def transfer(net: stacklab.Network, size: int = SIZE) -> bytes:
    """``size`` seeded bytes from a to b over TCP; what b read."""
    a, b = net["a"], net["b"]
    data = random.Random("csum-offload").randbytes(size)
    got: list[bytes] = []

    async def handle(reader, writer):
        got.append(await reader.read())
        writer.close()

    async def main():
        await b.start_server(handle, 80)
        _, writer = await a.open_connection(b.address(4), 80)
        writer.write(data)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(1)

    net.run(main(), until="60s")
    assert got == [data]
    return data


def routed(**egress) -> stacklab.Network:
    net = stacklab.Network(seed=3)
    net.add_host("a")
    net.add_router("r")
    net.add_host("b")
    net.connect("a", "r", delay="1ms")
    net.connect("r", "b", delay="1ms", **egress)
    net.autoconfigure()
    return net


class Recorder:
    """A direction's receiver in between: keeps every frame delivered, then hands it on."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.frames: list[bytes] = []

    def deliver(self, ifindex: int, frame: bytes) -> None:
        self.frames.append(frame)
        self.inner.deliver(ifindex, frame)

    def hold(self) -> None:
        self.inner.hold()

    def release(self, flush: bool = True) -> None:
        self.inner.release(flush)


def tcp_checksum_ok(frame: bytes) -> bool:
    """scapy's verdict: the checksum scapy computes for the segment is the one it carries."""
    pkt = Ether(bytes(frame))
    sent = pkt[TCP].chksum
    del pkt[TCP].chksum
    return Ether(bytes(pkt))[TCP].chksum == sent


def test_a_plain_link_carries_partial_frames_the_peer_trusts() -> None:
    net = stacklab.Network(seed=3)
    net.add_host("a")
    net.add_host("b")
    link = net.connect("a", "b", delay="1ms")
    net.autoconfigure()
    rec = link.ab.receiver = Recorder(link.ab.receiver)
    transfer(net)
    data = [f for f in rec.frames if len(f) > 100]
    assert data and all(type(f) is PartialFrame for f in data)
    assert not any(tcp_checksum_ok(f) for f in data)  # the field holds the partial sum
    assert net["b"].counters["drop.tcp.bad_checksum"] == 0
    net.close()


def test_pcaps_of_an_offloaded_run_carry_real_checksums(tmp_path) -> None:
    net = stacklab.Network(seed=3)
    net.add_host("a")
    net.add_host("b")
    net.connect("a", "b", delay="1ms")
    net.capture(tmp_path, "rx")
    net.capture(tmp_path, "tx")
    net.autoconfigure()
    transfer(net)
    net.close()
    for name in ("a-b.pcap", "a-b.tx.pcap"):
        pkts = [p for p in rdpcap(str(tmp_path / name)) if p.haslayer(TCP)]
        assert len(pkts) > 100
        for p in pkts:
            assert tcp_checksum_ok(bytes(p)), p.summary()
            assert IP(bytes(p[IP])).chksum == p[IP].chksum


def test_tshark_finds_the_checksums_of_an_offloaded_runs_pcap_good(tmp_path) -> None:
    tshark = require_tool("tshark", package="tshark")
    net = stacklab.Network(seed=3)
    net.add_host("a")
    net.add_host("b")
    net.connect("a", "b", delay="1ms")
    net.capture(tmp_path, "rx")
    net.autoconfigure()
    transfer(net)
    net.close()

    def frames(filt: str) -> int:
        out = subprocess.run([tshark, "-r", str(tmp_path / "a-b.pcap"), "-n",
                              "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
                              "-Y", filt, "-T", "fields", "-e", "frame.number"],
                             capture_output=True, text=True, check=True, timeout=120)
        return len(out.stdout.split())

    assert frames("tcp.checksum.status == 0 || ip.checksum.status == 0") == 0  # 0: bad
    assert frames("tcp.checksum.status == 1") == frames("tcp") > 100  # 1: good


def test_a_corrupted_frame_is_still_dropped_and_counted() -> None:
    net = stacklab.Network(seed=3)
    net.add_host("a")
    net.add_host("b")
    link = net.connect("a", "b", delay="1ms", corrupt=0.02)
    net.autoconfigure()
    transfer(net)  # every byte right: no damaged segment was taken on trust
    corrupted = link.ab.counters["corrupt"] + link.ba.counters["corrupt"]
    assert corrupted > 5
    drops = sum(net[h].counters[f"drop.{what}.bad_checksum"]
                for h in ("a", "b") for what in ("ipv4", "tcp"))
    assert drops == corrupted
    net.close()


def test_a_frame_forwarded_to_a_port_without_offload_has_its_checksum() -> None:
    net = routed()
    r = net["r"]
    link = net.link("r-b")
    r.ports[link.a_port].csum_offload = False  # as a TAP device's port
    rec = link.ab.receiver = Recorder(link.ab.receiver)
    transfer(net)
    tcp = [f for f in rec.frames if len(f) > 100]
    assert tcp and r.counters["ipv4.forwarded"] >= len(tcp)
    assert all(type(f) is not PartialFrame and tcp_checksum_ok(f) for f in tcp)
    assert net["b"].counters["drop.tcp.bad_checksum"] == 0
    net.close()


def test_a_frame_forwarded_to_a_port_with_offload_stays_partial() -> None:
    net = routed()
    link = net.link("r-b")
    rec = link.ab.receiver = Recorder(link.ab.receiver)
    transfer(net)
    assert all(type(f) is PartialFrame for f in rec.frames if len(f) > 100)
    net.close()


def test_the_routers_slow_path_completes_what_it_rewrites() -> None:
    """MSS clamping (and NAT, fragmentation, ICMP errors quoting the packet) take the
    ordinary forwarding path, which copies and rewrites the packet: it gets real checksums."""
    net = routed()
    net["r"].mss_clamp = 1000
    transfer(net)
    assert net["b"].counters["drop.tcp.bad_checksum"] == 0
    assert net["a"].counters["drop.tcp.bad_checksum"] == 0
    net.close()


def test_an_icmp_error_quotes_the_packet_with_its_real_checksum() -> None:
    """A router's Fragmentation Needed quotes 548 bytes of the packet (the TCP checksum among
    them): the bytes the sender would have sent without offload."""
    net = routed(forward={"mtu": 1000})  # r to b only: b still offers an MSS of 1460
    sent = net.link("a-r").ab.receiver = Recorder(net.link("a-r").ab.receiver)
    back = net.link("a-r").ba.receiver = Recorder(net.link("a-r").ba.receiver)
    transfer(net, 20_000)
    by_id = {f[18:20]: f for f in sent.frames if len(f) > 1000}
    quotes = [f[14 + 28:] for f in back.frames
              if f[23] == 1 and f[34] == 3 and f[35] == 4]  # ICMP 3/4
    assert quotes and all(len(q) == 548 for q in quotes)
    for q in quotes:
        assert type(by_id[q[4:6]]) is PartialFrame
        assert q == complete_checksum(by_id[q[4:6]])[14:14 + len(q)]
    net.close()


def test_trace_summaries_see_real_checksums() -> None:
    tracer = Tracer()
    net = stacklab.Network(seed=3, tracer=tracer)
    net.add_host("a")
    net.add_host("b")
    net.connect("a", "b", delay="1ms")
    net.autoconfigure()
    transfer(net, 20_000)
    net.close()
    summaries = [ev.details["summary"] for ev in tracer.select(layer="link")
                 if "Flags [" in ev.details.get("summary", "")]
    assert len(summaries) > 10
    assert not [s for s in summaries if "cksum" in s]


def test_a_frame_summary_of_a_partial_frame_shows_no_bad_checksum() -> None:
    """What a trace or a stack bug's note says of a frame on a plain link (no tracer)."""
    src, dst = b"\x0a\0\0\1", b"\x0a\0\0\2"
    frame = TcpFrameTemplate(b"\x02" * 6, b"\x04" * 6, src, dst, 64, True, 1000, 80,
                             pseudo_header(src, dst, 6, 0), True).build(
        1, 1, 2, 0x10, 100, b"payload!" * 100, (5, 6))
    assert "Flags [.]" in frame_summary(frame) and "cksum" not in frame_summary(frame)


def test_ce_marking_a_partial_frame_gives_real_checksums() -> None:
    src, dst = b"\x0a\0\0\1", b"\x0a\0\0\2"
    frame = TcpFrameTemplate(b"\x02" * 6, b"\x04" * 6, src, dst, 64, True, 1000, 80,
                             pseudo_header(src, dst, 6, 0), True).build(
        1, 1, 2, 0x10, 100, b"payload!" * 100, (5, 6), tos=2)
    marked = mark_ce(frame)
    assert marked is not None and type(marked) is not PartialFrame
    assert marked[15] & 3 == 3 and tcp_checksum_ok(marked)


def test_a_flows_frames_follow_its_path_ttl_and_offload() -> None:
    """The frame templates (Ipv4.tcp_path's destination cache) are made again when what they
    hold changes: the TTL (a sysctl), the port's offload, the neighbour's MAC."""
    net = stacklab.Network(seed=3)
    a, b = net.add_host("a"), net.add_host("b")
    link = net.connect(a, b, delay="1ms")
    net.autoconfigure()
    rec = link.ab.receiver = Recorder(link.ab.receiver)
    other_mac = b"\x02\xee\xee\xee\xee\xee"

    async def main():
        await b.start_server(lambda r, w: None, 80)
        _, writer = await a.open_connection(b.address(4), 80)
        for change in (None, "ttl", "offload", "mac"):
            if change == "ttl":
                a.default_ttl = 33
            elif change == "offload":
                a.interfaces[0].port.csum_offload = False
            elif change == "mac":
                a.interfaces[0].arp.entries[b.interfaces[0].v4[0][0]].mac = other_mac
            rec.frames.clear()
            writer.write(b"x" * 3000)
            await asyncio.sleep(0.1)
            yield_frames.append([f for f in rec.frames if len(f) > 100])

    yield_frames: list[list[bytes]] = []
    net.run(main(), until="10s")
    plain, ttl, offload, mac = yield_frames
    assert plain and all(f[22] == 64 and type(f) is PartialFrame for f in plain)
    assert ttl and all(f[22] == 33 and type(f) is PartialFrame for f in ttl)
    assert offload and all(f[22] == 33 and type(f) is not PartialFrame and tcp_checksum_ok(f)
                           for f in offload)
    assert mac and all(f[:6] == other_mac for f in mac)
    net.close()
