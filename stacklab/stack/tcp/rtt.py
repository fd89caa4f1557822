"""Retransmission timeout per RFC 6298: SRTT, RTTVAR, Karn's rule and exponential backoff.

Where the samples come from: with timestamps, the TSecr of the ACK that advanced SND.UNA
(RFC 7323 §4, in ``Tcb._ack_advance``); without, every ACK of new data is measured against the
send time of what it acknowledges (:func:`ack_sample`), as Linux does: RFC 6298 §3 lets a TCP take
more than one sample per RTT, and one timed segment per round would leave SRTT at the
handshake's value for the first rounds of a transfer (the TSO packet sizes, tso.py, follow it).

One deliberate difference: the minimum RTO is 200 ms, as Linux uses (``TCP_RTO_MIN``), not the
1 s of RFC 6298 §2.4, which allows a lower value ("MAY"); and as Linux it bounds the variance
term, not the sum: RTO = SRTT + max(K * RTTVAR, 200 ms).
"""

from __future__ import annotations

from collections.abc import Iterable

from .sent import Sent

ALPHA = 1 / 8
BETA = 1 / 4
K = 4
CLOCK_G = 0.001  # clock granularity: timestamps tick in milliseconds


class RttEstimator:
    """SRTT, RTTVAR and the backoff; ``rto``, the current timeout, is an attribute kept up to
    date by whatever changes one of its inputs (a sample, the backoff, the minimum): it is read
    several times per ACK and changes at most once per ACK."""

    __slots__ = ("srtt", "rttvar", "_min_rto", "max_rto", "initial_rto", "_backoff", "samples",
                 "latest", "rto")

    def __init__(self, initial_rto: float = 1.0, min_rto: float = 0.2,
                 max_rto: float = 120.0) -> None:
        self.srtt: float | None = None
        self.rttvar = 0.0
        self._min_rto = min_rto
        self.max_rto = max_rto
        self.initial_rto = initial_rto
        self._backoff = 0  # number of doublings since the last new ACK (RFC 6298 §5.5)
        self.samples = 0
        self.latest: float | None = None
        self.rto = self._rto()

    @property
    def min_rto(self) -> float:
        return self._min_rto

    @min_rto.setter
    def min_rto(self, value: float) -> None:
        self._min_rto = value
        self.rto = self._rto()

    @property
    def backoff(self) -> int:
        return self._backoff

    @backoff.setter
    def backoff(self, value: int) -> None:
        self._backoff = value
        self.rto = self._rto()

    def update(self, r: float) -> None:
        """Take an RTT measurement ``r`` (seconds) from a segment not retransmitted (Karn)."""
        if r < 0.0:  # (max() and abs() written out: one sample per ACK)
            r = 0.0
        self.latest = r
        self.samples += 1
        srtt = self.srtt
        if srtt is None:  # §2.2 first measurement
            self.srtt = r
            self.rttvar = r / 2
        else:  # §2.3 (RTTVAR first, with the old SRTT)
            err = srtt - r
            self.rttvar = (1 - BETA) * self.rttvar + BETA * (err if err >= 0 else -err)
            self.srtt = (1 - ALPHA) * srtt + ALPHA * r
        self.rto = self._rto()

    @property
    def base_rto(self) -> float:
        if self.srtt is None:
            rto = self.initial_rto
        else:
            # Linux's choice (tcp_rtt_estimator, tcp_set_rto): the variance term is at least
            # the minimum RTO ("make sure rto = 3*rtt" at the first sample), so a steady path
            # gets SRTT + 200 ms, not 200 ms; RFC 6298 §2.4 leaves the minimum open ("MAY")
            rto = self.srtt + max(CLOCK_G, K * self.rttvar, self.min_rto)
        return min(self.max_rto, max(self.min_rto, rto))

    def _rto(self) -> float:
        """The current timeout (``rto``), with the backoff applied (§5.5), capped at
        ``max_rto``: ``base_rto`` written out (no nested property call, no min()/max()
        calls)."""
        srtt = self.srtt
        lo = self._min_rto
        hi = self.max_rto
        if srtt is None:
            rto = self.initial_rto
        else:
            m = K * self.rttvar
            if m < lo:
                m = lo
            rto = srtt + (m if m > CLOCK_G else CLOCK_G)
        rto = lo if rto < lo else rto
        rto = hi if rto > hi else rto
        backoff = self._backoff
        if backoff:
            rto *= 1 << (backoff if backoff < 30 else 30)
            return hi if rto > hi else rto
        return rto

    def on_timeout(self) -> None:
        self.backoff += 1

    def on_new_ack(self) -> None:
        if self._backoff:
            self.backoff = 0


def ack_sample(acked: Iterable[Sent], now: float) -> float | None:
    """The RTT sample of a cumulative ACK without timestamps (Linux tcp_clean_rtx_queue's
    seq_rtt): ``now`` minus the send time of the first of the transmissions it newly
    acknowledges (``acked``, in sequence order) that a SACK had not delivered before; none at
    all if any of them was retransmitted, as the ACK may be for either transmission (Karn,
    RFC 6298 §3)."""
    first = None
    for rec in acked:
        if rec.retrans:
            return None
        if first is None and not rec.sacked:
            first = rec.xmit
    return None if first is None else now - first
