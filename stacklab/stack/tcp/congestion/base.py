"""The congestion-control interface of a TCB, pluggable by name (like aioquic's ``congestion/``).

The TCB calls the hooks; the controller owns ``cwnd`` and ``ssthresh`` (bytes). Loss *detection*
(RTO, duplicate ACKs, SACK) stays in the TCB / its recovery logic; a controller only reacts.
"""

from __future__ import annotations

from collections.abc import Callable

INITIAL_WINDOW_SEGMENTS = 10  # RFC 6928


class CongestionController:
    name = "base"

    def __init__(self, mss: int) -> None:
        self.mss = mss
        self.cwnd = INITIAL_WINDOW_SEGMENTS * mss
        self.ssthresh = 1 << 30  # "arbitrarily high" (RFC 5681 §3.1)

    def set_mss(self, mss: int) -> None:
        """Called once the connection's effective MSS is known (after the handshake)."""
        self.mss = mss
        self.cwnd = INITIAL_WINDOW_SEGMENTS * mss

    def on_ack(self, acked: int, flight: int, now: float, rtt: float | None) -> None:
        """``acked`` new bytes were cumulatively acknowledged; ``flight`` was in flight before."""

    def on_duplicate_ack(self, count: int, flight: int, now: float) -> None:
        """The ``count``-th duplicate ACK in a row arrived."""

    def on_fast_retransmit(self, flight: int, now: float) -> None:
        """Loss inferred from duplicate ACKs; the TCB retransmits the first unacked segment."""

    def on_recovery_end(self, now: float) -> None:
        """A cumulative ACK covered everything outstanding at the start of fast recovery."""

    def on_rto(self, flight: int, now: float) -> None:
        """The retransmission timer expired."""

    @property
    def in_slow_start(self) -> bool:
        return self.cwnd < self.ssthresh


_REGISTRY: dict[str, Callable[[int], CongestionController]] = {}


_Cls = type[CongestionController]


def register_congestion(name: str) -> Callable[[_Cls], _Cls]:
    def deco(cls: type[CongestionController]) -> type[CongestionController]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls
    return deco


def create_congestion(name: str, mss: int) -> CongestionController:
    if name not in _REGISTRY:
        # importing the package registers the built-in algorithms
        from stacklab.stack.tcp import congestion  # noqa: F401
    try:
        factory = _REGISTRY[name]
    except KeyError:
        known = sorted(_REGISTRY)
        raise ValueError(f"unknown congestion control {name!r}; known: {known}") from None
    return factory(mss)


def available_congestion() -> list[str]:
    from stacklab.stack.tcp import congestion  # noqa: F401
    return sorted(_REGISTRY)
