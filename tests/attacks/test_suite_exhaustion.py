"""Exhaustion by peers that stop reading: connections to a zero-window peer hold at most
their send buffer, and once the application closes them (orphans, FIN-WAIT-1 with data that
cannot leave) they die as Linux's do (tcp_orphan_retries = 0 means 8 persist probes, each
backed off up to TCP_RTO_MAX = 120 s: well within 30 minutes), not after days."""

from __future__ import annotations

from stacklab.stack.tcp.config import TcpConfig

from ..fuzz.frames import B4
from .common import Bench

SINK = 9


def zero_window_peers(n: int) -> tuple[Bench, list]:
    """``n`` connections A→B:9 whose B side never reads; A writes 1 MB into each."""
    b = Bench()
    b.sink_ports.add(SINK)
    b.b.tcp.listen(SINK, lambda t: None, config=TcpConfig(recv_buffer=16 * 1024))
    tcbs = []
    for i in range(n):
        tcb = b.a.tcp.connect(B4, SINK, b.now)
        b.pump()
        accepted = tcb.send(bytes(1 << 20))
        assert accepted <= TcpConfig().wmem[2]
        b.a.tcp.kick(tcb)
        tcbs.append(tcb)
        del i
    b.advance(10.0)
    return b, tcbs


def test_zero_window_peers_hold_at_most_the_send_buffers():
    b, tcbs = zero_window_peers(20)
    assert all(t.snd_wnd == 0 for t in tcbs)  # the peers' windows closed
    queued = sum(t.send_queued for t in tcbs)
    assert queued <= 20 * TcpConfig().wmem[2]
    b.verify()  # the live connections are unaffected


def test_orphans_to_a_zero_window_peer_die_within_30_minutes():
    b, tcbs = zero_window_peers(20)
    for t in tcbs:
        t.close(b.now, full=True)  # the application closes: orphans in FIN-WAIT-1
        b.a.tcp.kick(t)
    b.advance(1800.0)
    left = [t.state for t in tcbs if b.a.tcp.conns.get(t.key) is t]
    assert left == [], f"{len(left)} orphans left after 30 min: {left[:3]}"
    b.verify()
