"""Accurate ECN feedback in TCP (RFC 9768) as Linux 6.18 does it (``tcp_accecn_*``).

``net.ipv4.tcp_ecn`` (:attr:`TcpConfig.ecn <.config.TcpConfig.ecn>`) 3 requests AccECN on
outgoing connections, 4 requests classic ECN (RFC 3168, ecn.py) and 5 nothing; 3, 4 and 5 accept
AccECN on incoming ones (and classic ECN, as 1 and 2 do). A connection that negotiated AccECN
holds an :class:`AccEcn` in ``Tcb.ecn``: the classic hooks of ``tcb.py``/``output.py`` call its
``on_segment``/``on_emit``, and the sender's congestion response is classic ECN's
(:meth:`Ecn.cwr_ack <.ecn.Ecn.cwr_ack>`: once per window, PRR in Linux's CWR state) fed by the
newly CE-marked segments this module infers instead of by the ECE flag.

* **Negotiation** (§3.1): the SYN carries AE|CWR|ECE; a listener that accepts answers with the
  SYN's IP-ECN field encoded in the SYN-ACK's AE, CWR and ECE (table 2: Not-ECT 010, ECT(1) 011,
  ECT(0) 100, CE 110) and the AccECN option; the client's first ACK encodes the SYN-ACK's IP-ECN
  field the same way in its ACE field (table 4). A SYN-ACK with 000 or 111 (a broken reflector)
  leaves the connection without ECN, 001 or 101 with classic ECN; with ``tcp_ecn_fallback`` a
  retransmitted SYN asks for nothing (Linux tcp_ecn_clear_syn). Feedback that shows our Not-ECT
  SYN or SYN-ACK arriving as ECT/CE, or a zero ACE on the handshake's last ACK, means a path that
  mangles the field: AccECN feedback goes on, but we send Not-ECT (Linux ACE_FAIL_RECV).
* **Data Receiver** (§3.2.2): counts CE-marked segments (r.cep, from 5: ACE is r.cep mod 8 on
  every segment) and the payload bytes of each codepoint (r.e0b and r.e1b from 1, r.ceb from 0).
  No ECE latching, no CWR: every ACK carries the feedback. An ACK goes at once when the IP-ECN
  field of arriving data changes (change-triggered ACKs) and before 6 CE marks accumulate.
* **AccECN option** (§3.2.3): kind 174 (order 1: EE1B, ECEB, EE0B) with as many 24-bit counters
  as fit and are needed (Linux tcp_options_fit_accecn); only once the peer sent one (Linux
  saw_accecn_opt); ``tcp_ecn_option`` 2 on every segment, 1 for two segments after a change and
  ``tcp_ecn_option_beacon`` times per SRTT, 0 never. While it is in use 12 bytes of every
  segment are kept for it (the MSS is smaller, as Linux's tcp_current_mss).
* **Data Sender** (§3.2.2.5): an ACK that acknowledges new data (or SACKs) gives the newly
  CE-marked segments as the ACE field's increase mod 8; when the ACK covers 8 segments or more
  the increase may have wrapped, and the safe estimate (every ambiguous wrap counted, §3.2.2.5.2)
  is taken unless the option's CE byte counter shows fewer (Linux __tcp_accecn_process).
* **Sending** (§3.1.5, Linux tcp_ecn_send): after the handshake every segment leaves ECT(0):
  pure ACKs, retransmissions and window probes too; the SYN and SYN-ACK leave Not-ECT.
"""

from __future__ import annotations

from stacklab.wire.tcp import ACK, AE, CWR, ECE, SYN, AccEcnOpt

from .config import TS_OPT_LEN, TcpConfig, TcpStats
from .ecn import CE, ECN_ON, ECT0, ECT1, NOT_ECT, Ecn, TcbLike, _quickack
from .ecn import accept_syn as _classic_accept
from .ecn import on_synack as _classic_synack
from .ecn import syn_flags as _classic_syn_flags
from .segment import Segment, SegmentLike
from .seq import seq_gt, seq_sub

__all__ = ["ECN_ACCECN", "ECN_ACCECN_IN", "ECN_ACCECN_PASSIVE", "AccEcn", "accept_syn", "ace",
           "on_synack", "requested", "syn_flags"]

# net.ipv4.tcp_ecn: AccECN both ways; AccECN in, classic ECN out; AccECN in, nothing out
ECN_ACCECN, ECN_ACCECN_IN, ECN_ACCECN_PASSIVE = 3, 4, 5
ACE_MASK = AE | CWR | ECE
# §3.2.1: what the counters start at (so that a middlebox zeroing them shows)
CEP_INIT, E0B_INIT, E1B_INIT, CEB_INIT = 5, 1, 1, 0
ACE_MAX_DELTA = 6  # CE marks the receiver lets accumulate before an ACK (Linux)
OPT_RESERVE = 12  # the option with its 3 fields and a nop (Linux TCP_ACCECN_MAXSIZE, padded)
# §3.1.2 table 2 / §3.2.2.1 table 4: an IP-ECN field echoed in AE, CWR, ECE during the handshake
_HANDSHAKE_ACE = {NOT_ECT: 0b010, ECT1: 0b011, ECT0: 0b100, CE: 0b110}
# the reverse, what the ACE of a handshake reply says our packet arrived with (Linux
# tcp_accecn_extract_syn_ect: the unused values read as ECT(1), a legal transition)
_ACE_ECN = (ECT0, ECT1, NOT_ECT, ECT1, ECT0, ECT1, CE, ECT1)
# option fields needed to carry a changed counter, order 1 (EE1B, ECEB, EE0B)
_MINLEN = {ECT1: 1, CE: 2, ECT0: 3}


def ace(flags: int) -> int:
    """The ACE field (AE, CWR, ECE as a 3-bit number) of a segment's flags."""
    return (flags & ACE_MASK) >> 6


def _valid_transition(sent: int, rcvd: int) -> bool:
    """Could a network have turned IP-ECN ``sent`` into ``rcvd``? (RFC 3168 §5: only ECT to CE,
    or between the ECTs; Linux tcp_ect_transition_valid)."""
    return rcvd == sent or (sent != NOT_ECT and rcvd != NOT_ECT and sent != CE)


class AccEcn(Ecn):
    """The AccECN state of a connection (Linux ``TCP_ECN_MODE_ACCECN`` and its counters)."""

    __slots__ = ("pending", "r_cep", "r_bytes", "ce_pending", "prev_ecn", "s_cep", "s_bytes",
                 "echo_handshake", "third_ack", "ace_fail", "opt_seen", "opt_mode",
                 "opt_demand", "opt_time", "minlen", "beacon", "opt_reserve")
    accecn = True

    def __init__(self, config: TcpConfig, pending: bool = False) -> None:
        super().__init__()
        self.pending = pending  # our SYN asked, no answer yet (Linux TCP_ECN_MODE_PENDING)
        self.r_cep = CEP_INIT  # Data Receiver: CE-marked segments, from 5 (ACE = r.cep & 7)
        self.r_bytes = [0, E1B_INIT, E0B_INIT, CEB_INIT]  # payload bytes by IP-ECN codepoint
        self.ce_pending = 0  # CE marks since the last segment we sent
        self.prev_ecn = NOT_ECT  # the IP-ECN field of the last segment that arrived
        self.s_cep = 0  # Data Sender: CE marks the peer reported (Linux delivered_ce)
        self.s_bytes = [0, E1B_INIT, E0B_INIT, CEB_INIT]  # the peer's byte counters, last seen
        self.echo_handshake = False  # client: the next segment's ACE echoes the SYN-ACK's field
        self.third_ack = not pending  # listener: the handshake's last ACK is still to come
        self.ace_fail = False  # the path mangles IP-ECN: we send Not-ECT (ACE_FAIL_RECV)
        self.opt_seen = False  # the peer sent an AccECN option (Linux saw_accecn_opt)
        self.opt_mode = config.ecn_option
        self.beacon = config.ecn_option_beacon
        self.opt_demand = 0  # options still owed after a change (tcp_ecn_option 1)
        self.opt_time = float("-inf")  # when the last option went (never yet)
        self.minlen = 0  # option fields needed for the counters that changed
        self.opt_reserve = OPT_RESERVE if self.opt_mode else 0  # bytes kept out of the MSS

    def figures(self, stats: TcpStats) -> dict[str, object]:
        """The per-connection figures (JSON summaries): classic ECN's and the counters."""
        out = super().figures(stats)
        b, s = self.r_bytes, self.s_bytes
        out.update(mode="accecn", ce_delivered=self.s_cep, ace_fail=self.ace_fail,
                   option_seen=self.opt_seen,
                   bytes_in={"e0b": b[ECT0] - E0B_INIT, "e1b": b[ECT1] - E1B_INIT,
                             "ceb": b[CE] - CEB_INIT},
                   bytes_delivered={"e0b": s[ECT0] - E0B_INIT, "e1b": s[ECT1] - E1B_INIT,
                                    "ceb": s[CE] - CEB_INIT})
        return out

    # -- what arrives ----------------------------------------------------------------------------

    def on_segment(self, tcb: TcbLike, seg: SegmentLike, ip_ecn: int) -> None:
        """A segment arrived on a synchronized connection: the receiver's counters, then the
        sender's inference from the ACE field and the option."""
        flags = seg.flags
        self.ece = False
        if flags & SYN:
            return  # a retransmitted SYN or SYN-ACK: its flags are the handshake's
        n = len(seg.payload)
        if ip_ecn != NOT_ECT:  # §3.2.2.2 (Linux tcp_ecn_received_counters)
            self.seen = True
            if ip_ecn == CE:
                self.r_cep += 1
                self.ce_pending += 1
                tcb.stats.ecn_ce_in += 1
            if n:
                before = self.r_bytes[ip_ecn]
                self.r_bytes[ip_ecn] = before + n
                self.minlen = max(self.minlen, _MINLEN[ip_ecn])
                if (before ^ (before + n)) >> 22:
                    self.opt_demand = max(self.opt_demand, 1)  # once per 2^22 bytes (§3.2.3.3)
        edge = ip_ecn != self.prev_ecn
        if edge or ip_ecn == CE:
            self.prev_ecn = ip_ecn
            self.opt_demand = 2  # two options: the latter shows the new field unambiguously
            if edge and n:
                tcb._ack_now = True  # change-triggered ACK (§3.2.2.5.1)
        if n:
            if ip_ecn == NOT_ECT and self.seen:
                _quickack(tcb)  # Not-ECT after ECT: most likely a retransmission (Linux)
            elif self.ce_pending >= ACE_MAX_DELTA:
                tcb._ack_now = True  # before the ACE field could wrap (§3.2.2.5.2)
        if not flags & ACK:
            return
        opt = seg.accecn()
        if opt is not None and not self.opt_seen:
            self.opt_seen = True
        if self.third_ack:
            self._third_ack(tcb, seg)
            return
        una = tcb.snd_una
        newly = seq_sub(seg.ack, una)
        if 0 < newly <= seq_sub(tcb.snd_max, una):
            pkts = -(-newly // tcb.snd_mss)
        elif newly == 0 and seg.sack_blocks():
            pkts = 1  # a duplicate ACK that SACKs: one more segment delivered
        else:
            return  # an old or duplicate ACK says nothing new (Linux: no forward progress)
        d_ceb = self._option_deltas(opt)
        delta = (ace(flags) - CEP_INIT - self.s_cep) & 7
        if pkts > 7:  # the field may have wrapped: count every possible wrap (§3.2.2.5.2)
            safe = pkts - ((pkts - delta) & 7)
            if d_ceb is None or d_ceb > delta * tcb.snd_mss:
                delta = safe  # the option does not show fewer
            elif d_ceb and d_ceb >= (safe * tcb.snd_mss) >> 1:
                delta = safe
        if delta:
            self.s_cep += delta
            tcb.stats.accecn_ce_delivered += delta
            self.ece = True  # the congestion response (Ecn.cwr_ack), once per window

    def _option_deltas(self, opt: AccEcnOpt | None) -> int | None:
        """Take the peer's byte counters from an option: the CE bytes newly reported, None
        when there is no option or a counter went back (reordered ACKs: ambiguous)."""
        if opt is None:
            return None
        c = opt.counters()
        s = self.s_bytes
        ok = True
        d_ceb = 0
        for key, cp in (("e0b", ECT0), ("ceb", CE), ("e1b", ECT1)):
            v = c.get(key)
            if v is None:
                continue
            d = (v - s[cp]) & 0xFFFFFF
            if d & 0x800000:  # a decrease (24-bit sign extension, Linux tcp_update_ecn_bytes)
                d -= 0x1000000
                ok = False
            s[cp] += d
            if cp == CE:
                d_ceb = d
        return d_ceb if ok else None

    def _third_ack(self, tcb: TcbLike, seg: SegmentLike) -> None:
        """Listener: the ACK that ends the handshake echoes our SYN-ACK's IP-ECN field in its ACE
        (table 4, Linux tcp_accecn_third_ack): 0 means a path that zeroes the flags, and as our
        SYN-ACK left Not-ECT, an echo of ECT or CE one that mangles the field (a pure ACK's echo;
        0b001, 0b101, 0b111 are unused values)."""
        self.third_ack = False
        v = ace(seg.flags)
        if v == 0 or (v not in (1, 5, 7) and not seg.payload and tcb.config.ecn_fallback
                      and not _valid_transition(NOT_ECT, _ACE_ECN[v])):
            self.ace_fail = True

    # -- what leaves -----------------------------------------------------------------------------

    def on_emit(self, tcb: TcbLike, seg: Segment, now: float) -> None:
        """A segment other than a SYN is built: its ACE field, ECT(0), and the option."""
        if self.echo_handshake:  # the handshake's last ACK (table 4)
            self.echo_handshake = False
            v = _HANDSHAKE_ACE[self.syn_ect_rcv]
        else:
            v = self.r_cep & 7
        self.ce_pending = 0
        seg.flags = seg.flags & ~ACE_MASK | v << 6
        if not self.ace_fail:
            seg.ecn = ECT0
        if self.opt_seen and self.opt_mode:
            self._option(tcb, seg, now)

    def _option(self, tcb: TcbLike, seg: Segment, now: float) -> None:
        """The AccECN option if it is due and fits (Linux tcp_established_options)."""
        if self.opt_mode < 2 and not self.opt_demand:
            srtt = tcb.rtt.srtt
            if not self.beacon or srtt is None or (now - self.opt_time) * self.beacon < srtt:
                return
        room = 40 - (TS_OPT_LEN if seg._ts is not None else 0)
        if seg._sack:
            room -= 4 + 8 * len(seg._sack)
        k = 3
        while k >= self.minlen:
            if 2 + 3 * k + (-(2 + 3 * k) & 3) <= room:
                b = self.r_bytes
                seg._aco = AccEcnOpt(1, (b[ECT1], b[CE], b[ECT0])[:k])
                self.opt_time = now
                if self.opt_demand:
                    self.opt_demand -= 1
                return
            k -= 1

    def synack_option(self, tcb: TcbLike, seg: Segment) -> None:
        """Our SYN-ACK's option (Linux: the first SYN-ACK only, with the counters' initial
        values), so that the client starts sending its own."""
        if self.opt_mode and not seq_gt(tcb.snd_max, tcb.iss):
            room = 40 - len(seg.options_bytes())
            k = 3
            while k > 0 and 2 + 3 * k + (-(2 + 3 * k) & 3) > room:
                k -= 1
            b = self.r_bytes
            if room >= 4:
                seg._aco = AccEcnOpt(1, (b[ECT1], b[CE], b[ECT0])[:k])


# -- negotiation (§3.1) ---------------------------------------------------------------------------

def requested(config: TcpConfig) -> Ecn | None:
    """What an active open asks for: AccECN (mode 3), classic ECN (1 and 4), nothing."""
    mode = config.ecn
    if mode == ECN_ACCECN:
        return AccEcn(config, pending=True)
    if mode in (ECN_ON, ECN_ACCECN_IN):
        return Ecn()
    return None


def syn_flags(tcb: TcbLike, flags: int) -> int:
    """ECN flags for a SYN or SYN-ACK we send."""
    ecn = tcb.ecn
    if not isinstance(ecn, AccEcn):
        return _classic_syn_flags(tcb, flags)
    if flags & ACK:
        return _HANDSHAKE_ACE[ecn.syn_ect_rcv] << 6  # table 2: the SYN's IP-ECN field
    if seq_gt(tcb.snd_max, tcb.iss) and tcb.config.ecn_fallback:
        return 0  # a retransmitted SYN asks for nothing (Linux tcp_ecn_clear_syn)
    return AE | CWR | ECE


def accept_syn(config: TcpConfig, seg: SegmentLike, ip_ecn: int) -> Ecn | None:
    """A listener's SYN: AccECN when it asks (AE, CWR, ECE anything but 000 and 011, §3.1.2)
    and we accept it (modes 3 to 5), whatever its IP-ECN field (the SYN-ACK reports it); else
    classic ECN's rule (Linux tcp_ecn_create_request)."""
    if config.ecn >= ECN_ACCECN and ace(seg.flags) not in (0, 3):
        acc = AccEcn(config)
        acc.syn_ect_rcv = ip_ecn
        acc.prev_ecn = ip_ecn
        return acc
    return _classic_accept(config, seg, ip_ecn)


def on_synack(tcb: TcbLike, seg: SegmentLike) -> Ecn | None:
    """What our request became from the peer's SYN-ACK (table 2, Linux tcp_ecn_rcv_synack) or,
    in a simultaneous open, its SYN (classic ECN's rule)."""
    ecn = tcb.ecn
    if not isinstance(ecn, AccEcn) or not ecn.pending or not seg.flags & ACK:
        if isinstance(ecn, AccEcn):
            return Ecn() if seg.flags & (ECE | CWR) == ECE | CWR else None
        return _classic_synack(ecn, seg)
    v = ace(seg.flags)
    if v == 0 or v == 7:
        return None  # no ECN, or a peer that reflects the flags (broken)
    if v == 1 or v == 5:
        return Ecn()  # classic ECN
    ecn.pending = False
    ecn.echo_handshake = True
    ecn.opt_seen = seg.accecn() is not None
    ecn.opt_demand = 2  # the first two segments carry the option (Linux tcp_ecn_rcv_synack)
    if not _valid_transition(NOT_ECT, _ACE_ECN[v]) and tcb.config.ecn_fallback:
        ecn.ace_fail = True  # our Not-ECT SYN arrived as ECT or CE: the path mangles the field
    elif ecn.syn_ect_rcv == CE:
        ecn.r_cep += 1  # §3.2.2.1: a CE-marked SYN-ACK counts (its ACK echoes 110 = 6)
        ecn.ce_pending += 1
    ecn.prev_ecn = ecn.syn_ect_rcv
    return ecn
