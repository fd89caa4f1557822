"""The TCP connection states and the one transition table of RFC 9293 §3.3.2 (Figure 5).

Each row is ``(state, event) -> next state``. The table is the documentation: the TCB asks it for
every move, so an illegal move raises :class:`TcpStateError` naming the state and the event
instead of silently corrupting the connection. ``print(format_table())`` prints it.
"""

from __future__ import annotations

import enum

from stacklab.errors import StacklabError


class State(enum.Enum):
    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"

    # a member is its own identity (Enum's default equality): its hash is the identity's, a C
    # slot, instead of Enum.__hash__, a Python-level call (hash of the name) per set or dict
    # lookup (``state in CAN_SEND``: every write; issue 23)
    __hash__ = object.__hash__

    def __str__(self) -> str:
        return self.value


class Event(enum.Enum):
    """What moves a connection (the labels on the arcs of RFC 9293 Figure 5)."""

    PASSIVE_OPEN = "passive OPEN"
    ACTIVE_OPEN = "active OPEN / snd SYN"
    SEND_SYN = "SEND / snd SYN"  # listener turned active (rare; kept for the diagram)
    RCV_SYN = "rcv SYN / snd SYN,ACK"
    RCV_SYN_ACK = "rcv SYN,ACK / snd ACK"
    RCV_ACK_OF_SYN = "rcv ACK of SYN"
    CLOSE = "CLOSE / snd FIN"
    CLOSE_UNSYNC = "CLOSE (nothing sent yet)"
    RCV_FIN = "rcv FIN / snd ACK"
    RCV_ACK_OF_FIN = "rcv ACK of FIN"
    TIMEOUT_2MSL = "timeout=2MSL"
    RCV_RST = "rcv RST"
    RCV_RST_PASSIVE = "rcv RST (passive open) / back to LISTEN"
    ABORT = "ABORT / snd RST"
    TIMEOUT = "timeout (connect, retransmissions, FIN-WAIT-2)"
    SYN_IN_TIME_WAIT = "new SYN reuses TIME-WAIT (RFC 6191)"

    __hash__ = object.__hash__  # as State's: the transition table's keys are (State, Event)


# The states as module globals, defined once here and imported by the TCP modules (h11's states
# are module-level sentinels too): ``State.X`` is an enum class attribute lookup (~70 ns in
# CPython 3.11, ~10x a global), and the per-segment paths test the state a dozen times.
CLOSED = State.CLOSED
LISTEN = State.LISTEN
SYN_SENT = State.SYN_SENT
SYN_RECEIVED = State.SYN_RECEIVED
ESTABLISHED = State.ESTABLISHED
FIN_WAIT_1 = State.FIN_WAIT_1
FIN_WAIT_2 = State.FIN_WAIT_2
CLOSE_WAIT = State.CLOSE_WAIT
CLOSING = State.CLOSING
LAST_ACK = State.LAST_ACK
TIME_WAIT = State.TIME_WAIT

S = State
E = Event

_SYNCHRONIZED = (S.SYN_RECEIVED, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT,
                 S.CLOSING, S.LAST_ACK, S.TIME_WAIT)

# fmt: off
TRANSITIONS: dict[tuple[State, Event], State] = {
    # opening
    (S.CLOSED,       E.PASSIVE_OPEN):       S.LISTEN,
    (S.CLOSED,       E.ACTIVE_OPEN):        S.SYN_SENT,
    (S.LISTEN,       E.RCV_SYN):            S.SYN_RECEIVED,
    (S.LISTEN,       E.SEND_SYN):           S.SYN_SENT,
    (S.LISTEN,       E.CLOSE_UNSYNC):       S.CLOSED,
    (S.SYN_SENT,     E.RCV_SYN):            S.SYN_RECEIVED,   # simultaneous open
    (S.SYN_SENT,     E.RCV_SYN_ACK):        S.ESTABLISHED,
    (S.SYN_SENT,     E.CLOSE_UNSYNC):       S.CLOSED,
    (S.SYN_RECEIVED, E.RCV_ACK_OF_SYN):     S.ESTABLISHED,
    (S.SYN_RECEIVED, E.CLOSE):              S.FIN_WAIT_1,
    (S.SYN_RECEIVED, E.RCV_FIN):            S.CLOSE_WAIT,     # ACK of SYN + FIN in one segment
    # closing: our side first
    (S.ESTABLISHED,  E.CLOSE):              S.FIN_WAIT_1,
    (S.FIN_WAIT_1,   E.RCV_ACK_OF_FIN):     S.FIN_WAIT_2,
    (S.FIN_WAIT_1,   E.RCV_FIN):            S.CLOSING,        # simultaneous close
    (S.FIN_WAIT_2,   E.RCV_FIN):            S.TIME_WAIT,
    (S.CLOSING,      E.RCV_ACK_OF_FIN):     S.TIME_WAIT,
    (S.TIME_WAIT,    E.TIMEOUT_2MSL):       S.CLOSED,
    (S.TIME_WAIT,    E.SYN_IN_TIME_WAIT):   S.CLOSED,
    # closing: their side first
    (S.ESTABLISHED,  E.RCV_FIN):            S.CLOSE_WAIT,
    (S.CLOSE_WAIT,   E.CLOSE):              S.LAST_ACK,
    (S.LAST_ACK,     E.RCV_ACK_OF_FIN):     S.CLOSED,
    # resets, aborts and timeouts (RFC 9293 §3.10.7.4 second check, §3.10.5 ABORT)
    (S.SYN_SENT,     E.RCV_RST):            S.CLOSED,
    (S.SYN_RECEIVED, E.RCV_RST_PASSIVE):    S.LISTEN,         # the listener stays; this TCB goes
    **{(st, E.RCV_RST): S.CLOSED for st in _SYNCHRONIZED},
    **{(st, E.ABORT): S.CLOSED for st in (S.LISTEN, S.SYN_SENT, *_SYNCHRONIZED)},
    **{(st, E.TIMEOUT): S.CLOSED for st in (S.SYN_SENT, *_SYNCHRONIZED)},
}
# fmt: on


class TcpStateError(StacklabError):
    """A move the RFC 9293 state diagram does not have."""

    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"RFC 9293 §3.3.2: no transition from {state} on '{event.value}'")
        self.state = state
        self.event = event


def next_state(state: State, event: Event) -> State:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise TcpStateError(state, event) from None


def format_table() -> str:
    rows = [f"{s.value:<13} --{e.value}--> {n.value}" for (s, e), n in TRANSITIONS.items()]
    return "\n".join(rows)


SYNCHRONIZED = frozenset(_SYNCHRONIZED)
# States in which the user may still send data.
CAN_SEND = frozenset({S.ESTABLISHED, S.CLOSE_WAIT})
# States in which arriving segment text is accepted (RFC 9293 §3.10.7.4 seventh check).
CAN_RECEIVE = frozenset({S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2})
