"""TCP on the simulator: Host + Network, asyncio streams and protocols, impairments, pcap."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import random
import subprocess

import pytest

from stacklab.net.network import Network
from stacklab.testing import require_tool


def two_hosts(seed: int = 1, **link):
    net = Network(seed=seed)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="5ms", **link)
    net.autoconfigure()
    return net, a, b


def transfer_both_ways(net, a, b, nbytes: int, seed: int):
    up = random.Random(seed).randbytes(nbytes)
    down = random.Random(seed + 1000).randbytes(nbytes)
    got = {}

    async def handler(r, w):
        async def rd():
            got["server"] = await r.read()
        t = asyncio.ensure_future(rd())
        w.write(down)
        await w.drain()
        w.write_eof()
        await t
        w.close()
        await w.wait_closed()

    async def main():
        await b.start_server(handler, 5000)
        r, w = await a.open_connection("b", 5000)
        w.write(up)
        await w.drain()
        w.write_eof()
        got["client"] = await r.read()
        w.close()
        await w.wait_closed()
        await asyncio.sleep(3)

    net.run(main(), until="2000s")
    return up, down, got


IMPAIRMENTS = [
    ({"loss": 0.01}, 1), ({"loss": 0.01}, 2), ({"loss": 0.05}, 3), ({"loss": 0.10}, 4),
    ({"loss": 0.10}, 5), ({"reorder": 0.05}, 6), ({"duplicate": 0.05}, 7),
    ({"corrupt": 0.03}, 8), ({"jitter": "3ms"}, 9),
    ({"loss": 0.03, "reorder": 0.03, "duplicate": 0.02, "corrupt": 0.01, "jitter": "2ms"}, 10),
]


@pytest.mark.parametrize("link,seed", IMPAIRMENTS, ids=[f"{k}-{s}" for k, s in IMPAIRMENTS])
def test_one_megabyte_each_way_arrives_intact(link, seed):
    net, a, b = two_hosts(seed, **link)
    up, down, got = transfer_both_ways(net, a, b, 1_000_000, seed)
    assert hashlib.sha256(got["server"]).digest() == hashlib.sha256(up).digest()
    assert hashlib.sha256(got["client"]).digest() == hashlib.sha256(down).digest()
    for h in (a, b):
        conns = h.tcp_connections_summary()
        assert len(conns) == 1
        assert conns[0]["states"][-1] in ("CLOSED", "TIME-WAIT")
        assert conns[0]["bytes_received"] == 1_000_000
    if "corrupt" in link:
        assert a.counters["drop.tcp.bad_checksum"] + b.counters["drop.tcp.bad_checksum"] > 0
    if link.get("loss", 0) >= 0.05:
        total = sum(c["retransmits"] for h in (a, b) for c in h.tcp_connections_summary())
        assert total > 0
    net.close()


def test_zero_window_stall_and_recovery():
    net, a, b = two_hosts(3)
    # b's receive buffer stops autotuning at 256 KiB, so 600 kB closes its window
    b.sysctl["net.ipv4.tcp_rmem"] = "4096 131072 262144"
    data = random.Random(3).randbytes(600_000)
    seen = {}

    async def slow_reader(r, w):
        await asyncio.sleep(5.0)  # do not read: the window closes
        tcb = w.get_extra_info("tcb")
        seen["rcv_wnd_while_stalled"] = tcb.tcp_info()["rcv_wnd"]
        seen["data"] = await r.read()
        w.close()

    async def main():
        await b.start_server(slow_reader, 7000)
        r, w = await a.open_connection("b", 7000)
        w.write(data)
        await asyncio.sleep(4.0)
        info = w.get_extra_info("tcp_info")
        seen["snd_wnd_at_4s"] = info["snd_wnd"]
        seen["probes_at_4s"] = info["zero_window_probes"]
        await w.drain()
        w.write_eof()
        await r.read()
        w.close()
        await w.wait_closed()

    net.run(main(), until="120s")
    assert seen["snd_wnd_at_4s"] == 0
    assert seen["probes_at_4s"] >= 2  # persist timer probing, with backoff
    assert seen["rcv_wnd_while_stalled"] == 0
    assert seen["data"] == data
    net.close()


def test_rst_to_closed_port_refuses():
    net, a, b = two_hosts()

    async def main():
        with pytest.raises(ConnectionRefusedError):
            await a.open_connection("b", 4444)
        return net.now

    t = net.run(main(), until="10s")
    assert t < 0.1  # refused at once, no retransmission
    assert b.counters["tcp.tx.rst"] == 1 and b.counters["tcp.no_port"] == 1
    assert a.tcp_connections_summary()[0]["states"] == ["SYN-SENT", "CLOSED"]
    net.close()


def silent_peer():
    """Every frame lost, but the peer's MAC known (a permanent ARP entry): SYNs vanish without
    the neighbour resolution failure that would end the connect with EHOSTUNREACH."""
    net, a, b = two_hosts(loss=1.0)
    a.interfaces[0].arp.add_permanent(b.interfaces[0].v4[0][0], b.interfaces[0].mac, 0.0)
    return net, a, b


def test_connect_timeout():
    net, a, b = silent_peer()

    async def main():
        t0 = net.now
        with pytest.raises(TimeoutError):
            await a.open_connection("b", 80, timeout=3.0)
        return net.now - t0

    assert net.run(main(), until="20s") == pytest.approx(3.0, abs=0.01)
    net.close()


def test_default_connect_gives_up_after_syn_retries():
    net, a, b = silent_peer()

    async def main():
        with pytest.raises(TimeoutError):
            await a.open_connection("b", 80)
        return net.now

    t = net.run(main(), until="300s")
    assert 127.0 <= t < 128.0  # 1+2+4+8+16+32+64 s, as Linux with tcp_syn_retries=6
    assert a.tcp_connections_summary()[0]["retransmits"] == 6
    net.close()


def test_connect_to_an_unresolvable_neighbour_fails_with_ehostunreach():
    """ARP gives up (3 s, as Linux): the connect fails at once with EHOSTUNREACH, not with a
    TimeoutError after the SYN retries (issue 16, defect 7)."""
    net, a, b = two_hosts(loss=1.0)

    async def main():
        with pytest.raises(OSError) as e:
            await a.open_connection("b", 80)
        return net.now, e.value.errno

    t, err = net.run(main(), until="300s")
    assert err == errno.EHOSTUNREACH and t < 5.0
    net.close()


def test_reset_by_peer_raises_connection_reset():
    net, a, b = two_hosts()

    async def handler(r, w):
        await r.readexactly(5)
        w.transport.abort()

    async def main():
        await b.start_server(handler, 9)
        r, w = await a.open_connection("b", 9)
        w.write(b"hello")
        with pytest.raises(ConnectionResetError):
            await r.read()

    net.run(main(), until="10s")
    net.close()


def test_protocol_api_and_stream_methods():
    net, a, b = two_hosts()

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.t = transport

        def data_received(self, data):
            self.t.write(data.upper())

        def eof_received(self):
            self.t.write(b"bye\n")
            return False  # close

    async def main():
        server = await b.create_server(Echo, None, 7)
        r, w = await a.open_connection("b", 7)
        assert w.get_extra_info("peername") == (b.address(4), 7)
        assert w.get_extra_info("sockname")[0] == a.address(4)
        assert w.can_write_eof()
        w.writelines([b"line one\n", b"line two|rest"])
        one = await r.readline()
        two = await r.readuntil(b"|")
        rest = await r.readexactly(4)
        w.write_eof()
        tail = await r.read()
        eof = r.at_eof()
        w.close()
        await w.wait_closed()
        server.close()
        await server.wait_closed()
        info = w.get_extra_info("tcp_info")
        return one, two, rest, tail, eof, info

    one, two, rest, tail, eof, info = net.run(main(), until="10s")
    assert (one, two, rest, tail, eof) == (b"LINE ONE\n", b"LINE TWO|", b"REST", b"bye\n", True)
    assert info["snd_mss"] == 1448
    assert 0.010 <= info["srtt"] < 0.06  # 10 ms path RTT, plus delayed ACKs at most
    net.close()


def test_create_connection_protocol():
    net, a, b = two_hosts()

    class Collect(asyncio.Protocol):
        def __init__(self):
            self.data = bytearray()
            self.done = asyncio.get_running_loop().create_future()

        def data_received(self, data):
            self.data += data

        def connection_lost(self, exc):
            self.done.set_result(exc)

    async def handler(r, w):
        w.write(b"x" * 100_000)
        await w.drain()
        w.close()

    async def main():
        await b.start_server(handler, 1234)
        transport, proto = await a.create_connection(Collect, "b", 1234)
        exc = await proto.done
        return len(proto.data), exc

    assert net.run(main(), until="20s") == (100_000, None)
    net.close()


def test_mss_from_interface_mtu_and_maxseg():
    net = Network(seed=1)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="1ms", mtu=1400)
    net.autoconfigure()
    out = {"server_mss": []}

    async def handler(r, w):
        out["server_mss"].append(w.get_extra_info("tcp_info")["snd_mss"])
        w.close()

    async def main():
        await b.start_server(handler, 80)
        r, w = await a.open_connection("b", 80)
        out["client_mss"] = w.get_extra_info("tcp_info")["snd_mss"]
        await r.read()
        from stacklab.stack.tcp.config import TcpConfig
        r, w = await a.open_connection("b", 80, config=TcpConfig(maxseg=1000))
        out["clamped"] = w.get_extra_info("tcp_info")["snd_mss"]
        await r.read()

    net.run(main(), until="10s")
    assert out["client_mss"] == 1400 - 40 - 12  # advertised: interface MTU - 40, minus TS
    assert out["clamped"] == 1000 - 12
    # the server sends with min(peer MSS, own path MSS): 1360 first, then the clamped 1000
    assert out["server_mss"] == [1400 - 40 - 12, 1000 - 12]
    net.close()


def test_ss_listing_and_summary():
    net, a, b = two_hosts()

    async def handler(r, w):
        await r.read()
        w.close()

    async def main():
        await b.start_server(handler, 22)
        r, w = await a.open_connection("b", 22)
        w.write(b"x" * 5000)
        await w.drain()
        return a.tcp.ss(), b.tcp.ss()

    ss_a, ss_b = net.run(main(), until="5s")
    assert "ESTABLISHED" in ss_a and ":22" in ss_a and "srtt" in ss_a
    assert "LISTEN" in ss_b
    net.close()


def test_ipv6_transfer():
    net, a, b = two_hosts()
    data = random.Random(6).randbytes(200_000)

    async def handler(r, w):
        w.write(await r.read())
        w.close()

    async def main():
        await b.start_server(handler, 80, "::")
        await asyncio.sleep(3)  # DAD
        r, w = await a.open_connection(b.address(6), 80)
        w.write(data)
        w.write_eof()
        back = await r.read()
        return back, w.get_extra_info("tcp_info")["snd_mss"]

    back, mss = net.run(main(), until="30s")
    assert back == data and mss == 1500 - 60 - 12
    net.close()


def test_handshake_and_teardown_in_pcap(tmp_path):
    require_tool("tshark", package="tshark")
    net, a, b = two_hosts()
    net.capture(tmp_path)

    async def handler(r, w):
        await r.read()
        w.close()

    async def main():
        await b.start_server(handler, 80)
        r, w = await a.open_connection("b", 80)
        w.write(b"hello world")
        w.write_eof()
        await r.read()
        w.close()
        await w.wait_closed()
        await asyncio.sleep(0.5)

    net.run(main(), until="10s")
    net.close()
    pcap = tmp_path / "a-b.pcap"
    fields = ["tcp.flags.str", "tcp.seq_raw", "tcp.ack_raw", "tcp.len", "tcp.options.mss_val",
              "tcp.options.wscale.shift", "tcp.options.sack_perm", "tcp.options.timestamp.tsval",
              "tcp.checksum.status", "ip.src"]
    cmd = ["tshark", "-r", str(pcap), "-o", "tcp.check_checksum:TRUE", "-Y", "tcp", "-T",
           "fields", "-E", "separator=|"] + [x for f in fields for x in ("-e", f)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = [dict(zip(fields, line.split("|"), strict=True)) for line in out.splitlines()]
    flags = [r["tcp.flags.str"].replace("·", "").strip() for r in rows]
    syn, synack, ack = rows[0], rows[1], rows[2]
    assert "S" in flags[0] and "A" not in flags[0]
    assert "S" in flags[1] and "A" in flags[1]
    assert int(synack["tcp.ack_raw"]) == int(syn["tcp.seq_raw"]) + 1
    assert int(ack["tcp.ack_raw"]) == int(synack["tcp.seq_raw"]) + 1
    assert int(ack["tcp.seq_raw"]) == int(syn["tcp.seq_raw"]) + 1
    for r in (syn, synack):
        assert r["tcp.options.mss_val"] == "1460"
        assert r["tcp.options.wscale.shift"] != "" and r["tcp.options.sack_perm"] != ""
        assert r["tcp.options.timestamp.tsval"] != ""
    assert all(r["tcp.checksum.status"] == "1" for r in rows)  # tshark: 0 bad, 1 good
    fins = [r for r, f in zip(rows, flags, strict=True) if "F" in f]
    assert len(fins) == 2 and {f["ip.src"] for f in fins} == {a.address(4), b.address(4)}
    # the last segment ACKs the second FIN
    last = rows[-1]
    assert int(last["tcp.ack_raw"]) == int(fins[-1]["tcp.seq_raw"]) + 1


def test_buffers_autotune_past_256_kib_per_rtt_on_a_long_path():
    """Linux's buffer autotuning (issue 16): on a 100 ms path a bulk transfer is not held to
    a fixed 256 KiB window per round trip (2.6 MB/s); the receive buffer grows towards tcp_rmem's
    6 MiB max and the window scale chosen from that max (7) can offer it."""
    net = Network(seed=1)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="50ms", rate="1Gbit")
    net.autoconfigure()
    data = random.Random(5).randbytes(16_000_000)
    seen: dict = {}

    async def sink(r, w):
        got = bytearray()
        while chunk := await r.read(1 << 20):
            got += chunk
        seen["data"], seen["done"] = bytes(got), net.loop.time()
        seen["info"] = w.get_extra_info("tcb").tcp_info()
        w.close()

    async def main():
        await b.start_server(sink, 9000)
        r, w = await a.open_connection("b", 9000)
        seen["start"] = net.loop.time()
        w.write(data)
        await w.drain()
        w.write_eof()
        await r.read()
        w.close()

    net.run(main(), until="120s")
    assert seen["data"] == data
    goodput = len(data) / (seen["done"] - seen["start"])
    assert goodput > 1.5 * (256 * 1024 / 0.1), goodput
    assert seen["info"]["rcv_wscale"] == 7
    net.close()


@pytest.mark.parametrize(("mtu", "via_router"), [(68, False), (76, False), (90, False),
                                                 (116, False), (300, True), (68, True)])
def test_tcp_delivers_on_every_mtu_the_validator_accepts(mtu, via_router):
    """Audit D10, issue 16 item 8: TCP delivers on links down to IPv4's 68 bytes. The MSS goes
    down to what fits (Linux's tcp_min_snd_mss) and, on a path at or below the 552-byte PMTU
    floor, segments leave without DF, so IP fragments what the smallest segment cannot fit: our
    own IP on a small link, the router's after a Fragmentation Needed below the floor (Linux
    locks the MTU at the floor, RFC 1191 §3). Before, MTU 68-89 never delivered."""
    net = Network(seed=2)
    a, b = net.add_host("a"), net.add_host("b")
    if via_router:
        r = net.add_router("r")
        net.connect(a, r, delay="1ms")
        net.connect(r, b, mtu=mtu, delay="1ms")
    else:
        net.connect(a, b, mtu=mtu, delay="1ms")
    net.autoconfigure()
    data = random.Random(mtu).randbytes(10_000)
    got = {}

    async def sink(r, w):
        got["data"] = await r.read()
        w.close()

    async def main():
        await b.start_server(sink, 5001)
        r, w = await a.open_connection("b", 5001)
        w.write(data)
        await w.drain()
        w.write_eof()
        await r.read()
        w.close()

    net.run(main(), until="60s")
    assert got["data"] == data
    assert a.counters["drop.ipv4.tx_too_big"] == 0
    net.close()
