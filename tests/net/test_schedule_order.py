"""A link direction's :class:`~stacklab.net.stages.Schedule` delivers frames in (due time, push
order), whatever mix of in-order pushes (its plain list) and earlier ones (its heap) it gets,
and counts what waits (``in_flight``) right through the switches between the two."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest

from stacklab.net.loop import VirtualTimeLoop
from stacklab.net.stages import Deliver, Schedule


class _Receiver:
    def __init__(self, loop: VirtualTimeLoop) -> None:
        self.loop = loop
        self.got: list[tuple[float, bytes]] = []
        self.holds = 0

    def deliver(self, ifindex: int, frame: bytes) -> None:
        self.got.append((self.loop.time(), frame))

    def hold(self) -> None:
        self.holds += 1

    def release(self, flush: bool = True) -> None:
        pass


class _Direction:
    def __init__(self, loop: VirtualTimeLoop) -> None:
        self.up = True
        self.loop = loop
        self.counters: Counter[str] = Counter()
        self.tracer = None
        self.receiver = _Receiver(loop)
        self.rx_ifindex = 0

    def drop(self, reason: str, frame: bytes, t: float) -> None:  # pragma: no cover - unused
        raise AssertionError(reason)


def _chain(loop: VirtualTimeLoop) -> tuple[Schedule, _Direction]:
    d = _Direction(loop)
    sched = Schedule(d)  # type: ignore[arg-type]
    sched.next = Deliver(d)  # type: ignore[arg-type]
    return sched, d


@pytest.mark.parametrize("seed", range(8))
def test_delivered_in_due_time_then_push_order(seed: int) -> None:
    rng = random.Random(seed)
    loop = VirtualTimeLoop()
    sched, d = _chain(loop)
    pushed: list[tuple[float, int, bytes]] = []

    def push(k: int) -> None:
        now = loop.time()
        # mostly in order (a wire), sometimes earlier than the last queued (a reorder), often
        # due at the same instant as others (a train)
        t = now + rng.choice((0.001, 0.001, 0.001, 0.0005, 0.002, 0.0))
        frame = k.to_bytes(4, "big")
        # numbered as pushed (the loop may run the pushes due together in any order)
        pushed.append((t, len(pushed), frame))
        sched.push(frame, t)
        # what waits: every frame pushed and not delivered yet
        assert sched.in_flight() == len(pushed) - len(d.receiver.got)

    at = 0.0
    for k in range(400):
        at += rng.choice((0.0, 0.0, 0.0001, 0.0003))
        loop.call_at(at, push, k)
    loop.run_until_complete(_sleep(loop, at + 1.0))
    loop.close()
    expected = [(t, f) for t, _, f in sorted(pushed)]
    assert [f for _, f in d.receiver.got] == [f for _, f in expected]
    assert all(abs(got - want) < 1e-9 for (got, _), (want, _) in zip(d.receiver.got, expected,
                                                                   strict=True))
    assert sched.in_flight() == 0
    assert d.counters["rx.frames"] == 400 and d.counters["rx.bytes"] == 1600


def test_in_flight_counts_both_queues() -> None:
    loop = VirtualTimeLoop()
    sched, d = _chain(loop)
    sched.push(b"a", 1.0)
    sched.push(b"b", 2.0)  # in order: the list
    assert sched.in_flight() == 2
    sched.push(b"c", 1.5)  # earlier than the last queued: the heap
    assert sched.in_flight() == 3
    loop.run_until_complete(_sleep(loop, 3.0))
    loop.close()
    assert [f for _, f in d.receiver.got] == [b"a", b"c", b"b"]
    assert sched.in_flight() == 0


def test_a_train_is_held_once() -> None:
    loop = VirtualTimeLoop()
    sched, d = _chain(loop)
    for k in range(5):
        sched.push(bytes([k]), 1.0)  # a train: one hold for all five
    sched.push(b"x", 2.0)  # alone: no hold
    loop.run_until_complete(_sleep(loop, 3.0))
    loop.close()
    assert [f for _, f in d.receiver.got] == [bytes([k]) for k in range(5)] + [b"x"]
    assert d.receiver.holds == 1


async def _sleep_coro(t: float) -> None:
    await asyncio.sleep(t)


def _sleep(loop: VirtualTimeLoop, until: float) -> Any:
    return _sleep_coro(until - loop.time())


@pytest.mark.parametrize("seed", range(4))
def test_push_all_is_push_of_each_frame(seed: int) -> None:
    """A flush's frames pushed at once (``push_all``, the same due time) are delivered as
    pushed one by one would be, onto the list or behind a heap alike."""
    got = []
    for batch in (False, True):
        rng = random.Random(seed)
        loop = VirtualTimeLoop()
        sched, d = _chain(loop)
        k = 0
        for _ in range(60):
            t = rng.choice((1.0, 1.0, 2.0, 0.5, 1.5))
            frames = [(0, (k + i).to_bytes(4, "big")) for i in range(rng.randint(2, 5))]
            k += len(frames)
            if batch:
                sched.push_all(frames, t)
            else:
                for _, f in frames:
                    sched.push(f, t)
        loop.run_until_complete(_sleep(loop, 3.0))
        loop.close()
        got.append(d.receiver.got)
    assert got[0] == got[1] and len(got[0]) > 120


def test_a_train_cut_by_the_link_going_down_counts_the_bytes_delivered() -> None:
    loop = VirtualTimeLoop()
    sched, d = _chain(loop)
    dropped: list[bytes] = []
    d.drop = lambda reason, frame, t: dropped.append(frame)  # type: ignore[method-assign]
    deliver = d.receiver.deliver

    def deliver_then_down(ifindex: int, frame: bytes) -> None:
        deliver(ifindex, frame)
        if len(d.receiver.got) == 2:
            d.up = False  # the application's reaction to the second frame: the link down
    d.receiver.deliver = deliver_then_down  # type: ignore[method-assign]
    for n in (10, 20, 30, 40):
        sched.push(bytes(n), 1.0)
    loop.run_until_complete(_sleep(loop, 2.0))
    loop.close()
    assert [len(f) for _, f in d.receiver.got] == [10, 20]
    assert [len(f) for f in dropped] == [30, 40]
    assert d.counters["rx.frames"] == 2 and d.counters["rx.bytes"] == 30
