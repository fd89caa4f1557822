"""NewReno (RFC 5681 + RFC 6582): slow start, congestion avoidance, halving on loss.

The fast-recovery mechanics (window inflation by duplicate ACKs, partial ACKs, the exit window)
are in the TCB's recovery code because they apply to any controller; this class holds the
additive-increase / multiplicative-decrease rules. Also registered as ``newreno``.
"""

from __future__ import annotations

from .base import CongestionController


class Reno(CongestionController):
    name = "reno"

    def __init__(self, mss: int) -> None:
        super().__init__(mss)
        self._ca_acked = 0  # bytes acked since the last cwnd increase in congestion avoidance

    def on_ack(self, acked: int, flight: int, now: float, rtt: float | None) -> None:
        if self.cwnd < self.ssthresh:
            acked = self.slow_start(acked)
            if not acked:
                return
        # congestion avoidance (RFC 5681 §3.1, byte counting): one SMSS per cwnd acknowledged
        self._ca_acked += acked
        if self._ca_acked >= self.cwnd:
            self._ca_acked -= self.cwnd
            self.cwnd += self.mss

    def on_congestion_event(self, flight: int, now: float) -> None:
        super().on_congestion_event(flight, now)
        self._ca_acked = 0

    def on_rto(self, flight: int, now: float) -> None:
        super().on_rto(flight, now)
        self._ca_acked = 0


class NewReno(Reno):
    name = "newreno"
