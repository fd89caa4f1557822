"""Drives a sans-IO :class:`~stacklab.stack.node.Node` from an asyncio event loop.

The same driver serves the simulator (virtual-time loop, ``transmit`` hands frames to a link) and
the TAP device (real loop, ``transmit`` writes to the device).

After every node call (a frame in, a timer, a kick) the driver runs the drain hooks that API
objects registered (``on_drain``): they pull the events the node's engines queued and hand them
to the application, whose reactions (a write, a read that opens the window) the hook runs
through the engine before the driver collects the frames to send. The engine never calls the
application (aioquic's ``_process_events`` after ``receive_datagram``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable

from stacklab.stack.node import Node


class NodeDriver:
    def __init__(self, node: Node, loop: asyncio.AbstractEventLoop,
                 transmit: Callable[[int, bytes], None]) -> None:
        self.node = node
        self.loop = loop
        self.transmit = transmit
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._kick_pending = False
        self._held = 0  # > 0 while a link delivers a batch of frames (hold/release)
        self._held_frames = False
        self._drain_keys: set[Hashable] = set()
        self._drain_hooks: list[Callable[[float], None]] = []
        self._draining = False
        node.wake = self.kick
        node.driver = self  # type: ignore[attr-defined]  # lets API objects find the loop

    def now(self) -> float:
        return self.loop.time()

    def on_drain(self, key: Hashable, hook: Callable[[float], None]) -> None:
        """Run ``hook(now)`` after every node call (once per ``key``, e.g. a host's TCP layer)."""
        if key not in self._drain_keys:
            self._drain_keys.add(key)
            self._drain_hooks.append(hook)

    def _drain(self, now: float) -> None:
        self._draining = True  # kicks from inside a hook: the flush that follows covers them
        try:
            for hook in self._drain_hooks:
                hook(now)
        finally:
            self._draining = False

    def deliver(self, ifindex: int, frame: bytes) -> None:
        """A frame arrived from outside on interface ``ifindex``."""
        now = self.loop.time()
        self.node.receive_frame(ifindex, frame, now)
        if self._drain_hooks:
            self._drain(now)
        if self._held:
            self._held_frames = True
        else:
            self.flush()

    def hold(self) -> None:
        """A batch of frames arrives at one instant (a simulated link's delivery): flush once
        at :meth:`release` instead of after each frame. What the node sends keeps its order
        and its time (the clock does not move in between); its timer is re-armed once."""
        self._held += 1

    def release(self, flush: bool = True) -> None:
        self._held -= 1
        if not self._held and self._held_frames:
            self._held_frames = False
            if flush:
                self.flush()

    def kick(self) -> None:
        """Something changed outside a driver call: drain and flush on the next loop iteration."""
        if not self._kick_pending and not self._draining:
            self._kick_pending = True
            self.loop.call_soon(self._kicked)

    def _kicked(self) -> None:
        self._kick_pending = False
        if self._drain_hooks:
            self._drain(self.loop.time())
        self.flush()

    def flush(self) -> None:
        node = self.node
        for _ in range(64):  # a transmit may not re-enter, but bound the loop anyway
            out = node.frames_to_send()
            if not out:
                break
            for ifindex, frame in out:
                self.transmit(ifindex, frame)
        self._arm(node.get_timer())

    def _arm(self, deadline: float | None) -> None:
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self.loop.time()
        self.node.handle_timer(now)
        if self._drain_hooks:
            self._drain(now)
        self.flush()
