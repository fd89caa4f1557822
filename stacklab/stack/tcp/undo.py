"""Undoing the congestion response to a spurious retransmission, as Linux (tcp_try_undo_*):
when a fast recovery or a timeout turns out not to have been needed, cwnd and ssthresh go back
to what they were before it (Linux tcp_undo_cwnd_reduction).

An episode (fast recovery or RTO) remembers cwnd and ssthresh at its start and counts the
retransmissions it makes. It was spurious when

* every retransmission came back as a D-SACK (RFC 2883 §5: the receiver had the original, so
  the data was delayed or reordered, not lost; Linux ``undo_retrans`` reaching 0), or
* the ACK that ends it echoes a timestamp older than the first retransmission (the Eifel
  detection, RFC 3522: it acknowledges an original transmission; Linux tcp_packet_delayed).

The TCB asks at the episode's end (a full ACK in recovery, the ACK that advances after a
timeout) and, for the D-SACK rule, on any later ACK until the next episode (Linux
tcp_try_undo_dsack in the Open state).
"""

from __future__ import annotations

from .seq import seq_lt


class Undo:
    __slots__ = ("active", "retrans", "sent", "prior_cwnd", "prior_ssthresh", "first_tsval",
                 "frto_high", "frto_new")

    def __init__(self) -> None:
        self.active = False  # Linux undo_marker set: an episode may still be undone
        self.retrans = 0  # retransmissions not (yet) shown needless by a D-SACK
        self.sent = 0  # retransmissions in the episode
        self.prior_cwnd = 0
        self.prior_ssthresh = 0
        self.first_tsval: int | None = None  # our TSval on the episode's first retransmission
        # F-RTO (RFC 5682 §3.1, SACK-enhanced as Linux): after a timeout, the end of what was
        # outstanding (a position; Linux high_seq); None: F-RTO not (or no longer) running
        self.frto_high: int | None = None
        # F-RTO step 2b (RFC 5682 §2.1): new data went out instead of the go-back-N from this
        # position (SND.MAX then; Linux moves high_seq there); what is below it and not resent
        # is out of the pipe, as Linux marks it lost at the timeout. None: not in step 2b
        self.frto_new: int | None = None

    def start(self, cwnd: int, ssthresh: int) -> None:
        """An episode begins (before the congestion controller reduces cwnd)."""
        self.active = True
        self.retrans = 0
        self.sent = 0
        self.prior_cwnd = cwnd
        self.prior_ssthresh = ssthresh
        self.first_tsval = None
        self.frto_high = None
        self.frto_new = None

    def on_retransmit(self, tsval: int | None) -> None:
        if self.active:
            if not self.sent:
                self.first_tsval = tsval  # the episode's first only (Eifel asks once)
            self.retrans += 1
            self.sent += 1

    def on_dsack(self, blocks: int) -> None:
        if self.active and self.sent:
            self.retrans = max(0, self.retrans - blocks)

    def dsack_says_spurious(self) -> bool:
        return self.active and self.sent > 0 and self.retrans == 0

    def spurious(self, tsecr: int | None) -> bool:
        """The episode was not needed: all its retransmissions D-SACKed, or ``tsecr`` (the
        ACK's echo) older than its first retransmission (Eifel, RFC 3522 §3.2)."""
        if self.dsack_says_spurious():
            return True
        first = self.first_tsval
        return self.active and first is not None and bool(tsecr) and seq_lt(tsecr or 0, first)

    def undo(self, cwnd: int, ssthresh: int) -> tuple[int, int]:
        """The cwnd and ssthresh to go back to (never lower than now)."""
        self.active = False
        self.frto_high = self.frto_new = None
        return max(cwnd, self.prior_cwnd), max(ssthresh, self.prior_ssthresh)


__all__ = ["Undo"]
