"""Socket options of a TCB as Linux applies them: TCP_QUICKACK (TCP_NOTSENT_LOWAT, per socket
and the net.ipv4.tcp_notsent_lowat default: test_sndbuf.py)."""

from __future__ import annotations

from stacklab.stack.tcp.config import TcpConfig

from .pair import Pair


def _established(cfg: TcpConfig) -> Pair:
    p = Pair(a_cfg=cfg)
    p.handshake()
    p.run()
    return p


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
