"""Urgent data (RFC 9293 §3.8.5 MUST-30..33, Linux's choices) and SO_LINGER {1, 0} between two
TCBs: what a sender of MSG_OOB puts on the wire, what recv(MSG_OOB), SIOCATMARK and stream
reads see, with and without SO_OOBINLINE."""

from __future__ import annotations

import errno

import pytest

from stacklab.stack.tcp import urgent
from stacklab.stack.tcp.config import TcpConfig
from stacklab.stack.tcp.fsm import State
from stacklab.stack.tcp.segment import RST, URG
from stacklab.wire.tcp import TcpView, build_tcp

from .pair import Pair


def _pair(inline: bool = False) -> Pair:
    p = Pair(a_cfg=TcpConfig(nodelay=True), b_cfg=TcpConfig(oobinline=inline))
    p.handshake()
    p.run()
    return p


def test_msg_oob_sets_urg_and_points_after_the_last_byte() -> None:
    p = _pair()
    p.a.send(b"hello")
    p.a.output(p.now)
    p.run()
    p.a.send(b"!", oob=True)
    p.a.output(p.now)
    p.run()
    data = [v for d, v in p.log if d == "a>b" and v.payload]
    assert [bytes(v.payload) for v in data] == [b"hello", b"!"]
    assert not data[0].flags & URG
    # Linux (tcp_mark_urg): the pointer is the sequence number after the urgent byte
    assert data[1].flags & URG and data[1].urgent == 1
    # once acknowledged, urgent mode is over: the next segment carries no URG
    p.a.send(b"more")
    p.a.output(p.now)
    p.run()
    last = [v for d, v in p.log if d == "a>b" and v.payload][-1]
    assert bytes(last.payload) == b"more" and not last.flags & URG


def test_the_oob_byte_is_read_out_of_band_and_reads_stop_at_the_mark() -> None:
    p = _pair()
    p.a.send(b"abc")
    p.a.send(b"XY", oob=True)  # the last byte, Y, is the urgent one
    p.a.send(b"def")
    p.a.output(p.now)
    p.run()
    b = p.b
    assert urgent.has_oob(b) and not urgent.at_mark(b)
    assert b.readable == 8
    assert b.read() == b"abcX"  # up to the mark, not across it
    assert urgent.at_mark(b)
    assert urgent.recv_oob(b, peek=True) == b"Y"
    assert urgent.recv_oob(b) == b"Y"
    with pytest.raises(OSError) as e:
        urgent.recv_oob(b)  # read already: EINVAL, as Linux
    assert e.value.errno == errno.EINVAL
    assert b.read() == b"def"  # the urgent byte is not in the stream
    assert b.urg is None


def test_oob_byte_still_readable_after_the_stream_passed_it() -> None:
    p = _pair()
    p.a.send(b"ab")
    p.a.send(b"!", oob=True)
    p.a.send(b"cd")
    p.a.output(p.now)
    p.run()
    b = p.b
    assert b.read() == b"ab"
    assert b.read() == b"cd"
    assert urgent.recv_oob(b) == b"!"


def test_oobinline_keeps_the_byte_in_the_stream() -> None:
    p = _pair(inline=True)
    p.a.send(b"ab")
    p.a.send(b"!", oob=True)
    p.a.send(b"cd")
    p.a.output(p.now)
    p.run()
    b = p.b
    assert b.read() == b"ab"
    assert urgent.at_mark(b)
    with pytest.raises(OSError) as e:
        urgent.recv_oob(b)
    assert e.value.errno == errno.EINVAL
    assert b.read() == b"!cd"
    assert not urgent.at_mark(b)


def test_no_urgent_data_is_einval() -> None:
    p = _pair()
    with pytest.raises(OSError) as e:
        urgent.recv_oob(p.b)
    assert e.value.errno == errno.EINVAL


def test_pointer_ahead_of_the_data_is_eagain_until_the_byte_arrives() -> None:
    p = _pair()
    b = p.b
    # the peer's segment says the urgent byte is 3 bytes on, in a segment not sent yet
    seg = p.a
    seg.send(b"ab")
    seg.output(p.now)
    v = p.segs(seg)[0]
    raw = build_tcp(seg.local_ip, seg.remote_ip, seg.local_port, seg.remote_port, v.seq, v.ack,
                    v.flags | URG, v.window, bytes(v.payload), bytes(v.options_bytes), 3)
    b.receive(TcpView(bytes(raw)), p.now)
    with pytest.raises(OSError) as e:
        urgent.recv_oob(b)
    assert e.value.errno == errno.EAGAIN
    assert b.read() == b"ab"


def test_so_linger_zero_close_sends_rst() -> None:
    p = Pair(a_cfg=TcpConfig(linger=0.0))
    p.handshake()
    p.run()
    p.a.send(b"unsent")
    p.a.close(p.now, full=True)
    out = p.segs(p.a)
    assert [v.flags & RST for v in out] == [RST]
    assert p.a.state is State.CLOSED
    p.to_b(out)
    assert p.b.state is State.CLOSED
