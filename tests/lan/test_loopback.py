"""The loopback interface: ``lo`` with 127.0.0.0/8 and ::1 on every host, through the same IP and
TCP code as any other interface, and a capture point of its own."""

from __future__ import annotations

from pathlib import Path

import stacklab
from stacklab.device.pcap import read_pcap
from stacklab.stack.host import Host as SansIoHost
from stacklab.wire.ethernet import ETH_P_IPV4, build_ethernet
from stacklab.wire.icmpv4 import echo_request
from stacklab.wire.ipv4 import build_ipv4


def _pair() -> tuple[stacklab.Network, object, object]:
    net = stacklab.Network(seed=1)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b)
    net.autoconfigure()
    return net, a, b


def test_ping_127_anything_and_ipv6_loopback_answer_as_on_linux():
    """Linux: ``ping 127.1.2.3`` is answered (the whole /8 is local, replies come from the
    pinged address), ``ping ::1`` too; before lo existed 127.0.0.1 said "no route"."""
    net, a, _ = _pair()

    async def main():
        r1 = await a.ping("127.0.0.1", count=2)
        r2 = await a.ping("127.1.2.3", count=1)
        r3 = await a.ping("::1", count=1)
        return r1.received, r2.received, r3.received

    assert net.run(main(), until=30) == (2, 1, 1)
    assert a.counters["lo.tx.packets"] >= 8
    net.close()


def test_tcp_over_lo_uses_lo_mtu_and_traffic_stays_off_the_link(tmp_path: Path):
    net, a, b = _pair()
    net.capture(tmp_path)

    async def main():
        async def echo(reader, writer):
            writer.write(await reader.readexactly(100_000))
            await writer.drain()
            writer.close()

        await a.start_server(echo, 7)
        out = []
        for dst in ("127.0.0.1", "::1"):
            reader, writer = await a.open_connection(dst, 7)
            writer.write(bytes(100_000))
            out.append(len(await reader.readexactly(100_000)))
            writer.close()
        return out

    assert net.run(main(), until=60) == [100_000, 100_000]
    names = sorted(p.name for p in tmp_path.glob("*.pcap"))
    assert "a.lo.pcap" in names and "b.lo.pcap" not in names
    _lt, recs = read_pcap(str(tmp_path / "a.lo.pcap"))
    frames = [r.data for r in recs]
    assert all(f[:12] == bytes(12) for f in frames)  # lo: zero MACs as tcpdump -i lo shows
    # segments bigger than any Ethernet link: lo's MTU (65536; MSS 65495 as Linux)
    assert max(len(f) for f in frames) > 9000
    link = [p for p in names if not p.endswith(".lo.pcap")]
    for name in link:  # nothing of it on the wire
        _lt, recs = read_pcap(str(tmp_path / name))
        assert not any(r.data[12:14] == b"\x08\x00" and r.data[30] == 127 for r in recs)
    net.close()


def test_loopback_addresses_from_a_link_are_martians():
    """RFC 1122 §3.2.1.3: 127/8 never comes in from a link (Linux drops it as a martian)."""
    h = SansIoHost("h")
    h.add_interface("eth0", bytes.fromhex("020000000001"))
    h.add_address(0, "10.0.0.1/24")
    echo = echo_request(1, 1, b"x").build()
    for src, dst, counter in ((bytes([10, 0, 0, 2]), bytes([127, 0, 0, 1]),
                               "drop.ipv4.martian_destination"),
                              (bytes([127, 0, 0, 1]), bytes([10, 0, 0, 1]),
                               "drop.ipv4.martian_source")):
        pkt = build_ipv4(src, dst, 1, echo, 64, 1, False, False, 0, 0, b"")
        h.receive_frame(0, bytes(build_ethernet(h.interfaces[0].mac, bytes(6), ETH_P_IPV4, pkt)),
                        1.0)
        assert h.counters[counter] == 1
    assert not h.frames_to_send() or all(f[12:14] != b"\x08\x00" for _, f in h.frames_to_send())


def test_route_get_for_loopback_addresses():
    h = SansIoHost("h")
    h.add_interface("eth0", bytes.fromhex("020000000001"))
    h.add_address(0, "10.0.0.1/24")
    assert h.route_get("127.5.5.5", 0.0) == "local 127.5.5.5 dev lo src 127.0.0.1"
    assert h.route_get("10.0.0.1", 0.0) == "local 10.0.0.1 dev lo src 10.0.0.1"
    assert h.route_get("::1", 0.0) == "local ::1 dev lo src ::1"
