"""The congestion-control interface of a TCB, pluggable by name (like aioquic's ``congestion/``).

The controller owns ``cwnd`` and ``ssthresh`` (bytes). Loss *detection* and the recovery
mechanics (duplicate ACKs, SACK scoreboard, NewReno window inflation, RTO) live in the TCB and
:mod:`..recovery`; a controller only reacts to:

* ``on_ack(acked, flight, now, rtt)``: new data cumulatively acknowledged outside recovery;
* ``on_congestion_event(flight, now)``: fast retransmit started a recovery episode: set
  ``ssthresh`` and ``cwnd`` (multiplicative decrease);
* ``on_recovery_end(now)``: the episode is over (the TCB may clamp ``cwnd`` afterwards);
* ``on_rto(flight, now)``: the retransmission timer expired (RFC 5681 §3.1: loss window).
* ``on_ecn(flight, now)``: an ECE (RFC 3168 §6.1.2): by default the decrease of
  ``on_congestion_event``; the TCB then brings cwnd down to ssthresh (ecn.py).

A controller that needs more than the acked byte count sets ``wants_samples``: the TCB then
keeps delivery-rate records (:mod:`..rate`) and calls ``on_rate_sample(rs, now)`` for every ACK
that advances SND.UNA, before ``on_ack`` (Linux: ``pkts_acked``/``cong_control`` see the
``rate_sample``). A controller that sets ``needs_pacing`` (BBR) has its segments paced at
``pacing_rate`` (:mod:`..pacing`).

The package registers the built-in algorithms (``congestion/__init__.py``); the algorithm
modules import only this one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import shared_int

if TYPE_CHECKING:
    from ..rate import RateSample

INITIAL_WINDOW_SEGMENTS = 10  # RFC 6928
LOSS_WINDOW_SEGMENTS = 1  # RFC 5681 §3.1


class CongestionController:
    name = "base"  # what create_congestion() knows it by (Linux: TCP_CONGESTION)
    wants_samples = False  # on_rate_sample() for every ACK (per-ACK RTT, delivery rate)
    needs_pacing = False  # the algorithm relies on pacing (Linux: BBR sets SK_PACING_NEEDED)
    # the send buffer autotuning provisions this many windows (Linux ca_ops->sndbuf_expand in
    # tcp_sndbuf_expand, 2 without one: fast recovery needs data to send; config.send_buffer_for)
    sndbuf_expand = 2
    # the algorithm sets cwnd in recovery itself (Linux: ca_ops->cong_control, BBR): no PRR
    owns_cwnd = False
    pacing_rate: float | None = None  # bytes/s the controller paces at; None: from cwnd/SRTT
    # one per connection end (issue 23 item 4): slots; ``__dict__`` for a subclass's fields
    __slots__ = ("mss", "initial_segments", "cwnd", "ssthresh", "__dict__")

    def __init__(self, mss: int) -> None:
        self.mss = mss
        # the initial window in segments: RFC 6928's 10, or the route's initcwnd (Linux
        # tcp_init_cwnd; route_metrics.py)
        self.initial_segments = INITIAL_WINDOW_SEGMENTS
        self.cwnd = shared_int(INITIAL_WINDOW_SEGMENTS * mss)
        self.ssthresh = 1 << 30  # "arbitrarily high" (RFC 5681 §3.1)

    def set_mss(self, mss: int) -> None:
        """Called once the connection's effective MSS is known (after the handshake)."""
        self.mss = mss
        self.cwnd = shared_int(self.initial_segments * mss)  # (one object for most connections)

    def slow_start(self, acked: int) -> int:
        """RFC 5681 eq. 2 with byte counting (RFC 3465), as Linux (tcp_slow_start): cwnd grows
        by everything a stretch ACK acknowledges, no L = 2*SMSS limit; returns the acked bytes
        left over once cwnd reached ssthresh."""
        room = max(0, self.ssthresh - self.cwnd)
        inc = min(acked, room) if room else 0
        self.cwnd += inc
        return acked - inc if self.cwnd >= self.ssthresh else 0

    def on_ack(self, acked: int, flight: int, now: float, rtt: float | None) -> None:
        """``acked`` new bytes were cumulatively acknowledged; ``flight`` was in flight before."""

    def on_rate_sample(self, rs: RateSample, now: float) -> None:
        """The delivery-rate sample of an ACK advancing SND.UNA (only with ``wants_samples``)."""

    def adopt(self, old: CongestionController) -> None:
        """TCP_CONGESTION on an open connection (Linux tcp_reinit_congestion_control): this
        new controller goes on from the window the old one reached."""
        self.cwnd, self.ssthresh = old.cwnd, old.ssthresh
        self.initial_segments = old.initial_segments

    def on_idle(self, idle: float, rto: float, restart: bool) -> None:
        """Sending resumes after ``idle`` seconds with nothing in flight. With ``restart``
        (Linux tcp_slow_start_after_idle) and an idle period longer than the RTO, the window
        restarts (RFC 5681 §4.1) as Linux's tcp_cwnd_restart: ssthresh keeps 3/4 of cwnd, cwnd
        halves per RTO idle, down to the initial window at most."""
        if not restart or idle <= rto:
            return
        cwnd = self.cwnd
        floor = min(self.initial_segments * self.mss, cwnd)
        self.ssthresh = max(self.ssthresh, (cwnd >> 1) + (cwnd >> 2))
        idle -= rto
        while idle > 0 and cwnd > floor:
            cwnd >>= 1
            idle -= rto
        self.cwnd = max(cwnd, floor)

    def on_congestion_event(self, flight: int, now: float) -> None:
        """Loss inferred from duplicate ACKs / SACK: multiplicative decrease."""
        self.ssthresh = max(flight // 2, 2 * self.mss)
        self.cwnd = self.ssthresh

    def on_ecn(self, flight: int, now: float) -> None:
        """ECE: congestion without loss (RFC 3168 §6.1.2), answered as a loss would be (Linux
        tcp_enter_cwr takes ssthresh from the algorithm)."""
        self.on_congestion_event(flight, now)

    def on_recovery_end(self, now: float) -> None:
        """A cumulative ACK covered everything outstanding at the start of fast recovery."""

    def on_rto(self, flight: int, now: float) -> None:
        """The retransmission timer expired."""
        self.ssthresh = max(flight // 2, 2 * self.mss)  # RFC 5681 eq. 4
        self.cwnd = LOSS_WINDOW_SEGMENTS * self.mss

    @property
    def in_slow_start(self) -> bool:
        return self.cwnd < self.ssthresh


_Cls = type[CongestionController]
_REGISTRY: dict[str, _Cls] = {}


def register_congestion(cls: _Cls) -> _Cls:
    """Makes ``cls`` available to :func:`create_congestion` under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def create_congestion(name: str, mss: int) -> CongestionController:
    try:
        factory = _REGISTRY[name]
    except KeyError:
        known = sorted(_REGISTRY)
        raise ValueError(f"unknown congestion control {name!r}; known: {known}") from None
    return factory(mss)


def available_congestion() -> list[str]:
    return sorted(_REGISTRY)
