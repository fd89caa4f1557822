"""Queue disciplines of a rate-limited link direction: drop-tail, RED, CoDel and FQ-CoDel.

The queue is the one stage of a direction between the ICMP black hole and the loss stage
(:func:`queue_stage` builds it from the :class:`~stacklab.net.link.LinkParams`). Drop-tail is
:class:`~stacklab.net.stages.RateLimit`, whose queue is computed, not simulated (today's exact
behaviour, and the fastest). The active queue managers (RFC 7567) need to see the queue when a
packet leaves it (CoDel judges the sojourn time at dequeue), so :class:`AqmQueue` keeps the
packets and a transmitter that dequeues one each time the wire is free, on the event loop.

A discipline signals congestion on a packet through :meth:`Discipline.signal`: with ``ecn`` an
ECN-capable packet (ECT(0)/ECT(1), RFC 3168 §5) gets CE and goes on, any other packet is dropped
(``drop.aqm``); marks are counted ``mark.ce``. A full queue (``queue`` frames) drops
``drop.queue``. Statistics (length at arrival, sojourn time) go to the direction's
:class:`~stacklab.net.stages.QueueStats`.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
from collections import deque
from typing import Protocol

from stacklab.wire.checksum import ipv4_header_store
from stacklab.wire.ethernet import ETH_P_IPV4, ETH_P_IPV6
from stacklab.wire.frame import complete_checksum
from stacklab.wire.proto import PROTO_SCTP, PROTO_TCP, PROTO_UDP

from .stages import ETH_HEADER, QueueStats, RateLimit, Stage, StageContext


class LinkParams(Protocol):
    """What a queue reads of :class:`stacklab.net.link.LinkParams` (a protocol: link.py imports
    this module)."""

    mtu: int
    queue: int
    aqm: str
    ecn: bool
    red_min_th: float
    red_max_th: float
    red_max_p: float
    red_w_q: float
    red_gentle: bool
    codel_target: float
    codel_interval: float
    fq_quantum: int
    fq_flows: int

__all__ = ["AQMS", "AqmQueue", "CoDel", "Discipline", "FqCoDel", "Packet", "Red", "flow_key",
           "mark_ce", "queue_stage"]

AQMS = ("droptail", "red", "codel", "fq_codel")
_PORTS = frozenset((PROTO_TCP, PROTO_UDP, PROTO_SCTP))


def mark_ce(frame: bytes) -> bytes | None:
    """The frame with ECN Congestion Experienced set (RFC 3168 §5), the IPv4 header checksum
    recomputed; the frame itself if it already carries CE; None if it is not ECN-capable
    (Not-ECT, or not IP) and must be dropped instead."""
    if len(frame) < ETH_HEADER + 20:
        return None
    et = frame[12] << 8 | frame[13]
    if et == ETH_P_IPV4:
        ecn = frame[ETH_HEADER + 1] & 3
        if ecn == 0:
            return None
        if ecn == 3:
            return frame
        ihl = (frame[ETH_HEADER] & 0x0F) * 4
        if ihl < 20 or len(frame) < ETH_HEADER + ihl:
            return None  # malformed: left to the receiver's checks, dropped here
        buf = bytearray(complete_checksum(frame))  # rewritten: real checksums first
        header = bytearray(buf[ETH_HEADER:ETH_HEADER + ihl])
        header[1] |= 3
        header[10:12] = b"\0\0"
        ipv4_header_store(header)
        buf[ETH_HEADER:ETH_HEADER + ihl] = header
        return bytes(buf)
    if et == ETH_P_IPV6 and len(frame) >= ETH_HEADER + 40:
        ecn = frame[ETH_HEADER + 1] >> 4 & 3  # the low 2 bits of the Traffic Class
        if ecn == 0:
            return None
        if ecn == 3:
            return frame
        buf = bytearray(frame)
        buf[ETH_HEADER + 1] |= 0x30
        return bytes(buf)
    return None


def flow_key(frame: bytes) -> bytes:
    """What identifies the frame's flow (RFC 8290 §4.1.1: the 5-tuple): addresses, protocol and
    ports for IP (ports only for TCP/UDP/SCTP and not in fragments, so all the pieces of a
    datagram share a queue, as with Linux's flow dissector), else the MAC header."""
    n = len(frame)
    et = frame[12] << 8 | frame[13] if n >= 14 else 0
    ip = ETH_HEADER
    if et == ETH_P_IPV4 and n >= ip + 20:
        proto = frame[ip + 9]
        l4 = ip + (frame[ip] & 0x0F) * 4
        key = bytes((proto,)) + frame[ip + 12:ip + 20]
        if proto in _PORTS and not (frame[ip + 6] & 0x3F or frame[ip + 7]):  # MF, offset
            key += frame[l4:l4 + 4]
        return key
    if et == ETH_P_IPV6 and n >= ip + 40:
        proto = frame[ip + 6]
        key = bytes((proto,)) + frame[ip + 8:ip + 40]
        if proto in _PORTS:
            key += frame[ip + 40:ip + 44]
        return key
    return frame[:14]


class Packet:
    """A frame in the queue and when it arrived."""

    __slots__ = ("frame", "t")

    def __init__(self, frame: bytes, t: float) -> None:
        self.frame = frame
        self.t = t


class Discipline:
    """A queue discipline: ``enqueue`` at arrival (False: the packet was dropped), ``dequeue``
    when the wire is free, ``len`` the packets waiting, ``backlog`` their bytes."""

    def __init__(self, direction: StageContext, ecn: bool) -> None:
        self.dir = direction
        self.ecn = ecn
        self.backlog = 0

    def signal(self, pkt: Packet, t: float) -> bool:
        """Congestion on ``pkt``: CE-marked if ECN is on and the packet is ECT (True: it stays),
        else dropped (False)."""
        if self.ecn:
            marked = mark_ce(pkt.frame)
            if marked is not None:
                pkt.frame = marked
                self.dir.counters["mark.ce"] += 1
                return True
        self.dir.drop("aqm", pkt.frame, t)
        return False

    def enqueue(self, pkt: Packet, t: float) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def overflow(self, pkt: Packet, t: float) -> bool:
        """The queue is full when ``pkt`` arrives: drop-tail drops it (False)."""
        self.dir.drop("queue", pkt.frame, t)
        return False

    def dequeue(self, now: float) -> Packet | None:  # pragma: no cover - interface
        raise NotImplementedError

    def __len__(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError


class Red(Discipline):
    """Random Early Detection (Floyd & Jacobson 1993, §4 and fig. 2), thresholds in packets.

    On each arrival the average queue ``avg`` follows the queue with weight ``w_q`` (after an idle
    period it decays as if ``m`` small packets had arrived to an empty queue). Between ``min_th``
    and ``max_th`` the packet is marked with ``pa = pb / (1 - count * pb)`` where
    ``pb = max_p * (avg - min_th) / (max_th - min_th)`` and ``count`` the packets since the last
    mark (so marks are spread out evenly); above ``max_th`` every packet is marked, or with
    ``gentle`` (Floyd 2000) ``pb`` rises from ``max_p`` to 1 up to ``2 * max_th``.
    """

    def __init__(self, direction: StageContext, ecn: bool, p: LinkParams, rng: random.Random,
                 seconds_per_byte: float) -> None:
        super().__init__(direction, ecn)
        self.min_th = p.red_min_th
        self.max_th = p.red_max_th
        self.max_p = p.red_max_p
        self.w_q = p.red_w_q
        self.gentle = p.red_gentle
        self.rand = rng.random
        self.s = (p.mtu + ETH_HEADER) * seconds_per_byte  # a typical transmission time
        self.avg = 0.0
        self.count = -1
        self.q_time: float | None = 0.0  # when the queue went idle (None: it is not idle)
        self.q: deque[Packet] = deque()

    def __len__(self) -> int:
        return len(self.q)

    def enqueue(self, pkt: Packet, t: float) -> bool:
        q = len(self.q)
        if self.q_time is None:
            self.avg += self.w_q * (q - self.avg)
        else:
            m = (t - self.q_time) / self.s
            self.avg *= (1.0 - self.w_q) ** m
            self.q_time = None
        avg = self.avg
        if avg < self.min_th:
            self.count = -1
        else:
            self.count += 1
            if avg < self.max_th:
                pb = self.max_p * (avg - self.min_th) / (self.max_th - self.min_th)
            elif self.gentle and avg < 2 * self.max_th:
                pb = self.max_p + (1.0 - self.max_p) * (avg - self.max_th) / self.max_th
            else:
                pb = 1.0
            pa = pb / (1.0 - self.count * pb) if self.count * pb < 1.0 else 1.0
            if pb >= 1.0 or self.rand() < pa:
                self.count = 0
                if not self.signal(pkt, t):
                    return False
        self.q.append(pkt)
        self.backlog += len(pkt.frame)
        return True

    def dequeue(self, now: float) -> Packet | None:
        if not self.q:
            self.q_time = now  # the idle period starts
            return None
        pkt = self.q.popleft()
        self.backlog -= len(pkt.frame)
        return pkt


class CoDelVars:
    """The state of one CoDel instance (RFC 8289 §5: ``first_above_time``, ``drop_next``,
    ``count``, ``lastcount``, ``dropping``), over one FIFO of packets."""

    __slots__ = ("q", "first_above_time", "drop_next", "count", "lastcount", "dropping")

    def __init__(self) -> None:
        self.q: deque[Packet] = deque()
        self.first_above_time = 0.0
        self.drop_next = 0.0
        self.count = 0
        self.lastcount = 0
        self.dropping = False


class CoDel(Discipline):
    """Controlled Delay (RFC 8289): when the sojourn time has stayed above ``target`` for an
    ``interval``, drop (or mark) at dequeue, the next drop ``interval / sqrt(count)`` later
    (the control law, §4.3), until the sojourn time goes below ``target`` again."""

    def __init__(self, direction: StageContext, ecn: bool, p: LinkParams) -> None:
        super().__init__(direction, ecn)
        self.target = p.codel_target
        self.interval = p.codel_interval
        self.maxpacket = p.mtu + ETH_HEADER
        self.vars = CoDelVars()

    def __len__(self) -> int:
        return len(self.vars.q)

    def enqueue(self, pkt: Packet, t: float) -> bool:
        self.vars.q.append(pkt)
        self.backlog += len(pkt.frame)
        return True

    def dequeue(self, now: float) -> Packet | None:
        return self.codel_dequeue(self.vars, now)

    def control_law(self, t: float, count: int) -> float:
        return t + self.interval / math.sqrt(count)

    def _do_dequeue(self, v: CoDelVars, now: float) -> tuple[Packet | None, bool]:
        """RFC 8289 §5.5 ``dodequeue``: the head packet, and whether its sojourn time has been
        above target for at least an interval (``ok_to_drop``)."""
        if not v.q:
            v.first_above_time = 0.0
            return None, False
        pkt = v.q.popleft()
        self.backlog -= len(pkt.frame)
        if now - pkt.t < self.target or self.backlog <= self.maxpacket:
            v.first_above_time = 0.0  # went below target (or too little queued to matter)
            return pkt, False
        if v.first_above_time == 0.0:
            v.first_above_time = now + self.interval
            return pkt, False
        return pkt, now >= v.first_above_time

    def codel_dequeue(self, v: CoDelVars, now: float) -> Packet | None:
        """RFC 8289 §5.6 ``dequeue``, as Linux's ``codel_dequeue``: an ECT packet to be dropped
        is CE-marked and sent instead (which ends this round of drops)."""
        pkt, ok_to_drop = self._do_dequeue(v, now)
        if pkt is None:
            v.dropping = False
            return None
        if v.dropping:
            if not ok_to_drop:
                v.dropping = False  # sojourn time below target: leave the dropping state
            while v.dropping and now >= v.drop_next:
                v.count += 1
                if self.signal(pkt, now):
                    v.drop_next = self.control_law(v.drop_next, v.count)
                    return pkt
                pkt, ok_to_drop = self._do_dequeue(v, now)
                if pkt is None:
                    v.dropping = False
                    return None
                if not ok_to_drop:
                    v.dropping = False
                else:
                    v.drop_next = self.control_law(v.drop_next, v.count)
        elif ok_to_drop:
            if not self.signal(pkt, now):
                pkt, _ = self._do_dequeue(v, now)
            v.dropping = True
            # Start near the drop rate that controlled the queue last time, if that was
            # recent (§5.6: within 16 intervals).
            delta = v.count - v.lastcount
            v.count = delta if delta > 1 and now - v.drop_next < 16 * self.interval else 1
            v.drop_next = self.control_law(now, v.count)
            v.lastcount = v.count
        return pkt


class Flow(CoDelVars):
    """An FQ-CoDel flow queue (RFC 8290 §4): a CoDel instance and its DRR deficit."""

    __slots__ = ("deficit", "listed", "nbytes")

    def __init__(self) -> None:
        super().__init__()
        self.deficit = 0
        self.nbytes = 0
        self.listed = False  # in the new or the old list


class FqCoDel(CoDel):
    """FlowQueue-CoDel (RFC 8290): packets hashed by 5-tuple into ``flows`` queues (the hash is
    keyed by the network seed: deterministic, and different per run seed as Linux's
    perturbation), served by deficit round robin with ``quantum`` bytes, new flows (those that
    were empty) before old ones (§4.2), each queue under its own CoDel (§4.1). A full queue drops
    from the head of the flow with the most bytes queued (§4.1.3)."""

    def __init__(self, direction: StageContext, ecn: bool, p: LinkParams, key: bytes) -> None:
        super().__init__(direction, ecn, p)
        self.quantum = p.fq_quantum or p.mtu + ETH_HEADER
        self.flows = [Flow() for _ in range(p.fq_flows)]
        self.key = key
        self.new_flows: deque[Flow] = deque()
        self.old_flows: deque[Flow] = deque()
        self.packets = 0

    def __len__(self) -> int:
        return self.packets

    def classify(self, frame: bytes) -> int:
        digest = hashlib.blake2b(flow_key(frame), digest_size=8, key=self.key).digest()
        return int.from_bytes(digest, "big") % len(self.flows)

    def enqueue(self, pkt: Packet, t: float) -> bool:
        flow = self.flows[self.classify(pkt.frame)]
        flow.q.append(pkt)
        flow.nbytes += len(pkt.frame)
        self.backlog += len(pkt.frame)
        self.packets += 1
        if not flow.listed:
            flow.listed = True
            flow.deficit = self.quantum
            self.new_flows.append(flow)
        return True

    def overflow(self, pkt: Packet, t: float) -> bool:
        """§4.1.3: the packet joins its queue, then the head packet of the flow with the most
        bytes queued is dropped to make room."""
        self.enqueue(pkt, t)
        fat = max(self.flows, key=lambda f: f.nbytes)
        head = fat.q.popleft()
        fat.nbytes -= len(head.frame)
        self.backlog -= len(head.frame)
        self.packets -= 1
        self.dir.drop("queue", head.frame, t)
        return True

    def _do_dequeue(self, v: CoDelVars, now: float) -> tuple[Packet | None, bool]:
        out = super()._do_dequeue(v, now)
        pkt = out[0]
        if pkt is not None:
            self.packets -= 1
            v.nbytes -= len(pkt.frame)  # type: ignore[attr-defined]  # v is a Flow here
        return out

    def dequeue(self, now: float) -> Packet | None:
        while True:
            if self.new_flows:
                lst = self.new_flows
            elif self.old_flows:
                lst = self.old_flows
            else:
                return None
            flow = lst[0]
            if flow.deficit <= 0:
                flow.deficit += self.quantum
                lst.popleft()
                self.old_flows.append(flow)
                continue
            pkt = self.codel_dequeue(flow, now)
            if pkt is None:
                lst.popleft()
                if lst is self.new_flows and self.old_flows:
                    self.old_flows.append(flow)  # §4.2: avoids starving old flows
                else:
                    flow.listed = False
                continue
            flow.deficit -= len(pkt.frame)
            return pkt


class AqmQueue(Stage):
    """Serialization at ``rate`` bits/s behind a discipline's queue, simulated: one packet is on
    the wire at a time, the next dequeued when its last bit is sent (a loop timer)."""

    __slots__ = ("disc", "config", "seconds_per_byte", "limit", "stats", "busy", "loop")

    def __init__(self, direction: StageContext, disc: Discipline, config: tuple[object, ...],
                 rate: float, limit: int, stats: QueueStats) -> None:
        super().__init__(direction)
        self.disc = disc
        self.config = config  # the parameters disc was built with
        self.seconds_per_byte = 8.0 / rate
        self.limit = limit
        self.stats = stats
        self.busy = False
        self.loop: asyncio.AbstractEventLoop = direction.loop

    def push(self, frame: bytes, t: float) -> None:
        disc = self.disc
        n = len(disc) + self.busy  # waiting + being sent, as drop-tail counts
        self.stats.arrival(n)
        pkt = Packet(frame, t)
        kept = disc.overflow(pkt, t) if n >= self.limit else disc.enqueue(pkt, t)
        if kept and not self.busy:
            self._transmit(t)

    def _transmit(self, now: float) -> None:
        pkt = self.disc.dequeue(now)
        if pkt is None:
            self.busy = False
            return
        self.busy = True
        self.stats.departure(now - pkt.t)
        finish = now + len(pkt.frame) * self.seconds_per_byte
        self.next.push(pkt.frame, finish)
        self.loop.call_at(finish, self._transmit, finish)


def queue_stage(direction: StageContext, p: LinkParams, rate: float, rng: random.Random,
                old: Stage | None) -> Stage:
    """The queue stage of a direction with a ``rate``: ``p.aqm``'s discipline, randomness (RED's
    draws, FQ-CoDel's hash key) from ``rng``. After ``link.set`` the queued packets and the
    discipline's state carry over when its parameters did not change (the rate and the limit
    may); otherwise the new queue starts empty and the old one drains on its own."""
    stats = direction.qstats
    if p.aqm == "droptail":
        limiter = RateLimit(direction, rate, p.queue, stats)
        if isinstance(old, RateLimit):
            limiter._done, limiter._busy_until = old._done, old._busy_until
        return limiter
    config = (p.aqm, p.ecn, p.mtu, *(getattr(p, k) for k in _AQM_KEYS[p.aqm]))
    if isinstance(old, AqmQueue) and old.config == config:
        old.seconds_per_byte = 8.0 / rate
        old.limit = p.queue
        return old
    disc: Discipline
    if p.aqm == "red":
        disc = Red(direction, p.ecn, p, rng, 8.0 / rate)
    elif p.aqm == "codel":
        disc = CoDel(direction, p.ecn, p)
    else:
        disc = FqCoDel(direction, p.ecn, p, rng.getrandbits(128).to_bytes(16, "big"))
    return AqmQueue(direction, disc, config, rate, p.queue, stats)


_AQM_KEYS = {
    "red": ("red_min_th", "red_max_th", "red_max_p", "red_w_q", "red_gentle"),
    "codel": ("codel_target", "codel_interval"),
    "fq_codel": ("codel_target", "codel_interval", "fq_quantum", "fq_flows"),
}
