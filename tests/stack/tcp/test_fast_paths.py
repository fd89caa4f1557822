"""The per-packet fast paths (issue 11 §1) give the same results as the general code they
short-cut: segment bytes, the receive window (against ``reference.py``), the IPv4 destination
cache, the fused Ethernet/IPv4/TCP receive path."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import enum
import random
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stacklab
from stacklab.net.network import Network
from stacklab.stack.tcp.config import TcpConfig
from stacklab.stack.tcp.fsm import State
from stacklab.stack.tcp.segment import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG, Segment
from stacklab.stack.tcp.seq import seq_add, seq_sub
from stacklab.stack.tcp.tcb import Tcb
from stacklab.wire.addr import ip_bytes
from stacklab.wire.ethernet import build_ethernet
from stacklab.wire.ipv4 import build_ipv4
from stacklab.wire.tcp import AccEcnOpt, FastOpenOpt, build_tcp, encode_options

from . import reference
from .pair import Pair, wire

U32 = st.integers(0, 0xFFFFFFFF)


@settings(max_examples=300, deadline=None)
@given(st.none() | st.integers(536, 9000), st.none() | st.integers(0, 14), st.booleans(),
       st.none() | st.tuples(U32, U32), st.lists(st.tuples(U32, U32), max_size=3),
       st.none() | st.just(FastOpenOpt(b"")), st.none() | st.just(AccEcnOpt(1, (1, 2, 3))),
       st.booleans())
def test_segment_plain_is_ts_only_by_the_options_encoding(mss, wscale, sack_perm, ts, sack, fo,
                                                          aco, aco_none_after):
    """``Segment.plain`` (ts_only(), read by the frame builders without a call) holds when
    the general option encoding of the segment is nothing or the timestamps alone, also after
    accecn.py sets the AccECN option."""
    seg = Segment(1, 2, ACK, 3, b"x", mss=mss, wscale=wscale, sack_perm=sack_perm, ts=ts,
                  sack=tuple(sack), fastopen=fo)
    if aco is not None:
        seg._aco = aco
        if aco_none_after:
            seg._aco = None  # (stays not plain: the general path, the same bytes)
    assert seg.accecn() is seg._aco
    general = encode_options(mss=mss, wscale=wscale, sack_permitted=sack_perm, timestamps=ts,
                             sack_blocks=sack, fastopen=fo, accecn=seg._aco)
    only_ts = general == (encode_options(timestamps=ts) if ts is not None else b"")
    if aco is not None and aco_none_after:
        assert not seg.plain
    else:
        assert seg.plain == only_ts
    assert seg.ts_only() is seg.plain
    assert seg.options_bytes() == general


@settings(max_examples=300, deadline=None)
@given(U32, st.integers(0, 1 << 20), st.integers(0, 14), st.integers(1, 4 << 20),
       st.integers(0, 4 << 20), st.integers(64, 9000), st.integers(0, 4 << 20))
def test_window_update_due_matches_the_general_test(rcv_nxt, adv, shift, cap, used, mss, ssth):
    tcb = Tcb(bytes(4), 1, bytes(4), 2, iss=0, now=0.0)
    tcb.rcv_ssthresh = ssth
    tcb.rcv_nxt = rcv_nxt
    tcb.rcv_adv = (rcv_nxt + adv) & 0xFFFFFFFF
    tcb.rcv_wscale = shift
    tcb.recvbuf.capacity = cap
    tcb.recvbuf.ready = bytearray(min(used, cap + 100))
    tcb.adv_mss = mss
    assert tcb.window_update_due() == reference.window_update_due(tcb)


def test_window_update_due_near_its_bound():
    """``window_update_due`` answers False without the window rule when the window open is at
    least an MSS and more than half of rcv_ssthresh or of the free space: states drawn around
    that bound (the offer about twice the window open) agree with the reference."""
    rng = random.Random(23)

    def near(x: int, mss: int) -> int:  # x, one off it, or up to 3 MSS off
        return max(0, x + rng.choice((-1, 0, 0, 1, rng.randint(-3 * mss, 3 * mss))))

    for _ in range(20000):
        tcb = Tcb(bytes(4), 1, bytes(4), 2, iss=0, now=0.0)
        mss = rng.choice((536, 1448, 8948, rng.randint(64, 9000)))
        shift = rng.choice((0, 0, 7, rng.randint(0, 14)))
        cur = rng.choice((0, 1, mss - 1, mss, mss + 1, rng.randint(0, 1 << 22)))
        cap = max(1, near(2 * cur, mss))
        used = rng.choice((0, 0, rng.randint(0, 2 * mss), rng.randint(0, cap)))
        ssth = near(2 * cur, mss) if rng.random() < 0.5 else rng.randint(0, 1 << 23)
        tcb.rcv_nxt = rng.getrandbits(32)
        tcb.rcv_adv = (tcb.rcv_nxt + cur) & 0xFFFFFFFF
        tcb.rcv_wscale = shift
        tcb.recvbuf.capacity = cap
        tcb.recvbuf.ready = bytearray(min(used, cap + 100))
        tcb.rcv_ssthresh = ssth
        tcb.adv_mss = mss
        assert tcb.window_update_due() == reference.window_update_due(tcb), (
            mss, shift, cur, cap, used, ssth)


@settings(max_examples=300, deadline=None)
@given(U32, st.integers(0, 1 << 20), st.integers(0, 14), st.integers(1, 4 << 20),
       st.integers(0, 4 << 20), st.integers(64, 9000), st.integers(0, 4 << 20))
def test_emit_window_matches_the_reference_window_field(rcv_nxt, adv, shift, cap, used, mss,
                                                        ssth):
    tcbs = []
    for _ in range(2):
        tcb = Tcb(bytes(4), 1, bytes(4), 2, iss=0, now=0.0)
        tcb.rcv_ssthresh = ssth
        tcb.rcv_nxt = rcv_nxt
        tcb.rcv_adv = (rcv_nxt + adv) & 0xFFFFFFFF
        tcb.rcv_wscale = shift
        tcb.recvbuf.capacity = cap
        tcb.recvbuf.ready = bytearray(min(used, cap + 100))
        tcb.adv_mss = mss
        tcbs.append(tcb)
    spec, fast = tcbs
    field = reference.window_field(spec)
    fast._emit(5, ACK, b"", 1.0)
    (seg,) = fast.segments_to_send()
    assert seg.window == field and fast.rcv_adv == spec.rcv_adv


def _pair(**link):
    net = Network(seed=3)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="1ms", **link)
    net.autoconfigure()
    return net, a, b


def test_dst_cache_follows_route_changes():
    net, a, b = _pair()
    got = bytearray()

    async def handle(r, w):
        while x := await r.read(65536):
            got.extend(x)

    async def main():
        await b.start_server(handle, port=9)
        r, w = await a.open_connection("b", 9)
        w.write(b"x" * 5000)
        await w.drain()
        await asyncio.sleep(0.05)
        assert a.counters["drop.ipv4.tx_no_route"] == 0
        # a host route to b through a gateway that does not exist: the cached next hop must
        # not be used any more (ARP for the gateway is tried instead, the data waits)
        a.add_route(f"{b.address(4)}/32", via="10.0.1.99")
        w.write(b"y" * 3000)
        await asyncio.sleep(0.5)
        assert a.interfaces[0].arp.entries.get(ip_bytes("10.0.1.99")) is not None
        w.close()

    net.run(main(), until=30)
    net.close()
    assert bytes(got) == b"x" * 5000  # the rest waits for the gateway's ARP


def test_fused_receive_path_counts_malformed_frames_as_the_layered_path():
    net, a, b = _pair()
    net.run(until=1.0)
    iface = b.interfaces[0]
    src, dst = ip_bytes(a.address(4)), ip_bytes(b.address(4))
    seg = build_tcp(src, dst, 40000, 9, 1, 0, SYN, 1000)
    good = build_ipv4(src, dst, 6, seg, 64, 1, True)
    cases = {
        "drop.ipv4.bad_checksum": bytes(good[:10]) + b"\x00\x00" + bytes(good[12:]),
        "drop.tcp.bad_checksum": bytes(good[:-1]) + bytes([good[-1] ^ 1]),
        "drop.tcp.data_offset": bytes(good[:32]) + b"\xf0" + bytes(good[33:]),
    }
    for counter, packet in cases.items():
        if counter == "drop.tcp.data_offset":  # fix the IP checksum: only TCP is broken
            p = bytearray(packet)
            p[10:12] = b"\x00\x00"
            csum = -int.from_bytes(p[:20], "big") % 0xFFFF
            p[10:12] = csum.to_bytes(2, "big")
            packet = bytes(p)
        frame = bytes(build_ethernet(iface.mac, a.interfaces[0].mac, 0x0800, packet))
        before = b.counters[counter]
        b.receive_frame(0, frame, 1.0)
        assert b.counters[counter] == before + 1, counter
    # and a good SYN to a closed port is answered with a RST, as on the layered path
    before = b.counters["tcp.tx.rst"]
    b.receive_frame(0, bytes(build_ethernet(iface.mac, a.interfaces[0].mac, 0x0800, good)), 1.0)
    assert b.counters["tcp.tx.rst"] == before + 1


# -- header prediction: the fast paths of both directions against the general paths ------------


def _plain(v):
    """A comparable picture of a TCB attribute (objects as their fields, buffers as bytes)."""
    if v is None or isinstance(v, (bool, int, float, str, enum.Enum)):
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, (list, tuple, deque)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, Segment):
        return ("Segment", v.seq, v.ack, v.flags, v.window, bytes(v.payload), v.mss(),
                v.wscale(), v.sack_permitted(), v.timestamps(), v.sack_blocks(), v.urgent,
                v.ecn)
    if dataclasses.is_dataclass(v):
        return (type(v).__name__, _plain(dataclasses.asdict(v)))
    if callable(v):
        return None
    if isinstance(v, BaseException):
        return repr(v)
    return (type(v).__name__, {k: _plain(x) for k, x in _fields(v).items() if k not in _CACHES})


def _fields(v) -> dict:
    """The variables set on ``v``: its slots (those set) and its __dict__ (a class default once
    set); on the compiled tier (tools/build_compiled.py) a compiled class has neither but names
    its attributes in ``__mypyc_attrs__`` (mypyc)."""
    names = getattr(type(v), "__mypyc_attrs__", None) or [
        n for cls in type(v).__mro__ for n in getattr(cls, "__slots__", ())]
    return {n: getattr(v, n) for n in names
            if n not in ("__dict__", "__weakref__") and hasattr(v, n)} | getattr(v, "__dict__", {})


# memos of a derived value, not state: a path that never asked has none (Recovery.pipe's)
_CACHES = frozenset({"_pipe_memo"})
# which path took a segment is counted by wrapping the TCB's fast paths; on the compiled tier
# (tools/build_compiled.py) a compiled method cannot be replaced on an instance and compiled
# callers do not look it up (mypyc): there the states are compared uncounted (the pure tier
# counts the same seeds)
COUNTED = stacklab.tier() == "pure Python"


def snapshot(tcb: Tcb) -> dict:
    """Every variable of the TCB (sequence space, buffers, estimators, timers, stats, queued
    segments and events); the cached earliest timer as get_timer() answers."""
    variables = _fields(tcb)
    assert len(variables) > 90  # (a snapshot that sees nothing would compare nothing)
    out = {k: _plain(v) for k, v in variables.items()
           if k not in ("fast_path", "_rcv_predicted", "_send_predicted", "_ack_predicted",
                        "timer", "_timer_stale", "trace", "challenge_ack_ok")}
    out["get_timer"] = tcb.get_timer()
    return out


def _peer_segment(rnd: random.Random, tcb: Tcb, peer: dict, closing: bool,
                  extra: random.Random) -> Segment:
    """A segment the peer might send: mostly what header prediction is for (in-order data,
    ACKs of new data), and everything around it (duplicates, holes, old timestamps, SACK
    blocks, window changes, SYN; with ``closing`` FIN and RST too; from ``extra``, now and
    then urgent data)."""
    kind = rnd.choices(["data", "ack", "ooo", "old", "fin", "rst", "syn"],
                       [400, 300, 100, 80, 6 * closing, 3 * closing, 10])[0]
    rcv_nxt, una, smax = tcb.rcv_nxt, tcb.snd_una, tcb.snd_max
    seq = rcv_nxt
    flags = ACK
    payload = b""
    if kind in ("data", "ooo", "old", "fin"):
        payload = rnd.randbytes(rnd.choice([1, 100, 536, 1448, 1448, 3000]))
        if kind == "ooo":
            seq = seq_add(rcv_nxt, rnd.choice([1, 1448, 4000]))
        elif kind == "old":
            seq = seq_add(rcv_nxt, -rnd.choice([1, 100, 1448]))
    if kind == "fin":
        flags |= FIN
    elif kind == "rst":
        flags = RST | (ACK if rnd.random() < 0.5 else 0)
        seq = seq_add(rcv_nxt, rnd.choice([0, 0, 5]))
    elif kind == "syn":
        flags |= SYN
    if rnd.random() < 0.3:
        flags |= PSH
    urgent = 0
    if payload and extra.random() < 0.05:  # urgent data: the general path only
        flags |= URG
        urgent = extra.randint(0, len(payload) + 10)
    span = seq_sub(smax, una)
    ack = seq_add(una, rnd.choice([0, 0, span, rnd.randint(0, max(span, 0)), -1, span + 1]))
    window = tcb.snd_wnd >> tcb.snd_wscale if rnd.random() < 0.8 else rnd.randint(0, 0xFFFF)
    ts = None
    if tcb.ts_ok and rnd.random() < 0.97:
        peer["tsval"] = seq_add(peer["tsval"], rnd.choice([0, 1, 1, 3]))
        tsval = peer["tsval"] if rnd.random() < 0.95 else seq_add(peer["tsval"], -1000)
        ts = (tsval, tcb.ts_recent)
    sack: tuple[tuple[int, int], ...] = ()
    if tcb.sack_ok and span > 1000 and rnd.random() < 0.1:
        left = seq_add(una, rnd.randint(1, span - 500))
        sack = ((left, seq_add(left, 500)),)
    seg = Segment(seq, ack, flags, window, payload, ts=ts, sack=sack)
    seg.urgent = urgent
    return seg


@pytest.mark.parametrize("seed", range(40))
def test_header_prediction_matches_the_general_paths(seed):
    """Random peer segments and application calls through a TCB and its copy with
    ``fast_path = False``: after every segment both hold the same state. Every other seed with
    ECN negotiated (ecn.py), the peer's segments carrying ECE, CWR and CE at random."""
    rnd = random.Random(seed)
    use_ecn = seed % 2 == 0
    cfg = TcpConfig(nodelay=rnd.random() < 0.5, timestamps=rnd.random() < 0.7,
                    sack=rnd.random() < 0.7, window_scaling=rnd.random() < 0.7,
                    recv_buffer=rnd.choice([16 * 1024, 256 * 1024]))
    p = Pair(TcpConfig(nodelay=True, ecn=1) if use_ecn else TcpConfig(nodelay=True), cfg)
    p.handshake()
    fast = p.b
    assert (fast.ecn is not None) == use_ecn
    slow = copy.deepcopy(fast)
    slow.fast_path = False
    assert fast.state is State.ESTABLISHED
    predicted, sent = [], []
    receive_predicted, send_predicted = fast._rcv_predicted, fast._send_predicted
    ack_predicted = fast._ack_predicted

    def counted_receive(seg, now):
        taken = receive_predicted(seg, now)
        predicted.append(taken)
        return taken

    def counted_ack(seg, now):
        taken = ack_predicted(seg, now)
        if taken:  # (else _rcv_predicted is asked)
            predicted.append(taken)
        return taken

    def counted_send(now):
        taken = send_predicted(now)
        sent.append(taken)
        return taken

    if COUNTED:
        fast._rcv_predicted = counted_receive
        fast._ack_predicted = counted_ack
        fast._send_predicted = counted_send
    peer = {"tsval": fast.ts_recent}
    now = p.now
    flag_rnd = random.Random(-seed)  # its own stream: the peer's segments stay as they were
    for step in range(300):
        now += rnd.choice([0.0, 0.0001, 0.001, 0.05])
        if rnd.random() < 0.15:  # the application writes: something to acknowledge
            data = rnd.randbytes(rnd.choice([100, 5000, 20000]))
            # MSG_OOB, MSG_MORE, MSG_EOR now and then: the send fast path must give way
            kw = {k: flag_rnd.random() < 0.05 for k in ("oob", "more", "eor")}
            for t in (fast, slow):
                t.send(data, **kw)
                t.output(now)
        if rnd.random() < 0.1:  # and reads: the window opens
            n = rnd.choice([-1, 1000])
            for t in (fast, slow):
                t.read(n)
                t.output(now)
        if rnd.random() < 0.05:
            for t in (fast, slow):
                timer = t.get_timer()
                if timer is not None and timer <= now + 1:
                    t.handle_timer(max(now, timer))
        seg = _peer_segment(rnd, fast, peer, closing=step >= 30, extra=flag_rnd)
        ip_ecn = 0
        if use_ecn:
            seg.flags |= (ECE if rnd.random() < 0.1 else 0) | (CWR if rnd.random() < 0.05 else 0)
            ip_ecn = rnd.choice([0, 2, 2, 3])
        fast.receive(seg, now, ip_ecn)
        slow.receive(seg, now, ip_ecn)
        assert snapshot(fast) == snapshot(slow), f"seed {seed} step {step}: {seg!r}"
        if fast.state is not State.ESTABLISHED:
            break
    if COUNTED:
        assert sum(predicted) >= 3 and not all(predicted), predicted  # both paths ran
        assert any(sent)
    if use_ecn:
        assert fast.stats.ecn_ce_in > 0


@pytest.mark.parametrize("seed", range(16))
def test_the_senders_fast_paths_match_the_general_paths_in_bulk(seed):
    """A bulk sender (``Tcb._ack_predicted``, the sender's ACK fast path, takes most of its
    ACKs) and its copy with ``fast_path = False`` get the same ACKs from a real receiver, over
    a path that now and then loses, reorders or delays a data segment (recovery, RACK, undo,
    TLP and RTO run, and the fast paths hand over to the general ones and back), while the
    application writes in bursts, also after idle periods, and closes: after every segment and
    timer both hold the same state and send the same segments."""
    rnd = random.Random(1000 + seed)
    cfg = TcpConfig(nodelay=rnd.random() < 0.3, timestamps=rnd.random() < 0.8,
                    sack=rnd.random() < 0.8, window_scaling=rnd.random() < 0.8,
                    send_buffer=rnd.choice([None, None, 64 * 1024]))
    p = Pair(cfg, TcpConfig(recv_buffer=rnd.choice([64 * 1024, 256 * 1024, 1 << 20])))
    p.handshake()
    fast = p.a
    slow = copy.deepcopy(fast)
    slow.fast_path = False
    assert fast.state is State.ESTABLISHED
    taken, acks = [], []
    send_predicted, ack_predicted = fast._send_predicted, fast._ack_predicted

    def counted_send(now):
        ok = send_predicted(now)
        taken.append(ok)
        return ok

    def counted_ack(seg, now):
        ok = ack_predicted(seg, now)
        acks.append(ok)
        return ok

    if COUNTED:
        fast._send_predicted = counted_send
        fast._ack_predicted = counted_ack
    loss = rnd.choice([0.0, 0.01, 0.03])
    left = rnd.choice([300_000, 1_000_000])
    held: list = []  # data segments delayed past the ones behind them
    now = p.now

    def deliver_to_sender(now):
        views = p.segs(p.b)
        for v in views:
            fast.receive(v, now)
            slow.receive(v, now)
            assert snapshot(fast) == snapshot(slow), f"seed {seed} at {now}: {v!r}"

    for step in range(3000):
        if left and rnd.random() < 0.3:  # the application writes what the buffer takes
            data = rnd.randbytes(min(left, rnd.choice([1000, 20000, 65536])))
            took = [t.send(data) for t in (fast, slow)]
            assert took[0] == took[1]
            for t in (fast, slow):
                t.output(now)
            left -= took[0]
            if not left:
                for t in (fast, slow):
                    t.close(now)
        out = fast.segments_to_send()
        assert [_plain(s) for s in out] == [_plain(s) for s in slow.segments_to_send()], step
        views = [wire(fast, s) for s in out]
        for v in held:
            views.insert(rnd.randint(0, len(views)), v)  # reordered behind later segments
        held = []
        for v in views:
            r = rnd.random()
            if v.payload and r < loss:
                continue
            if v.payload and r < 2 * loss:
                held.append(v)
                continue
            p.b.receive(v, now)
        if rnd.random() < 0.7:
            p.b.read(-1)
            p.b.output(now)
        deliver_to_sender(now)
        now += rnd.choice([0.0005, 0.001, 0.001, 0.002, 0.3 * (rnd.random() < 0.01)])
        for t in (fast, slow, p.b):
            timer = t.get_timer()
            if timer is not None and timer <= now:
                t.handle_timer(now)
        assert snapshot(fast) == snapshot(slow), f"seed {seed} step {step}"
        if fast.state in (State.FIN_WAIT_2, State.TIME_WAIT, State.CLOSED):
            break
    if COUNTED:
        assert any(taken)
        assert sum(acks) > len(acks) // 3 and not all(acks), (sum(acks), len(acks))


@pytest.mark.parametrize("segs", [2, 3, 8, 10])  # (IW10: all of it and the FIN go)
def test_a_fin_on_the_last_segment_of_a_fast_burst_matches_the_general_path(segs):
    """A write of whole segments and the close after it: the send fast path sends the run and
    hands the last segment, the FIN's, to the general path; segments (PSH where the TSO
    packets end, FIN on the last) and state as with ``fast_path = False``."""
    p = Pair(TcpConfig(), TcpConfig())
    p.handshake()
    fast = p.a
    slow = copy.deepcopy(fast)
    slow.fast_path = False
    data = bytes(range(256)) * (segs * fast.snd_mss // 256 + 1)
    for t in (fast, slow):
        assert t.send(data[:segs * t.snd_mss]) == segs * t.snd_mss
        t.close(p.now)
        t.output(p.now)
    out = fast.segments_to_send()
    assert [_plain(s) for s in out] == [_plain(s) for s in slow.segments_to_send()]
    assert snapshot(fast) == snapshot(slow)
    data_segs = [s for s in out if s.payload]
    assert data_segs and data_segs[-1].flags & FIN and not any(s.flags & FIN for s in out[:-1])
