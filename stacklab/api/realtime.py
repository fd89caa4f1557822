"""Run a sans-IO node (Host or Router) on a real asyncio loop, its ports wired to TAP devices.

This is the real-world twin of the simulator: the very same node object, driven by
:class:`~stacklab.api.driver.NodeDriver` with ``loop.time()`` (a monotonic clock) as ``now`` and
frames coming from and going to :class:`~stacklab.device.tap.TapDevice` file descriptors.

Two ways to run it:

* in the main thread (the CLI): ``RealtimeStack(node, devices).run(main_coro)`` runs the loop until
  ``main_coro`` finishes or SIGINT/SIGTERM arrives, then shuts down cleanly;
* in a background thread (tests, the blocking socket facade): ``stack.start()`` returns once the
  loop is running; ``stack.call(fn)`` / ``stack.submit(coro)`` run code on the loop from any
  thread and wait for the result; ``stack.stop()`` ends it. Also a context manager.

Everything that touches the node happens on the loop thread: the node is not thread-safe.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from stacklab.api.driver import DrivenHost, NodeDriver
from stacklab.device.tap import TapDevice
from stacklab.stack.node import GsoFrame, Node

log = logging.getLogger("stacklab.realtime")

T = TypeVar("T")

# capture(ifindex, direction "rx"/"tx", wall-clock seconds, frame): for pcap writers.
Capture = Callable[[int, str, float, bytes], None]


def current_cpu() -> int:
    """The CPU the calling thread runs on now (``processor``, field 39 of
    /proc/thread-self/stat)."""
    with open("/proc/thread-self/stat", "rb") as fp:
        stat = fp.read()
    return int(stat[stat.rindex(b")") + 2:].split()[36])  # (fields from the 3rd on)


def _pin_to_current_cpu() -> None:
    """Pin the calling thread to the CPU it is on (``sched_setaffinity`` of the thread: pid 0 is
    the caller's thread, not the process). The background loop thread does this at its start:
    a TAP writer that migrates between CPUs reorders its own frames — each write() is queued
    to the CPU it ran on (the TAP device's per-CPU backlog), and a frame written on the new CPU
    can overtake the last ones written on the old, by ~0.5 ms — which a Linux receiver reports
    as reordering, and through a lossy path (bench/lossy_linux.py) that cost 60-440 spurious
    retransmissions in half the runs. Where the thread may run on one CPU only already, or the
    platform has no affinity, nothing changes."""
    getaff = getattr(os, "sched_getaffinity", None)
    setaff = getattr(os, "sched_setaffinity", None)
    if getaff is None or setaff is None:
        return
    try:
        if len(getaff(0)) > 1:
            setaff(0, {current_cpu()})
    except (OSError, ValueError, IndexError):  # (no /proc, a CPU set that refuses it)
        log.debug("the loop thread stays unpinned", exc_info=True)


class RealtimeStack:
    def __init__(self, node: Node, devices: Sequence[TapDevice], *,
                 capture: Capture | None = None) -> None:
        if len(devices) != len(node.ports):
            raise ValueError(f"{node.name} has {len(node.ports)} ports but {len(devices)} "
                             "devices were given (one device per port, in port order)")
        self.node = node
        self.devices = list(devices)
        self.capture = capture
        self.loop: asyncio.AbstractEventLoop | None = None
        self.driver: NodeDriver | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._errors = 0

    # -- wiring (on the loop thread) -----------------------------------------------------------
    def attach(self, loop: asyncio.AbstractEventLoop) -> NodeDriver:
        """Create the driver and register the devices' readers on ``loop``."""
        self.loop = loop
        driver = NodeDriver(self.node, loop, self._transmit)
        self.driver = driver
        if isinstance(self.node, DrivenHost):
            self.node.attach(driver)
        for ifindex, dev in enumerate(self.devices):
            dev.attach(loop, self._make_rx(ifindex), driver.flush)
            # TSO: the device cuts TCP super-frames itself (stack/tcp/gso.py)
            self.node.ports[ifindex].gso_max = getattr(dev, "gso_max", 0)
        driver.flush()  # arm the node's first timer, send anything queued at set-up
        return driver

    def detach(self) -> None:
        for dev in self.devices:
            dev.detach()
        for port in self.node.ports:
            port.gso_max = 0
        drv = self.driver
        if drv is not None:
            drv._arm(None)  # cancel the pending timer
        self.node.wake = None
        if isinstance(self.node, DrivenHost):
            self.node.detach()

    def _make_rx(self, ifindex: int) -> Callable[[bytes | memoryview, bool, int], None]:
        node = self.node
        driver = self.driver
        assert driver is not None

        def rx(frame: bytes | memoryview, csum_valid: bool = False, gso_size: int = 0) -> None:
            if self.capture is not None:
                self.capture(ifindex, "rx", time.time(), bytes(frame))
            try:
                # the device flushes after its batch of reads
                driver.receive(ifindex, frame, csum_valid, gso_size)
            except Exception:  # a stack bug must not kill the device reader
                node.counters["drop.driver.exception"] += 1
                self._errors += 1
                if self._errors <= 10:
                    log.exception("%s: exception while receiving a frame on port %d",
                                  node.name, ifindex)
        return rx

    def _transmit(self, ifindex: int, frame: bytes | bytearray) -> None:
        if type(frame) is GsoFrame:  # a TSO packet: the device cuts it (Port.gso_max)
            if self.capture is not None:
                self.capture(ifindex, "tx", time.time(), bytes(frame))
            self.devices[ifindex].send(frame, frame.gso_size)
            return
        frame = bytes(frame)  # the node's frames are mostly bytes already (then no copy)
        if self.capture is not None:
            self.capture(ifindex, "tx", time.time(), frame)
        self.devices[ifindex].send(frame)

    # -- running in the main thread ------------------------------------------------------------
    def run(self, main: Callable[[], Awaitable[Any]] | None = None,
            *, signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> None:
        """Run until ``main()`` returns (if given) or one of ``signals`` arrives."""
        asyncio.run(self._run_main(main, signals))

    async def _run_main(self, main: Callable[[], Awaitable[Any]] | None,
                        signals: Sequence[int]) -> None:
        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        for sig in signals:
            loop.add_signal_handler(sig, self._stopped.set)
        self.attach(loop)
        waiters = [asyncio.ensure_future(self._stopped.wait())]
        if main is not None:
            waiters.append(asyncio.ensure_future(main()))
        try:
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                if not fut.cancelled() and (exc := fut.exception()) is not None:
                    raise exc
        finally:
            for fut in waiters:
                fut.cancel()
            for sig in signals:
                loop.remove_signal_handler(sig)
            self.detach()

    def request_stop(self) -> None:
        """Ask a running stack to stop (any thread)."""
        loop = self.loop
        if loop is not None and self._stopped is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._stopped.set)

    # -- running in a background thread --------------------------------------------------------
    def start(self, timeout: float = 5.0) -> RealtimeStack:
        if self._thread is not None:
            raise RuntimeError("already started")
        ready = threading.Event()
        boot_error: list[BaseException] = []

        def thread_main() -> None:
            _pin_to_current_cpu()
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                self._stopped = asyncio.Event()
                self.attach(loop)
            except BaseException as exc:
                boot_error.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_until_complete(self._stopped.wait())
            finally:
                self.detach()
                _cancel_all(loop)
                loop.close()

        self._thread = threading.Thread(target=thread_main, name=f"stack-{self.node.name}",
                                        daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("the stack's loop did not start")
        if boot_error:
            self._thread.join()
            self._thread = None
            raise boot_error[0]
        return self

    def stop(self, timeout: float = 5.0) -> None:
        thread = self._thread
        if thread is None:
            return
        self.request_stop()
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError("the stack's loop did not stop")
        self._thread = None

    def __enter__(self) -> RealtimeStack:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run ``coro`` on the stack's loop from another thread; wait for its result."""
        loop = self._require_loop()
        fut = asyncio.run_coroutine_threadsafe(coro, loop)
        return _wait(fut, timeout)

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = 30.0) -> T:
        """Run ``fn(*args)`` on the stack's loop from another thread; wait for its result."""
        loop = self._require_loop()
        if threading.current_thread() is self._thread:
            return fn(*args)
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def runner() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:
                fut.set_exception(exc)

        loop.call_soon_threadsafe(runner)
        return _wait(fut, timeout)

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        loop = self.loop
        if loop is None or loop.is_closed() or not self.running:
            raise RuntimeError("the stack is not running (call start() first)")
        return loop


def _wait(fut: concurrent.futures.Future[T], timeout: float | None) -> T:
    # concurrent.futures.TimeoutError is the builtin TimeoutError: tell ours (the wait expired)
    # from one the code on the loop raised (a socket timeout, say), which must pass through.
    try:
        return fut.result(timeout)
    except TimeoutError:
        if fut.done():
            raise
        fut.cancel()
        raise TimeoutError(f"no answer from the stack's loop within {timeout} s") from None


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        with contextlib.suppress(Exception):
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
