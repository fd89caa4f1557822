"""RACK-TLP loss detection (RFC 8985), on by default as in Linux (``net.ipv4.tcp_recovery``
bit 0x1; tail loss probes with ``tcp_early_retrans`` 3 or 4).

RACK ("recent acknowledgment") deems a segment lost by *time*: once a segment sent after it has
been delivered (ACKed or SACKed) and it stays undelivered for ``RACK.rtt + reo_wnd`` since its own
transmission (§6.2). The reordering window ``reo_wnd`` is ``min_RTT / 4`` times
``reo_wnd_mult``, which grows by one per round trip that sees a D-SACK and falls back to 1 after
16 recoveries without one (§6.2 step 4); before any reordering was seen it is 0 in recovery and
once DupThresh segments are SACKed (unless bit 0x4, Linux ``TCP_RACK_NO_DUPTHRESH``). A segment
not yet due arms the reordering timer (``RACK_REO``).

TLP ("tail loss probe", §7): with data in flight, not in recovery and nothing SACKed, a probe
timeout PTO = 2*SRTT (plus the peer's worst-case delayed ACK, Linux ``TCP_RTO_MIN``, when one
segment is in flight; never after the RTO) sends one new segment if it may, else resends the last
one, once per episode; its ACK tells whether a loss was repaired (cwnd is then reduced once).

:class:`Rack` holds the algorithm's variables and reads the connection's transmission records
(:mod:`.sent`, stream positions as :mod:`.recovery`); the functions below are the TCB's hooks.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from operator import attrgetter
from typing import Any, Protocol

from .buffers import SendBuffer
from .config import TcpConfig, TcpStats
from .congestion import CongestionController
from .fsm import CLOSE_WAIT, CLOSING, ESTABLISHED, FIN_WAIT_1, LAST_ACK, State
from .prr import Prr
from .recovery import DUPTHRESH, RangeSet, Recovery
from .rtt import RttEstimator
from .sent import Sent, SentLog
from .seq import HALF, MASK, MOD, seq_sub
from .timers import RACK_REO_TIMER, RTO_TIMER, TLP_TIMER, Timer
from .undo import Undo

RACK_LOSS = 0x1  # tcp_recovery bits (Linux include/net/tcp.h)
RACK_NO_DUPTHRESH = 0x4
TIMEOUT_MIN = 0.002  # Linux TCP_TIMEOUT_MIN: the least a RACK/TLP timer waits beyond its due
REO_PERSIST = 16  # recoveries a grown reordering window lasts (RFC 8985 §6.2 step 4)
_SENDING = (ESTABLISHED, CLOSE_WAIT, FIN_WAIT_1, CLOSING, LAST_ACK)


class Rack:
    # one per connection end: slots for what an ACK of new data or a timeout moves; what only
    # reordering, a D-SACK or a retransmitted probe sets are class attributes until then, in
    # the instance's __dict__ once set (48 bytes less per idle connection end, issue 23 item 4)
    __slots__ = ("sent", "xmit_ts", "end_seq", "rtt", "fack", "min_rtt", "advanced",
                 "sacked_segs", "tlp_end", "flags", "xmit_order", "xmit_retrans", "orig_end",
                 "__dict__")
    reordering_seen = False
    reordering = DUPTHRESH  # Linux tp->reordering (segments), tcpi_reordering
    reord_seen = 0  # ACKs that showed reordering (Linux tp->reord_seen)
    reo_wnd_mult = 1
    reo_wnd_persist = 0
    dsack_round: int | None = None
    tlp_retrans = False  # TLP.is_retrans

    def __init__(self, flags: int, sent: SentLog) -> None:
        self.flags = flags  # tcp_recovery bits
        self.sent = sent  # the connection's transmission records (sent.py)
        self.xmit_ts = -1.0  # RACK.xmit_ts: the latest transmission delivered
        self.end_seq = 0  # RACK.end_seq
        self.xmit_order = -1  # the transmission order of that segment
        self.xmit_retrans = False  # whether it was a retransmission
        self.orig_end = 1 << 62  # this ACK: the lowest end delivered never resent (F-RTO)
        self.rtt = 0.0  # RACK.rtt: the RTT of the most recently delivered segment
        self.fack = 0  # RACK.fack: the highest end delivered
        self.min_rtt: float | None = None
        self.advanced = False  # RACK.xmit_ts moved since the last detection
        self.sacked_segs = 0
        self.tlp_end: int | None = None  # TLP.end_seq (a position), None: no probe out

    # -- records (sent.py) ------------------------------------------------------------------
    def on_sent(self, unsacked: int) -> None:
        """A transmission replaced ``unsacked`` SACKed records (sent again)."""
        self.sacked_segs -= unsacked

    def on_sacked(self, sacked: RangeSet, now: float, mss: int,
                  fresh: list[tuple[int, int]]) -> None:
        """The records the scoreboard now covers, looked for where the last SACK made it grow
        (``fresh``, sorted: recovery.py), in sequence order."""
        done = []
        fin_end = self.sent.fin_end
        recs = self.sent.records
        for lo, hi in fresh:
            j = max(bisect_right(recs, lo, key=_start) - 1, 0)
            while j < len(recs) and recs[j].start < hi:
                s = recs[j]
                j += 1
                if s.sacked:
                    continue
                # a SACK block covers data: the FIN of a segment is delivered with its bytes
                top = sacked.containing(s.start)
                if top is not None and top >= s.end - (s.end == fin_end and s.end - s.start > 1):
                    s.sacked = True
                    self.sacked_segs += 1
                    done.append(s)
        self.on_delivered(done, now, mss, False)

    def on_delivered(self, done: list[Sent], now: float, mss: int, cumulative: bool) -> None:
        """``done`` are delivered: the records the cumulative ACK removed (``cumulative``: the
        ones a SACK delivered before only leave the SACKed count; the others advance RACK), or
        those a SACK newly covers (:meth:`on_sacked`). One pass, as it runs for every ACK.
        RFC 8985 §6.2 steps 2-3 for newly delivered segments, in sequence order as Linux
        (tcp_clean_rtx_queue, tcp_sacktag_walk: RACK.rtt is the last one's; the RFC orders them
        by transmission time, which makes a resent segment's short RTT win); and Linux's
        reordering degree: how far below the highest delivered end (FACK) the lowest segment
        delivered late, never resent, lay (tcp_check_sack_reordering)."""
        # one pass (it runs for every ACK): the reordering degree is measured against FACK
        # before this ACK (fack0)
        # (the attributes the loop reads and writes as locals, stored back once after it)
        fack0 = fack = self.fack
        orig_end = self.orig_end
        min_rtt = self.min_rtt
        xmit_ts = self.xmit_ts
        xmit_order = self.xmit_order
        newest: Sent | None = None  # the record that set RACK.xmit_ts last
        rtt: float | None = None  # the last RTT taken (RACK.rtt), None: none
        low = None
        for s in done:
            if cumulative and s.sacked:
                self.sacked_segs -= 1  # delivered before (RACK took it then)
                continue
            end = s.end
            retrans = s.retrans
            if not retrans:
                if end < orig_end:
                    orig_end = end
                if end <= fack0 and (low is None or s.start < low):
                    low = s.start
            xmit = s.xmit
            r = now - xmit
            if retrans:
                if min_rtt is not None and r < min_rtt:
                    continue  # ambiguous: the original may have been delivered
            elif min_rtt is None or r < min_rtt:
                min_rtt = r
            if end > fack:
                fack = end
            elif end < fack and not retrans:
                self.reordering_seen = True  # delivered after a later segment (§6.2 step 3)
            rtt = r
            # RFC 8985 RACK_sent_after: sent later; at the same instant (a virtual clock has
            # many), later in transmission order, as Linux's time-sorted queue orders them (the
            # RFC's tie-break by sequence would call a retransmission sent after new data older
            # than it)
            if xmit > xmit_ts or (xmit == xmit_ts and s.order > xmit_order):
                xmit_ts = xmit
                xmit_order = s.order
                newest = s
        self.orig_end = orig_end
        self.min_rtt = min_rtt
        self.fack = fack
        if rtt is not None:
            self.rtt = rtt
            self.advanced = True
        if newest is not None:
            self.xmit_ts = xmit_ts
            self.xmit_order = xmit_order
            self.end_seq = newest.end
            self.xmit_retrans = newest.retrans
        if low is not None:
            self.reord_seen += 1
            metric = fack0 - low
            if metric > self.reordering * mss:
                self.reordering = min(-(-metric // mss), 300)  # Linux tcp_max_reordering

    def on_dsack_block(self, lo: int, hi: int, mss: int) -> None:
        """A D-SACK block ``[lo, hi)`` (positions): a segment in it both retransmitted and
        already SACKed had its original delivered late, after the retransmission was sent —
        reordering, not loss (RFC 8985 §6.2 step 2, the D-SACK as the reordering signal; Linux
        tcp_sacktag_one with a D-SACK sets the reordering point there, and
        tcp_check_sack_reordering measures it against the highest SACKed end)."""
        recs = self.sent.records
        j = max(bisect_right(recs, lo, key=_start) - 1, 0)
        low = None
        while j < len(recs) and recs[j].start < hi:
            s = recs[j]
            j += 1
            if s.retrans and s.sacked and s.end > lo:
                low = s.start
                break  # (in sequence order: the first is the lowest)
        if low is None or low >= self.fack:
            return
        self.reordering_seen = True
        self.reord_seen += 1
        metric = self.fack - low
        if metric > self.reordering * mss:
            self.reordering = min(-(-metric // mss), 300)  # Linux tcp_max_reordering

    # -- the reordering window and detection -------------------------------------------------
    def reo_wnd(self, in_recovery: bool, srtt: float) -> float:
        if not self.reordering_seen:
            if in_recovery:
                return 0.0
            if self.sacked_segs >= DUPTHRESH and not self.flags & RACK_NO_DUPTHRESH:
                return 0.0
        return min((self.min_rtt or 0.0) / 4 * self.reo_wnd_mult, srtt)

    def on_dsack(self, una: int, snd_nxt: int, dsack: bool) -> None:
        """RFC 8985 §6.2 step 4: one more min_RTT/4 per round trip that sees a D-SACK."""
        if self.dsack_round is not None and una >= self.dsack_round:
            self.dsack_round = None
        if self.dsack_round is None and dsack:
            self.dsack_round = snd_nxt
            self.reo_wnd_mult += 1
            self.reo_wnd_persist = REO_PERSIST

    def on_recovery_end(self) -> None:
        self.reo_wnd_persist -= 1
        if self.reo_wnd_persist <= 0:
            self.reo_wnd_mult = 1

    def detect(self, now: float, lost: RangeSet, sacked: RangeSet, reo_wnd: float) -> tuple[
            list[tuple[int, int]], float]:
        """RFC 8985 §6.2 step 5: the ranges now lost, and how long until the next one may be
        (0: none pending)."""
        self.advanced = False
        newly: list[tuple[int, int]] = []
        timeout = 0.0
        # Linux walks its time-sorted queue and stops at the first segment sent after
        # RACK.xmit_ts; by position: above RACK.end_seq and every retransmission lie first
        # transmissions only, sent after it (in position order) when it was one too
        top = self.sent.retrans_top
        if not self.xmit_retrans and self.end_seq > top:
            top = self.end_seq
        elif self.xmit_retrans:
            top = 1 << 62
        # the candidates in transmission order (sent.py): on a monotonic clock transmission
        # times never decrease along it, so RACK_sent_after (see _delivered) holds for exactly
        # those before RACK's own order, where the walk stops as Linux's; what is SACKed, lost
        # already (waiting to be resent) or out of the log is dropped on the way, as Linux
        # unlinks such skbs, so each ACK touches the candidates sent before the RACK segment
        # and the records that died since the last walk, not the whole flight
        ts = self.sent.tsorted
        order = self.xmit_order
        rtt = self.rtt
        n = len(ts)
        i = w = 0
        while i < n:
            s = ts[i]
            if s.order >= order:
                break
            i += 1
            if s.gone or s.sacked or s.lost:
                continue
            if s.start < top:
                remaining = s.xmit + rtt + reo_wnd - now
                if remaining <= 1e-9:
                    s.lost = True
                    newly.append((s.start, s.end))
                    continue
                if remaining > timeout:
                    timeout = remaining
            ts[w] = s
            w += 1
        if w < i:
            del ts[w:i]
        if len(newly) > 1:
            newly.sort()  # in position order, as the scoreboard and the trace take them
        return newly, timeout


# -- the TCB's hooks ------------------------------------------------------------------------------

class TlpTcb(Protocol):
    """What scheduling a probe reads of a TCB (the sending side has it: output.py calls)."""

    config: TcpConfig
    rec: Recovery
    rack: Rack
    sack_ok: bool
    state: State
    snd_una: int
    snd_max: int
    snd_mss: int
    recover: int | None
    rto_recover: int | None
    retries: int
    dupacks: int
    deadlines: list[float | None]
    rtt: RttEstimator

    def _arm(self, kind: Timer, at: float | None) -> None: ...


class RackTcb(TlpTcb, Protocol):
    """What RACK, TLP and PRR use of a TCB (:class:`~.tcb.Tcb` is one)."""

    prr: Prr
    undo: Undo
    rto_tsval: int | None
    cc: CongestionController
    stats: TcpStats
    snd_nxt: int
    snd_wnd: int
    snd_data_una: int
    sendbuf: SendBuffer
    fin_seq: int | None
    _sws_override: bool
    trace: Callable[[float, str, dict[str, Any]], None] | None

    def _abs(self, seq: int) -> int: ...
    def _seq(self, pos: int) -> int: ...
    def _maybe_enter_recovery(self, now: float) -> None: ...
    def _trace_cwnd(self, now: float) -> None: ...
    def _retransmit_from(self, seq: int, limit: int, now: float, why: str) -> int: ...
    def _output_data(self, now: float) -> bool: ...


def on_established(tcb: RackTcb) -> None:
    """The options are known: RACK needs SACK (as Linux: a Reno connection counts duplicates)."""
    tcb.rec.rack_mode = bool(tcb.config.recovery & RACK_LOSS) and tcb.sack_ok


def after_ack(tcb: RackTcb, now: float, delivered: int, una_advanced: bool, dsacks: int,
              sack_blocks: bool, tsecr: int | None) -> None:
    """Every acceptable ACK, after the scoreboard and SND.UNA moved: TLP's verdict on its probe,
    RACK's detection (and recovery when it finds a loss), PRR's cwnd during recovery, and
    whether the last episode was spurious (undo.py)."""
    rack = tcb.rack
    rec = tcb.rec
    una_pos = tcb._abs(tcb.snd_una)
    dsack = dsacks > 0
    if dsack:
        tcb.undo.on_dsack(dsacks)
    if rec.rack_mode and rec.sacked.starts:
        rack.on_sacked(rec.sacked, now, tcb.snd_mss, rec.new_sacked)
    _try_undo(tcb, now, una_advanced, tsecr)
    rack.orig_end = 1 << 62
    _tlp_ack(tcb, now, una_pos, una_advanced, dsack, sack_blocks)
    newly_lost = False
    if rec.rack_mode:
        rack.on_dsack(una_pos, tcb._abs(tcb.snd_nxt), dsack)
        if rack.advanced and not rec.sacked.starts and not rack.xmit_retrans:
            # in-order delivery of first transmissions: whatever is left was sent after it
            rack.advanced = False
        if rack.advanced:
            newly_lost = _detect(tcb, now)
        if newly_lost and tcb.recover is None:
            tcb._maybe_enter_recovery(now)
    if tcb.recover is not None and rec.sack_mode:
        prr_update(tcb, delivered, una_advanced, newly_lost)


def after_open_ack(tcb: RackTcb, now: float, una_pos: int, delivered: int,
                   tsecr: int | None) -> None:
    """:func:`after_ack` for the ACK the sender's fast path takes (``Tcb._ack_predicted``):
    SND.UNA advanced in the Open state, not after a timeout, no SACK block or D-SACK, nothing
    SACKed, no probe out. Of the whole, what can act: the undo of the last episode, and
    RACK's detection when the newest segment delivered was a retransmission (what was sent
    before it may now be lost)."""
    rack = tcb.rack
    rec = tcb.rec
    if tcb.undo.active:
        _try_undo(tcb, now, True, tsecr)
    rack.orig_end = 1 << 62
    if not rec.rack_mode:
        return
    if rack.dsack_round is not None and una_pos >= rack.dsack_round:
        rack.dsack_round = None  # (on_dsack without one)
    if rack.advanced:
        if not rack.xmit_retrans:
            rack.advanced = False  # (as after_ack: in-order delivery of first transmissions)
        elif _detect(tcb, now):
            if tcb.recover is None:
                tcb._maybe_enter_recovery(now)
            if tcb.recover is not None and rec.sack_mode:
                prr_update(tcb, delivered, True, True)


def _try_undo(tcb: RackTcb, now: float, una_advanced: bool, tsecr: int | None) -> None:
    """Linux tcp_try_undo_loss (after a timeout: Eifel on the first ACK that advances, and
    F-RTO), and tcp_try_undo_recovery / tcp_try_undo_dsack (a fast recovery over, its
    retransmissions all D-SACKed or the ending ACK echoing an original): cwnd and ssthresh go
    back."""
    undo = tcb.undo
    if not undo.active or tcb.recover is not None:
        return
    after_rto = tcb.rto_recover is not None
    spurious = _frto(tcb)
    if undo.frto_high is not None and tcb._abs(tcb.snd_una) >= undo.frto_high:
        undo.frto_high = undo.frto_new = None  # all outstanding at the timeout acknowledged
    if after_rto and not una_advanced and not spurious:
        if undo.frto_new is not None and undo.frto_new < tcb._abs(tcb.snd_max):
            _frto_fallback(tcb)  # step 3a: a duplicate ACK after the new data: lost after all
        return
    spurious = spurious or undo.spurious(tsecr if una_advanced else None)
    if una_advanced:
        undo.first_tsval = None  # Eifel asks the ACK that ends the episode only
    if not spurious:
        if after_rto and una_advanced:
            _frto_step2b(tcb)
        return
    cc = tcb.cc
    cc.cwnd, cc.ssthresh = undo.undo(cc.cwnd, cc.ssthresh)
    tcb.stats.spurious_undos += 1
    if after_rto:  # the originals are arriving: stop resending them (RFC 4015 §3)
        tcb.rto_recover = None
        tcb.rto_tsval = None
        if seq_sub(tcb.snd_max, tcb.snd_nxt) > 0:
            tcb.snd_nxt = tcb.snd_max
    if tcb.trace is not None:
        tcb.trace(now, "undo", {"cwnd": cc.cwnd, "ssthresh": min(cc.ssthresh, 1 << 30),
                                "after": "rto" if after_rto else "recovery"})
    tcb._trace_cwnd(now)


def _frto_step2b(tcb: RackTcb) -> None:
    """F-RTO after an ACK that advanced SND.UNA but is no verdict (RFC 5682 §2.1/§3.1, Linux
    tcp_process_loss with tcp_frto). The first such ACK (step 2b): when new data waits and the
    peer's window takes some, up to cwnd of new segments go out (two, cwnd having grown from
    one) in place of the go-back-N, and the next ACK decides (step 3: spurious if it ACKs or
    SACKs data never resent, see :func:`_frto`); with nothing new to send, the conventional
    recovery goes on. The next ACK that is no verdict ends F-RTO the same way."""
    undo = tcb.undo
    if undo.frto_high is None:
        return
    if undo.frto_new is not None:  # step 3 says no: the go-back-N of the lost window
        _frto_fallback(tcb)
        return
    top = tcb.snd_max
    unsent = len(tcb.sendbuf) - seq_sub(top, tcb.snd_data_una)
    if unsent > 0 and tcb.fin_seq is None and seq_sub(top, tcb.snd_una) < tcb.snd_wnd:
        undo.frto_new = tcb._abs(top)
        tcb.snd_nxt = top  # output() sends new data (output.py counts only it in flight)
    else:
        undo.frto_high = None  # step 2b not possible: conventional recovery (RFC 5682 §2.1)


def _frto_fallback(tcb: RackTcb) -> None:
    """F-RTO found the timeout genuine (step 3a): resend from SND.UNA, skipping what the peer
    SACKed, as the go-back-N would have."""
    tcb.undo.frto_high = tcb.undo.frto_new = None
    tcb.snd_nxt = tcb.snd_una


def _frto(tcb: RackTcb) -> bool:
    """F-RTO's verdict after a timeout (RFC 5682 §3.1 step 3b, SACK-enhanced as Linux
    tcp_process_loss): the timeout was spurious when data outstanding at it and never resent
    is ACKed or SACKed."""
    high = tcb.undo.frto_high
    return high is not None and tcb.rack.orig_end <= high


def _detect(tcb: RackTcb, now: float) -> bool:
    rack, rec = tcb.rack, tcb.rec
    reo = rack.reo_wnd(tcb.recover is not None or tcb.rto_recover is not None,
                       tcb.rtt.srtt or 0.0)
    newly, timeout = rack.detect(now, rec.lost, rec.sacked, reo)
    for s, e in newly:
        rec.mark_lost(s, e)
    if timeout > 0:
        tcb._arm(RACK_REO_TIMER, now + timeout + TIMEOUT_MIN)
        tcb._arm(TLP_TIMER, None)
    elif tcb.deadlines[RACK_REO_TIMER] is not None:
        tcb._arm(RACK_REO_TIMER, None)
    if newly and tcb.trace is not None:
        tcb.trace(now, "rack", {"lost": [[s, e] for s, e in newly], "reo_wnd": reo})
    return bool(newly)


def on_reo_timer(tcb: RackTcb, now: float) -> None:
    """The reordering window of a segment ran out (Linux tcp_rack_reo_timeout): mark what is
    lost, enter recovery if not in it (one segment's worth of PRR credit), resend."""
    if not tcb.rec.rack_mode or tcb.snd_una == tcb.snd_max:
        return
    tcb.stats.rack_reo_timeouts += 1
    if _detect(tcb, now) and tcb.recover is None:
        tcb._maybe_enter_recovery(now)
        if tcb.recover is not None and tcb.rec.sack_mode:
            prr_update(tcb, tcb.snd_mss, False, True)


def prr_update(tcb: RackTcb, delivered: int, una_advanced: bool, newly_lost: bool) -> None:
    """PRR (prr.py) sets cwnd from what this ACK delivered, unless the congestion controller
    sets it itself (BBR), as Linux's tcp_cong_control skips tcp_cwnd_reduction then."""
    cc = tcb.cc
    if cc.owns_cwnd:
        return
    mss = tcb.snd_mss
    una_pos = tcb._abs(tcb.snd_una)
    pipe = tcb.rec.pipe(una_pos, tcb._abs(tcb.snd_max), mss)
    cwnd = tcb.prr.cwnd(cc.ssthresh // mss, -(-pipe // mss), -(-delivered // mss),
                        una_advanced, newly_lost)
    if cwnd is not None:
        cc.cwnd = cwnd * mss


# -- tail loss probes (RFC 8985 §7) -------------------------------------------------------------

def schedule_tlp(tcb: TlpTcb, now: float, advancing: bool) -> None:
    """Arm the probe timeout after new data went out or an ACK advanced (Linux
    tcp_schedule_loss_probe), or disarm it when a probe may not be sent now."""
    cfg = tcb.config
    rec = tcb.rec
    if cfg.early_retrans not in (3, 4) or not tcb.sack_ok or tcb.state not in _SENDING \
            or tcb.snd_una == tcb.snd_max or tcb.recover is not None \
            or tcb.rto_recover is not None or tcb.retries or rec.sacked.starts or tcb.dupacks \
            or tcb.deadlines[RACK_REO_TIMER] is not None:
        if tcb.deadlines[TLP_TIMER] is not None:
            tcb._arm(TLP_TIMER, None)
        return
    rtt = tcb.rtt
    srtt = rtt.srtt
    if srtt is None:
        pto = cfg.initial_rto
    else:
        pto = 2 * srtt
        d = (tcb.snd_max - tcb.snd_una) & MASK  # seq_sub(SND.MAX, SND.UNA), written out
        if (d - MOD if d > HALF else d) <= tcb.snd_mss:
            pto += cfg.min_rto  # one segment: the peer may delay its ACK (RFC 8985 §7.2)
        else:
            pto += TIMEOUT_MIN
    rto_at = tcb.deadlines[RTO_TIMER]
    rto_delta = rtt.rto if advancing or rto_at is None else rto_at - now
    if 0 < rto_delta < pto:  # (min() written out: after every ACK)
        pto = rto_delta
    tcb._arm(TLP_TIMER, now + pto)


def tlp_due_at_rto(tcb: RackTcb, now: float) -> bool:
    """The RTO fell due with the probe timeout at the same instant: Linux has one timer, armed
    as the probe (the PTO is never later than the RTO), so the probe goes instead."""
    at = tcb.deadlines[TLP_TIMER]
    if at is None or at > now:
        return False
    tcb._arm(TLP_TIMER, None)
    return on_tlp_timer(tcb, now)


def on_tlp_timer(tcb: RackTcb, now: float) -> bool:
    """PTO expired (RFC 8985 §7.3, Linux tcp_send_loss_probe): one new segment if the peer's
    window allows one (cwnd does not count), else the last segment again. True if sent."""
    rack = tcb.rack
    if tcb.state not in _SENDING or tcb.snd_una == tcb.snd_max or rack.tlp_end is not None \
            or tcb.recover is not None:
        return False
    sent = False
    off = seq_sub(tcb.snd_nxt, tcb.snd_data_una)
    unsent = len(tcb.sendbuf.data) - off
    if unsent > 0 and tcb.snd_nxt == tcb.snd_max \
            and tcb.snd_wnd - seq_sub(tcb.snd_nxt, tcb.snd_una) > 0:
        cc = tcb.cc
        saved = cc.cwnd
        top = tcb.snd_max
        cc.cwnd = seq_sub(tcb.snd_nxt, tcb.snd_una) + tcb.snd_mss  # room for one segment
        tcb._sws_override = True
        tcb._output_data(now)
        cc.cwnd = saved
        sent = tcb.snd_max != top
        rack.tlp_retrans = False
    if not sent:
        start, limit = _last_segment(tcb)
        if not tcb._retransmit_from(tcb._seq(start), limit, now, "tlp"):
            return False
        rack.tlp_retrans = True
    rack.tlp_end = tcb._abs(tcb.snd_max)
    tcb.stats.loss_probes += 1
    if tcb.trace is not None:
        tcb.trace(now, "tlp", {"retrans": rack.tlp_retrans, "end": rack.tlp_end})
    tcb._arm(RTO_TIMER, now + tcb.rtt.rto)  # Linux tcp_rearm_rto once the probe is out
    return True


def _last_segment(tcb: RackTcb) -> tuple[int, int]:
    """The last segment sent: its recorded transmission, else the last MSS of the flight."""
    log = tcb.rack.sent.records
    if log:
        s = log[-1]
        return s.start, max(s.end - s.start, 1)
    una = tcb._abs(tcb.snd_una)
    end = tcb._abs(tcb.fin_seq) if tcb.fin_seq is not None else tcb._abs(tcb.snd_max)
    start = max(una, end - tcb.snd_mss)
    return start, max(end - start, 1)


def _tlp_ack(tcb: RackTcb, now: float, una_pos: int, una_advanced: bool, dsack: bool,
             sack_blocks: bool) -> None:
    """RFC 8985 §7.4.2: whether the probe repaired a loss."""
    rack = tcb.rack
    end = rack.tlp_end
    if end is None or una_pos < end:
        return
    if not rack.tlp_retrans or dsack:
        rack.tlp_end = None  # new data delivered, or both the original and the probe arrived
    elif una_pos > end:
        rack.tlp_end = None  # the probe repaired a loss: one congestion response
        flight = seq_sub(tcb.snd_max, tcb.snd_una)
        tcb.cc.on_congestion_event(flight, now)
        tcb.cc.on_recovery_end(now)
        tcb.stats.loss_probe_recoveries += 1
        tcb._trace_cwnd(now)
    elif not una_advanced and not sack_blocks:
        rack.tlp_end = None  # a pure duplicate ACK: no loss


def on_rto(tcb: RackTcb) -> None:
    """A timeout: go-back-N resends everything; the probe episode and RACK's timer end."""
    tcb.rack.tlp_end = None
    tcb.undo.frto_new = None  # a timeout again: go-back-N from SND.UNA
    sent = tcb.rack.sent
    for s in sent.records:
        s.lost = False  # Recovery.on_rto forgot the marks: the resend replaces these anyway
    sent.requeue()
    tcb._arm(RACK_REO_TIMER, None)
    tcb._arm(TLP_TIMER, None)


# a record's start, the key of the bisections here (a C callable: no Python call per step)
_start: Callable[[Sent], int] = attrgetter("start")


__all__ = ["RACK_LOSS", "RACK_NO_DUPTHRESH", "Rack", "RackTcb", "TlpTcb", "after_ack",
           "on_established", "on_reo_timer", "on_rto", "on_tlp_timer", "schedule_tlp",
           "tlp_due_at_rto"]
