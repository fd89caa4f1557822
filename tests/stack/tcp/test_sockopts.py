"""Socket options of a TCB as Linux applies them: TCP_NOTSENT_LOWAT (per socket and the
net.ipv4.tcp_notsent_lowat default) and TCP_QUICKACK."""

from __future__ import annotations

from stacklab.stack.host import Host
from stacklab.stack.tcp.config import TcpConfig

from .pair import Pair


def _established(cfg: TcpConfig) -> Pair:
    p = Pair(a_cfg=cfg)
    p.handshake()
    p.run()
    return p


def test_notsent_lowat_limits_what_a_write_takes_and_writability() -> None:
    p = _established(TcpConfig(notsent_lowat=3000))
    a = p.a
    room = min(a.snd_wnd, a.cc.cwnd)  # what leaves at once
    assert a.send_space == min(a.sendbuf.free, room + 3000)
    assert a.send(bytes(10 * room)) == room + 3000
    a.output(p.now)
    assert a.send_space == 0  # 3000 bytes wait unsent: not writable
    assert a.send(b"x") == 0


def test_without_notsent_lowat_the_buffer_is_the_limit() -> None:
    p = _established(TcpConfig())
    assert p.a.send_space == p.a.sendbuf.free


def test_the_sysctl_is_the_default_and_the_socket_option_wins() -> None:
    host = Host("h")
    assert host.sysctl["net.ipv4.tcp_notsent_lowat"] == "4294967295"
    host.sysctl["net.ipv4.tcp_notsent_lowat"] = "5000"
    cfg = host.tcp.config
    assert cfg.notsent_lowat_default == 5000 and cfg.notsent_lowat == 0
    p = _established(cfg)
    room = min(p.a.snd_wnd, p.a.cc.cwnd)
    assert p.a.send_space == room + 5000
    p2 = _established(cfg.replace(notsent_lowat=1000))
    assert p2.a.send_space == room + 1000


def test_quickack_sends_the_due_ack_and_leaves_interactive_mode() -> None:
    p = _established(TcpConfig())
    b = p.b
    b.set_quickack(False)
    assert not b.quickack
    p.a.send(b"x" * 100)
    p.a.output(p.now)
    p.to_b(p.segs(p.a))
    assert not p.b.segments_to_send()  # interactive: the ACK is delayed
    b.set_quickack(True)
    b.output(p.now)
    acks = p.segs(b)
    assert len(acks) == 1 and acks[0].ack == p.a.snd_nxt
    assert b.quickack and not b.pingpong
