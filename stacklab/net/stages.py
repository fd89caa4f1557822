"""The middlewares of a simulated link direction (as smoltcp's ``phy/``): one :class:`Stage`
each, composed by :class:`stacklab.net.link.Direction` into a chain.

A stage has ``push(frame, t)``, where ``t`` is the virtual time at which the frame reaches it, and
passes the frame on to ``self.next`` (maybe later: ``t`` grows through the rate limiter and the
delay), drops it with ``self.dir.drop(reason, frame, t)`` (counted ``drop.<reason>``) or changes
it. :class:`Schedule` hands frames to the event loop; at their time, the receive taps run and
:class:`Deliver` gives each to the direction's :class:`Receiver`.

What a stage may use of its direction is :class:`StageContext`; the receiving end is a
:class:`Receiver` (``deliver``, and ``hold``/``release`` around a batch of frames due at one
instant), which :class:`stacklab.api.driver.NodeDriver` is.
"""

from __future__ import annotations

import asyncio
import heapq
import operator
import random
from collections import Counter, deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from stacklab.wire import icmpv4 as i4
from stacklab.wire import icmpv6 as i6
from stacklab.wire.errors import MalformedPacket
from stacklab.wire.ethernet import ETH_P_8021Q, ETH_P_IPV4, ETH_P_IPV6, EthernetView
from stacklab.wire.frame import complete_checksum
from stacklab.wire.ipv4 import IPv4View
from stacklab.wire.ipv6 import IPv6View, walk_ext_headers
from stacklab.wire.proto import (
    PROTO_DSTOPTS,
    PROTO_FRAGMENT,
    PROTO_HOPOPTS,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_ROUTING,
    PROTO_TCP,
)

if TYPE_CHECKING:
    from stacklab.trace.events import Tracer

__all__ = [
    "Capture", "Corrupt", "Delay", "Deliver", "DropNth", "Duplicate", "FrameWriter", "Gate",
    "IcmpBlackhole", "Loss", "MtuCheck", "QueueStats", "RateLimit", "Receiver", "Reorder",
    "Schedule", "Stage", "StageContext", "TraceDelivered", "TraceSent", "Unconnected",
    "frame_summary", "is_packet_too_big", "is_tcp_data",
]

ETH_HEADER = 14
# ICMPv6, or an extension header that may come before it
_ICMPV6_OR_EXT = frozenset((PROTO_ICMPV6, PROTO_HOPOPTS, PROTO_ROUTING, PROTO_FRAGMENT,
                            PROTO_DSTOPTS))


class Receiver(Protocol):
    """The receiving end of a link direction: a node's driver."""

    def deliver(self, ifindex: int, frame: bytes) -> None:
        """A frame arrived on interface ``ifindex``."""

    def hold(self) -> None:
        """A batch of frames arrives at one instant: act on them at :meth:`release`."""

    def release(self, flush: bool = True) -> None:
        """The batch is over (``flush=False``: it was cut short by an exception)."""


class FrameWriter(Protocol):
    """A capture tap (a pcap writer): sees each frame passing and when."""

    def write(self, frame: bytes, t: float) -> None: ...


class StageContext(Protocol):
    """What a stage may use of the direction it sits in (:class:`stacklab.net.link.Direction`)."""

    up: bool
    loop: asyncio.AbstractEventLoop
    counters: Counter[str]
    receiver: Receiver
    rx_ifindex: int
    tracer: Tracer | None
    label: str  # "a>b"
    labeler: Any  # a stacklab.trace.label.Labeler
    src_name: str
    dst_name: str
    in_air: dict[bytes, deque[float]]
    qstats: QueueStats
    corrupted: dict[bytes, str]

    def drop(self, reason: str, frame: bytes, t: float) -> None: ...

    def take_sent(self, frame: bytes, t: float) -> float: ...

    def corrupted_copy(self, frame: bytes, damaged: bytes, t: float) -> bytes: ...


class Unconnected:
    """The :class:`Receiver` of a direction not wired to a node yet: frames vanish."""

    def deliver(self, ifindex: int, frame: bytes) -> None:
        return None

    def hold(self) -> None:
        return None

    def release(self, flush: bool = True) -> None:
        return None


class Stage:
    """A middleware: ``push(frame, t)`` and pass on to ``self.next`` (or drop via ``dir.drop``)."""

    __slots__ = ("next", "dir")

    def __init__(self, direction: StageContext) -> None:
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

    def __init__(self, direction: StageContext, mtu: int) -> None:
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
    if ethertype == ETH_P_8021Q:
        ethertype = frame[16] << 8 | frame[17]
        off = 18
    if ethertype == ETH_P_IPV4:
        if frame[off + 9] != PROTO_ICMP:
            return False
    elif ethertype == ETH_P_IPV6:
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
            return len(icmp) >= 2 and icmp[0] == i4.DEST_UNREACH and icmp[1] == i4.UNREACH_NEEDFRAG
        ip6 = IPv6View(eth.payload)
        upper, offset, frag, _ = walk_ext_headers(ip6)
        if upper != PROTO_ICMPV6 or (frag is not None and frag.offset):
            return False
        return 40 + ip6.payload_length > offset and ip6.buf[offset] == i6.PACKET_TOO_BIG
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


class QueueStats:
    """What a direction's queue saw: the frames in it (waiting or being sent) as each frame
    arrived, and each frame's sojourn time (arrival to the start of its transmission, what
    CoDel measures) in a histogram of whole microseconds (bounded memory on long runs)."""

    __slots__ = ("arrivals", "length_sum", "length_max", "sojourn_us")

    def __init__(self) -> None:
        self.arrivals = 0
        self.length_sum = 0
        self.length_max = 0
        self.sojourn_us: dict[int, int] = {}  # (a plain dict: a Counter costs 3x per frame)

    def arrival(self, length: int) -> None:
        self.arrivals += 1
        self.length_sum += length
        if length > self.length_max:
            self.length_max = length

    def departure(self, sojourn: float) -> None:
        us = int(sojourn * 1e6 + 0.5)
        hist = self.sojourn_us
        hist[us] = hist.get(us, 0) + 1

    def percentile(self, q: float) -> float:
        """The sojourn time (seconds) below which a fraction ``q`` of the frames stayed."""
        hist = self.sojourn_us
        rank = q * sum(hist.values())
        seen = 0
        for us in sorted(hist):
            seen += hist[us]
            if seen >= rank:
                return us / 1e6
        return 0.0

    def summary(self) -> dict[str, float | int]:
        """The figures of the scenario JSON summary (sojourn times in milliseconds)."""
        return {
            "arrivals": self.arrivals,
            "length_mean": round(self.length_sum / self.arrivals, 3) if self.arrivals else 0,
            "length_max": self.length_max,
            **{f"sojourn_p{int(q * 100)}_ms": self.percentile(q) * 1e3 for q in (0.5, 0.9, 0.99)},
            "sojourn_max_ms": max(self.sojourn_us, default=0) / 1e3,
        }


class RateLimit(Stage):
    """Serialization at ``rate`` bits/s behind a drop-tail queue of ``limit`` frames.

    The frame leaves this stage when its last bit is on the wire. The queue is computed, not
    simulated: ``_done`` holds the finish times of frames still queued or being sent. The other
    queue disciplines are in :mod:`stacklab.net.aqm`.
    """

    __slots__ = ("seconds_per_byte", "limit", "stats", "_done", "_busy_until")

    def __init__(self, direction: StageContext, rate: float, limit: int,
                 stats: QueueStats) -> None:
        super().__init__(direction)
        self.seconds_per_byte = 8.0 / rate
        self.limit = limit
        self.stats = stats
        self._done: deque[float] = deque()
        self._busy_until = 0.0

    def push(self, frame: bytes, t: float) -> None:
        done = self._done
        while done and done[0] <= t:
            done.popleft()
        self.stats.arrival(len(done))
        if len(done) >= self.limit:
            self.dir.drop("queue", frame, t)
            return
        start = self._busy_until if self._busy_until > t else t
        self.stats.departure(start - t)
        finish = start + len(frame) * self.seconds_per_byte
        self._busy_until = finish
        done.append(finish)
        self.next.push(frame, finish)

    def backlog(self, t: float) -> int:
        """Frames queued or being sent at time ``t``."""
        return sum(1 for d in self._done if d > t)


class Loss(Stage):
    __slots__ = ("p", "rand")

    def __init__(self, direction: StageContext, p: float, rng: random.Random) -> None:
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
    if et == ETH_P_IPV4:
        ihl = (frame[ip] & 0x0F) * 4
        if frame[ip + 9] != PROTO_TCP or (frame[ip + 6] & 0x1F) or frame[ip + 7]:
            return False  # not TCP, or a fragment
        total = (frame[ip + 2] << 8) | frame[ip + 3]
        tcp = ip + ihl
        l4_len = total - ihl
    elif et == ETH_P_IPV6:
        if frame[ip + 6] != PROTO_TCP:
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

    def __init__(self, direction: StageContext, nth: tuple[int, ...], count: str) -> None:
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

    def __init__(self, direction: StageContext, p: float, rng: random.Random) -> None:
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

    def __init__(self, direction: StageContext, p: float, rng: random.Random) -> None:
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
            frame = self.dir.corrupted_copy(frame, bytes(buf), t)
        self.next.push(frame, t)


class Delay(Stage):
    """Propagation delay plus uniform jitter in [-jitter, +jitter]; never reorders (a wire is
    FIFO): a frame never arrives before the one sent ahead of it."""

    __slots__ = ("delay", "jitter", "rng", "_last")

    def __init__(self, direction: StageContext, delay: float, jitter: float,
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

    def __init__(self, direction: StageContext, p: float, hold: float, rng: random.Random) -> None:
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

    def __init__(self, direction: StageContext, writer: FrameWriter) -> None:
        super().__init__(direction)
        self.writer = writer

    def push(self, frame: bytes, t: float) -> None:
        self.writer.write(frame, t)
        self.next.push(frame, t)


def frame_summary(frame: bytes) -> str:
    """The tcpdump-like line of a frame, for the trace (only called while tracing) and a stack
    bug's note, with real checksums (a PartialFrame completed: its partial sum is no error)."""
    from stacklab.wire.summary import summarize

    return summarize(complete_checksum(frame))


class TraceSent(Stage):
    """With a tracer: remembers when each frame was sent, so delivery can say how long it flew."""

    __slots__ = ()

    def push(self, frame: bytes, t: float) -> None:
        d = self.dir
        d.in_air.setdefault(frame, deque()).append(t)
        if d.tracer is not None:
            d.tracer.emit(t, d.src_name, "link", "tx", dst=d.dst_name, len=len(frame),
                          summary=frame_summary(frame))
        self.next.push(frame, t)


class TraceDelivered(Stage):
    """With a tracer: emits ``link``/``deliver`` (src, dst, sent, label) for the diagrams."""

    __slots__ = ()

    def push(self, frame: bytes, t: float) -> None:
        d = self.dir
        if d.tracer is not None and d.up:
            sent = d.take_sent(frame, t)
            extra = {}
            if frame in d.corrupted:
                extra["corrupt"] = d.corrupted.pop(frame)
            d.tracer.emit(t, d.dst_name, "link", "deliver", src=d.src_name, dst=d.dst_name,
                          sent=sent, len=len(frame), label=d.labeler.label(frame),
                          summary=frame_summary(frame), **extra)
        self.next.push(frame, t)


class Schedule(Stage):
    """Hands frames to the event loop for delivery at their time ``t``.

    One loop timer per direction at most (armed for the earliest frame), not one per frame: the
    loop's heap stays small. Frames due at the same time are delivered in the order they were
    pushed: the order of (t, push order). A wire is FIFO, so frames come in that order almost
    always (each ``t`` no earlier than the last one queued): they wait in a plain list, taken
    a train at a time with no heap work per frame. A frame due before the last one queued (a
    reorder, a delay made shorter by ``link.set``) turns what waits into a heap keyed by (t,
    push order), the same order, until it is empty again.
    """

    __slots__ = ("_fifo", "_head", "_heap", "_seq", "_loop", "_timer_at", "_handle")

    def __init__(self, direction: StageContext) -> None:
        super().__init__(direction)
        self._fifo: list[tuple[float, bytes]] = []  # (t, frame), t never decreasing, from _head
        self._head = 0
        self._heap: list[tuple[float, int, bytes]] = []  # (t, push order, frame), else empty
        self._seq = 0
        self._loop = direction.loop
        self._timer_at: float | None = None
        self._handle: asyncio.TimerHandle | None = None

    def push_all(self, out: Sequence[tuple[int, bytes]], t: float) -> None:
        """:meth:`push` of the frame of each ``(ifindex, frame)`` of ``out`` (two or more), in
        order, all due at ``t`` (a flush's frames on the plain wire: ``Direction.send_all``):
        the first as any, the others behind it in the same queue (due when it is, after it)."""
        self.push(out[0][1], t)
        if self._heap:
            for _, frame in out[1:]:
                self._push_heap(frame, t)
        else:
            self._fifo += [(t, frame) for _, frame in out[1:]]

    def push(self, frame: bytes, t: float) -> None:
        fifo = self._fifo
        if not self._heap and (not fifo or t >= fifo[-1][0]):
            fifo.append((t, frame))
        else:
            self._push_heap(frame, t)
        at = self._timer_at
        if at is None or t < at:
            if self._handle is not None:
                self._handle.cancel()
            self._timer_at = t
            self._handle = self._loop.call_at(t, self.fire)

    def _push_heap(self, frame: bytes, t: float) -> None:
        heap = self._heap
        if not heap:  # the sorted list, numbered in order, is a heap already
            heap[:] = [(ft, seq, f) for seq, (ft, f) in enumerate(self._fifo[self._head:])]
            self._seq = len(heap)
            self._fifo = []
            self._head = 0
        self._seq += 1
        heapq.heappush(heap, (t, self._seq, frame))

    def _heap_due(self, now: float) -> list[tuple[float, bytes]]:
        """The frames due by ``now``, in order, out of the heap."""
        heap = self._heap
        due = []
        while heap and heap[0][0] <= now:
            t, _, frame = heapq.heappop(heap)
            due.append((t, frame))
        return due

    def fire(self) -> None:
        self._handle = None
        self._timer_at = None
        now = self._loop.time()
        nxt = self.next
        d = self.dir
        fifo = self._fifo
        heap = self._heap
        # Several frames due at once: the receiver flushes once after them (its output keeps its
        # order and time). Not with a tracer: its events would interleave differently.
        if heap:
            train = len(heap) > 1 and min(heap[1:3])[0] <= now
        else:
            i = self._head + 1
            train = i < len(fifo) and fifo[i][0] <= now
        receiver = d.receiver if train and d.tracer is None else None
        if receiver is not None:
            receiver.hold()
        try:
            while True:
                if self._heap:
                    due = self._heap_due(now)
                else:  # the due frames are the list's first ones
                    fifo = self._fifo
                    head = i = self._head
                    n = len(fifo)
                    while i < n and fifo[i][0] <= now:
                        i += 1
                    if i == n:
                        due = fifo[head:] if head else fifo
                        self._fifo = []
                        self._head = 0
                    else:
                        due = fifo[head:i]
                        if i > 256 and 2 * i > n:  # drop what was taken once it is most of it
                            del fifo[:i]
                            i = 0
                        self._head = i
                if type(nxt) is Deliver:  # no receive tap or tracer: straight to the receiver
                    nxt.take_due(due)
                else:
                    for t, frame in due:
                        nxt.push(frame, t)
                # again when a delivery queued a frame due by now meanwhile (a zero delay)
                if self._heap:
                    nxt_t: float | None = self._heap[0][0]
                elif self._fifo:
                    nxt_t = self._fifo[self._head][0]
                else:
                    nxt_t = None
                if nxt_t is None or nxt_t > now or not due:
                    break
        except BaseException:
            if receiver is not None:
                receiver.release(flush=False)
            raise
        if receiver is not None:
            receiver.release()
        if nxt_t is not None:
            # (declared: the narrowing to None above ended with the deliveries' calls)
            at: float | None = self._timer_at  # a delivery may have pushed (and armed) meanwhile
            if at is None or nxt_t < at:
                if self._handle is not None:
                    self._handle.cancel()
                self._timer_at = nxt_t
                self._handle = self._loop.call_at(nxt_t, self.fire)

    def in_flight(self) -> int:
        return len(self._heap) + len(self._fifo) - self._head


_FRAME = operator.itemgetter(1)  # the frame of a (t, frame) pair


class Deliver(Stage):
    """The end of the line: the direction's :class:`Receiver` (the node's driver) gets the
    frame."""

    __slots__ = ()

    def push(self, frame: bytes, t: float) -> None:
        d = self.dir
        if not d.up:
            d.drop("down", frame, t)
            return
        c = d.counters
        c["rx.frames"] += 1
        c["rx.bytes"] += len(frame)
        try:
            d.receiver.deliver(d.rx_ifindex, frame)
        except Exception as exc:
            _name_frame(exc, d, frame, t)
            raise

    def take_due(self, due: list[tuple[float, bytes]]) -> None:
        """:meth:`push` of each ``(t, frame)`` of ``due``, in order, when this stage comes right
        after :class:`Schedule` (the plain receive side): one call per batch, the counters
        added once at its end."""
        d = self.dir
        deliver = d.receiver.deliver
        ifindex = d.rx_ifindex
        frames = taken = dropped = 0
        try:
            for t, frame in due:
                taken += 1
                if not d.up:
                    d.drop("down", frame, t)
                    dropped += len(frame)
                    continue
                frames += 1
                try:
                    deliver(ifindex, frame)
                except Exception as exc:
                    _name_frame(exc, d, frame, t)
                    raise
        finally:
            if frames:
                c = d.counters
                c["rx.frames"] += frames
                # the bytes of the frames taken (delivered, or the one that raised), summed
                # once for the batch
                c["rx.bytes"] += sum(map(len, map(_FRAME, due[:taken]))) - dropped


def _name_frame(exc: Exception, d: StageContext, frame: bytes, t: float) -> None:
    """A stack bug raised while delivering ``frame``: the run stops, naming the frame."""
    exc.add_note(f"while {d.dst_name} received on {d.label} at t={t:.9f}s: "
                 f"{frame_summary(frame)} (frame {frame.hex()})")
