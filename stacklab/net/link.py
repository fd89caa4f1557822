"""Links between node interfaces, built from composable middlewares (as smoltcp's ``phy/``).

A :class:`Link` joins interface ``a`` of one node to interface ``b`` of another. Each direction is
a :class:`Direction`: its :class:`LinkParams`, its counters and a chain of the
:class:`~stacklab.net.stages.Stage` middlewares of :mod:`stacklab.net.stages`, each with
``push(frame, t)`` where ``t`` is the virtual time at which the frame reaches that stage. The last
transmit stage schedules delivery on the event loop; at delivery time the receive taps (capture)
run and the frame is handed to the direction's receiver (the receiving node's driver).

Only the stages a direction needs are built (``loss=0`` costs nothing), in this order::

    [capture tx] gate(up/down) -> mtu -> icmp_blackhole -> rate+queue(aqm) -> loss -> drop_nth
        -> duplicate -> corrupt -> delay+jitter -> reorder -> schedule   ...t...
        [capture rx] -> deliver

Randomness: every random stage owns a ``random.Random`` seeded from the network seed, the link
name, the direction and the stage name, so changing one impairment does not reshuffle another,
and the same seed gives the same frames byte for byte.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar

from stacklab.wire.frame import PartialFrame, VerifiedFrame, complete_checksum

from .aqm import AQMS, AqmQueue, queue_stage
from .stages import (
    ETH_HEADER,
    Capture,
    Corrupt,
    Delay,
    Deliver,
    DropNth,
    Duplicate,
    FrameWriter,
    Gate,
    IcmpBlackhole,
    Loss,
    MtuCheck,
    QueueStats,
    RateLimit,
    Receiver,
    Reorder,
    Schedule,
    Stage,
    TraceDelivered,
    TraceSent,
    Unconnected,
    frame_summary,
)
from .units import ParamError, parse_duration, parse_probability, parse_rate

if TYPE_CHECKING:
    from stacklab.trace.events import Tracer

__all__ = ["LINK_PARAMS", "Direction", "Link", "LinkParams", "Stage"]

# The stages that neither read a frame's checksummed bytes nor change them (they look at lengths,
# flags, addresses or ports, and mark_ce completes what it rewrites): through a chain of these
# alone a PartialFrame (veth-like checksum offload, stacklab.wire.frame) goes as it is. Any other
# stage (a capture, the tracer's summaries, Corrupt, a user middleware) sees real checksums: the
# direction completes partial frames before its first stage (Linux's skb_checksum_help).
_PARTIAL_SAFE = frozenset((Gate, MtuCheck, IcmpBlackhole, RateLimit, AqmQueue, Loss, DropNth,
                           Duplicate, Delay, Reorder, Schedule, Deliver))


# the frames a sending node hands over almost always: bytes already (no copy, no isinstance call)
_BYTES = frozenset((bytes, VerifiedFrame, PartialFrame))


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
    queue: int = 1000  # queue limit in frames (waiting + being sent), with `rate`
    aqm: str = "droptail"  # the queue discipline with `rate`: droptail, red, codel, fq_codel
    ecn: bool = False  # an AQM marks ECT packets CE (RFC 3168) instead of dropping them
    red_min_th: float = 5.0  # RED thresholds of the average queue, frames (Floyd-Jacobson 1993)
    red_max_th: float = 15.0
    red_max_p: float = 0.02  # RED's marking probability at max_th
    red_w_q: float = 0.002  # RED's averaging weight
    red_gentle: bool = False  # RED's probability rises to 1 at 2 * max_th, not at max_th
    codel_target: float = 0.005  # CoDel's (and FQ-CoDel's) target sojourn time, s (RFC 8289)
    codel_interval: float = 0.1  # CoDel's interval, s
    fq_quantum: int = 0  # FQ-CoDel's DRR quantum, bytes (0: mtu + 14, RFC 8290 §4.2)
    fq_flows: int = 1024  # FQ-CoDel's number of flow queues
    loss: float = 0.0  # probability a frame is lost
    duplicate: float = 0.0  # probability a frame is delivered twice
    reorder: float = 0.0  # probability a frame is held back by reorder_delay (later ones pass it)
    reorder_delay: float = 0.001  # s
    corrupt: float = 0.0  # probability one bit after the Ethernet header is flipped
    icmp_blackhole: bool = False  # drop ICMPv4 3/4 (Frag Needed) and ICMPv6 2 (Packet Too Big)
    drop_nth: tuple[int, ...] = ()  # deterministic loss: the Nth (1-based) frames counted below
    drop_count: str = "all"  # what drop_nth counts: "all" frames or "tcp-data" (TCP with payload)
    QUEUE_PARAMS: ClassVar[tuple[str, ...]]  # queue .. fq_flows: they need a rate

    def with_updates(self, values: dict[str, Any]) -> LinkParams:
        """A copy with ``values`` parsed from user units; :class:`ParamError` names a bad key."""
        changes: dict[str, Any] = {}
        for key, raw in values.items():
            parser = _PARSERS.get(key)
            if parser is None:
                raise ParamError(key, f"unknown link parameter (known: {', '.join(LINK_PARAMS)})")
            changes[key] = parser(raw, key)
        out = replace(self, **changes)
        if not out.red_min_th < out.red_max_th:
            key = "red_max_th" if "red_max_th" in changes else "red_min_th"
            raise ParamError(key, f"RED needs red_min_th < red_max_th, got {out.red_min_th} "
                                  f"and {out.red_max_th}")
        return out


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


def _parse_aqm(value: object, key: str) -> str:
    if value not in AQMS:
        raise ParamError(key, f"expected one of {', '.join(map(repr, AQMS))}, got {value!r}")
    return str(value)


def _parse_threshold(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ParamError(key, f"expected a number of frames >= 0, got {value!r}")
    return float(value)


def _parse_weight(value: object, key: str) -> float:
    w = parse_probability(value, key)
    if w == 0:
        raise ParamError(key, f"expected a weight in (0, 1], got {value!r}")
    return w


def _parse_count(minimum: int) -> Callable[[object, str], int]:
    def parse(value: object, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ParamError(key, f"expected an integer >= {minimum}, got {value!r}")
        return value
    return parse


def _parse_positive_duration(value: object, key: str) -> float:
    d = parse_duration(value, key)
    if d <= 0:
        raise ParamError(key, f"expected a duration > 0, got {value!r}")
    return d


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
    "aqm": _parse_aqm,
    "ecn": _parse_bool,
    "red_min_th": _parse_threshold,
    "red_max_th": _parse_threshold,
    "red_max_p": _parse_weight,
    "red_w_q": _parse_weight,
    "red_gentle": _parse_bool,
    "codel_target": _parse_positive_duration,
    "codel_interval": _parse_positive_duration,
    "fq_quantum": _parse_count(0),
    "fq_flows": _parse_count(1),
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
# The parameters of the queue, which only a rate-limited direction has.
LinkParams.QUEUE_PARAMS = LINK_PARAMS[LINK_PARAMS.index("queue"):LINK_PARAMS.index("fq_flows") + 1]


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
        self.qstats = QueueStats()  # what the queue (with a rate) saw, across link.set
        # damaged frames -> the summary of the frame as sent (while tracing)
        self.corrupted: dict[bytes, str] = {}
        self.receiver: Receiver = Unconnected()  # the receiving node's driver, once wired
        self.rx_ifindex = 0
        self.tx_taps: list[FrameWriter] = []  # pcap writers seeing frames as the sender sends them
        self.rx_taps: list[FrameWriter] = []  # ... and as the receiver gets them
        self.extra: list[Callable[[Direction], Stage]] = []  # user middlewares, before the delay
        self._head: Stage | None = None
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
            tx.append(queue_stage(self, p, p.rate, self.rng("aqm"),
                                  old.get(RateLimit) or old.get(AqmQueue)))
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
        # the plain wire (gate, MTU check, a delay without jitter, the schedule, delivery: no
        # tap, tracer or impairment) is run by send itself, without a call per stage
        self._plain = [type(stage) for stage in chain] == [Gate, MtuCheck, Delay, Schedule,
                                                            Deliver] and not delay.jitter
        self._limit = p.mtu + ETH_HEADER
        self._delay = delay.delay
        self._complete = not _PARTIAL_SAFE.issuperset(map(type, chain))

    def send(self, frame: bytes) -> None:
        """A frame from the sending node, now."""
        self.send_one(frame, self.loop.time())

    def send_one(self, frame: bytes, t: float) -> None:
        """One frame from the sending node at ``t``, the loop's time (:meth:`send_all` of one,
        without its batch's loops: a switch's flood and a router's flush go frame by frame)."""
        if type(frame) not in _BYTES and not isinstance(frame, bytes):
            frame = bytes(frame)  # immutable in flight (a VerifiedFrame stays one)
        n = len(frame)
        c = self.counters
        c["tx.frames"] += 1
        c["tx.bytes"] += n
        if self._plain:  # Gate, MtuCheck, Delay then Schedule, inline
            if not self.up:
                self.drop("down", frame, t)
            elif n > self._limit:
                self.drop("mtu", frame, t)
            else:
                self._schedule.push(frame, t + self._delay)  # type: ignore[union-attr]
            return
        if self._complete:
            frame = complete_checksum(frame)
        self._head.push(frame, t)  # type: ignore[union-attr]  # built by rebuild()

    def send_all(self, out: Sequence[tuple[int, bytes]], t: float) -> None:
        """The frame of each ``(ifindex, frame)`` of ``out`` (a node's flush, its frames for
        this direction's port: the ifindex is that port's), sent by the node at ``t``, the
        loop's time, in order: :meth:`send_one` of each, and on the plain wire with the link up
        and every frame ready to go as it is (the common case), onto the schedule in one push."""
        if self._plain and self.up:
            limit = self._limit
            n = 0
            for _, frame in out:
                k = len(frame)
                if k > limit or type(frame) not in _BYTES:
                    break
                n += k
            else:
                c = self.counters
                c["tx.frames"] += len(out)
                c["tx.bytes"] += n
                self._schedule.push_all(out, t + self._delay)  # type: ignore[union-attr]
                return
        for _, frame in out:
            self.send_one(frame, t)

    def drop(self, reason: str, frame: bytes, t: float) -> None:
        self.counters["drop." + reason] += 1
        if self.tracer is not None:
            now = self.loop.time()
            details: dict[str, Any] = {"reason": reason, "dir": self.label, "len": len(frame)}
            if self.labeler is not None:
                details.update(src=self.src_name, dst=self.dst_name,
                               sent=self.take_sent(frame, now), label=self.labeler.label(frame),
                               summary=frame_summary(frame))
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

    def corrupted_copy(self, frame: bytes, damaged: bytes, t: float) -> bytes:
        """Counts ``damaged``, a copy of ``frame`` with flipped bits, which goes on in its place;
        while tracing it keeps the original's send time, and its delivery event carries
        ``corrupt``: the summary of the frame as it was sent (its ``tx`` event's)."""
        self.counters["corrupt"] += 1
        if self.tracer is not None:
            self.in_air.setdefault(damaged, deque()).append(self.take_sent(frame, t))
            self.corrupted[damaged] = frame_summary(frame)
        return damaged

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

    def queue_summary(self) -> dict[str, Any] | None:
        """The queue's figures for the scenario JSON summary (None without a ``rate``)."""
        p = self.params
        if p.rate is None:
            return None
        c = self.counters
        return {"aqm": p.aqm, "ecn": p.ecn, **self.qstats.summary(),
                "drops_overflow": c["drop.queue"], "drops_aqm": c["drop.aqm"],
                "marks_ce": c["mark.ce"]}

    def in_flight(self) -> int:
        return self._schedule.in_flight() if self._schedule else 0


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
            *, down: bool | None = None, **both: Any) -> None:
        """Change parameters now (``link.set(loss=0.2)``, ``link.set(forward={"rate": ...})``);
        ``down=True`` / ``False`` takes the link down or brings it up (:meth:`set_up`)."""
        for d, own in ((self.ab, forward), (self.ba, reverse)):
            if both or own:
                d.params = d.params.with_updates({**both, **(own or {})})
                d.rebuild()
        if down is not None:
            self.set_up(not down)

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
