"""The TCP layer of a Host: demultiplexing by 4-tuple, listeners, ephemeral ports, RSTs for
closed ports, ICMP errors, timers, and the glue between TCBs and the IP layer.

It registers itself with the host (``register_protocol(6)``, ``register_icmp_error(6)``,
``add_timer_source``; :class:`TcpHost` is all it asks of the host). Each TCB is sans-IO; after
anything touches one, ``flush(tcb, now)`` builds its segments into bytes, hands them to
``host.ip_send`` and queues its events. The layer never calls the application: the API pulls
``(tcb, event)`` pairs from ``events`` after each node call, and its calls into a TCB (send,
read, close) end with ``kick(tcb)``, whose output runs at the next ``poll(now)``.
"""

from __future__ import annotations

import copy
import errno
import heapq
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stacklab.stack.icmp import PACKET_TOO_BIG, UNREACHABLE
from stacklab.stack.pmtu import MIN_PMTU_V4
from stacklab.stack.pmtudisc import dont_fragment
from stacklab.stack.udp import error_from_icmp  # Linux's icmp_err_convert, one copy
from stacklab.wire.addr import ip_str
from stacklab.wire.errors import MalformedPacket
from stacklab.wire.proto import PROTO_TCP
from stacklab.wire.tcp import ACK, RST, SYN, TcpView

from . import route_metrics
from .config import TcpConfig
from .congestion import create_congestion
from .context import TcpHost
from .events import Connected, ConnectionLost, TcbEvent
from .fsm import (
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
    State,
)
from .gso import cut
from .isn import IsnGenerator
from .listen import Listener, send_reset, syn_acceptable_in_time_wait
from .output import segment_bytes
from .syncookie import SynCookies
from .tcb import Tcb
from .tfo import FastOpen

if TYPE_CHECKING:
    from stacklab.stack.ipv4 import Ipv4, TcpFlow

EPHEMERAL_LOW = 32768  # Linux ip_local_port_range
EPHEMERAL_HIGH = 60999
# finished connections remembered for the summaries, as ConnectionRecord (~2 kB each; Linux
# keeps none: ss shows live sockets only). Small enough that a host running for hours holds a
# constant amount (the soak test: memory at the end within 10 % of minute 5); a run that wants
# more sets ``layer.history = deque(maxlen=N)``.
HISTORY_LIMIT = 64
MAX_SYN_BACKLOG = 256  # Linux tcp_max_syn_backlog (per listener here)
MAX_CONNECTIONS = 65536  # per host: TCBs of every state, TIME-WAIT included
# Linux tcp_max_orphans: connections the application closed that the host keeps; Linux sets it
# to half its established-hash size, ours is MAX_CONNECTIONS
MAX_ORPHANS = MAX_CONNECTIONS // 2
# challenge ACKs a second per host, on average (RFC 5961 §7): Linux tcp_challenge_ack_limit as
# 4.7-5.19 had it; Linux >= 6.0 defaults to INT_MAX, no host-wide budget, the per-connection
# limit alone (tcp_invalid_ratelimit, TcpConfig)
CHALLENGE_ACK_LIMIT = 1000
INT_MAX = 0x7FFFFFFF  # tcp_challenge_ack_limit = INT_MAX: no host-wide budget

# the states after ESTABLISHED in which a segment takes receive_established as in it (the
# general path would do the same there: no TIME-WAIT reopening, no handshake)
_CLOSING_STATES = frozenset((FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK))


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    """What the layer keeps of a finished connection (``TcpLayer.history``): its addresses,
    the states it went through, how it ended and its last ``tcp_info()``; not the TCB, whose
    buffers are let go with it. The summaries read it as they read a live TCB."""

    local_ip: bytes
    local_port: int
    remote_ip: bytes
    remote_port: int
    states_entered: list[str]
    state: State
    error: Exception | None  # a copy: the one the application saw may hold its traceback
    path_mss: int
    info: dict[str, Any]

    @classmethod
    def of(cls, tcb: Tcb) -> ConnectionRecord:
        return cls(tcb.local_ip, tcb.local_port, tcb.remote_ip, tcb.remote_port,
                   tcb.states_entered, tcb.state,
                   copy.copy(tcb.error) if tcb.error is not None else None, tcb.path_mss,
                   tcb.tcp_info())

    def tcp_info(self) -> dict[str, Any]:
        """The connection's ``tcp_info()`` when it finished."""
        return dict(self.info)


class TcpLayer:
    def __init__(self, host: TcpHost, config: TcpConfig | None = None) -> None:
        self.host = host
        self.config = config or TcpConfig()
        # a full host's IPv4 layer builds the common segments' frames (flush); a test's host
        # without one gets every segment through ip_send
        self._ipv4: Ipv4 | None = getattr(host, "ipv4", None)
        # the last flush's connection, its config and path MSS, and the flow its frames left
        # by (flush carries it while they and its tcp_path answer stay the same)
        self._last_flow: tuple[Tcb, TcpConfig, int, TcpFlow] | None = None
        self.conns: dict[tuple[bytes, int, bytes, int], Tcb] = {}
        self.listeners: dict[tuple[bytes | None, int, int | None], Listener] = {}
        # finished connections, for the summaries: the last HISTORY_LIMIT, oldest first
        self.history: deque[ConnectionRecord] = deque(maxlen=HISTORY_LIMIT)
        self._spawned_by: dict[Tcb, Listener] = {}  # passive connections -> their listener
        self.isn = IsnGenerator.from_rng(host.rng)
        self._next_port = EPHEMERAL_LOW + host.rng.randrange(EPHEMERAL_HIGH - EPHEMERAL_LOW)
        # TCBs user calls touched since the last poll(), in order (read-only outside the layer)
        self.kicked: dict[Tcb, None] = {}
        # (tcb, event) for the application, oldest first: it pulls them with events.popleft()
        self.events: deque[tuple[Tcb, TcbEvent]] = deque()
        # Timer index: a time at or before every TCB's next deadline, noted after each flush
        # (everything that changes a TCB ends in flush or kick), in a heap with lazy deletion:
        # get_timer is O(log n) instead of a scan of every connection per frame (10,000
        # connections). Lazy as Linux's mod_timer and BSD callouts: a deadline that moves
        # later or goes away costs nothing (every ACK moves the RTO later, the delayed ACK is
        # armed and cleared every other segment); only an earlier one is pushed. An entry
        # that comes due early is asked again (settle, handle_timer) and re-indexed at the
        # TCB's deadline then, so get_timer may answer early: a wake with nothing due does
        # nothing (Host.handle_timer).
        self._timer_heap: list[tuple[float, int, Tcb]] = []
        self._timer_of: dict[Tcb, float] = {}
        self._timer_seq = 0
        # hardening knobs (sysctl-like, per host)
        self.syncookies = True  # Linux tcp_syncookies = 1: only when the SYN queue is full
        self.max_syn_backlog = MAX_SYN_BACKLOG
        self.max_connections = MAX_CONNECTIONS
        self.max_orphans = MAX_ORPHANS  # Linux tcp_max_orphans
        # closed by the application, not yet in TIME-WAIT or gone (Linux tcp_orphan_count)
        self.orphans: dict[Tcb, None] = {}
        self.challenge_ack_limit = CHALLENGE_ACK_LIMIT  # Linux tcp_challenge_ack_limit
        self._challenge_slot = -1
        self._challenge_count = 0
        self._challenge_rng: random.Random | None = None
        self._challenge_ack_ok = self.challenge_ack_ok
        self._xmit_blocked: Callable[[bytes], bool] | None = None  # adopt's, shared
        self._cookies: SynCookies | None = None
        # TCP Fast Open (tfo.py): its key drawn lazily from a stream of its own
        self.tfo = FastOpen(lambda: random.Random(self.host.rng.getrandbits(64)))
        host.register_protocol(PROTO_TCP, self.receive, self.receive_view)
        if self._ipv4 is not None:
            self._ipv4.set_early_demux(self.receive_established)
        host.register_icmp_error(PROTO_TCP, self.icmp_error)
        host.add_timer_source(self)

    # -- configuration ----------------------------------------------------------------------------
    @property
    def default_congestion(self) -> str:
        """The congestion control of new connections (``net.ipv4.tcp_congestion_control``)."""
        return self.config.congestion

    @default_congestion.setter
    def default_congestion(self, name: str) -> None:
        create_congestion(name, 1000)  # ValueError naming the known ones
        self.config = self.config.replace(congestion=name)

    @property
    def cookies(self) -> SynCookies:
        if self._cookies is None:  # drawn lazily: hosts without a SYN flood keep their streams
            self._cookies = SynCookies(random.Random(self.host.rng.getrandbits(64)))
        return self._cookies

    def challenge_ack_ok(self, now: float) -> bool:
        """The host-wide challenge-ACK budget (RFC 5961 §7), after the connection's own limit.
        As Linux since 4.7 (CVE-2016-5696), the budget of each second is drawn at random from
        [limit/2, limit*3/2), so that an attacker counting the challenge ACKs of its own
        connections learns nothing of what the others spent; the draws come from the host's
        seeded generator (a stream of their own, drawn lazily: hosts that never send a
        challenge ACK keep their random streams)."""
        limit = self.challenge_ack_limit
        if limit >= INT_MAX:
            return True
        slot = int(now)
        if slot != self._challenge_slot:
            self._challenge_slot = slot
            if self._challenge_rng is None:
                self._challenge_rng = random.Random(self.host.rng.getrandbits(64))
            half = (limit + 1) >> 1
            self._challenge_count = half + self._challenge_rng.randrange(limit) if limit > 0 \
                else 0
        if self._challenge_count <= 0:
            self.host.counters["tcp.challenge_ack.limited"] += 1
            return False
        self._challenge_count -= 1
        return True

    def adopt(self, tcb: Tcb, listener: Listener | None = None) -> None:
        """Take a new connection into the demultiplexing table (``listener``: its passive OPEN)."""
        tcb.challenge_ack_ok = self._challenge_ack_ok  # one bound method for all
        blocked = self.host.xmit_blocked  # local congestion (local_drop.py)
        if blocked != self._xmit_blocked:  # one bound method for all, while it is the same
            self._xmit_blocked = blocked
        tcb.xmit_blocked = self._xmit_blocked
        self.conns[tcb.key] = tcb
        if listener is not None:
            self._spawned_by[tcb] = listener

    def listener_of(self, tcb: Tcb) -> Listener | None:
        """The listener that spawned ``tcb`` (None for an active OPEN)."""
        return self._spawned_by.get(tcb)

    # -- opening ----------------------------------------------------------------------------------
    def _iface_mtu(self, dst: bytes, ifindex: int | None = None) -> int:
        host = self.host
        if ifindex is not None and 0 <= ifindex < len(host.interfaces):
            return host.interfaces[ifindex].mtu
        route = host.routes.lookup(dst)
        if route is not None:
            iface, _ = host.route_out(route, dst)
            if iface is not None:
                return iface.mtu
        return host.path_mtu(dst)

    def adv_mss(self, dst: bytes, config: TcpConfig, ifindex: int | None = None) -> int:
        mss = route_metrics.advmss(self.host.route_metrics(dst), self._iface_mtu(dst, ifindex),
                                   40 if len(dst) == 4 else 60)
        if config.maxseg is not None:
            mss = min(mss, config.maxseg)
        return max(mss, 88)

    def tcb_kwargs(self, local_ip: bytes, local_port: int, remote_ip: bytes,
                        remote_port: int, now: float, config: TcpConfig,
                        ifindex: int | None = None) -> dict[str, Any]:
        host = self.host
        name = f"{ip_str(local_ip)}:{local_port}>{ip_str(remote_ip)}:{remote_port}"

        def trace(t: float, event: str, details: dict[str, Any]) -> None:
            host.trace(t, "tcp", event, conn=name, **details)

        return {
            "iss": self.isn.isn(local_ip, local_port, remote_ip, remote_port, now),
            "config": config,
            "adv_mss": self.adv_mss(remote_ip, config, ifindex),
            "path_mtu": host.path_mtu(remote_ip),
            "rng": host.rng,
            "trace": trace if host.tracer is not None else None,
            "route": host.route_metrics(remote_ip),
        }

    def ephemeral_port(self, local_ip: bytes, remote_ip: bytes, remote_port: int) -> int:
        span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1
        for _ in range(span):
            p = self._next_port
            self._next_port = EPHEMERAL_LOW + (p + 1 - EPHEMERAL_LOW) % span
            if (local_ip, p, remote_ip, remote_port) not in self.conns and not any(
                    k[1] == p for k in self.listeners):
                return p
        raise OSError(errno.EADDRNOTAVAIL, "no free ephemeral port")

    def connect(self, remote_ip: bytes, remote_port: int, now: float, *,
                local_ip: bytes | None = None, local_port: int = 0,
                config: TcpConfig | None = None, user: object = None,
                fastopen: bool = False) -> Tcb:
        """Active OPEN. Raises OSError(ENETUNREACH) without a route or source address.
        ``fastopen`` (or the config's ``fastopen_connect``): TCP Fast Open, the SYN waits for
        the first write when a cookie is cached (tfo.py; ``tcb.tfo`` None: the client is off)."""
        src = local_ip or self.host.source_address_for(remote_ip)
        if src is None:
            raise OSError(errno.ENETUNREACH, f"no route to {ip_str(remote_ip)}")
        port = local_port or self.ephemeral_port(src, remote_ip, remote_port)
        key = (src, port, remote_ip, remote_port)
        if key in self.conns:
            raise OSError(errno.EADDRINUSE, "4-tuple in use")
        if len(self.conns) >= self.max_connections:
            self.host.counters["tcp.drop.conn_limit"] += 1
            raise OSError(errno.ENOBUFS, f"{len(self.conns)} TCP connections: host limit")
        cfg = config or self.config
        tcb = Tcb(src, port, remote_ip, remote_port, now=now,
                  **self.tcb_kwargs(src, port, remote_ip, remote_port, now, cfg))
        tcb.user = user
        if fastopen or cfg.fastopen_connect:
            tcb.tfo = self.tfo.active(remote_ip, cfg, tcb.adv_mss, tcb.path_mss)
        self.adopt(tcb)
        self.host.counters["tcp.active_opens"] += 1
        tcb.connect(now)
        self.flush(tcb, now)
        self.host.request_wake()
        return tcb

    def listen(self, port: int, on_established: Callable[[Tcb], None], *,
               local_ip: bytes | None = None, family: int | None = None,
               config: TcpConfig | None = None, backlog: int = 128) -> Listener:
        if port == 0:
            port = self.ephemeral_port(local_ip or b"", b"", 0)
        key = (local_ip, port, family)
        if key in self.listeners:
            raise OSError(errno.EADDRINUSE, f"port {port} is already listening")
        lst = Listener(self, local_ip, port, family, on_established, config or self.config,
                       backlog)
        self.listeners[key] = lst
        return lst

    def find_listener(self, dst: bytes, port: int) -> Listener | None:
        fam = 4 if len(dst) == 4 else 6
        ls = self.listeners
        return (ls.get((dst, port, None)) or ls.get((dst, port, fam))
                or ls.get((None, port, fam)) or ls.get((None, port, None)))

    # -- arrival ----------------------------------------------------------------------------------
    def receive(self, src: bytes, dst: bytes, payload: memoryview, now: float, info: Any) -> None:
        try:
            v = TcpView(payload)
        except MalformedPacket as e:
            self.host.counters[f"drop.tcp.{e.field}"] += 1
            self.host.trace(now, "tcp", "drop", reason=e.message)
            return
        self.receive_view(src, dst, v, None, now, getattr(info, "bcast", False),
                          getattr(info, "ifindex", None), getattr(info, "tos", 0) & 3)

    def receive_view(self, src: bytes, dst: bytes, v: TcpView, checksum_ok: bool | None,
                     now: float, bcast: bool, ifindex: int | None, ip_ecn: int = 0) -> Tcb | None:
        """A segment whose view is built (``checksum_ok``: the verdict when already known, as
        from ``parse_ipv4_tcp_frame``; None: check it here). Of the IP layer's ``RxInfo``, TCP
        reads only ``bcast`` (dropped), ``ifindex`` (MSS of a new connection) and the ECN bits
        of ``tos`` (``ip_ecn``, RFC 3168). Returns the connection when it is ESTABLISHED after
        the segment: the IP layer's early demux hands it the flow's next segments
        (:meth:`receive_established`)."""
        # SEGMENT ARRIVES (RFC 9293 §3.10.7), by the state of the connection it belongs to (the
        # lookup has no effect: the segment's checks come first all the same)
        port = v.dst_port
        tcb = self.conns.get((dst, port, src, v.src_port))
        if tcb is not None and not bcast and self.receive_established(tcb, v, checksum_ok, now,
                                                                      ip_ecn):
            return tcb if tcb.state is ESTABLISHED else None
        if not self._segment_ok(src, dst, v, checksum_ok, now, bcast):
            return None
        if tcb is not None and tcb.state is TIME_WAIT and v.flags & (SYN | ACK | RST) == SYN \
                and self.find_listener(dst, port) is not None \
                and syn_acceptable_in_time_wait(tcb, v):
            tcb.reopen_from_time_wait(now)  # RFC 6191: the listener takes the SYN below
            self._forget(tcb)
            tcb = None
        if tcb is not None:  # SYN-SENT (§3.10.7.3) and the other synchronized states (§3.10.7.4)
            tcb.rx_gso_size = self.host.rx_gso_size  # a GRO packet's segment size (tcb._data_in)
            tcb.receive(v, now, ip_ecn)
            self.flush(tcb, now)
            return None
        lst = self.find_listener(dst, port)
        if lst is None:  # CLOSED (§3.10.7.1)
            self.host.counters["tcp.no_port"] += 1
            if not v.flags & RST:
                send_reset(self.host, dst, src, v, now)
            return None
        lst.segment_arrives(src, dst, v, now, ifindex, ip_ecn)  # LISTEN (§3.10.7.2)
        return None

    def receive_established(self, tcb: Tcb, v: TcpView, checksum_ok: bool | None, now: float,
                            ip_ecn: int) -> bool:
        """:meth:`receive_view` of a unicast segment for ``tcb`` in ESTABLISHED or one of the
        closing states after it (``_CLOSING_STATES``; False: not in those; nothing done,
        :meth:`receive_view` takes the segment), found already: by the lookup there, or by the
        IP layer's early demux (Linux's tcp_v4_early_demux, ``Ipv4.receive_tcp_frame``: the
        flow of a frame recognised by its addresses and ports, the connection kept while it is
        in the table: entered ESTABLISHED, forgotten when the connection leaves the table).
        In those states :meth:`receive_view` would do exactly this (the checks, then
        ``Tcb.receive`` and the flush: the TCB's own path by its state); TIME-WAIT (a SYN
        may reopen it through the listener) and the states before ESTABLISHED are its own. The
        options of a view from the fused parse in a common layout are read, and so valid,
        already (``_opts`` set): only the others are scanned, by :meth:`_segment_ok`."""
        st = tcb.state
        if st is not ESTABLISHED and st not in _CLOSING_STATES:
            return False
        host = self.host
        if checksum_ok is not True or (v._opts is None and v.header_len > 20):
            if not self._segment_ok(tcb.remote_ip, tcb.local_ip, v, checksum_ok, now, False):
                return True
        else:
            host.counters["tcp.rx.segments"] += 1
        tcb.rx_gso_size = host.rx_gso_size  # a GRO packet's segment size (tcb._data_in)
        tcb.receive(v, now, ip_ecn)
        self.flush(tcb, now)
        return True

    def _segment_ok(self, src: bytes, dst: bytes, v: TcpView, checksum_ok: bool | None,
                    now: float, bcast: bool) -> bool:
        """The checks every segment passes before SEGMENT ARRIVES, each drop counted: options
        well formed (scanned once, here), the checksum, not a broadcast; then it is counted
        in."""
        host = self.host
        c = host.counters
        if v.header_len > 20:
            try:
                v.timestamps()  # scans (and validates) all options once
            except MalformedPacket as e:
                c[f"drop.tcp.{e.field}"] += 1
                host.trace(now, "tcp", "drop", reason=e.message)
                return False
        if not (v.checksum_ok(src, dst) if checksum_ok is None else checksum_ok):
            c["drop.tcp.bad_checksum"] += 1
            host.trace(now, "tcp", "drop", reason="bad checksum")
            return False
        if bcast:
            c["drop.tcp.broadcast"] += 1
            return False
        c["tcp.rx.segments"] += 1
        return True

    def icmp_error(self, now: float, kind: str, code: int, mtu: int, qsrc: bytes, qdst: bytes,
                   ql4: bytes) -> None:
        if len(ql4) < 8:
            return
        sport = (ql4[0] << 8) | ql4[1]
        dport = (ql4[2] << 8) | ql4[3]
        tcb = self.conns.get((qsrc, sport, qdst, dport))
        if tcb is None:
            return
        self.host.counters["tcp.rx.icmp_errors"] += 1
        if kind == PACKET_TOO_BIG:
            # validated by the host (quoted seq in SND.UNA..SND.MAX) and already in its cache
            if tcb.on_path_mtu(self.host.path_mtu(qdst), now):
                self.flush(tcb, now)
        elif kind == UNREACHABLE and tcb.state is SYN_SENT:
            tcb.connect_failed(now, error_from_icmp(4 if len(qsrc) == 4 else 6, kind, code, mtu),
                               f"ICMP unreachable code {code} in SYN-SENT")
            self.flush(tcb, now)
        elif kind == UNREACHABLE and tcb.state is SYN_RECEIVED:
            self._unreachable_in_syn_received(tcb, now, code, 4 if len(qsrc) == 4 else 6)

    def _unreachable_in_syn_received(self, tcb: Tcb, now: float, code: int,
                                     family: int) -> None:
        """A Destination Unreachable for our SYN-ACK (the host's validator has checked the quoted
        sequence number, RFC 5927). A TCP Fast Open child (the application's socket already) or a
        simultaneous open is aborted with the error, as Linux's tcp_v4_err/tcp_v6_err do (RFC
        5461 §4 lets a connection attempt be aborted on a hard error). A plain passive child is
        kept and its SYN-ACK retransmitted: RFC 1122 §4.2.3.9 (net/host unreachable are soft
        errors, MUST NOT abort) over Linux's tcp_req_err, which drops the request although the
        peer may be ESTABLISHED already and is then reset by its next segment (the 1,000-transfer
        sweep's seed 807 meets exactly that: a router's ARP failing during a link flap)."""
        if tcb.passive and (tcb.tfo is None or not tcb.tfo.child):
            return
        tcb.connect_failed(now, error_from_icmp(family, UNREACHABLE, code, 0),
                           f"ICMP unreachable code {code} in SYN-RECEIVED")
        self.flush(tcb, now)

    # -- output and events ------------------------------------------------------------------------
    def flush(self, tcb: Tcb, now: float) -> None:
        """After anything touched ``tcb``: its segments to the IP layer, its events to the
        application's queue (``events``), its next deadline into the timer index; a finished
        TCB is forgotten."""
        host = self.host
        while True:  # again when the path MTU dropped or a closed listener's child was aborted
            out = tcb._out  # segments_to_send(), without the call
            too_big = False
            if out:
                tcb._out = []
                dst = tcb.remote_ip
                src, sp, dp, psum = tcb.local_ip, tcb.local_port, tcb.remote_port, tcb.tx_psum
                c = host.counters
                ip_send = host.ip_send
                # IPv4 on its plain route: the common segments become whole frames here, built
                # in one buffer each, in one pass (Ipv4.send_tcp_frames, by the connection's
                # TcpFlow); the others go through ip_send
                v4 = len(dst) == 4
                ipv4 = self._ipv4 if v4 else None
                path = ipv4.tcp_path(dst, now) if ipv4 is not None else None
                cfg = tcb.config
                last = self._last_flow
                if path is not None and last is not None \
                        and (last[3].path is path or last[3].path == path) \
                        and last[0] is tcb and last[1] is cfg and last[2] == tcb.path_mss:
                    # the last flush's flow, carried: the same path answer, and the same config
                    # object (setsockopt replaces it) and path MSS, from which DF and the TOS
                    # are (an equal answer is the same one: the compiled tier boxes the answer's
                    # tuple anew at each return, its items the cached entry's objects)
                    flow: TcpFlow | None = last[3]
                    df = last[3].df
                    dscp = last[3].tos
                else:
                    # DF as Linux: by the socket's IP_MTU_DISCOVER (pmtudisc.py); by default
                    # always, except on an IPv4 path at or below the PMTU floor (a link that
                    # small, or a Fragmentation Needed below it: Linux locks the MTU at the
                    # floor and clears DF, RFC 1191 §3), where IP (ours or a router's)
                    # fragments what does not fit
                    df = not v4 or dont_fragment(cfg.pmtudisc, tcb.path_mss + 40 <= MIN_PMTU_V4)
                    dscp = cfg.tos  # IP_TOS / IPV6_TCLASS, without the ECN bits
                    flow = None
                    if path is not None and ipv4 is not None:
                        flow = ipv4.tcp_flow(path, src, dst, now, df, sp, dp, psum, dscp)
                        self._last_flow = (tcb, cfg, tcb.path_mss, flow)
                gso = path[0].port.gso_max if path is not None else 0  # TSO (gso.py)
                if tcb.gso_max != gso:
                    if not gso:
                        out = cut(out, tcb.snd_mss)  # built for a device that segmented
                    tcb.gso_max = gso
                n = len(out)
                c["tcp.tx.segments"] += n
                for seg in out:
                    if seg.flags & RST:
                        c["tcp.tx.rst"] += 1
                i = 0
                while i < n:
                    if flow is not None and ipv4 is not None:
                        i = ipv4.send_tcp_frames(flow, now, out, i)
                        if i == n:
                            break
                        seg = out[i]
                        i += 1
                        payload = seg.payload
                        if gso and seg.plain and len(payload) > tcb.snd_mss:
                            # a TSO packet (gso.py)
                            c["tcp.tx.segments"] += (len(payload) - 1) // tcb.snd_mss
                            ipv4.send_tso_frame(flow.path, src, dst, now, df, sp, dp, psum, seg.seq,
                                                seg.ack, seg.flags, seg.window, payload,
                                                seg._ts, tcb.snd_mss)
                            continue
                    else:
                        seg = out[i]
                        i += 1
                    raw = segment_bytes(psum, sp, dp, seg)
                    try:
                        # the segment's ECN field is the IP TOS / traffic class's (ecn.py)
                        ip_send(src, dst, PROTO_TCP, raw, now, df=df, tos=dscp | seg.ecn)
                    except OSError as e:  # no route yet: the retransmission timer retries
                        if e.errno == errno.EMSGSIZE:
                            too_big = True
                gen = host.routes.gen
                if gen != tcb.route_gen:  # the route changed: it reaches the MSS now
                    route_metrics.sync(tcb, host, gen)
            if too_big and tcb.on_path_mtu(host.path_mtu(tcb.remote_ip), now):
                continue  # built before the path MTU dropped: resent smaller now
            events = tcb._events
            if events:
                lst = self._spawned_by.get(tcb)
                if lst is not None and tcb in lst.pending and self._passive_events(lst, tcb, now):
                    continue  # aborted: send its RST
                q = self.events
                for ev in events:
                    q.append((tcb, ev))
                events.clear()
            st = tcb.state
            if (st is CLOSED or st is LISTEN) and tcb.finished:  # (no call per segment)
                self.kicked.pop(tcb, None)
                self._forget(tcb)
                self._timer_of.pop(tcb, None)
                return
            if tcb.user_closed and self._orphan_reset(tcb, now):
                continue  # send its RST
            # the TCB's next deadline into the timer index when it is earlier than the entry
            # there, or there is none (the one copy of that rule: a later deadline, or none,
            # leaves the entry, which comes due early and is asked again); the TCB's
            # get_timer() when no deadline changed since it was last asked, without the call
            if tcb._timer_stale:
                t = tcb.get_timer()
            else:
                slot = tcb.timer
                t = None if slot is None else slot[0]
            if t is not None:
                at = self._timer_of.get(tcb)
                if at is None or t < at:
                    self._index_timer(tcb, t)
            return

    def _index_timer(self, tcb: Tcb, t: float) -> None:
        """A deadline ``t`` of ``tcb``, earlier than the one indexed, into the timer index."""
        of = self._timer_of
        of[tcb] = t
        self._timer_seq += 1
        heap = self._timer_heap
        heapq.heappush(heap, (t, self._timer_seq, tcb))
        if len(heap) > 64 + 4 * len(of):  # too many stale entries: rebuild
            self._timer_heap = [(d, i, c) for i, (c, d) in enumerate(of.items())]
            heapq.heapify(self._timer_heap)

    def _orphan_reset(self, tcb: Tcb, now: float) -> bool:
        """Count the orphans (Linux tcp_close, tcp_check_oom): one over ``max_orphans`` is reset
        at once; one in TIME-WAIT no longer counts. True: ``tcb`` was just reset."""
        orphans = self.orphans
        if tcb.state is TIME_WAIT:
            orphans.pop(tcb, None)
        elif tcb not in orphans:
            if len(orphans) >= self.max_orphans:
                self.host.counters["tcp.abort_on_memory"] += 1  # Linux TCPAbortOnMemory
                tcb.abort(now)
                return True
            orphans[tcb] = None
        return False

    def _passive_events(self, lst: Listener, tcb: Tcb, now: float) -> bool:
        """The listener's bookkeeping for the events of a half-open child: it leaves the SYN
        queue when ESTABLISHED or lost; one that completes after the listener closed is aborted
        (True: its events are dropped, the RST is to be sent)."""
        for ev in tcb._events:
            if type(ev) is Connected or type(ev) is ConnectionLost:
                lst.pending.pop(tcb, None)
                if type(ev) is Connected and lst.closed:
                    tcb._events.clear()
                    tcb.abort(now)
                    return True
        return False

    # -- the application's side: user calls in, events out ----------------------------------------
    def kick(self, tcb: Tcb) -> None:
        """A user call changed ``tcb`` (data queued, buffer read, close): its output runs at the
        next ``poll``, which the driver's drain hook calls after every node call."""
        self.kicked[tcb] = None
        self.host.request_wake()

    def poll(self, now: float) -> bool:
        """Run the output of the TCBs kicked since the last poll; False if there were none."""
        dirty = self.kicked
        if not dirty:
            return False
        while dirty:
            tcb = next(iter(dirty))
            del dirty[tcb]
            if not tcb.finished:
                tcb.output(now)
            self.flush(tcb, now)  # a user call may have finished it: its RST, its end event
        return True

    def _forget(self, tcb: Tcb) -> None:
        self.orphans.pop(tcb, None)
        if self.conns.get(tcb.key) is tcb:
            del self.conns[tcb.key]
            self.history.append(ConnectionRecord.of(tcb))
            if self._ipv4 is not None and len(tcb.remote_ip) == 4:
                # out of the early demux with the table: it would keep the TCB (its buffers)
                self._ipv4.early_forget(tcb.remote_ip, tcb.local_ip, tcb.remote_port,
                                        tcb.local_port)
        lst = self._spawned_by.pop(tcb, None)
        if lst is not None:
            lst.pending.pop(tcb, None)
        if self._last_flow is not None and self._last_flow[0] is tcb:
            self._last_flow = None  # (it would keep the TCB)

    # -- timers (a Host timer source) -----------------------------------------------------------
    def get_timer(self) -> float | None:
        heap = self._timer_heap
        of = self._timer_of
        while heap:
            t, _, tcb = heap[0]
            if of.get(tcb) == t:
                return t
            heapq.heappop(heap)  # stale: the TCB's deadline moved earlier or it is gone
        return None

    def settle(self, now: float) -> bool:
        """Re-index the entries due at ``now`` whose TCB has nothing due (or is gone), up to the
        first that has: True if there was one, the index's answer had been early."""
        heap = self._timer_heap
        of = self._timer_of
        early = False
        while heap and heap[0][0] <= now:
            t, _, tcb = heap[0]
            if of.get(tcb) == t:
                deadline = tcb.get_timer() if self.conns.get(tcb.key) is tcb else None
                if deadline is not None and deadline <= now:
                    break
                early = True
                del of[tcb]
                heapq.heappop(heap)
                if deadline is not None:
                    self._index_timer(tcb, deadline)
            else:
                heapq.heappop(heap)  # stale: the TCB's deadline moved earlier or it is gone
        return early

    def handle_timer(self, now: float) -> None:
        heap = self._timer_heap
        of = self._timer_of
        due: list[Tcb] = []
        while heap and heap[0][0] <= now:
            t, _, tcb = heapq.heappop(heap)
            if of.get(tcb) == t:
                del of[tcb]
                due.append(tcb)
        if len(due) > 1 and len(self.conns) <= 64:
            order = {c: i for i, c in enumerate(self.conns.values())}  # as a scan would
            due.sort(key=lambda c: order.get(c, -1))
        for tcb in due:
            if self.conns.get(tcb.key) is not tcb:
                continue
            deadline = tcb.get_timer()
            if deadline is not None and deadline <= now:
                tcb.handle_timer(now)
                self.flush(tcb, now)
            elif deadline is not None:  # (its entry is gone: any deadline is earlier)
                self._index_timer(tcb, deadline)

    # -- introspection -----------------------------------------------------------------------------
    def ss(self) -> str:
        """An ``ss -tni``-like listing of listeners and connections."""
        rows = [f"{'State':<12} {'Recv-Q':>7} {'Send-Q':>7} {'Local':<24} {'Peer':<24} "
                "srtt(ms) rto(ms) mss  retrans"]
        for (ip, port, _fam) in sorted(self.listeners, key=lambda k: k[1]):
            local = f"{ip_str(ip) if ip else '*'}:{port}"
            rows.append(f"{'LISTEN':<12} {0:>7} {0:>7} {local:<24} {'*:*':<24}")
        for tcb in self.conns.values():
            srtt = f"{tcb.rtt.srtt * 1000:.1f}" if tcb.rtt.srtt is not None else "-"
            rows.append(
                f"{tcb.state.value:<12} {len(tcb.recvbuf):>7} {len(tcb.sendbuf):>7} "
                f"{ip_str(tcb.local_ip) + ':' + str(tcb.local_port):<24} "
                f"{ip_str(tcb.remote_ip) + ':' + str(tcb.remote_port):<24} "
                f"{srtt:>8} {tcb.rtt.rto * 1000:>7.0f} {tcb.snd_mss:<4} {tcb.stats.retransmits}")
        return "\n".join(rows)

    def summary(self) -> list[dict[str, Any]]:
        """One row per connection, finished (``history``) then live: addresses, the states
        entered, retransmissions, smoothed RTT (seconds; None before a sample), MSS, path MTU
        and bytes each way."""
        out = []
        conns: list[Tcb | ConnectionRecord] = [*self.history, *self.conns.values()]
        for c in conns:
            info = c.tcp_info()
            out.append({
                "node": self.host.name,
                "local": f"{ip_str(c.local_ip)}:{c.local_port}",
                "remote": f"{ip_str(c.remote_ip)}:{c.remote_port}",
                "states": list(c.states_entered),
                "retransmits": info["retransmits"],
                "srtt": info["srtt"],
                "mss": info["snd_mss"],
                "pmtu": c.path_mss + (60 if len(c.local_ip) == 16 else 40),
                "bytes_sent": info["bytes_acked"],
                "bytes_received": info["bytes_received"],
            })
            if info["ecn"]:  # negotiated (ecn.py): CE marks received, reductions for ECE
                out[-1]["ecn"] = info["ecn_figures"]
        return out
