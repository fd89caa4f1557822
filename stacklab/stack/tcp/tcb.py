"""The Transmission Control Block: one TCP connection as a sans-IO state machine (RFC 9293).

The TCB never touches a socket or a clock. Its driver (``TcpLayer``, or a test) calls

* ``connect(now)`` / ``Tcb.accept_syn(...)`` to open, ``send(data)``, ``read(n)``,
  ``close()`` (FIN after the queued data), ``abort(now)`` (RST);
* ``receive(seg, now)`` for every segment of this connection;
* ``handle_timer(now)`` when ``get_timer()`` has passed, and ``output(now)`` after user calls;

and collects ``segments_to_send()`` and ``next_event()``. Every state change goes through the one
table in :mod:`.fsm` and is recorded in ``transitions`` as ``(time, old, new, cause)``.

The TCB is split in three: its variables (:mod:`.tcbvars`), its sending side (:mod:`.output`:
segmentizer, window field, SACK blocks, retransmissions) and, here, segment arrival, timers, user
calls and state changes.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from stacklab.stack.pmtudisc import accepts_pmtu

from . import accecn as _accecn
from . import chrono, local_drop, route_metrics, sndbuf, urgent
from .config import DUPACK_THRESHOLD, TcpConfig, shared_int
from .events import Connected, ConnectionLost, DataReceived, EofReceived, SendSpace, TcbEvent
from .fsm import (
    CAN_RECEIVE,
    CAN_SEND,
    CLOSE_WAIT,
    CLOSED,
    CLOSING,
    ESTABLISHED,
    FIN_WAIT_1,
    FIN_WAIT_2,
    LAST_ACK,
    LISTEN,
    SYN_RECEIVED,
    SYN_SENT,
    TIME_WAIT,
    Event,
    next_state,
)
from .output import TcbOutput
from .pacing import pacer_for
from .plpmtud import PlpmtudState
from .rack import (
    after_ack,
    after_open_ack,
    on_established,
    on_reo_timer,
    on_tlp_timer,
    schedule_tlp,
    tlp_due_at_rto,
)
from .rack import on_rto as rack_on_rto
from .rate import LOSS, OPEN, RECOVERY
from .recovery import RangeSet
from .rtt import ack_sample
from .segment import ACK, FIN, RST, SYN, URG, Segment, SegmentLike
from .seq import HALF, MASK, MOD, seq_add, seq_ge, seq_gt, seq_le, seq_lt, seq_sub
from .tfo import TfoConn
from .timers import (
    CONNECT_TIMER,
    DELACK_TIMER,
    FIN_WAIT_2_TIMER,
    KEEPALIVE_TIMER,
    KINDS,
    PACING_TIMER,
    PERSIST_TIMER,
    RACK_REO_TIMER,
    RTO_TIMER,
    TIME_WAIT_TIMER,
    TLP_TIMER,
    Timer,
    earliest,
)

_PREDICTED_FLAGS = SYN | FIN | RST | URG | ACK  # of these, header prediction wants ACK alone
_PLPMTUD_DISABLED = PlpmtudState.DISABLED


class _Arriving:
    """A segment on the general arrival path, as the checks trim it."""

    __slots__ = ("flags", "seq", "payload", "plen", "syn", "fin", "seg_len", "ts", "rcv_wnd",
                 "ts_recent")

    def __init__(self, seg: SegmentLike, ts: tuple[int, int] | None) -> None:
        self.flags = flags = seg.flags
        self.seq = seg.seq
        self.payload: Any = seg.payload
        self.plen = len(seg.payload)
        self.syn = flags & SYN != 0
        self.fin = flags & FIN != 0
        self.seg_len = self.plen + self.syn + self.fin
        self.ts = ts
        self.rcv_wnd = 0
        self.ts_recent = False  # its TSval becomes TS.Recent once the ACK check accepts it


class Tcb(TcbOutput):
    """One TCP connection (the constructor is :class:`~.tcbvars.TcbVars`'s)."""

    # -- setup helpers -------------------------------------------------------------------------
    def set_path_mtu(self, mtu: int) -> None:
        """Path MTU discovery lowered (or raised) the path MTU: recompute the send MSS."""
        self.path_mss = mtu - self._ip_tcp_hdr
        self.snd_mss = self._compute_snd_mss()
        self.cc.mss = self.snd_mss

    def on_path_mtu(self, mtu: int, now: float) -> bool:
        """A validated Frag Needed / Packet Too Big says the path carries ``mtu`` (RFC 1191
        §6.4, RFC 8201 §5.4): the send MSS drops at once and what is in flight goes out again
        now, resegmented, without waiting for the RTO and without touching cwnd/ssthresh (a
        segment too big for the path is not a congestion signal). True if the MSS dropped.
        Not on IPv4 with an IP_MTU_DISCOVER mode that ignores the path MTU (pmtudisc.py).
        """
        if not self.v6 and not accepts_pmtu(self.config.pmtudisc):
            return False
        old = self.snd_mss
        self.own_plpmtud().on_ptb(mtu)
        self.set_path_mtu(mtu)
        if self.state is SYN_SENT:  # the SYN we resend offers what fits (tcp_advertise_mss)
            self.adv_mss = min(self.adv_mss,
                               route_metrics.advmss(self.route, mtu, self._ip_tcp_hdr))
            if seq_gt(self.snd_max, seq_add(self.iss, 1)) and self.snd_una == self.iss:
                # a SYN with data (TCP Fast Open) did not fit: a plain SYN now, the data after
                # the handshake (Linux tcp_simple_retransmit on SYN data)
                self.snd_nxt = self.iss
                self._rtt_seq = None  # Karn: the SYN is being resent
                self.output(now)
                return True
        if self.snd_mss >= old:
            return False
        if self.trace is not None:
            self.trace(now, "pmtu", {"mtu": mtu, "mss": self.snd_mss, "old_mss": old})
        if self.state not in (SYN_SENT, SYN_RECEIVED) and self.snd_una != self.snd_max:
            # resend in smaller pieces what went out in segments larger than the new MSS, not
            # what fits it (Linux tcp_simple_retransmit; sent.py)
            keep = RangeSet()
            for a, b in self.sent.fitting(self._abs(self.snd_una), self._abs(self.snd_max),
                                          self.snd_mss):
                keep.add(a, b)
            self.pmtu_keep = keep if len(keep) else None
            self.snd_nxt = self.snd_una  # go back to SND.UNA: output() resends in smaller pieces
            self._sws_override = True
            self.output(now)
        return True

    # -- state changes ----------------------------------------------------------------------------
    def _move(self, now: float, event: Event, cause: str = "") -> None:
        old = self.state
        new = next_state(old, event)
        self.state = new
        self._transitions += (now, old, new, cause or event.value)
        if self.trace is not None:
            self.trace(now, "state", {"old": old.value, "new": new.value,
                                      "cause": cause or event.value})
        if new is ESTABLISHED and old in (SYN_SENT, SYN_RECEIVED):
            # Linux tcp_mtup_init: PLPMTUD's search to the peer's MSS (plpmtud.py); only the
            # active opener resyncs its MSS (tcp_rcv_synsent_state_process)
            self.plpmtud.init(min(self.peer_mss, self.config.maxseg or 65535) + self._ip_tcp_hdr)
            if not self.passive:
                self._plpmtud_sync(now, "established")
        if new is TIME_WAIT:
            self._enter_time_wait(now)
        elif new is CLOSED:
            self._enter_closed()

    def _enter_time_wait(self, now: float) -> None:
        for kind in (RTO_TIMER, PERSIST_TIMER, FIN_WAIT_2_TIMER, KEEPALIVE_TIMER):
            self._arm(kind, None)
        self._set_unacked_since(None)
        self._arm(TIME_WAIT_TIMER, now + 2 * self.config.msl)
        self._report_lost(None)

    def _enter_closed(self) -> None:
        for kind in KINDS:
            self._arm(kind, None)
        self.unacked_since = None
        if self.zerocopy is not None:  # SO_ZEROCOPY: freed data completes too (zerocopy.py)
            self.zerocopy.flush()
        self._report_lost(self.error)

    def _report_lost(self, error: Exception | None) -> None:
        if not self._lost_reported:
            self._lost_reported = True
            self._events.append(ConnectionLost(error))

    def _fail(self, now: float, event: Event, error: Exception | None, cause: str) -> None:
        self.error = error
        self.sendbuf.clear()
        self._move(now, event, cause)

    def reopen_from_time_wait(self, now: float) -> None:
        """A new SYN takes this connection's 4-tuple while it is in TIME-WAIT (RFC 6191 §2, the
        listener checked ``syn_acceptable_in_time_wait``): CLOSED at once."""
        self._move(now, Event.SYN_IN_TIME_WAIT, "new SYN in TIME-WAIT (RFC 6191)")

    def connect_failed(self, now: float, error: Exception, cause: str) -> None:
        """An ICMP Destination Unreachable (or a local one: neighbour resolution failed) for our
        SYN in SYN-SENT, or for the SYN-ACK of a TCP Fast Open child or a simultaneous open:
        CLOSED at once with ``error`` (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, ...), as Linux's
        tcp_v4_err/tcp_v6_err do, not a timeout after the retries (RFC 1122 §4.2.3.9 lets a
        connect in progress be aborted); data already received is still read first."""
        self._fail(now, Event.RCV_RST, error, cause)

    @property
    def states_entered(self) -> list[str]:
        """State names in the order entered (the initial CLOSED left out)."""
        return [t[2].value for t in self.transitions]

    @property
    def finished(self) -> bool:
        """The layer may forget this TCB: CLOSED, or a passive one sent back to LISTEN."""
        return self.state is CLOSED or (self.passive and self.state is LISTEN
                                          and len(self._transitions) > 4)

    # -- user calls (RFC 9293 §3.10.1-§3.10.6) -----------------------------------------------------
    def connect(self, now: float) -> None:
        """Active OPEN: send a SYN."""
        self._move(now, Event.ACTIVE_OPEN)
        self.ecn = _accecn.requested(self.config)  # ECN or AccECN in our SYN (accecn.py)
        if self.config.connect_timeout is not None:
            self._arm(CONNECT_TIMER, now + self.config.connect_timeout)
        if self.tfo is None or not self.tfo.deferred:  # TFO: the SYN waits for the first write
            self.output(now)

    @classmethod
    def accept_syn(cls, seg: SegmentLike, local_ip: bytes, local_port: int, remote_ip: bytes,
                   remote_port: int, now: float, ip_ecn: int = 0, tfo: TfoConn | None = None,
                   **kw: Any) -> Tcb:
        """A listener got a SYN (RFC 9293 §3.10.7.2): a new TCB in SYN-RECEIVED sending SYN,ACK.
        ``ip_ecn``: the SYN's IP ECN field; ``tfo``: what TCP Fast Open does with it (tfo.py)."""
        tcb = cls(local_ip, local_port, remote_ip, remote_port, now=now, **kw)
        if tfo is not None:  # (None: the class default, no variable of its own)
            tcb.tfo = tfo
        tcb.passive = True
        tcb.plpmtud.defer()  # PLPMTUD from ESTABLISHED on, as Linux's child socket
        tcb._move(now, Event.PASSIVE_OPEN)
        tcb.stats.segs_in += 1
        tcb.ecn = _accecn.accept_syn(tcb.config, seg, ip_ecn)  # before the MSS (its option)
        tcb._take_syn(seg)
        tcb.snd_wnd = seg.window  # never scaled in a SYN (RFC 7323 §2.2)
        tcb.max_sndwnd = tcb.snd_wnd
        tcb.snd_wl1 = seg.seq
        tcb._move(now, Event.RCV_SYN)
        if tfo is not None and tfo.child:
            if tcb.snd_autotune:  # Linux's TFO child is established for its buffers at once
                sndbuf.expand(tcb)  # (tcp_fastopen_create_child -> tcp_init_transfer)
            tfo.take_syn_data(tcb, seg)  # RFC 7413 §4.2.2: the SYN-ACK acknowledges the data
        if tcb.config.connect_timeout is not None:
            tcb._arm(CONNECT_TIMER, now + tcb.config.connect_timeout)
        tcb.output(now)
        return tcb

    def send(self, data: bytes | bytearray | memoryview, *, oob: bool = False,
             more: bool = False, eor: bool = False, now: float | None = None) -> int:
        """Queue data (RFC 9293 SEND); returns how many bytes the send buffer took, as Linux
        counts it (sndbuf.py). ``oob``: ``MSG_OOB``, the last byte queued is urgent
        (urgent.py); ``more``: ``MSG_MORE``, the output that follows holds a short segment
        back, as TCP_CORK, and sets no PSH; ``eor``: ``MSG_EOR``, no segment will carry these
        bytes and later ones together; ``now``: a buffer filled in the middle of the write may
        go out at once, as Linux's (tcp_push_one)."""
        if self.fin_queued or self.state not in CAN_SEND and self.state not in (
                SYN_SENT, SYN_RECEIVED):
            raise ConnectionError(f"TCP SEND in {self.state}: connection closing")
        if self.rate is not None:  # before the write, as Linux's tcp_sendmsg_locked
            self._check_app_limited(self.rate)
        n = sndbuf.write(self, data, push=not more, eor=eor, oob=oob, now=now)
        self._more = more
        if oob and n:
            urgent.mark_sent(self)
        return n

    @property
    def send_space(self) -> int:
        """How many bytes a write takes now (0: none), nothing being sent meanwhile."""
        return sndbuf.room(self)

    def read(self, n: int = -1) -> bytes:
        """RECEIVE: take up to ``n`` readable bytes (all when n < 0); with urgent data, up to
        the mark (urgent.py)."""
        if self.urg is not None:
            return urgent.read(self, n)
        return self.recvbuf.read(n)

    @property
    def readable(self) -> int:
        if self.urg is not None:
            return urgent.readable(self)
        return len(self.recvbuf)

    @property
    def at_eof(self) -> bool:
        """The peer's FIN arrived and every byte before it was read."""
        return self.fin_received and not len(self.recvbuf)

    @property
    def send_queued(self) -> int:
        """Bytes in the send buffer: not yet sent, or sent and not yet acknowledged."""
        return len(self.sendbuf)

    def ack_pending(self) -> bool:
        """An ACK is owed or a window update is due: what a read may change, so ``output()``
        after a read only has something to do when this is true. (A method: the stream
        transport asks after every read, and a property's getter is a call from C.)"""
        return self._ack_now or self.window_update_due()

    def close(self, now: float, *, full: bool = False) -> None:
        """CLOSE (RFC 9293 §3.10.4): send a FIN once the queued data is out.

        ``full=True`` is the socket ``close()`` (no more reading wanted: a FIN-WAIT-2 timeout then
        applies, as in Linux); ``full=False`` is ``shutdown(SHUT_WR)`` / ``write_eof``.
        """
        if full:
            if self.config.linger == 0:
                # SO_LINGER {1, 0}: an abortive close (Linux tcp_close -> tcp_disconnect),
                # a RST from the synchronised states, unsent data dropped
                self.abort(now)
                return
            self.user_closed = True
        st = self.state
        if st in (LISTEN, SYN_SENT):
            self._fail(now, Event.CLOSE_UNSYNC, None, "CLOSE before synchronised")
            return
        if self.fin_queued:
            if full and st is FIN_WAIT_2:
                self._arm(FIN_WAIT_2_TIMER, now + self.config.fin_wait_2_timeout)
                self._report_lost(None)
            return
        if st in (SYN_RECEIVED, ESTABLISHED) or st is CLOSE_WAIT:
            self.fin_queued = True
            self._move(now, Event.CLOSE)
        else:
            return  # CLOSED, TIME-WAIT, ...: "connection closing", nothing to do
        self.fin_seq = seq_add(self.snd_data_una, len(self.sendbuf))
        self.output(now)

    def shutdown_read(self) -> None:
        """shutdown(SHUT_RD), as Linux: nothing on the wire; data keeps being received and
        acknowledged (reads still return what is queued, then end of file), until our FIN is
        out: data arriving then resets the connection, as after close()."""
        self.rcv_shutdown = True

    def abort(self, now: float, error: Exception | None = None) -> None:
        """ABORT (RFC 9293 §3.10.5): RST to the peer from a synchronised state, then CLOSED."""
        st = self.state
        if st is CLOSED:
            return
        if st in (SYN_RECEIVED, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT):
            self._active_reset(now)
        self._fail(now, Event.ABORT, error, "ABORT")

    def _active_reset(self, now: float) -> None:
        """The RST of an abort (RFC 9293 §3.10.5 <SEQ=SND.NXT><CTL=RST>), shaped as Linux's
        tcp_send_active_reset: at a sequence number the peer's window accepts, with an ACK of
        RCV.NXT, the window and the connection's options (timestamps) as any other segment."""
        self._emit(self._ack_seq(), RST | ACK, b"", now)

    # -- driver calls -----------------------------------------------------------------------------
    def segments_to_send(self) -> list[Segment]:
        out = self._out
        self._out = []
        return out

    def next_event(self) -> TcbEvent | None:
        return self._events.pop(0) if self._events else None

    def get_timer(self) -> float | None:
        """The earliest deadline (``timer``), recomputed only after ``_arm`` changed a slot."""
        if self._timer_stale:
            self._timer_stale = False
            self.timer = earliest(self.deadlines)
        t = self.timer
        return None if t is None else t[0]

    def handle_timer(self, now: float) -> None:
        """Serve the deadlines that are due, in the order of :class:`~.timers.Timer`, then send
        what that allows."""
        if self.state is CLOSED:
            return
        for kind in KINDS:
            at = self.deadlines[kind]  # (an expiry may arm another: _arm may replace the list)
            if at is not None and now >= at:
                self._arm(kind, None)
                if self._expire(kind, now):
                    return
        self.output(now)

    def _expire(self, kind: Timer, now: float) -> bool:
        """The deadline of ``kind`` passed. True: the connection ended, nothing more to do."""
        st = self.state
        if kind is PACING_TIMER:
            return False  # the next paced segment may leave: handle_timer's output() sends it
        if kind is RTO_TIMER:
            self._on_rto(now)
            return self.state is CLOSED
        if kind is DELACK_TIMER:
            self._ack_now = True
            self.stats.delayed_acks += 1
            # the delayed ACK was not piggybacked (Linux tcp_delack_timer_handler): leave
            # interactive mode with the shortest timeout, or else wait longer next time
            if self.pingpong:
                self.pingpong = False
                self.ato = self.config.delack_timeout
            else:
                self.ato = min(2 * self.ato, self.rtt.rto)
            return False
        if kind is PERSIST_TIMER:
            return self._on_persist(now)
        if kind is KEEPALIVE_TIMER:
            return self._on_keepalive(now)
        if kind is TIME_WAIT_TIMER:
            self._move(now, Event.TIMEOUT_2MSL)
            return True
        if kind is CONNECT_TIMER:
            if st is SYN_SENT or st is SYN_RECEIVED:
                self._fail(now, Event.TIMEOUT, TimeoutError("TCP connect timed out"),
                           "connect timeout")
                return True
            return False
        if kind is FIN_WAIT_2_TIMER:
            if st is FIN_WAIT_2:
                self._fail(now, Event.TIMEOUT, None, "FIN-WAIT-2 timeout")
                return True
            return False
        if kind is RACK_REO_TIMER:
            on_reo_timer(self, now)
            return False
        if kind is TLP_TIMER:
            on_tlp_timer(self, now)
            return False
        # USER_TIMER: TCP_USER_TIMEOUT (RFC 5482 §2, RFC 9293 §3.8.3), data unacknowledged
        # this long; no RST, as Linux (tcp_write_err): the peer is presumed unreachable
        self._fail(now, Event.TIMEOUT, TimeoutError("TCP user timeout"),
                   f"user timeout ({self.config.user_timeout} s) with data unacknowledged")
        return True

    def set_config(self, config: TcpConfig, now: float, options: tuple[str, ...] = ()) -> None:
        """``setsockopt`` on an open connection: ``config`` from now on; the keepalive timer
        follows SO_KEEPALIVE / TCP_KEEPIDLE at once (Linux ``tcp_set_keepalive``); a buffer
        size set (SO_RCVBUF/SO_SNDBUF) is the buffer from now on, no longer autotuned.
        ``options``: the fields this setsockopt set; TCP_NODELAY set pushes what TCP_CORK
        holds now (Linux TCP_NAGLE_PUSH, "cork is overridden for already queued data"), even
        if it was set already."""
        if "nodelay" in options and config.nodelay:
            self._nagle_push = len(self.sendbuf) > seq_sub(self.snd_nxt, self.snd_data_una)
        old = self.config
        keep = (old.keepalive, old.keepidle)
        self.config = config
        if config.recv_buffer is not None and config.recv_buffer != old.recv_buffer:
            self.recvbuf.capacity = config.recv_buffer
            self.rcv_autotune = False
        if config.send_buffer is not None and config.send_buffer != old.send_buffer:
            self.sendbuf.capacity = config.send_buffer
            self.snd_autotune = False
        if (config.keepalive, config.keepidle) != keep:
            self._arm_keepalive(now)
        if config.congestion != old.congestion:  # TCP_CONGESTION
            self.set_congestion(config.congestion)
        elif config.max_pacing_rate != old.max_pacing_rate:  # SO_MAX_PACING_RATE
            self.pacer = pacer_for(self.cc, config, self.pacer)

    def set_quickack(self, on: bool) -> None:
        """TCP_QUICKACK as Linux (__tcp_sock_set_quickack), not a lasting mode: 1 sends a
        delayed ACK that is due now and leaves interactive (ping-pong) mode, so the next ACKs
        follow the usual rules; 0 enters it (ACKs are delayed). ``quickack`` reads it back."""
        if not on:
            self.pingpong = True
            return
        if self.state in (ESTABLISHED, CLOSE_WAIT) and self.deadlines[DELACK_TIMER] is not None:
            self._ack_now = True
        self.pingpong = False

    @property
    def quickack(self) -> bool:
        """getsockopt(TCP_QUICKACK): not in interactive (delayed-ACK) mode."""
        return not self.pingpong

    # -- timers -----------------------------------------------------------------------------------
    def _arm_keepalive(self, now: float) -> None:
        cfg = self.config
        if cfg.keepalive and self.state in (ESTABLISHED, CLOSE_WAIT, FIN_WAIT_2):
            self._arm(KEEPALIVE_TIMER, now + cfg.keepidle)
            self.keepalive_probes = 0
        else:
            self._arm(KEEPALIVE_TIMER, None)

    def _on_keepalive(self, now: float) -> bool:
        """SO_KEEPALIVE (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6): after ``keepidle`` s of silence
        send a probe (SEG.SEQ = SND.UNA - 1, no data: the peer answers with an ACK) every
        ``keepintvl`` s; ``keepcnt`` unanswered probes fail the connection. True if it failed."""
        cfg = self.config
        if not cfg.keepalive or self.state not in (ESTABLISHED, CLOSE_WAIT, FIN_WAIT_2):
            return False
        if self.snd_una != self.snd_max or self.deadlines[PERSIST_TIMER] is not None:
            # the RTO / persist timer watches the peer
            self._arm(KEEPALIVE_TIMER, now + cfg.keepidle)
            return False
        if self.keepalive_probes >= cfg.keepcnt:
            self._active_reset(now)  # Linux tcp_keepalive_timer
            self._fail(now, Event.TIMEOUT, TimeoutError("TCP keepalive timed out"),
                       f"{cfg.keepcnt} keepalive probes unanswered")
            return True
        self.keepalive_probes += 1
        self.stats.keepalive_probes += 1
        if self.trace is not None:
            self.trace(now, "keepalive", {"probe": self.keepalive_probes})
        self._emit(seq_add(self.snd_una, -1), ACK, b"", now)
        self._arm(KEEPALIVE_TIMER, now + cfg.keepintvl)
        return False

    def _on_rto(self, now: float) -> None:
        """RFC 6298 §5.4-5.7 plus SYN/FIN retransmission and giving up (Linux tcp_retries)."""
        if self.snd_una == self.snd_max or tlp_due_at_rto(self, now):
            return
        self.retries += 1
        syn_phase = self.state in (SYN_SENT, SYN_RECEIVED)
        cfg = self.config
        if syn_phase:
            limit = cfg.synack_retries if self.passive else cfg.syn_retries
        elif self.user_closed:  # an orphan (Linux tcp_write_timeout)
            limit = self._orphan_retries(self.rtt.rto < cfg.max_rto)
        else:
            limit = cfg.max_retries
        if self.retries > limit:
            if syn_phase and self.config.connect_timeout is None:
                self._fail(now, Event.TIMEOUT, TimeoutError("TCP connect timed out"),
                           f"SYN not answered after {limit} retransmissions")
            elif not syn_phase:  # no RST, as Linux (tcp_write_err): the peer is unreachable
                self._fail(now, Event.TIMEOUT, TimeoutError("TCP retransmissions timed out"),
                           f"{limit} retransmissions without an ACK")
                return
            if self.state is CLOSED:
                return
        self.stats.rto_expiries += 1
        self.rtt.on_timeout()
        flight = seq_sub(self.snd_max, self.snd_una)
        undo = self.own_undo()  # (rack_on_rto below ends F-RTO's step 2b too)
        if self.recover is None and self.retries == 1:
            undo.start(self.cc.cwnd, self.cc.ssthresh)  # (in recovery: the episode's)
            if self.config.frto and self.sack_ok:
                undo.frto_high = self._abs(self.snd_max)
        self.cc.on_rto(flight, now)
        self.recover = None
        self.rec.on_rto()
        rack_on_rto(self)
        self.rto_recover = self.snd_max
        self.rto_tsval = self._ts_clock(now)
        self.dupacks = 0
        self._trace_cwnd(now)
        self._rtt_seq = None  # Karn: never time a retransmitted segment
        if self.trace is not None:
            self.trace(now, "rto", {"rto": round(self.rtt.rto, 6), "snd_una": self.snd_una,
                                    "retries": self.retries})
        self._plpmtud_on_rto(now)
        self.pmtu_keep = None  # a timeout resends everything not SACKed
        self.snd_nxt = self.snd_una  # go back N: output() resends from SND.UNA
        self._sws_override = True  # resend even if the window left is smaller than a segment

    def _on_persist(self, now: float) -> bool:
        """Zero-window probe (RFC 9293 §3.8.6.1), with backoff up to ``persist_max``: as Linux
        (tcp_xmit_probe_skb), a bare ACK at SND.UNA - 1, outside the window, which the peer
        answers with an ACK carrying its window; no data goes into the closed window. With a
        small but open window the same timer is the sender's SWS override. True if the
        connection gave up (``_probes_exhausted``)."""
        blocked = local_drop.blocked(self)  # the device queue refuses packets (local_drop.py)
        if self.snd_wnd > 0 and not blocked:
            self._sws_override = self._wakeup_push = True
            return False
        if local_drop.user_timeout_over(self, now):
            self._fail(now, Event.TIMEOUT, TimeoutError("TCP user timeout"),
                       f"user timeout ({self.config.user_timeout} s) while probing")
            return True
        if self._probes_exhausted():
            self._fail(now, Event.TIMEOUT, TimeoutError("TCP zero-window probes timed out"),
                       f"{self.persist_backoff} zero-window probes, {self.probes_out} unanswered"
                       + (" (orphan)" if self.user_closed else ""))
            return True
        if blocked:  # the probe cannot leave either: local congestion, no backoff
            self.probes_out += 1
            self._arm(PERSIST_TIMER,
                      local_drop.next_probe(self, now, local_drop.RESOURCE_PROBE_INTERVAL))
            return False
        self.stats.zero_window_probes += 1
        self.persist_backoff += 1
        self.probes_out += 1
        self._emit(seq_add(self.snd_una, -1), ACK, b"", now)
        self._arm_persist(now)
        return False

    def _probes_exhausted(self) -> bool:
        """Linux tcp_probe_timer: ``max_retries`` (tcp_retries2) probes in a row unanswered end
        the connection; a peer that answers keeps it open (RFC 1122 §4.2.2.17). An orphan (the
        application closed it) gets ``_orphan_retries`` instead, and goes once the probes'
        backoff would reach ``max_rto`` (TCP_RTO_MAX) even if the peer answers them, so that a
        peer that never reads cannot hold it."""
        cfg = self.config
        max_probes = cfg.max_retries
        if self.user_closed:
            backoff = self.persist_backoff
            alive = self.rtt.base_rto * (1 << min(backoff, 30)) < cfg.max_rto
            max_probes = self._orphan_retries(alive)
            if not alive and backoff >= max_probes:
                return True
        return self.probes_out >= max_probes

    def _orphan_retries(self, alive: bool) -> int:
        """Linux tcp_orphan_retries(): how many timeouts an orphan gets, ``orphan_retries``,
        where 0 means 8 while the peer seems alive (the backed-off RTO is below ``max_rto``;
        8 is over 100 s at a 200 ms RTO) and 0 once it does not."""
        retries = self.config.orphan_retries
        return 8 if retries == 0 and alive else retries

    # -- segment arrival (RFC 9293 §3.10.7) -------------------------------------------------------
    # The layer handles CLOSED, LISTEN and the SYN that reopens TIME-WAIT (listen.py); here is
    # SYN-SENT (§3.10.7.3) and the synchronized states (§3.10.7.4). ``_rcv_synchronized`` is the
    # specification, written as the RFC's checks in order with the seq.py helpers;
    # ``_rcv_predicted`` is the one header-prediction fast path (BSD tcp_input, Linux
    # tcp_rcv_established), which takes the common segment only when every check would pass
    # and falls back otherwise (tests/stack/tcp/test_fast_paths.py runs both on random input).

    def receive(self, seg: SegmentLike, now: float, ip_ecn: int = 0) -> None:
        """SEGMENT ARRIVES for this connection (``ip_ecn``: its IP header's ECN field)."""
        self.stats.segs_in += 1
        st = self.state
        if st is CLOSED or st is LISTEN:
            return
        self.last_rx = now
        self.probes_out = 0
        if self.trace is not None and seg.flags & (ACK | SYN) == ACK:
            # what the time-sequence graph draws: the ACK line, the window, the SACK blocks
            iss = self.iss
            self.trace(now, "ack", {
                "ack": seq_sub(seg.ack, iss), "win": seg.window << self.snd_wscale,
                "sack": [[seq_sub(left, iss), seq_sub(right, iss)]
                         for left, right in seg.sack_blocks()]})
        if self.deadlines[KEEPALIVE_TIMER] is not None:
            self._arm_keepalive(now)
        if self.ecn is not None:
            if st is not SYN_SENT:
                self.ecn.on_segment(self, seg, ip_ecn)  # CE, CWR, ECE (ecn.py, accecn.py)
            else:
                self.ecn.syn_ect_rcv = ip_ecn  # the SYN-ACK's, echoed by AccECN (accecn.py)
        if not seg.payload and self.fast_path and self._ack_predicted(seg, now):
            return  # an ACK of new data: the sender's work done in one pass
        run_output = True
        if st is SYN_SENT:
            self._rcv_syn_sent(seg, now)
        elif st is ESTABLISHED and self.fast_path and self._rcv_predicted(seg, now):
            if seg.payload and self._nothing_to_send():
                if not self._ack_now:
                    return  # in-order data, its ACK delayed: output() would send nothing
                # in-order data whose ACK is due: the one segment output() would send
                self._emit(self._ack_seq(), ACK, b"", now)
                run_output = False
        else:
            self._rcv_synchronized(seg, now)
        if self.state is not CLOSED:
            if run_output:
                self.output(now)
            # autotuning and a blocked writer's wake-up (check_space's own first test inline:
            # nothing to do unless a writer found the buffer short, as at a bulk receiver)
            if self.snd_nospace and sndbuf.check_space(self):
                self.chrono.stop(chrono.SNDBUF_LIMITED, now, chrono.queues_empty(self))
            cc = self.cc
            traced = self._cwnd_traced
            if cc.cwnd != traced[0] or cc.ssthresh != traced[1]:
                self._trace_cwnd(now)
        at = self._space_at
        if at is not None:
            self._space_at = None
            self._space_freed(at, sndbuf.write_space(self))

    def _rcv_predicted(self, seg: SegmentLike, now: float) -> bool:
        """Header prediction, in ESTABLISHED: an ACK without SYN/FIN/RST/URG at RCV.NXT, with an
        acceptable timestamp, no SACK blocks, the send window unchanged and no persist timer,
        that is either a pure ACK of new data or in-order data (ACK = SND.UNA) that fits the
        window with nothing held out of order. Does what ``_rcv_synchronized`` would do and
        returns True, else returns False having changed nothing."""
        if seg.flags & _PREDICTED_FLAGS != ACK or seg.seq != self.rcv_nxt:
            return False
        opts = seg.engine_options()  # (its timestamps and SACK blocks, in one call)
        ts = opts[4] if self.ts_ok else None
        if ts is not None and ((ts[0] - self.ts_recent) & MASK) >= HALF:
            return False  # older than TS.Recent: PAWS decides
        if seg.window << self.snd_wscale != self.snd_wnd \
                or self.deadlines[PERSIST_TIMER] is not None \
                or (self.sack_ok and opts[3]) or self.recover is not None:
            return False
        ack = seg.ack
        una = self.snd_una
        payload = seg.payload
        plen = len(payload)
        rb = self.recvbuf
        if plen:
            wnd = (self.rcv_adv - self.rcv_nxt) & MASK  # RCV.WND
            if ack != una or rb.ooo_bytes or self.rcv_fin_off is not None or wnd > HALF \
                    or plen > wnd:
                return False
        elif ack == una or ((ack - una) & MASK) > ((self.snd_max - una) & MASK):
            return False  # not an ACK of new data (a duplicate ACK, or beyond SND.MAX)
        seq = seg.seq
        if ts is not None and ((self.last_ack_sent - seq) & MASK) < HALF:
            self.ts_recent = ts[0]  # RFC 7323 §4.3
        if not plen:
            sacked0 = self.rec.sacked.total
            self._ack_advance(ack, now, ts)
            if self.sack_ok:
                self._after_ack(una, ack, sacked0, self.stats.dsacks_in, False,
                                ts[1] if ts is not None else None, now)
        wl1 = self.snd_wl1
        if (wl1 != seq and ((seq - wl1) & MASK) < HALF) or (
                wl1 == seq and ((ack - self.snd_wl2) & MASK) < HALF):
            self.snd_wl1 = seq  # the window update of the fifth check, the window itself equal
            self.snd_wl2 = ack
        if not plen:
            return True
        # in-order text into an empty reassembly queue (seventh check)
        rb.ready += payload
        rb.nxt += plen
        self.rcv_nxt = (seq + plen) & MASK
        self.stats.bytes_received += plen
        self._events.append(DataReceived(plen))
        self._data_in(plen, plen, now)
        if not self._ack_now:
            self._delay_ack(now)
        return True

    def _nothing_to_send(self) -> bool:
        """After in-order data took the receive fast path: whether ``output()`` would send
        nothing but the ACK owed (``_ack_now``), and change nothing else but the SWS override
        (no window update due, nothing queued, in flight or in recovery, no FIN, no timer to
        move, the cwnd untouched), so the receiver of a bulk transfer skips it: the first
        segment of each delayed-ACK pair sends nothing, the second its ACK alone. The general
        path (``fast_path = False``) always runs ``output()``; test_fast_paths compares."""
        if self.snd_una != self.snd_max or self.snd_nxt != self.snd_max \
                or self.sendbuf.data or self.fin_seq is not None or self.recover is not None \
                or self.deadlines[RTO_TIMER] is not None \
                or self.plpmtud.state is not _PLPMTUD_DISABLED \
                or (not self._ack_now and self.window_update_due()):
            return False
        self._sws_override = False  # what output() does when nothing new can go
        return True

    def _data_in(self, plen: int, got: int, now: float) -> None:
        """``got`` new in-order bytes arrived in a segment of ``plen``: Linux's receive-side
        bookkeeping (tcp_event_data_recv, tcp_measure_rcv_mss, tcp_grow_window) and its choice
        between an ACK now and a delayed one (__tcp_ack_snd_check): ACK at once when more than
        one receive MSS is unacknowledged (RFC 9293 §3.8.6.3: at least every second full-sized
        segment) or in quick-ACK mode; the caller arms the delayed ACK otherwise."""
        size = self.rx_gso_size or plen  # a GRO packet: its segments' size (tcp_measure_rcv_mss)
        if size > self.rcv_mss:
            adv = self.adv_mss
            self.rcv_mss = size if size < adv else adv
        elif size < self.rcv_mss:
            self._ack_pushed = True  # a short segment: the sender pushed (tcp_measure_rcv_mss)
        last = self.lrcvtime
        gap = None if last is None else now - last
        if gap is None or gap > self.rtt.rto:
            # the first data, or the sender idle longer than an RTO: quick-ACK mode for about
            # the window's worth of segments, at most 16 (Linux tcp_incr_quickack)
            quick = min(max(self.receive_window() // (2 * self.rcv_mss), 2), 16)
            if quick > self.quick_acks:
                self.quick_acks = quick
            if gap is None:
                self.ato = self.config.delack_timeout
        else:
            # the ACK timeout follows the gaps between data segments (tcp_event_data_recv)
            ato_min = self.config.delack_timeout
            if gap <= ato_min / 2:
                self.ato = self.ato / 2 + ato_min / 2
            elif gap < self.ato:
                self.ato = min(self.ato / 2 + gap, self.rtt.rto)
        self.lrcvtime = now
        # the receiver's RTT (Linux tcp_rcv_rtt_measure): the time a window of data takes to
        # arrive, its minimum kept
        if self.rcv_rtt_time is None or ((self.rcv_nxt - self.rcv_rtt_seq) & MASK) < HALF:
            if self.rcv_rtt_time is not None:
                sample = max(now - self.rcv_rtt_time, 1e-6)
                if not self.rcv_rtt or sample < self.rcv_rtt:
                    self.rcv_rtt = sample
            self.rcv_rtt_seq = self.rcv_adv
            self.rcv_rtt_time = now
        if self.rcv_autotune and now - self.rcvq_time >= self.rcv_rtt:
            self._rcvbuf_adjust(now)  # at most once a receiver RTT once that is known
        cap = self.recvbuf.capacity
        if plen >= 128 and self.rcv_ssthresh < cap:
            self.rcv_ssthresh = min(self.rcv_ssthresh + 2 * self.adv_mss, cap)
        self._unacked_bytes += got
        if self._unacked_bytes > self.rcv_mss or (self.quick_acks and not self.pingpong):
            self._ack_now = True

    def _rcvbuf_adjust(self, now: float) -> None:
        """Receive-buffer autotuning (Linux tcp_rcv_space_adjust, "dynamic right-sizing"): once
        per receiver RTT, when the application read more than in the RTT before, the buffer
        grows to twice that plus 16 segments, more while the rate is still growing (the sender
        in slow start doubles it each RTT), up to tcp_rmem's maximum; it never shrinks."""
        rb = self.recvbuf
        copied = rb.nxt - len(rb.ready)  # what the application has read
        space = self.rcvq_space
        if not space:  # the first data: start measuring (tcp_init_buffer_space)
            self.rcvq_space = min(10 * self.adv_mss, rb.capacity)
            self.rcvq_copied = copied
            self.rcvq_time = now
            return
        if not self.rcv_rtt or now - self.rcvq_time < self.rcv_rtt:
            return
        n = copied - self.rcvq_copied
        if n > space:
            win = 2 * n + 16 * self.adv_mss
            win += 2 * (win * (n - space) // space)
            win = min(win, self.config.rmem[2])
            if win > rb.capacity:
                rb.capacity = win
            self.rcvq_space = n
        self.rcvq_copied = copied
        self.rcvq_time = now

    def _delay_ack(self, now: float) -> None:
        """Arm the delayed ACK (Linux tcp_send_delayed_ack): the adaptive timeout, bounded by
        0.5 s (0.2 s when interactive or pushed) and by the smoothed RTT, never below the
        minimum nor above ``delack_max``; an ACK already due within a quarter of it goes now,
        and an earlier deadline stands."""
        cfg = self.config
        ato = self.ato
        if ato > cfg.delack_timeout:
            max_ato = cfg.delack_max if self.pingpong or self._ack_pushed else 0.5
            srtt = self.rtt.srtt
            if srtt is not None:
                max_ato = min(max_ato, max(srtt, cfg.delack_timeout))
            ato = min(ato, max_ato)
        if cfg.delack_max < ato:  # min(ato, delack_max), without the call (every other segment)
            ato = cfg.delack_max
        at = self.deadlines[DELACK_TIMER]
        if at is not None:
            if at <= now + ato / 4:
                self._ack_now = True
                return
            if at <= now + ato:
                return
        self._arm(DELACK_TIMER, now + ato)

    def _take_syn(self, seg: SegmentLike) -> None:
        """Record the peer's SYN: IRS, RCV.NXT and the options it offers (RFC 9293 §3.7.1,
        RFC 7323 §2.2/§3.2, RFC 2018)."""
        cfg = self.config
        self.irs = seg.seq
        self.rcv_nxt = seq_add(seg.seq, 1)
        self.rcv_ssthresh = min(self.recvbuf.free, 0xFFFF)  # what our SYN offers
        self.rcv_adv = seq_add(self.rcv_nxt, self.rcv_ssthresh)
        self.recvbuf.nxt = 0
        mss = seg.mss()
        if mss is not None:
            self.peer_mss = shared_int(mss)
        ws = seg.wscale()
        if ws is not None and cfg.window_scaling:
            self.wscale_ok = True
            self.snd_wscale = min(ws, 14)  # RFC 7323 §2.3: larger values are taken as 14
        else:
            self.wscale_ok = False
            self.snd_wscale = 0
            self.rcv_wscale = 0
        ts = seg.timestamps()
        if ts is not None and cfg.timestamps:
            self.ts_ok = True
            self.ts_recent = ts[0]
        else:
            self.ts_ok = False
        self.sack_ok = bool(cfg.sack and seg.sack_permitted())
        self.snd_mss = self._compute_snd_mss()
        self.cc.set_mss(self.snd_mss)

    def _rcv_syn_sent(self, seg: SegmentLike, now: float) -> None:
        flags = seg.flags
        ack_ok = False
        if flags & ACK:  # first check the ACK bit
            if seq_le(seg.ack, self.iss) or seq_gt(seg.ack, self.snd_max):
                if not flags & RST:
                    self._emit_rst(seg.ack, None)
                return
            ack_ok = True  # SND.UNA (= ISS) < SEG.ACK =< SND.NXT
            ts = seg.timestamps() if self.config.timestamps else None
            first = self.unacked_since  # our first SYN went then
            if ts is not None and ts[1] and first is not None and (
                    (ts[1] - self._ts_clock(first)) & MASK
                    > (self._ts_clock(now) - self._ts_clock(first)) & MASK):
                # TSecr is no TSval we sent (not between our first SYN's and now): refused
                # with a RST, like an unacceptable ACK (Linux PAWSActiveRejected)
                if not flags & RST:
                    self._emit_rst(seg.ack, None)
                return
        if flags & RST:  # second check the RST bit
            if ack_ok:
                self._fail(now, Event.RCV_RST, ConnectionRefusedError("TCP connection refused"),
                           "RST in SYN-SENT")
            return
        if not flags & SYN:  # fourth check the SYN bit; neither SYN nor RST: drop
            return
        self.ecn = _accecn.on_synack(self, seg)  # before the MSS: AccECN's option takes room
        self._take_syn(seg)
        # data queued beyond what our SYN carried (TCP Fast Open)
        waiting = len(self.sendbuf) > (self.tfo.syn_data if self.tfo is not None else 0)
        if ack_ok:
            self._ack_advance(seg.ack, now, seg.timestamps() if self.ts_ok else None)
            if self.tfo is not None and seq_gt(self.snd_una, self.iss):
                self.tfo.synack(self, seg)  # TCP Fast Open: the cookie cache, unacked SYN data
        if seq_gt(self.snd_una, self.iss):  # our SYN has been ACKed
            self.snd_wnd = seg.window
            self.max_sndwnd = max(self.max_sndwnd, self.snd_wnd)
            self.snd_wl1 = seg.seq
            self.snd_wl2 = seg.ack
            if waiting:
                # a writer waits for the connection (Linux sk_write_pending at the SYN-ACK,
                # tcp_finish_connect's lrcvtime): its data answering now is interactive
                self.lrcvtime = now
            self._move(now, Event.RCV_SYN_ACK)
            self._established(now)
            self._ack_now = True
            # data or FIN on a SYN,ACK: continue at the sixth step
            payload = seg.payload
            if payload or flags & FIN:
                self._process_text(seq_add(seg.seq, 1), payload, bool(flags & FIN), now)
        else:  # simultaneous open: <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>
            self.snd_wnd = seg.window
            self.max_sndwnd = max(self.max_sndwnd, self.snd_wnd)
            self.snd_wl1 = seg.seq
            self._move(now, Event.RCV_SYN, "simultaneous open")
            self.snd_nxt = self.iss
            self._rtt_seq = None

    def _established(self, now: float) -> None:
        self._arm(CONNECT_TIMER, None)
        self.retries = 0
        self._arm_keepalive(now)
        on_established(self)
        if self.snd_autotune:
            sndbuf.expand(self)  # the MSS is known now (tcp_init_buffer_space)
        if self.tfo is None or not self.tfo.reported:  # a TFO child was reported at its SYN
            self._events.append(Connected())

    def _acceptable(self, seq: int, seg_len: int, rcv_wnd: int) -> bool:
        """The segment acceptance test (RFC 9293 §3.10.7.4, first check)."""
        rcv_nxt = self.rcv_nxt
        if seg_len == 0:
            if rcv_wnd == 0:
                return seq == rcv_nxt
            return seq_le(rcv_nxt, seq) and seq_lt(seq, seq_add(rcv_nxt, rcv_wnd))
        if rcv_wnd == 0:
            return False
        end = seq_add(rcv_nxt, rcv_wnd)
        last = seq_add(seq, seg_len - 1)
        return (seq_le(rcv_nxt, seq) and seq_lt(seq, end)) or (
            seq_le(rcv_nxt, last) and seq_lt(last, end))

    def _rcv_synchronized(self, seg: SegmentLike, now: float) -> None:
        """RFC 9293 §3.10.7.4 in the synchronized states: the checks in the RFC's order, each
        a method that returns False when the segment is done with."""
        a = _Arriving(seg, seg.timestamps() if self.ts_ok else None)
        if self._time_wait_fin(a, now) or not self._paws(a, now) \
                or not self._repeated_syn(a):
            return
        if not self._check_sequence(a, now):  # first check (and RFC 7323 §4.3)
            return
        if not self._check_rst(a, now):  # second check (third, security: not applicable)
            return
        self._trim(a)  # the rest of the first check: keep what lies in the window
        if not self._check_syn(a, now):  # fourth check
            return
        if not self._check_ack(a, seg, now):  # fifth check
            return
        if a.plen and (self.user_closed or self.rcv_shutdown) \
                and self.state in (FIN_WAIT_1, FIN_WAIT_2):
            # new data after close() or shutdown(SHUT_RD) with our FIN sent: no one will read
            # it. Reset instead of ACKing and discarding it for ever (RFC 1122 §4.2.2.13,
            # RFC 2525 §2.17), as Linux (tcp_rcv_state_process, RCV_SHUTDOWN, TCPAbortOnData):
            # <SEQ=SEG.ACK><CTL=RST>
            self._emit_rst(seg.ack, None)
            self._fail(now, Event.ABORT, None, "data after close")
            return
        if a.flags & URG:  # sixth check, the URG bit (urgent.py)
            urgent.on_segment(self, seg)
        if a.plen or a.fin:  # seventh (segment text) and eighth (FIN) checks
            self._process_text(a.seq, a.payload, a.fin, now)

    def _time_wait_fin(self, a: _Arriving, now: float) -> bool:
        """TIME-WAIT: a retransmitted FIN is ACKed again and restarts 2*MSL (RFC 9293 §3.10.7.4,
        eighth check; the FIN is a duplicate so the acceptance test would drop it). True: done."""
        if self.state is TIME_WAIT and a.fin and not a.flags & RST \
                and seq_add(a.seq, a.seg_len) == self.rcv_nxt:
            self._arm(TIME_WAIT_TIMER, now + 2 * self.config.msl)
            self._ack_now = True
            return True
        return False

    def _paws(self, a: _Arriving, now: float) -> bool:
        """PAWS (RFC 7323 §5.3): a timestamp older than TS.Recent marks an old duplicate."""
        ts = a.ts
        if ts is not None and not a.flags & RST and seq_lt(ts[0], self.ts_recent):
            self.stats.paws_drops += 1
            self._oow_ack(now, a.plen > 0)
            return False
        return True

    def _repeated_syn(self, a: _Arriving) -> bool:
        """SYN-RECEIVED and the peer's SYN again: alone, it lost our SYN,ACK (send it again now,
        as Linux does); with an ACK it is the SYN,ACK of a simultaneous open, whose SYN we
        already have: strip it and let the ACK complete the handshake. The SYN is a duplicate,
        acknowledged at once with a D-SACK of it, as Linux's tcp_data_queue does (RFC 2883)."""
        if a.syn and self.state is SYN_RECEIVED and a.seq == self.irs and not a.flags & RST:
            if not a.flags & ACK:
                self.stats.unacceptable += 1
                self.snd_nxt = self.iss
                return False
            if self.sack_ok:
                self._dsack = (a.seq, seq_add(a.seq, 1))
                self.stats.dsacks_out += 1
            self._ack_now = True
            a.syn = False
            a.seq = seq_add(a.seq, 1)
            a.seg_len -= 1
        return True

    def _check_sequence(self, a: _Arriving, now: float) -> bool:
        """First check, the acceptance test (RFC 9293 §3.10.7.4 table); an unacceptable segment
        gets a (rate-limited) ACK, with a D-SACK for a duplicate (RFC 2883), unless it is a RST.
        Then RFC 7323 §4.3: whether its timestamp is the one to echo (taken only once the fifth
        check accepts the segment, RFC 7323 §5.3 + RFC 5961 §5.2: a forged in-window segment
        with an unacceptable ACK must not move TS.Recent, or PAWS would drop the real peer)."""
        a.rcv_wnd = rcv_wnd = max(0, seq_sub(self.rcv_adv, self.rcv_nxt))
        seq, plen = a.seq, a.plen
        if not self._acceptable(seq, a.seg_len, rcv_wnd):
            self.stats.unacceptable += 1
            if not a.flags & RST:
                if plen and self.sack_ok and seq_le(seq_add(seq, plen), self.rcv_nxt):
                    self._dsack = (seq, seq_add(seq, plen))
                    self.stats.dsacks_out += 1
                self._oow_ack(now, plen > 0)
            return False
        ts = a.ts
        a.ts_recent = ts is not None and seq_le(seq, self.last_ack_sent) \
            and seq_ge(ts[0], self.ts_recent)
        return True

    def _check_rst(self, a: _Arriving, now: float) -> bool:
        """Second check, the RST bit; with RFC 5961 §3.2 only an exact RCV.NXT match resets, one
        elsewhere in the window gets a challenge ACK."""
        if not a.flags & RST:
            return True
        st = self.state
        if a.seq != self.rcv_nxt:
            self._challenge_ack(now)
        elif st is SYN_RECEIVED and self.tfo is not None and self.tfo.child:
            # a TCP Fast Open child is the application's already: reset as when established
            self._fail(now, Event.RCV_RST, ConnectionResetError("TCP connection reset by peer"),
                       "RST in SYN-RECEIVED (TCP Fast Open child)")
        elif st is SYN_RECEIVED:
            if self.passive:
                self._fail(now, Event.RCV_RST_PASSIVE, None, "RST in SYN-RECEIVED")
                self._enter_closed()
            else:
                self._fail(now, Event.RCV_RST, ConnectionRefusedError("TCP connection refused"),
                           "RST in SYN-RECEIVED")
        elif st in (ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT):
            self._fail(now, Event.RCV_RST, ConnectionResetError("TCP connection reset by peer"),
                       f"RST in {st}")
        else:  # CLOSING, LAST-ACK, TIME-WAIT
            self._fail(now, Event.RCV_RST, None, f"RST in {st}")
        return False

    def _trim(self, a: _Arriving) -> None:
        """Keep only the new bytes that fit the window (RFC 9293 §3.10.7.4: duplicates and
        overlaps are cut on the left, what lies beyond RCV.NXT + RCV.WND on the right)."""
        rcv_nxt = self.rcv_nxt
        plen = a.plen
        if seq_lt(a.seq, rcv_nxt):
            drop = seq_sub(rcv_nxt, a.seq)
            if a.syn:
                a.syn = False
                drop -= 1
                a.seq = seq_add(a.seq, 1)
            if plen and self.sack_ok:
                self._dsack = (a.seq, seq_add(a.seq, min(drop, plen)))  # RFC 2883 §4.1.1
                self.stats.dsacks_out += 1
            if drop >= plen:
                if drop > plen:
                    a.fin = False  # the FIN too was seen before
                a.payload = b""
                if plen:
                    self.stats.dup_segments += 1
                    self._ack_now = True  # duplicate data: ACK it at once (with the D-SACK)
            else:
                a.payload = memoryview(a.payload)[drop:]
            a.seq = seq_add(a.seq, drop)
            a.plen = plen = len(a.payload)
        if plen:
            right = seq_add(rcv_nxt, a.rcv_wnd)
            if seq_gt(seq_add(a.seq, plen), right):
                a.plen = keep = max(0, seq_sub(right, a.seq))
                a.payload = memoryview(a.payload)[:keep]
                a.fin = False

    def _check_syn(self, a: _Arriving, now: float) -> bool:
        """Fourth check, the SYN bit: a challenge ACK (RFC 5961 §4); a passive open's
        SYN-RECEIVED TCB goes instead."""
        if not a.syn:
            return True
        if self.state is SYN_RECEIVED and self.passive:
            self._fail(now, Event.RCV_RST_PASSIVE, None, "SYN in SYN-RECEIVED")
            self._enter_closed()
            return False
        self._challenge_ack(now)
        return False

    def _check_ack(self, a: _Arriving, seg: SegmentLike, now: float) -> bool:
        """Fifth check, the ACK field: completes the handshake in SYN-RECEIVED; RFC 5961 §5.2
        acceptance; new data acknowledged, a duplicate ACK (RFC 5681 §2, RFC 6675 §2), the send
        window (SND.WL1/SND.WL2); our FIN acknowledged in the closing states."""
        if not a.flags & ACK:
            return False
        ack = seg.ack
        st = self.state
        if st is SYN_RECEIVED:
            if not (seq_lt(self.snd_una, ack) and seq_le(ack, self.snd_max)):
                self._emit_rst(ack, None)
                return False
            self.snd_wnd = seg.window << self.snd_wscale
            self.max_sndwnd = max(self.max_sndwnd, self.snd_wnd)
            self.snd_wl1 = seg.seq
            self.snd_wl2 = ack
            self._move(now, Event.RCV_ACK_OF_SYN)
            self._established(now)
            st = self.state
        una, snd_max = self.snd_una, self.snd_max
        # (SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT, else a challenge ACK and a drop
        if seq_gt(ack, snd_max) or seq_lt(ack, seq_add(una, -self.max_sndwnd)):
            self._challenge_ack(now)
            return False
        ts = a.ts
        if a.ts_recent and ts is not None:
            self.ts_recent = ts[0]  # RFC 7323 §4.3, the segment now accepted
        wnd = seg.window << self.snd_wscale
        sacked0, dsacks0 = self.rec.sacked.total, self.stats.dsacks_in
        newly_sacked = self._take_sack(seg) if self.sack_ok and seg.sack_blocks() else 0
        if seq_gt(ack, una):
            self._ack_advance(ack, now, a.ts)
            if newly_sacked and self.recover is None:
                self._maybe_enter_recovery(now)
        elif ack == una and snd_max != una and wnd and (  # a zero window answers a probe
                newly_sacked > 0 if self.sack_ok
                else (a.plen == 0 and not a.fin and wnd == self.snd_wnd)):
            self._on_dupack(now)
        if self.sack_ok and (seq_gt(ack, una) or seg.sack_blocks() or not a.plen):
            self._after_ack(una, ack, sacked0, dsacks0, bool(seg.sack_blocks()),
                            a.ts[1] if a.ts is not None else None, now)
        # the window (SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK))
        wl1, sseq = self.snd_wl1, seg.seq
        if seq_lt(wl1, sseq) or (wl1 == sseq and seq_le(self.snd_wl2, ack)):
            if wnd != self.snd_wnd and self.trace is not None:
                self.trace(now, "window", {"snd_wnd": wnd})
            self.snd_wnd = wnd
            self.snd_wl1 = sseq
            self.snd_wl2 = ack
            if wnd > self.max_sndwnd:
                self.max_sndwnd = wnd
            if wnd > 0 and self.deadlines[PERSIST_TIMER] is not None:
                self._arm(PERSIST_TIMER, None)
                self.persist_backoff = 0
                self.pmtu_keep = None
                self.snd_nxt = self.snd_una  # what went beyond the closed window was dropped
        if st is ESTABLISHED:  # (our FIN is only queued from the closing states)
            return True
        fin_acked = self.fin_seq is not None and self.snd_una == seq_add(self.fin_seq, 1)
        if st is FIN_WAIT_1 and fin_acked:
            self._move(now, Event.RCV_ACK_OF_FIN)
            if self.user_closed:
                self._arm(FIN_WAIT_2_TIMER, now + self.config.fin_wait_2_timeout)
                self._report_lost(None)
        elif st is CLOSING or st is LAST_ACK:
            if fin_acked:
                self._move(now, Event.RCV_ACK_OF_FIN)
            return False
        return True

    def _challenge_ack(self, now: float) -> None:
        """RFC 5961 §3.2/§4.2/§5.2: answer a suspicious segment with an ACK carrying our
        RCV.NXT, rate-limited as Linux's tcp_send_challenge_ack: first per connection (the
        interval of the out-of-window ACKs, shared with them), then by the host's budget
        (RFC 5961 §7, tcp_challenge_ack_limit). The per-connection limit keeps an attacker's
        own connection from reading the host's budget (CVE-2016-5696)."""
        ok = self.challenge_ack_ok
        if self._oow_limited(now) or (ok is not None and not ok(now)):
            self.stats.challenge_acks_limited += 1
            return
        self.stats.challenge_acks += 1
        self._ack_now = True

    def _oow_limited(self, now: float) -> bool:
        """Linux __tcp_oow_rate_limited: at most one ACK to invalid segments per
        ``config.invalid_ratelimit`` s per connection (tcp_invalid_ratelimit; 0 turns it off),
        so two endpoints that disagree, or a stream of garbage, cannot start an ACK storm.
        True: this one is not sent."""
        at = self._oow_ack_at
        if at >= 0 and 0 <= now - at < self.config.invalid_ratelimit:
            return True
        self._oow_ack_at = now
        return False

    def _oow_ack(self, now: float, has_data: bool) -> None:
        """The duplicate ACK owed to an unacceptable segment. Segments with data always get one
        (a lost ACK must be repaired; Linux tcp_oow_rate_limited), empty ones are
        rate-limited."""
        if has_data or not self._oow_limited(now):
            self._ack_now = True
        else:
            self.stats.oow_acks_limited += 1

    def _process_text(self, seq: int, payload: Any, fin: bool, now: float) -> None:
        """Seventh (segment text) and eighth (FIN) checks, with out-of-order reassembly."""
        st = self.state
        plen = len(payload)
        rb = self.recvbuf
        off = seq_sub(seq, self.rcv_nxt) + rb.nxt  # the stream offset of SEG.SEQ
        if plen and st in CAN_RECEIVE and (
                self.rcv_fin_off is None or off + plen <= self.rcv_fin_off):
            had_holes = rb.ooo_bytes > 0
            got: int | None
            if off == rb.nxt and not had_holes:  # in order, nothing held: append
                rb.ready += payload
                rb.nxt = off + plen
                got = plen
            else:
                got = rb.insert(off, payload)
            if got is None:
                self.stats.ooo_dropped += 1
                self._ack_now = True
            elif got > 0:
                self.rcv_nxt = seq_add(self.rcv_nxt, got)
                self.stats.bytes_received += got
                self._events.append(DataReceived(got))
                self._data_in(plen, got, now)
                if had_holes:
                    self._ack_now = True  # filled a hole: ACK at once (RFC 5681 §4.2)
                elif not self._ack_now:
                    self._delay_ack(now)
            else:
                self.stats.ooo_segments += 1
                self._ack_now = True  # out of order: immediate duplicate ACK (RFC 5681 §4.2)
                if self.sack_ok:
                    if not self._sack_recent:  # never the shared empty list (tcbvars)
                        self._sack_recent = []
                    self._sack_recent.append(off)
                    if len(self._sack_recent) > 16:
                        del self._sack_recent[:8]
        if fin and self.rcv_fin_off is None:
            self.rcv_fin_off = off + plen
        if self.rcv_fin_off is not None and not self.fin_received \
                and self.recvbuf.nxt == self.rcv_fin_off:
            self._rcv_fin(now)

    def _rcv_fin(self, now: float) -> None:
        self.fin_received = True
        self.rcv_nxt = seq_add(self.rcv_nxt, 1)
        self._ack_now = True
        self._events.append(EofReceived())
        st = self.state
        if st in (SYN_RECEIVED, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2):
            self._move(now, Event.RCV_FIN)

    def _ack_advance(self, ack: int, now: float, ts: tuple[int, int] | None) -> None:
        """SND.UNA < SEG.ACK =< SND.MAX: free acknowledged data, take an RTT sample, restart
        the retransmission timer (RFC 6298 §5.3). ``ts``: the segment's timestamps (None
        without)."""
        una_before = self.snd_una
        flight = seq_sub(self.snd_max, una_before)
        data_una = self.snd_data_una
        n = seq_sub(ack, data_una)  # bytes of data acknowledged (the SYN or FIN may be in it)
        sendbuf = self.sendbuf
        if n > 0:
            queued = len(sendbuf.data)
            if n > queued:
                n = queued
        # cwnd grows by what this ACK delivered (Linux tcp_ack's acked_sacked): bytes the peer
        # reported earlier by SACK, or by duplicate ACKs without SACK (tcp_add_reno_sack), were
        # delivered then and count not again
        delivered = n
        if n > 0 and self.sack_ok and len(self.rec.sacked):
            delivered = n - self.rec.sacked.covered_between(sendbuf.base, sendbuf.base + n)
        elif n > 0 and self.dupacks:
            delivered = max(n - self.dupacks * self.snd_mss, 0)
        if n > 0:
            sendbuf.ack(n)
            self.snd_data_una = seq_add(data_una, n)
            self.stats.bytes_acked += n
            if self.zerocopy is not None:  # SO_ZEROCOPY: acked sends complete (zerocopy.py)
                self.zerocopy.acked(sendbuf.base)
            if self.tstamp is not None:  # SO_TIMESTAMPING: ACK reports (tstamp.py)
                self.tstamp.acked(sendbuf.base, now)
        self.snd_una = ack
        if seq_lt(self.snd_nxt, ack):
            self.snd_nxt = ack
        if self.plpmtud.probe_seq is not None and self.plpmtud.on_ack(ack, now):
            self._plpmtud_sync(now, "probe acked")
        # stream position of ACK (_abs, with the buffer's base and SND.UNA of data just moved)
        ack_pos = sendbuf.base + seq_sub(ack, self.snd_data_una)
        acked = self.sent.acked(ack_pos)  # the transmission records now delivered (sent.py)
        sample = None
        if ts is not None and ts[1]:
            # RFC 7323 §4: the TSecr of the ACK that advanced SND.UNA; while data resent by a
            # timeout is being acknowledged, only an echo of a transmission made since the
            # timeout is unambiguous (Karn, RFC 6298 §3): an older echo, from ACKs lost before
            # it, would measure the whole outage and inflate the RTO to its maximum
            rto_tsval = self.rto_tsval
            if rto_tsval is None or ((ts[1] - rto_tsval) & MASK) < HALF:
                sample = ((int(now * 1000) + self.ts_offset - ts[1]) & MASK) / 1000.0
        elif self._rtt_seq is not None and seq_ge(ack, self._rtt_seq):  # our SYN's
            sample = now - self._rtt_time
            self._rtt_seq = None
        elif ts is None:
            sample = ack_sample(acked, now)  # without timestamps: per ACK, from the records
        rtt = self.rtt
        if sample is not None and sample < 3600:
            rtt.update(sample)
            if self.trace is not None:
                self.trace(now, "rtt", {"rtt": sample, "srtt": rtt.srtt, "rto": rtt.rto})
        rtt.on_new_ack()
        self.retries = 0
        self.rec.on_cumulative_ack(ack_pos)
        self.rack.on_delivered(acked, now, self.snd_mss, True)
        if self.rate is not None and self.cc.owns_cwnd and self.sack_ok:
            self.rate.acked += acked  # BBR samples every ACK, after loss detection (_after_ack)
        elif self.rate is not None:  # the controller's per-ACK sample (rate.py), before on_ack
            rs = self.rate.on_ack(acked, self.sent, self._abs(ack), self._abs(self.snd_max),
                                  self.rec.sacked, now, flight, self._in_flight())
            rs.ca_state = self._ca_state
            self.cc.on_rate_sample(rs, now)
        if self.rto_recover is not None and seq_ge(ack, self.rto_recover):
            self.rto_recover = None
            self.rto_tsval = None
        if self.recover is not None:
            if seq_ge(ack, self.recover):
                self._end_recovery(now)
            else:
                self._partial_ack(seq_sub(ack, una_before), now)
        elif self.ecn is None or not self.ecn.cwr_ack(self, seq_sub(ack, una_before), now):
            # cwnd grows only while it limits the sender (RFC 7661 §4.3, Linux); not while
            # ECN's reduction (ecn.py) sets it
            self.cc.on_ack(delivered if n > 0 and self.cwnd_limited() else 0, flight, now,
                           sample)
        if self.pacer is not None:  # the pacing rate follows cwnd/SRTT or the controller
            self.pacer.update(self.cc, rtt.srtt, flight)
        self.dupacks = 0
        snd_max = self.snd_max
        if self.unacked_since is not None:
            self._set_unacked_since(None if ack == snd_max else now)
        self._arm(RTO_TIMER, None if ack == snd_max else now + rtt.rto)
        schedule_tlp(self, now, True)
        if n > 0:
            self._space_at = len(self._events)  # a SendSpace there: receive()'s tail
            if ack == snd_max:
                chrono.on_acked_all(self, now)  # BUSY stops (chrono.py)

    def _ack_predicted(self, seg: SegmentLike, now: float) -> bool:
        """The sender's header prediction (Linux tcp_ack without FLAG_SLOWPATH work, BSD's
        "pure ACK for outstanding data"): in ESTABLISHED, CLOSE-WAIT or FIN-WAIT-1, an ACK
        without data, SYN/FIN/RST/URG or SACK blocks, at RCV.NXT with an acceptable timestamp,
        that acknowledges new data below our FIN and opens a window, in the Open state (no
        loss recovery or scoreboard, no timeout being recovered from, no tail loss or PLPMTUD
        probe out, no SYN to time without a timestamp) with no pacing, ECN, zero-copy, timestamping
        reports, trace or controller of its own cwnd. It does in one pass what
        ``_rcv_synchronized`` (fifth check: ``_ack_advance``, ``_after_ack``, the window) and
        ``receive``'s tail (``output``, ``sndbuf.check_space``) would, each bookkeeping once,
        and returns True; otherwise it returns False having changed nothing."""
        st = self.state
        if seg.flags & _PREDICTED_FLAGS != ACK or seg.seq != self.rcv_nxt or not (
                st is ESTABLISHED or st is CLOSE_WAIT or st is FIN_WAIT_1):
            return False
        opts = seg.engine_options()  # (its timestamps and SACK blocks, in one call)
        if self.ts_ok:
            ts = opts[4]
            if ts is None or ((ts[0] - self.ts_recent) & MASK) >= HALF:
                return False  # none (the general path samples from the records), or PAWS's
        else:
            ts = None
        ack = seg.ack
        una = self.snd_una
        snd_max = self.snd_max
        n = (ack - una) & MASK  # bytes of data acknowledged (SND.UNA is the buffer's base)
        wnd = seg.window << self.snd_wscale
        fin_seq = self.fin_seq
        rec = self.rec
        cc = self.cc
        if not n or n > ((snd_max - una) & MASK) or not wnd or una != self.snd_data_una \
                or (fin_seq is not None and ack == (fin_seq + 1) & MASK) \
                or self.recover is not None or self.rto_recover is not None or self.dupacks \
                or rec.sacked.starts or rec.in_recovery or (self.sack_ok and opts[3]) \
                or self.deadlines[PERSIST_TIMER] is not None \
                or (self._rtt_seq is not None and not (ts is not None and ts[1])) \
                or self.plpmtud.probe_seq is not None \
                or self.rack.tlp_end is not None or cc.owns_cwnd or self.trace is not None \
                or self.ecn is not None or self.pacer is not None or self.zerocopy is not None \
                or self.tstamp is not None:
            return False
        seq = seg.seq
        if ts is not None and ((self.last_ack_sent - seq) & MASK) < HALF:
            self.ts_recent = ts[0]  # RFC 7323 §4.3
        # -- _ack_advance: free the data, the RTT sample, the records, cc (RFC 6298 §5.3) --
        flight = (snd_max - una) & MASK
        sendbuf = self.sendbuf
        sendbuf.ack(n)
        self.snd_data_una = self.snd_una = ack
        self.stats.bytes_acked += n
        nxt = self.snd_nxt
        if nxt != ack and ((ack - nxt) & MASK) < HALF:
            self.snd_nxt = nxt = ack
        pos = sendbuf.base  # the stream position of SEG.ACK
        acked = self.sent.acked(pos)
        sample = None
        if ts is not None:
            if ts[1]:  # RFC 7323 §4 (Karn after a timeout: _ack_advance)
                rto_tsval = self.rto_tsval
                if rto_tsval is None or ((ts[1] - rto_tsval) & MASK) < HALF:
                    sample = ((int(now * 1000) + self.ts_offset - ts[1]) & MASK) / 1000.0
        else:
            sample = ack_sample(acked, now)
        rtt = self.rtt
        if sample is not None and sample < 3600:
            rtt.update(sample)
        if rtt._backoff:  # (on_new_ack has nothing to do otherwise)
            rtt.on_new_ack()
        self.retries = 0
        if rec.retrans.starts or rec.lost.starts:
            rec.on_cumulative_ack(pos)
        self.rack.on_delivered(acked, now, self.snd_mss, True)
        rate = self.rate
        if rate is not None:  # the controller's per-ACK sample (rate.py), before on_ack
            d = (nxt - ack) & MASK  # (seq_sub(SND.NXT, SEG.ACK): what stays in flight)
            rs = rate.on_ack(acked, self.sent, pos, pos + ((snd_max - ack) & MASK), rec.sacked,
                             now, flight, d - MOD if d > HALF else d)
            rs.ca_state = OPEN
            cc.on_rate_sample(rs, now)
        # (cwnd_limited, written out)
        cc.on_ack(n if self.is_cwnd_limited or (cc.cwnd < cc.ssthresh
                                                  and cc.cwnd < 2 * self.max_flight) else 0,
                  flight, now, sample)
        if self.unacked_since is not None:
            if self.config.user_timeout is None:  # (_set_unacked_since without a user timeout)
                self.unacked_since = None if ack == snd_max else now
            else:
                self._set_unacked_since(None if ack == snd_max else now)
        self._arm(RTO_TIMER, None if ack == snd_max else now + rtt.rto)
        # the probe timeout restarts (rack.py): below, where output() sends no new data, which
        # restarts it itself; here, before RACK's detection, if that may run (it moves timers)
        rack = self.rack
        tlp_now = self.sack_ok and rec.rack_mode and rack.advanced and rack.xmit_retrans
        if tlp_now:
            schedule_tlp(self, now, True)
        if ack == snd_max:
            chrono.on_acked_all(self, now)  # BUSY stops (chrono.py)
        if self.sack_ok:  # _after_ack: RACK (rack.py)
            after_open_ack(self, now, pos, n, ts[1] if ts is not None else None)
        # -- the window (SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK)) --
        wl1 = self.snd_wl1
        if (wl1 != seq and ((seq - wl1) & MASK) < HALF) or (
                wl1 == seq and ((ack - self.snd_wl2) & MASK) < HALF):
            self.snd_wnd = wnd
            self.snd_wl1 = seq
            self.snd_wl2 = ack
            if wnd > self.max_sndwnd:
                self.max_sndwnd = wnd
        # -- receive()'s tail --
        top = self.snd_max
        self.output(now)
        if not tlp_now and self.snd_max == top:
            schedule_tlp(self, now, True)
        woke, free = sndbuf.after_ack(self)  # check_space and write_space in one
        if woke:  # a blocked writer's wake-up
            self.chrono.stop(chrono.SNDBUF_LIMITED, now, chrono.queues_empty(self))
        cc = self.cc
        traced = self._cwnd_traced
        if cc.cwnd != traced[0] or cc.ssthresh != traced[1]:
            if self.config.record_cwnd:
                self._trace_cwnd(now)
            else:  # (_trace_cwnd without the log; no trace here)
                self._cwnd_traced = (cc.cwnd, cc.ssthresh)
        if free is not None:  # (_space_freed's other cases: no zero-copy here, not CLOSED)
            self._space_freed(len(self._events), free)
        return True

    def _space_freed(self, at: int, free: int | None) -> None:
        """This segment's ACK freed send-buffer data: a SendSpace at ``at`` in the events, in
        their order, with the room left after the output and the buffer's growth that
        followed, if a write would take at least one byte now (``free``: sndbuf.write_space), as the
        application hears of it then: after a large write the buffer stays over its limit for
        many ACKs, each freeing less than a new buffer's worth, and a writer told of them
        would take nothing (issue 23; Linux wakes a writer only once the socket is writeable,
        sk_stream_write_space). Always after the connection closed, and with zero-copy
        sends: it reports their completion (packetdrill/sockets.py)."""
        if free is None and (self.zerocopy is not None or self.state is CLOSED):
            free = sndbuf.wspace(self)
        if free is not None:
            self._events.insert(at, SendSpace(free))

    def _after_ack(self, una: int, ack: int, sacked0: int, dsacks0: int, sack_blocks: bool,
                   tsecr: int | None, now: float) -> None:
        """RACK-TLP and PRR (rack.py) after an ACK moved SND.UNA or the scoreboard: what it
        delivered is what SND.UNA advanced plus what the scoreboard grew by."""
        advanced = seq_gt(ack, una)
        lost0 = self.rec.lost_total
        after_ack(self, now, (seq_sub(ack, una) if advanced else 0)
                  + self.rec.sacked.total - sacked0, advanced,
                  self.stats.dsacks_in - dsacks0, sack_blocks, tsecr)
        if self.rate is not None and self.cc.owns_cwnd:  # rate.py: BBR's sample of every ACK
            self._sample_every_ack(now, self.rec.lost_total - lost0)

    @property
    def _ca_state(self) -> int:
        """The loss state a rate sample reports (rate.py; Linux icsk_ca_state)."""
        return LOSS if self.rto_recover is not None else \
            RECOVERY if self.recover is not None else OPEN

    def _sample_every_ack(self, now: float, losses: int) -> None:
        """The delivery-rate sample of this ACK for a controller that sets cwnd itself, taken
        as Linux's tcp_ack takes it for cong_control: on every ACK (what it SACKed or
        cumulatively acknowledged), after loss detection, with the bytes newly marked lost and
        the loss state; then the pacing rate follows."""
        rate = self.rate
        assert rate is not None
        acked, rate.acked = rate.acked, []
        in_flight = self._in_flight()
        rs = rate.on_ack(acked, self.sent, self._abs(self.snd_una), self._abs(self.snd_max),
                         self.rec.sacked, now, 0, in_flight, self.rec.new_sacked)
        rs.prior_in_flight = in_flight + rs.newly_delivered + losses  # before this ACK
        rs.losses = losses
        rs.ca_state = self._ca_state
        self.cc.on_rate_sample(rs, now)
        if self.pacer is not None:
            self.pacer.update(self.cc, self.rtt.srtt, in_flight)

    def _on_dupack(self, now: float) -> None:
        self.dupacks += 1
        self.stats.dup_acks_in += 1
        flight = seq_sub(self.snd_max, self.snd_una)
        if self.dupacks == DUPACK_THRESHOLD and self.plpmtud.probe_at(self.snd_una):
            self._plpmtud_probe_lost(now)  # not a congestion signal: no fast recovery
            return
        if self.recover is not None:
            if not self.rec.sack_mode:
                self.rec.inflation += self.snd_mss  # RFC 5681 §3.2 step 4
            return
        del flight
        self._maybe_enter_recovery(now)

    # -- PLPMTUD (RFC 4821; the state machine is in plpmtud.py) ------------------------------------
    def _plpmtud_sync(self, now: float, why: str) -> None:
        old = self.snd_mss
        self.snd_mss = self._compute_snd_mss()
        self.cc.mss = self.snd_mss
        if self.trace is not None and self.snd_mss != old:
            self.trace(now, "plpmtud", {"why": why, "mss": self.snd_mss, "old_mss": old,
                                        "state": self.plpmtud.state.value})

    def _plpmtud_on_rto(self, now: float) -> None:
        if self.state in (SYN_SENT, SYN_RECEIVED):
            return
        head = min(self.snd_mss, seq_sub(self.snd_max, self.snd_una))
        if self.own_plpmtud().on_rto(self.retries, head, now):
            self._plpmtud_sync(now, "black hole: repeated timeouts of full-size segments")

    def _plpmtud_probe_lost(self, now: float) -> None:
        """Duplicate ACKs point at the probe: it did not fit. Resend its bytes in segments of
        the current MSS; cwnd stays (Linux tcp_mtup_probe_failed + tcp_simple_retransmit)."""
        p = self.plpmtud
        end = p.probe_end
        p.on_probe_lost(now)
        seq = self.snd_una
        while seq_lt(seq, end):
            off = seq_sub(seq, self.snd_data_una)
            n = min(self.snd_mss, seq_sub(end, seq), len(self.sendbuf) - off)
            if n <= 0:
                break
            self.stats.retransmits += 1
            self.stats.bytes_retrans += n
            if self.trace is not None:
                self.trace(now, "retransmit", {"seq": seq, "len": n, "why": "mtu probe lost"})
            self._emit(seq, ACK, self.sendbuf.peek(off, n), now)
            seq = seq_add(seq, n)

    # -- loss recovery (RFC 5681, RFC 6582, RFC 6675; the scoreboard is in recovery.py) ---------
    def _take_sack(self, seg: SegmentLike) -> int:
        """Read the SACK blocks of an ACK into the scoreboard; returns newly SACKed bytes."""
        blocks = seg.sack_blocks()
        if not blocks:
            return 0
        una, smax = self.snd_una, self.snd_max
        lo = seq_add(una, -(self.max_sndwnd + 65536))
        pos = []
        for left, right in blocks[:4]:
            # ignore blocks that are not plausible (beyond SND.MAX or far below SND.UNA)
            if not (seq_lt(left, right) and seq_le(right, smax) and seq_ge(left, lo)):
                continue
            pos.append(self.sent.whole(self._abs(left), self._abs(right)))  # sent.py
        if not pos:
            return 0
        before = self.rec.dsacks
        new = self.rec.on_sack(self._abs(una), self._abs(smax), pos, self._abs(seg.ack))
        if self.rec.dsacks != before:
            self.stats.dsacks_in += self.rec.dsacks - before
            if self.rec.rack_mode and self.rec.last_dsack is not None:
                # before the cumulative ACK drops the records it covers (Linux tags the rtx
                # queue at prior_snd_una, then cleans it)
                self.rack.on_dsack_block(*self.rec.last_dsack, self.snd_mss)
        return new

    def _maybe_enter_recovery(self, now: float) -> None:
        """Fast retransmit (RFC 5681 §3.2 / RFC 6675 §5): DupThresh duplicate ACKs, or with
        SACK the first unacknowledged segment deemed lost by the scoreboard. Not again for
        losses in a window already recovered from by a timeout (RFC 6582 "recover")."""
        if self.recover is not None or self.snd_una == self.snd_max:
            return
        if self.state in (SYN_SENT, SYN_RECEIVED):
            return
        una_pos = self._abs(self.snd_una)
        if self.rec.rack_mode:  # RFC 8985: a loss RACK detected (rack.py), not DupThresh
            lost = self.rec.lost_bytes() > 0
        else:
            lost = self.dupacks >= DUPACK_THRESHOLD or (
                self.sack_ok and self.rec.is_lost(una_pos, una_pos, self.snd_mss))
        if not lost:
            return
        if self.rto_recover is not None and not seq_gt(self.snd_una, self.rto_recover):
            return
        flight = seq_sub(self.snd_max, self.snd_una)
        self.recover = self.snd_max
        self.rec.enter(self._abs(self.snd_max), sack_mode=self.sack_ok)
        self.own_prr().start(self.cc.cwnd // self.snd_mss)  # RecoverFS: cwnd before it
        self.own_undo().start(self.cc.cwnd, self.cc.ssthresh)
        if self.ecn is None or not self.ecn.loss_in_cwr(self):  # not twice a window (ecn.py)
            self.cc.on_congestion_event(flight, now)
        if not self.sack_ok:
            self.rec.inflation = DUPACK_THRESHOLD * self.snd_mss  # cwnd = ssthresh + 3*SMSS
        self.stats.fast_retransmits += 1
        self.stats.recoveries += 1
        if self.trace is not None:
            self.trace(now, "recovery", {"enter": True, "sack": self.sack_ok,
                                         "recover": self.recover, "flight": flight})
        if not self.sack_ok:
            self._retransmit_head(now, "fast retransmit")
        # with SACK, PRR lets the fast retransmit out on this ACK (rack.after_ack, output)
        self._arm(RTO_TIMER, now + self.rtt.rto)
        self._trace_cwnd(now)

    def _partial_ack(self, acked: int, now: float) -> None:
        """An ACK below ``recover`` during fast recovery (RFC 6582 §3.2 step 5): without SACK the
        next hole is resent at once and the window deflated by what was acked (plus one SMSS
        back); with SACK the scoreboard drives what goes out next (output)."""
        rec = self.rec
        if rec.sack_mode:
            return
        self._retransmit_head(now, "partial ack")
        rec.inflation -= acked
        if acked >= self.snd_mss:
            rec.inflation += self.snd_mss

    def _end_recovery(self, now: float) -> None:
        """A full ACK (covers ``recover``): leave fast recovery. NewReno sets cwnd to
        min(ssthresh, max(FlightSize, SMSS) + SMSS) (RFC 6582 §3.2 step 6, option 1)."""
        cc = self.cc
        if not self.rec.sack_mode:
            flight = seq_sub(self.snd_max, self.snd_una)
            cc.cwnd = min(cc.ssthresh, max(flight, self.snd_mss) + self.snd_mss)
        else:
            if not cc.owns_cwnd:  # PRR's end (RFC 6937 §3, Linux tcp_end_cwnd_reduction)
                cc.cwnd = cc.ssthresh
            self.rack.on_recovery_end()
        cc.on_recovery_end(now)
        self.rec.leave()
        self.recover = None
        if self.trace is not None:
            self.trace(now, "recovery", {"enter": False})

    def _trace_cwnd(self, now: float) -> None:
        cw, ss = self.cc.cwnd, self.cc.ssthresh
        if (cw, ss) == self._cwnd_traced:
            return
        self._cwnd_traced = (cw, ss)
        if self.config.record_cwnd:
            log = self.cwnd_log
            if not log:  # never the shared empty list (tcbvars)
                self.cwnd_log = log = []
            log.append((now, cw, ss))
            if len(log) > 4096:  # bounded: keep every other sample of the older half
                del log[:2048:2]
        if self.trace is not None:
            self.trace(now, "cwnd", {"cwnd": cw, "ssthresh": min(ss, 1 << 30),
                                     "cc": self.cc.name, "recovery": self.recover is not None})

    # -- introspection ----------------------------------------------------------------------------
    def tcp_info(self) -> dict[str, Any]:
        """A ``struct tcp_info``-like snapshot (times in seconds)."""
        return {
            "state": self.state.value,
            "rto": self.rtt.rto,
            "srtt": self.rtt.srtt,
            "rttvar": self.rtt.rttvar,
            "snd_mss": self.snd_mss,
            "rcv_mss": self.rcv_mss,
            "snd_wscale": self.snd_wscale,
            "rcv_wscale": self.rcv_wscale,
            "timestamps": self.ts_ok,
            "sack": self.sack_ok,
            "cwnd": self.cc.cwnd,
            "ssthresh": self.cc.ssthresh,
            "congestion": self.cc.name,
            "snd_wnd": self.snd_wnd,
            "rcv_wnd": max(0, seq_sub(self.rcv_adv, self.rcv_nxt)),
            "unacked": seq_sub(self.snd_max, self.snd_una),
            "send_queue": len(self.sendbuf),
            "recv_queue": len(self.recvbuf),
            "retries": self.retries,
            "ecn": self.ecn is not None,
            "ecn_figures": self.ecn.figures(self.stats) if self.ecn is not None else None,
            **asdict(self.stats),
        }


__all__ = ["Tcb"]
