"""Explicit Congestion Notification in TCP (RFC 3168 §6.1) as Linux does it (``tcp_ecn_*``).

``net.ipv4.tcp_ecn`` (:attr:`TcpConfig.ecn <.config.TcpConfig.ecn>`): 0 off; 1 request ECN on
outgoing connections and accept it on incoming ones; 2 (Linux's default) accept it when the peer
requests it, never request it; 3 to 5 add Accurate ECN (RFC 9768, accecn.py, whose
:class:`~.accecn.AccEcn` derives from :class:`Ecn`). A connection that negotiated ECN holds an
:class:`Ecn` in ``Tcb.ecn`` (None otherwise: the hooks in ``tcb.py``/``output.py`` cost one
test).

* **Negotiation** (§6.1.1): our SYN carries ECE|CWR (``SEW``), a SYN-ACK accepting it ECE alone
  (``SE.``). With ``tcp_ecn_fallback`` (Linux's default) a retransmitted SYN goes without them, in
  case a middlebox drops ECN-setup SYNs (Linux ``tcp_ecn_clear_syn``). A listener refuses ECN for a
  SYN whose IP header already carries ECT (Linux ``tcp_ecn_create_request``: broken path), unless
  the SYN also has AE (an AccECN request, answered with classic ECN by a listener without
  AccECN).
* **Sending** (§6.1.2, §6.1.5): new data segments leave ECT(0); pure ACKs, SYNs, zero-window
  probes and retransmissions Not-ECT (Linux ``tcp_ecn_send``). The IP layer takes the ECN field from
  ``Segment.ecn`` (the TCP layer's flush passes it as the TOS / traffic class).
* **Receiver** (§6.1.3): a segment with CE makes every segment we send carry ECE until a data
  segment with CWR arrives; the first CE of such an episode is ACKed at once (Linux
  ``tcp_enter_quickack_mode``: the sender's window may be tiny), and a data segment with CWR too.
* **Sender** (§6.1.2): an acceptable ACK with ECE reduces the window once per window of data:
  ssthresh from the congestion controller (``on_ecn``, the same decrease as for a loss), then
  Linux's CWR state: cwnd goes down by Proportional Rate Reduction (RFC 6937, PRR-CRB) while
  the data outstanding at the ECE is acknowledged, without retransmitting, and is ssthresh once
  an ACK covers more than that; the next new data segment carries CWR. During loss recovery (a
  reduction already made for this window) an ECE only asks for the CWR; a loss detected during
  CWR starts fast recovery without reducing ssthresh again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from stacklab.wire.tcp import ACK, AE, CWR, ECE, SYN

from .config import TcpConfig, TcpStats
from .congestion.base import CongestionController
from .prr import Prr
from .rtt import RttEstimator
from .segment import Segment, SegmentLike
from .seq import seq_gt, seq_lt, seq_sub

__all__ = ["CE", "ECN_OFF", "ECN_ON", "ECN_PASSIVE", "ECT0", "ECT1", "NOT_ECT", "Ecn",
           "accept_syn", "on_synack", "syn_flags"]

# the IP header's ECN field (RFC 3168 §5)
NOT_ECT, ECT1, ECT0, CE = 0, 1, 2, 3
# net.ipv4.tcp_ecn
ECN_OFF, ECN_ON, ECN_PASSIVE = 0, 1, 2


class TcbLike(Protocol):
    """What ECN reads and sets of a TCB (a protocol: the TCB's modules import this one)."""

    ecn: Ecn | None
    prr: Prr
    quick_acks: int
    pingpong: bool
    ato: float
    _ack_now: bool

    def own_prr(self) -> Prr: ...
    @property
    def config(self) -> TcpConfig: ...
    @property
    def stats(self) -> TcpStats: ...
    @property
    def cc(self) -> CongestionController: ...
    @property
    def rtt(self) -> RttEstimator: ...
    @property
    def trace(self) -> Callable[[float, str, dict[str, Any]], None] | None: ...
    @property
    def iss(self) -> int: ...
    @property
    def snd_una(self) -> int: ...
    @property
    def snd_max(self) -> int: ...
    @property
    def snd_mss(self) -> int: ...
    @property
    def recover(self) -> int | None: ...
    @property
    def rto_recover(self) -> int | None: ...
    def _in_flight(self) -> int: ...


class Ecn:
    """The ECN state of a connection (Linux ``tp->ecn_flags`` with ``TCP_ECN_OK``)."""

    __slots__ = ("demand_cwr", "queue_cwr", "seen", "ece", "cwr_high", "syn_ect_rcv")
    accecn = False  # AccEcn (accecn.py) says True
    opt_reserve = 0  # option bytes kept out of every segment (AccECN's option)

    def __init__(self) -> None:
        self.demand_cwr = False  # receiver: CE seen, ECE on what we send until a CWR arrives
        self.queue_cwr = False  # sender: CWR on the next new data segment
        self.seen = False  # an ECT or CE segment arrived (Linux TCP_ECN_SEEN)
        self.ece = False  # the segment being processed carries ECE (read by cwr_ack)
        self.cwr_high: int | None = None  # in CWR: SND.MAX when it began (Linux high_seq)
        self.syn_ect_rcv = NOT_ECT  # the IP-ECN field of the peer's SYN or SYN-ACK (AccECN)

    def figures(self, stats: TcpStats) -> dict[str, object]:
        """The per-connection figures of the JSON summaries: CE marks received, reductions."""
        return {"ce_in": stats.ecn_ce_in, "reductions": stats.ecn_reductions}

    # -- what arrives ----------------------------------------------------------------------------

    def on_segment(self, tcb: TcbLike, seg: SegmentLike, ip_ecn: int) -> None:
        """A segment arrived on a synchronized connection, ``ip_ecn`` its IP ECN field: the
        receiver's CE / CWR bookkeeping (Linux tcp_ecn_accept_cwr, __tcp_ecn_check_ce)."""
        flags = seg.flags
        self.ece = flags & (ECE | ACK | SYN) == ECE | ACK
        if self.ece and (tcb.recover is not None or tcb.rto_recover is not None):
            self.queue_cwr = True  # already reduced for a loss in this window: only say so
        if ip_ecn == CE:
            tcb.stats.ecn_ce_in += 1
        if not seg.payload:
            return
        if flags & CWR:  # the sender reduced: stop echoing, and ACK at once (its cwnd is low)
            self.demand_cwr = False
            tcb._ack_now = True
        if ip_ecn == CE:
            self.seen = True
            if not self.demand_cwr:
                self.demand_cwr = True
                _quickack(tcb)
        elif ip_ecn != NOT_ECT:
            self.seen = True
        elif self.seen:
            _quickack(tcb)  # Not-ECT after ECT: most likely a retransmission (Linux)

    def cwr_ack(self, tcb: TcbLike, acked: int, now: float) -> bool:
        """An ACK advanced SND.UNA by ``acked`` outside loss recovery: the congestion response
        to its ECE, and the window during CWR. True: the window is set, no growth on this
        ACK."""
        cc = tcb.cc
        if tcb.rto_recover is not None or cc.owns_cwnd:  # a timeout ended the reduction
            # (Linux CA_Loss); BBR answers ECE through its own model (Linux cong_control)
            self.cwr_high = None
            return False
        high = self.cwr_high
        if high is None:
            if not self.ece:
                return False
            # one response per window of data (RFC 3168 §6.1.2), Linux tcp_enter_cwr
            self.cwr_high = tcb.snd_max
            prior_cwnd = cc.cwnd
            tcb.own_prr().start(prior_cwnd // tcb.snd_mss)  # RecoverFS: cwnd before it
            self.queue_cwr = True
            cc.on_ecn(seq_sub(tcb.snd_max, tcb.snd_una) + acked, now)
            tcb.stats.ecn_reductions += 1
            if tcb.trace is not None:
                tcb.trace(now, "ecn", {"cwr": True, "ssthresh": cc.ssthresh,
                                       "prior_cwnd": prior_cwnd})
        elif seq_gt(tcb.snd_una, high):
            # beyond what was outstanding at the ECE (and so the CWR reached the receiver):
            # the reduction is over (Linux tcp_end_cwnd_reduction)
            self.cwr_high = None
            cc.cwnd = cc.ssthresh
            return True
        # the one PRR (prr.py): Linux tcp_cwnd_reduction serves CA_CWR as CA_Recovery; with
        # nothing resent, below ssthresh at most what was delivered (PRR-CRB)
        mss = tcb.snd_mss
        cwnd = tcb.prr.cwnd(cc.ssthresh // mss, -(-tcb._in_flight() // mss), -(-acked // mss),
                            True, False, crb=True)
        if cwnd is not None:
            cc.cwnd = cwnd * mss
        return True

    def loss_in_cwr(self, tcb: TcbLike) -> bool:
        """Fast recovery begins: True if this window was already answered for an ECE, so
        ssthresh stays (RFC 3168 §6.1.2: not reduced twice within a round trip; Linux
        tcp_enter_recovery from CWR); cwnd goes to it as for a loss. The CWR state ends."""
        if self.cwr_high is None:
            return False
        self.cwr_high = None
        cc = tcb.cc
        cc.cwnd = min(cc.cwnd, cc.ssthresh)
        return True

    # -- what leaves -----------------------------------------------------------------------------

    def on_emit(self, tcb: TcbLike, seg: Segment, now: float) -> None:
        """A segment other than a SYN is built: ECE while the receiver side demands a CWR, and
        for new data ECT(0) and the queued CWR (Linux tcp_ecn_send)."""
        if self.demand_cwr:
            seg.flags |= ECE
        if seg.payload and not seq_lt(seg.seq, tcb.snd_max):
            seg.ecn = ECT0
            if self.queue_cwr:
                self.queue_cwr = False
                seg.flags |= CWR


def _quickack(tcb: TcbLike) -> None:
    """Linux tcp_enter_quickack_mode(sk, 2): the next two ACKs go at once, interactive mode
    ends, the ACK timeout restarts from its minimum."""
    if tcb.quick_acks < 2:
        tcb.quick_acks = 2
    tcb.pingpong = False
    tcb.ato = tcb.config.delack_timeout
    tcb._ack_now = True


def syn_flags(tcb: TcbLike, flags: int) -> int:
    """ECN flags for a SYN or SYN-ACK we send (RFC 3168 §6.1.1)."""
    if tcb.ecn is None:
        return 0
    if flags & ACK:
        return ECE  # accepting (passive, or a simultaneous open)
    if seq_gt(tcb.snd_max, tcb.iss) and tcb.config.ecn_fallback:
        return 0  # a retransmitted SYN: without ECN, in case a middlebox drops ECN SYNs
    return ECE | CWR


def accept_syn(config: TcpConfig, seg: SegmentLike, ip_ecn: int) -> Ecn | None:
    """A listener's SYN: ECN if it asks (ECE and CWR), we allow it (any mode but 0) and its IP
    header is Not-ECT or it has AE too (Linux tcp_ecn_create_request)."""
    flags = seg.flags
    if config.ecn != ECN_OFF and flags & (ECE | CWR) == ECE | CWR \
            and (ip_ecn == NOT_ECT or flags & AE):
        return Ecn()
    return None


def on_synack(ecn: Ecn | None, seg: SegmentLike) -> Ecn | None:
    """What our request became from the peer's SYN-ACK (ECE without CWR: accepted) or, in a
    simultaneous open, its SYN (ECE and CWR: it asks too); Linux tcp_ecn_rcv_synack and
    tcp_ecn_rcv_syn."""
    if ecn is None:
        return None
    want = ECE if seg.flags & ACK else ECE | CWR
    return ecn if seg.flags & (ECE | CWR) == want else None
