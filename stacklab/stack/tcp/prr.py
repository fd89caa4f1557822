"""Proportional Rate Reduction (RFC 6937), the fast-recovery sender as Linux's
``tcp_cwnd_reduction``: on each ACK during recovery cwnd becomes ``pipe + sndcnt``, where

* while pipe > ssthresh, ``sndcnt = CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out``
  (the proportional part: the sending rate falls smoothly to ssthresh over one round trip);
* otherwise, Slow Start Reduction Bound: ``sndcnt = min(ssthresh - pipe,
  max(prr_delivered - prr_out, DeliveredData) [+1 when SND.UNA advanced and nothing new was
  lost])``, so pipe grows back to ssthresh no faster than slow start;
* the first ACK of an episode always lets one segment out (the fast retransmit).

Counted in segments as Linux does (its packets; RecoverFS is the cwnd before the reduction,
Linux ``prior_cwnd``). The TCB counts what it sends during the reduction in ``out``. ECN's CWR
reduction (ecn.py) is this one PRR too, as Linux's tcp_cwnd_reduction serves CA_CWR and
CA_Recovery; there it bounds the growth below ssthresh by PRR-CRB (``crb``).
"""

from __future__ import annotations


class Prr:
    __slots__ = ("prior_cwnd", "delivered", "out")

    def __init__(self) -> None:
        self.prior_cwnd = 0  # RecoverFS, segments
        self.delivered = 0  # prr_delivered: segments delivered (ACKed or SACKed) this episode
        self.out = 0  # prr_out: segments sent this episode

    def start(self, prior_cwnd: int) -> None:
        """A recovery episode begins (RFC 6937 §3 initialisation)."""
        self.prior_cwnd = max(prior_cwnd, 1)
        self.delivered = 0
        self.out = 0

    def cwnd(self, ssthresh: int, pipe: int, delivered: int, una_advanced: bool,
             newly_lost: bool, crb: bool = False) -> int | None:
        """The new cwnd (segments) after an ACK that delivered ``delivered`` segments with
        ``pipe`` segments in flight; None: nothing delivered, cwnd stays. ``crb``: below
        ssthresh the Conservative Reduction Bound (RFC 6937 §3, ``sndcnt = min(ssthresh - pipe,
        DeliveredData)``), which Linux's tcp_cwnd_reduction applies when no retransmitted data
        was ACKed, as in ECN's CWR reduction (upstream packetdrill
        cwnd-moderation-ecn-enter-cwr-no-moderation-700 expects it)."""
        if delivered <= 0:
            return None
        self.delivered += delivered
        delta = ssthresh - pipe
        if delta < 0:
            sndcnt = -(-(ssthresh * self.delivered) // self.prior_cwnd) - self.out
        elif crb:
            sndcnt = min(delta, delivered)
        else:
            sndcnt = max(self.delivered - self.out, delivered)
            if una_advanced and not newly_lost:
                sndcnt += 1
            sndcnt = min(delta, sndcnt)
        sndcnt = max(sndcnt, 0 if self.out else 1)  # the fast retransmit goes out at once
        return pipe + sndcnt


__all__ = ["Prr"]
