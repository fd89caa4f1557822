"""CUBIC (RFC 9438): the window grows as a cubic function of the time since the last congestion
event, with the Reno-friendly region (§4.3), fast convergence (§4.7), beta 0.7 and C 0.4.

Windows are in segments inside the formulas (RFC 9438 §4.1 uses MSS units) and bytes outside.
The time t is measured from the start of the current congestion-avoidance epoch, and the target
uses t + RTT (§4.2 "W_cubic(t + RTT)").

Slow start ends early on a delay increase, HyStart's delay detection as Linux's tcp_cubic runs
it (RFC 9406 §4.2's RTT test with Linux's parameters): only while cwnd is at least 16 segments
(Linux hystart_low_window gates the whole of hystart_update, the round bookkeeping too), each
round (until SND.UNA passes the highest sequence number sent when the round began; the first
round begins at the connection's start, later ones at the first gated ACK past the previous
round's end, and one at each RTO) takes the minimum of its first 8 per-ACK RTT samples; once
that exceeds the connection's minimum RTT by an eighth of it (clamped to 4..16 ms), ssthresh
becomes cwnd and congestion avoidance starts at once. Linux's other test (on by default too,
hystart_detect 3) is the ACK train: while a round's ACKs come at most 2 ms apart, a train
lasting longer than half of (delay_min + the TSO/GRO allowance, at most 1 ms) means the window
filled the path; slow start ends there too (stacklab has no fq pacing status: the half always
applies). With ``css`` (off by default: Linux has no such
phase) the test is RFC 9406's instead: against the previous round's minimum, and it starts
Conservative Slow Start (§4.3): a quarter of slow start's growth for 5 rounds, then congestion
avoidance, or back to slow start if a round's minimum falls below the one that started it (a
spurious exit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import CongestionController

if TYPE_CHECKING:
    from ..rate import RateSample

C = 0.4  # RFC 9438 §5
BETA = 0.7  # beta_cubic
ALPHA_RENO_FRIENDLY = 3 * (1 - BETA) / (1 + BETA)  # §4.3: ~0.53
HYSTART_LOW_WINDOW = 16  # segments: HyStart acts from this cwnd (Linux hystart_low_window)
HYSTART_MIN_SAMPLES = 8  # RTT samples a round takes before the test (RFC 9406 N_RTT_SAMPLE)
HYSTART_DELAY_MIN = 0.004  # the delay threshold's clamp (RFC 9406 MIN_RTT_THRESH)
HYSTART_DELAY_MAX = 0.016  # (MAX_RTT_THRESH)
HYSTART_ACK_DELTA = 0.002  # Linux hystart_ack_delta_us: ACKs this close make a train
HYSTART_ACK_DELAY_MAX = 0.001  # hystart_ack_delay's cap
_INF = float("inf")  # (one object: two fields of every connection start at it)
GSO_MAX_SIZE = 65536  # what hystart_ack_delay allows one TSO packet
CSS_GROWTH_DIVISOR = 4  # RFC 9406 §4.3
CSS_ROUNDS = 5


def cubic_k(w_max: float, cwnd_epoch: float, c: float = C) -> float:
    """K (§4.2 eq. 2): seconds until W_cubic reaches W_max again, from ``cwnd_epoch``."""
    d = (w_max - cwnd_epoch) / c
    return d ** (1 / 3) if d > 0 else 0.0


def w_cubic(t: float, k: float, w_max: float, c: float = C) -> float:
    """W_cubic(t) = C * (t - K)^3 + W_max (§4.2 eq. 1), in segments."""
    return c * (t - k) ** 3 + w_max


class Cubic(CongestionController):
    name = "cubic"
    wants_samples = True  # HyStart's per-ACK RTT samples and round boundaries
    hystart = True  # Linux tcp_cubic's hystart parameter (on by default)
    css = False  # RFC 9406 HyStart++: Conservative Slow Start after the delay test fires
    # one per connection end: slots, 0.1 KiB less than a dict (issue 23 item 4), for what an
    # ACK in slow start or a timeout moves; what only congestion avoidance's epochs and
    # HyStart++'s CSS set are class attributes until then, in the instance's __dict__ once
    # set (56 bytes less per idle connection end)
    __slots__ = ("w_max", "epoch_start", "_cwnd_f", "srtt", "delay_min", "hystart_found",
                 "round_end", "round_min_rtt", "round_samples", "round_start", "last_ack",
                 "css_baseline")
    fast_convergence = True
    k = 0.0
    cwnd_epoch = 0.0
    w_est = 0.0  # the Reno-friendly estimate (segments)
    last_round_min_rtt = _INF  # RFC 9406 lastRoundMinRTT (css only)
    css_rounds = 0
    _css_acked = 0  # acked bytes not yet turned into CSS growth

    def __init__(self, mss: int) -> None:
        super().__init__(mss)
        self.w_max = 0.0  # segments, the window before the last reduction
        self.epoch_start: float | None = None
        self._cwnd_f = float(self.cwnd)  # fractional cwnd in bytes between whole-byte updates
        self.srtt: float | None = None
        self.delay_min: float | None = None  # the smallest per-ACK RTT (Linux delay_min)
        self.hystart_found = False  # slow start was left on a delay increase
        # where the current round ends (stream position: SND.MAX when it began); the first one
        # began at the connection's start (Linux bictcp_hystart_reset in cubictcp_init); None
        # after an RTO: the next sample's SND.MAX, nothing having been sent since
        self.round_end: int | None = 0
        self.round_min_rtt = _INF  # the smallest RTT sample of the round so far
        self.round_samples = 0
        self.round_start = 0.0  # when the round began (Linux round_start), for the ACK train
        self.last_ack = 0.0  # the last ACK of the train
        self.css_baseline: float | None = None  # cssBaselineMinRtt while in CSS, else None

    def set_mss(self, mss: int) -> None:
        super().set_mss(mss)
        self._cwnd_f = float(self.cwnd)

    def on_ack(self, acked: int, flight: int, now: float, rtt: float | None) -> None:
        if rtt is not None:
            self.srtt = rtt if self.srtt is None else 0.875 * self.srtt + 0.125 * rtt
        if not acked:  # nothing to grow by (the TCB passes 0 when not cwnd-limited)
            return
        if self.cwnd < self.ssthresh:
            if self.css_baseline is not None:  # RFC 9406 §4.3: a quarter of the growth
                self._css_acked += acked
                acked = self._css_acked // CSS_GROWTH_DIVISOR
                self._css_acked -= acked * CSS_GROWTH_DIVISOR
            acked = self.slow_start(acked)
            self._cwnd_f = float(self.cwnd)
            if not acked:
                return
        mss = self.mss
        if self._cwnd_f < self.cwnd:  # someone (the TCB after recovery) set cwnd directly
            self._cwnd_f = float(self.cwnd)
        cwnd_seg = self._cwnd_f / mss
        if self.epoch_start is None:  # §4.2: a new congestion-avoidance epoch begins
            self.epoch_start = now
            self.cwnd_epoch = cwnd_seg
            if self.w_max < cwnd_seg:
                self.w_max = cwnd_seg
                self.k = 0.0
            else:
                self.k = cubic_k(self.w_max, cwnd_seg)
            self.w_est = cwnd_seg
        t = now - self.epoch_start
        rtt_now = self.srtt if self.srtt is not None else (rtt or 0.0)
        segs_acked = acked / mss
        # §4.3 Reno-friendly estimate; alpha becomes 1 once W_est reaches W_max
        alpha = ALPHA_RENO_FRIENDLY if self.w_est < self.w_max else 1.0
        self.w_est += alpha * segs_acked / cwnd_seg
        w_now = w_cubic(t, self.k, self.w_max)
        w_est = self.w_est
        if w_now < w_est:
            new_seg = w_est if w_est > cwnd_seg else cwnd_seg  # Reno-friendly region (max())
        else:
            # §4.4/§4.5: concave/convex: grow by (target - cwnd)/cwnd per acked segment, with
            # target = W_cubic(t + RTT) clamped to [cwnd, 1.5 cwnd]
            target = w_cubic(t + rtt_now, self.k, self.w_max)
            if target < cwnd_seg:  # (min(max()) written out: once per ACK)
                target = cwnd_seg
            elif target > 1.5 * cwnd_seg:
                target = 1.5 * cwnd_seg
            new_seg = cwnd_seg + (target - cwnd_seg) / cwnd_seg * segs_acked
        self._cwnd_f = new_seg * mss
        self.cwnd = int(self._cwnd_f)

    def on_rate_sample(self, rs: RateSample, now: float) -> None:
        rtt = rs.rtt
        if rtt is None:
            return
        if self.epoch_start is not None and now - self.epoch_start < 1.0:
            return  # Linux: no delay samples right after a reduction
        if self.delay_min is None or rtt < self.delay_min:
            self.delay_min = rtt
        if self.round_end is None:  # the round the RTO started ends at SND.MAX of that time
            self.round_end = rs.nxt
            self.round_start = self.last_ack = now
        if (self.hystart and not self.hystart_found and self.cwnd < self.ssthresh
                and self.cwnd >= HYSTART_LOW_WINDOW * self.mss):
            self._hystart_update(rs, rtt, self.delay_min, self.round_end, now)

    def _hystart_update(self, rs: RateSample, rtt: float, delay_min: float,
                        round_end: int, now: float) -> None:
        if rs.una > round_end:  # a new round (RFC 9406 §4.2)
            self.round_end = rs.nxt
            self.round_start = self.last_ack = now
            self.last_round_min_rtt = self.round_min_rtt
            self.round_min_rtt = float("inf")
            self.round_samples = 0
            if self.css_baseline is not None:
                self.css_rounds += 1
                if self.css_rounds >= CSS_ROUNDS:  # §4.3: CSS done, congestion avoidance
                    self._hystart_exit()
                    return
        if not self.css and now - self.last_ack <= HYSTART_ACK_DELTA:
            self.last_ack = now  # the ACK train goes on
            if now - self.round_start > (delay_min + self._ack_delay()) / 2:
                self._hystart_exit()
                return
        if rtt < self.round_min_rtt:
            self.round_min_rtt = rtt
        if self.round_samples < HYSTART_MIN_SAMPLES:
            self.round_samples += 1
            return
        if self.css_baseline is not None:
            if self.round_min_rtt < self.css_baseline:  # §4.3: the exit was spurious
                self.css_baseline = None
            return
        ref = self.last_round_min_rtt if self.css else delay_min
        thresh = min(max(ref / 8, HYSTART_DELAY_MIN), HYSTART_DELAY_MAX)
        if self.round_min_rtt > ref + thresh:
            if self.css:
                self.css_baseline = self.round_min_rtt
                self.css_rounds = 0
            else:
                self._hystart_exit()

    def _ack_delay(self) -> float:
        """Linux hystart_ack_delay: the time one TSO packet of GSO_MAX_SIZE (four of them)
        takes at the pacing rate, at most 1 ms; the rate is Linux's in slow start, twice cwnd
        per SRTT."""
        if not self.srtt:
            return 0.0
        rate = 2 * self.cwnd / self.srtt
        return min(HYSTART_ACK_DELAY_MAX, GSO_MAX_SIZE * 4 / rate)

    def _hystart_exit(self) -> None:
        """Slow start ends here: ssthresh = cwnd (Linux; RFC 9406 at the end of CSS)."""
        self.hystart_found = True
        self.css_baseline = None
        self.ssthresh = self.cwnd

    def on_idle(self, idle: float, rto: float, restart: bool) -> None:
        super().on_idle(idle, rto, restart)
        self._cwnd_f = float(self.cwnd)
        if self.epoch_start is not None:
            self.epoch_start += idle  # the idle time grows nothing (Linux CA_EVENT_TX_START)

    def on_congestion_event(self, flight: int, now: float) -> None:
        mss = self.mss
        cwnd_seg = self.cwnd / mss
        # §4.7 fast convergence: release bandwidth when the window shrank since the last event
        if self.fast_convergence and cwnd_seg < self.w_max:
            self.w_max = cwnd_seg * (1 + BETA) / 2
        else:
            self.w_max = cwnd_seg
        self.ssthresh = max(int(self.cwnd * BETA), 2 * mss)  # §4.6
        self.css_baseline = None  # RFC 9406 §4.3: a loss in CSS ends it too
        self.cwnd = self.ssthresh
        self._cwnd_f = float(self.cwnd)
        self.k = cubic_k(self.w_max, self.cwnd / mss)
        self.epoch_start = None

    def on_rto(self, flight: int, now: float) -> None:
        # §4.8: ssthresh as for a congestion event; cwnd the loss window; a new epoch later
        cwnd_seg = self.cwnd / self.mss
        if self.fast_convergence and cwnd_seg < self.w_max:
            self.w_max = cwnd_seg * (1 + BETA) / 2
        else:
            self.w_max = cwnd_seg
        self.ssthresh = max(int(self.cwnd * BETA), 2 * self.mss)
        self.cwnd = self.mss
        self._cwnd_f = float(self.cwnd)
        self.epoch_start = None
        # Linux (bictcp_state, TCP_CA_Loss): HyStart and the minimum RTT start over
        self.hystart_found = False
        self.round_end = None
        self.round_min_rtt = float("inf")
        self.round_samples = 0
        self.delay_min = None
        self.css_baseline = None
