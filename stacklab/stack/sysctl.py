"""Linux's sysctl names over a host's knobs: ``host.sysctl["net.ipv4.tcp_sack"] = 0``.

ONE table, :data:`TABLE`: each :class:`Sysctl` row names a Linux sysctl, the host attribute it
maps onto (a dotted path from the :class:`~stacklab.stack.host.Host`), its unit (how Linux
writes the value: ``0``/``1``, seconds, milliseconds, ``"min default max"``...), what it means,
and Linux's default. The sans-IO host (:attr:`Host.sysctl <stacklab.stack.host.Host.sysctl>`),
the scenario files (``[[node]] sysctl = {...}``) and the packetdrill runner's backtick
``sysctl`` commands all go through it; ``stacklab run --list`` prints it.

Values read back as Linux prints them (``"4096 131072 262144"`` for ``tcp_rmem``); a value may be
written as that text or as an int (``0``/``1``, ``True``/``False`` for the booleans). Integers
are parsed as Linux's ``proc_dointvec`` does (decimal or ``0x`` hex). A name that is not in the
table raises :class:`UnknownSysctl` (a ``KeyError``), a bad value :class:`BadSysctlValue`
(a ``ValueError``); both name the sysctl.

Choices where stacklab differs from Linux's layout:

* ``tcp_rmem``: bytes of payload (Linux counts its buffers' overhead as well, about twice the
  payload), so the same numbers give stacklab somewhat larger windows. ``tcp_wmem`` counts as
  Linux's does: each skb's payload plus its overhead (stack/tcp/sndbuf.py).
* ``net.ipv4.neigh.default.*`` / ``net.ipv6.neigh.default.*``: stacklab has no per-device
  neighbour settings; a write reaches every interface, present and future (Linux propagates a
  ``default`` write to every device that did not set its own).
* Rows with a fixed value (``tcp_dsack``, ``tcp_fack``...) describe Linux behaviour stacklab has
  built in: writing that value is accepted, any other is refused. ``ip_forward`` is read-only:
  a Host does not forward, a Router does.
* TCP settings apply to connections opened afterwards (``TcpLayer.config`` is replaced, never
  changed in place: live connections keep the configuration they started with).

Adding a knob is one row (see :data:`TABLE`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from stacklab.errors import StacklabError

from .interface import Interface
from .tcp.layer import TcpLayer
from .tcp.tfo import NOT_DRAWN, parse_key, show_key

__all__ = ["TABLE", "BadSysctlValue", "HostSysctl", "Sysctl", "SysctlError", "Unit",
           "UnknownSysctl", "lookup", "normalize"]


class SysctlError(StacklabError):
    """A sysctl write or read that stacklab refuses; ``name`` is the sysctl."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message

    def __str__(self) -> str:  # KeyError's own __str__ would quote the whole message
        return f"{self.name}: {self.message}"


class UnknownSysctl(SysctlError, KeyError):
    """No such name in stacklab's table (a typo, or a Linux sysctl stacklab has no knob for)."""


class BadSysctlValue(SysctlError, ValueError):
    """A value the sysctl does not take (wrong unit or range, or a read-only sysctl)."""


class SysctlHost(Protocol):
    """The host as the table sees it (its paths reach further, by name)."""

    interfaces: list[Interface]
    tcp: TcpLayer


# -- units: Linux's text <-> the knob's value -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Unit:
    """How Linux writes a sysctl: ``parse`` turns the text into the knob's value (ValueError
    saying why when it cannot), ``show`` the knob's value into Linux's text."""

    what: str  # for messages and the listing, e.g. "seconds", "0 or 1"
    parse: Callable[[str], Any]
    show: Callable[[Any], str]


def _int(text: str) -> int:
    return int(text.strip(), 0)  # proc_dointvec: decimal, or 0x hex


def _number(v: float) -> str:
    """An int as Linux prints it; a fractional value set by other means as it is."""
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def integer(lo: int = 0, hi: int = 2**31 - 1) -> Unit:
    def parse(text: str) -> int:
        n = _int(text)
        if not lo <= n <= hi:
            raise ValueError(f"expected an integer {lo}..{hi}")
        return n
    return Unit(f"integer {lo}..{hi}", parse, _number)


def scaled(unit: str, per_second: int, lo: int = 0) -> Unit:
    """An integer count of ``unit`` (``per_second`` of them a second) over a knob in seconds."""
    def parse(text: str) -> float:
        n = _int(text)
        if n < lo:
            raise ValueError(f"expected at least {lo} {unit}")
        return n / per_second  # a division: 50000 us is exactly the float 0.05
    return Unit(unit, parse, lambda v: _number(round(v * per_second, 6)))


def choice(names: dict[int, str]) -> Unit:
    """Linux's numbered modes over a knob holding their names."""
    def parse(text: str) -> str:
        n = _int(text)
        if n not in names:
            raise ValueError(f"expected one of {', '.join(map(str, names))}")
        return names[n]
    numbers = {v: k for k, v in names.items()}
    return Unit(" | ".join(f"{k} ({v})" for k, v in names.items()), parse,
                lambda v: str(numbers[v]))


def _rate_interval(text: str) -> float:
    n = _int(text)
    if n < 1:
        raise ValueError("must be at least 1 (stacklab has no unlimited setting)")
    return 1000.0 / n


def _bool(text: str) -> bool:
    n = _int(text)
    if n not in (0, 1):
        raise ValueError("expected 0 or 1")
    return bool(n)


BOOL = Unit("0 or 1", _bool, lambda v: "1" if v else "0")
SECONDS = scaled("seconds", 1)
MILLIS = scaled("milliseconds", 1000)
MICROS = scaled("microseconds", 1_000_000)
# icmp_ratelimit: the minimal interval between two errors to one peer, in ms; the knob is the
# per-peer token rate (tokens a second)
PER_MS = Unit("milliseconds between two", _rate_interval, lambda v: _number(round(1000.0 / v)))
NAME = Unit("a name", str.strip, str)
QDISCS = ("pfifo_fast", "pfifo", "fq", "fq_codel", "sfq", "cake", "noqueue")


def _qdisc(text: str) -> str:
    name = text.strip()
    if name not in QDISCS:
        raise ValueError(f"expected one of {', '.join(QDISCS)}")
    return name


QDISC = Unit(" | ".join(QDISCS), _qdisc, str)


TFO_KEY = Unit("xxxxxxxx-xxxxxxxx-xxxxxxxx-xxxxxxxx (hex)",
               lambda t: t.strip() if t.strip() == NOT_DRAWN else show_key(parse_key(t)), str)
VECTOR = Unit("\"min default max\" (bytes)", lambda text: tuple(_int(x) for x in text.split()),
              lambda v: " ".join(map(str, v)))


# -- the table --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sysctl:
    """One row: Linux's ``name`` over the host attribute at ``path``.

    ``fixed``: Linux behaviour
    stacklab has built in, no knob (that value reads back; only it may be written).
    ``read_only``: the knob shows the host's nature (a write must give its current value).
    ``after``: run after a write (a setting other state is derived from).
    """

    name: str
    path: str | None
    unit: Unit
    linux: str  # Linux's default, as ``sysctl`` prints it
    doc: str
    fixed: str | None = None
    read_only: bool = False
    after: Callable[[SysctlHost], None] | None = None


def _rerandomize(family: int) -> Callable[[SysctlHost], None]:
    # RFC 4861 §6.3.2: ReachableTime is drawn again when BaseReachableTime changes (as Linux)
    def after(host: SysctlHost) -> None:
        for iface in host.interfaces:
            cache = iface.arp if family == 4 else iface.nd
            cache.reachable_time = cache._new_reachable_time()
    return after


def _neigh(family: int) -> list[Sysctl]:
    p, attr = f"net.ipv{family}.neigh.default.", "arp_params" if family == 4 else "nd_params"
    what = "ARP" if family == 4 else "NDP"
    return [
        Sysctl(p + "base_reachable_time_ms", f"{attr}.base_reachable_time", MILLIS, "30000",
               f"{what}: an entry stays REACHABLE 0.5..1.5 times this after a confirmation",
               after=_rerandomize(family)),
        Sysctl(p + "retrans_time_ms", f"{attr}.retrans_time", MILLIS, "1000",
               f"{what}: the interval between two solicitations"),
        Sysctl(p + "delay_first_probe_time", f"{attr}.delay_first_probe_time", SECONDS, "5",
               f"{what}: DELAY before the first unicast probe"),
        Sysctl(p + "mcast_solicit", f"{attr}.mcast_solicit", integer(), "3",
               f"{what}: multicast/broadcast solicitations before FAILED"),
        Sysctl(p + "ucast_solicit", f"{attr}.ucast_solicit", integer(), "3",
               f"{what}: unicast probes before FAILED"),
        Sysctl(p + "unres_qlen", f"{attr}.queue_len", integer(), "101",
               f"{what}: packets queued per unresolved neighbour"),
        Sysctl(p + "gc_stale_time", f"{attr}.gc_stale_time", SECONDS, "60",
               f"{what}: unused STALE/FAILED entries are collected after this"),
        Sysctl(p + "gc_thresh1", f"{attr}.gc_thresh1", integer(), "128",
               f"{what}: no garbage collection while the table holds fewer entries"),
        Sysctl(p + "gc_thresh2", f"{attr}.gc_thresh2", integer(), "512",
               f"{what}: above this, a forced collection (at most every 5 s)"),
        Sysctl(p + "gc_thresh3", f"{attr}.gc_thresh3", integer(), "1024",
               f"{what}: the hard limit: a new entry beyond it is refused"),
    ]


def _fixed(name: str, value: str, linux: str, doc: str) -> Sysctl:
    return Sysctl(name, None, integer(), linux, doc, fixed=value)


TABLE: dict[str, Sysctl] = {row.name: row for row in [
    # TCP: TcpLayer.config, the configuration of new connections
    Sysctl("net.ipv4.tcp_timestamps", "tcp.config.timestamps", BOOL, "1",
           "RFC 7323 timestamps offered and accepted"),
    Sysctl("net.ipv4.tcp_sack", "tcp.config.sack", BOOL, "1", "RFC 2018 SACK offered and accepted"),
    Sysctl("net.ipv4.tcp_window_scaling", "tcp.config.window_scaling", BOOL, "1",
           "RFC 7323 window scaling offered and accepted"),
    Sysctl("net.ipv4.tcp_rmem", "tcp.config.rmem", VECTOR, "4096 131072 6291456",
           "receive buffer: a connection starts with the default, autotunes up to the max "
           "(the window scale is chosen from the max)"),
    Sysctl("net.ipv4.tcp_wmem", "tcp.config.wmem", VECTOR, "4096 16384 4194304",
           "send buffer: a connection starts with the default, grows with cwnd up to the max"),
    Sysctl("net.ipv4.tcp_moderate_rcvbuf", "tcp.config.moderate_rcvbuf", BOOL, "1",
           "receive-buffer autotuning"),
    Sysctl("net.ipv4.tcp_syn_retries", "tcp.config.syn_retries", integer(1, 127), "6",
           "SYN retransmissions before a connect fails"),
    Sysctl("net.ipv4.tcp_synack_retries", "tcp.config.synack_retries", integer(1, 127), "5",
           "SYN,ACK retransmissions before a passive open gives up"),
    Sysctl("net.ipv4.tcp_slow_start_after_idle", "tcp.config.slow_start_after_idle", BOOL, "1",
           "restart from the initial window after an idle period longer than the RTO"),
    Sysctl("net.ipv4.tcp_min_snd_mss", "tcp.config.min_snd_mss", integer(48, 65535), "48",
           "the smallest MSS the sender accepts from the peer or a PMTU drop"),
    Sysctl("net.ipv4.tcp_notsent_lowat", "tcp.config.notsent_lowat_default",
           integer(0, 2**32 - 1), "4294967295",
           "unsent bytes below which a socket is writable (TCP_NOTSENT_LOWAT's default)"),
    Sysctl("net.ipv4.tcp_min_tso_segs", "tcp.config.min_tso_segs", integer(1, 255), "2",
           "the smallest TSO packet in segments: PSH ends each packet of a burst, as Linux's"),
    Sysctl("net.ipv4.tcp_retries2", "tcp.config.max_retries", integer(), "15",
           "retransmissions of data before the connection is reset"),
    Sysctl("net.ipv4.tcp_fin_timeout", "tcp.config.fin_wait_2_timeout", SECONDS, "60",
           "FIN-WAIT-2 lifetime after a full close"),
    Sysctl("net.ipv4.tcp_keepalive_time", "tcp.config.keepidle", scaled("seconds", 1, 1),
           "7200", "idle time before the first keepalive probe (SO_KEEPALIVE sockets)"),
    Sysctl("net.ipv4.tcp_keepalive_intvl", "tcp.config.keepintvl", scaled("seconds", 1, 1),
           "75", "interval between keepalive probes"),
    Sysctl("net.ipv4.tcp_keepalive_probes", "tcp.config.keepcnt", integer(1, 127), "9",
           "unanswered keepalive probes before the connection is dropped"),
    Sysctl("net.ipv4.tcp_mtu_probing", "tcp.config.mtu_probing",
           choice({0: "off", 1: "blackhole", 2: "always"}), "0",
           "RFC 4821 packetization-layer PMTU discovery"),
    Sysctl("net.ipv4.tcp_base_mss", "tcp.config.base_mss", integer(48, 65535), "1024",
           "the MSS PLPMTUD falls back to after a black hole"),
    Sysctl("net.ipv4.tcp_rto_min_us", "tcp.config.min_rto", MICROS, "200000",
           "the smallest retransmission timeout (RFC 6298 allows less than 1 s)"),
    Sysctl("net.ipv4.tcp_rto_max_ms", "tcp.config.max_rto", MILLIS, "120000",
           "the largest retransmission timeout"),
    Sysctl("net.ipv4.tcp_congestion_control", "tcp.default_congestion", NAME, "cubic",
           "congestion control of new connections"),
    Sysctl("net.core.default_qdisc", "tcp.config.qdisc", QDISC, "pfifo_fast",
           "the devices' queueing discipline; fq paces every TCP connection (Linux's fq)"),
    Sysctl("net.ipv4.tcp_invalid_ratelimit", "tcp.config.invalid_ratelimit", MILLIS, "500",
           "per connection: least time between two ACKs to invalid segments (challenge ACKs)"),
    Sysctl("net.ipv4.tcp_orphan_retries", "tcp.config.orphan_retries", integer(0, 255), "0",
           "retransmissions and probes of a connection the application closed (0: 8)"),
    Sysctl("net.ipv4.tcp_recovery", "tcp.config.recovery", integer(0, 7), "1",
           "loss detection bits: 0x1 RACK (RFC 8985), 0x4 RACK without the DupThresh shortcut; "
           "0: RFC 6675 DupThresh"),
    Sysctl("net.ipv4.tcp_early_retrans", "tcp.config.early_retrans", integer(0, 4), "3",
           "3 or 4: tail loss probes (RFC 8985 §7); other values: none"),
    Sysctl("net.ipv4.tcp_frto", "tcp.config.frto", integer(0, 2), "2",
           "F-RTO (RFC 5682, SACK-enhanced): detect and undo a spurious timeout; 0: off"),
    # TCP: host-wide TcpLayer settings
    Sysctl("net.ipv4.tcp_syncookies", "tcp.syncookies", BOOL, "1",
           "SYN cookies when a listener's SYN queue is full"),
    Sysctl("net.ipv4.tcp_max_syn_backlog", "tcp.max_syn_backlog", integer(1), "by memory",
           "half-open connections per listener before SYN cookies (Linux: 128 and up)"),
    Sysctl("net.ipv4.tcp_max_orphans", "tcp.max_orphans", integer(), "by memory",
           "connections the application closed that the host keeps; over it they are reset"),
    Sysctl("net.ipv4.tcp_challenge_ack_limit", "tcp.challenge_ack_limit", integer(),
           "2147483647", "challenge ACKs a second, host-wide (RFC 5961 §7; Linux < 6.0: 1000)"),
    _fixed("net.ipv4.tcp_dsack", "1", "1", "D-SACK (RFC 2883): always on"),
    _fixed("net.ipv4.tcp_reordering", "3", "3", "initial reordering degree: DupThresh 3"),
    Sysctl("net.ipv4.tcp_ecn", "tcp.config.ecn", integer(0, 5), "2",
           "ECN (RFC 3168): 0 off, 1 request and accept, 2 accept when the peer requests; "
           "AccECN (RFC 9768): 3 request and accept, 4 accept (request ECN), 5 accept only"),
    Sysctl("net.ipv4.tcp_ecn_option", "tcp.config.ecn_option", integer(0, 2), "2",
           "AccECN option: 0 never, 1 when the counters change (and beacons), 2 on every segment"),
    Sysctl("net.ipv4.tcp_ecn_option_beacon", "tcp.config.ecn_option_beacon", integer(0), "3",
           "with tcp_ecn_option 1: at least this many AccECN options per RTT (0: none)"),
    Sysctl("net.ipv4.tcp_ecn_fallback", "tcp.config.ecn_fallback", BOOL, "1",
           "retransmitted SYNs go without the ECN request"),
    _fixed("net.ipv4.tcp_fack", "0", "0", "FACK: not implemented (gone from Linux 4.15)"),
    Sysctl("net.ipv4.tcp_fastopen", "tcp.tfo.mode", integer(0, 0xFFFFFFF), "1",
           "TCP Fast Open (RFC 7413) bits: 0x1 client, 0x2 server, 0x4 client without cookie, "
           "0x200 server without cookie, 0x400 every listener (queue = backlog)"),
    Sysctl("net.ipv4.tcp_fastopen_key", "tcp.tfo.key_text", TFO_KEY, "random",
           "the TCP Fast Open server key, four hex words (drawn from the host's seed)"),
    # IP
    Sysctl("net.ipv4.ip_forward", "forwarding", BOOL, "0",
           "IPv4 forwarding (a Router forwards, a Host does not)", read_only=True),
    Sysctl("net.ipv6.conf.all.forwarding", "forwarding", BOOL, "0",
           "IPv6 forwarding (a Router forwards, a Host does not)", read_only=True),
    Sysctl("net.ipv4.conf.all.send_redirects", "redirects.send_redirects", BOOL, "1",
           "a router tells an on-link sender the better first hop (ICMP Redirect)"),
    Sysctl("net.ipv4.conf.all.accept_redirects", "redirects.accept_redirects", BOOL,
           "1 (host), 0 (router)", "believe ICMP Redirects from the current first hop"),
    Sysctl("net.ipv4.ip_default_ttl", "default_ttl", integer(1, 255), "64",
           "TTL of the IPv4 packets the host originates"),
    Sysctl("net.ipv6.conf.all.hop_limit", "hop_limit6", integer(1, 255), "64",
           "hop limit of the IPv6 packets the host originates (an RA may change it)"),
    Sysctl("net.ipv4.ipfrag_time", "ipv4.reasm.timeout", scaled("seconds", 1, 1), "30",
           "IPv4 reassembly timeout"),
    Sysctl("net.ipv4.ipfrag_high_thresh", "ipv4.reasm.high_thresh", integer(1), "4194304",
           "memory (truesize) held by incomplete IPv4 datagrams before eviction (bytes)"),
    Sysctl("net.ipv4.ipfrag_low_thresh", "ipv4.reasm.low_thresh", integer(1), "3145728",
           "eviction of incomplete IPv4 datagrams goes down to this (bytes)"),
    Sysctl("net.ipv6.ip6frag_time", "ipv6.reasm.timeout", scaled("seconds", 1, 1), "60",
           "IPv6 reassembly timeout"),
    Sysctl("net.ipv6.ip6frag_high_thresh", "ipv6.reasm.high_thresh", integer(1), "4194304",
           "memory (truesize) held by incomplete IPv6 datagrams before eviction (bytes)"),
    Sysctl("net.ipv6.ip6frag_low_thresh", "ipv6.reasm.low_thresh", integer(1), "3145728",
           "eviction of incomplete IPv6 datagrams goes down to this (bytes)"),
    Sysctl("net.ipv4.route.mtu_expires", "pmtu.expires", scaled("seconds", 1, 1), "600",
           "lifetime of a learned path MTU (IPv4 and IPv6)"),
    Sysctl("net.ipv4.route.min_pmtu", "pmtu.min_v4", integer(68, 65535), "552",
           "the smallest IPv4 path MTU a Fragmentation Needed may set"),
    # ICMP (both families share one limiter)
    Sysctl("net.ipv4.icmp_ratelimit", "icmp.peer_rate", PER_MS, "1000",
           "per peer: the interval between two ICMP errors (burst of 6)"),
    Sysctl("net.ipv4.icmp_msgs_per_sec", "icmp.rate_global.rate", integer(), "1000",
           "ICMP errors a second, host-wide"),
    Sysctl("net.ipv4.icmp_msgs_burst", "icmp.rate_global.burst", integer(), "50",
           "burst of the host-wide ICMP error limit"),
    Sysctl("net.ipv4.icmp_echo_ignore_broadcasts", "icmp.echo_ignore_broadcasts", BOOL, "1",
           "no answer to echo requests sent to a broadcast address"),
    # IPv6 neighbour discovery and autoconfiguration (host-wide in stacklab)
    Sysctl("net.ipv6.conf.all.accept_ra", "ndp.accept_ra", BOOL, "1",
           "Router Advertisements accepted (routers never accept them)"),
    Sysctl("net.ipv6.conf.all.max_addresses", "ndp.max_addresses", integer(), "16",
           "SLAAC addresses per interface (an RA flood adds no more)"),
    Sysctl("net.ipv6.conf.all.dad_transmits", "ndp.dad_transmits", integer(), "1",
           "Duplicate Address Detection probes per new address (0: none)"),
    Sysctl("net.ipv6.conf.all.router_solicitations", "ndp.rs_max", integer(), "-1",
           "Router Solicitations sent at start (Linux -1: until answered)"),
    Sysctl("net.ipv6.conf.all.router_solicitation_interval", "ndp.rs_interval", SECONDS, "4",
           "interval between two Router Solicitations"),
    *_neigh(4),
    *_neigh(6),
]}


def normalize(name: str) -> str:
    """``/proc/sys/net/ipv4/tcp_sack`` or ``net/ipv4/tcp_sack`` -> ``net.ipv4.tcp_sack``
    (``sysctl`` accepts both spellings)."""
    return name.strip().removeprefix("/proc/sys/").replace("/", ".")


def lookup(name: str) -> Sysctl:
    """The row of ``name``, else :class:`UnknownSysctl` saying so (with the closest names)."""
    row = TABLE.get(normalize(name))
    if row is None:
        close = difflib.get_close_matches(normalize(name), TABLE, n=1, cutoff=0.9)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UnknownSysctl(name, "no stacklab knob for it (not in stacklab's sysctl table; "
                            f"{hint}`stacklab run --list` lists them)")
    return row


def _text(row: Sysctl, value: object) -> str:
    """A written value as Linux's text: str as is, int in decimal, bool as 1/0."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | str):
        return str(value)
    raise BadSysctlValue(row.name, f"expected {row.unit.what} as text or an int, got {value!r}")


def _owner(host: SysctlHost, path: str) -> tuple[Any, str]:
    *walk, attr = path.split(".")
    obj: Any = host
    for part in walk:
        obj = getattr(obj, part)
    return obj, attr


class HostSysctl(Mapping[str, str]):
    """``host.sysctl``: Linux's names over one host's knobs (see the module docstring).
    Iterating gives every name of :data:`TABLE`; reads return Linux's text."""

    def __init__(self, host: SysctlHost) -> None:
        self._host = host

    def __iter__(self) -> Iterator[str]:
        return iter(TABLE)

    def __len__(self) -> int:
        return len(TABLE)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and normalize(name) in TABLE

    def _get(self, row: Sysctl) -> Any:
        if row.path is None:
            return row.unit.parse(row.fixed or "")
        obj, attr = _owner(self._host, row.path)
        return getattr(obj, attr)

    def __getitem__(self, name: str) -> str:
        row = lookup(name)
        return row.unit.show(self._get(row))

    def __setitem__(self, name: str, value: str | int | bool) -> None:
        row = lookup(name)
        text = _text(row, value)
        try:
            parsed = row.unit.parse(text)
        except ValueError as exc:  # int()'s own message names no unit: say which one
            why = f"expected {row.unit.what}" if "literal" in str(exc) else str(exc)
            raise BadSysctlValue(row.name, f"bad value {text!r}: {why}") from None
        if row.unit is VECTOR:
            # Linux's int vectors: the values given replace the first fields, the rest stay
            if not 1 <= len(parsed) <= 3 or min(parsed) < 1:
                raise BadSysctlValue(row.name, f"bad value {text!r}: expected "
                                     f"{row.unit.what}, one to three positive integers")
            parsed = tuple(parsed) + tuple(self._get(row))[len(parsed):]
        if row.path is None or row.read_only:
            if parsed != self._get(row):
                kind = "read-only" if row.read_only else "no stacklab knob, built in"
                raise BadSysctlValue(row.name, f"{kind}: it stays {self[row.name]!r} "
                                     f"({row.doc})")
            return
        obj, attr = _owner(self._host, row.path)
        try:
            if obj is self._host.tcp.config:
                # copy on write: live connections share the old TcpConfig
                self._host.tcp.config = obj.replace(**{attr: parsed})
            else:
                setattr(obj, attr, parsed)
        except ValueError as exc:  # a knob's own check, e.g. an unknown congestion control
            raise BadSysctlValue(row.name, f"bad value {text!r}: {exc}") from None
        if row.after is not None:
            row.after(self._host)

    def rows(self) -> list[tuple[Sysctl, str]]:
        """Every row with this host's value, in table order."""
        return [(row, self[row.name]) for row in TABLE.values()]
