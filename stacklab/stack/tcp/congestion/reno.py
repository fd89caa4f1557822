"""Reno (RFC 5681): slow start, congestion avoidance, multiplicative decrease.

Kept simple for the core: fast recovery inflates by three segments and deflates on the first new
ACK (no NewReno partial-ACK handling; that comes with the loss-recovery work).
"""

from __future__ import annotations

from .base import CongestionController, register_congestion


@register_congestion("reno")
class Reno(CongestionController):
    def __init__(self, mss: int) -> None:
        super().__init__(mss)
        self._ca_acked = 0  # bytes acked since the last cwnd increase in congestion avoidance
        self.in_recovery = False

    def on_ack(self, acked: int, flight: int, now: float, rtt: float | None) -> None:
        if self.in_recovery:
            return
        if self.cwnd < self.ssthresh:  # slow start (RFC 5681 eq. 2, with L = 2*SMSS, RFC 3465)
            self.cwnd += min(acked, 2 * self.mss)
        else:  # congestion avoidance: one SMSS per cwnd acknowledged
            self._ca_acked += acked
            if self._ca_acked >= self.cwnd:
                self._ca_acked -= self.cwnd
                self.cwnd += self.mss

    def on_duplicate_ack(self, count: int, flight: int, now: float) -> None:
        if self.in_recovery:
            self.cwnd += self.mss  # inflate for each segment that left the network (§3.2 step 4)

    def on_fast_retransmit(self, flight: int, now: float) -> None:
        self.ssthresh = max(flight // 2, 2 * self.mss)  # §3.2 eq. 4
        self.cwnd = self.ssthresh + 3 * self.mss
        self.in_recovery = True

    def on_recovery_end(self, now: float) -> None:
        self.cwnd = self.ssthresh
        self.in_recovery = False

    def on_rto(self, flight: int, now: float) -> None:
        self.ssthresh = max(flight // 2, 2 * self.mss)
        self.cwnd = self.mss  # loss window (§3.1)
        self.in_recovery = False
        self._ca_acked = 0
