"""The variables of one TCP connection (RFC 9293 §3.3.1 and the extensions' state): what
:class:`~.output.TcbOutput` (sending) and :class:`~.tcb.Tcb` (arrival, timers, user calls) work
on, with the conversions between sequence numbers and stream positions.

Sequence space: SND.UNA <= SND.NXT <= SND.MAX (BSD's ``snd_max``: the highest sequence number sent;
after a timeout SND.NXT goes back to SND.UNA and the normal output path resends, go-back-N).
Stream offsets (byte 0 = first byte after the SYN) index the send and receive buffers.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, cast

from stacklab.stack.route import RouteMetrics
from stacklab.wire.checksum import pseudo_header
from stacklab.wire.proto import PROTO_TCP

from . import route_metrics
from .buffers import ReceiveBuffer, SendBuffer
from .chrono import Chrono
from .config import (
    DEFAULT_MSS_V4,
    DEFAULT_MSS_V6,
    TS_OPT_LEN,
    TcpConfig,
    TcpStats,
    initial_recv_buffer,
    our_wscale,
    shared_int,
    unconnected_send_buffer,
)
from .congestion import create_congestion
from .ecn import Ecn
from .events import TcbEvent
from .fsm import CLOSED, State
from .pacing import Pacer, pacer_for
from .plpmtud import Plpmtud, plpmtud_for
from .prr import Prr
from .rack import Rack
from .rate import DeliveryRate
from .recovery import RangeSet, Recovery
from .rtt import RttEstimator
from .segment import Segment
from .sent import SentLog
from .seq import MASK, seq_add, seq_sub
from .sndbuf import NO_SKBS
from .tfo import TfoConn
from .timers import KINDS, USER_TIMER, Timer
from .tstamp import TxTimestamps
from .undo import Undo
from .zerocopy import ZeroCopy

# the empty lists every TCB starts with for two logs most never fill (0.1 KiB per idle
# connection end, issue 23 item 4); never mutated
_NO_OFFSETS: list[int] = []
_NO_SAMPLES: list[tuple[float, int, int]] = []
_N_KINDS = len(KINDS)
_NO_DEADLINES: list[float | None] = [None] * _N_KINDS  # no timer set (TcbVars._arm)
_NO_PRR = Prr()  # before the first cwnd reduction (TcbVars.own_prr), never changed
_NO_UNDO = Undo()  # before the first episode (TcbVars.own_undo), never changed
_TRACED: dict[tuple[int, int], tuple[int, int]] = {}  # TcbVars.share_equal_ints: one per value


class Urgent:
    """The receive side's urgent byte: where it is (stream offset), the byte once a stream read
    took it out of the stream, whether ``recv(MSG_OOB)`` already returned it."""

    __slots__ = ("off", "byte", "taken")

    def __init__(self, off: int) -> None:
        self.off = off
        self.byte: int | None = None
        self.taken = False


class TcbVars:
    # Slots for the variables set in __init__ (a TCB is ~100 of them: as a dict ~3.2 KiB, as
    # slots ~0.8 KiB per connection end, issue 23 item 4); ``__dict__`` holds whatever else is
    # set on a TCB (a test's instance overrides, variables added without a slot).
    __slots__ = ("config", "local_ip", "local_port", "remote_ip", "remote_port", "v6",
                 "_ip_tcp_hdr", "tx_psum", "state", "created", "_transitions", "passive",
                 "user_closed", "iss", "snd_una", "snd_nxt", "snd_max", "snd_wnd", "snd_wl1",
                 "snd_wl2", "max_sndwnd", "snd_data_una", "irs", "rcv_nxt", "rcv_adv",
                 "rcv_ssthresh", "adv_mss", "path_mss", "plpmtud", "peer_mss", "rcv_wscale",
                 "snd_wscale", "wscale_ok", "ts_ok", "ts_recent", "last_ack_sent", "ts_offset",
                 "sack_ok", "snd_mss", "sendbuf", "recvbuf", "rcv_autotune", "snd_autotune",
                 "rcvq_space", "rcvq_copied", "rcvq_time", "rcv_rtt", "rcv_rtt_seq",
                 "rcv_rtt_time", "rtt", "cc", "_rtt_seq", "_rtt_time", "dupacks", "recover",
                 "rto_recover", "rto_tsval", "rec", "pmtu_keep", "_sack_recent", "_cwnd_traced",
                 "challenge_ack_ok", "last_rx", "unacked_since", "retries", "fin_queued",
                 "fin_seq", "rcv_fin_off", "fin_received", "deadlines", "timer", "_timer_stale",
                 "_armed", "probes_out", "_ack_now", "_sws_override", "_wakeup_push",
                 "_unacked_bytes", "rcv_mss", "quick_acks", "ato", "_ack_pushed", "lrcvtime",
                 "snd_sml", "lsndtime", "is_cwnd_limited", "max_flight", "cwnd_usage_seq", "_out",
                 "_events", "stats", "user",
                 # the extensions' state, set in __init__ too (a dict of 14 entries was 0.25 KiB)
                 "rate", "sent", "rack", "undo", "_more", "_nagle_push", "ecn",
                 "rx_gso_size", "skb_ends", "snd_nospace", "chrono", "route_gen", "route",
                 "xmit_blocked", "tso_deferred_cwnd_limited", "_space_at", "_sent_run", "__dict__")
    # Variables most connections never set and no per-segment path reads (a class attribute
    # is a slower read than a slot): class attributes, the TCB's own (in its __dict__) once
    # set (8 bytes per variable per connection end less, issue 23 item 4)
    # with record_cwnd: (time, cwnd, ssthresh); the shared empty list until the first sample
    # (never mutated: Tcb._trace_cwnd gives the TCB a list of its own first)
    cwnd_log: list[tuple[float, int, int]] = _NO_SAMPLES
    probes_since = 0.0  # when this series of probe timers began (local_drop.py)
    route_gen: int | None  # the routing table's generation last seen (route_metrics.py)
    route: RouteMetrics  # the metrics of the route to the peer (route_metrics.py)
    xmit_blocked: Callable[[bytes], bool] | None  # the host's local-drop check (local_drop.py)
    # set by an event most connections never see, not during the handshake; until then the
    # default every TCB shares (written only where the event is handled)
    rcv_shutdown = False  # shutdown(SHUT_RD) (Linux RCV_SHUTDOWN)
    error: Exception | None = None
    # the fast-recovery sender (prr.py): until the first episode, the object every TCB shares
    # (own_prr)
    prr: Prr = _NO_PRR
    _dsack: tuple[int, int] | None = None  # a duplicate to report first (RFC 2883)
    _oow_ack_at = -1.0  # last ACK to an invalid segment (_oow_limited; -1: none yet)
    keepalive_probes = 0
    # urgent data (urgent.py): the send pointer (stream offset after the urgent byte) while
    # unacknowledged, the receive side's urgent byte while there is one
    snd_up: int | None = None
    urg: Urgent | None = None
    zerocopy: ZeroCopy | None = None  # SO_ZEROCOPY's notifications (zerocopy.py)
    tstamp: TxTimestamps | None = None  # SO_TIMESTAMPING's TX reports (tstamp.py)
    persist_backoff = 0
    pingpong = False  # the delayed-ACK engine's interactive mode (quick_acks in __init__)
    _lost_reported = False
    tfo: TfoConn | None = None  # TCP Fast Open (tfo.py); None: not a TFO connection
    # None for most connections: no tracer; a controller that does not pace (pacing.py)
    trace: Callable[[float, str, dict[str, Any]], None] | None = None
    pacer: Pacer | None = None

    def __init__(self, local_ip: bytes, local_port: int, remote_ip: bytes, remote_port: int, *,
                 iss: int, now: float, config: TcpConfig | None = None,
                 adv_mss: int | None = None, path_mtu: int | None = None,
                 rng: random.Random | None = None,
                 trace: Callable[[float, str, dict[str, Any]], None] | None = None,
                 route: RouteMetrics | None = None) -> None:
        self.config = cfg = config or TcpConfig()
        self.local_ip = local_ip
        self.local_port = local_port
        self.remote_ip = remote_ip
        self.remote_port = remote_port
        self.v6 = len(local_ip) == 16
        self._ip_tcp_hdr = 60 if self.v6 else 40
        # the addresses' part of the pseudo-header sum (RFC 9293 §3.1), for the layer's builder
        self.tx_psum = pseudo_header(local_ip, remote_ip, PROTO_TCP, 0)  # build_tcp(psum=)
        if trace is not None:  # (None: the class default)
            self.trace = trace
        self.state = CLOSED
        self.created = now
        # every state change, (time, old, new, cause) after another in one flat tuple (the
        # ``transitions`` property): a list of tuples was 0.1 KiB more per connection end
        self._transitions: tuple[Any, ...] = ()
        self.passive = False
        self.user_closed = False  # close() called: no more reading wanted (orphan in Linux)
        # send sequence variables (RFC 9293 §3.3.1)
        self.iss = iss & MASK
        self.snd_una = self.iss
        self.snd_nxt = self.iss
        self.snd_max = self.iss
        self.snd_wnd = 0
        self.snd_wl1 = 0
        self.snd_wl2 = 0
        self.max_sndwnd = 0
        self.snd_data_una = seq_add(self.iss, 1)  # sequence number of sendbuf.base
        # receive sequence variables
        self.irs = 0
        self.rcv_nxt = 0
        self.rcv_adv = 0  # right edge of the window last advertised (RCV.NXT + RCV.WND)
        # the most the window may offer (Linux rcv_ssthresh): the SYN's window at first, grown
        # by two segments per segment of data received (Linux tcp_grow_window)
        self.rcv_ssthresh = 0
        # options
        mtu_mss = shared_int((path_mtu or 1500) - self._ip_tcp_hdr)
        self.adv_mss = shared_int(min(adv_mss or mtu_mss, cfg.maxseg or 65535))
        self.path_mss = mtu_mss
        # shared by the connections of the same sizes until it changes (own_plpmtud)
        self.plpmtud = plpmtud_for(cfg.mtu_probing, self._ip_tcp_hdr,
                                   mtu_mss + self._ip_tcp_hdr, cfg.base_mss)
        self.peer_mss = DEFAULT_MSS_V6 if self.v6 else DEFAULT_MSS_V4
        self.rcv_wscale = our_wscale(cfg) if cfg.window_scaling else 0
        self.snd_wscale = 0
        self.wscale_ok = False
        self.ts_ok = False
        self.ts_recent = 0
        self.last_ack_sent = 0
        rng = rng or random.Random(iss)
        self.ts_offset = rng.getrandbits(32)
        self.sack_ok = False
        self.ecn: Ecn | None = None  # ECN negotiated or requested (ecn.py); before the MSS
        self.snd_mss = self._compute_snd_mss()
        # buffers, estimators (the send buffer tcp_wmem's default until established, then as
        # the congestion control provisions it: sndbuf.expand at Tcb._established)
        self.cc = create_congestion(cfg.congestion, self.snd_mss)
        self.sendbuf = SendBuffer(shared_int(unconnected_send_buffer(cfg)))
        self.skb_ends: list[int] = NO_SKBS  # where the send buffer's skbs end (sndbuf.py)
        self.snd_nospace = False  # a write or poll found no room (Linux SOCK_NOSPACE)
        # where in _events the segment being processed freed send-buffer data: receive()'s
        # tail queues a SendSpace there if a write would take anything (Tcb._space_freed)
        self._space_at: int | None = None
        self.recvbuf = ReceiveBuffer(initial_recv_buffer(cfg), cfg.max_ooo_pieces)
        # buffer autotuning (Linux tcp_rcv_space_adjust, tcp_sndbuf_expand), off for a size the
        # application fixed (SO_RCVBUF/SO_SNDBUF); the receive side measures how much the
        # application read per receiver-side RTT (rcv_rtt: Linux rcv_rtt_est, its minimum per
        # window of data; 0 while unknown)
        self.rcv_autotune = cfg.recv_buffer is None and cfg.moderate_rcvbuf
        self.snd_autotune = cfg.send_buffer is None
        self.rcvq_space = 0  # bytes read in the last measured RTT (0: not started)
        self.rcvq_copied = 0  # how many bytes the application had read at the measure's start
        self.rcvq_time = 0.0
        self.rcv_rtt = 0.0
        self.rcv_rtt_seq = 0  # the measure's end: RCV.NXT + RCV.WND when it started
        self.rcv_rtt_time: float | None = None
        self.rtt = RttEstimator(cfg.initial_rto, cfg.min_rto, cfg.max_rto)
        route_metrics.attach(self, route)  # the route's initcwnd, rto_min (route_metrics.py)
        # -- per-ACK samples and pacing for the controller (rate.py, pacing.py) --
        self.rate: DeliveryRate | None = DeliveryRate() if self.cc.wants_samples else None
        pacer = pacer_for(self.cc, cfg, None)
        if pacer is not None:  # (None, the class default: a controller that does not pace)
            self.pacer = pacer
        self._rtt_seq: int | None = None  # our SYN, timed (data: rtt.ack_sample)
        self._rtt_time = 0.0
        self.dupacks = 0
        self.recover: int | None = None  # snd_max when fast recovery started (RFC 6582 recover)
        # (a timeout during the handshake, a retransmitted SYN, sets these: slots)
        self.rto_recover: int | None = None  # snd_max at the last RTO (RFC 6582 §3.2 step 2)
        self.rto_tsval: int | None = None  # our TS clock at that RTO (Karn with timestamps)
        self.rec = Recovery()  # SACK scoreboard and recovery episode (recovery.py)
        # the data transmissions in flight (sent.py), read by RACK, the rate sample and the
        # path MTU decrease
        self.sent = SentLog()
        self.rack = Rack(cfg.recovery, self.sent)  # RACK-TLP loss detection (rack.py)
        # undoing a spurious recovery or timeout (undo.py): until the first episode, the object
        # every TCB shares (own_undo)
        self.undo = _NO_UNDO
        # path MTU decrease: the stream positions the go-back after it skips (sent in segments
        # that fit the new MSS, SentLog.fitting)
        self.pmtu_keep: RangeSet | None = None
        # stream offsets of recent out-of-order arrivals; the shared empty list until the first
        # (never mutated: Tcb._process_text gives the TCB a list of its own first)
        self._sack_recent: list[int] = _NO_OFFSETS
        self._cwnd_traced = (0, 0)
        self.challenge_ack_ok: Callable[[float], bool] | None = None  # host-wide limiter
        self.last_rx = now
        self.unacked_since: float | None = None  # user timeout: oldest unanswered transmission
        self.retries = 0  # consecutive timeouts without progress
        # FIN bookkeeping
        self.fin_queued = False  # user asked to close the sending side
        self.fin_seq: int | None = None  # sequence number of our FIN once data is all queued
        self.rcv_fin_off: int | None = None  # stream offset of the peer's FIN once seen
        self.fin_received = False
        self.chrono = Chrono()  # busy / rwnd-limited / sndbuf-limited time (chrono.py)
        # timers: one deadline (or None) per kind, and the earliest (timers.py)
        # (while none is set, the shared list of Nones: _arm gives the TCB a list of its own
        # for the first deadline, 0.14 KiB less per idle connection end, issue 23 item 4)
        self.deadlines: list[float | None] = _NO_DEADLINES
        self.timer: tuple[float, Timer] | None = None
        self._timer_stale = False
        self._armed = 0  # how many deadlines are set
        self.probes_out = 0  # zero-window probes since the peer last sent (Linux icsk_probes_out)
        self.xmit_blocked = None  # set by the layer: Host.xmit_blocked (local_drop.py)
        # output
        self._ack_now = False
        self._sws_override = False
        self._wakeup_push = False  # the persist timer forces new data out: with PSH (output.py)
        # TCP_CORK / MSG_MORE (output's Nagle rule): the last send had MSG_MORE; TCP_NODELAY
        # was just set, what is held goes (Linux TCP_NAGLE_PUSH)
        self._more = False
        self._nagle_push = False
        # the uniform run the send fast path just sent, for output's PSH (output.py _push_run);
        # None again once output took it
        self._sent_run: tuple[int, int, list[int]] | None = None
        self._unacked_bytes = 0  # in-order bytes received since the last ACK we sent
        # the peer's segment size as we see it (Linux icsk_ack.rcv_mss, tcp_measure_rcv_mss):
        # the largest segment received, at most our own MSS, 536 at first
        self.rcv_mss = max(88, min(self.adv_mss, 536))
        self.rx_gso_size = 0  # the segment arriving is a GRO aggregate of this size (0: not)
        # Linux's delayed-ACK engine (tcp_event_data_recv): quick-ACK mode (ACK every segment)
        # for this many ACKs, at the first data and after an idle receiver; interactive
        # (ping-pong) mode when we answer data within the ACK timeout (pingpong)
        self.quick_acks = 0
        # the ACK timeout (Linux icsk_ack.ato): starts at the minimum, follows the gaps between
        # data segments, doubles when a delayed ACK fires; _ack_pushed: a short (pushed)
        # segment arrived since the last ACK (ICSK_ACK_PUSHED)
        self.ato = self.config.delack_timeout
        self._ack_pushed = False
        self.lrcvtime: float | None = None  # when data last arrived (None: never)
        self.snd_sml = self.iss  # end of the last short segment sent (Minshall's Nagle)
        self.lsndtime: float | None = None  # when data was last sent (idle restart)
        # whether cwnd limits the sender (RFC 7661; Linux tcp_cwnd_validate): cwnd grows only
        # then; judged over one window of data (up to cwnd_usage_seq)
        self.is_cwnd_limited = False
        self.max_flight = 0
        self.cwnd_usage_seq = self.iss
        self.tso_deferred_cwnd_limited = False  # a TSO deferral cwnd caused (tso_defer.py)
        self._out: list[Segment] = []
        self._events: list[TcbEvent] = []  # (a list: an empty deque costs ~0.6 KiB)
        self.stats = TcpStats()
        self.user: object = None  # the application's object for it (the TCP code never reads it)

    def _arm(self, kind: Timer, at: float | None) -> None:
        """Set (or with None cancel) the deadline of ``kind``. ``timer`` follows at once when
        the change decides it (a new earliest, the only deadline, a later one of another kind);
        otherwise ``get_timer`` recomputes it."""
        deadlines = self.deadlines
        if deadlines[kind] is None:
            if at is not None:
                if not self._armed:  # the first: a list of its own (the shared one is all None)
                    self.deadlines = deadlines = [None] * _N_KINDS
                self._armed += 1
        elif at is None:
            self._armed -= 1
            if not self._armed:  # the last went: the shared list again
                self.deadlines = _NO_DEADLINES
        deadlines[kind] = at  # (None over None when the shared list: no change)
        if self._timer_stale:
            return
        t = self.timer
        if t is None:
            if at is not None:
                self.timer = (at, kind)
        elif at is not None and (at < t[0] or (kind is t[1] and (
                at == t[0] or self._armed == 1))):
            self.timer = (at, kind)
        elif kind is t[1]:
            if self._armed:
                self._timer_stale = True  # the earliest moved later or went: another may lead
            else:
                self.timer = None

    def share_equal_ints(self) -> None:
        """Make the sequence variables of equal value one int object each. A sequence number is
        an int of its own (28-32 bytes) each time it is computed or parsed, and right after the
        handshake most of them are equal: ISS, SND.SML and the cwnd-usage mark; SND.UNA,
        SND.NXT, SND.MAX, SND.WL2, the send buffer's base and the timed SYN's end; IRS or RCV.NXT
        and SND.WL1; RCV.NXT and the last ACK sent; SND.WND and its maximum (~0.1 KiB per idle
        connection end, issue 23 item 4). The send buffer's size, which the handshake grew, the
        one object of its value (``shared_int``), and the (cwnd, ssthresh) pair last traced one
        tuple of its value (72 bytes). No value changes; the API calls it once, when it hands the
        established connection to the application."""
        # (no call per variable: it runs once per connection, counted in the benches' calls)
        iss, una, irs, nxt = self.iss, self.snd_una, self.irs, self.rcv_nxt
        if self.snd_sml == iss:
            self.snd_sml = iss
        if self.cwnd_usage_seq == iss:
            self.cwnd_usage_seq = iss
        if self.snd_nxt == una:
            self.snd_nxt = una
        if self.snd_max == una:
            self.snd_max = una
        if self.snd_wl2 == una:
            self.snd_wl2 = una
        if self.snd_data_una == una:
            self.snd_data_una = una
        if self._rtt_seq == una:
            self._rtt_seq = una
        if self.snd_wl1 == irs:
            self.snd_wl1 = irs
        elif self.snd_wl1 == nxt:
            self.snd_wl1 = nxt
        if self.last_ack_sent == nxt:
            self.last_ack_sent = nxt
        if self.max_sndwnd == self.snd_wnd:
            self.max_sndwnd = self.snd_wnd
        self.sendbuf.capacity = shared_int(self.sendbuf.capacity)
        traced = self._cwnd_traced  # (compared by value: Tcb._trace_cwnd)
        if traced in _TRACED:
            self._cwnd_traced = _TRACED[traced]
        elif len(_TRACED) < 64:  # (bounded: a few initial windows are usual)
            _TRACED[traced] = traced

    def own_prr(self) -> Prr:
        """The PRR state, the connection's own, as a cwnd reduction begins: a new connection
        shares one, unchanged (PRR changes only during a reduction, and each begins with
        ``Prr.start`` on this; 0.05 KiB per idle connection end, issue 23 item 4)."""
        if self.prr is _NO_PRR:
            self.prr = Prr()
        return self.prr

    def own_undo(self) -> Undo:
        """The undo state, the connection's own, as a recovery episode or a timeout begins: a
        new connection shares one, unchanged (what changes it follows ``Undo.start`` or a
        timeout; 0.1 KiB per idle connection end)."""
        if self.undo is _NO_UNDO:
            self.undo = Undo()
        return self.undo

    def own_plpmtud(self) -> Plpmtud:
        """The connection's PLPMTUD state, its own, to change (a new connection shares an
        unchanged one with the others of the same sizes: plpmtud.plpmtud_for)."""
        p = self.plpmtud
        if p.shared:
            p = self.plpmtud = p.copy()
        return p

    def _set_unacked_since(self, t: float | None) -> None:
        """The oldest transmission not yet acknowledged (None: none): the user timeout runs
        from it."""
        self.unacked_since = t
        ut = self.config.user_timeout
        if ut is not None:
            self._arm(USER_TIMER, None if t is None else t + ut)

    @property
    def transitions(self) -> list[tuple[float, State, State, str]]:
        """The state changes, oldest first: (time, old state, new state, cause)."""
        t = self._transitions
        return [cast(tuple[float, State, State, str], t[i:i + 4]) for i in range(0, len(t), 4)]

    @property
    def key(self) -> tuple[bytes, int, bytes, int]:
        return (self.local_ip, self.local_port, self.remote_ip, self.remote_port)

    def _compute_snd_mss(self) -> int:
        mss = min(self.peer_mss, self.path_mss, self.config.maxseg or 65535)
        clamp = self.plpmtud.mtu_clamp()  # PLPMTUD's size known to get through
        if clamp is not None:
            mss = min(mss, clamp - self._ip_tcp_hdr)
        # as Linux (__tcp_mtu_to_mss): a floor before the options, so that a peer's tiny MSS
        # option or path MTU cannot make every segment carry a few bytes (IP fragments a
        # segment larger than a tiny path MTU)
        mss = max(mss, self.config.min_snd_mss)
        if self.ts_ok:
            mss -= TS_OPT_LEN
        if self.ecn is not None:
            mss -= self.ecn.opt_reserve  # AccECN's option (accecn.py)
        return shared_int(mss)

    def set_congestion(self, name: str) -> None:
        """TCP_CONGESTION: another controller (ValueError naming the known ones); on an open
        connection it goes on from the current window (Linux tcp_reinit_congestion_control).
        Rate sampling and pacing follow what it needs."""
        cc = create_congestion(name, self.snd_mss)
        cc.adopt(self.cc)
        self.cc = cc
        self.rate = DeliveryRate() if cc.wants_samples else None
        self.pacer = pacer_for(cc, self.config, self.pacer)

    def flight_una(self) -> int:
        """Where flight and the peer's window begin: SND.UNA, except in a TCP Fast Open child,
        whose SYN-ACK its request retransmits apart from its data (Linux
        tcp_create_openreq_child: the child's snd_una is ISS + 1, its SYN in no skb), so the
        SYN's sequence number counts against neither cwnd nor the window."""
        tfo = self.tfo
        return self.snd_data_una if tfo is not None and tfo.child else self.snd_una

    def _abs(self, seq: int) -> int:
        """Stream position of a sequence number (never wraps; the FIN is after the last byte)."""
        return self.sendbuf.base + seq_sub(seq, self.snd_data_una)

    def _seq(self, pos: int) -> int:
        return seq_add(self.snd_data_una, pos - self.sendbuf.base)
