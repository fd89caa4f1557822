"""What a TCB sends: the segmentizer (``output``), the window field, the SACK blocks of our ACKs
and the bytes of each segment.

``output(tcb, now)`` sends what the state, the peer's window, cwnd, Nagle and a pending ACK allow
(RFC 9293 §3.7.4, §3.8.6, RFC 5681/6675 for what loss recovery resends). Every segment is built
by ``emit``, which fills in the ACK, the window, timestamps and SACK blocks and accounts for it;
``segment_bytes`` turns it into wire bytes for the layer. :class:`TcbOutput` is the sending half
of the TCB (:class:`~.tcb.Tcb` derives from it); it also resends what loss recovery and path MTU
probing ask for.
"""

from __future__ import annotations

from bisect import bisect_right

from stacklab.wire.tcp import build_tcp

from . import accecn as _accecn
from . import chrono
from .config import DUPACK_THRESHOLD, TS_OPT_LEN
from .fsm import (
    CLOSE_WAIT,
    CLOSED,
    ESTABLISHED,
    FIN_WAIT_2,
    LISTEN,
    SYN_RECEIVED,
    SYN_SENT,
    TIME_WAIT,
)
from .gso import PacedBurst, as_segments, send_packets
from .plpmtud import PlpmtudState
from .rack import schedule_tlp
from .rate import DeliveryRate
from .segment import ACK, FIN, PSH, RST, SYN, URG, Segment
from .sent import Sent
from .seq import HALF, MASK, MOD, seq_add, seq_gt, seq_le, seq_lt, seq_sub
from .sndbuf import ends_skb, on_sent
from .tcbvars import TcbVars
from .timers import DELACK_TIMER, PACING_TIMER, PERSIST_TIMER, RTO_TIMER
from .tso import packet_ends, packet_ends_run
from .tso_defer import should_defer
from .urgent import urgent_field

_PLPMTUD_DISABLED = PlpmtudState.DISABLED


def segment_bytes(psum: int, sp: int, dp: int, seg: Segment) -> bytearray:
    """The wire bytes of one of the TCB's segments: :func:`~stacklab.wire.tcp.build_tcp` with
    the connection's pseudo-header sum (``psum``, computed once per connection), and the
    timestamps-only layout (every data segment and ACK once timestamps are negotiated) packed
    with the header in one call."""
    ts = seg._ts
    if ts is not None and seg.plain:  # (Segment.plain: no option but timestamps)
        return build_tcp(b"", b"", sp, dp, seg.seq, seg.ack, seg.flags, seg.window, seg.payload,
                         b"", seg.urgent, psum=psum, timestamps=ts)
    return build_tcp(b"", b"", sp, dp, seg.seq, seg.ack, seg.flags, seg.window, seg.payload,
                     seg.options_bytes(), seg.urgent, psum=psum)


class TcbOutput(TcbVars):
    """The sending side of a TCB."""

    # False: every segment takes the general paths (the differential tests compare both)
    fast_path = True
    gso_max = 0  # TSO: bytes of segments the path's device cuts itself (set by the layer; gso.py)

    # -- receiver side SACK (RFC 2018 §4, RFC 2883) ---------------------------------------------

    def _sack_option(self, plen: int) -> tuple[tuple[int, int], ...]:
        """SACK blocks for an outgoing ACK: a D-SACK first if one is pending, then the block
        holding the most recently received segment, then the other recent ones; at most 3 with
        timestamps (4 without), fewer when a data segment leaves less room."""
        rb = self.recvbuf
        if not self.sack_ok or (self._dsack is None and not rb.ooo_bytes):
            return ()
        room = 3 if self.ts_ok else 4
        if plen:
            room = min(room, max(0, (self.snd_mss - plen - 4) // 8))
        if room <= 0:
            return ()
        out: list[tuple[int, int]] = []
        if self._dsack is not None:
            out.append(self._dsack)
            self._dsack = None
        if rb.ooo_bytes:
            ranges = rb.ooo_ranges()
            order: list[tuple[int, int]] = []
            recent = [o for o in self._sack_recent if o >= rb.nxt]
            self._sack_recent = recent[-8:]
            for o in reversed(recent):
                for r in ranges:
                    if r[0] <= o < r[1]:
                        if r not in order:
                            order.append(r)
                        break
            order += [r for r in ranges if r not in order]
            base, nxt = rb.nxt, self.rcv_nxt
            out += [(seq_add(nxt, a - base), seq_add(nxt, b - base)) for a, b in order]
        return tuple(out[:room])

    # -- the receive window (RFC 9293 §3.8.6.2.2) -------------------------------------------------

    def receive_window(self) -> int:
        """The window to offer in the next segment (RFC 9293 §3.8.6.2.2): the free buffer space
        (at most ``rcv_ssthresh``, what the scale can express) when that moves the right edge by
        at least min(buffer/2, MSS), receiver-side SWS avoidance; else the window open now (the
        edge never moves left). Runs for every segment sent: written with the loop-invariant
        locals; the same rule with the general helpers is ``tests/stack/tcp/reference.py``,
        compared there."""
        cur = (self.rcv_adv - self.rcv_nxt) & MASK  # seq_sub(RCV.ADV, RCV.NXT), at least 0
        if cur > HALF:
            cur = 0
        shift = self.rcv_wscale
        rb = self.recvbuf
        cap = rb.capacity
        free = cap - len(rb.ready)
        if free > self.rcv_ssthresh:
            free = self.rcv_ssthresh  # Linux offers at most rcv_ssthresh (tcp_grow_window)
        lim = 0xFFFF << shift
        offer = (free if free < lim else lim) >> shift << shift
        if offer > cur:
            m = cap // 2
            if self.adv_mss < m:
                m = self.adv_mss
            if offer - cur >= m:
                return offer
        return cur

    # -- output -----------------------------------------------------------------------------------

    def _ts_clock(self, now: float) -> int:
        return (int(now * 1000) + self.ts_offset) & MASK

    def _emit(self, seq: int, flags: int, payload: bytes, now: float) -> None:
        """Build one segment carrying ACK/window/timestamps; account for it."""
        if flags & SYN:
            self._emit_syn(seq, flags, payload, now)
            return
        rcv_nxt = self.rcv_nxt
        shift = self.rcv_wscale
        window = (self.receive_window() + (1 << shift) - 1) >> shift  # round up: never shrink
        if window > 0xFFFF:
            window = 0xFFFF
        self.rcv_adv = (rcv_nxt + (window << shift)) & MASK
        rb = self.recvbuf
        stats = self.stats
        if flags & ACK:
            ts = ((int(now * 1000) + self.ts_offset) & MASK, self.ts_recent) \
                if self.ts_ok else None
            if self.sack_ok and (self._dsack is not None or rb.ooo_bytes):
                sack = self._sack_option(len(payload))
                if sack:
                    stats.sack_blocks_out += 1
            else:
                sack = ()
            seg = Segment(seq, rcv_nxt, flags, window, payload, ts, sack)  # (by position)
            self.last_ack_sent = rcv_nxt
            self._ack_now = False
            if self.deadlines[DELACK_TIMER] is not None:
                self._arm(DELACK_TIMER, None)
            self._ack_pushed = False
            if self._unacked_bytes:
                self._unacked_bytes = 0
                if self.quick_acks:
                    self.quick_acks -= 1  # an ACK of new data spends one (tcp_dec_quickack_mode)
            if payload:
                last = self.lrcvtime
                if last is not None and now - last < self.ato:
                    # an answer within the ACK timeout of the data: interactive (Linux
                    # tcp_event_data_sent, pingpong threshold 1), ACKs are delayed from now on
                    self.pingpong = True
        else:
            ts = ((int(now * 1000) + self.ts_offset) & MASK, 0) if self.ts_ok else None
            seg = Segment(seq, 0, flags, window, payload, ts)
        if self.snd_up is not None and (up := urgent_field(self, seq)):
            seg.flags |= URG  # urgent mode (urgent.py)
            seg.urgent = up
        if self.ecn is not None:  # ECE, CWR and ECT(0) (ecn.py)
            self.ecn.on_emit(self, seg, now)
        stats.segs_out += 1
        n = len(payload)
        if n:
            self.lsndtime = now
            stats.bytes_sent += n
            if self.unacked_since is None:
                self._set_unacked_since(now)
        elif flags & FIN and self.unacked_since is None:
            self._set_unacked_since(now)
        if n or flags & FIN:  # the transmission record (sent.py); PRR counts what recovery
            # sends
            # _abs(seq) and seq_lt(seq, SND.MAX) written out (once per data segment)
            d = (seq - self.snd_data_una) & MASK
            pos = self.sendbuf.base + (d - MOD if d > HALF else d)
            smax = self.snd_max
            retrans = seq != smax and ((smax - seq) & MASK) < HALF
            rec, unsacked = self.sent.on_sent(pos, pos + n + (1 if flags & FIN else 0), n, now,
                                              retrans, bool(flags & FIN), bool(flags & PSH))
            if unsacked:
                self.rack.on_sent(unsacked)
            if n and self.rate is not None:  # the delivery-rate stamps (rate.py)
                self.rate.on_send(rec, now, self.snd_una == self.snd_max)
            if n and self.tstamp is not None:  # SO_TIMESTAMPING: SCHED/SND reports (tstamp.py)
                self.tstamp.sent(pos, pos + n, now)
            if self.recover is not None or self.ecn is not None and self.ecn.cwr_high is not None:
                self.prr.out += 1  # in a cwnd reduction (Linux tcp_in_cwnd_reduction)
            if retrans and self.undo.active:
                self.undo.on_retransmit(ts[0] if ts is not None else None)
        if n and self.trace is not None:  # the time-sequence graph's segments
            self.trace(now, "send", {"seq": seq_sub(seq, self.iss), "len": n})
        self._out.append(seg)

    def _emit_syn(self, seq: int, flags: int, payload: bytes, now: float) -> None:
        tfo = self.tfo
        window = min(self.recvbuf.free, 0xFFFF)
        if seq_gt(seq_add(self.rcv_nxt, window), self.rcv_adv) or not flags & ACK:
            self.rcv_adv = seq_add(self.rcv_nxt, window)
        ack = self.rcv_nxt if flags & ACK else 0
        ts = None
        if self.ts_ok or (not flags & ACK and self.config.timestamps):
            ts = (self._ts_clock(now), self.ts_recent if flags & ACK else 0)
        active = not flags & ACK
        flags |= _accecn.syn_flags(self, flags)  # ECN setup (ecn.py, accecn.py)
        seg = Segment(seq, ack, flags, window, payload, mss=self.adv_mss,
                      wscale=(self.rcv_wscale if (active and self.config.window_scaling)
                              or self.wscale_ok else None),
                      sack_perm=(self.config.sack if active else self.sack_ok), ts=ts,
                      fastopen=tfo.take_option() if tfo is not None else None)  # RFC 7413
        if flags & ACK and isinstance(self.ecn, _accecn.AccEcn):
            self.ecn.synack_option(self, seg)  # RFC 9768 §3.2.3 (accecn.py)
        if flags & ACK:
            self.last_ack_sent = self.rcv_nxt
            self._ack_now = False
            if self.deadlines[DELACK_TIMER] is not None:
                self._arm(DELACK_TIMER, None)
            self._unacked_bytes = 0
        self.stats.segs_out += 1
        self.stats.bytes_sent += len(payload)
        if self.unacked_since is None:
            self._set_unacked_since(now)
        if payload:  # Fast Open data: its record, with PSH as Linux's syn_data skb (sent.py)
            pos = self._abs(seq_add(seq, 1))
            self.sent.on_sent(pos, pos + len(payload), len(payload), now, False, False, True)
        self._out.append(seg)

    def _ack_seq(self) -> int:
        """The sequence number of a segment without data: SND.MAX (BSD: acceptable even after
        SND.NXT went back for a retransmission), but never beyond the peer's window (Linux's
        ``tcp_acceptable_seq``: after a zero-window probe the window edge is SND.UNA)."""
        seq = self.snd_max
        edge = (self.snd_una + self.snd_wnd) & MASK  # seq_add, seq_gt written out (every ACK)
        if seq != edge and ((seq - edge) & MASK) < HALF and self.state not in (SYN_SENT,
                                                                                SYN_RECEIVED):
            # the right edge itself fails the RFC 9293 acceptance test for an empty segment
            seq = seq_add(edge, -1) if self.snd_wnd else self.snd_una
        return seq

    def _emit_rst(self, seq: int, ack: int | None) -> None:
        flags = RST | (ACK if ack is not None else 0)
        self.stats.segs_out += 1
        self._out.append(Segment(seq & MASK, (ack or 0) & MASK, flags, 0))

    def output(self, now: float) -> None:
        """Send whatever the state, the windows, Nagle and pending ACKs allow."""
        st = self.state
        if st is CLOSED or st is LISTEN:
            return
        sent_ack = False
        # SYN (first transmission or retransmission after SND.NXT went back to ISS)
        if self.snd_nxt == self.iss and self.snd_una == self.iss:
            if st is SYN_SENT:
                flags = SYN
            else:
                flags = SYN | ACK
            retrans = seq_gt(self.snd_max, self.iss)
            if retrans:
                self.stats.retransmits += 1
                if self.trace is not None:
                    self.trace(now, "retransmit", {"seq": self.iss, "len": 0, "why": "SYN"})
            elif self._rtt_seq is None:
                self._rtt_seq = seq_add(self.iss, 1)
                self._rtt_time = now
            tfo = self.tfo  # TCP Fast Open: the first SYN waits for data, carries some (tfo.py)
            if tfo is not None and tfo.deferred and not self.sendbuf.data:
                return
            data = tfo.syn_payload(self) if tfo is not None and not retrans else b""
            self._emit(self.iss, flags, data, now)
            self.snd_nxt = seq_add(self.iss, 1 + len(data))
            if seq_gt(self.snd_nxt, self.snd_max):
                self.snd_max = self.snd_nxt
            if self.deadlines[RTO_TIMER] is None:
                self._arm(RTO_TIMER, now + self.rtt.rto)
            return
        if st is SYN_SENT or st is TIME_WAIT or (((self.iss - self.snd_una) & MASK) < HALF and not (
                self.tfo is not None and self.tfo.child)):  # a TFO child sends before the ACK
            # (seq_le(SND.UNA, ISS) written out: output runs after every segment)
            if self._ack_now and st is not SYN_SENT:
                self._emit(self._ack_seq(), ACK, b"", now)
            return

        # what is queued, sent or not: sending moves neither SND.UNA nor the buffer (read once)
        queued = len(self.sendbuf.data)
        xb = self.xmit_blocked  # the device queue refuses packets: no data goes (local_drop.py)
        if st is not FIN_WAIT_2 and (xb is None or not xb(self.remote_ip)):
            nxt = self.snd_nxt
            d = (nxt - self.snd_data_una) & MASK  # what was sent: seq_sub(SND.NXT, data UNA)
            sent = d - MOD if d > HALF else d
            if self.recover is None and nxt == self.snd_max \
                    and self.plpmtud.state is _PLPMTUD_DISABLED \
                    and queued <= sent \
                    and (self.fin_seq is None or nxt != self.fin_seq):
                self._sws_override = False  # nothing new to send: _output_data would do only this
            else:
                burst, top = len(self._out), self.snd_max
                if self.snd_una == top and self.lsndtime is not None and self.snd_wnd:
                    # new data after an idle period (RFC 5681 §4.1, Linux CA_EVENT_TX_START);
                    # not while a zero window holds it back (nothing is sent: still idle)
                    self.cc.on_idle(now - self.lsndtime, self.rtt.rto,
                                    self.config.slow_start_after_idle)
                    self.lsndtime = now
                fast = self._send_predicted(now) if self.fast_path else None
                sent_ack = self._output_data(now) if fast is None else fast
                run = self._sent_run  # (set only by _send_predicted: fast is not None)
                if run is not None:
                    self._sent_run = None
                if sent_ack and seq_sub(self.snd_max, top) > self.snd_mss and not self._more:
                    if run is not None:
                        self._push_run(burst, run)
                    else:
                        self._push(burst, top)
                self._more = self._nagle_push = False  # MSG_MORE: for this send's push only
                self._cwnd_validate()
                chrono.after_output(self, sent_ack, now)  # tcpi_*_limited (chrono.py)
                if self.snd_max != top:
                    schedule_tlp(self, now, False)  # new data out: the probe timeout restarts
                    on_sent(self)  # the skb the burst ended in is split there (sndbuf.py)
        if not sent_ack:
            if not self._ack_now and self.window_update_due():
                self._ack_now = True
                self.stats.window_updates += 1
            if self._ack_now:
                self._emit(self._ack_seq(), ACK, b"", now)
        # timers: retransmission while something is in flight and the window is open; the
        # persist timer when the peer's window is zero and we have something to send
        rto, persist = self.deadlines[RTO_TIMER], self.deadlines[PERSIST_TIMER]
        if self.snd_wnd == 0 and queued > 0:
            if rto is not None:
                self._arm(RTO_TIMER, None)  # zero window: probe instead of timing out
            if persist is None:
                self._arm_persist(now)
        elif self.snd_una != self.snd_max:
            if persist is not None:
                self._arm(PERSIST_TIMER, None)
            if rto is None:
                self._arm(RTO_TIMER, now + self.rtt.rto)
        elif queued > seq_sub(self.snd_nxt, self.snd_data_una):  # unsent data
            if rto is not None:
                self._arm(RTO_TIMER, None)
            if persist is None:
                self._arm_persist(now)  # SWS override timer: small window, nothing in flight
        else:
            if rto is not None:
                self._arm(RTO_TIMER, None)
            if persist is not None:
                self._arm(PERSIST_TIMER, None)

    def _tso_defer(self, nxt: int, cong_win: int, now: float,
                   skb: tuple[int, int, int] | None = None) -> tuple[bool, int]:
        """Whether the unsent rest of the skb at SND.NXT waits for the next ACK (tso_defer.py),
        and where that skb ends; a wait that cwnd causes counts as cwnd-limited
        (``_cwnd_validate``). ``skb``: (the stream position of SND.NXT, where its skb ends, the
        buffer's end) when the caller has just found them (the send fast path)."""
        if skb is None:
            sb = self.sendbuf
            d = (nxt - self.snd_data_una) & MASK  # _abs(nxt) and _skb_end(pos) written out
            pos = sb.base + (d - MOD if d > HALF else d)
            tail = sb.base + len(sb.data)  # SendBuffer.end
            ends = self.skb_ends
            i = bisect_right(ends, pos)
            end = ends[i] if i < len(ends) else tail
        else:
            pos, end, tail = skb
        fin = self.fin_seq
        if end - pos <= self.snd_mss or (fin is not None and self._abs(fin) <= end):
            return False, end  # one segment (Nagle's case), or the FIN's skb: no deferral
        records = self.sent.records
        head = records[0].xmit if records else None
        cc = self.cc
        wnd = self.snd_wnd
        # seq_sub(SND.NXT, SND.UNA); flight_una() is SND.UNA but in a TCP Fast Open child
        d = (nxt - (self.snd_una if self.tfo is None else self.flight_una())) & MASK
        defer, cwnd_limited = should_defer(  # (positionally: skb_len, is_tail, cong_win,
            # send_win, snd_wnd, cwnd, ssthresh, mss, srtt, min_tso_segs, idle, head_age)
            end - pos, end >= tail, cong_win, wnd - (d - MOD if d > HALF else d), wnd,
            cc.cwnd, cc.ssthresh, self.snd_mss, self.rtt.srtt, self.config.min_tso_segs,
            now - self.lsndtime if self.lsndtime is not None else 0.0,
            None if head is None else now - head)
        self.tso_deferred_cwnd_limited |= cwnd_limited
        return defer, end

    def _cwnd_validate(self) -> None:
        """After sending: was cwnd what stopped us (Linux tcp_cwnd_validate, RFC 7661)? The
        verdict and the largest flight hold for one window of data."""
        una = self.snd_una
        d = (self.snd_nxt - una) & MASK  # seq_sub(SND.NXT, SND.UNA), once per output
        flight = d - MOD if d > HALF else d
        cwnd = self.cc.cwnd
        if self.recover is not None:  # cwnd_effective
            cwnd = max(self.snd_mss, cwnd + self.rec.inflation)
        limited = flight + self.snd_mss > cwnd or self.tso_deferred_cwnd_limited
        self.tso_deferred_cwnd_limited = False
        use = self.cwnd_usage_seq  # (not seq_lt(SND.UNA, usage_seq) written out)
        if limited or una == use or ((use - una) & MASK) >= HALF or (
                not self.is_cwnd_limited and flight > self.max_flight):
            self.is_cwnd_limited = limited
            self.max_flight = flight
            self.cwnd_usage_seq = self.snd_nxt

    def cwnd_limited(self) -> bool:
        """Whether an ACK may grow cwnd (Linux tcp_is_cwnd_limited): cwnd limited the sender,
        or in slow start cwnd is below twice the largest recent flight."""
        if self.is_cwnd_limited:
            return True
        cc = self.cc
        return cc.cwnd < cc.ssthresh and cc.cwnd < 2 * self.max_flight

    def _push(self, burst: int, top: int) -> None:
        """PSH where Linux's TSO packets end in a burst of new data longer than one segment
        (``_out[burst:]``, new from ``top``, the SND.MAX before it): the last segment of each
        packet of two or more segments as ``tso.packet_ends`` cuts them, besides the ends of
        writes (RFC 9293 §3.9.1 leaves the choice to the sender); a packet never spans two
        skbs (sndbuf.py)."""
        # not seq_lt(seg.seq, top), written out (once per segment of the burst)
        segs = [seg for seg in self._out[burst:]
                if seg.payload and (seg.seq == top or ((top - seg.seq) & MASK) >= HALF)]
        if segs and segs[0].seq == self.plpmtud.probe_seq:
            segs.pop(0)  # a PLPMTUD probe leaves on its own before the burst (tcp_mtu_probe)
        if self.gso_max:
            segs = as_segments(segs, self.snd_mss)  # a TSO packet counts as its segments (gso.py)
        lengths = [len(seg.payload) for seg in segs]
        cc = self.cc
        # what was in flight when the new data went out, as cwnd counts it (Linux
        # tcp_packets_in_flight: in recovery the pipe, resends of this burst and a probe included)
        flight = self._in_flight() - sum(lengths)
        # each segment's end as a stream position (_abs written out); a stand-in for a TSO
        # packet's inner segment has no payload and ends nothing (-1)
        base, data_una = self.sendbuf.base, self.snd_data_una
        ends = [base + (d - MOD if (d := (seg.seq - data_una) & MASK) > HALF else d) + n
                if n else -1 for seg, n in zip(segs, lengths, strict=True)]
        for k in packet_ends(lengths, [bool(seg.flags & PSH) or at_end for seg, at_end in zip(
                                           segs, ends_skb(self, ends), strict=True)],
                             flight, cc.cwnd, cc.ssthresh, self.snd_mss,
                             self.rtt.srtt, self.config.min_tso_segs):
            segs[k].flags |= PSH

    def _push_run(self, burst: int, run: tuple[int, int, list[int]]) -> None:
        """``_push`` (its specification) for a burst that is one uniform run ``_send_predicted``
        sent: ``_out[burst:]`` is ``n`` full-sized segments of new data from the stream position
        ``start`` on, with no device segmentation or PLPMTUD probe, ``pushed`` the indexes of
        those that carry PSH for a write's end. A segment ends an skb where an skb end is a
        multiple of the MSS past ``start``: found from the skb ends in the run, not per
        segment."""
        n, start, pushed = run
        mss = self.snd_mss
        top = start + n * mss
        ends = self.skb_ends
        base = self.sendbuf.base
        if ends and ends[0] <= base:  # (sndbuf._prune, inline)
            del ends[:bisect_right(ends, base)]
        i = bisect_right(ends, start)
        if i < len(ends) and ends[i] <= top:
            cut = set(pushed)
            while i < len(ends) and ends[i] <= top:
                k, r = divmod(ends[i] - start, mss)
                if not r:
                    cut.add(k - 1)
                i += 1
            pushed = sorted(cut)
        cc = self.cc
        out = self._out
        for k in packet_ends_run(n, pushed, self._in_flight() - n * mss, cc.cwnd, cc.ssthresh,
                                 mss, self.rtt.srtt, self.config.min_tso_segs):
            out[burst + k].flags |= PSH

    def window_update_due(self) -> bool:
        """After the application read: advertise the larger window when it opens from below one
        MSS or at least doubles (a window update, RFC 9293 §3.8.6.2.2). ``output()`` asks when it
        has nothing else to send.

        ``receive_window`` offers at most rcv_ssthresh and the free space (or the window open
        now): from one MSS open, a window more than half of either cannot double, and the rule
        need not run. That is the common answer (a bulk receiver asks after every read, its
        window nearly all open; a bulk sender after every ACK); the test against
        ``reference.window_update_due`` covers both sides of the bound."""
        cur = (self.rcv_adv - self.rcv_nxt) & MASK
        if cur > HALF:
            cur = 0
        if cur >= self.adv_mss:
            twice = 2 * cur
            if twice > self.rcv_ssthresh:
                return False
            rb = self.recvbuf
            if twice > rb.capacity - len(rb.ready):
                return False
        offer = self.receive_window()
        return offer > cur and (cur < self.adv_mss or offer >= 2 * cur)

    def _send_predicted(self, now: float) -> bool | None:
        """The send side's header prediction, in the Open state (no loss recovery, SACK
        scoreboard, F-RTO, PLPMTUD search, pacing, MSG_EOR record, persist-timer push or
        resend after a path MTU decrease; SND.NXT = SND.MAX): new data in full-sized segments
        while the peer's window and cwnd leave room for them, in one loop that judges the TSO
        deferral of each skb as ``_output_data`` (the general segmentizer, its specification)
        would: an skb that fits the room whole goes without, except the last one (a write may
        still fill it); from the first one the room cuts, each skb is judged. Where the general
        path would stop (a deferral, no room for a segment, sender SWS avoidance, nothing left)
        it stops; where it has more to judge (a short segment: Nagle, the SWS override; the
        FIN) it hands over to ``_output_data``. Returns whether a segment went out, None when
        not applicable (``output`` runs the general path)."""
        rec = self.rec
        if self.recover is not None or self.dupacks or self.pacer is not None \
                or self.plpmtud.state is not _PLPMTUD_DISABLED or self.snd_nxt != self.snd_max \
                or self._wakeup_push \
                or self.sendbuf.eors or self.undo.frto_new is not None \
                or rec.in_recovery or rec.sacked.starts:
            return None
        mss = self.snd_mss
        sendbuf = self.sendbuf
        data = sendbuf.data
        total = len(data)
        una = self.snd_una if self.tfo is None else self.flight_una()  # (the call: TFO only)
        data_una = self.snd_data_una
        wnd = self.snd_wnd
        cwnd = self.cc.cwnd
        fin_seq = self.fin_seq
        sent = self.gso_max > 0 and send_packets(self, self._emit, self.gso_max, now,
                                                 self._tso_defer)  # gso.py
        nxt = self.snd_nxt
        base = sendbuf.base
        end = base + total
        whole = -1  # the end of the skb at SND.NXT once looked at
        decided = -1  # from the first skb the room cuts: each skb is judged, up to here
        marks = sendbuf.marks
        skb_ends = self.skb_ends
        mark = -1  # the first push mark after SND.NXT (SendBuffer.pushed, once per mark)
        emit = self._emit
        next_seg: Segment | None = None  # the burst's first segment, once _emit built it
        start = base + ((nxt - data_una) & MASK)  # the run: its first position, its length,
        count = 0  # the indexes in it of the segments with PSH (_push_run)
        psh: list[int] = []
        stamps: Sent | None = None  # the first's record, when rate.py stamps records
        while True:
            off = (nxt - data_una) & MASK  # seq_sub(SND.NXT, data SND.UNA) >= 0 here
            avail = total - off
            flight = (nxt - una) & MASK
            usable = wnd - flight
            if cwnd - flight < usable:
                usable = cwnd - flight
            if avail < mss or usable < mss or (fin_seq is not None and avail == mss):
                # what the general path does with less than a full segment, or the FIN
                if avail <= 0 and (fin_seq is None or nxt != fin_seq):
                    break  # nothing new to send
                if avail > 0 and (usable <= 0 or (
                        usable < mss and usable < avail and not self._sws_override
                        and (usable < self.max_sndwnd // 2 or not self.max_sndwnd))):
                    break  # no room, or window-limited: SWS avoidance (RFC 9293 §3.8.6.2.1)
                if next_seg is not None and count > 1:
                    self._record_run(start + mss, count - 1, now, psh, stamps)
                if sent and self.deadlines[RTO_TIMER] is None:
                    self._arm(RTO_TIMER, now + self.rtt.rto)
                self._sent_run = None  # (the general path sends more: no run)
                return self._output_data(now) or sent
            pos = base + off
            if decided >= 0:
                if pos >= decided:
                    defer, decided = self._tso_defer(nxt, cwnd - flight, now)
                    if defer:
                        break
            elif pos >= whole:
                i = bisect_right(skb_ends, pos)  # where the skb at pos ends (sndbuf.py)
                whole = skb_ends[i] if i < len(skb_ends) else end
                if whole - pos > usable:  # the room cuts this skb: judged from here on
                    defer, decided = self._tso_defer(nxt, cwnd - flight, now, (pos, whole, end))
                    if defer:
                        break
                elif whole >= end and self._tso_defer(nxt, cwnd - flight, now,
                                                      (pos, whole, end))[0]:
                    break  # the last skb, whole: it may wait too (as Linux)
            if pos >= mark:
                i = bisect_right(marks, pos)
                mark = marks[i] if i < len(marks) else 1 << 62
            if mark <= pos + mss:
                flags = ACK | PSH
                psh.append(count)
            else:
                flags = ACK
            count += 1
            if next_seg is None:
                emit(nxt, flags, bytes(data[off:off + mss]), now)
                if self.snd_up is None and self.ecn is None and self.tstamp is None \
                        and self.trace is None and not (self.sack_ok and self.recvbuf.ooo_bytes):
                    # the rest of the burst: as this one. What _emit would do again comes out
                    # the same (the window field, RCV.ADV and the timestamps: RCV.NXT, the
                    # receive buffer and the clock have not moved; the ACK it carries is no
                    # longer due; SND.UNA != SND.MAX now, so no new rate interval starts:
                    # rate.py stamps its record as the first's), so only the segment and its
                    # accounting (sent.py) remain
                    next_seg = self._out[-1]
                    out = self._out
                    ack, window, ts = next_seg.ack, next_seg.window, next_seg._ts
                    if self.rate is not None:  # its record's delivery-rate stamps (rate.py)
                        stamps = self.sent.records[-1]
            else:  # (_emit for the next full-sized segment of new data, written out; its
                # record and counts with the rest of the run's: _record_run)
                out.append(Segment(nxt, ack, flags, window, bytes(data[off:off + mss]), ts))
            nxt = self.snd_nxt = self.snd_max = (nxt + mss) & MASK
            sent = True
        if next_seg is not None and count > 1:
            self._record_run(start + mss, count - 1, now, psh, stamps)
        if sent and self.deadlines[RTO_TIMER] is None:
            self._arm(RTO_TIMER, now + self.rtt.rto)
        # the burst as one run for _push_run: all of it from this loop, no device segmentation
        self._sent_run = (count, start, psh) if count > 1 and not self.gso_max \
            and self.plpmtud.probe_seq is None else None
        # what the general path does when it stops (SND.NXT = SND.MAX here)
        self.pmtu_keep = None
        self._sws_override = False
        return sent

    def _record_run(self, start: int, count: int, now: float, psh: list[int],
                    stamps: Sent | None) -> None:
        """What ``_emit`` records and counts for each of the ``count`` full-sized segments of
        new data ``_send_predicted`` sent after the first of its run, from stream position
        ``start`` (``psh``: the run's indexes with PSH, the first's 0; ``stamps``: the first
        one's record, whose delivery-rate stamps they share), in one go: nothing reads them
        while the run is sent (the TSO deferral reads the oldest record, the run's first at
        the latest)."""
        mss = self.snd_mss
        stats = self.stats
        stats.segs_out += count
        stats.bytes_sent += count * mss
        unsacked = self.sent.on_sent_run(start, count, mss, now, [k - 1 for k in psh if k],
                                         stamps)
        if unsacked:
            self.rack.on_sent(unsacked)

    def _output_data(self, now: float) -> bool:
        """Segmentise queued data (and our FIN); returns True if an ACK went out."""
        sent_ack = False
        mss = self.snd_mss
        probe = self._plpmtud_want_probe(now) if self.plpmtud.engaged else 0
        sendbuf = self.sendbuf
        total = len(sendbuf.data)
        fin_seq = self.fin_seq
        rec = self.rec
        recover = self.recover
        sack_recovery = recover is not None and rec.sack_mode
        if sack_recovery and self._sack_retransmit(now, rescue=False):
            sent_ack = True  # RFC 6675 NextSeg rule (1): lost holes first
        # constant while this loop runs: SND.UNA, the buffer's base, the windows
        snd_una = self.snd_una
        data_una = self.snd_data_una
        flight_una = self.flight_una()
        sack_ok = self.sack_ok
        sacked = rec.sacked
        cwnd0 = self.cwnd_effective
        dupacks = self.dupacks
        limited = recover is None and not sack_ok and 0 < dupacks < DUPACK_THRESHOLD
        pacer = self.pacer
        # TSO deferral (tso_defer.py) in the Open state only: not in recovery (as Linux), nor
        # while duplicate ACKs or SACKs are out (Disorder), where limited transmit sends each
        # segment the pipe allows (RFC 3042)
        deferrable = recover is None and not rec.in_recovery and not dupacks and not len(sacked)
        decided = -1  # ... judged once per skb: up to here
        tso: PacedBurst | None = None  # paced new data to a device that segments (gso.py)
        while True:
            nxt = self.snd_nxt
            gap = 1 << 62
            if sack_ok and len(sacked) and nxt != self.snd_max and seq_lt(nxt, self.snd_max):
                # resending after a timeout: skip what the peer SACKed (RFC 6675 §5.1)
                pos = self._abs(nxt)
                end = sacked.containing(pos)
                if end is not None:
                    self.snd_nxt = self._seq(min(end, self._abs(self.snd_max)))
                    continue
                nxt_sacked = sacked.next_start(pos)
                if nxt_sacked is not None:
                    gap = nxt_sacked - pos
            keep = self.pmtu_keep
            if keep is not None and seq_lt(nxt, self.snd_max):
                # resending after a path MTU decrease: skip what went out in segments that fit
                # the new MSS (Linux tcp_simple_retransmit)
                pos = self._abs(nxt)
                end = keep.containing(pos)
                if end is not None:
                    self.snd_nxt = self._seq(min(end, self._abs(self.snd_max)))
                    continue
                nxt_kept = keep.next_start(pos)
                if nxt_kept is not None and nxt_kept - pos < gap:
                    gap = nxt_kept - pos
            off = seq_sub(nxt, data_una)
            avail = total - off
            send_fin = False
            if avail <= 0:  # nothing new to send (n would be <= 0 whatever the windows)
                if fin_seq is None or nxt != fin_seq:
                    break
                n = 0
                send_fin = True
            else:
                in_flight = seq_sub(nxt, flight_una)
                cwnd = cwnd0
                if limited and nxt == self.snd_max:
                    cwnd += dupacks * mss  # limited transmit (RFC 3042): new data only
                if sack_ok and (len(sacked) or rec.in_recovery):
                    pipe = self._in_flight()
                else:
                    pipe = in_flight
                if self.undo.frto_new is not None:  # F-RTO step 2b: only new data in flight
                    pipe = self._abs(nxt) - self.undo.frto_new  # (undo.py, rack.py)
                usable = self.snd_wnd - in_flight
                if cwnd - pipe < usable:
                    usable = cwnd - pipe
                n = mss
                if avail < n:
                    n = avail
                if usable < n:
                    n = usable
                if gap < n:
                    n = gap
                again = self.sent.resend(self._abs(nxt), mss) if seq_lt(nxt, self.snd_max) \
                    else None
                if again is not None:
                    if again < n:
                        n = again  # resent as first sent (sent.py)
                    elif n < again and n == usable and in_flight:
                        break  # Linux counts cwnd in packets: no room for this one whole
                if deferrable and nxt == self.snd_max and n == mss and cwnd > pipe \
                        and self._abs(nxt) >= decided:
                    defer, decided = self._tso_defer(nxt, cwnd - pipe, now)
                    if defer:
                        break
                if sendbuf.eors:
                    n = sendbuf.eor_room(off, n)  # MSG_EOR: a segment ends with its record
                if probe and nxt == self.snd_max:  # PLPMTUD: this new segment may probe
                    n = self._plpmtud_probe_len(probe, avail, usable, n, now)
                    probe = 0
                if n <= 0:
                    n = 0
                    if not (fin_seq is not None and nxt == fin_seq):
                        break
                    send_fin = True
                else:
                    if n == usable and n < mss and n < avail and n < gap \
                            and not self._sws_override:
                        if n < self.max_sndwnd // 2 or self.max_sndwnd == 0:
                            break  # window-limited: sender SWS avoidance (RFC 9293 §3.8.6.2.1)
                    elif n < mss and n == avail and fin_seq is None and self.snd_up is None and (
                            (not self.config.nodelay and seq_lt(snd_una, self.snd_sml)
                             and seq_le(self.snd_sml, nxt))
                            or (((self.config.cork and not self._nagle_push) or self._more)
                                and nxt == self.snd_max and not self._sws_override)):
                        # Nagle (RFC 9293 §3.7.4) as Linux (tcp_nagle_check, Minshall's variant):
                        # a short segment waits while a previous short one is unacknowledged;
                        # TCP_CORK / MSG_MORE hold any short one, until uncorked, TCP_NODELAY
                        # set (TCP_NAGLE_PUSH) or the persist timer (Linux's probe timer,
                        # about 200 ms); neither in urgent mode (tcp_nagle_test)
                        break
                    if fin_seq is not None and seq_add(nxt, n) == fin_seq:
                        send_fin = True
            if pacer is not None and n and not pacer.ready(now):  # paced: not yet (pacing.py)
                self._arm(PACING_TIMER, pacer.next_send)
                break
            seq = nxt
            snd_max = self.snd_max
            retrans = seq_lt(seq, snd_max)
            flags = ACK
            if not n:
                pass
            elif retrans and again is not None:
                if self.sent.pushed(self._abs(seq), n):
                    flags |= PSH  # the PSH of what is resent (sent.py)
            elif sendbuf.pushed(off, n) or (self._wakeup_push and not retrans):
                # the end of a write (Linux tcp_push; the queue's end is one), or new data the
                # persist timer forces out (Linux tcp_write_wakeup; not a timeout's or a tail
                # loss probe's, which go as tcp_write_xmit sends)
                flags |= PSH
            if send_fin:
                flags |= FIN
            extra = 0  # full segments that leave with this one as a TSO packet (gso.py)
            if pacer is not None:
                pacer.on_sent(n, now, mss, self.config.min_tso_segs)
                if self.gso_max and n and not retrans and not send_fin:
                    if tso is None:
                        tso = PacedBurst(self, pipe)
                    extra, push = tso.sent(self, off, n, bool(flags & PSH), usable - n, pacer,
                                           now, self.gso_max)
                    if push:
                        flags |= PSH
            payload = bytes(sendbuf.data[off:off + n + extra * mss]) if n else b""
            if retrans:
                self.stats.retransmits += 1
                self.stats.bytes_retrans += n
                if self.trace is not None:
                    self.trace(now, "retransmit", {"seq": seq, "len": n, "why": "rto"})
            elif 0 < n < mss:
                self.snd_sml = seq_add(seq, n)  # Linux tcp_minshall_update
            self._emit(seq, flags, payload, now)
            if extra:
                self.stats.segs_out += extra
                self.sent.split_last(mss)
                n += extra * mss
            sent_ack = True
            nxt = self.snd_nxt = seq_add(seq, n + (1 if send_fin else 0))
            if seq_gt(nxt, snd_max):
                self.snd_max = nxt
            if self.deadlines[RTO_TIMER] is None:
                self._arm(RTO_TIMER, now + self.rtt.rto)
            if send_fin:
                break
        if self.pmtu_keep is not None and self.snd_nxt == self.snd_max:
            self.pmtu_keep = None  # the resend after a path MTU decrease is over
        if sack_recovery and self.recover is not None and self._sack_retransmit(now, rescue=True):
            sent_ack = True  # NextSeg rule (3): no new data went out, resend below the top SACK
        self._sws_override = self._wakeup_push = False
        return sent_ack

    def _retransmit_head(self, now: float, why: str) -> None:
        self._retransmit_from(self.snd_una, self.snd_mss, now, why)

    def _retransmit_from(self, seq: int, limit: int, now: float, why: str) -> int:
        """Resend at most ``limit`` bytes (and the FIN if it is there) from ``seq``, which lies
        in [SND.UNA, SND.MAX). Returns the sequence space covered (0: nothing to resend)."""
        off = seq_sub(seq, self.snd_data_una)
        n = min(self.snd_mss, limit, len(self.sendbuf) - off) if off >= 0 else 0
        again = self.sent.resend(self._abs(seq), self.snd_mss) if n > 0 else None
        if again is not None and again < n:
            n = again  # resent as first sent (sent.py)
        if n > 0 and self.sendbuf.eors:
            n = self.sendbuf.eor_room(off, n)  # resent as sent: never across a MSG_EOR record
        flags = ACK
        if n <= 0:
            n = 0
            if self.fin_seq is not None and seq == self.fin_seq \
                    and seq_gt(self.snd_max, self.fin_seq):
                flags |= FIN
            else:
                return 0
        elif self.fin_seq is not None and seq_add(seq, n) == self.fin_seq \
                and seq_gt(self.snd_max, self.fin_seq):
            flags |= FIN
        if n and (self.sent.pushed(self._abs(seq), n) if again is not None
                  else self.sendbuf.pushed(off, n)):
            flags |= PSH  # resent as first sent
        payload = self.sendbuf.peek(off, n) if n else b""
        self.stats.retransmits += 1
        self.stats.bytes_retrans += n
        if self.trace is not None:
            self.trace(now, "retransmit", {"seq": seq, "len": n, "why": why})
        self._emit(seq, flags, payload, now)
        covered = n + (1 if flags & FIN else 0)
        self.rec.on_retransmit(self._abs(seq), covered)
        if self.deadlines[RTO_TIMER] is None:
            self._arm(RTO_TIMER, now + self.rtt.rto)
        return covered

    @property
    def cwnd_effective(self) -> int:
        """cwnd as the sender uses it: NewReno's inflation included (RFC 5681 §3.2)."""
        return max(self.snd_mss, self.cc.cwnd + self.rec.inflation) \
            if self.recover is not None else self.cc.cwnd

    def _in_flight(self) -> int:
        """Bytes counted against cwnd: RFC 6675 ``pipe`` during SACK recovery; otherwise what was
        sent from SND.UNA to SND.NXT minus what the peer SACKed (after a timeout SND.NXT went
        back: what lies above it is presumed lost)."""
        una, nxt = self.snd_una if self.tfo is None else self.flight_una(), self.snd_nxt
        d = (nxt - una) & MASK  # seq_sub(SND.NXT, una), written out (asked after most ACKs)
        flight = d - MOD if d > HALF else d
        rec = self.rec
        if not self.sack_ok or not (rec.sacked.starts or rec.in_recovery):  # (len(), no call)
            return flight
        una_pos = self._abs(una)
        if self.recover is not None and rec.sack_mode:
            return rec.pipe(una_pos, self._abs(self.snd_max), self.snd_mss)
        return flight - rec.sacked.covered_between(una_pos, una_pos + flight)

    def _check_app_limited(self, rate: DeliveryRate) -> None:
        """The application writes: is what it gave all that is in flight? (rate.py; Linux
        calls tcp_rate_check_app_limited at the start of tcp_sendmsg_locked)"""
        d = (self.snd_nxt - self.snd_data_una) & MASK  # (seq_sub)
        unsent = len(self.sendbuf.data) - (d - MOD if d > HALF else d)
        mss = self.snd_mss
        if unsent >= mss:  # (the usual case of a bulk write: nothing else is asked)
            return
        xb = self.xmit_blocked
        rec = self.rec
        resend_due = (rec.in_recovery or bool(rec.lost.starts)) and rec.next_seg(
            self._abs(self.snd_una), self._abs(self.snd_max), mss) is not None
        rate.check_app_limited(unsent, self._in_flight(), self.cc.cwnd, mss,
                               xb is not None and xb(self.remote_ip), resend_due)

    def _sack_retransmit(self, now: float, rescue: bool) -> bool:
        """RFC 6675 §5 step (C): while cwnd - pipe >= 1 SMSS send NextSeg rule (1) holes
        (lost, not yet resent), or with ``rescue`` rule (3) holes below the highest SACK."""
        rec = self.rec
        sent = False
        mss = self.snd_mss
        while True:
            una_pos = self._abs(self.snd_una)
            max_pos = self._abs(self.snd_max)
            if self.cc.cwnd - rec.pipe(una_pos, max_pos, mss) < mss:
                break
            hole = rec.rescue_seg(una_pos, max_pos) if rescue else \
                rec.next_seg(una_pos, max_pos, mss)
            if hole is None:
                break
            pos, n = hole
            if not self._retransmit_from(self._seq(pos), n, now, "sack"):
                break
            sent = True
        return sent

    def _arm_persist(self, now: float) -> None:
        t = min(self.config.persist_max, self.rtt.base_rto * (1 << min(self.persist_backoff, 16)))
        self._arm(PERSIST_TIMER, now + t)

    def _plpmtud_want_probe(self, now: float) -> int:
        """The packet size of a probe to send now (0: none). Like Linux: only in the open
        state (no recovery, no timeouts) with a congestion window of at least 11 segments."""
        p = self.plpmtud
        if not p.engaged or p.probe_seq is not None or self.recover is not None \
                or self.retries or self.dupacks or self.state not in (ESTABLISHED, CLOSE_WAIT) \
                or self.cc.cwnd < 11 * self.snd_mss:
            return 0
        # the path MTU lowers the search's top when it changes (on_ptb), as Linux tcp_sync_mss
        limit = min(self.peer_mss, self.config.maxseg or 65535) + self._ip_tcp_hdr
        return p.want_probe(limit, now) or 0

    def _plpmtud_probe_len(self, probe_mtu: int, avail: int, usable: int, n: int,
                           now: float) -> int:
        """Payload length of the next new segment: a probe of ``probe_mtu`` bytes when the data
        and the window allow one followed by three normal segments (so that its loss shows as
        duplicate ACKs), else ``n``."""
        size = probe_mtu - self._ip_tcp_hdr - (TS_OPT_LEN if self.ts_ok else 0)
        mss = self.snd_mss
        if size <= mss or avail < size + 3 * mss or usable < size \
                or self.snd_wnd - seq_sub(self.snd_nxt, self.snd_una) < size + 3 * mss:
            return n
        self.plpmtud.probe_sent(self.snd_nxt, seq_add(self.snd_nxt, size), probe_mtu, now)
        if self.trace is not None:
            self.trace(now, "plpmtud", {"why": "probe", "mtu": probe_mtu, "seq": self.snd_nxt,
                                        "len": size})
        return size
