"""BBR v1 (Cardwell et al., "BBR: Congestion-Based Congestion Control", ACM Queue 2016;
draft-cardwell-iccrg-bbr-congestion-control-00), behaving as Linux's tcp_bbr.

BBR models the path by two numbers taken from the delivery-rate samples (:mod:`..rate`): the
bottleneck bandwidth, the windowed maximum of the delivery rate over the last 10 round trips,
and the round-trip propagation time, the minimum RTT seen over the last 10 seconds. It paces at
``pacing_gain`` times the bandwidth and bounds the flight to ``cwnd_gain`` times the
bandwidth-delay product plus a small quantum, through four modes:

* STARTUP: both gains 2/ln 2 = 2.885 (the flight doubles per round trip) until the bandwidth
  estimate has grown less than 25 % in three rounds (the pipe is full);
* DRAIN: pacing gain 1/2.885 until the flight is down to one BDP (the queue STARTUP built);
* PROBE_BW: cwnd gain 2, pacing gain cycling 1.25, 0.75, 1, 1, 1, 1, 1, 1, each phase one min
  RTT long (the 1.25 phase until the flight reached 1.25 BDP, the 0.75 one ends once it is down
  to one BDP), starting at a random phase other than 0.75;
* PROBE_RTT: when the min RTT is 10 s old, cwnd 4 segments for at least 200 ms and a round trip,
  to see the empty-queue RTT again; back to PROBE_BW (or STARTUP if the pipe was never full).

Loss does not reduce the model. The TCB hands BBR the sample of every ACK, SACKs included, once
loss detection has run, with the bytes it newly marked lost and the loss state (rate.py), as
Linux calls ``cong_control``; BBR follows that state itself (Linux ``prev_ca_state``): the lost
bytes come off cwnd; entering fast recovery, cwnd is the flight plus what the ACK delivered and
follows packet conservation for a round; when recovery (fast, or after a timeout) ends, the
window before it comes back. An RTO restarts from one segment, grown by what is delivered.

ACK aggregation, as Linux's ``bbr_update_ack_aggregation``: when ACKs come in bursts (a
receiver's or a middlebox's aggregation, or a sender that reads its ACKs late, as a busy
real-time loop does), more is delivered in an epoch than the bandwidth estimate explains; the
largest such excess of the last 5-10 round trips (two windows of 5) is added to the window's
target once the pipe is full, at most one cwnd and 100 ms of the bandwidth, so that the flight
does not starve between the bursts.

Lengths are in bytes, rates in bytes/s, times in seconds. Not modelled: the long-term (policer)
bandwidth.
"""

from __future__ import annotations

import random
from collections import deque
from typing import TYPE_CHECKING

from ..rate import LOSS, OPEN, RECOVERY
from .base import INITIAL_WINDOW_SEGMENTS, CongestionController

if TYPE_CHECKING:
    from ..rate import RateSample

STARTUP, DRAIN, PROBE_BW, PROBE_RTT = "STARTUP", "DRAIN", "PROBE_BW", "PROBE_RTT"
HIGH_GAIN = 2.885  # 2/ln(2): STARTUP's pacing and cwnd gain
DRAIN_GAIN = 1 / HIGH_GAIN
CWND_GAIN = 2.0  # PROBE_BW
PACING_GAIN_CYCLE = (1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
BW_WINDOW_ROUNDS = 10  # the max filter's window (round trips)
MIN_RTT_WINDOW = 10.0  # seconds
PROBE_RTT_TIME = 0.2  # seconds at cwnd MIN_CWND_SEGMENTS
MIN_CWND_SEGMENTS = 4
FULL_BW_GROWTH = 1.25  # STARTUP ends once three rounds grow the estimate less than this
FULL_BW_ROUNDS = 3
PACING_MARGIN = 0.01  # pace 1 % below the estimate (Linux bbr_pacing_margin_percent)
MIN_TSO_RATE = 1_200_000 / 8  # bytes/s below which the send quantum is one segment, not two
EXTRA_ACKED_GAIN = 1.0  # bbr_extra_acked_gain: the aggregation allowance's gain
EXTRA_ACKED_WIN_ROUNDS = 5  # bbr_extra_acked_win_rtts: each of the two windows' length
EXTRA_ACKED_MAX = 0.100  # bbr_extra_acked_max_us: the allowance is at most 100 ms of bandwidth
ACK_EPOCH_RESET_SEGS = 1 << 20  # bbr_ack_epoch_acked_reset_thresh (packets)


class Bbr(CongestionController):
    name = "bbr"
    wants_samples = True
    needs_pacing = True
    owns_cwnd = True  # packet conservation in recovery, not PRR (Linux: cong_control)
    sndbuf_expand = 3  # Linux bbr_sndbuf_expand: BBR may slow-start even during recovery

    def __init__(self, mss: int) -> None:
        super().__init__(mss)
        self.mode = STARTUP
        self.modes: list[tuple[float, str]] = []  # (time, mode) at each mode change
        self.pacing_gain = HIGH_GAIN
        self.cwnd_gain = HIGH_GAIN
        self._bw: deque[tuple[int, float]] = deque()  # (round, rate): a monotonic max window
        self.min_rtt: float | None = None
        self.min_rtt_stamp = 0.0
        self.round_count = 0
        self.round_start = False
        self.next_round_delivered = 0
        self.full_bw = 0.0
        self.full_bw_count = 0
        self.full_bw_reached = False
        self.cycle_index = 0
        self.cycle_stamp = 0.0
        self.probe_rtt_done: float | None = None
        self.probe_rtt_round_done = False
        self.prior_cwnd = 0
        self.packet_conservation = False
        self.prev_ca_state = OPEN  # the loss state of the last sample that delivered data
        self.idle_restart = False
        self.has_seen_rtt = False
        self.extra_acked = [0, 0]  # the largest excess delivered per 5-round window (bytes)
        self.extra_acked_idx = 0
        self.extra_acked_rounds = 0
        self.ack_epoch_start: float | None = None  # None: the next ACK starts an epoch
        self.ack_epoch_acked = 0
        self._rng = random.Random(mss)  # the first PROBE_BW phase (deterministic per run)
        self.pacing_rate = self._initial_rate(0.001)  # Linux: 1 ms until an RTT is known

    def set_mss(self, mss: int) -> None:
        super().set_mss(mss)
        if not self.has_seen_rtt:
            self.pacing_rate = self._initial_rate(0.001)

    # -- the model ---------------------------------------------------------------------------
    @property
    def max_bw(self) -> float:
        """The bottleneck bandwidth estimate (bytes/s): the max of the window's samples."""
        return self._bw[0][1] if self._bw else 0.0

    def bdp(self, gain: float = 1.0) -> int:
        """``gain`` times the estimated bandwidth-delay product (bytes); the initial window
        while no RTT is known."""
        if self.min_rtt is None or not self._bw:
            return INITIAL_WINDOW_SEGMENTS * self.mss
        return int(gain * self.max_bw * self.min_rtt + 0.999)

    def _initial_rate(self, rtt: float) -> float:
        return HIGH_GAIN * self.cwnd / rtt

    def on_rate_sample(self, rs: RateSample, now: float) -> None:
        self._update_bw(rs)
        self._update_ack_aggregation(rs, now)
        if self.mode == PROBE_BW and self._next_cycle_phase(rs, now):
            self._advance_cycle(now)
        self._check_full_bw(rs)
        self._check_drain(rs, now)
        self._update_min_rtt(rs, now)
        self._update_gains()
        self._set_pacing_rate(rs)
        self._set_cwnd(rs)

    def _set_mode(self, mode: str, now: float) -> None:
        self.mode = mode
        self.modes.append((now, mode))

    def _update_bw(self, rs: RateSample) -> None:
        self.round_start = False
        if rs.interval <= 0 or rs.delivered <= 0:
            return  # not a valid observation
        if rs.prior_delivered >= self.next_round_delivered:  # a round trip ended
            self.next_round_delivered = rs.delivered_total
            self.round_count += 1
            self.round_start = True
            self.packet_conservation = False
        bw = rs.rate
        if not rs.app_limited or bw >= self.max_bw:
            window = self._bw
            while window and window[-1][1] <= bw:
                window.pop()
            window.append((self.round_count, bw))
        while self._bw and self._bw[0][0] <= self.round_count - BW_WINDOW_ROUNDS:
            self._bw.popleft()

    def _update_ack_aggregation(self, rs: RateSample, now: float) -> None:
        """The excess this ACK's epoch delivered over what the estimate expects (Linux
        bbr_update_ack_aggregation): an epoch starts again when the ACKs fall behind the
        estimate, and its excess is the window's largest, at most one cwnd."""
        acked = rs.newly_delivered
        if acked <= 0 or rs.interval <= 0:
            return
        if self.round_start:
            self.extra_acked_rounds = min(self.extra_acked_rounds + 1, 0x1F)
            if self.extra_acked_rounds >= EXTRA_ACKED_WIN_ROUNDS:
                self.extra_acked_rounds = 0
                self.extra_acked_idx ^= 1
                self.extra_acked[self.extra_acked_idx] = 0
        start = self.ack_epoch_start
        expected = int(self.max_bw * (now - start)) if start is not None else 0
        if start is None or self.ack_epoch_acked <= expected \
                or self.ack_epoch_acked + acked >= ACK_EPOCH_RESET_SEGS * self.mss:
            self.ack_epoch_acked = 0
            self.ack_epoch_start = now
            expected = 0
        self.ack_epoch_acked += acked
        extra = min(self.ack_epoch_acked - expected, self.cwnd)
        if extra > self.extra_acked[self.extra_acked_idx]:
            self.extra_acked[self.extra_acked_idx] = extra

    def _ack_aggregation_cwnd(self) -> int:
        """What ACK aggregation adds to the window's target once the pipe is full (Linux
        bbr_ack_aggregation_cwnd): the larger window's excess, at most 100 ms of bandwidth."""
        if not self.full_bw_reached:
            return 0
        extra = int(EXTRA_ACKED_GAIN * max(self.extra_acked))
        return min(extra, int(self.max_bw * EXTRA_ACKED_MAX))

    def _next_cycle_phase(self, rs: RateSample, now: float) -> bool:
        full_length = self.min_rtt is not None and now - self.cycle_stamp > self.min_rtt
        gain = self.pacing_gain
        if gain == 1.0:
            return full_length
        if gain > 1.0:  # probing: until the flight reached gain * BDP
            return full_length and rs.prior_in_flight >= self.bdp(gain)
        return full_length or rs.prior_in_flight <= self.bdp(1.0)  # draining the probe's queue

    def _advance_cycle(self, now: float) -> None:
        self.cycle_index = (self.cycle_index + 1) % len(PACING_GAIN_CYCLE)
        self.cycle_stamp = now

    def _check_full_bw(self, rs: RateSample) -> None:
        if self.full_bw_reached or not self.round_start or rs.app_limited:
            return
        if self.max_bw >= self.full_bw * FULL_BW_GROWTH:
            self.full_bw = self.max_bw
            self.full_bw_count = 0
            return
        self.full_bw_count += 1
        self.full_bw_reached = self.full_bw_count >= FULL_BW_ROUNDS

    def _check_drain(self, rs: RateSample, now: float) -> None:
        if self.mode == STARTUP and self.full_bw_reached:
            self._set_mode(DRAIN, now)
        if self.mode == DRAIN and rs.in_flight <= self.bdp(1.0):
            self._enter_probe_bw(now)

    def _enter_probe_bw(self, now: float) -> None:
        self._set_mode(PROBE_BW, now)
        # a random phase, never the 0.75 one right after draining
        n = len(PACING_GAIN_CYCLE)
        self.cycle_index = n - 1 - self._rng.randrange(n - 1)
        self._advance_cycle(now)

    def _update_min_rtt(self, rs: RateSample, now: float) -> None:
        # the 10 s window runs from the first sample (Linux stamps it when the connection
        # starts), not from time 0: a clock that reads 23634 s at the first ACK (a real-time
        # driver's) is no reason to go to PROBE_RTT before STARTUP measured anything
        expired = self.min_rtt is not None and now > self.min_rtt_stamp + MIN_RTT_WINDOW
        rtt = rs.rtt
        if rtt is not None:
            rtt = round(rtt, 6)  # microseconds, as Linux: an equal RTT does not renew the filter
        if rtt is not None and (self.min_rtt is None or rtt < self.min_rtt or expired):
            self.min_rtt = rtt
            self.min_rtt_stamp = now
        if expired and not self.idle_restart and self.mode != PROBE_RTT \
                and self.min_rtt is not None:
            self._set_mode(PROBE_RTT, now)
            self._save_cwnd()
            self.probe_rtt_done = None
        if self.mode == PROBE_RTT:
            if self.probe_rtt_done is None and rs.in_flight <= MIN_CWND_SEGMENTS * self.mss:
                # the flight is down: hold it there 200 ms and one round trip
                self.probe_rtt_done = now + PROBE_RTT_TIME
                self.probe_rtt_round_done = False
                self.next_round_delivered = rs.delivered_total
            elif self.probe_rtt_done is not None:
                if self.round_start:
                    self.probe_rtt_round_done = True
                if self.probe_rtt_round_done and now > self.probe_rtt_done:
                    self.min_rtt_stamp = now
                    self.cwnd = max(self.cwnd, self.prior_cwnd)
                    if self.full_bw_reached:
                        self._enter_probe_bw(now)
                    else:
                        self._set_mode(STARTUP, now)
        if rs.newly_delivered > 0:
            self.idle_restart = False

    def _update_gains(self) -> None:
        mode = self.mode
        if mode == STARTUP:
            self.pacing_gain, self.cwnd_gain = HIGH_GAIN, HIGH_GAIN
        elif mode == DRAIN:
            self.pacing_gain, self.cwnd_gain = DRAIN_GAIN, HIGH_GAIN
        elif mode == PROBE_BW:
            self.pacing_gain, self.cwnd_gain = PACING_GAIN_CYCLE[self.cycle_index], CWND_GAIN
        else:
            self.pacing_gain, self.cwnd_gain = 1.0, 1.0

    def _set_pacing_rate(self, rs: RateSample) -> None:
        if not self.has_seen_rtt and rs.rtt is not None:
            # the first RTT replaces the 1 ms guess, whatever the bandwidth estimate says (Linux
            # bbr_set_pacing_rate: bbr_init_pacing_rate_from_rtt before the rule below), or
            # STARTUP, which only raises the rate, would run at the guess's 40 MB/s
            self.has_seen_rtt = True
            self.pacing_rate = self._initial_rate(rs.rtt)
        bw = self.max_bw
        if not bw:
            return
        rate = self.pacing_gain * bw * (1 - PACING_MARGIN)
        if self.full_bw_reached or self.pacing_rate is None or rate > self.pacing_rate:
            self.pacing_rate = rate  # STARTUP only raises it

    def _quantum(self) -> int:
        """What the window adds to gain * BDP (Linux bbr_quantization_budget): three send
        quanta of about a millisecond at the pacing rate, and two more segments in the 1.25
        phase."""
        mss = self.mss
        rate = self.pacing_rate or 0.0
        segs = max(int(rate / 1024 / mss), 1 if rate < MIN_TSO_RATE else 2)
        extra = 3 * min(segs, 127) * mss
        if self.mode == PROBE_BW and self.cycle_index == 0:
            extra += 2 * mss
        return extra

    def _set_cwnd(self, rs: RateSample) -> None:
        mss = self.mss
        acked = rs.newly_delivered
        if acked:
            cwnd = self._recover_or_restore(rs, acked)
            if self.packet_conservation:
                cwnd = max(cwnd, rs.in_flight + acked)  # one round of conservation
            else:
                target = self.bdp(self.cwnd_gain) + self._ack_aggregation_cwnd() \
                    + self._quantum()
                if self.full_bw_reached:
                    cwnd = min(cwnd + acked, target)
                elif cwnd < target or rs.delivered_total < INITIAL_WINDOW_SEGMENTS * mss:
                    cwnd += acked
                cwnd = max(cwnd, MIN_CWND_SEGMENTS * mss)
            self.cwnd = cwnd
        if self.mode == PROBE_RTT:
            self.cwnd = min(self.cwnd, MIN_CWND_SEGMENTS * mss)

    def _recover_or_restore(self, rs: RateSample, acked: int) -> int:
        """cwnd after this ACK's losses and loss-state change (Linux
        bbr_set_cwnd_to_recover_or_restore): the lost bytes come off; entering fast recovery,
        the flight plus what this ACK delivered, and a round of packet conservation from now;
        leaving recovery (fast, or after a timeout), at least the window before it."""
        cwnd = self.cwnd
        if rs.losses > 0:
            cwnd = max(cwnd - rs.losses, self.mss)
        state, prev = rs.ca_state, self.prev_ca_state
        if state == RECOVERY and prev != RECOVERY:
            self.packet_conservation = True
            self.next_round_delivered = rs.delivered_total  # the conservation round starts now
            cwnd = rs.in_flight + acked
        elif prev >= RECOVERY and state < RECOVERY:
            cwnd = max(cwnd, self.prior_cwnd)
            self.packet_conservation = False
        self.prev_ca_state = state
        return cwnd

    def _save_cwnd(self) -> None:
        """Remember cwnd before a reduction: in recovery (or PROBE_RTT) the larger of it and
        what was remembered at its start (Linux bbr_save_cwnd)."""
        if self.prev_ca_state < RECOVERY and self.mode != PROBE_RTT:
            self.prior_cwnd = self.cwnd
        else:
            self.prior_cwnd = max(self.prior_cwnd, self.cwnd)

    # -- what the TCB tells every controller ---------------------------------------------------
    def on_congestion_event(self, flight: int, now: float) -> None:
        """Fast recovery (or ECN's CWR, or a loss a probe repaired): ssthresh stays (BBR keeps
        its model) and cwnd is remembered (Linux bbr_ssthresh); the next sample sets the
        recovery window (:meth:`_recover_or_restore`)."""
        self._save_cwnd()

    def on_rto(self, flight: int, now: float) -> None:
        """A timeout: one segment, the model kept, cwnd remembered for the end of the loss
        state; a new STARTUP-style full-bandwidth test (Linux bbr_set_state on TCP_CA_Loss)."""
        self._save_cwnd()
        self.cwnd = self.mss
        self.prev_ca_state = LOSS
        self.packet_conservation = False
        self.full_bw = 0.0
        self.round_start = True

    def on_idle(self, idle: float, rto: float, restart: bool) -> None:
        super().on_idle(idle, rto, restart)
        self.idle_restart = True  # Linux CA_EVENT_TX_START from an app-limited idle
        self.ack_epoch_start = None  # ... which starts a new aggregation epoch too

    def adopt(self, old: CongestionController) -> None:
        self.cwnd = old.cwnd  # ssthresh stays "infinite": BBR does not use it
