"""One test per arc of the RFC 9293 state diagram, two TCBs on explicit virtual time."""

from __future__ import annotations

import pytest

from stacklab.stack.tcp.config import TcpConfig
from stacklab.stack.tcp.events import ConnectionLost
from stacklab.stack.tcp.fsm import TRANSITIONS, Event, State, TcpStateError, next_state
from stacklab.stack.tcp.segment import ACK, FIN, RST, SYN, Segment
from stacklab.stack.tcp.seq import seq_add
from stacklab.stack.tcp.tcb import Tcb
from stacklab.stack.tcp.timers import Timer

from .pair import A_IP, A_PORT, B_IP, B_PORT, Pair, wire

S = State


def events(tcb: Tcb) -> list:
    out = []
    while (ev := tcb.next_event()) is not None:
        out.append(ev)
    return out


def lost(tcb: Tcb) -> ConnectionLost | None:
    for ev in events(tcb):
        if isinstance(ev, ConnectionLost):
            return ev
    return None


def established() -> Pair:
    p = Pair()
    p.handshake()
    assert p.a.state is S.ESTABLISHED and p.b.state is S.ESTABLISHED
    events(p.a)
    events(p.b)
    return p


def test_table_covers_all_eleven_states_and_rejects_illegal_moves():
    seen = {s for s, _ in TRANSITIONS} | set(TRANSITIONS.values())
    assert seen == set(State)
    with pytest.raises(TcpStateError, match="TIME-WAIT"):
        next_state(S.TIME_WAIT, Event.CLOSE)
    with pytest.raises(TcpStateError):
        next_state(S.CLOSED, Event.RCV_FIN)


def test_three_way_handshake_numbers_and_options():
    p = Pair()
    p.a.connect(0.0)
    syn = p.segs(p.a)
    assert len(syn) == 1 and syn[0].flags == SYN and syn[0].seq == 1000
    assert syn[0].mss() == 1460 and syn[0].wscale() is not None
    assert syn[0].sack_permitted() and syn[0].timestamps()[1] == 0
    p.to_b(syn)
    assert p.b.state is S.SYN_RECEIVED
    synack = p.segs(p.b)
    assert synack[0].flags == SYN | ACK and synack[0].ack == 1001 and synack[0].seq == 900000
    assert synack[0].timestamps()[1] == syn[0].timestamps()[0]  # TSecr echoes the SYN's TSval
    p.to_a(synack)
    ack = p.segs(p.a)
    assert ack[0].flags == ACK and ack[0].seq == 1001 and ack[0].ack == 900001
    p.now = 0.25
    p.to_b(ack)
    assert p.a.states_entered == ["SYN-SENT", "ESTABLISHED"]
    assert p.b.states_entered == ["LISTEN", "SYN-RECEIVED", "ESTABLISHED"]
    for t in (p.a, p.b):
        assert t.ts_ok and t.sack_ok and t.wscale_ok
        assert t.snd_mss == 1460 - 12  # timestamps take 12 bytes of every segment
    # every transition is recorded with time and cause
    when, old, new, cause = p.b.transitions[-1]
    assert (old, new) == (S.SYN_RECEIVED, S.ESTABLISHED) and cause and when == 0.25


def test_options_not_offered_are_not_used():
    cfg = TcpConfig(window_scaling=False, timestamps=False, sack=False)
    p = Pair(a_cfg=cfg)
    p.handshake()
    assert p.b.state is S.ESTABLISHED
    synack = [v for d, v in p.log if d == "b>a"][0]
    assert synack.wscale() is None and synack.timestamps() is None
    assert not synack.sack_permitted()
    assert not p.b.ts_ok and p.b.rcv_wscale == 0 and p.b.snd_mss == 1460


def test_simultaneous_open():
    a = Tcb(A_IP, 5000, B_IP, 6000, iss=100, now=0.0)
    b = Tcb(B_IP, 6000, A_IP, 5000, iss=7000, now=0.0)
    a.connect(0.0)
    b.connect(0.0)
    sa, sb = [wire(a, s) for s in a.segments_to_send()], [wire(b, s) for s in b.segments_to_send()]
    a.receive(sb[0], 0.01)
    b.receive(sa[0], 0.01)
    assert a.state is S.SYN_RECEIVED and b.state is S.SYN_RECEIVED
    sa, sb = [wire(a, s) for s in a.segments_to_send()], [wire(b, s) for s in b.segments_to_send()]
    assert sa[0].flags == SYN | ACK and sa[0].seq == 100 and sa[0].ack == 7001
    for v in sb:
        a.receive(v, 0.02)
    for v in sa:
        b.receive(v, 0.02)
    assert a.states_entered == ["SYN-SENT", "SYN-RECEIVED", "ESTABLISHED"]
    assert b.states_entered == ["SYN-SENT", "SYN-RECEIVED", "ESTABLISHED"]


def test_four_way_teardown_and_time_wait_expiry():
    p = established()
    p.a.close(p.now)
    assert p.a.state is S.FIN_WAIT_1
    fin = p.segs(p.a)
    assert fin[0].flags & FIN
    p.to_b(fin)
    assert p.b.state is S.CLOSE_WAIT
    p.to_a(p.segs(p.b))
    assert p.a.state is S.FIN_WAIT_2
    p.b.close(p.now)
    assert p.b.state is S.LAST_ACK
    p.to_a(p.segs(p.b))
    assert p.a.state is S.TIME_WAIT
    t_tw = p.now
    p.to_b(p.segs(p.a))
    assert p.b.state is S.CLOSED and p.b.finished
    # TIME-WAIT lasts 2*MSL = 60 s by default
    assert p.a.get_timer() == pytest.approx(t_tw + 60.0)
    p.a.handle_timer(t_tw + 59.9)
    assert p.a.state is S.TIME_WAIT
    p.a.handle_timer(t_tw + 60.0)
    assert p.a.state is S.CLOSED
    assert p.a.states_entered[-4:] == ["FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT", "CLOSED"]
    assert p.b.states_entered[-3:] == ["CLOSE-WAIT", "LAST-ACK", "CLOSED"]
    assert p.a.transitions[-1][3] == Event.TIMEOUT_2MSL.value


def test_msl_is_configurable():
    p = Pair(a_cfg=TcpConfig(msl=2.0))
    p.handshake()
    p.a.close(p.now)
    p.run(until=1.0)
    p.b.close(p.now)
    p.run(until=2.0)
    assert p.a.state is S.TIME_WAIT
    assert p.a.deadlines[Timer.TIME_WAIT] - p.a.transitions[-1][0] == pytest.approx(4.0)


def test_simultaneous_close():
    p = established()
    p.a.close(p.now)
    p.b.close(p.now)
    fa, fb = p.segs(p.a), p.segs(p.b)
    p.to_b(fa)
    p.to_a(fb)
    assert p.a.state is S.CLOSING and p.b.state is S.CLOSING
    p.step()
    assert p.a.state is S.TIME_WAIT and p.b.state is S.TIME_WAIT
    assert p.a.states_entered[-3:] == ["FIN-WAIT-1", "CLOSING", "TIME-WAIT"]


def test_fin_and_ack_of_fin_in_one_segment():
    p = established()
    p.a.close(p.now)
    p.to_b(p.segs(p.a))  # b: CLOSE-WAIT; its ACK is lost
    p.segs(p.b)
    p.b.close(p.now)  # the FIN it sends also ACKs a's FIN
    p.to_a(p.segs(p.b))
    assert p.a.states_entered[-3:] == ["FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT"]


def test_half_close_peer_keeps_sending():
    p = established()
    p.a.close(p.now)  # write_eof
    p.run(until=p.now + 0.5)
    assert p.a.state is S.FIN_WAIT_2 and p.b.state is S.CLOSE_WAIT
    assert p.b.at_eof
    p.b.send(b"still talking")
    p.b.output(p.now)
    p.run(until=p.now + 0.5)
    assert p.a.read() == b"still talking"
    p.b.close(p.now)
    p.run(until=p.now + 1.0)
    assert p.a.state is S.TIME_WAIT and p.b.state is S.CLOSED


def test_fin_retransmitted_into_time_wait_is_reacked_and_restarts_timer():
    p = established()
    p.a.close(p.now)
    p.run(until=p.now + 0.5)
    p.b.close(p.now)
    p.to_a(p.segs(p.b))  # a enters TIME-WAIT
    assert p.a.state is S.TIME_WAIT
    first_deadline = p.a.deadlines[Timer.TIME_WAIT]
    p.segs(p.a)  # the last ACK is lost
    p.now += 5.0
    p.b.handle_timer(p.now)  # b's RTO: FIN again
    refin = p.segs(p.b)
    assert refin and refin[0].flags & FIN
    assert p.b.stats.retransmits >= 1
    p.to_a(refin)
    again = p.segs(p.a)
    assert again and again[0].flags == ACK and again[0].ack == seq_add(refin[0].seq, 1)
    deadline = p.a.deadlines[Timer.TIME_WAIT]
    assert deadline == pytest.approx(p.now + 60.0) and deadline > first_deadline
    p.to_b(again)
    assert p.b.state is S.CLOSED


def test_last_ack_gives_up_after_retries():
    p = Pair(b_cfg=TcpConfig(max_retries=3))
    p.handshake()
    p.a.close(p.now)
    p.run(until=p.now + 0.5)
    p.filter = lambda d, v: None  # the network dies
    p.b.close(p.now)
    p.run(until=p.now + 100)
    assert p.b.state is S.CLOSED
    assert p.b.stats.rto_expiries == 3


# -- RST in every state ---------------------------------------------------------------------------


def rst_for(tcb: Tcb) -> Segment:
    return Segment(tcb.rcv_nxt, 0, RST, 0)


def test_rst_in_syn_sent_means_refused():
    a = Tcb(A_IP, A_PORT, B_IP, B_PORT, iss=1, now=0.0)
    a.connect(0.0)
    a.segments_to_send()
    a.receive(Segment(0, 2, RST | ACK, 0), 0.01)  # what a closed port answers
    assert a.state is S.CLOSED
    assert isinstance(lost(a).error, ConnectionRefusedError)


def test_rst_in_syn_sent_with_wrong_ack_is_ignored():
    a = Tcb(A_IP, A_PORT, B_IP, B_PORT, iss=1, now=0.0)
    a.connect(0.0)
    a.segments_to_send()
    a.receive(Segment(0, 77, RST | ACK, 0), 0.01)
    assert a.state is S.SYN_SENT


def test_bad_ack_in_syn_sent_gets_rst():
    a = Tcb(A_IP, A_PORT, B_IP, B_PORT, iss=1000, now=0.0)
    a.connect(0.0)
    a.segments_to_send()
    a.receive(Segment(5, 999, SYN | ACK, 1000), 0.01)  # SEG.ACK =< ISS
    out = a.segments_to_send()
    assert out[0].flags == RST and out[0].seq == 999 and a.state is S.SYN_SENT


def test_rst_in_syn_received_passive_returns_to_listen():
    p = Pair()
    p.a.connect(0.0)
    p.to_b(p.segs(p.a))
    p.segs(p.b)
    p.b.receive(rst_for(p.b), 0.01)
    assert p.b.state is S.LISTEN and p.b.finished
    assert p.b.states_entered == ["LISTEN", "SYN-RECEIVED", "LISTEN"]


@pytest.mark.parametrize("state", ["ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT"])
def test_rst_in_synchronized_states_resets(state):
    p = established()
    if state == "FIN-WAIT-1":
        p.a.close(p.now)
        p.segs(p.a)
    elif state == "FIN-WAIT-2":
        p.a.close(p.now)
        p.step()
        p.step()
    elif state == "CLOSE-WAIT":
        p.b.close(p.now)
        p.step()
    assert p.a.state.value == state
    events(p.a)
    p.a.receive(rst_for(p.a), p.now)
    assert p.a.state is S.CLOSED
    assert isinstance(lost(p.a).error, ConnectionResetError)
    assert p.a.transitions[-1][3] == f"RST in {state}"


@pytest.mark.parametrize("state", ["CLOSING", "LAST-ACK", "TIME-WAIT"])
def test_rst_in_closing_states_closes_quietly(state):
    p = established()
    if state == "CLOSING":
        p.a.close(p.now)
        p.b.close(p.now)
        fb = p.segs(p.b)
        p.segs(p.a)
        p.to_a(fb)
    elif state == "LAST-ACK":
        p.b.close(p.now)
        p.step()
        p.step()
        p.a.close(p.now)
        p.segs(p.a)
    else:
        p.a.close(p.now)
        p.run(until=p.now + 0.2)
        p.b.close(p.now)
        p.run(until=p.now + 0.2)
    assert p.a.state.value == state
    events(p.a)
    p.a.receive(rst_for(p.a), p.now)
    assert p.a.state is S.CLOSED


def test_rst_in_window_but_not_exact_gets_challenge_ack():
    p = established()
    p.a.receive(Segment(seq_add(p.a.rcv_nxt, 10), 0, RST, 0), p.now)
    assert p.a.state is S.ESTABLISHED
    out = p.a.segments_to_send()
    assert out[0].flags == ACK and out[0].ack == p.a.rcv_nxt
    assert p.a.stats.challenge_acks == 1


def test_rst_out_of_window_is_dropped_silently():
    p = established()
    p.a.receive(Segment(seq_add(p.a.rcv_nxt, 10_000_000), 0, RST, 0), p.now)
    assert p.a.state is S.ESTABLISHED and p.a.segments_to_send() == []


def test_syn_in_established_gets_challenge_ack():
    p = established()
    p.a.receive(Segment(p.a.rcv_nxt, 0, SYN, 1000), p.now)
    assert p.a.state is S.ESTABLISHED
    assert p.a.segments_to_send()[0].flags == ACK


def test_abort_sends_rst_and_peer_is_reset():
    p = established()
    p.a.abort(p.now)
    assert p.a.state is S.CLOSED
    out = p.segs(p.a)
    assert out[0].flags & RST and out[0].seq == p.a.snd_nxt
    p.to_b(out)
    assert p.b.state is S.CLOSED
    assert isinstance(lost(p.b).error, ConnectionResetError)


def test_abort_in_syn_sent_sends_nothing():
    a = Tcb(A_IP, A_PORT, B_IP, B_PORT, iss=1, now=0.0)
    a.connect(0.0)
    a.segments_to_send()
    a.abort(0.0)
    assert a.state is S.CLOSED and a.segments_to_send() == []


def test_close_in_syn_sent_closes():
    a = Tcb(A_IP, A_PORT, B_IP, B_PORT, iss=1, now=0.0)
    a.connect(0.0)
    a.close(0.0)
    assert a.states_entered == ["SYN-SENT", "CLOSED"]


# -- SYN retransmission and connect timeout -------------------------------------------------------


def test_syn_retransmitted_with_backoff_then_timeout():
    a = Tcb(A_IP, A_PORT, B_IP, B_PORT, iss=1, now=0.0, config=TcpConfig(syn_retries=3))
    a.connect(0.0)
    sent_at = [0.0]
    a.segments_to_send()
    now = 0.0
    while a.state is S.SYN_SENT:
        now = a.get_timer()
        a.handle_timer(now)
        if a.segments_to_send():
            sent_at.append(now)
    assert sent_at == pytest.approx([0.0, 1.0, 3.0, 7.0])  # RTO 1 s doubling (RFC 6298 §5.5)
    assert now == pytest.approx(15.0)
    assert isinstance(lost(a).error, TimeoutError)


def test_connect_timeout_setting():
    a = Tcb(A_IP, A_PORT, B_IP, B_PORT, iss=1, now=0.0, config=TcpConfig(connect_timeout=2.5))
    a.connect(0.0)
    while a.state is S.SYN_SENT:
        a.handle_timer(a.get_timer())
    assert a.transitions[-1][0] == pytest.approx(2.5)
    assert isinstance(lost(a).error, TimeoutError)


def test_lost_syn_ack_is_retransmitted():
    p = Pair()
    drops = {"n": 0}

    def drop_first_synack(d, v):
        if d == "b>a" and v.flags == SYN | ACK and drops["n"] == 0:
            drops["n"] += 1
            return None
        return v
    p.filter = drop_first_synack
    p.a.connect(0.0)
    p.run(until=5.0)
    assert p.a.state is S.ESTABLISHED and p.b.state is S.ESTABLISHED
    assert p.b.stats.retransmits + p.a.stats.retransmits >= 1


def test_passive_open_gives_up_after_synack_retries():
    """A SYN-ACK never answered is resent tcp_synack_retries = 5 times (Linux), 1+2+4+8+16 s,
    and the half-open connection is gone at 63 s (the active side's tcp_syn_retries is 6)."""
    p = Pair()
    p.filter = lambda d, v: None if d == "b>a" else v
    p.a.connect(0.0)
    p.step()
    p.a.config.syn_retries = 0  # the client's own retries are not what this test is about
    p.run(until=200.0)
    assert p.b.stats.retransmits == 5
    assert p.b.state is S.CLOSED
    assert p.b.transitions[-1][0] == pytest.approx(63.0, abs=0.1)
