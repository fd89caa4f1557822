"""Per-connection TCP knobs (the socket options of a real stack) and counters."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

DEFAULT_MSS_V4 = 536  # RFC 9293 §3.7.1: assumed when the peer sends no MSS option
DEFAULT_MSS_V6 = 1220  # RFC 8200 §8.3
TS_OPT_LEN = 12  # nop, nop, timestamps: carried by every segment once negotiated
DUPACK_THRESHOLD = 3  # RFC 5681 §3.2 DupThresh


@dataclass(slots=True)
class TcpConfig:
    """Per-connection knobs (the socket options of a real stack)."""

    # buffers as Linux's (receive: bytes of payload here, Linux counts its skb overhead too;
    # send: skb true sizes, as Linux, sndbuf.py): each connection starts with the middle value
    # of net.ipv4.tcp_rmem/tcp_wmem and autotunes up to the last (the receive side by the rate
    # the application reads, tcp_moderate_rcvbuf; the send side by cwnd when a writer ran
    # short); the window scale is chosen from the receive maximum
    rmem: tuple[int, int, int] = (4096, 131072, 6291456)
    wmem: tuple[int, int, int] = (4096, 16384, 4194304)
    moderate_rcvbuf: bool = True
    # SO_RCVBUF / SO_SNDBUF: a fixed buffer of this size, no autotuning (Linux SOCK_*BUF_LOCK)
    recv_buffer: int | None = None
    send_buffer: int | None = None
    msl: float = 30.0  # TIME-WAIT lasts 2*MSL = 60 s, as Linux (TCP_TIMEWAIT_LEN)
    nodelay: bool = False  # TCP_NODELAY: no Nagle
    cork: bool = False  # TCP_CORK: short segments wait (until uncorked or ~200 ms)
    # TCP_NOTSENT_LOWAT (0: net.ipv4.tcp_notsent_lowat's, the default below): a write takes
    # more only while fewer bytes than this are queued and not yet sent (Linux
    # tcp_stream_memory_free); bytes that leave at once do not count
    notsent_lowat: int = 0
    notsent_lowat_default: int = 0xFFFFFFFF
    maxseg: int | None = None  # TCP_MAXSEG: clamps the MSS advertised and used
    min_snd_mss: int = 48  # Linux net.ipv4.tcp_min_snd_mss: the send MSS never goes below it
    window_scaling: bool = True
    timestamps: bool = True
    sack: bool = True
    # the delayed-ACK timeout adapts between these (Linux TCP_ATO_MIN/TCP_DELACK_MIN and
    # TCP_DELACK_MAX); RFC 9293 §3.8.6.3 requires less than 0.5 s
    delack_timeout: float = 0.04
    delack_max: float = 0.2
    initial_rto: float = 1.0  # RFC 6298 §2.1
    min_rto: float = 0.2  # Linux TCP_RTO_MIN (RFC 6298 says 1 s, "MAY" be less)
    max_rto: float = 120.0  # Linux TCP_RTO_MAX
    syn_retries: int = 6  # Linux tcp_syn_retries: 1+2+4+...+64 = 127 s before giving up
    synack_retries: int = 5  # Linux tcp_synack_retries: a passive open's SYN-ACK, 63 s in all
    connect_timeout: float | None = None  # overrides syn_retries when set
    max_retries: int = 15  # Linux tcp_retries2
    orphan_retries: int = 0  # Linux tcp_orphan_retries (0: 8 while the peer seems alive)
    invalid_ratelimit: float = 0.5  # Linux tcp_invalid_ratelimit: ACKs to invalid segments
    fin_wait_2_timeout: float = 60.0  # Linux tcp_fin_timeout, after a full close only
    persist_max: float = 120.0  # zero-window probe interval cap, Linux TCP_RTO_MAX
    max_ooo_pieces: int = 64
    congestion: str = "cubic"  # TCP_CONGESTION; Linux's default is CUBIC
    max_pacing_rate: int | None = None  # SO_MAX_PACING_RATE, bytes/s; setting it paces (pacing.py)
    qdisc: str = "pfifo_fast"  # net.core.default_qdisc: "fq" paces every connection, as Linux
    slow_start_after_idle: bool = True  # Linux net.ipv4.tcp_slow_start_after_idle (RFC 5681 §4.1)
    record_cwnd: bool = False  # keep (time, cwnd, ssthresh) samples in Tcb.cwnd_log
    keepalive: bool = False  # SO_KEEPALIVE
    keepidle: float = 7200.0  # TCP_KEEPIDLE (Linux tcp_keepalive_time)
    keepintvl: float = 75.0  # TCP_KEEPINTVL
    keepcnt: int = 9  # TCP_KEEPCNT
    user_timeout: float | None = None  # TCP_USER_TIMEOUT (RFC 5482): unacked data this long fails
    oobinline: bool = False  # SO_OOBINLINE: the urgent byte stays in the stream (urgent.py)
    linger: float | None = None  # SO_LINGER (None: off); 0: close() aborts with a RST, as Linux
    max_pending_writes: int | None = None  # (reserved for the API layer)
    mtu_probing: str = "blackhole"  # PLPMTUD (RFC 4821): off | blackhole (Linux 1) | always
    base_mss: int = 1024  # PLPMTUD fallback after a black hole (Linux tcp_base_mss)
    # Linux net.ipv4.tcp_ecn (ecn.py, accecn.py): 0 off; 1 request and accept ECN (RFC 3168); 2
    # accept ECN only; 3 request and accept AccECN (RFC 9768); 4 accept AccECN, request ECN; 5
    # accept AccECN, request nothing (an AccECN listener accepts classic ECN too)
    ecn: int = 2
    ecn_option: int = 2  # Linux tcp_ecn_option: AccECN option 0 never, 1 on changes, 2 always
    ecn_option_beacon: int = 3  # Linux tcp_ecn_option_beacon: with 1, at least N options an RTT
    ecn_fallback: bool = True  # Linux net.ipv4.tcp_ecn_fallback: retransmitted SYNs without ECN
    # -- TCP Fast Open (RFC 7413, tfo.py) --
    fastopen_qlen: int = 0  # TCP_FASTOPEN on a listener: its TFO queue (0: not a TFO listener)
    fastopen_connect: bool = False  # TCP_FASTOPEN_CONNECT: connect() defers the SYN to the write
    fastopen_no_cookie: bool = False  # TCP_FASTOPEN_NO_COOKIE: data in SYN without a cookie
    fastopen_key: bytes | None = None  # TCP_FASTOPEN_KEY on a listener (None: the host's key)
    # -- end TCP Fast Open --
    # loss detection as Linux's net.ipv4.tcp_recovery bits (rack.py): 0x1 RACK (RFC 8985),
    # 0x4 no DupThresh shortcut in RACK's reordering window; 0: RFC 6675 DupThresh only
    recovery: int = 1
    early_retrans: int = 3  # Linux tcp_early_retrans: 3 and 4 turn tail loss probes on
    frto: int = 2  # Linux tcp_frto: F-RTO's spurious-timeout detection (RFC 5682, with SACK)
    min_tso_segs: int = 2  # Linux tcp_min_tso_segs: smallest TSO packet, where PSH falls (tso.py)
    pmtudisc: int = 1  # IP_MTU_DISCOVER (stack/pmtudisc.py): IP_PMTUDISC_WANT, Linux's default
    # IP_TOS / IPV6_TCLASS: the TOS byte of the connection's packets, ECN bits clear (TCP's own,
    # ecn.py). Linux also drops the socket's cached route then; stacklab caches none per socket
    # (every output looks the path up), so there is nothing to refresh
    tos: int = 0

    def replace(self, **kw: Any) -> TcpConfig:
        # dataclasses.replace, not asdict(): every field is a scalar, and asdict's deep copy
        # cost ~0.3 ms per connection (bench/scale.py)
        return dataclasses.replace(self, **kw)


@dataclass(init=False)
class TcpStats:
    # one per connection end: the counters most connections move are slots, set to 0 here;
    # the others are class attributes, 0 (set below), and live in the instance's __dict__
    # once counted (0.1 KiB less per idle connection end, issue 23 item 4)
    __slots__ = ("segs_in", "segs_out", "bytes_sent", "bytes_retrans", "bytes_acked",
                 "bytes_received", "retransmits", "fast_retransmits", "dup_acks_in",
                 "ooo_segments", "window_updates", "delayed_acks", "recoveries",
                 "sack_blocks_out", "__dict__")
    segs_in: int
    segs_out: int
    bytes_sent: int  # payload bytes sent, retransmissions included
    bytes_retrans: int
    bytes_acked: int
    bytes_received: int  # in-order payload bytes delivered to the receive buffer
    retransmits: int  # segments retransmitted (RTO, fast retransmit, SYN/FIN)
    rto_expiries: int
    fast_retransmits: int
    dup_acks_in: int
    ooo_segments: int
    dup_segments: int
    unacceptable: int  # failed the RFC 9293 acceptance test
    paws_drops: int
    ooo_dropped: int  # out-of-order pieces dropped because the reassembly queue was full
    zero_window_probes: int
    window_updates: int
    challenge_acks: int
    challenge_acks_limited: int  # not sent: per-connection or host rate limit (RFC 5961 §7)
    oow_acks_limited: int  # ACKs to out-of-window segments not sent (rate limit)
    delayed_acks: int
    recoveries: int  # fast recovery episodes entered
    dsacks_in: int  # D-SACK blocks received (RFC 2883): unneeded retransmissions
    dsacks_out: int
    sack_blocks_out: int  # ACKs sent carrying SACK blocks
    keepalive_probes: int
    ecn_ce_in: int  # segments received with CE (RFC 3168), ECN negotiated
    ecn_reductions: int  # cwnd reductions for ECE (at most one per window)
    accecn_ce_delivered: int  # AccECN (RFC 9768): CE-marked segments the peer reported (s.cep)
    loss_probes: int  # tail loss probes sent (RFC 8985 §7, Linux TCPLossProbes)
    loss_probe_recoveries: int  # a probe repaired a loss (Linux TCPLossProbeRecovery)
    rack_reo_timeouts: int  # RACK reordering timer expiries
    spurious_undos: int  # recoveries/timeouts undone as spurious (Linux TCP*Undo)

    def __init__(self) -> None:
        self.segs_in = self.segs_out = self.bytes_sent = self.bytes_retrans = 0
        self.bytes_acked = self.bytes_received = self.retransmits = 0
        self.fast_retransmits = self.dup_acks_in = self.ooo_segments = 0
        self.window_updates = self.delayed_acks = self.recoveries = self.sack_blocks_out = 0


for _f in dataclasses.fields(TcpStats):
    if _f.name not in TcpStats.__slots__:
        setattr(TcpStats, _f.name, 0)


def our_wscale(cfg: TcpConfig) -> int:
    """The window scale we offer (RFC 7323 §2.2) as Linux chooses it (tcp_select_initial_window):
    enough for the largest the receive buffer may grow to, log2(space) - 15, 0..14."""
    space = max(cfg.recv_buffer or 0, cfg.rmem[2])
    return min(max(space.bit_length() - 1 - 15, 0), 14)


def initial_recv_buffer(cfg: TcpConfig) -> int:
    """The receive buffer a connection starts with: SO_RCVBUF's, else tcp_rmem's default."""
    return cfg.recv_buffer if cfg.recv_buffer is not None else cfg.rmem[1]


def unconnected_send_buffer(cfg: TcpConfig) -> int:
    """The send buffer a socket has until its connection is established: SO_SNDBUF's, else
    tcp_wmem's default (Linux tcp_init_sock sets sk_sndbuf to tcp_wmem[1]; it grows only at
    establishment, initial_send_buffer)."""
    return cfg.send_buffer if cfg.send_buffer is not None else cfg.wmem[1]


def initial_send_buffer(cfg: TcpConfig, mss: int, windows: int) -> int:
    """The send buffer a connection has once established: SO_SNDBUF's, else tcp_wmem's default
    grown to ``windows`` initial windows (the congestion control's ``sndbuf_expand``; Linux
    tcp_init_buffer_space -> tcp_sndbuf_expand)."""
    if cfg.send_buffer is not None:
        return cfg.send_buffer
    return send_buffer_for(cfg, 10, mss, windows)


# The smallest buffers a socket option leaves (Linux include/net/sock.h): a send buffer holds at
# least two minimal skbs, a receive buffer one; an skb's minimum true size is 2048 bytes of data
# room plus struct sk_buff (256 bytes after cache alignment, x86_64)
TCP_SKB_MIN_TRUESIZE = 2048 + 256
SOCK_MIN_SNDBUF = 2 * TCP_SKB_MIN_TRUESIZE
SOCK_MIN_RCVBUF = TCP_SKB_MIN_TRUESIZE


def so_sndbuf(value: int) -> int:
    """The send buffer SO_SNDBUF sets (Linux sock_setsockopt): twice the value, for Linux's
    bookkeeping overhead (socket(7)), at least SOCK_MIN_SNDBUF."""
    return max(2 * value, SOCK_MIN_SNDBUF)


def so_rcvbuf(value: int) -> int:
    """The receive buffer SO_RCVBUF sets (Linux __sock_set_rcvbuf): twice the value, at least
    SOCK_MIN_RCVBUF."""
    return max(2 * value, SOCK_MIN_RCVBUF)


def send_buffer_for(cfg: TcpConfig, segments: int, mss: int, windows: int = 2) -> int:
    """Linux's send buffer (sk_sndbuf, in skb true sizes: sndbuf.py) for a window of
    ``segments`` (tcp_sndbuf_expand): ``windows`` times the window (the congestion control's
    ``sndbuf_expand``: 2, fast recovery needs data to send; BBR's 3), each segment costed as
    Linux's worst case without TSO (the power of two above the MSS plus 640 bytes of headers,
    and 256 more). At least tcp_wmem's default, at most its maximum."""
    per_mss = (1 << (mss + 640 - 1).bit_length()) + 256
    # (min() and max() written out: the autotuning asks after most ACKs, sndbuf.check_space)
    want = windows * (segments if segments > 10 else 10) * per_mss
    _, low, high = cfg.wmem
    return low if want < low else high if want > high else want


_INTS: dict[int, int] = {}


def shared_int(n: int) -> int:
    """``n`` as the one int object of its value the connections share: an int above 256 is an
    object of its own (28-32 bytes) each time it is computed, and each connection end computes
    its MSS values and buffer sizes (issue 23 item 4)."""
    s = _INTS.get(n)
    if s is None:
        if len(_INTS) >= 1024:  # bounded: a few sizes are usual
            _INTS.clear()
        s = _INTS[n] = n
    return s
