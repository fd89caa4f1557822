"""A virtual-time asyncio event loop: ordinary asyncio code, no real waiting.

:class:`VirtualTimeLoop` is a ``SelectorEventLoop`` whose ``time()`` is a virtual clock (seconds
since the loop was created, starting at 0.0). The loop asks its selector to wait ``timeout``
seconds for I/O when nothing is ready; our selector does not wait: it moves the clock to the next
deadline and returns at once. So ``asyncio.sleep``, ``wait_for``, ``Event``, ``Queue``, ``gather``,
call_later... all work unchanged, and an hour of idle timers costs microseconds of wall time.

When nothing is ready and nothing is scheduled, asyncio would block forever in ``select(None)``:
in a simulation that is a deadlock, so :class:`SimulationDeadlock` is raised, naming every pending
task and what it awaits.

Threads are not part of the simulation: a worker thread is invisible to virtual time (the loop
may jump ahead, or report a deadlock, while it runs). So the loop's default executor runs each
function at once, in the loop's thread (:class:`InlineExecutor`): ``run_in_executor`` — which
libraries such as asyncssh call for short CPU work on every connect and login — stays
deterministic. Threads started otherwise still work (``call_soon_threadsafe``), but virtual time
does not wait for them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import heapq
import math
import selectors
import weakref
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar, TypeVarTuple, Unpack

from stacklab.api.driver import DrivenHost, running_host
from stacklab.api.spawn import HostNetwork, track
from stacklab.errors import StacklabError

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

_NAN = math.nan  # + 0.0: a new NaN object (call_at's tie-breaker)

__all__ = ["InlineExecutor", "SimulationDeadlock", "VirtualTimeLoop", "describe_tasks"]


class SimulationDeadlock(StacklabError, RuntimeError):
    """Nothing is ready and nothing is scheduled, yet the awaited coroutine has not finished."""


def _describe_future(fut: Any) -> str:
    if isinstance(fut, asyncio.Task):
        return f"task {fut.get_name()!r}"
    if isinstance(fut, asyncio.Future):
        return "a future nobody completes" if not fut.done() else repr(fut)
    return repr(fut)


def _describe_awaitable(aw: Any, waiter: Any = None) -> str:
    """``f() at file.py:12 -> Event.wait() at locks.py:213 -> a future nobody completes``."""
    parts: list[str] = []
    for _ in range(32):
        code = getattr(aw, "cr_code", None) or getattr(aw, "gi_code", None)
        if code is not None:
            frame = getattr(aw, "cr_frame", None) or getattr(aw, "gi_frame", None)
            where = f" at {code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno}" if frame else ""
            parts.append(f"{code.co_qualname}(){where}")
            nxt = getattr(aw, "cr_await", None)
            if nxt is None:
                nxt = getattr(aw, "gi_yieldfrom", None)
            if nxt is None:
                break
            aw = nxt
            continue
        parts.append(_describe_future(waiter if waiter is not None else aw))
        waiter = None
        break
    if waiter is not None:
        parts.append(_describe_future(waiter))
    return " -> ".join(parts)


def describe_tasks(loop: asyncio.AbstractEventLoop) -> list[str]:
    """One line per pending task of ``loop``: its name and the chain of awaits it is stuck in."""
    lines = []
    for task in sorted(asyncio.all_tasks(loop), key=lambda t: t.get_name()):
        if task.done():
            continue
        chain = _describe_awaitable(task.get_coro(), getattr(task, "_fut_waiter", None))
        lines.append(f"{task.get_name()}: {chain}")
    return lines


class _VirtualSelector(selectors.BaseSelector):
    """Wraps a real selector (asyncio's self-pipe lives there) but never waits on it."""

    # Poll the real selector at least this often even when only the self-pipe is registered,
    # so the pipe never fills up if threads call call_soon_threadsafe a lot.
    _POLL_EVERY = 256

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._real = selectors.DefaultSelector()
        self._loop = loop
        self._skipped = 0
        self._registered = 0

    # -- registration is the real selector's ---------------------------------------------------
    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        key = self._real.register(fileobj, events, data)
        self._registered += 1
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        key = self._real.unregister(fileobj)
        self._registered -= 1
        return key

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.get_key(fileobj)

    def get_map(self) -> Any:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    # -- the clock moves here ------------------------------------------------------------------
    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self._loop
        if timeout is None:
            ready = self._real.select(0)
            if ready:
                return ready
            raise SimulationDeadlock(loop.deadlock_message())
        # Only the self-pipe registered (the usual case): skip the system call most of the time.
        if self._registered > 1 or self._skipped >= self._POLL_EVERY:
            self._skipped = 0
            ready = self._real.select(0)
            if ready:
                return ready
        else:
            self._skipped += 1
        if timeout > 0:
            loop._advance(timeout)
        return []


class _Timer(asyncio.TimerHandle):
    """A ``TimerHandle`` made in one call: ``TimerHandle.__init__`` takes three (its own,
    ``Handle.__init__``, ``loop.get_debug``) for what outside debug mode is these assignments
    (debug mode, which records where each timer was made, gets asyncio's own handles)."""

    __slots__ = ()

    def __init__(self, when: float, callback: Callable[..., object], args: tuple[Any, ...],
                 loop: asyncio.AbstractEventLoop, context: contextvars.Context | None) -> None:
        self._context = context if context is not None else contextvars.copy_context()
        self._loop = loop
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._repr = None
        self._source_traceback = None
        self._when = when
        self._scheduled = True


class InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """An executor that runs each function at once, in the caller's thread."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)

    def submit(self, fn: Callable[..., Any], /, *args: Any,
               **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the awaiting coroutine, as a thread would
            future.set_exception(exc)
        return future


# HostNetwork's methods take the loop's arguments (typeshed spells them as overloads)
class VirtualTimeLoop(HostNetwork, asyncio.SelectorEventLoop):  # type: ignore[misc]
    """An asyncio event loop on a virtual clock. ``time()`` starts at 0.0.

    Its network methods (``create_connection``, ``getaddrinfo``, ``sock_connect``...) are
    :class:`~stacklab.api.spawn.HostNetwork`'s: they act on the stack of the simulated host the
    calling task runs on (``host.spawn``), never on the kernel's."""

    # BaseEventLoop's, not in the typeshed stubs
    _timer_cancelled_count: int
    _scheduled: list[Any]
    _debug: bool
    _closed: bool

    def __init__(self, start: float = 0.0) -> None:
        self._vtime = float(start)
        # every task in creation order (asyncio.all_tasks is a set ordered by memory address)
        self._created: weakref.WeakKeyDictionary[asyncio.Task[Any], None] = (
            weakref.WeakKeyDictionary())
        super().__init__(selector=_VirtualSelector(self))
        # ``_scheduled`` holds (when, NaN, handle) triples, not handles (see call_at), while
        # True; the standard iteration (debug mode) wants handles and gets them back
        self._triples = True
        self._clock_resolution = 1e-9
        self.set_default_executor(InlineExecutor())  # see the module docstring

    @property
    def _base(self) -> Any:
        """This loop as ``BaseEventLoop``'s private state (``_scheduled``, ``_ready``,
        ``_selector``...), which typeshed does not declare and :meth:`_run_once` must reach."""
        return self

    def time(self) -> float:
        return self._vtime

    def create_task(self, coro: Coroutine[Any, Any, _T] | Generator[Any, None, _T], *,
                    name: object = None, context: contextvars.Context | None = None
                    ) -> asyncio.Task[_T]:
        task = super().create_task(coro, name=name, context=context)
        self._created[task] = None
        host = running_host.get() if context is None else context.get(running_host)
        if isinstance(host, DrivenHost):
            track(host, task)  # a task a host's program (or callback) made is that host's too
        return task

    def unfinished_tasks(self) -> list[asyncio.Task[Any]]:
        """The tasks not done yet, oldest first: what cancels them in this order ends a run
        the same way in every process (in ``asyncio.all_tasks`` order it would not)."""
        return [t for t in list(self._created) if not t.done()]

    def call_at(self, when: float, callback: Callable[[Unpack[_Ts]], object],
                *args: *_Ts, context: contextvars.Context | None = None
                ) -> asyncio.TimerHandle:
        """``BaseEventLoop.call_at`` with the heap holding (when, NaN, handle) triples, which
        compare in C where handles compare in Python (``TimerHandle.__lt__``, ~15 calls per
        timer in a big heap). Two handles compare by ``when`` alone (equal: neither is less),
        and so do the triples: at equal times their NaNs (distinct objects: never equal, never
        less) end the comparison before the handles. The same comparisons give the same heap,
        so timers run in exactly the order a heap of handles runs them."""
        if self._debug:
            self._as_handles()
            return super().call_at(when, callback, *args, context=context)
        if when is None:
            raise TypeError("when cannot be None")
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if not self._triples:
            self._as_triples()
        timer = _Timer(when, callback, args, self, context)
        heapq.heappush(self._scheduled, (when, _NAN + 0.0, timer))
        return timer

    def _as_handles(self) -> None:
        # a heap of triples is a heap of their handles (same order), and back: no re-sorting
        if self._triples:
            scheduled = self._base._scheduled
            scheduled[:] = [item[2] for item in scheduled]
            self._triples = False

    def _as_triples(self) -> None:
        if not self._triples:
            scheduled = self._base._scheduled
            scheduled[:] = [(h._when, _NAN + 0.0, h) for h in scheduled]
            self._triples = True

    def _advance(self, timeout: float) -> None:
        # Jump to the next deadline exactly (not now + (deadline - now), which may round below it).
        now = self._vtime
        scheduled = self._base._scheduled
        target = now + timeout
        if scheduled:
            when = scheduled[0][0] if self._triples else scheduled[0]._when
            if when <= target + 1e-9:
                target = when
        if target > now:
            self._vtime = target

    def _run_once(self) -> None:
        """One loop iteration; the same steps as ``BaseEventLoop._run_once`` minus the waiting
        (the clock jumps to the next deadline) and minus the work a virtual clock does not need.
        Debug mode uses the standard implementation."""
        base = self._base
        if base._debug:
            self._as_handles()
            super()._run_once()  # type: ignore[misc]  # BaseEventLoop's, private in typeshed
            return
        if not self._triples:
            self._as_triples()
        scheduled = base._scheduled
        ready = base._ready
        n = len(scheduled)
        if n > 100 and self._timer_cancelled_count * 2 > n:
            live = []
            for item in scheduled:
                if item[2]._cancelled:
                    item[2]._scheduled = False
                else:
                    live.append(item)
            heapq.heapify(live)
            scheduled[:] = live
            self._timer_cancelled_count = 0
        else:
            while scheduled and scheduled[0][2]._cancelled:
                self._timer_cancelled_count -= 1
                heapq.heappop(scheduled)[2]._scheduled = False
        selector = base._selector
        if ready or base._stopping:
            events = selector.select(0)
        elif scheduled:
            events = selector.select(max(0.0, scheduled[0][0] - self._vtime))
        else:
            events = selector.select(None)  # raises SimulationDeadlock unless a thread woke us
        if events:
            base._process_events(events)
        # Handles due within 1 ns of now run now (the clock's resolution). Past 2**24 s a float's
        # spacing exceeds 1e-9 and ``now + 1e-9 == now``: the next representable time bounds it
        # instead, so a handle due exactly now still runs (else the clock livelocks there).
        end_time = max(self._vtime + 1e-9, math.nextafter(self._vtime, math.inf))
        while scheduled:
            if scheduled[0][0] >= end_time:
                break
            handle = heapq.heappop(scheduled)[2]
            handle._scheduled = False
            ready.append(handle)
        popleft = ready.popleft
        for _ in range(len(ready)):
            handle = popleft()
            if not handle._cancelled:
                handle._run()

    def deadlock_message(self) -> str:
        lines = describe_tasks(self)
        if not lines:
            return (f"simulation deadlock at t={self._vtime:.6f}s: nothing is ready or scheduled "
                    "and no task is pending")
        return (f"simulation deadlock at t={self._vtime:.6f}s: nothing is ready or scheduled, "
                f"yet {len(lines)} task(s) wait forever:\n  " + "\n  ".join(lines))
