"""The TCP layer's timer index is lazy (layer.py): a deadline that moves later or goes away
keeps its entry, which comes due early and is asked again. What the timers do must happen at
their true deadlines all the same, and a wake for an early entry must change nothing: no
frame, no counter, no random draw. Driven here as a sans-IO driver does: wake at
``get_timer()``, ``handle_timer(now)``, collect the frames."""

from __future__ import annotations

from stacklab.net.network import Network
from stacklab.stack.host import Host
from stacklab.stack.tcp.config import TcpConfig
from stacklab.stack.tcp.tcb import Tcb
from stacklab.stack.tcp.timers import DELACK_TIMER, KEEPALIVE_TIMER, RTO_TIMER

from .hostframes import ACK, ISN, established, frame, sent


def _wake(h: Host, until: float) -> list[tuple[float, int, int]]:
    """Run the host's timers up to ``until``: (time, frames sent, counters changed) per
    wake."""
    wakes = []
    while (t := h.get_timer()) is not None and t <= until:
        before = dict(h.counters)
        rng = h.rng.getstate()
        h.handle_timer(t)
        out = h.frames_to_send()
        changed = sum(1 for k, v in h.counters.items() if before.get(k, 0) != v)
        if not out and not changed:
            assert h.rng.getstate() == rng
        wakes.append((t, len(out), changed))
    return wakes


def _send(h: Host, tcb: Tcb, data: bytes, now: float) -> None:
    _wake(h, now)  # the host's own timers first (NDP's)
    tcb.send(data)
    h.tcp.kick(tcb)
    h.tcp.poll(now)


def test_a_retransmission_timeout_moved_later_fires_at_its_true_time() -> None:
    h, tcb, iss = established()
    _send(h, tcb, b"x" * 3000, 1.0)
    sent(h)
    first = tcb.deadlines[RTO_TIMER]
    assert first is not None and h.get_timer() == first
    h.receive_frame(0, frame(ISN + 1, iss + 1448, ACK), 1.1)  # part acknowledged: RTO later
    sent(h)
    true = tcb.deadlines[RTO_TIMER]
    assert true is not None and true > first
    wakes = _wake(h, true)  # (at ``first`` too, for the lazy entry: with nothing done)
    t, frames, _ = wakes[-1]
    assert t == true and frames == 1 and tcb.stats.retransmits == 1
    assert all(w[1] == 0 and w[2] == 0 for w in wakes[:-1])


def test_a_deadline_moved_earlier_fires_then() -> None:
    h, tcb, iss = established(TcpConfig(keepalive=True, keepidle=60.0))
    _wake(h, 30.0)
    keep = tcb.deadlines[KEEPALIVE_TIMER]
    assert keep is not None and h.get_timer() == keep
    _send(h, tcb, b"y" * 100, 31.0)  # the RTO comes before the keepalive
    assert len(sent(h)) == 1
    rto = tcb.deadlines[RTO_TIMER]
    assert rto is not None and rto < keep and h.get_timer() == rto
    wakes = _wake(h, rto)
    assert wakes == [(rto, 1, wakes[0][2])] and tcb.stats.retransmits == 1


def test_a_cleared_delayed_ack_wakes_for_nothing() -> None:
    h, tcb, _ = established()
    _wake(h, 1.0)
    seq = ISN + 1
    for i in range(40):  # out of quick-ACK mode: every other segment acknowledged
        h.receive_frame(0, frame(seq, tcb.snd_nxt, ACK, b"a" * 1000), 1.0 + i / 1000)
        seq += 1000
    h.frames_to_send()
    h.receive_frame(0, frame(seq, tcb.snd_nxt, ACK, b"a" * 1000), 1.05)
    assert sent(h) == []  # one segment: the ACK is delayed
    delack = tcb.deadlines[DELACK_TIMER]
    assert delack is not None and h.tcp.get_timer() <= delack  # (or an earlier lazy entry)
    h.receive_frame(0, frame(seq + 1000, tcb.snd_nxt, ACK, b"b" * 1000), 1.051)
    (_, ack), = sent(h)  # the second: acknowledged at once, the delayed ACK cleared
    assert ack.ack == seq + 2000 and tcb.deadlines[DELACK_TIMER] is None
    assert h.tcp.get_timer() <= delack  # a lazy entry, early
    before = dict(h.counters)
    wakes = _wake(h, delack + 1.0)
    assert all(w[1:] == (0, 0) for w in wakes)
    assert dict(h.counters) == before and h.tcp.get_timer() is None and not h.tcp._timer_heap


def test_a_bulk_transfer_indexes_a_deadline_every_few_hundred_segments() -> None:
    """Every ACK moves the sender's RTO later and the receiver arms and clears its delayed
    ACK every other segment: neither is a heap push any more (it was one per segment)."""
    net = Network(seed=1)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="5ms", rate="100Mbit")
    net.autoconfigure()
    size = 4 * 1024 * 1024

    async def sink(r, w):
        assert len(await r.read()) == size
        w.close()

    async def main():
        await b.start_server(sink, 5000)
        _, w = await a.open_connection("b", 5000)
        w.write(b"z" * size)
        await w.drain()
        w.close()
        await w.wait_closed()

    net.run(main(), until="60s")
    segments = a.counters["tcp.tx.segments"] + b.counters["tcp.tx.segments"]
    assert segments > 3000
    pushes = a.tcp._timer_seq + b.tcp._timer_seq
    assert pushes < segments / 100, (pushes, segments)
