"""Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation, Linux tcp_rate.c):
what the sender stamps on each transmission record (sent.py) and the rate sample an ACK yields.

Each segment sent is stamped with the connection's ``delivered`` count, ``delivered_time`` and
``first_sent_time`` at that moment; when the ACK (cumulative or SACK) delivers it, the sample
covers what was delivered between the two points: ``delivered / max(send_elapsed,
ack_elapsed)`` (§3.3). The sample also carries the RTT of the newest segment the ACK delivered
that was never resent (Karn), which is the per-ACK RTT Linux hands to congestion control
(HyStart's delay samples, BBR's min RTT).

It is active only for a controller that asks for samples (``CongestionController.
wants_samples``): the TCB then calls :meth:`DeliveryRate.on_send` for each data segment,
:meth:`check_app_limited` at the start of each application write (as Linux: only there,
not after the output an ACK clocks out) and :meth:`on_ack` for each ACK that advances
SND.UNA, or, for a controller that sets cwnd itself (``owns_cwnd``, BBR) on a connection with
SACK, for every ACK once loss detection has run, as Linux calls ``cong_control`` from every ACK
(a SACK delivers data too: under loss SND.UNA may not move for a round trip, and a sample per
cumulative ACK would lump a round's deliveries together and leave recovery's window unset).
Positions are stream positions (``Tcb._abs``: they never wrap); a resend of part of a
record splits it (sent.py), so the untouched part keeps its first transmission's stamps, as
Linux's tcp_fragment.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from .recovery import RangeSet
from .sent import Sent, SentLog

# the TCB's loss state when a sample is taken, ordered as Linux's TCP_CA_Open < TCP_CA_Recovery <
# TCP_CA_Loss (BBR compares them): no recovery, fast recovery, recovery from a timeout
OPEN, RECOVERY, LOSS = 0, 3, 4


@dataclass(slots=True)
class RateSample:
    """What one ACK tells a controller (Linux ``struct rate_sample`` plus the round marks)."""

    # (the four that DeliveryRate.on_ack passes first, positionally: a keyword call of the
    # generated __init__ costs twice as much, and it runs for every ACK)
    prior_in_flight: int = 0  # bytes in flight before this ACK
    in_flight: int = 0  # bytes in flight after it
    una: int = 0  # SND.UNA after this ACK (stream position)
    # SND.MAX (stream position; Linux's snd_nxt, which a timeout does not move back):
    # HyStart's round ends when SND.UNA passes its value at the round's start
    nxt: int = 0
    delivered: int = 0  # bytes delivered over ``interval`` (0 with no valid interval)
    interval: float = 0.0  # seconds; 0 when the sample is not valid (§3.3: shorter than min RTT)
    rtt: float | None = None  # RTT of the newest segment delivered now, never resent
    prior_delivered: int = 0  # the connection's delivered count when that segment was sent
    newly_delivered: int = 0  # bytes this ACK delivered (cumulatively or by SACK)
    delivered_total: int = 0  # the connection's delivered count after this ACK
    app_limited: bool = False  # the interval saw the application, not the network, limit us
    losses: int = 0  # bytes this ACK's loss detection newly marked lost (Linux rs->losses)
    ca_state: int = 0  # OPEN, RECOVERY or LOSS after this ACK (Linux icsk_ca_state)

    @property
    def rate(self) -> float:
        """Delivery rate in bytes per second (0 when not valid)."""
        return self.delivered / self.interval if self.interval > 0 else 0.0


class DeliveryRate:
    """The sender's delivery accounting (the per-connection ``C.*`` of the draft)."""

    __slots__ = ("delivered", "delivered_time", "first_sent_time", "app_limited", "min_rtt",
                 "acked")

    def __init__(self) -> None:
        self.delivered = 0  # bytes delivered so far
        self.delivered_time = 0.0
        self.first_sent_time = 0.0
        self.app_limited = 0  # delivered count at which an app-limited phase ends (0: none)
        self.min_rtt: float | None = None  # validates intervals (§3.3)
        # records a cumulative ACK removed, waiting for the sample taken after loss detection
        # (a controller that sets cwnd itself samples every ACK there: Linux cong_control)
        self.acked: list[Sent] = []

    def on_send(self, rec: Sent, now: float, flight_empty: bool) -> None:
        """A data segment left (new or resent): stamp its record (sent.py)."""
        if flight_empty:  # §3.2: a new interval starts from this transmission
            self.first_sent_time = self.delivered_time = now
        rec.delivered = self.delivered
        rec.delivered_time = self.delivered_time
        rec.first_sent = self.first_sent_time
        rec.app_limited = self.app_limited != 0

    def check_app_limited(self, unsent: int, in_flight: int, cwnd: int, mss: int,
                          device_busy: bool, resend_due: bool) -> None:
        """At the start of each application write (Linux tcp_sendmsg_locked): less than a
        segment waits unsent, nothing waits in the device's queue, cwnd is not full and every
        byte marked lost was resent (``resend_due`` False: Linux lost_out <= retrans_out), so
        what is in flight is all the application gave: samples until it is delivered are
        application-limited (Linux tcp_rate_check_app_limited)."""
        if unsent < mss and not device_busy and in_flight < cwnd and not resend_due:
            self.app_limited = (self.delivered + in_flight) or 1

    def on_ack(self, acked: list[Sent], log: SentLog, una: int, nxt: int, sacked: RangeSet,
               now: float, prior_in_flight: int, in_flight: int,
               fresh: list[tuple[int, int]] | None = None) -> RateSample:
        """SND.UNA reached ``una``: deliver ``acked``, the records the cumulative ACK removed
        from ``log``, and those of ``log`` the scoreboard now covers, looked for where it grew
        (``fresh``: the ranges the last SACK added, recovery.py; every range if None); the
        sample of this ACK."""
        rs = RateSample(prior_in_flight, in_flight, una, nxt)  # (positional: see RateSample)
        fin_end = log.fin_end
        # those of ``acked`` a SACK counted before, and a bare FIN's, do not count: skipped in
        # the one pass below when ``done`` is ``acked`` (the usual ACK: no list of their own)
        done = acked
        # SACKed records: found by bisection, counted once
        recs = log.records
        if sacked.starts and recs:
            done = [r for r in acked if r.length and not r.rated]  # (SACKed ones added)
            for lo, hi in (zip(sacked.starts, sacked.ends, strict=True) if fresh is None
                           else fresh):
                j = max(bisect_right(recs, lo, key=_start) - 1, 0)
                while j < len(recs) and recs[j].start < hi:
                    r = recs[j]
                    j += 1
                    if r.rated or not r.length:
                        continue
                    top = sacked.containing(r.start)
                    if top is not None and top >= r.end - (r.end == fin_end):
                        r.rated = True
                        done.append(r)
        best: Sent | None = None
        rtt_sent = -1.0
        newly = 0
        for rec in done:
            if done is acked and (rec.rated or not rec.length):
                continue
            newly += rec.end - rec.start - (rec.end == fin_end)
            if best is None or rec.xmit >= best.xmit:
                best = rec
            if not rec.retrans and rec.xmit > rtt_sent:
                rtt_sent = rec.xmit
        if best is None:
            rs.delivered_total = self.delivered
            return rs
        self.delivered += newly
        self.delivered_time = now
        rs.newly_delivered = newly
        rs.delivered_total = self.delivered
        if self.app_limited and self.delivered > self.app_limited:
            self.app_limited = 0
        if rtt_sent >= 0:
            rs.rtt = now - rtt_sent
            if self.min_rtt is None or rs.rtt < self.min_rtt:
                self.min_rtt = rs.rtt
        rs.prior_delivered = best.delivered
        rs.app_limited = best.app_limited
        send_elapsed = best.xmit - best.first_sent
        ack_elapsed = now - best.delivered_time
        self.first_sent_time = best.xmit
        interval = send_elapsed if send_elapsed > ack_elapsed else ack_elapsed  # (max())
        if interval > 0 and (self.min_rtt is None or interval >= self.min_rtt):
            rs.interval = interval
            rs.delivered = self.delivered - rs.prior_delivered
        return rs


def _start(rec: Sent) -> int:
    return rec.start
