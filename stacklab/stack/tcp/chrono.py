"""Linux's TCP chronographs (tcp_chrono_start/stop, tcp_get_info_chrono_stats): how long the
connection was busy sending, and how much of that time the peer's receive window or our send
buffer was what held it back: ``tcpi_busy_time``, ``tcpi_rwnd_limited``,
``tcpi_sndbuf_limited`` (microseconds).

One chronograph runs at a time, the most interesting condition winning (``SNDBUF_LIMITED`` over
``RWND_LIMITED`` over ``BUSY``); its time is added to its total when another starts. The hooks:
after the output path ran with data queued (tcp_write_xmit, tcp_cwnd_validate)
:func:`after_output` starts BUSY if nothing ran, starts or stops RWND_LIMITED and may start
SNDBUF_LIMITED; the send queue emptying by an ACK stops BUSY
(tcp_clean_rtx_queue); a writer's wakeup stops SNDBUF_LIMITED (sndbuf.check_space's caller).
"""

from __future__ import annotations

from typing import Protocol

from .fsm import CLOSE_WAIT, ESTABLISHED
from .seq import HALF, MASK, MOD
from .sndbuf import SkbTcb, notsent

UNSPEC, BUSY, RWND_LIMITED, SNDBUF_LIMITED = range(4)  # Linux enum tcp_chrono


_NO_TIME = [0.0, 0.0, 0.0]  # the totals of every chronograph before its first (never changed)


class Chrono:
    __slots__ = ("kind", "since", "total")

    def __init__(self) -> None:
        self.kind = UNSPEC
        self.since = 0.0
        # seconds spent in BUSY, RWND_LIMITED, SNDBUF_LIMITED: the shared zeros until the
        # first is over (_set gives the chronograph a list of its own; issue 23 item 4)
        self.total = _NO_TIME

    def _set(self, kind: int, now: float) -> None:
        if self.kind > UNSPEC:
            if self.total is _NO_TIME:
                self.total = [0.0, 0.0, 0.0]
            self.total[self.kind - 1] += now - self.since
        self.since = now
        self.kind = kind

    def start(self, kind: int, now: float) -> None:
        """A condition starts: it takes over when more interesting than the running one."""
        if kind > self.kind:
            self._set(kind, now)

    def stop(self, kind: int, now: float, queues_empty: bool) -> None:
        """A condition ends: with nothing left to send the chronograph stops; else, if that
        condition was the running one, BUSY runs again."""
        if queues_empty:
            self._set(UNSPEC, now)
        elif kind == self.kind:
            self._set(BUSY, now)

    def usecs(self, now: float) -> tuple[int, int, int]:
        """(tcpi_busy_time, tcpi_rwnd_limited, tcpi_sndbuf_limited): busy is the sum of all
        three, each with the running interval so far."""
        t = list(self.total)
        if self.kind > UNSPEC:
            t[self.kind - 1] += now - self.since
        us = [round(x * 1e6) for x in t]
        return sum(us), us[1], us[2]


class TcbLike(SkbTcb, Protocol):
    """What the chronographs read of a TCB beyond the send-buffer model's (a protocol: the
    TCB's modules import these)."""

    chrono: Chrono

    @property
    def snd_una(self) -> int: ...
    @property
    def snd_nxt(self) -> int: ...
    @property
    def snd_wnd(self) -> int: ...
    @property
    def cwnd_effective(self) -> int: ...
    def cwnd_limited(self) -> bool: ...


def queues_empty(tcb: TcbLike) -> bool:
    """Nothing to send and nothing in flight (tcp_rtx_and_write_queues_empty)."""
    return len(tcb.sendbuf) == 0


def after_output(tcb: TcbLike, sent: bool, now: float) -> None:
    """After the output path ran with data to send: BUSY starts if nothing ran (the data was
    queued onto empty queues, tcp_add_write_queue_tail; the output runs at the write's instant);
    the peer's window held back the next
    segment while cwnd had room (RWND_LIMITED), or not; and when it sent, with cwnd not the
    limit, nothing left unsent and a writer waiting for buffer space (SOCK_NOSPACE), the send
    buffer is what starves the connection (SNDBUF_LIMITED)."""
    # (runs after every output with data: Chrono.start/stop and queues_empty written out)
    left = notsent(tcb)
    chrono = tcb.chrono
    if chrono.kind < BUSY:
        chrono._set(BUSY, now)
    if left:
        d = (tcb.snd_nxt - tcb.snd_una) & MASK  # seq_sub(SND.NXT, SND.UNA), written out
        flight = d - MOD if d > HALF else d
        mss = tcb.snd_mss
        # the next segment does not fit the room after SND.NXT, cwnd having some
        if (left if left < mss else mss) > tcb.snd_wnd - flight \
                and flight < tcb.cwnd_effective:
            if chrono.kind < RWND_LIMITED:
                chrono._set(RWND_LIMITED, now)
            return
    if not tcb.sendbuf.data:
        chrono._set(UNSPEC, now)
    elif chrono.kind == RWND_LIMITED:
        chrono._set(BUSY, now)
    if sent and not left and tcb.snd_nospace and not tcb.cwnd_limited() \
            and tcb.state in (ESTABLISHED, CLOSE_WAIT):
        chrono.start(SNDBUF_LIMITED, now)


def on_acked_all(tcb: TcbLike, now: float) -> None:
    """An ACK left nothing in flight (the retransmission queue is empty): BUSY stops."""
    tcb.chrono.stop(BUSY, now, queues_empty(tcb))
