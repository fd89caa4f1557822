"""Drives a sans-IO :class:`~stacklab.stack.node.Node` from an asyncio event loop.

The same driver serves the simulator (virtual-time loop, ``transmit`` hands frames to a link) and
the TAP device (real loop, ``transmit`` writes to the device). It is the only code that reads the
loop's clock for a node: every ``now`` the node sees comes from :meth:`NodeDriver.now`.

:class:`DrivenHost` is the other end of that relation: a host that knows its driver, which is
what the application API (streams, UDP endpoints, ping) needs besides the stack itself.

After every node call (a frame in, a timer, a kick) the driver runs the drain hooks that API
objects registered (``on_drain``): they pull the events the node's engines queued and hand them
to the application, whose reactions (a write, a read that opens the window) the hook runs
through the engine before the driver collects the frames to send. The engine never calls the
application (aioquic's ``_process_events`` after ``receive_datagram``).
"""

from __future__ import annotations

import asyncio
import contextvars
import random
from collections.abc import Callable, Hashable, Sized
from typing import Any

from stacklab.stack.host import Host
from stacklab.stack.node import Node
from stacklab.trace.events import Tracer

# The API host whose code runs now (None: no host's). The driver sets it around everything it
# runs for its node (frames in, timers, kicks), so the callbacks of a host's connections, and the
# tasks they create, run "on" that host whatever task caused the call; stacklab.api.spawn sets it
# for a spawned program and reads it to route the loop's network calls.
# the queues of a drain hook that gave none (on_drain): never empty, so it runs every time
_ALWAYS: tuple[Sized, ...] = ((None,),)

running_host: contextvars.ContextVar[DrivenHost | None] = contextvars.ContextVar(
    "stacklab_running_host", default=None)


class NodeDriver:
    def __init__(self, node: Node, loop: asyncio.AbstractEventLoop,
                 transmit: Callable[[int, bytes | bytearray], None],
                 transmit_all: Callable[[list[tuple[int, bytes | bytearray]]], None] | None = None
                 ) -> None:
        """``transmit(ifindex, frame)`` sends a frame; ``transmit_all(frames)``, when given, the
        ``(ifindex, frame)`` pairs of one flush in one call (a simulated network's)."""
        self.node = node
        self.loop = loop
        self.transmit = transmit
        self.transmit_all = transmit_all
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._kick_pending = False
        self._held = 0  # > 0 while a link delivers a batch of frames (hold/release)
        self._held_frames = False
        self._held_now = 0.0  # the clock of the batch being held
        # the clock of the node call running now (None: none): what now() answers meanwhile
        self._call_now: float | None = None
        self._held_token: contextvars.Token[DrivenHost | None] | None = None
        self._drain_keys: set[Hashable] = set()
        self._drain_hooks: list[tuple[Callable[[float], None], tuple[Sized, ...]]] = []
        self._drain_queues: tuple[Sized, ...] = ()  # every hook's queues, in one tuple
        self._draining = False
        self.powered = True  # False while the node is crashed: nothing in, out, or on a timer
        self.app_host: DrivenHost | None = None  # the node, when it has the application API
        self._done: asyncio.Future[None] | None = None  # done_future's
        node.wake = self.kick  # the Node contract: the node asks for a flush through wake()

    def now(self) -> float:
        """The loop's clock; during a node call (a frame in, a timer, a kick, a held batch) the
        time that call was given, so that what the application does from a drain hook (a
        write that sends at once) never runs earlier in the node's time than what the call
        itself does after it: on a real loop the clock moves while a call runs, and a segment
        sent with an older time than the one before carries an older TCP timestamp, which the
        peer drops (PAWS, RFC 7323 §5)."""
        t = self._call_now
        return self.loop.time() if t is None else t

    def done_future(self) -> asyncio.Future[None]:
        """A future of this driver's loop, done (result None): one for every StreamWriter of
        the node (api/streams.py; asyncio makes one per writer, 0.14 KiB each)."""
        fut = self._done
        if fut is None:
            fut = self._done = self.loop.create_future()
            fut.set_result(None)
        return fut

    def on_drain(self, key: Hashable, hook: Callable[[float], None],
                 queues: tuple[Sized, ...] = ()) -> None:
        """Run ``hook(now)`` after every node call (once per ``key``, e.g. a host's TCP layer).
        ``queues``: the containers the hook takes its work from (a TCP layer's events and the
        connections kicked): it runs only when one of them is not empty, so a frame that queued
        nothing (most ACKs a bulk sender gets) costs no call; none given: after every call."""
        if key not in self._drain_keys:
            self._drain_keys.add(key)
            queues = queues or _ALWAYS
            self._drain_hooks.append((hook, queues))
            self._drain_queues += queues

    def _drain(self, now: float) -> None:
        """Each drain hook whose queues hold something (:meth:`on_drain`), in order. The
        callers with a frame in ask first whether any queue does (``_drain_queues``)."""
        self._draining = True  # kicks from inside a hook: the flush that follows covers them
        try:
            for hook, queues in self._drain_hooks:
                for q in queues:
                    if q:
                        hook(now)
                        break
        finally:
            self._draining = False

    def receive(self, ifindex: int, frame: bytes | memoryview, csum_valid: bool = False,
                gso_size: int = 0) -> None:
        """A frame arrived on interface ``ifindex``: the node takes it and the drain hooks run;
        the flush is the caller's (a TAP device flushes once after a batch of reads).
        ``csum_valid``: the device verified its transport checksum; ``gso_size``: the frame
        aggregates segments of that size (``Node.receive_frame``)."""
        if not self.powered:
            self.node.counters["drop.crashed"] += 1
            return
        token = running_host.set(self.app_host)
        outer = self._call_now
        try:
            now = self._call_now = self.loop.time() if outer is None else outer
            if gso_size:
                self.node.receive_frame(ifindex, frame, now, csum_valid, gso_size)
            elif csum_valid:
                self.node.receive_frame(ifindex, frame, now, True)
            else:
                self.node.receive_frame(ifindex, frame, now)
            for q in self._drain_queues:  # (_drain when a hook has something to do)
                if q:
                    self._drain(now)
                    break
        finally:
            self._call_now = outer
            running_host.reset(token)

    def deliver(self, ifindex: int, frame: bytes) -> None:
        """A frame arrived from outside on interface ``ifindex``: :meth:`receive`, then a flush
        (at :meth:`release` while a batch is held)."""
        if self._held:
            # :meth:`receive` within a batch, whose clock and running host :meth:`hold` took
            # once for all its frames (the clock does not move in between)
            self._held_frames = True
            if not self.powered:
                self.node.counters["drop.crashed"] += 1
                return
            now = self._held_now
            self.node.receive_frame(ifindex, frame, now)
            for q in self._drain_queues:  # (_drain when a hook has something to do)
                if q:
                    self._drain(now)
                    break
            return
        self.receive(ifindex, frame)
        self.flush()

    # deliver, hold and release make the driver the receiver of a simulated link's direction
    # (stacklab.net.stages.Receiver, a structural type: this module does not import net/).

    def hold(self) -> None:
        """A batch of frames arrives at one instant (a simulated link's delivery): flush once
        at :meth:`release` instead of after each frame. What the node sends keeps its order
        and its time (the clock does not move in between); its timer is re-armed once."""
        if not self._held:
            self._held_now = self.loop.time()
            self._held_token = running_host.set(self.app_host)
        self._held += 1

    def release(self, flush: bool = True) -> None:
        """The end of a batch: flush what the frames caused, unless ``flush`` is False (the
        batch was cut short by an exception)."""
        self._held -= 1
        if self._held:
            return
        if self._held_token is not None:
            running_host.reset(self._held_token)
            self._held_token = None
        if self._held_frames:
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
        token = running_host.set(self.app_host)
        outer = self._call_now
        try:
            if self._drain_hooks:
                self._call_now = self.loop.time() if outer is None else outer
                self._drain(self._call_now)
            self.flush()
        finally:
            self._call_now = outer
            running_host.reset(token)

    def power_off(self) -> None:
        """A crash: the node takes no frame, sends none, runs no timer, and every drain hook
        (the API objects of its old life) is forgotten. :meth:`power_on` boots it again."""
        self.powered = False
        self._drain_keys.clear()
        self._drain_hooks.clear()
        self._drain_queues = ()
        self._arm(None)

    def power_on(self) -> None:
        self.powered = True
        self.flush()

    def flush(self) -> None:
        if not self.powered:
            return
        node = self.node
        for _ in range(64):  # a transmit may not re-enter, but bound the loop anyway
            out = node.frames_to_send()
            if not out:
                break
            if self.transmit_all is not None:
                self.transmit_all(out)
                continue
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
        if not self.powered:
            return
        token = running_host.set(self.app_host)
        outer = self._call_now
        try:
            now = self._call_now = self.loop.time() if outer is None else outer
            self.node.handle_timer(now)
            if self._drain_hooks:
                self._drain(now)
            self.flush()
        finally:
            self._call_now = outer
            running_host.reset(token)


class DrivenHost(Host):
    """A sans-IO :class:`~stacklab.stack.host.Host` plus the driver that runs it.

    The application API takes its clock and its loop from here (:meth:`now`, :attr:`loop`),
    never from the sans-IO core. Whoever drives the host (``Network.add_node``,
    ``RealtimeStack.attach``) hands it the driver with :meth:`attach`.
    """

    def __init__(self, name: str, *, rng: random.Random | None = None,
                 tracer: Tracer | None = None) -> None:
        # (not super(): compiled by mypyc, that binds Host's __init__ and skips
        # stack.router.Router's in api.host.Router's MRO; super(Cls, other) looks it up)
        me = self
        super(DrivenHost, me).__init__(name, rng=rng, tracer=tracer)
        self.driver: NodeDriver | None = None
        # the tasks running on this host (api/spawn.py), oldest first: a crash cancels them
        self.programs: dict[asyncio.Task[Any], None] = {}

    def attach(self, driver: NodeDriver) -> None:
        if driver.node is not self:
            raise ValueError(f"that driver runs {driver.node.name!r}, not {self.name!r}")
        self.driver = driver
        driver.app_host = self

    def detach(self) -> None:
        self.driver = None

    def driving(self) -> NodeDriver:
        """The driver running this host (RuntimeError when none is attached)."""
        driver = self.driver
        if driver is None:
            raise RuntimeError(f"host {self.name} is not driven: add it to a Network or run "
                               "it with a RealtimeStack")
        return driver

    def now(self) -> float:
        """The driver's time: the ``now`` the stack is driven with."""
        return self.driving().now()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the host runs on (futures, ``call_soon``)."""
        return self.driving().loop

    async def lookup(self, name: str, family: int | None = None) -> list[str]:
        """``name``'s addresses (text), the one name resolution of this host's programs
        (``loop.getaddrinfo``, :mod:`stacklab.api.spawn`, ``run_blocking``'s socket module,
        ``resolve_name``): :meth:`resolve_all` (literals, the network's names, like
        /etc/hosts); the API host adds DNS (:mod:`stacklab.api.dns`) when it knows servers.
        Raises ``socket.gaierror``."""
        return self.resolve_all(name, family)
