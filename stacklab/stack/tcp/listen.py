"""SEGMENT ARRIVES for a segment that belongs to no connection: the CLOSED state (a RST, RFC
9293 §3.10.7.1), the LISTEN state (passive open, §3.10.7.2, with SYN cookies when the SYN queue
is full) and the SYN that may reopen a connection in TIME-WAIT (RFC 6191).

A :class:`Listener` is a passive OPEN; the layer finds it by ``(local address, port, family)``
and hands it the segments that match no TCB. A SYN gets a new TCB in SYN-RECEIVED, adopted by
the layer; the listener keeps the half-open ones in ``pending`` and the layer reports the
connection to the application once it is ESTABLISHED.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from stacklab.wire.tcp import ACK, CWR, ECE, FIN, RST, SYN, TcpView, build_tcp, encode_options

from . import ecn as _ecn
from .config import DEFAULT_MSS_V4, DEFAULT_MSS_V6, TcpConfig, initial_recv_buffer, our_wscale
from .context import TcpHost
from .fsm import LISTEN
from .segment import Segment, SegmentLike
from .seq import MASK, seq_add, seq_gt
from .syncookie import COUNTER_PERIOD, MAX_AGE_STEPS, SynCookies
from .tcb import Tcb
from .tfo import FastOpen

PROTO_TCP = 6


class Spawner(Protocol):
    """What a listener asks of the TCP layer (``TcpLayer`` is one)."""

    host: TcpHost
    conns: dict[tuple[bytes, int, bytes, int], Tcb]
    listeners: dict[tuple[bytes | None, int, int | None], Listener]
    max_connections: int
    max_syn_backlog: int
    syncookies: bool
    tfo: FastOpen

    @property
    def cookies(self) -> SynCookies: ...

    def tcb_kwargs(self, local_ip: bytes, local_port: int, remote_ip: bytes, remote_port: int,
                   now: float, config: TcpConfig, ifindex: int | None = None) -> dict[str, Any]: ...

    def adv_mss(self, dst: bytes, config: TcpConfig, ifindex: int | None = None) -> int: ...

    def adopt(self, tcb: Tcb, listener: Listener | None = None) -> None: ...

    def flush(self, tcb: Tcb, now: float) -> None: ...


class Listener:
    """A passive OPEN on ``(local_ip or any, port)``. ``on_established(tcb)`` is the
    application's accept callback: the API calls it for a connection this listener spawned once
    the layer reports it ESTABLISHED (the layer itself never calls it)."""

    state = LISTEN

    def __init__(self, layer: Spawner, local_ip: bytes | None, port: int, family: int | None,
                 on_established: Callable[[Tcb], None], config: TcpConfig,
                 backlog: int = 128) -> None:
        self.layer = layer
        self.local_ip = local_ip
        self.port = port
        self.family = family
        self.on_established = on_established
        self.config = config
        self.backlog = backlog
        self.pending: dict[Tcb, None] = {}  # SYN-RECEIVED children, oldest first
        self.closed = False
        self.last_overflow: float | None = None  # the SYN queue was last full (SYN cookies)
        self.tfo_children: dict[Tcb, None] = {}  # TCP Fast Open children (tfo.py's queue)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.layer.listeners.pop((self.local_ip, self.port, self.family), None)

    def segment_arrives(self, src: bytes, dst: bytes, v: TcpView, now: float,
                        ifindex: int | None, ip_ecn: int = 0) -> None:
        """RFC 9293 §3.10.7.2, the checks in the RFC's order."""
        layer = self.layer
        flags = v.flags
        if flags & RST:  # first check for an RST: ignore it
            return
        if flags & ACK:  # second check for an ACK: a RST, unless it returns one of our cookies
            if flags & SYN or not self._cookie_ack(src, dst, v, now, ifindex):
                send_reset(layer.host, dst, src, v, now)
            return
        if not flags & SYN:  # fourth: other text or control, drop it
            return
        if flags & FIN or (src == dst and v.src_port == v.dst_port):
            # impossible openings dropped as Linux does: SYN with FIN (tcp_rcv_state_process),
            # a LAND packet claiming to come from the listening socket itself
            layer.host.counters["tcp.drop.bad_syn"] += 1
            return
        # third check for a SYN (security/compartment checks do not apply)
        c = layer.host.counters
        if len(layer.conns) >= layer.max_connections:
            c["tcp.drop.conn_limit"] += 1
            return
        if len(self.pending) >= min(self.backlog, layer.max_syn_backlog):
            self.last_overflow = now
            if layer.syncookies:
                self._send_cookie(src, dst, v, now, ifindex, ip_ecn)
            else:
                c["tcp.drop.backlog"] += 1
            return
        tfo = layer.tfo.passive(self, src, dst, v)  # TCP Fast Open (RFC 7413)
        tcb = Tcb.accept_syn(v, dst, v.dst_port, src, v.src_port, now, ip_ecn, tfo=tfo,
                             **layer.tcb_kwargs(dst, v.dst_port, src, v.src_port, now,
                                                self.config, ifindex))
        self.pending[tcb] = None
        if tfo is not None and tfo.child:
            self.tfo_children[tcb] = None  # in the TFO queue until ESTABLISHED
        layer.adopt(tcb, self)
        c["tcp.passive_opens"] += 1
        layer.flush(tcb, now)

    # -- SYN cookies (syncookie.py) ---------------------------------------------------------------
    def _send_cookie(self, src: bytes, dst: bytes, v: TcpView, now: float,
                     ifindex: int | None, ip_ecn: int) -> None:
        """The SYN queue is full: answer with a SYN,ACK whose ISS is a cookie, keep no state.
        ECN, like wscale and SACK, only with timestamps (Linux)."""
        layer = self.layer
        cfg = self.config
        v6 = len(src) == 16
        peer_mss = v.mss() or (DEFAULT_MSS_V6 if v6 else DEFAULT_MSS_V4)
        cookies = layer.cookies
        iss = cookies.make(dst, v.dst_port, src, v.src_port, v.seq, peer_mss, now)
        adv_mss = layer.adv_mss(src, cfg, ifindex)
        ts = v.timestamps() if cfg.timestamps else None
        ecn = False
        if ts is not None:  # wscale, SACK and ECN ride in the low bits of our TSval
            ws = v.wscale() if cfg.window_scaling else None
            sack = cfg.sack and v.sack_permitted()
            ecn = _ecn.accept_syn(cfg, v, ip_ecn) is not None
            our_ws = our_wscale(cfg) if ws is not None else None
            opts = encode_options(mss=adv_mss, wscale=our_ws, sack_permitted=sack,
                                  timestamps=(cookies.ts_value(now, ws, sack, ecn), ts[0]))
        else:
            opts = encode_options(mss=adv_mss)
        window = min(initial_recv_buffer(cfg), 0xFFFF)
        raw = build_tcp(dst, src, v.dst_port, v.src_port, iss, seq_add(v.seq, 1),
                        SYN | ACK | (ECE if ecn else 0), window, b"", opts)
        host = layer.host
        c = host.counters
        c["tcp.syncookies.sent"] += 1
        c["tcp.tx.segments"] += 1
        try:
            host.ip_send(dst, src, PROTO_TCP, raw, now, df=True)
        except OSError:  # no route back: the client retries its SYN
            c["tcp.tx.no_route"] += 1

    def _cookie_ack(self, src: bytes, dst: bytes, v: TcpView, now: float,
                    ifindex: int | None) -> bool:
        """An ACK to a listener: if it carries one of our recent cookies, the connection is
        rebuilt from it (straight to ESTABLISHED). False: not a cookie (the caller resets)."""
        layer = self.layer
        c = layer.host.counters
        if not layer.syncookies or self.last_overflow is None \
                or now - self.last_overflow > (MAX_AGE_STEPS + 1) * COUNTER_PERIOD:
            return False
        if len(layer.conns) >= layer.max_connections:
            c["tcp.drop.conn_limit"] += 1
            return True
        cookie = (v.ack - 1) & MASK
        peer_isn = (v.seq - 1) & MASK
        mss = layer.cookies.check(dst, v.dst_port, src, v.src_port, peer_isn, cookie, now)
        if mss is None:
            c["tcp.syncookies.failed"] += 1
            return False
        cfg = self.config
        ts = v.timestamps() if cfg.timestamps else None
        ws: int | None
        ecn = False
        if ts is not None:
            ws, sack = SynCookies.ts_options(ts[1])
            if not cfg.window_scaling:
                ws = None
            sack = sack and cfg.sack
            ecn = SynCookies.ts_ecn(ts[1])
        else:
            ws, sack = None, False
        # the SYN as the cookie remembers it (an ECN request when ECN was accepted)
        syn = Segment(peer_isn, 0, SYN | (ECE | CWR if ecn else 0), v.window, mss=mss,
                      wscale=ws, sack_perm=sack, ts=(ts[0], 0) if ts is not None else None)
        kw = layer.tcb_kwargs(dst, v.dst_port, src, v.src_port, now, cfg, ifindex)
        kw["iss"] = cookie
        tcb = Tcb.accept_syn(syn, dst, v.dst_port, src, v.src_port, now, **kw)
        tcb.segments_to_send()  # the SYN,ACK it would send: the client already has ours
        tcb.ts_offset = layer.cookies.ts_offset  # our TSvals continue the cookie's clock
        layer.adopt(tcb, self)
        c["tcp.syncookies.recv"] += 1
        c["tcp.passive_opens"] += 1
        tcb.receive(v, now)
        layer.flush(tcb, now)
        return True


def send_reset(host: TcpHost, local: bytes, remote: bytes, v: TcpView, now: float) -> None:
    """RST for a segment to no connection (RFC 9293 §3.10.7.1): <SEQ=SEG.ACK><CTL=RST> if it
    had an ACK, else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>."""
    if v.flags & ACK:
        seq, ack, flags = v.ack, 0, RST
    else:
        seg_len = v.payload_len + (1 if v.flags & SYN else 0) + (1 if v.flags & FIN else 0)
        seq, ack, flags = 0, seq_add(v.seq, seg_len), RST | ACK
    raw = build_tcp(local, remote, v.dst_port, v.src_port, seq, ack, flags, 0)
    host.counters["tcp.tx.rst"] += 1
    try:
        host.ip_send(local, remote, PROTO_TCP, raw, now, df=True)
    except OSError:  # no route back to the sender: nothing to reset
        host.counters["tcp.tx.no_route"] += 1


def syn_acceptable_in_time_wait(tcb: Tcb, v: SegmentLike) -> bool:
    """RFC 6191 §2 (and RFC 9293 §3.10.7.4): a SYN may reopen a connection in TIME-WAIT when its
    timestamp is newer than the last one seen, or, without timestamps, its sequence number is
    above RCV.NXT."""
    if tcb.ts_ok:
        ts = v.timestamps()
        if ts is not None:
            return seq_gt(ts[0], tcb.ts_recent)
    return seq_gt(v.seq, tcb.rcv_nxt)
