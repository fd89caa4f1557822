"""The deadlines of a TCB, one slot per kind, and which one comes first.

A connection has one timer in the sense of smoltcp's ``Timer``: ``Tcb.get_timer()`` answers with
the earliest armed deadline, computed once after the slots change (``Tcb._arm``), and
``Tcb.handle_timer(now)`` serves the kinds that are due in the order of :class:`Timer`.
"""

from __future__ import annotations

import enum


class Timer(enum.IntEnum):
    """What a deadline is for, in the order those due at the same instant are served."""

    TIME_WAIT = 0  # 2*MSL in TIME-WAIT (RFC 9293 §3.10.7.4)
    CONNECT = 1  # TcpConfig.connect_timeout in SYN-SENT / SYN-RECEIVED
    FIN_WAIT_2 = 2  # Linux tcp_fin_timeout after a full close
    USER = 3  # TCP_USER_TIMEOUT (RFC 5482): data unacknowledged this long fails the connection
    KEEPALIVE = 4  # SO_KEEPALIVE (RFC 9293 §3.8.4)
    RTO = 5  # retransmission (RFC 6298)
    PERSIST = 6  # zero-window probe / sender SWS override (RFC 9293 §3.8.6.1)
    DELACK = 7  # delayed ACK (RFC 9293 §3.8.6.3)
    PACING = 8  # the next paced segment may leave (pacing.py)
    RACK_REO = 9  # RACK reordering window of an un-SACKed segment ends (RFC 8985 §6.2)
    TLP = 10  # tail loss probe timeout, PTO (RFC 8985 §7.2)


KINDS = tuple(Timer)
# the kinds as module globals, as the states in fsm.py: a global is ~10x cheaper than Timer.X
TIME_WAIT_TIMER, CONNECT_TIMER, FIN_WAIT_2_TIMER, USER_TIMER, KEEPALIVE_TIMER, RTO_TIMER, \
    PERSIST_TIMER, DELACK_TIMER, PACING_TIMER, RACK_REO_TIMER, TLP_TIMER = KINDS


def earliest(deadlines: list[float | None]) -> tuple[float, Timer] | None:
    """The first armed deadline and its kind (the lowest kind on a tie), or None."""
    armed = [at for at in deadlines if at is not None]
    if not armed:
        return None
    best = min(armed)
    return best, KINDS[deadlines.index(best)]
