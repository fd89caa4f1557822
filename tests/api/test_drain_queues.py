"""A drain hook registered with its queues (``NodeDriver.on_drain(..., queues)``, a TCP
layer's events and kicked connections) runs after a node call only when one of them holds
something; a hook without queues runs after every call; hooks keep their order."""

from __future__ import annotations

import asyncio
from collections import deque

from stacklab.api.driver import NodeDriver
from stacklab.stack.host import Host


def test_a_hook_with_queues_runs_only_when_one_holds_something() -> None:
    loop = asyncio.new_event_loop()
    try:
        driver = NodeDriver(Host("h"), loop, lambda _i, _f: None)
        events: deque[int] = deque()
        kicked: dict[int, None] = {}
        seen: list[str] = []

        def gated(now: float) -> None:
            seen.append(f"gated {len(events)} {len(kicked)}")
            events.clear()
            kicked.clear()

        driver.on_drain("always", lambda now: seen.append("always"))
        driver.on_drain("gated", gated, (events, kicked))
        driver.on_drain("gated", lambda now: seen.append("twice"))  # (once per key)
        for i in range(4):
            if i == 1:
                events.append(i)
            elif i == 3:
                kicked[i] = None
            driver.receive(0, bytes(60))  # a frame in (no interface: dropped)
            driver.hold()
            driver.deliver(0, bytes(60))  # within a held batch
            driver.release()
        # per step: the frame in, then the one in the batch (the queue emptied by the first)
        assert seen == ["always", "always",
                        "always", "gated 1 0", "always",
                        "always", "always",
                        "always", "gated 0 1", "always"]
    finally:
        loop.close()


def test_only_gated_hooks_with_nothing_queued_means_no_drain() -> None:
    loop = asyncio.new_event_loop()
    try:
        driver = NodeDriver(Host("h"), loop, lambda _i, _f: None)
        events: deque[int] = deque()
        seen: list[float] = []
        driver.on_drain("gated", seen.append, (events,))
        driver.receive(0, bytes(60))
        assert seen == []
        events.append(1)
        driver.receive(0, bytes(60))
        assert len(seen) == 1
        driver.power_off()  # the hooks of the old life forgotten, their queues too
        driver.power_on()
        driver.receive(0, bytes(60))
        assert len(seen) == 1
    finally:
        loop.close()
