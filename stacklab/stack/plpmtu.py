"""Packetization-layer path MTU discovery, the part both transports share, and DPLPMTUD for
datagram sockets (RFC 8899), sans-IO.

:class:`PmtuSearch` is the ONE search rule (RFC 4821 §7.5, RFC 8899 §5.3.2): between a size
known to get through (``low``) and the largest that might (``high``, lowered by the link, ICMP,
the peer), probe the midpoint; an acknowledged probe raises ``low``, a lost one lowers
``high`` to just below it; the search is complete when ``high - low < threshold`` (Linux's
``tcp_probe_threshold``, 8) and starts again ``interval`` later (``tcp_probe_interval`` /
RFC 8899's PMTU_RAISE_TIMER, 600 s) from the link's limit, in case the path grew. TCP's RFC 4821
engine (:mod:`stacklab.stack.tcp.plpmtud`) and :class:`Dplpmtud` both search with it.

:class:`Dplpmtud` is RFC 8899's state machine for a connected UDP socket
(``UdpPcb.enable_plpmtud``): BASE (confirm BASE_PLPMTU: 1200 bytes on IPv4, 1280 on IPv6),
SEARCHING, SEARCH_COMPLETE, ERROR (not even the base size gets through: MIN_PLPMTU, 68 / 1280,
probing the base again). Sizes are IP packet sizes. A probe is a datagram of exactly the probe
size sent with DF; UDP cannot see it arrive, so the application confirms it
(``probe_acked(size)``: its peer answered, RFC 8899 §6.1 "the application ... confirms");
PROBE_TIMER (15 s) without confirmation is a loss, and MAX_PROBES (3) losses of a size end that
size. A validated Packet Too Big lowers the search at once and its size is the next probe
(§4.6.2); ``black_hole()``
(full-size datagrams stopped getting through) falls back to BASE (§4.3).
"""

from __future__ import annotations

from enum import Enum

__all__ = ["Dplpmtud", "DplpmtudState", "PmtuSearch"]

PROBE_THRESHOLD = 8  # Linux tcp_probe_threshold (bytes); RFC 8899 leaves it to the PL
PROBE_INTERVAL = 600.0  # Linux tcp_probe_interval; RFC 8899 PMTU_RAISE_TIMER (s)
PROBE_TIMER = 15.0  # RFC 8899 §5.1.1
MAX_PROBES = 3  # RFC 8899 §5.1.2
BASE_PLPMTU = {4: 1200, 6: 1280}  # RFC 8899 §5.1.2
MIN_PLPMTU = {4: 68, 6: 1280}


class PmtuSearch:
    """The search range and its one rule (see the module docstring)."""

    __slots__ = ("low", "high", "threshold", "interval", "complete_at")

    def __init__(self, low: int, high: int, threshold: int = PROBE_THRESHOLD,
                 interval: float = PROBE_INTERVAL) -> None:
        self.low = low
        self.high = high
        self.threshold = threshold
        self.interval = interval
        self.complete_at: float | None = None  # when the search converged (None: searching)

    def next_size(self, limit: int, max_mtu: int, now: float) -> int | None:
        """The size to probe now, or None: converged (complete from ``now``), or complete and
        the raise interval not over. ``limit``: what the link and ICMP allow now."""
        if limit < self.high:
            self.high = limit
        if self.complete_at is not None:
            if now - self.complete_at < self.interval:
                return None
            self.high = min(max_mtu, limit)  # the path may have grown
            self.complete_at = None
        if self._converged(now):
            return None
        return (self.low + self.high + 1) // 2

    def acked(self, size: int, now: float) -> None:
        self.low = size
        self._converged(now)

    def lost(self, size: int, now: float) -> None:
        self.high = max(self.low, size - 1)
        self._converged(now)

    def ptb(self, mtu: int) -> None:
        """ICMP says the path carries at most ``mtu``: never search above it."""
        if mtu < self.high:
            self.high = mtu
        if self.low > self.high:
            self.low = self.high

    def restart(self, low: int) -> None:
        """Search again from ``low`` (a black hole took the known size away)."""
        self.low = low
        self.complete_at = None

    def _converged(self, now: float) -> bool:
        if self.high - self.low < self.threshold:
            if self.complete_at is None:
                self.complete_at = now
            return True
        return False


class DplpmtudState(Enum):
    DISABLED = "disabled"
    BASE = "base"
    SEARCHING = "searching"
    SEARCH_COMPLETE = "search-complete"
    ERROR = "error"


class Dplpmtud:
    """RFC 8899 DPLPMTUD for one path (see the module docstring)."""

    def __init__(self, family: int, max_mtu: int, *, threshold: int = PROBE_THRESHOLD,
                 raise_timer: float = PROBE_INTERVAL, probe_timer: float = PROBE_TIMER,
                 max_probes: int = MAX_PROBES) -> None:
        self.base = BASE_PLPMTU[family]
        self.min = MIN_PLPMTU[family]
        self.max_mtu = max_mtu
        self.probe_timer = probe_timer
        self.max_probes = max_probes
        self.search = PmtuSearch(self.base, max_mtu, threshold, raise_timer)
        # RFC 8899 §5.2: a link smaller than the base size cannot run the search
        self.state = DplpmtudState.BASE if max_mtu >= self.base else DplpmtudState.DISABLED
        self.plpmtu = self.base if self.state is DplpmtudState.BASE else max_mtu
        self.probe: int | None = None  # the size of the probe in flight
        self.probe_due: float | None = None  # when it counts as lost
        self.retry: int | None = None  # a size to probe again (lost fewer than MAX_PROBES times)
        self.probe_count = 0  # losses of that size so far
        self.log: list[tuple[float, str, int]] = []

    def probe_size(self, limit: int, now: float) -> int | None:
        """The size of the probe to send now, or None (one in flight, or nothing to probe)."""
        if self.probe is not None or self.state is DplpmtudState.DISABLED:
            return None
        if self.retry is not None:
            return self.retry
        if self.state in (DplpmtudState.BASE, DplpmtudState.ERROR):
            return self.base
        size = self.search.next_size(limit, self.max_mtu, now)
        self._sync(now)
        return size

    def probe_sent(self, size: int, now: float) -> None:
        self.probe = size
        self.probe_due = now + self.probe_timer
        self.log.append((now, "probe", size))

    def probe_acked(self, size: int, now: float) -> bool:
        """The peer confirmed the probe of ``size``; True when the PLPMTU changed."""
        if self.probe != size:
            return False  # not the probe in flight (a late or duplicated confirmation)
        self.probe = self.probe_due = self.retry = None
        self.probe_count = 0
        self.log.append((now, "probe-acked", size))
        if self.state in (DplpmtudState.BASE, DplpmtudState.ERROR):
            self.state = DplpmtudState.SEARCHING
            self.search.restart(size)
        else:
            self.search.acked(size, now)
            self._sync(now)
        old, self.plpmtu = self.plpmtu, self.search.low
        return self.plpmtu != old

    def on_ptb(self, mtu: int, now: float) -> None:
        """A validated Packet Too Big / Fragmentation Needed for this path (§4.6.2)."""
        if self.state is DplpmtudState.DISABLED or mtu >= self.plpmtu and mtu >= self.search.high:
            return
        if mtu < self.base:
            self.state = DplpmtudState.ERROR
            self.plpmtu = max(self.min, mtu)
        else:
            self.search.ptb(mtu)
            self.plpmtu = min(self.plpmtu, mtu)
            self._sync(now)
        if self.probe is not None and self.probe > mtu:
            self.probe = self.probe_due = None
        if self.state is not DplpmtudState.ERROR:
            self.retry, self.probe_count = mtu, 0  # §4.6.2: probe the PTB's size next
        self.log.append((now, "ptb", mtu))

    def black_hole(self, now: float) -> None:
        """Datagrams of the PLPMTU stopped getting through (§4.3): confirm the base again."""
        if self.state is DplpmtudState.DISABLED:
            return
        self.state = DplpmtudState.BASE
        self.plpmtu = self.base
        self.search.restart(self.base)
        self.probe = self.probe_due = self.retry = None
        self.probe_count = 0
        self.log.append((now, "black-hole", self.base))

    def _sync(self, now: float) -> None:
        if self.state not in (DplpmtudState.SEARCHING, DplpmtudState.SEARCH_COMPLETE):
            return
        complete = self.search.complete_at is not None
        if complete and self.state is DplpmtudState.SEARCHING:
            self.state = DplpmtudState.SEARCH_COMPLETE
            self.log.append((now, "search-complete", self.search.low))
        elif not complete and self.state is DplpmtudState.SEARCH_COMPLETE:
            self.state = DplpmtudState.SEARCHING

    # -- the probe timer (a host timer source) ---------------------------------------------------
    def get_timer(self) -> float | None:
        return self.probe_due

    def handle_timer(self, now: float) -> None:
        if self.probe is None or self.probe_due is None or now < self.probe_due:
            return
        size, self.probe, self.probe_due = self.probe, None, None
        self.probe_count += 1
        self.log.append((now, "probe-lost", size))
        if self.probe_count < self.max_probes:
            self.retry = size
            return
        self.retry = None
        self.probe_count = 0
        if self.state is DplpmtudState.BASE:
            self.state = DplpmtudState.ERROR  # not even the base size: MIN_PLPMTU
            self.plpmtu = self.min
        elif self.state in (DplpmtudState.SEARCHING, DplpmtudState.SEARCH_COMPLETE):
            self.search.lost(size, now)
            self._sync(now)

    def describe(self) -> str:
        return (f"dplpmtud {self.state.value} plpmtu {self.plpmtu} low {self.search.low} "
                f"high {self.search.high}")
