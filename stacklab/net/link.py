"""Links between node interfaces, built from composable middlewares (as smoltcp's ``phy/``).

A :class:`Link` joins interface ``a`` of one node to interface ``b`` of another. Each direction is
a :class:`Direction`: a chain of :class:`Stage` middlewares, each with ``push(frame, t)`` where
``t`` is the virtual time at which the frame reaches that stage. Stages pass the frame on (maybe
later: ``t`` grows through the rate limiter and the delay), drop it (counted with a reason) or
change it. The last stage schedules delivery on the event loop; at delivery time the receive taps
(capture) run and the frame is handed to the receiving node's driver.

Only the stages a direction needs are built (``loss=0`` costs nothing), in this order::

    [capture tx] gate(up/down) -> mtu -> icmp_blackhole -> rate+queue -> loss -> drop_nth
        -> duplicate -> corrupt -> delay+jitter -> reorder -> schedule   ...t...
        [capture rx] -> deliver

Randomness: every random stage owns a ``random.Random`` seeded from the network seed, the link
name, the direction and the stage name, so changing one impairment does not reshuffle another,
and the same seed gives the same frames byte for byte.
"""

from __future__ import annotations

import asyncio
import heapq
import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from stacklab.wire.errors import MalformedPacket
from stacklab.wire.ethernet import ETH_P_IPV4, EthernetView
from stacklab.wire.ipv4 import PROTO_ICMP, IPv4View
from stacklab.wire.ipv6 import IPv6View, walk_ext_headers

from .units import ParamError, parse_duration, parse_probability, parse_rate

if TYPE_CHECKING:
    from stacklab.trace.events import Tracer

__all__ = ["LINK_PARAMS", "Direction", "Link", "LinkParams", "Stage"]

ETH_HEADER = 14
PROTO_ICMPV6 = 58
_ICMPV6_OR_EXT = frozenset((58, 0, 43, 44, 60))  # ICMPv6, or an extension header before it


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------
@dataclass(slots=True)
class LinkParams:
    """Parameters of one direction of a link, in base units (seconds, bits/s, probabilities)."""

    mtu: int = 1500  # largest IP packet; frames longer than mtu + 14 are dropped ("drop.mtu")
    delay: float = 0.001  # propagation delay, s
    jitter: float = 0.0  # uniform +-jitter added to delay, s; frames stay in order
    rate: float | None = None  # bits/s; None = no serialization delay, no queue
    queue: int = 1000  # drop-tail queue limit in frames (waiting + being sent), with `rate`
    loss: float = 0.0  # probability a frame is lost
    duplicate: float = 0.0  # probability a frame is delivered twice
    reorder: float = 0.0  # probability a frame is held back by reorder_delay (later ones pass it)
    reorder_delay: float = 0.001  # s
    corrupt: float = 0.0  # probability one bit after the Ethernet header is flipped
    icmp_blackhole: bool = False  # drop ICMPv4 3/4 (Frag Needed) and ICMPv6 2 (Packet Too Big)
    drop_nth: tuple[int, ...] = ()  # deterministic loss: the Nth (1-based) frames counted below
    drop_count: str = "all"  # what drop_nth counts: "all" frames or "tcp-data" (TCP with payload)

    def with_updates(self, values: dict[str, Any]) -> LinkParams:
        """A copy with ``values`` parsed from user units; :class:`ParamError` names a bad key."""
        changes: dict[str, Any] = {}
        for key, raw in values.items():
            parser = _PARSERS.get(key)
            if parser is None:
                raise ParamError(key, f"unknown link parameter (known: {', '.join(LINK_PARAMS)})")
            changes[key] = parser(raw, key)
        return replace(self, **changes)


def _parse_mtu(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamError(key, f"expected an integer number of bytes, got {value!r}")
    if not 68 <= value <= 65535:
        raise ParamError(key, f"an MTU must be between 68 and 65535, got {value}")
    return value


def _parse_rate_or_none(value: object, key: str) -> float | None:
    if value is None or value == "" or value == "none" or value == 0:
        return None
    return parse_rate(value, key)


def _parse_queue(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParamError(key, f"expected a queue limit in frames (an integer >= 1), got {value!r}")
    return value


def _parse_bool(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise ParamError(key, f"expected true or false, got {value!r}")
    return value


def _parse_drop_nth(value: object, key: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
        raise ParamError(key, f"expected a list of frame numbers >= 1, got {value!r}")
    return tuple(sorted(set(value)))


def _parse_drop_count(value: object, key: str) -> str:
    if value not in ("all", "tcp-data"):
        raise ParamError(key, f'expected "all" or "tcp-data", got {value!r}')
    return str(value)


_PARSERS: dict[str, Callable[[object, str], Any]] = {
    "mtu": _parse_mtu,
    "delay": parse_duration,
    "jitter": parse_duration,
    "rate": _parse_rate_or_none,
    "queue": _parse_queue,
    "loss": parse_probability,
    "duplicate": parse_probability,
    "reorder": parse_probability,
    "reorder_delay": parse_duration,
    "corrupt": parse_probability,
    "icmp_blackhole": _parse_bool,
    "drop_nth": _parse_drop_nth,
    "drop_count": _parse_drop_count,
}
LINK_PARAMS: tuple[str, ...] = tuple(f.name for f in fields(LinkParams))
assert set(LINK_PARAMS) == set(_PARSERS)


# --------------------------------------------------------------------------------------------
# Stages (middlewares)
# --------------------------------------------------------------------------------------------
class Stage:
    """A middleware: ``push(frame, t)`` and pass on to ``self.next`` (or drop via ``dir.drop``)."""

    __slots__ = ("next", "dir")

    def __init__(self, direction: Direction) -> None:
        self.dir = direction
        self.next: Stage = None  # type: ignore[assignment]  # set when the chain is linked

    def push(self, frame: bytes, t: float) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class Gate(Stage):
    """Drops everything while the link is down."""

    __slots__ = ()

    def push(self, frame: bytes, t: float) -> None:
        if self.dir.up:
            self.next.push(frame, t)
        else:
            self.dir.drop("down", frame, t)


class MtuCheck(Stage):
    __slots__ = ("limit",)

    def __init__(self, direction: Direction, mtu: int) -> None:
        super().__init__(direction)
        self.limit = mtu + ETH_HEADER

    def push(self, frame: bytes, t: float) -> None:
        if len(frame) > self.limit:
            self.dir.drop("mtu", frame, t)
        else:
            self.next.push(frame, t)


def is_packet_too_big(frame: bytes) -> bool:
    """ICMPv4 Destination Unreachable / Fragmentation Needed (3/4) or ICMPv6 Packet Too Big (2),
    judged on type and code (as a filtering firewall does; the body is not validated)."""
    n = len(frame)
    if n < 34:
        return False
    # Cheap pre-filter on raw bytes (the hot path): only ICMP-looking frames are parsed.
    ethertype = frame[12] << 8 | frame[13]
    off = 14
    if ethertype == 0x8100:
        ethertype = frame[16] << 8 | frame[17]
        off = 18
    if ethertype == 0x0800:
        if frame[off + 9] != PROTO_ICMP:
            return False
    elif ethertype == 0x86DD:
        if n < off + 40 or frame[off + 6] not in _ICMPV6_OR_EXT:
            return False
    else:
        return False
    try:
        eth = EthernetView(frame)
        if eth.ethertype == ETH_P_IPV4:
            ip4 = IPv4View(eth.payload)
            if ip4.proto != PROTO_ICMP or ip4.frag_offset:
                return False
            icmp = ip4.payload
            return len(icmp) >= 2 and icmp[0] == 3 and icmp[1] == 4
        ip6 = IPv6View(eth.payload)
        upper, offset, frag, _ = walk_ext_headers(ip6)
        if upper != PROTO_ICMPV6 or (frag is not None and frag.offset):
            return False
        return 40 + ip6.payload_length > offset and ip6.buf[offset] == 2
    except MalformedPacket:
        return False


class IcmpBlackhole(Stage):
    """Silently drops the ICMP messages Path MTU discovery needs (a PMTUD black hole)."""

    __slots__ = ()

    def push(self, frame: bytes, t: float) -> None:
        if is_packet_too_big(frame):
            self.dir.drop("icmp_blackhole", frame, t)
        else:
            self.next.push(frame, t)


class RateLimit(Stage):
    """Serialization at ``rate`` bits/s behind a drop-tail queue of ``limit`` frames.

    The frame leaves this stage when its last bit is on the wire. The queue is computed, not
    simulated: ``_done`` holds the finish times of frames still queued or being sent.
    """

    __slots__ = ("seconds_per_byte", "limit", "_done", "_busy_until")

    def __init__(self, direction: Direction, rate: float, limit: int) -> None:
        super().__init__(direction)
        self.seconds_per_byte = 8.0 / rate
        self.limit = limit
        self._done: deque[float] = deque()
        self._busy_until = 0.0

    def push(self, frame: bytes, t: float) -> None:
        done = self._done
        while done and done[0] <= t:
            done.popleft()
        if len(done) >= self.limit:
            self.dir.drop("queue", frame, t)
            return
        start = self._busy_until if self._busy_until > t else t
        finish = start + len(frame) * self.seconds_per_byte
        self._busy_until = finish
        done.append(finish)
        self.next.push(frame, finish)

    def backlog(self, t: float) -> int:
        """Frames queued or being sent at time ``t``."""
        return sum(1 for d in self._done if d > t)


class Loss(Stage):
    __slots__ = ("p", "rand")

    def __init__(self, direction: Direction, p: float, rng: random.Random) -> None:
        super().__init__(direction)
        self.p = p
        self.rand = rng.random

    def push(self, frame: bytes, t: float) -> None:
        if self.rand() < self.p:
            self.dir.drop("loss", frame, t)
        else:
            self.next.push(frame, t)


def is_tcp_data(frame: bytes) -> bool:
    """An Ethernet frame carrying a TCP segment with payload (IPv4, or IPv6 without extension
    headers); anything shorter or stranger is not."""
    if len(frame) < ETH_HEADER + 40:
        return False
    et = (frame[12] << 8) | frame[13]
    ip = ETH_HEADER
    if et == 0x0800:
        ihl = (frame[ip] & 0x0F) * 4
        if frame[ip + 9] != 6 or (frame[ip + 6] & 0x1F) or frame[ip + 7]:
            return False  # not TCP, or a fragment
        total = (frame[ip + 2] << 8) | frame[ip + 3]
        tcp = ip + ihl
        l4_len = total - ihl
    elif et == 0x86DD:
        if frame[ip + 6] != 6:
            return False
        tcp = ip + 40
        l4_len = (frame[ip + 4] << 8) | frame[ip + 5]
    else:
        return False
    if len(frame) < tcp + 20:
        return False
    return l4_len - (frame[tcp + 12] >> 4) * 4 > 0


class DropNth(Stage):
    """Deterministic loss: drops the frames whose 1-based number (among all frames, or among
    TCP segments with payload) is listed; counted ``drop.nth``. The count survives link.set."""

    __slots__ = ("nth", "tcp_only", "count")

    def __init__(self, direction: Direction, nth: tuple[int, ...], count: str) -> None:
        super().__init__(direction)
        self.nth = frozenset(nth)
        self.tcp_only = count == "tcp-data"
        self.count = 0

    def push(self, frame: bytes, t: float) -> None:
        if not self.tcp_only or is_tcp_data(frame):
            self.count += 1
            if self.count in self.nth:
                self.dir.drop("nth", frame, t)
                return
        self.next.push(frame, t)


class Duplicate(Stage):
    __slots__ = ("p", "rand")

    def __init__(self, direction: Direction, p: float, rng: random.Random) -> None:
        super().__init__(direction)
        self.p = p
        self.rand = rng.random

    def push(self, frame: bytes, t: float) -> None:
        self.next.push(frame, t)
        if self.rand() < self.p:
            self.dir.counters["duplicate"] += 1
            self.next.push(frame, t)


class Corrupt(Stage):
    """Flips one random bit after the Ethernet header (the FCS is not simulated: this is the
    error that got past it, so IP/TCP/UDP/ICMP checksums must catch it)."""

    __slots__ = ("p", "rng")

    def __init__(self, direction: Direction, p: float, rng: random.Random) -> None:
        super().__init__(direction)
        self.p = p
        self.rng = rng

    def push(self, frame: bytes, t: float) -> None:
        rng = self.rng
        if rng.random() < self.p:
            buf = bytearray(frame)
            first = ETH_HEADER * 8 if len(buf) > ETH_HEADER else 0
            if buf:
                bit = rng.randrange(first, len(buf) * 8)
                buf[bit >> 3] ^= 0x80 >> (bit & 7)
            frame = bytes(buf)
            self.dir.counters["corrupt"] += 1
        self.next.push(frame, t)


class Delay(Stage):
    """Propagation delay plus uniform jitter in [-jitter, +jitter]; never reorders (a wire is
    FIFO): a frame never arrives before the one sent ahead of it."""

    __slots__ = ("delay", "jitter", "rng", "_last")

    def __init__(self, direction: Direction, delay: float, jitter: float,
                 rng: random.Random) -> None:
        super().__init__(direction)
        self.delay = delay
        self.jitter = jitter
        self.rng = rng
        self._last = 0.0

    def push(self, frame: bytes, t: float) -> None:
        at = t + self.delay
        if self.jitter:
            at += self.rng.uniform(-self.jitter, self.jitter)
            if at < t:
                at = t
            if at < self._last:
                at = self._last
            self._last = at
        self.next.push(frame, at)


class Reorder(Stage):
    __slots__ = ("p", "hold", "rand")

    def __init__(self, direction: Direction, p: float, hold: float, rng: random.Random) -> None:
        super().__init__(direction)
        self.p = p
        self.hold = hold
        self.rand = rng.random

    def push(self, frame: bytes, t: float) -> None:
        if self.rand() < self.p:
            self.dir.counters["reorder"] += 1
            t += self.hold
        self.next.push(frame, t)


class Capture(Stage):
    """Writes every frame passing by to a pcap writer (``write(frame, t)``), then passes it on."""

    __slots__ = ("writer",)

    def __init__(self, direction: Direction, writer: Any) -> None:
        super().__init__(direction)
        self.writer = writer

    def push(self, frame: bytes, t: float) -> None:
        self.writer.write(frame, t)
        self.next.push(frame, t)


def _summarize(frame: bytes) -> str:
    """The tcpdump-like line of a frame, for the trace (only called while tracing)."""
    from stacklab.wire.summary import summarize

    return summarize(frame)


class TraceSent(Stage):
    """With a tracer: remembers when each frame was sent, so delivery can say how long it flew."""

    __slots__ = ()

    def push(self, frame: bytes, t: float) -> None:
        d = self.dir
        d.in_air.setdefault(frame, deque()).append(t)
        if d.tracer is not None:
            d.tracer.emit(t, d.src_name, "link", "tx", dst=d.dst_name, len=len(frame),
                          summary=_summarize(frame))
        self.next.push(frame, t)


class TraceDelivered(Stage):
    """With a tracer: emits ``link``/``deliver`` (src, dst, sent, label) for the diagrams."""

    __slots__ = ()

    def push(self, frame: bytes, t: float) -> None:
        d = self.dir
        if d.tracer is not None and d.up:
            sent = d.take_sent(frame, t)
            d.tracer.emit(t, d.dst_name, "link", "deliver", src=d.src_name, dst=d.dst_name,
                          sent=sent, len=len(frame), label=d.labeler.label(frame),
                          summary=_summarize(frame))
        self.next.push(frame, t)


class Schedule(Stage):
    """Hands frames to the event loop for delivery at their time ``t``.

    One loop timer per direction at most (armed for the earliest frame), not one per frame: the
    loop's heap stays small. Frames due at the same time are delivered in the order they were
    pushed (our own heap is keyed by (t, sequence)).
    """

    __slots__ = ("_heap", "_seq", "_loop", "_timer_at", "_handle")

    def __init__(self, direction: Direction) -> None:
        super().__init__(direction)
        self._heap: list[tuple[float, int, bytes]] = []
        self._seq = 0
        self._loop = direction.loop
        self._timer_at: float | None = None
        self._handle: asyncio.TimerHandle | None = None

    def push(self, frame: bytes, t: float) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, frame))
        at = self._timer_at
        if at is None or t < at:
            if self._handle is not None:
                self._handle.cancel()
            self._timer_at = t
            self._handle = self._loop.call_at(t, self.fire)

    def fire(self) -> None:
        self._handle = None
        self._timer_at = None
        heap = self._heap
        now = self._loop.time()
        pop = heapq.heappop
        nxt = self.next
        # Several frames due at once: the receiving driver flushes once after them (its
        # output keeps its order and time). Not with a tracer: its events would interleave
        # differently.
        d = self.dir
        drv = None
        if len(heap) > 1 and heap[1][0] <= now and d.tracer is None:
            drv = getattr(d.receiver, "__self__", None)
            if not hasattr(drv, "hold"):
                drv = None
        if drv is not None:
            drv.hold()
        try:
            if type(nxt) is Deliver:  # Deliver.push, inline
                c = d.counters
                receiver = d.receiver
                while heap and heap[0][0] <= now:
                    t, _, frame = pop(heap)
                    if d.up:
                        c["rx.frames"] += 1
                        c["rx.bytes"] += len(frame)
                        receiver(d.rx_ifindex, frame)
                    else:
                        d.drop("down", frame, t)
            else:
                while heap and heap[0][0] <= now:
                    t, _, frame = pop(heap)
                    nxt.push(frame, t)
        except BaseException:
            if drv is not None:
                drv.release(flush=False)
            raise
        if drv is not None:
            drv.release()
        if heap:
            t = heap[0][0]
            at = self._timer_at  # a delivery may have pushed (and armed) meanwhile
            if at is None or t < at:
                if self._handle is not None:
                    self._handle.cancel()
                self._timer_at = t
                self._handle = self._loop.call_at(t, self.fire)

    def in_flight(self) -> int:
        return len(self._heap)


class Deliver(Stage):
    """The end of the line: the receiving node's driver gets the frame."""

    __slots__ = ()

    def push(self, frame: bytes, t: float) -> None:
        d = self.dir
        if not d.up:
            d.drop("down", frame, t)
            return
        c = d.counters
        c["rx.frames"] += 1
        c["rx.bytes"] += len(frame)
        d.receiver(d.rx_ifindex, frame)


# --------------------------------------------------------------------------------------------
# Directions and links
# --------------------------------------------------------------------------------------------
class Direction:
    """One direction of a link: its parameters, its middleware chain, its counters."""

    def __init__(self, link: Link, label: str, params: LinkParams, seed: object,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.link = link
        self.label = label  # "a>b" with node names
        self.params = params
        self.seed = seed
        self.loop = loop
        self.up = True
        self.counters: Counter[str] = Counter()
        self.tracer: Tracer | None = None
        self.src_name, _, self.dst_name = label.partition(">")
        self.labeler: Any = None  # a stacklab.trace.label.Labeler shared by the network
        self.in_air: dict[bytes, deque[float]] = {}  # send times, only while tracing
        self.receiver: Callable[[int, bytes], None] = _nowhere
        self.rx_ifindex = 0
        self.tx_taps: list[Any] = []  # pcap-like writers seeing frames as the sender sends them
        self.rx_taps: list[Any] = []  # ... and as the receiver gets them
        self.extra: list[Callable[[Direction], Stage]] = []  # user middlewares, before the delay
        self._head: Stage | None = None
        # the chain Gate -> MtuCheck -> Delay (no jitter) -> Schedule, run inline by send():
        # (mtu limit, delay, schedule), or None when the chain has anything else
        self._plain: tuple[int, float, Schedule] | None = None
        self._schedule: Schedule | None = None
        self._rngs: dict[str, random.Random] = {}
        self.rebuild()

    def rng(self, stage: str) -> random.Random:
        """The stage's random stream; kept across :meth:`rebuild` so it continues, not restarts."""
        r = self._rngs.get(stage)
        if r is None:
            r = self._rngs[stage] = random.Random(
                f"{self.seed}/link/{self.link.name}/{self.label}/{stage}")
        return r

    def rebuild(self) -> None:
        """(Re)build the chain from the parameters. Frames in flight keep their schedule; the
        wire's state (frames queued for the rate limiter, the last arrival time) carries over."""
        old = {type(stage): stage for stage in self._stages()}
        p = self.params
        tx: list[Stage] = [Capture(self, w) for w in self.tx_taps]
        if self.tracer is not None:
            tx.insert(0, TraceSent(self))
        tx.append(Gate(self))
        tx.append(MtuCheck(self, p.mtu))
        if p.icmp_blackhole:
            tx.append(IcmpBlackhole(self))
        if p.rate is not None:
            limiter = RateLimit(self, p.rate, p.queue)
            prev = old.get(RateLimit)
            if isinstance(prev, RateLimit):
                limiter._done, limiter._busy_until = prev._done, prev._busy_until
            tx.append(limiter)
        if p.loss:
            tx.append(Loss(self, p.loss, self.rng("loss")))
        if p.drop_nth:
            dropper = DropNth(self, p.drop_nth, p.drop_count)
            prev = old.get(DropNth)
            if isinstance(prev, DropNth):
                dropper.count = prev.count
            tx.append(dropper)
        if p.duplicate:
            tx.append(Duplicate(self, p.duplicate, self.rng("duplicate")))
        if p.corrupt:
            tx.append(Corrupt(self, p.corrupt, self.rng("corrupt")))
        tx.extend(make(self) for make in self.extra)
        delay = Delay(self, p.delay, p.jitter, self.rng("jitter"))
        prev = old.get(Delay)
        if isinstance(prev, Delay):
            delay._last = prev._last
        tx.append(delay)
        if p.reorder:
            tx.append(Reorder(self, p.reorder, p.reorder_delay, self.rng("reorder")))
        if self._schedule is None:  # one per direction, for life: frames in flight stay queued
            self._schedule = Schedule(self)
        tx.append(self._schedule)
        rx: list[Stage] = [Capture(self, w) for w in self.rx_taps]
        if self.tracer is not None:
            rx.append(TraceDelivered(self))
        rx.append(Deliver(self))
        chain = tx + rx
        for stage, nxt in zip(chain, chain[1:], strict=False):
            stage.next = nxt
        self._head = chain[0]
        kinds = [type(stage) for stage in tx]
        self._plain = (p.mtu + ETH_HEADER, delay.delay, self._schedule) \
            if kinds == [Gate, MtuCheck, Delay, Schedule] and not delay.jitter else None

    def send(self, frame: bytes) -> None:
        """A frame from the sending node, now."""
        if type(frame) is not bytes:
            frame = bytes(frame)
        c = self.counters
        c["tx.frames"] += 1
        c["tx.bytes"] += len(frame)
        plain = self._plain
        if plain is None:
            self._head.push(frame, self.loop.time())  # type: ignore[union-attr]
            return
        # the plain chain inline (same order of checks as its stages)
        t = self.loop.time()
        if not self.up:
            self.drop("down", frame, t)
        elif len(frame) > plain[0]:
            self.drop("mtu", frame, t)
        else:
            plain[2].push(frame, t + plain[1])

    def drop(self, reason: str, frame: bytes, t: float) -> None:
        self.counters["drop." + reason] += 1
        if self.tracer is not None:
            now = self.loop.time()
            details: dict[str, Any] = {"reason": reason, "dir": self.label, "len": len(frame)}
            if self.labeler is not None:
                details.update(src=self.src_name, dst=self.dst_name,
                               sent=self.take_sent(frame, now), label=self.labeler.label(frame),
                               summary=_summarize(frame))
            self.tracer.emit(now, self.link.name, "link", "drop", **details)

    def take_sent(self, frame: bytes, t: float) -> float:
        """When ``frame`` entered this direction (a duplicate or a corrupted copy: ``t``)."""
        q = self.in_air.get(frame)
        if not q:
            return t
        sent = q.popleft()
        if not q:
            del self.in_air[frame]
        return sent

    def _stages(self) -> list[Stage]:
        out = []
        stage: Stage | None = self._head
        while stage is not None:
            out.append(stage)
            stage = stage.next
        return out

    def stages(self) -> list[str]:
        """The middleware chain, by class name: ``["Gate", "MtuCheck", ..., "Deliver"]``."""
        return [type(stage).__name__ for stage in self._stages()]

    def in_flight(self) -> int:
        return self._schedule.in_flight() if self._schedule else 0


def _nowhere(ifindex: int, frame: bytes) -> None:
    return None


@dataclass(eq=False)
class Link:
    """Interface ``a_port`` of node ``a`` joined to ``b_port`` of ``b``; ``ab`` and ``ba`` are the
    two :class:`Direction` s. Created by :meth:`stacklab.net.network.Network.connect`."""

    name: str
    a: Any  # Node
    a_port: int
    b: Any
    b_port: int
    ab: Direction = field(init=False)
    ba: Direction = field(init=False)

    def setup(self, ab: LinkParams, ba: LinkParams, seed: object,
              loop: asyncio.AbstractEventLoop) -> None:
        self.ab = Direction(self, f"{self.a.name}>{self.b.name}", ab, seed, loop)
        self.ba = Direction(self, f"{self.b.name}>{self.a.name}", ba, seed, loop)

    @property
    def directions(self) -> tuple[Direction, Direction]:
        return self.ab, self.ba

    def set(self, forward: dict[str, Any] | None = None, reverse: dict[str, Any] | None = None,
            **both: Any) -> None:
        """Change parameters now (``link.set(loss=0.2)``, ``link.set(forward={"rate": ...})``)."""
        for d, own in ((self.ab, forward), (self.ba, reverse)):
            d.params = d.params.with_updates({**both, **(own or {})})
            d.rebuild()

    def add_middleware(self, make: Callable[[Direction], Stage], *, forward: bool = True,
                       reverse: bool = True) -> None:
        """Add your own stage: ``make(direction)`` returns a :class:`Stage` whose ``push(frame,
        t)`` calls ``self.next.push(frame, t)`` (or ``self.dir.drop(reason, frame, t)``). It
        runs after the built-in impairments and before the delay."""
        for d, wanted in ((self.ab, forward), (self.ba, reverse)):
            if wanted:
                d.extra.append(make)
                d.rebuild()

    @property
    def up(self) -> bool:
        return self.ab.up and self.ba.up

    def set_up(self, up: bool) -> None:
        """Bring both directions up or down now. Frames in flight when it goes down are lost."""
        for d in self.directions:
            if d.up != up:
                d.up = up
                d.counters["went_up" if up else "went_down"] += 1
                if d.tracer is not None:
                    d.tracer.emit(d.loop.time(), self.name, "link", "state",
                                  new="up" if up else "down", dir=d.label)

    def schedule_down(self, at: float, until: float | None = None) -> None:
        """Down at virtual time ``at`` (absolute seconds), back up at ``until`` (if given)."""
        loop = self.ab.loop
        if until is not None and until <= at:
            raise ParamError("down", f"the link must go down before it comes back up "
                                     f"(down at {at}s, up at {until}s)")
        loop.call_at(at, self.set_up, False)
        if until is not None:
            loop.call_at(until, self.set_up, True)

    def counters(self) -> dict[str, dict[str, int]]:
        return {d.label: dict(sorted(d.counters.items())) for d in self.directions}
