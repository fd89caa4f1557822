"""Hardening: RFC 5961 blind injection, challenge-ACK rate limit, SYN cookies under a SYN flood,
keepalive, user timeout, bounded memory per connection and per host."""

from __future__ import annotations

import asyncio
import gc
import random
import tracemalloc
from types import SimpleNamespace

import pytest

from stacklab.net.network import Network
from stacklab.stack.host import Host
from stacklab.stack.tcp.config import TcpConfig
from stacklab.stack.tcp.fsm import State
from stacklab.stack.tcp.seq import seq_add
from stacklab.stack.tcp.syncookie import MSS_TABLE, SynCookies
from stacklab.wire.addr import ip_bytes
from stacklab.wire.ethernet import ETH_P_IPV4, build_ethernet
from stacklab.wire.ipv4 import build_ipv4
from stacklab.wire.tcp import ACK, FIN, RST, SYN, TcpView, build_tcp, encode_options

from .pair import Pair


def established(cfg: TcpConfig | None = None) -> Pair:
    p = Pair(cfg or TcpConfig(nodelay=True), cfg or TcpConfig(nodelay=True))
    p.handshake()
    assert p.a.state is State.ESTABLISHED and p.b.state is State.ESTABLISHED
    return p


def spoof(p: Pair, seq: int, ack: int, flags: int, payload: bytes = b"") -> TcpView:
    """A segment that claims to come from A (the attacker knows the 4-tuple only)."""
    a = p.a
    raw = build_tcp(a.local_ip, a.remote_ip, a.local_port, a.remote_port, seq & 0xFFFFFFFF,
                    ack & 0xFFFFFFFF, flags, 1000, payload)
    return TcpView(bytes(raw))


def finish_transfer(p: Pair, nbytes: int = 100_000) -> None:
    data = bytes(range(256)) * (nbytes // 256)
    sent, got = 0, bytearray()
    for _ in range(100):  # as an application: write what fits, wait, write again
        sent += p.a.send(data[sent:])
        p.a.output(p.now)
        p.run(until=p.now + 1)
        got += p.b.read()
        if len(got) == len(data):
            break
    assert got == data
    assert p.a.state is State.ESTABLISHED and p.b.state is State.ESTABLISHED


@pytest.mark.parametrize("case", ["rst-out", "rst-in", "syn-out", "syn-in", "data-out",
                                  "data-in-bad-ack", "ack-too-new", "rst-ack-out"])
def test_blind_injection_never_breaks_the_connection(case):
    p = established()
    b = p.b
    nxt, wnd = b.rcv_nxt, b.rcv_adv - b.rcv_nxt
    una = b.snd_una
    segs = {
        "rst-out": [spoof(p, nxt + wnd + 10 + k * 99991, 0, RST) for k in range(50)],
        "rst-in": [spoof(p, nxt + 1 + k * 1000, 0, RST) for k in range(50)],
        "syn-out": [spoof(p, nxt + wnd + 5 + k * 77777, 0, SYN) for k in range(50)],
        "syn-in": [spoof(p, nxt + k * 500, 0, SYN) for k in range(50)],
        "data-out": [spoof(p, nxt + wnd + 100 + k * 1000, una, ACK, b"EVIL" * 10)
                     for k in range(50)],
        # in window, but the ACK field is far outside (SND.UNA - MAX.SND.WND, SND.NXT]
        "data-in-bad-ack": [spoof(p, nxt, una + 0x40000000 + k, ACK, b"EVIL" * 10)
                            for k in range(50)],
        "ack-too-new": [spoof(p, nxt, una + 5_000_000, ACK) for _ in range(50)],
        "rst-ack-out": [spoof(p, nxt - 70000 - k, una, RST | ACK) for k in range(50)],
    }[case]
    for v in segs:
        b.receive(v, p.now)
    assert b.state is State.ESTABLISHED and b.readable == 0  # nothing injected was delivered
    if case in ("rst-in", "syn-in", "data-in-bad-ack", "ack-too-new"):
        # one challenge ACK: the others came within tcp_invalid_ratelimit (0.5 s)
        assert b.stats.challenge_acks == 1 and b.stats.challenge_acks_limited == 49
        acks = p.segs(b)
        assert acks and all(v.ack == nxt and v.flags & ACK and not v.flags & RST for v in acks)
        p.to_a(acks)  # the real peer sees the challenge ACKs: harmless duplicates
    else:
        assert b.stats.challenge_acks == 0
        p.segs(b)
    finish_transfer(p)


def sim(seed: int = 1):
    net = Network(seed=seed)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="2ms")
    net.autoconfigure()
    return net, a, b


def test_challenge_acks_are_rate_limited_per_connection():
    net, a, b = sim()
    out = {}

    async def main():
        server_conns = []
        await b.start_server(lambda r, w: server_conns.append(w), 7000)
        r, w = await a.open_connection("b", 7000)
        await asyncio.sleep(0.1)
        tcb = server_conns[0].get_extra_info("tcb")
        now = net.loop.time()
        info = SimpleNamespace(ifindex=0, bcast=False)
        for k in range(3000):  # in-window, not exact: each asks for a challenge ACK
            raw = build_tcp(tcb.remote_ip, tcb.local_ip, tcb.remote_port, tcb.local_port,
                            seq_add(tcb.rcv_nxt, 1 + k), 0, RST, 0)
            b.tcp.receive(tcb.remote_ip, tcb.local_ip, memoryview(bytes(raw)), now, info)
        out["tcb"] = tcb
        await asyncio.sleep(0.1)
        w.write(b"still alive")
        await w.drain()
        await asyncio.sleep(0.1)
        out["state"] = tcb.state

    net.run(main(), until="10s")
    tcb = out["tcb"]
    # at one instant: one challenge ACK (Linux tcp_invalid_ratelimit), before the host's budget
    assert tcb.stats.challenge_acks == 1 and tcb.stats.challenge_acks_limited == 2999
    assert b.counters["tcp.challenge_ack.limited"] == 0
    assert out["state"] is State.ESTABLISHED and tcb.stats.bytes_received == len(b"still alive")


def test_syn_cookie_roundtrip_encodes_mss_and_options():
    import random

    ck = SynCookies(random.Random(5))
    la, ra = ip_bytes("10.0.0.2"), ip_bytes("10.0.0.1")
    c = ck.make(la, 80, ra, 4000, 12345, 1460, 100.0)
    assert ck.check(la, 80, ra, 4000, 12345, c, 150.0) == 1460
    assert ck.check(la, 80, ra, 4000, 12345, c, 100.0 + 64 * 4) is None  # too old
    assert ck.check(la, 80, ra, 4001, 12345, c, 101.0) is None  # another 4-tuple
    assert ck.check(la, 80, ra, 4000, 12346, c, 101.0) is None  # another client ISN
    assert ck.check(la, 80, ra, 4000, 12345, c ^ 1, 101.0) is None
    c2 = ck.make(la, 80, ra, 4000, 1, 1000, 0.0)
    assert ck.check(la, 80, ra, 4000, 1, c2, 0.0) == max(m for m in MSS_TABLE if m <= 1000)
    ts = ck.ts_value(3.0, 7, True)
    assert SynCookies.ts_options(ts) == (7, True)
    assert SynCookies.ts_options(ck.ts_value(3.0, None, False)) == (None, False)


def syn_flood(b, port: int, n: int, now: float) -> None:
    info = SimpleNamespace(ifindex=0, bcast=False)
    dst = b.address(4) if callable(getattr(b, "address", None)) else None
    dst = ip_bytes(str(dst).split("/")[0]) if dst is not None else ip_bytes("10.0.1.2")
    opts = encode_options(mss=1460, sack_permitted=True, timestamps=(1, 0), wscale=7)
    for k in range(n):
        src = bytes([10, 99, (k >> 8) & 0xFF, k & 0xFF])  # spoofed, unroutable
        raw = build_tcp(src, dst, 1024 + k % 60000, port, k * 7919, 0, SYN, 65535, b"", opts)
        b.tcp.receive(src, dst, memoryview(bytes(raw)), now, info)


def test_syn_flood_leaves_legitimate_client_able_to_connect_with_bounded_memory():
    net, a, b = sim(3)
    out = {}

    async def handler(r, w):
        data = await r.read()
        w.write(data[::-1])
        await w.drain()
        w.close()

    async def main():
        await b.start_server(handler, 8080)
        await asyncio.sleep(0.01)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        syn_flood(b, 8080, 10_000, net.loop.time())
        await asyncio.sleep(0.5)
        gc.collect()
        out["mem"] = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        out["conns"] = len(b.tcp.conns)
        r, w = await a.open_connection("b", 8080)
        info = w.get_extra_info("tcp_info")
        w.write(b"hello through the flood" * 100)
        w.write_eof()
        out["reply"] = await r.read()
        out["info"] = info
        w.close()
        await w.wait_closed()

    net.run(main(), until="60s")
    assert out["reply"] == (b"hello through the flood" * 100)[::-1]
    c = b.counters
    assert c["tcp.syncookies.sent"] >= 10_000 - b.tcp.max_syn_backlog
    assert c["tcp.syncookies.recv"] == 1  # the legitimate client came in through a cookie
    assert out["conns"] <= min(128, b.tcp.max_syn_backlog)  # only the SYN queue holds state
    assert out["mem"] < 4_000_000, out["mem"]  # bytes held after 10,000 SYNs
    # options survived the cookie through the timestamp bits (as Linux)
    assert out["info"]["sack"] and out["info"]["timestamps"]


def test_syn_flood_without_cookies_drops_even_legitimate_syns():
    net, a, b = sim(4)
    b.tcp.syncookies = False
    out = {}

    async def main():
        await b.start_server(lambda r, w: w.close(), 8080)
        syn_flood(b, 8080, 2000, net.loop.time())
        try:
            await a.open_connection("b", 8080, timeout=3.0)
            out["ok"] = True
        except TimeoutError:
            out["ok"] = False

    net.run(main(), until="60s")
    assert out["ok"] is False and b.counters["tcp.drop.backlog"] > 0


def test_connection_limit_per_host():
    net, a, b = sim(5)
    b.tcp.max_connections = 3
    out = {"ok": 0, "fail": 0}

    async def main():
        await b.start_server(lambda r, w: None, 9000)
        for _ in range(6):
            try:
                await a.open_connection("b", 9000, timeout=2.0)
                out["ok"] += 1
            except (TimeoutError, ConnectionError):
                out["fail"] += 1

    net.run(main(), until="60s")
    assert out["ok"] == 3 and out["fail"] == 3
    assert b.counters["tcp.drop.conn_limit"] >= 3 and len(b.tcp.conns) == 3


def test_keepalive_detects_a_dead_peer_and_spares_a_live_one():
    cfg = TcpConfig(nodelay=True, keepalive=True, keepidle=10.0, keepintvl=2.0, keepcnt=3)
    p = established(cfg)
    p.run(until=45.0)  # the peer answers every probe
    assert p.a.state is State.ESTABLISHED and p.a.stats.keepalive_probes >= 3
    assert p.b.state is State.ESTABLISHED
    dead_since = p.now
    p.filter = lambda d, v: None  # the peer vanished
    p.run(until=dead_since + 100)
    assert p.a.state is State.CLOSED and isinstance(p.a.error, TimeoutError)
    # the last answer, then keepidle of silence, then keepcnt probes keepintvl apart
    assert p.a.last_rx <= dead_since
    assert p.a.transitions[-1][0] - p.a.last_rx == pytest.approx(10 + 3 * 2, abs=0.01)


def test_user_timeout_fails_unacked_data_early():
    cfg = TcpConfig(nodelay=True, user_timeout=5.0)
    p = established(cfg)
    p.filter = lambda d, v: None
    start = p.now
    p.a.send(b"x" * 1000)
    p.a.output(p.now)
    p.run(until=start + 300)
    assert p.a.state is State.CLOSED and isinstance(p.a.error, TimeoutError)
    assert p.a.transitions[-1][0] - start == pytest.approx(5.0, abs=0.01)
    assert "user timeout" in p.a.transitions[-1][3]


def test_out_of_order_garbage_is_bounded_per_connection():
    cfg = TcpConfig(nodelay=True, recv_buffer=64 * 1024, max_ooo_pieces=16)
    p = established(cfg)
    b = p.b
    for k in range(10_000):  # tiny pieces all over the window, never the next byte
        b.receive(spoof(p, b.rcv_nxt + 3 + 7 * k, b.snd_una, ACK, b"g"), p.now)
    assert len(b.recvbuf.ooo_ranges()) <= 16 and b.recvbuf.ooo_bytes <= 64 * 1024
    assert b.stats.ooo_dropped > 0
    acks = p.segs(b)
    # every out-of-order data segment earns a duplicate ACK (RFC 5681), but pure garbage
    # without data is rate limited: see the next test
    assert len(acks) >= 1
    finish_transfer(p, 20_000)


def test_no_ack_storm_for_out_of_window_empty_segments():
    p = established()
    b = p.b
    for k in range(1000):
        b.receive(spoof(p, b.rcv_nxt + 10_000_000 + k, b.snd_una, ACK), p.now + k * 0.001)
    acks = p.segs(b)
    assert len(acks) <= 3  # one per 0.5 s over one second of garbage
    assert b.stats.oow_acks_limited >= 997


def test_land_syn_and_syn_fin_get_no_answer_from_a_listener():
    """A SYN claiming to come from the listening socket itself (LAND) and a SYN with FIN set are
    dropped without a SYN-ACK or RST, as Linux drops them; a proper SYN is answered."""
    mac_h, mac_p = bytes.fromhex("020000000001"), bytes.fromhex("020000000099")
    h4, p4 = ip_bytes("10.0.0.1"), ip_bytes("10.0.0.2")
    h = Host("h", rng=random.Random(1))
    h.ndp.dad_transmits = 0
    h.add_interface("eth0", mac_h)
    h.add_address(0, "10.0.0.1/24")
    h.tcp.listen(80, lambda tcb: None)
    h.frames_to_send()

    def syn(src: bytes, sport: int, flags: int) -> list[bytes]:
        seg = build_tcp(src, h4, sport, 80, 1000, 0, flags, 65535, b"")
        h.receive_frame(0, bytes(build_ethernet(mac_h, mac_p, ETH_P_IPV4,
                                                build_ipv4(src, h4, 6, seg))), 1.0)
        return [f for _, f in h.frames_to_send()]

    assert syn(h4, 80, SYN) == []  # LAND: source = destination, port and address
    assert syn(p4, 5000, SYN | FIN) == []
    assert h.counters["tcp.drop.bad_syn"] == 2
    assert syn(p4, 5001, SYN) != []  # a proper SYN: a SYN-ACK (after ARP) goes out
