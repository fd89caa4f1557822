"""The TCP layer of a Host: demultiplexing by 4-tuple, listeners, ephemeral ports, RSTs for
closed ports, ICMP errors, timers, and the glue between TCBs and the IP layer.

It registers itself with the host (``register_protocol(6)``, ``register_icmp_error(6)``,
``add_timer_source``). Each TCB is sans-IO; after anything touches one, ``flush(tcb, now)`` builds
its segments into bytes (``build_tcp``), hands them to ``host.ip_send`` and passes its events to
the socket object on top (``tcb.user``, an object with ``tcp_event(tcb, event)``).
"""

from __future__ import annotations

import errno
import heapq
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stacklab.wire.addr import ip_str
from stacklab.wire.errors import MalformedPacket
from stacklab.wire.tcp import ACK, FIN, RST, SYN, TcpView, build_tcp, encode_options

from .config import DEFAULT_MSS_V4, DEFAULT_MSS_V6, TcpConfig, our_wscale
from .congestion import create_congestion
from .events import Connected, ConnectionLost
from .fsm import LISTEN, SYN_SENT, TIME_WAIT, Event
from .isn import IsnGenerator
from .output import segment_bytes
from .segment import Segment
from .seq import MASK, seq_add, seq_gt
from .syncookie import COUNTER_PERIOD, MAX_AGE_STEPS, SynCookies
from .tcb import Tcb

if TYPE_CHECKING:
    from stacklab.stack.host import Host

EPHEMERAL_LOW = 32768  # Linux ip_local_port_range
EPHEMERAL_HIGH = 60999
PROTO_TCP = 6
HISTORY_LIMIT = 10000  # finished connections kept for the summary
MAX_SYN_BACKLOG = 256  # Linux tcp_max_syn_backlog (per listener here)
MAX_CONNECTIONS = 65536  # per host: TCBs of every state, TIME-WAIT included
CHALLENGE_ACK_LIMIT = 1000  # per second per host (Linux tcp_challenge_ack_limit, RFC 5961 §7)

class Listener:
    """A passive OPEN on ``(local_ip or any, port)``. ``on_established(tcb)`` is called when a
    connection it spawned reaches ESTABLISHED."""

    state = LISTEN

    def __init__(self, layer: TcpLayer, local_ip: bytes | None, port: int, family: int | None,
                 on_established: Callable[[Tcb], None], config: TcpConfig,
                 backlog: int = 128) -> None:
        self.layer = layer
        self.local_ip = local_ip
        self.port = port
        self.family = family
        self.on_established = on_established
        self.config = config
        self.backlog = backlog
        self.pending: set[Tcb] = set()  # SYN-RECEIVED children
        self.closed = False
        self.last_overflow: float | None = None  # the SYN queue was last full (SYN cookies)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.layer.listeners.pop((self.local_ip, self.port, self.family), None)


class TcpLayer:
    def __init__(self, host: Host, config: TcpConfig | None = None) -> None:
        self.host = host
        self.config = config or TcpConfig()
        self.conns: dict[tuple[bytes, int, bytes, int], Tcb] = {}
        self.listeners: dict[tuple[bytes | None, int, int | None], Listener] = {}
        self.history: list[Tcb] = []  # finished connections, for summaries
        self.isn = IsnGenerator.from_rng(host.rng)
        self._next_port = EPHEMERAL_LOW + host.rng.randrange(EPHEMERAL_HIGH - EPHEMERAL_LOW)
        self._dirty: set[Tcb] = set()  # TCBs a user call touched: output() at the next timer
        self._dispatching: Tcb | None = None  # the TCB whose events flush() is handing out
        # Timer index: every TCB's next deadline, noted after each flush (everything that
        # changes a TCB ends in flush or kick), in a heap with lazy deletion: get_timer is
        # O(log n) instead of a scan of every connection per frame (10,000 connections).
        self._timer_heap: list[tuple[float, int, Tcb]] = []
        self._timer_of: dict[Tcb, float] = {}
        self._timer_seq = 0
        # hardening knobs (sysctl-like, per host)
        self.syncookies = True  # Linux tcp_syncookies = 1: only when the SYN queue is full
        self.max_syn_backlog = MAX_SYN_BACKLOG
        self.max_connections = MAX_CONNECTIONS
        self.challenge_ack_limit = CHALLENGE_ACK_LIMIT
        self._challenge_slot = -1
        self._challenge_count = 0
        self._cookies: SynCookies | None = None
        self.rx_handler = self.receive  # what IPv4's TCP frame path looks for
        host.register_protocol(PROTO_TCP, self.rx_handler)
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
            import random

            self._cookies = SynCookies(random.Random(self.host.rng.getrandbits(64)))
        return self._cookies

    def challenge_ack_ok(self, now: float) -> bool:
        """The host-wide challenge-ACK budget (RFC 5961 §7): ``challenge_ack_limit`` a second."""
        slot = int(now)
        if slot != self._challenge_slot:
            self._challenge_slot = slot
            self._challenge_count = 0
        if self._challenge_count >= self.challenge_ack_limit:
            self.host.counters["tcp.challenge_ack.limited"] += 1
            return False
        self._challenge_count += 1
        return True

    def _adopt(self, tcb: Tcb) -> None:
        tcb.challenge_ack_ok = self.challenge_ack_ok
        self.conns[tcb.key] = tcb

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

    def _adv_mss(self, dst: bytes, config: TcpConfig, ifindex: int | None = None) -> int:
        mss = self._iface_mtu(dst, ifindex) - (40 if len(dst) == 4 else 60)
        if config.maxseg is not None:
            mss = min(mss, config.maxseg)
        return max(mss, 88)

    def _new_tcb_kwargs(self, local_ip: bytes, local_port: int, remote_ip: bytes,
                        remote_port: int, now: float, config: TcpConfig,
                        ifindex: int | None = None) -> dict[str, Any]:
        host = self.host
        name = f"{ip_str(local_ip)}:{local_port}>{ip_str(remote_ip)}:{remote_port}"

        def trace(t: float, event: str, details: dict[str, Any]) -> None:
            host.trace(t, "tcp", event, conn=name, **details)

        return {
            "iss": self.isn.isn(local_ip, local_port, remote_ip, remote_port, now),
            "config": config,
            "adv_mss": self._adv_mss(remote_ip, config, ifindex),
            "path_mtu": host.path_mtu(remote_ip),
            "rng": host.rng,
            "trace": trace if host.tracer is not None else None,
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
                config: TcpConfig | None = None, user: Any = None) -> Tcb:
        """Active OPEN. Raises OSError(ENETUNREACH) without a route or source address."""
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
                  **self._new_tcb_kwargs(src, port, remote_ip, remote_port, now, cfg))
        tcb.user = user
        self._adopt(tcb)
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

    def _find_listener(self, dst: bytes, port: int) -> Listener | None:
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
                          getattr(info, "ifindex", None))

    def receive_view(self, src: bytes, dst: bytes, v: TcpView, checksum_ok: bool | None,
                     now: float, bcast: bool, ifindex: int | None) -> None:
        """A segment whose view is built (``checksum_ok``: the verdict when already known, as
        from ``parse_ipv4_tcp_frame``; None: check it here). Of the IP layer's ``RxInfo``, TCP
        reads only ``bcast`` (dropped) and ``ifindex`` (MSS of a new connection)."""
        host = self.host
        c = host.counters
        if v.header_len > 20:
            try:
                v.timestamps()  # scans (and validates) all options once
            except MalformedPacket as e:
                c[f"drop.tcp.{e.field}"] += 1
                host.trace(now, "tcp", "drop", reason=e.message)
                return
        if not (v.checksum_ok(src, dst) if checksum_ok is None else checksum_ok):
            c["drop.tcp.bad_checksum"] += 1
            host.trace(now, "tcp", "drop", reason="bad checksum")
            return
        if bcast:
            c["drop.tcp.broadcast"] += 1
            return
        c["tcp.rx.segments"] += 1
        key = (dst, v.dst_port, src, v.src_port)
        tcb = self.conns.get(key)
        if tcb is not None:
            if tcb.state is TIME_WAIT and v.flags & (SYN | ACK | RST) == SYN \
                    and self._find_listener(dst, v.dst_port) is not None \
                    and syn_acceptable_in_time_wait(tcb, v):
                tcb._move(now, Event.SYN_IN_TIME_WAIT, "new SYN in TIME-WAIT (RFC 6191)")
                self._forget(tcb)
            else:
                tcb.receive(v, now)
                self.flush(tcb, now)
                return
        lst = self._find_listener(dst, v.dst_port)
        flags = v.flags
        if lst is None:
            c["tcp.no_port"] += 1
            if not flags & RST:
                self._send_reset(dst, src, v, now)
            return
        # LISTEN (RFC 9293 §3.10.7.2)
        if flags & RST:
            return
        if flags & ACK:
            if flags & SYN or not self._cookie_ack(lst, src, dst, v, now, ifindex):
                self._send_reset(dst, src, v, now)
            return
        if not flags & SYN:
            return
        if len(self.conns) >= self.max_connections:
            c["tcp.drop.conn_limit"] += 1
            return
        if len(lst.pending) >= min(lst.backlog, self.max_syn_backlog):
            lst.last_overflow = now
            if self.syncookies:
                self._send_cookie(lst, src, dst, v, now, ifindex)
            else:
                c["tcp.drop.backlog"] += 1
            return
        tcb = Tcb.accept_syn(v, dst, v.dst_port, src, v.src_port, now,
                             **self._new_tcb_kwargs(dst, v.dst_port, src, v.src_port, now,
                                                    lst.config, ifindex))
        tcb.user = None
        tcb.listener = lst
        lst.pending.add(tcb)
        self._adopt(tcb)
        c["tcp.passive_opens"] += 1
        self.flush(tcb, now)

    # -- SYN cookies (syncookie.py) ---------------------------------------------------------------
    def _send_cookie(self, lst: Listener, src: bytes, dst: bytes, v: TcpView, now: float,
                     ifindex: int | None) -> None:
        """The SYN queue is full: answer with a SYN,ACK whose ISS is a cookie, keep no state."""
        cfg = lst.config
        v6 = len(src) == 16
        peer_mss = v.mss() or (DEFAULT_MSS_V6 if v6 else DEFAULT_MSS_V4)
        cookies = self.cookies
        iss = cookies.make(dst, v.dst_port, src, v.src_port, v.seq, peer_mss, now)
        adv_mss = self._adv_mss(src, cfg, ifindex)
        ts = v.timestamps() if cfg.timestamps else None
        if ts is not None:  # wscale and SACK ride in the low bits of our TSval
            ws = v.wscale() if cfg.window_scaling else None
            sack = cfg.sack and v.sack_permitted()
            our_ws = our_wscale(cfg.recv_buffer) if ws is not None else None
            opts = encode_options(mss=adv_mss, wscale=our_ws, sack_permitted=sack,
                                  timestamps=(cookies.ts_value(now, ws, sack), ts[0]))
        else:
            opts = encode_options(mss=adv_mss)
        window = min(cfg.recv_buffer, 0xFFFF)
        raw = build_tcp(dst, src, v.dst_port, v.src_port, iss, seq_add(v.seq, 1), SYN | ACK,
                        window, b"", opts)
        c = self.host.counters
        c["tcp.syncookies.sent"] += 1
        c["tcp.tx.segments"] += 1
        self.host.ip_send(dst, src, PROTO_TCP, raw, now, df=True)

    def _cookie_ack(self, lst: Listener, src: bytes, dst: bytes, v: TcpView, now: float,
                    ifindex: int | None) -> bool:
        """An ACK to a listener: if it carries one of our recent cookies, the connection is
        rebuilt from it (straight to ESTABLISHED). False: not a cookie (the caller resets)."""
        c = self.host.counters
        if not self.syncookies or lst.last_overflow is None \
                or now - lst.last_overflow > (MAX_AGE_STEPS + 1) * COUNTER_PERIOD:
            return False
        if len(self.conns) >= self.max_connections:
            c["tcp.drop.conn_limit"] += 1
            return True
        cookie = (v.ack - 1) & MASK
        peer_isn = (v.seq - 1) & MASK
        mss = self.cookies.check(dst, v.dst_port, src, v.src_port, peer_isn, cookie, now)
        if mss is None:
            c["tcp.syncookies.failed"] += 1
            return False
        cfg = lst.config
        ts = v.timestamps() if cfg.timestamps else None
        if ts is not None:
            ws, sack = SynCookies.ts_options(ts[1])
            if not cfg.window_scaling:
                ws = None
            sack = sack and cfg.sack
        else:
            ws, sack = None, False
        syn = Segment(peer_isn, 0, SYN, v.window, mss=mss, wscale=ws, sack_perm=sack,
                      ts=(ts[0], 0) if ts is not None else None)
        kw = self._new_tcb_kwargs(dst, v.dst_port, src, v.src_port, now, cfg, ifindex)
        kw["iss"] = cookie
        tcb = Tcb.accept_syn(syn, dst, v.dst_port, src, v.src_port, now, **kw)
        tcb.segments_to_send()  # the SYN,ACK it would send: the client already has ours
        tcb.ts_offset = self.cookies.ts_offset  # our TSvals continue the cookie's clock
        tcb.user = None
        tcb.listener = lst
        self._adopt(tcb)
        c["tcp.syncookies.recv"] += 1
        c["tcp.passive_opens"] += 1
        tcb.receive(v, now)
        self.flush(tcb, now)
        return True

    def _send_reset(self, local: bytes, remote: bytes, v: TcpView, now: float) -> None:
        """RST for a segment to no connection (RFC 9293 §3.10.7.1)."""
        if v.flags & ACK:
            seq, ack, flags = v.ack, 0, RST
        else:
            seg_len = v.payload_len + (1 if v.flags & SYN else 0) + (1 if v.flags & FIN else 0)
            seq, ack, flags = 0, seq_add(v.seq, seg_len), RST | ACK
        raw = build_tcp(local, remote, v.dst_port, v.src_port, seq, ack, flags, 0)
        self.host.counters["tcp.tx.rst"] += 1
        self.host.ip_send(local, remote, PROTO_TCP, raw, now, df=True)

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
        if kind == "packet-too-big":
            # validated by the host (quoted seq in SND.UNA..SND.MAX) and already in its cache
            if tcb.on_path_mtu(self.host.path_mtu(qdst), now):
                self.flush(tcb, now)
        elif kind == "unreachable" and tcb.state is SYN_SENT:
            port_unreach = (code == 3) if len(qsrc) == 4 else (code == 4)
            if port_unreach:
                tcb._fail(now, Event.RCV_RST, ConnectionRefusedError("port unreachable"),
                          "ICMP port unreachable in SYN-SENT")
                self.flush(tcb, now)

    # -- output and events ------------------------------------------------------------------------
    def flush(self, tcb: Tcb, now: float) -> None:
        host = self.host
        dirty = self._dirty
        while True:  # again when an event callback touched the TCB (was a tail recursion)
            out = tcb._out  # segments_to_send(), without the call
            too_big = False
            if out:
                tcb._out = []
                dst = tcb.remote_ip
                src, sp, dp, psum = tcb.local_ip, tcb.local_port, tcb.remote_port, tcb.tx_psum
                c = host.counters
                ip_send = host.ip_send
                for seg in out:
                    raw = segment_bytes(psum, sp, dp, seg)
                    c["tcp.tx.segments"] += 1
                    if seg.flags & RST:
                        c["tcp.tx.rst"] += 1
                    if ip_send(src, dst, PROTO_TCP, raw, now, df=True) == errno.EMSGSIZE:
                        too_big = True
            if too_big and tcb.on_path_mtu(host.path_mtu(tcb.remote_ip), now):
                continue  # built before the path MTU dropped: resent smaller now
            events = tcb._events
            if events:
                outer = self._dispatching
                self._dispatching = tcb
                try:
                    while events:
                        self._dispatch(tcb, events.popleft())
                finally:
                    self._dispatching = outer
            if tcb.finished:
                dirty.discard(tcb)
                self._forget(tcb)
                self._timer_of.pop(tcb, None)
                return
            if tcb in dirty:  # the user wrote/read/closed from inside an event callback
                dirty.discard(tcb)
                tcb.output(now)
                continue
            # _note_timer, inline (after every segment)
            t = tcb.get_timer()
            if t is None:
                self._timer_of.pop(tcb, None)
            elif self._timer_of.get(tcb) != t:
                self._note_timer(tcb)
            return

    def _note_timer(self, tcb: Tcb) -> None:
        t = tcb.get_timer()
        of = self._timer_of
        if t is None:
            of.pop(tcb, None)
            return
        if of.get(tcb) != t:
            of[tcb] = t
            self._timer_seq += 1
            heap = self._timer_heap
            heapq.heappush(heap, (t, self._timer_seq, tcb))
            if len(heap) > 64 + 4 * len(of):  # too many stale entries: rebuild
                self._timer_heap = [(d, i, c) for i, (c, d) in enumerate(of.items())]
                heapq.heapify(self._timer_heap)

    def kick(self, tcb: Tcb) -> None:
        """A user call changed ``tcb`` (data queued, buffer read, close): run its output soon,
        from the host's timer, never re-entrantly from inside an event callback."""
        self._dirty.add(tcb)
        if tcb is not self._dispatching:  # else the flush dispatching its events runs it
            self.host.request_wake()

    def kick_read(self, tcb: Tcb) -> None:
        """The application took bytes out of ``tcb``'s receive buffer. Reading changes nothing on
        the sending side, so all ``output()`` could do now is an ACK already owed or a window
        update: ``tcb`` is kicked only when one is due (not after every segment read)."""
        if tcb._ack_now or tcb.window_update_due():
            self.kick(tcb)

    def _dispatch(self, tcb: Tcb, ev: Any) -> None:
        user = tcb.user
        if user is not None:
            user.tcp_event(tcb, ev)
            return
        lst = tcb.listener
        if lst is not None:
            if isinstance(ev, Connected):
                lst.pending.discard(tcb)
                if lst.closed:
                    tcb.abort(tcb.transitions[-1][0])
                    return
                lst.on_established(tcb)
                return
            if isinstance(ev, ConnectionLost):
                lst.pending.discard(tcb)

    def _forget(self, tcb: Tcb) -> None:
        if self.conns.get(tcb.key) is tcb:
            del self.conns[tcb.key]
            self.history.append(tcb)
            if len(self.history) > HISTORY_LIMIT:
                del self.history[: len(self.history) - HISTORY_LIMIT]
        lst = getattr(tcb, "listener", None)
        if lst is not None:
            lst.pending.discard(tcb)

    # -- timers (a Host timer source) -----------------------------------------------------------
    def get_timer(self) -> float | None:
        if self._dirty:
            return 0.0
        heap = self._timer_heap
        of = self._timer_of
        while heap:
            t, _, tcb = heap[0]
            if of.get(tcb) == t:
                return t
            heapq.heappop(heap)  # stale: the TCB's deadline moved or it is gone
        return None

    def handle_timer(self, now: float) -> None:
        while self._dirty:
            tcb = self._dirty.pop()
            if not tcb.finished:
                tcb.output(now)
                self.flush(tcb, now)
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
            t = tcb.get_timer()
            if t is not None and t <= now:
                tcb.handle_timer(now)
                self.flush(tcb, now)
            else:
                self._note_timer(tcb)

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
        out = []
        for tcb in [*self.history, *self.conns.values()]:
            out.append({
                "node": self.host.name,
                "local": f"{ip_str(tcb.local_ip)}:{tcb.local_port}",
                "remote": f"{ip_str(tcb.remote_ip)}:{tcb.remote_port}",
                "states": tcb.states_entered,
                "retransmits": tcb.stats.retransmits,
                "mss": tcb.snd_mss,
                "pmtu": tcb.path_mss + (60 if tcb.v6 else 40),
                "bytes_sent": tcb.stats.bytes_acked,
                "bytes_received": tcb.stats.bytes_received,
            })
        return out


def syn_acceptable_in_time_wait(tcb: Tcb, v: TcpView) -> bool:
    """RFC 6191 §2 (and RFC 9293 §3.10.7.4): a SYN may reopen a connection in TIME-WAIT when its
    timestamp is newer than the last one seen, or, without timestamps, its sequence number is
    above RCV.NXT."""
    if tcb.ts_ok:
        ts = v.timestamps()
        if ts is not None:
            return seq_gt(ts[0], tcb.ts_recent)
    return seq_gt(v.seq, tcb.rcv_nxt)
