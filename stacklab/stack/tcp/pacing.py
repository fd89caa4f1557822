"""Pacing: data segments leave at a rate instead of in cwnd-sized bursts, as Linux's TCP
internal pacing (the behaviour of the ``fq`` qdisc, ``tcp_update_pacing_rate`` and
``tcp_pacing_check``).

As Linux, a connection paces when its congestion control needs it (BBR sets
``needs_pacing``) or when the application capped its rate with ``SO_MAX_PACING_RATE``
(``TcpConfig.max_pacing_rate``, bytes/s; Linux switches pacing on when that option is set),
or when the host's queueing discipline is ``fq`` (``net.core.default_qdisc``, ``TcpConfig.
qdisc``), whose flows Linux paces; otherwise it does not.

The rate is the controller's own (``pacing_rate``, BBR) or else Linux's rule: cwnd/SRTT (the
larger of cwnd and the flight) times 2 in slow start (cwnd below ssthresh/2,
``net.ipv4.tcp_pacing_ss_ratio`` = 200 %) and 1.2 afterwards (``tcp_pacing_ca_ratio`` = 120 %),
unpaced (or at the cap) before the first RTT sample; at most ``max_pacing_rate``. Each segment
sent moves the earliest time of the next one by its length over the rate (Linux
``tcp_wstamp_ns``, ``tcp_update_skb_after_send``); the segmentizer stops before a segment whose
time has not come and the TCB's PACING timer brings it back then. As Linux: the first
``UNPACED_SEGS`` (10) data segments of a connection are not paced (the original ``sch_fq`` let a
flow's first 10 MSS go), and a packet sent later than its time ("OS jitter": the clock ran
ahead of the schedule) gets that lateness back as credit, at most half its own length's time.
Not as Linux, whose pacing timer is a microsecond-exact hrtimer: when the pacer held a segment
back (the PACING timer armed for ``next_send``) and the loop comes back late — a real-time
asyncio loop's timers fire a millisecond late or more (epoll's millisecond timeout, a busy
host's scheduling) — the schedule is kept, up to ``MAX_TIMER_CREDIT`` behind the clock: every
packet whose time has passed leaves now, as it would have on time, so the rate stays the
pacing rate (half a packet of credit per packet lets a 4 MB/s flow whose timers come 0-4 ms
late out at half its rate, and BBR, which measures what it sends, lowers its estimate round
after round).
Linux paces TSO packets, not segments: a packet of
``tcp_tso_autosize`` segments (about 1 ms of data at the pacing rate, at least
``tcp_min_tso_segs``) leaves at once when its time has come, so the segments of one such packet
leave together here too (``burst``) — which also keeps a real-time driver, whose timers fire a
millisecond or more late, at the rate instead of at one segment per timer.
"""

from __future__ import annotations

from .config import TcpConfig
from .congestion import CongestionController
from .tso import GSO_MAX_SIZE

SS_RATIO = 2.0  # net.ipv4.tcp_pacing_ss_ratio (percent / 100)
CA_RATIO = 1.2  # net.ipv4.tcp_pacing_ca_ratio
UNPACED_SEGS = 10  # Linux tcp_update_skb_after_send: data_segs_out below this is not paced
MAX_TIMER_CREDIT = 0.005  # seconds a held-back schedule may lag the clock (a longer stall is lost)


class Pacer:
    __slots__ = ("rate", "next_send", "max_rate", "burst", "segs", "paced", "held")

    def __init__(self, max_rate: float | None) -> None:
        self.rate = 0.0  # bytes/s; 0: not known yet, no pacing
        self.next_send = 0.0  # the earliest time the next segment may leave
        self.max_rate = max_rate
        self.burst = 0  # segments of the current TSO-sized packet still to leave with it
        self.segs = 0  # data segments sent (Linux tp->data_segs_out)
        self.paced = False  # the current packet moves next_send (not one of the first 10 MSS)
        self.held = False  # a segment waited for next_send: the schedule binds (kept if late)

    def update(self, cc: CongestionController, srtt: float | None, flight: int) -> None:
        """After an ACK: the rate from the controller, or from cwnd/SRTT (Linux
        tcp_update_pacing_rate)."""
        rate = cc.pacing_rate
        if rate is None:
            if srtt:
                ratio = SS_RATIO if cc.cwnd < cc.ssthresh // 2 else CA_RATIO
                rate = ratio * max(cc.cwnd, flight) / srtt
            else:
                rate = float("inf")  # no RTT yet: unpaced, or at the cap (Linux: ~0 capped)
        if self.max_rate is not None and rate > self.max_rate:
            rate = self.max_rate
        self.rate = rate if rate != float("inf") else 0.0

    def ready(self, now: float) -> bool:
        """May a segment leave now: its time has come, or it belongs to the packet that left.
        Not yet: the segment is held back for ``next_send`` (the caller arms the PACING timer),
        and the schedule binds until it has caught up with the clock."""
        if self.burst > 0 or now >= self.next_send:
            return True
        self.held = True
        return False

    def on_sent(self, n: int, now: float, mss: int, min_segs: int) -> None:
        """``n`` bytes left now: the next segment waits n/rate; a segment that starts a packet
        opens it for ``tcp_tso_autosize`` segments in all. Per packet, as Linux: unpaced while
        it is among the connection's first ``UNPACED_SEGS`` segments; the time by which it left
        late shortens the schedule (tcp_update_skb_after_send: OS jitter), by at most half the
        packet's own time (``len_ns -= min(len_ns / 2, credit)``). After a hold, every packet
        that leaves late, until the schedule has caught up with the clock, takes all of its
        lateness up to ``MAX_TIMER_CREDIT`` (the module's docstring)."""
        segs = self.segs
        self.segs = segs + 1
        rate = self.rate
        if rate <= 0:
            return
        t = n / rate
        if self.burst > 0:  # the rest of the packet: its time adds to the schedule
            self.burst -= 1
            if self.paced:
                self.next_send += t
            return
        # a new packet: rate/1024 bytes (sk_pacing_shift 10), at least min_segs
        pkt = max(min(int(rate) >> 10, GSO_MAX_SIZE) // mss, min_segs)
        self.burst = pkt - 1
        self.paced = segs + pkt >= UNPACED_SEGS  # data_segs_out counts the packet's own
        nxt = self.next_send
        start = nxt if nxt > now else now
        if not self.paced:
            self.next_send = start
            return
        # tcp_wstamp_ns - prior_wstamp (none before the first send), within what it may take
        late = start - nxt if nxt else 0.0
        cap = pkt * t / 2
        if self.held:  # the loop, not the flow, was late: its lateness, up to the bound
            if not late:
                self.held = False  # caught up: the next wait holds again
            elif cap < MAX_TIMER_CREDIT:
                cap = MAX_TIMER_CREDIT
        self.next_send = start + t - (late if late < cap else cap)


def pacer_for(cc: CongestionController, cfg: TcpConfig, old: Pacer | None) -> Pacer | None:
    """The pacer a connection needs with this controller and config (None: no pacing); the
    old one goes on if there still is one."""
    cap = cfg.max_pacing_rate
    if not cc.needs_pacing and cap is None and cfg.qdisc != "fq":
        return None
    if old is not None:
        old.max_rate = cap
        if cap is not None and old.rate > cap:
            old.rate = cap
        return old
    pacer = Pacer(cap)
    pacer.update(cc, None, 0)
    return pacer
