"""Sequence arithmetic, buffers, RTO, ISN, the acceptance table, ACK/Nagle/PAWS behaviour."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stacklab.stack.tcp.buffers import ReceiveBuffer, SendBuffer
from stacklab.stack.tcp.config import TcpConfig
from stacklab.stack.tcp.congestion import available_congestion, create_congestion
from stacklab.stack.tcp.fsm import State
from stacklab.stack.tcp.isn import IsnGenerator
from stacklab.stack.tcp.rtt import RttEstimator
from stacklab.stack.tcp.segment import ACK, SYN, Segment
from stacklab.stack.tcp.seq import seq_add, seq_between, seq_ge, seq_gt, seq_le, seq_lt, seq_sub

from .pair import Pair


def test_seq_wraparound():
    top = 0xFFFFFFF0
    assert seq_lt(top, 5) and seq_gt(5, top) and seq_le(top, top) and seq_ge(5, 5)
    assert seq_add(top, 0x20) == 0x10 and seq_sub(0x10, top) == 0x20 and seq_sub(top, 0x10) == -0x20
    assert seq_between(top, 2, 10) and not seq_between(top, 10, 10)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=3000), st.lists(st.integers(1, 400), min_size=1),
       st.randoms(use_true_random=False))
def test_reassembly_of_shuffled_duplicated_overlapping_pieces(data, cuts, rnd):
    pieces = []
    off = 0
    i = 0
    while off < len(data):
        n = cuts[i % len(cuts)]
        start = max(0, off - rnd.randrange(0, 20))  # overlaps with what came before
        pieces.append((start, data[start:off + n]))
        off += n
        i += 1
    pieces += rnd.sample(pieces, min(3, len(pieces)))  # duplicates
    rnd.shuffle(pieces)
    rb = ReceiveBuffer(10_000, max_pieces=10_000)
    for start, chunk in pieces:
        rb.insert(start, chunk)
    assert rb.read() == data and rb.nxt == len(data) and rb.ooo_bytes == 0


def test_reassembly_queue_is_bounded():
    rb = ReceiveBuffer(100_000, max_pieces=4)
    for k in range(4):
        assert rb.insert(100 + 20 * k, b"x" * 10) == 0
    assert rb.insert(500, b"y") is None  # a fifth hole is refused
    assert rb.insert(0, b"z" * 100) == 110  # filling the first hole still works
    assert len(rb.ooo_ranges()) == 3


def test_send_buffer_appends_marks_and_acks():
    sb = SendBuffer(10)  # the limit is sndbuf.py's: the buffer itself takes what it is given
    assert sb.write(b"abcdefghijkl") == 12 and sb.marks == [12]
    assert sb.write(b"mn", push=False) == 2 and sb.marks == [12]
    sb.ack(4)
    assert sb.base == 4 and sb.peek(0, 3) == b"efg" and sb.write(b"xyz") == 3
    assert sb.marks == [12, 17] and sb.end == 17


def test_send_buffer_keeps_its_bytes_across_many_writes_and_acks():
    """Against a plain bytearray: writes and ACKs of many sizes (the acknowledged front is cut
    off in bulk underneath), a copy (deepcopy) and clear()."""
    import copy
    import random

    rng = random.Random(5)
    sb, ref = SendBuffer(1 << 20), bytearray()
    for _ in range(2000):
        if rng.random() < 0.5:
            chunk = rng.randbytes(rng.choice((1, 100, 1448, 65536)))
            sb.write(chunk)
            ref += chunk
        else:
            n = rng.randint(0, len(ref))
            sb.ack(n)
            del ref[:n]
        assert len(sb) == len(ref) and sb.data == ref and sb.end == sb.base + len(ref)
        off = rng.randint(0, len(ref))
        assert sb.peek(off, 3000) == ref[off:off + 3000]
    twin = copy.deepcopy(sb)
    sb.write(b"more")
    assert twin.data == ref and twin.base == sb.base
    sb.clear()
    assert len(sb) == 0 and not sb.data


def test_rto_rfc6298():
    r = RttEstimator(initial_rto=1.0, min_rto=0.2)
    assert r.rto == 1.0
    r.update(0.1)  # SRTT = R, RTTVAR = R/2, RTO = SRTT + 4*RTTVAR
    assert r.srtt == pytest.approx(0.1) and r.rto == pytest.approx(0.3)
    r.update(0.3)
    assert r.rttvar == pytest.approx(0.75 * 0.05 + 0.25 * 0.2)
    assert r.srtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.3)
    r2 = RttEstimator()
    r2.update(0.001)
    assert r2.rto == pytest.approx(0.201)  # Linux: SRTT + the 200 ms floor of the variance term
    r2.on_timeout()
    r2.on_timeout()
    assert r2.rto == pytest.approx(0.804)
    r2.on_new_ack()
    assert r2.rto == pytest.approx(0.201)
    r3 = RttEstimator()
    for _ in range(50):  # a steady 100 ms path: the variance decays, the RTO stays 300 ms
        r3.update(0.1)
    assert r3.rto == pytest.approx(0.3)
    for _ in range(20):
        r2.on_timeout()
    assert r2.rto == 120.0


def test_isn_keyed_per_tuple_and_clock_driven():
    g = IsnGenerator.from_rng(random.Random(1))
    a, b = b"\x0a\0\0\1", b"\x0a\0\0\2"
    i1 = g.isn(a, 1000, b, 80, 0.0)
    assert i1 == IsnGenerator.from_rng(random.Random(1)).isn(a, 1000, b, 80, 0.0)
    assert i1 != IsnGenerator.from_rng(random.Random(2)).isn(a, 1000, b, 80, 0.0)
    assert g.isn(a, 1001, b, 80, 0.0) != i1
    assert seq_sub(g.isn(a, 1000, b, 80, 1.0), i1) == 250_000  # 4 µs ticks


def test_congestion_registry():
    assert "reno" in available_congestion()
    cc = create_congestion("reno", 1000)
    assert cc.cwnd == 10_000
    cc.on_rto(20_000, 0.0)
    assert cc.cwnd == 1000 and cc.ssthresh == 10_000
    with pytest.raises(ValueError, match="unknown congestion"):
        create_congestion("nope", 1000)


# -- the acceptance table (RFC 9293 §3.10.7.4) --------------------------------------------------


def established(**cfg):
    p = Pair(b_cfg=TcpConfig(**cfg) if cfg else None)
    p.handshake()
    p.segs(p.a)
    p.segs(p.b)
    return p


@pytest.mark.parametrize("length,wnd,offset,ok", [
    (0, 0, 0, True), (0, 0, 1, False), (0, 0, -1, False),
    (0, 100, 0, True), (0, 100, 99, True), (0, 100, 100, False), (0, 100, -1, False),
    (10, 0, 0, False),
    (10, 100, 0, True), (10, 100, 95, True), (10, 100, 100, False),
    (10, 100, -5, True),  # the end is in the window
    (10, 100, -10, False),  # entirely old
])
def test_acceptance_table(length, wnd, offset, ok):
    p = established()
    b = p.b
    assert b._acceptable(seq_add(b.rcv_nxt, offset), length, wnd) is ok


def test_unacceptable_segment_is_acked_and_dropped():
    p = established()
    b = p.b
    far = seq_add(b.rcv_nxt, 10_000_000)
    b.receive(Segment(far, b.snd_nxt, ACK, 100, b"data"), p.now)
    out = b.segments_to_send()
    assert len(out) == 1 and out[0].flags == ACK and out[0].ack == b.rcv_nxt
    assert b.readable == 0 and b.stats.unacceptable == 1


def test_out_of_order_then_fill():
    p = established()
    a, b = p.a, p.b
    a.config.nodelay = True  # else Nagle holds the 104-byte tail
    a.send(b"A" * 3000)
    a.output(p.now)
    segs = a.segments_to_send()
    assert [len(s.payload) for s in segs] == [1448, 1448, 104]
    b.receive(segs[2], p.now)
    dup = b.segments_to_send()
    assert dup[0].ack == b.rcv_nxt and b.stats.ooo_segments == 1  # immediate duplicate ACK
    b.receive(segs[1], p.now)
    b.receive(segs[1], p.now)  # a duplicate of an out-of-order piece
    b.segments_to_send()
    b.receive(segs[0], p.now)
    assert b.read() == b"A" * 3000


def test_delayed_ack_and_every_second_segment():
    p = established()
    a, b = p.a, p.b
    a.config.nodelay = True
    a.send(b"x" * 100)
    a.output(p.now)
    b.receive(a.segments_to_send()[0], p.now)
    assert len(b.segments_to_send()) == 1  # the first data: quick-ACK mode, ACK at once
    b.send(b"reply")  # answered at once: interactive (ping-pong), ACKs are delayed from now
    b.output(p.now)
    a.receive(b.segments_to_send()[0], p.now)
    a.segments_to_send()
    a.send(b"x" * 100)
    a.output(p.now)
    b.receive(a.segments_to_send()[0], p.now)
    assert b.segments_to_send() == []  # delayed
    assert b.get_timer() == pytest.approx(p.now + 0.04)
    b.handle_timer(p.now + 0.04)
    assert b.segments_to_send()[0].ack == b.rcv_nxt
    assert not b.pingpong  # the delayed ACK was not piggybacked: Linux leaves ping-pong mode
    b.pingpong = True  # the every-second-segment rule alone
    a.send(b"y" * 2896)
    a.output(p.now)
    s1, s2 = a.segments_to_send()
    b.receive(s1, p.now)
    assert b.segments_to_send() == []
    b.receive(s2, p.now)
    assert len(b.segments_to_send()) == 1  # two full segments: ACK now


def test_full_sized_means_our_receive_mss_not_the_largest_segment_seen():
    """RFC 9293 §3.8.6.3: ACK at least every second full-sized segment, full-sized being our
    receive MSS: one 64 KiB frame (GRO on a TAP device) must not turn that off for good."""
    p = established()
    b = p.b
    b.pingpong = True  # no quick ACKs: the every-second-segment rule alone
    big = Segment(b.rcv_nxt, b.snd_nxt, ACK, 0xFFFF, b"g" * 65000)
    b.receive(big, p.now)
    b.segments_to_send()
    mss = b.adv_mss
    for _ in range(2):
        b.receive(Segment(b.rcv_nxt, b.snd_nxt, ACK, 0xFFFF, b"s" * mss), p.now)
    out = b.segments_to_send()
    assert [s.ack for s in out] == [b.rcv_nxt]


def test_nagle_holds_small_segments_nodelay_does_not():
    p = established()
    a = p.a
    a.send(b"1")
    a.output(p.now)
    assert len(a.segments_to_send()) == 1
    a.send(b"2")
    a.output(p.now)
    assert a.segments_to_send() == []  # Nagle: one small segment in flight already
    a.config.nodelay = True
    a.output(p.now)
    assert len(a.segments_to_send()) == 1


def test_paws_drops_old_timestamp():
    p = established()
    a, b = p.a, p.b
    a.send(b"first")
    a.output(p.now)
    seg = a.segments_to_send()[0]
    old = Segment(seg.seq, seg.ack, seg.flags, seg.window, seg.payload,
                  ts=((seg.timestamps()[0] - 1000) & 0xFFFFFFFF, seg.timestamps()[1]))
    b.receive(old, p.now)
    assert b.stats.paws_drops == 1 and b.readable == 0
    b.receive(seg, p.now)
    assert b.read() == b"first"


def test_window_scaling_applied():
    p = established(recv_buffer=1 << 20)
    # as Linux, the scale covers the largest the buffer could be (tcp_rmem's max, 6 MiB), not
    # only SO_RCVBUF's 1 MiB: log2(6 MiB) - 15 = 7
    assert p.b.rcv_wscale == 7 and p.a.snd_wscale == 7
    assert p.a.snd_wnd == 65535  # the SYN-ACK's window, Linux's first rcv_ssthresh
    for _ in range(40):  # the window grows with the data received (Linux tcp_grow_window)
        p.a.send(b"d" * 32768)
        p.a.output(p.now)
        p.run(until=p.now + 0.1)
        p.b.read()
        p.b.output(p.now)
        p.run(until=p.now + 0.1)
    assert p.a.snd_wnd > 0xFFFF << 3 and p.a.snd_wnd % 32 == 0  # scaled by 2**5, near 1 MiB


def test_syn_in_time_wait_rfc6191():
    from stacklab.stack.tcp.listen import syn_acceptable_in_time_wait

    p = established()
    p.a.close(p.now)
    p.run(until=p.now + 0.2)
    p.b.close(p.now)
    p.run(until=p.now + 0.2)
    tw = p.a
    assert tw.state is State.TIME_WAIT
    newer = Segment(0, 0, SYN, 1000, ts=((tw.ts_recent + 5) & 0xFFFFFFFF, 0))
    older = Segment(0, 0, SYN, 1000, ts=((tw.ts_recent - 5) & 0xFFFFFFFF, 0))
    assert syn_acceptable_in_time_wait(tw, newer)
    assert not syn_acceptable_in_time_wait(tw, older)
    tw.ts_ok = False
    assert syn_acceptable_in_time_wait(tw, Segment(seq_add(tw.rcv_nxt, 1), 0, SYN, 1000))
    assert not syn_acceptable_in_time_wait(tw, Segment(seq_add(tw.rcv_nxt, -1), 0, SYN, 1000))


def test_transfer_across_sequence_wrap():
    p = Pair(a_iss=0xFFFFF000, b_iss=0xFFFFFF00)
    p.handshake()
    data = random.Random(0).randbytes(50_000)
    p.a.send(data)
    p.a.output(p.now)
    got = bytearray()
    for _ in range(200):
        p.run(until=p.now + 0.05)
        got += p.b.read()
        p.b.output(p.now)
        if len(got) == len(data):
            break
    assert bytes(got) == data


def test_send_buffer_survives_a_view_someone_still_holds() -> None:
    # a view of the buffer's bytes kept alive elsewhere (say by a reference cycle until the
    # garbage collector runs, whose timing differs from process to process) must not make a
    # write or an ACK raise BufferError, nor change what that view shows: a dask sweep worker
    # crashed so
    sb = SendBuffer(1 << 20)
    sb.write(b"a" * 1000)
    held = sb.data  # the whole view, as `data = sendbuf.data` in output.py and gso.py
    sb.write(b"b" * 1000)
    sb.ack(1500)  # the acknowledged front outgrows the rest: cut off
    assert bytes(held) == b"a" * 1000
    sb.write(b"c" * 10)
    assert bytes(sb.data) == b"b" * 500 + b"c" * 10 and sb.base == 1500


@pytest.mark.parametrize("kw", [{}, {"ts": (7, 9)}, {"sack": ((10, 20), (30, 40))},
                                {"mss": 1460, "wscale": 7, "sack_perm": True, "ts": (1, 0)}])
def test_segment_engine_options_are_its_five_getters(kw):
    """Segment.engine_options (the header prediction's one call) reads what the getters read."""
    s = Segment(1, 2, ACK, 100, **kw)
    assert s.engine_options() == (s.mss(), s.wscale(), s.sack_permitted(), s.sack_blocks(),
                                  s.timestamps())
