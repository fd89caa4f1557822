"""Packetization Layer Path MTU Discovery for TCP (RFC 4821), in Linux's ``tcp_mtu_probing`` shape.

Classic PMTUD (RFC 1191/8201) needs the ICMP Fragmentation Needed / Packet Too Big messages; when a
firewall drops them (a "PMTUD black hole", RFC 2923 §2.1) full-size segments vanish and the
connection stalls in retransmission timeouts. PLPMTUD finds the size with TCP's own segments:

* **black-hole detection** — ``blackhole_rtos`` consecutive retransmission timeouts of a segment
  bigger than the base size (Linux: ``tcp_retries1`` = 3) engage PLPMTUD: the MSS falls back to the
  base (``base_mss``, Linux ``tcp_base_mss`` 1024, plus the headers on either IP version, as Linux's
  ``tcp_mss_to_mtu``: no IPv6 exception). Further timeouts
  while engaged halve it (down to ``floor_mss``);
* **search** — :class:`~stacklab.stack.plpmtu.PmtuSearch`, the rule UDP's DPLPMTUD shares: the
  range is ``[search_low, search_high]`` (MTUs), low a size known to get through, high the
  largest that might (the interface/ICMP/peer limit). A probe is one segment of
  ``(low + high + 1) // 2`` bytes of IP packet sent with enough data behind it that its loss
  shows up as duplicate ACKs. ACKed: low = probe size and the MSS goes up at once. Lost: high =
  probe size − 1 (a lost probe is not a congestion signal: cwnd stays). The search is complete when
  ``high − low < threshold`` (Linux ``tcp_probe_threshold`` 8) and restarts after ``interval``
  (``tcp_probe_interval`` 600 s) in case the path grew.

Modes (``TcpConfig.mtu_probing``): ``"off"`` (Linux 0), ``"blackhole"`` (1: engaged only after a
black hole is detected; the default here, as the issue asks), ``"always"`` (2: start at the base
size and search upward from the first segment). In mode "always", as Linux's ``tcp_mtup_init``,
the search starts anew when the connection is established (:meth:`Plpmtud.init`), up to the
peer's MSS; the active opener clamps its MSS to the base size at once, a passive one (whose MSS
was set with the SYN-ACK, before) at its next MSS change (Linux ``tcp_sync_mss``).

The :class:`Plpmtud` object is sans-IO and knows nothing of the TCB; the TCB asks it for the
current MTU clamp, whether to probe now, and tells it about timeouts, ACKs, probe losses and ICMP.
"""

from __future__ import annotations

from enum import Enum

from ..plpmtu import PROBE_INTERVAL, PROBE_THRESHOLD, PmtuSearch
from .seq import seq_ge, seq_le, seq_lt

MODES = ("off", "blackhole", "always")
BASE_MSS = 1024  # Linux tcp_base_mss
FLOOR_MSS = 48  # Linux tcp_mtu_probe_floor
BLACKHOLE_RTOS = 3  # Linux tcp_retries1: timeouts before black-hole detection


class PlpmtudState(Enum):
    DISABLED = "disabled"  # not engaged (mode "blackhole" before any black hole); ICMP only
    SEARCHING = "searching"  # engaged, probing between search_low and search_high
    SEARCH_COMPLETE = "search-complete"  # converged; probe again after the interval


def parse_mode(value: object) -> str:
    """``off`` / ``blackhole`` / ``always``; also booleans and Linux's 0 / 1 / 2."""
    if isinstance(value, bool):
        return "blackhole" if value else "off"
    if isinstance(value, int) and 0 <= value <= 2:
        return MODES[value]
    if isinstance(value, str) and value in MODES:
        return value
    raise ValueError(f"expected one of {', '.join(MODES)} (or 0/1/2, true/false), got {value!r}")


class Plpmtud:
    # one per connection (slots: issue 23 item 4); ``__dict__`` keeps other attributes settable
    __slots__ = ("mode", "header", "floor_mtu", "base_mtu", "max_mtu", "blackhole_rtos",
                 "search", "state", "probe_seq", "probe_end", "probe_mtu", "blackholes",
                 "probes_sent", "probes_acked", "probes_lost", "log", "shared", "__dict__")

    def __init__(self, mode: str, header: int, max_mtu: int, *, base_mss: int = BASE_MSS,
                 floor_mss: int = FLOOR_MSS, threshold: int = PROBE_THRESHOLD,
                 interval: float = PROBE_INTERVAL, blackhole_rtos: int = BLACKHOLE_RTOS) -> None:
        self.mode = parse_mode(mode)
        self.header = header  # IP + TCP header bytes (40 v4, 60 v6)
        self.floor_mtu = floor_mss + header
        self.base_mtu = max(base_mss + header, self.floor_mtu)
        self.max_mtu = max_mtu
        self.blackhole_rtos = blackhole_rtos
        self.search = PmtuSearch(min(self.base_mtu, max_mtu), max_mtu, threshold, interval)
        self.state = PlpmtudState.SEARCHING if self.mode == "always" else PlpmtudState.DISABLED
        # the one probe in flight: its first sequence number, end (exclusive) and packet size
        self.probe_seq: int | None = None
        self.probe_end = 0
        self.probe_mtu = 0
        self.blackholes = 0
        self.probes_sent = 0
        self.probes_acked = 0
        self.probes_lost = 0
        self.log: list[tuple[float, str, int]] = []  # (time, event, mtu) for the trace/tests
        self.shared = False  # one of plpmtud_for's: never changed (copy() makes one to change)

    def copy(self) -> Plpmtud:
        """An object of the same state, not shared."""
        p = Plpmtud.__new__(Plpmtud)
        for name in _FIELDS:
            setattr(p, name, getattr(self, name))
        s = self.search
        p.search = PmtuSearch(s.low, s.high, s.threshold, s.interval)
        p.search.complete_at = s.complete_at
        p.log = list(self.log)
        p.shared = False
        return p

    @property
    def search_low(self) -> int:
        return self.search.low

    @property
    def search_high(self) -> int:
        return self.search.high

    @property
    def complete_at(self) -> float | None:
        return self.search.complete_at

    @property
    def engaged(self) -> bool:
        return self.state is not PlpmtudState.DISABLED

    def mtu_clamp(self) -> int | None:
        """The largest packet the connection may send now (None: no PLPMTUD limit)."""
        return self.search_low if self.engaged else None

    # -- the connection's start (Linux tcp_mtup_init) ----------------------------------------------
    def defer(self) -> None:
        """A passive open: as Linux's child socket, which runs ``tcp_mtup_init`` only when it
        is established, no clamp and no probing before :meth:`init`."""
        if self.mode == "always":
            self.state = PlpmtudState.DISABLED

    def init(self, high: int) -> None:
        """The connection is established (Linux ``tcp_init_transfer`` → ``tcp_mtup_init``): in
        mode "always" the search starts from the base size up to ``high``, the peer's MSS plus
        the headers (Linux ``mss_clamp``), where it also starts again after the interval."""
        if self.mode != "always":
            return
        self.max_mtu = high
        self.search = PmtuSearch(min(self.base_mtu, high), high, self.search.threshold,
                                 self.search.interval)
        self.state = PlpmtudState.SEARCHING
        self.probe_seq = None

    # -- signals -----------------------------------------------------------------------------------
    def on_ptb(self, mtu: int) -> None:
        """ICMP says the path carries at most ``mtu``: never search above it."""
        assert not self.shared
        self.search.ptb(mtu)
        if self.probe_seq is not None and self.probe_mtu > mtu:
            self.probe_seq = None  # that probe cannot arrive; its data is resent anyway

    def on_rto(self, retries: int, head_len: int, now: float) -> bool:
        """A retransmission timeout; ``head_len`` is the size of the segment that timed out.
        True when the MTU clamp changed (the TCB recomputes its MSS)."""
        assert not self.shared
        if self.probe_seq is not None:
            self._probe_lost(now)
        if self.mode == "off" or retries < self.blackhole_rtos:
            return False
        size = head_len + self.header
        if not self.engaged and size <= self.base_mtu:
            return False  # the falling back would not make it smaller: not a size problem
        if self.engaged and size < self.search_low:
            return False  # a short segment timed out: loss, not size
        self.blackholes += 1
        if not self.engaged:
            self.state = PlpmtudState.SEARCHING
            self.search.restart(min(self.base_mtu, self.max_mtu))
            self.log.append((now, "blackhole", self.search_low))
            return True
        # engaged and still timing out: halve (Linux tcp_mtu_probing)
        mss = min((self.search_low - self.header) // 2, self.base_mtu - self.header)
        low = max(mss + self.header, self.floor_mtu)
        if low >= self.search_low:
            return False
        self.search.restart(low)
        self.state = PlpmtudState.SEARCHING
        self.log.append((now, "blackhole-halve", low))
        return True

    def want_probe(self, limit_mtu: int, now: float) -> int | None:
        """The packet size of a probe to send now, or None. ``limit_mtu`` is what the
        interface, ICMP and the peer's MSS allow."""
        if not self.engaged or self.probe_seq is not None:
            return None
        before = self.search.complete_at
        size = self.search.next_size(limit_mtu, self.max_mtu, now)
        if before is not None and self.search.complete_at not in (None, before):
            self.state = PlpmtudState.SEARCHING  # searched again after the interval: done at once
        self._sync(now)
        return size

    def probe_sent(self, seq: int, end: int, mtu: int, now: float) -> None:
        self.probe_seq = seq
        self.probe_end = end
        self.probe_mtu = mtu
        self.probes_sent += 1
        self.log.append((now, "probe", mtu))

    def probe_at(self, snd_una: int) -> bool:
        """The probe is the first unacknowledged segment (duplicate ACKs point at it)."""
        return self.probe_seq is not None and seq_le(self.probe_seq, snd_una) \
            and seq_lt(snd_una, self.probe_end)

    def on_ack(self, ack: int, now: float) -> bool:
        """A cumulative ACK; True when it acknowledged the probe (the clamp went up)."""
        if self.probe_seq is None or not seq_ge(ack, self.probe_end):
            return False
        self.probe_seq = None
        self.probes_acked += 1
        self.log.append((now, "probe-acked", self.probe_mtu))
        self.search.acked(self.probe_mtu, now)
        self._sync(now)
        return True

    def on_probe_lost(self, now: float) -> None:
        """Duplicate ACKs say the probe was lost (the TCB resends its data in smaller pieces)."""
        if self.probe_seq is not None:
            self._probe_lost(now)

    def _probe_lost(self, now: float) -> None:
        self.probe_seq = None
        self.probes_lost += 1
        self.log.append((now, "probe-lost", self.probe_mtu))
        self.search.lost(self.probe_mtu, now)
        self._sync(now)

    def _sync(self, now: float) -> None:
        """The state follows the search: converged (complete) or searching again."""
        if not self.engaged:
            return
        complete = self.search.complete_at is not None
        if complete and self.state is not PlpmtudState.SEARCH_COMPLETE:
            self.state = PlpmtudState.SEARCH_COMPLETE
            self.log.append((now, "search-complete", self.search_low))
        elif not complete and self.state is PlpmtudState.SEARCH_COMPLETE:
            self.state = PlpmtudState.SEARCHING

    def describe(self) -> str:
        return (f"plpmtud {self.mode} {self.state.value} low {self.search_low} "
                f"high {self.search_high} probes {self.probes_sent}/{self.probes_acked} acked")


_FIELDS = tuple(f for f in Plpmtud.__slots__ if f not in ("search", "log", "shared", "__dict__"))
_UNCHANGED: dict[tuple[str, int, int, int], Plpmtud] = {}


def plpmtud_for(mode: str, header: int, max_mtu: int, base_mss: int = BASE_MSS) -> Plpmtud:
    """A new connection's PLPMTUD state. Not engaged (modes "off" and "blackhole") and before
    an ICMP message or a timeout changes it, it is only these four values: the connections
    with the same ones share one object, ``shared``, never changed (0.4 KiB per connection end,
    issue 23 item 4); the TCB takes a copy of its own before it changes it (``on_ptb``,
    ``on_rto``; ``TcbVars.own_plpmtud``). Mode "always" searches from the start: its own."""
    mode = parse_mode(mode)
    if mode == "always":
        return Plpmtud(mode, header, max_mtu, base_mss=base_mss)
    key = (mode, header, max_mtu, base_mss)
    p = _UNCHANGED.get(key)
    if p is None:
        if len(_UNCHANGED) >= 64:  # bounded: a few sizes are usual
            _UNCHANGED.clear()
        p = _UNCHANGED[key] = Plpmtud(mode, header, max_mtu, base_mss=base_mss)
        p.shared = True
    return p
