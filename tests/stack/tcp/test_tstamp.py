"""SO_TIMESTAMPING transmit reports of TCP (stacklab/stack/tcp/tstamp.py), on a TCB pair."""

from __future__ import annotations

import errno

from stacklab.stack.tcp import tstamp
from stacklab.stack.tcp.errqueue import ErrQueue
from stacklab.stack.tcp.tstamp import (
    OPT_ID,
    OPT_ID_TCP,
    OPT_STATS,
    OPT_TSONLY,
    SCM_TSTAMP_ACK,
    SCM_TSTAMP_SCHED,
    SCM_TSTAMP_SND,
    SOFTWARE,
    TX_ACK,
    TX_SCHED,
    TX_SOFTWARE,
    TxTimestamps,
    check_flags,
)

from .pair import Pair

ALL = TX_SCHED | TX_SOFTWARE | TX_ACK | SOFTWARE | OPT_ID | OPT_TSONLY


def reports(q: ErrQueue) -> list[tuple[int, int, float | None]]:
    """What recvmsg(MSG_ERRQUEUE) would read: (ee_info, ee_data, SCM_TIMESTAMPING time)."""
    out = []
    while (e := q.take()) is not None:
        assert (e.ee_errno, e.ee_origin) == (errno.ENOMSG, tstamp.SO_EE_ORIGIN_TIMESTAMPING)
        out.append((e.ee_info, e.ee_data, e.tstamp))
    return out


def established(flags: int) -> tuple[Pair, ErrQueue]:
    p = Pair()
    p.handshake()
    p.run()
    q = ErrQueue()
    ts = p.a.tstamp = TxTimestamps(q)
    ts.set_flags(flags, p.a._abs(p.a.snd_una), p.a.sendbuf.end)
    return p, q


def send(p: Pair, n: int) -> None:
    assert p.a.send(bytes(n)) == n
    assert p.a.tstamp is not None
    p.a.tstamp.sendmsg(p.a.sendbuf.end)  # the send call returns (sockets.py sendmsg_done)
    p.a.output(p.now)  # then the layer's poll sends (layer.kick)


def test_a_retransmission_reports_sched_and_snd_again() -> None:
    # each transmission of the marked byte enters the scheduler and the driver again (the
    # retransmitted clone shares the skb's timestamp flags); the ACK reports once
    p, q = established(ALL)
    send(p, 500)
    t0 = p.now
    p.segs(p.a)  # lost
    assert reports(q) == [(SCM_TSTAMP_SCHED, 499, t0), (SCM_TSTAMP_SND, 499, t0)]
    rto = p.a.get_timer()
    assert rto is not None
    p.now = rto
    p.a.handle_timer(p.now)
    p.run()
    got = reports(q)
    assert got[:2] == [(SCM_TSTAMP_SCHED, 499, rto), (SCM_TSTAMP_SND, 499, rto)]
    assert got[2:] == [(SCM_TSTAMP_ACK, 499, rto)]  # once (the pair delivers in the same step)


def test_opt_id_counts_from_snd_una_or_with_opt_id_tcp_from_the_write_sequence() -> None:
    # 300 bytes written, not sent yet acknowledged: OPT_ID counts from SND.UNA (they are in
    # the count), OPT_ID_TCP from the next byte written (they are not)
    for flags, key in ((TX_ACK | OPT_ID, 399), (TX_ACK | OPT_ID | OPT_ID_TCP, 99)):
        p, q = established(0)
        assert p.a.send(bytes(300)) == 300
        assert p.a.tstamp is not None
        p.a.tstamp.set_flags(flags, p.a._abs(p.a.snd_una), p.a.sendbuf.end)
        send(p, 100)
        p.run()
        assert reports(q) == [(SCM_TSTAMP_ACK, key, None)]


def test_opt_id_base_stays_while_opt_id_stays_on() -> None:
    p, q = established(TX_ACK | OPT_ID)
    send(p, 100)
    p.run()
    assert p.a.tstamp is not None
    p.a.tstamp.set_flags(TX_ACK | OPT_ID | SOFTWARE, p.a._abs(p.a.snd_una), p.a.sendbuf.end)
    send(p, 100)
    p.run()
    assert [(k, d) for k, d, _ in reports(q)] == [(SCM_TSTAMP_ACK, 99), (SCM_TSTAMP_ACK, 199)]


def test_a_mark_keeps_the_flags_of_its_send_call() -> None:
    p, q = established(TX_SCHED)
    send(p, 100)
    assert p.a.tstamp is not None
    p.a.tstamp.set_flags(0, 0, 0)  # switched off after the write: the mark still reports
    p.run()
    assert [k for k, _, _ in reports(q)] == [SCM_TSTAMP_SCHED]
    send(p, 100)  # no recording flag: no mark
    p.run()
    assert reports(q) == []


def test_check_flags_errors_as_linux() -> None:
    assert check_flags(ALL, 0, True) == 0
    assert check_flags(OPT_ID, 0, False) == errno.EINVAL  # CLOSED or LISTEN
    assert check_flags(OPT_ID | TX_ACK, OPT_ID, False) == 0  # already on: nothing to count
    assert check_flags(OPT_ID_TCP, 0, True) == errno.EINVAL  # without OPT_ID
    assert check_flags(OPT_STATS, 0, True) == errno.EINVAL  # without OPT_TSONLY
    assert check_flags(OPT_STATS | OPT_TSONLY, 0, True) == 0
    assert check_flags(1 << 20, 0, True) == errno.EINVAL  # not a flag
    assert check_flags(tstamp.BIND_PHC, 0, True) == errno.EOPNOTSUPP  # no PTP clock
