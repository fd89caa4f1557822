"""Ordinary blocking code on the simulator: ``await host.run_blocking(func, *args)``.

``run_blocking`` is shaped like ``asyncio.to_thread`` but starts no thread: ``func`` runs in a
greenlet (the ``greenlet`` library, the cooperative switching gevent and SQLAlchemy's asyncio
bridge are built on) inside the coroutine that awaits it. When the blocking code would block —
a ``recv``, a ``connect``, ``time.sleep``, ``select`` — it switches back to that coroutine with
an awaitable; the coroutine awaits it on the simulator's loop, in virtual time, and switches back
in with the result. So ``socket``, ``http.client``, ``urllib.request``, ``requests``,
``smtplib``, ``ftplib`` and httpx's sync client run unchanged, one step at a time between the
loop's other callbacks, the same way in every run of a seed.

Inside that code only. Module attributes are global, so :func:`_install` replaces them with
dispatchers while at least one ``run_blocking`` is running (and puts the originals back after
the last one): the dispatcher looks at the current greenlet. In a stacklab greenlet it uses the
host's stack (:class:`~stacklab.api.sockets.StackSocket`, the host's names, the loop's clock);
anywhere else — another thread, the loop's own code, a library's import-time probe — it calls
the real function, except that a blocking call (a connect, a name look-up, ``time.sleep``,
``select`` with a timeout) made on the loop's thread outside ``run_blocking`` raises
:class:`BlockingCallError`: it would stop the simulation, or reach the real network. Replaced:
``socket.socket`` (instances of either class pass ``isinstance(s, socket.socket)``),
``getaddrinfo``, ``gethostbyname(_ex)``, ``gethostname``, ``getfqdn``, ``socketpair`` (the host
to itself); ``socket.create_connection``/``create_server`` are the stdlib's own, on the
replaced names. ``time.sleep``, ``time``, ``monotonic``, ``perf_counter`` (and ``_ns``):
``time.time()`` is :data:`SIM_EPOCH` plus the virtual clock. ``select.select``, ``select.poll``
and ``selectors.DefaultSelector`` (and the Select/Poll/Epoll selector names), and the poll
object of ``selectors.PollSelector`` (so ``socketserver`` and ``http.server`` serve too).

On a host a :class:`~stacklab.api.realtime.RealtimeStack` drives (TAP), ``run_blocking`` works
the same way on that real loop, with the real clocks (``time.sleep`` is still the loop's sleep).

Limits: a name bound before the first ``run_blocking`` (``from time import sleep`` at import)
keeps the real function; threads the blocking code starts are real threads on the real modules;
blocking code cannot run an event loop of its own (it runs inside the simulator's) and its
sockets have no kernel descriptor (no ``ssl`` over them). Over TAP the socket names are a
thread's stack's under ``with use_sockets(net):``, ``time`` and ``select`` staying real there.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import select as _select
import selectors as _selectors
import socket as _socket
import threading
import time as _time
import weakref
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import greenlet

from stacklab.errors import StacklabError

from .driver import DrivenHost
from .sockets import StackSocket, StackSockets

if TYPE_CHECKING:
    from collections.abc import Awaitable

T = TypeVar("T")

__all__ = ["SIM_EPOCH", "BlockingCallError", "run_blocking", "use_sockets"]

# What time.time() answers inside run_blocking at virtual time 0: 2026-01-01T00:00:00Z, fixed
# so that dates written by blocking code (HTTP, SMTP headers) are the same in every run.
SIM_EPOCH = 1_767_225_600.0

# fileno() of simulated sockets: far above any real descriptor (Linux's fs.nr_open is at most
# 2**30), so a number leaking to a real system call fails with EBADF instead of hitting a file.
_FD_BASE = 2 ** 30 + 2 ** 29


_REAL_SOCKET = _socket.socket  # for isinstance checks, whenever they run


class BlockingCallError(StacklabError, RuntimeError):
    """Blocking code used where it cannot run on the simulator."""


class _Blocking(greenlet.greenlet):  # type: ignore[misc]  # greenlet ships no type hints
    """The greenlet of one ``run_blocking`` call: its host and its socket factory."""

    def __init__(self, run: Callable[[], Any], host: DrivenHost,
                 loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(run)
        self.host = host
        self.loop = loop
        self.virtual = type(loop).time is not asyncio.BaseEventLoop.time  # the simulator's
        self.sockets = _SimSockets(self)


def _current() -> _Blocking | None:
    g = greenlet.getcurrent()
    return g if isinstance(g, _Blocking) else None


_bound = threading.local()  # .sockets: the StackSockets of use_sockets() in this thread


def _socket_ctx() -> StackSockets | None:
    """The sockets the ``socket`` module's names stand for here: the blocking code's host on
    the simulator, or the stack a thread bound with :func:`use_sockets`; None: the real ones."""
    g = _current()
    if g is not None:
        return g.sockets
    sockets: StackSockets | None = getattr(_bound, "sockets", None)
    return sockets


@contextlib.contextmanager
def use_sockets(sockets: StackSockets) -> Iterator[StackSockets]:
    """In the calling thread, while inside: ``socket.socket``, ``create_connection``,
    ``getaddrinfo``, ``gethostbyname``, ``gethostname`` are ``sockets``' (a stack on TAP run
    by a :class:`~stacklab.api.realtime.RealtimeStack`), so unmodified blocking clients use it.
    Time and ``select`` stay real: over TAP, time is real and the sockets have real
    descriptors::

        with use_sockets(StackSockets(stack)):
            urllib.request.urlopen("http://10.0.0.1/")
    """
    if _current() is not None:
        raise BlockingCallError("use_sockets() inside run_blocking: its sockets are already "
                                "the host's")
    previous = getattr(_bound, "sockets", None)
    _bound.sockets = sockets
    _install(None)
    try:
        yield sockets
    finally:
        _bound.sockets = previous
        _uninstall(None)


def _await(aw: Awaitable[T]) -> T:
    """From blocking code: hand ``aw`` to the coroutine running it, get its result back."""
    g = _current()
    if g is None:
        raise BlockingCallError("this waits on the simulator: call it inside "
                                "await host.run_blocking(...)")
    return g.parent.switch(aw)  # type: ignore[no-any-return]


class _GreenletRunner:
    """The :class:`~stacklab.api.sockets.Runner` of simulated blocking sockets: a call runs
    on the loop at once (the greenlet is on the loop's thread), a coroutine is awaited by the
    ``run_blocking`` coroutine."""

    def __init__(self, g: _Blocking) -> None:
        self.node = g.host

    @property
    def running(self) -> bool:
        return not self.node.driving().loop.is_closed()

    def submit(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return _await(coro)

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        return fn(*args)


class _Descriptors:
    """The numbers of one loop's simulated sockets (the same in every run of a seed)."""

    def __init__(self) -> None:
        self.next = itertools.count(_FD_BASE)
        self.sockets: weakref.WeakValueDictionary[int, StackSocket] = (
            weakref.WeakValueDictionary())


_descriptors: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Descriptors] = (
    weakref.WeakKeyDictionary())


def _descriptors_here() -> _Descriptors:
    g = _current()
    assert g is not None
    table = _descriptors.get(g.loop)
    if table is None:
        table = _descriptors[g.loop] = _Descriptors()
    return table


class _SimSockets(StackSockets):
    def __init__(self, g: _Blocking) -> None:
        super().__init__(_GreenletRunner(g))
        self.default_timeout = _socket.getdefaulttimeout()

    def fileno_of(self, sock: StackSocket) -> int:
        table = _descriptors_here()
        fd = next(table.next)
        table.sockets[fd] = sock
        return fd


async def run_blocking(host: Any, func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run ``func(*args, **kwargs)`` as blocking code on ``host``'s stack (module docstring);
    its result, or its exception."""
    if not callable(func):
        raise TypeError(f"run_blocking() needs a callable, not {type(func).__name__} {func!r}")
    if not isinstance(host, DrivenHost) or not hasattr(host, "create_connection"):
        raise BlockingCallError(f"{host!r} has no stack with the application API: use a host "
                                "of a Network (net.add_host) or of a RealtimeStack")
    if host.driver is None:
        raise BlockingCallError(f"host {host.name} is not driven: add it to a Network first")
    loop = asyncio.get_running_loop()
    if loop is not host.loop:
        raise BlockingCallError(f"run_blocking on {host.name} must be awaited on its own loop")
    if _current() is not None:
        raise BlockingCallError("run_blocking inside blocking code: call func directly")
    g = _Blocking(functools.partial(func, *args, **kwargs), host, loop)
    _install(loop)
    try:
        request = g.switch()
        while not g.dead:
            try:
                value = await request
            except BaseException as exc:  # the blocking code sees it where it waited
                request = g.throw(exc)
            else:
                request = g.switch(value)
        return request  # type: ignore[no-any-return]
    finally:
        _uninstall(loop)


# -- the dispatchers ------------------------------------------------------------------------------

_real: dict[str, Any] = {}  # "module.name" -> the original, while installed
_real_poll_cls: list[Any] = []  # selectors.PollSelector._selector_cls, while installed
# loop -> run_blocking calls running on it (None: use_sockets() blocks of threads)
_active_loops: dict[asyncio.AbstractEventLoop | None, int] = {}
_lock = threading.Lock()


def _on_sim_loop() -> bool:
    """Outside blocking code, on the thread of a loop that runs some: blocking there stops the
    simulation."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    return loop in _active_loops


def _refuse(what: str) -> None:
    if _on_sim_loop():
        raise BlockingCallError(
            f"{what} blocks: on the simulator's loop, run blocking code with "
            "await host.run_blocking(func, ...) (or use the host's asyncio API)")


def _sim_clock() -> float:
    g = _current()
    assert g is not None
    return g.loop.time()


def _on_virtual_clock() -> _Blocking | None:
    """Blocking code on the simulator's clock; on a loop that keeps asyncio's own time (a
    RealtimeStack's), the clocks are the real ones."""
    g = _current()
    return g if g is not None and g.virtual else None


def _wall() -> float:
    return SIM_EPOCH + _sim_clock()


def _shim(name: str, sim: Callable[..., Any], blocking: bool = False) -> Callable[..., Any]:
    """``name``'s dispatcher: ``sim`` in blocking code (for the socket module's names, also
    in a thread under use_sockets()), else the original (refused on the simulator's loop when
    ``blocking``)."""
    real = _real[name]
    here = (_socket_ctx if name in _SOCKET_SCOPED else
            _on_virtual_clock if name in _CLOCKS else _current)

    @functools.wraps(real)
    def dispatch(*args: Any, **kwargs: Any) -> Any:
        if here() is not None:
            return sim(*args, **kwargs)
        if blocking:
            _refuse(f"{name}()")
        return real(*args, **kwargs)
    return dispatch


class _SocketMeta(type):
    """``socket.socket`` while installed: calling it makes a StackSocket in blocking code and a
    real socket elsewhere; both count as instances."""

    def __call__(cls, family: int = -1, type: int = -1, proto: int = -1,
                 fileno: int | None = None) -> Any:
        sockets = _socket_ctx()
        real = _REAL_SOCKET
        if sockets is None or fileno is not None:
            return real(family, type, proto, fileno)
        return sockets.socket(_socket.AF_INET if family == -1 else family,
                                _socket.SOCK_STREAM if type == -1 else type, 0)

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, (_REAL_SOCKET, StackSocket))

    def __subclasscheck__(cls, sub: Any) -> bool:
        return issubclass(sub, (_REAL_SOCKET, StackSocket))


class _SocketClass(metaclass=_SocketMeta):
    """Stands for ``socket.socket`` while run_blocking is running (see _SocketMeta)."""


def _sockets() -> StackSockets:
    sockets = _socket_ctx()
    assert sockets is not None
    return sockets


def _resolve(name: str | bytes | None, family: int) -> str:
    """The name look-up of blocking code: the host's one ``lookup`` (literal addresses, the
    network's names, DNS), run on the host's loop. No name is the wildcard address, as
    getaddrinfo(None) with AI_PASSIVE."""
    sockets = _sockets()
    if isinstance(name, bytes):
        name = name.decode("idna")
    if name is None or name == "":
        return "::" if family == _socket.AF_INET6 else "0.0.0.0"
    want = {int(_socket.AF_INET): 4, int(_socket.AF_INET6): 6}.get(int(family))
    addrs: list[str] = sockets.stack.submit(sockets.host.lookup(name, want))
    return addrs[0]


def _getaddrinfo(host: str | bytes | None, port: Any, family: int = 0, type: int = 0,
                 proto: int = 0, flags: int = 0) -> list[tuple[Any, ...]]:
    addr = _resolve(host, family)
    fam = _socket.AF_INET6 if ":" in addr else _socket.AF_INET
    if isinstance(port, bytes | str):
        port = int(port) if str(port if isinstance(port, str) else port.decode()).isdigit() \
            else _socket.getservbyname(port if isinstance(port, str) else port.decode())
    port = int(port or 0)
    sockaddr: tuple[Any, ...] = (addr, port) if fam == _socket.AF_INET else (addr, port, 0, 0)
    types = [type] if type else [_socket.SOCK_STREAM, _socket.SOCK_DGRAM]
    out = []
    for t in types:
        p = proto or (_socket.IPPROTO_TCP if t == _socket.SOCK_STREAM else _socket.IPPROTO_UDP)
        out.append((_socket.AddressFamily(fam), _socket.SocketKind(t), p, "", sockaddr))
    return out


def _gethostname() -> str:
    return str(_sockets().host.name)


def _getfqdn(name: str = "") -> str:
    return name.strip() or _gethostname()


def _gethostbyname(name: str) -> str:
    return _resolve(name, _socket.AF_INET)


def _gethostbyname_ex(name: str) -> tuple[str, list[str], list[str]]:
    return name, [], [_resolve(name, _socket.AF_INET)]


def _socketpair(family: int = _socket.AF_UNIX, type: int = _socket.SOCK_STREAM,
                proto: int = 0) -> tuple[StackSocket, StackSocket]:
    """Two connected TCP sockets from the host to itself (Windows' socketpair, by the same
    recipe: a listener, a connect, an accept), on its own address: the simulator's hosts
    have no 127.0.0.1."""
    if type != _socket.SOCK_STREAM:
        raise OSError(94, "socketpair() on the simulator makes stream sockets only")
    if family == _socket.AF_UNIX:
        family = _socket.AF_INET
    own = _resolve(_gethostname(), family)
    net = _sockets()
    with net.create_server((own, 0), family=family) as listener:
        a = net.create_connection(listener.getsockname()[:2])
        b, _ = listener.accept()
    return a, b


def _sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    _await(asyncio.sleep(seconds))


# -- select, poll and selectors over StackSockets -------------------------------------------------

def _stack_socket(obj: Any) -> StackSocket:
    if isinstance(obj, StackSocket):
        return obj
    fd = obj if isinstance(obj, int) else obj.fileno()
    sock = _descriptors_here().sockets.get(fd)
    if sock is None:
        raise OSError(9, f"fd {fd} is not a socket of the simulated host (Bad file descriptor)")
    return sock


def _wait_any(waits: list[tuple[Any, StackSocket, int]], timeout: float | None
              ) -> list[tuple[Any, int]]:
    """Block until one of ``(key, sock, events)`` is ready (``selectors.EVENT_*`` bits) or
    ``timeout`` passes; the ready ones with their events."""
    def ready() -> list[tuple[Any, int]]:
        out = []
        for key, sock, events in waits:
            got = ((_selectors.EVENT_READ if events & _selectors.EVENT_READ and sock.readable()
                    else 0)
                   | (_selectors.EVENT_WRITE if events & _selectors.EVENT_WRITE
                      and sock.writable() else 0))
            if got:
                out.append((key, got))
        return out

    now = ready()
    if now or timeout is not None and timeout <= 0:
        return now

    async def wait() -> None:
        aws = []
        for _, sock, events in waits:
            if events & _selectors.EVENT_READ:
                aws.append(sock.wait_readable())
            if events & _selectors.EVENT_WRITE:
                aws.append(sock.wait_writable())
        tasks = [asyncio.ensure_future(a) for a in aws]
        try:
            if tasks:
                await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            else:
                await asyncio.sleep(timeout)  # type: ignore[arg-type]  # None: no fds, no wait
        finally:
            for t in tasks:
                t.cancel()
    if not waits and timeout is None:
        raise BlockingCallError("select() with nothing to wait for and no timeout waits forever")
    _await(wait())
    return ready()


def _select_select(rlist: Iterable[Any], wlist: Iterable[Any], xlist: Iterable[Any],
                   timeout: float | None = None) -> tuple[list[Any], list[Any], list[Any]]:
    rlist, wlist = list(rlist), list(wlist)
    waits = ([(("r", i), _stack_socket(o), _selectors.EVENT_READ) for i, o in enumerate(rlist)]
             + [(("w", i), _stack_socket(o), _selectors.EVENT_WRITE)
                for i, o in enumerate(wlist)])
    for o in xlist:
        _stack_socket(o)  # no out-of-band data here: never exceptional
    got = dict(_wait_any(waits, timeout))
    return ([o for i, o in enumerate(rlist) if ("r", i) in got],
            [o for i, o in enumerate(wlist) if ("w", i) in got], [])


class _SimPoll:
    """``select.poll()`` in blocking code."""

    def __init__(self) -> None:
        self._fds: dict[int, tuple[StackSocket, int]] = {}

    def register(self, fd: Any, eventmask: int = _select.POLLIN | _select.POLLPRI
                 | _select.POLLOUT) -> None:
        sock = _stack_socket(fd)
        self._fds[sock.fileno()] = (sock, eventmask)

    def modify(self, fd: Any, eventmask: int) -> None:
        sock = _stack_socket(fd)
        if sock.fileno() not in self._fds:
            raise FileNotFoundError(2, "No such file or directory")
        self._fds[sock.fileno()] = (sock, eventmask)

    def unregister(self, fd: Any) -> None:
        del self._fds[_stack_socket(fd).fileno()]

    def poll(self, timeout: float | None = None) -> list[tuple[int, int]]:
        waits = []
        for fd, (sock, mask) in self._fds.items():
            events = ((_selectors.EVENT_READ if mask & (_select.POLLIN | _select.POLLPRI) else 0)
                      | (_selectors.EVENT_WRITE if mask & _select.POLLOUT else 0))
            waits.append((fd, sock, events))
        seconds = None if timeout is None or timeout < 0 else timeout / 1000.0
        out = []
        for fd, got in _wait_any(waits, seconds):
            sock = self._fds[fd][0]
            revents = ((_select.POLLIN if got & _selectors.EVENT_READ else 0)
                       | (_select.POLLOUT if got & _selectors.EVENT_WRITE else 0))
            stream = sock._stream
            if stream is not None and stream.lost:
                revents |= _select.POLLHUP | (_select.POLLERR if stream.error else 0)
            out.append((fd, revents))
        return out


class _SimSelector(_selectors.BaseSelector):
    """``selectors.DefaultSelector()`` in blocking code."""

    def __init__(self) -> None:
        self._keys: dict[int, _selectors.SelectorKey] = {}

    def register(self, fileobj: Any, events: int, data: Any = None) -> _selectors.SelectorKey:
        if not events or events & ~(_selectors.EVENT_READ | _selectors.EVENT_WRITE):
            raise ValueError(f"Invalid events: {events!r}")
        sock = _stack_socket(fileobj)
        fd = sock.fileno()
        if fd in self._keys:
            raise KeyError(f"{fileobj!r} (FD {fd}) is already registered")
        key = _selectors.SelectorKey(fileobj, fd, events, data)
        self._keys[fd] = key
        return key

    def unregister(self, fileobj: Any) -> _selectors.SelectorKey:
        try:
            return self._keys.pop(_stack_socket(fileobj).fileno())
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None

    def select(self, timeout: float | None = None
               ) -> list[tuple[_selectors.SelectorKey, int]]:
        waits = [(fd, _stack_socket(fd), key.events) for fd, key in self._keys.items()]
        return [(self._keys[fd], got) for fd, got in _wait_any(waits, timeout)]

    def get_map(self) -> Any:
        return dict(self._keys)

    def close(self) -> None:
        self._keys.clear()


def _selector_shim(name: str) -> Callable[..., Any]:
    real = _real[name]

    def make(*args: Any, **kwargs: Any) -> Any:
        return _SimSelector() if _current() is not None else real(*args, **kwargs)
    return make


def _select_refusing(*args: Any) -> Any:
    timeout = args[3] if len(args) > 3 else None
    if timeout is None or timeout > 0:
        _refuse("select.select()")
    return _real["select.select"](*args)


# name -> (module, the simulated version, refused on the loop outside run_blocking)
_TABLE: dict[str, tuple[Any, Callable[..., Any] | None, bool]] = {
    "socket.getaddrinfo": (_socket, _getaddrinfo, True),
    "socket.gethostbyname": (_socket, _gethostbyname, True),
    "socket.gethostbyname_ex": (_socket, _gethostbyname_ex, True),
    "socket.gethostname": (_socket, _gethostname, False),
    "socket.getfqdn": (_socket, _getfqdn, False),
    "socket.socketpair": (_socket, _socketpair, False),
    "socket.create_connection": (_socket, None, True),  # the stdlib's, on the names above
    "time.sleep": (_time, _sleep, True),
    "time.time": (_time, _wall, False),
    "time.time_ns": (_time, lambda: int(_wall() * 1e9), False),
    "time.monotonic": (_time, _sim_clock, False),
    "time.monotonic_ns": (_time, lambda: int(_sim_clock() * 1e9), False),
    "time.perf_counter": (_time, _sim_clock, False),
    "time.perf_counter_ns": (_time, lambda: int(_sim_clock() * 1e9), False),
    "select.poll": (_select, _SimPoll, False),
}
# the names that are a bound thread's too (time and select are the simulator's only)
_SOCKET_SCOPED = {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex",
                  "socket.gethostname", "socket.getfqdn"}
# the clocks, virtual only on a virtual loop (time.sleep is the loop's sleep on either)
_CLOCKS = {"time.time", "time.time_ns", "time.monotonic", "time.monotonic_ns",
           "time.perf_counter", "time.perf_counter_ns"}
_SELECTORS = ("DefaultSelector", "SelectSelector", "PollSelector", "EpollSelector")


def _install(loop: asyncio.AbstractEventLoop | None) -> None:
    with _lock:
        _active_loops[loop] = _active_loops.get(loop, 0) + 1
        if _real:
            return
        for name, (module, _, _) in _TABLE.items():
            _real[name] = getattr(module, name.split(".", 1)[1])
        _real["socket.socket"] = _socket.socket  # restored by _uninstall
        _real["select.select"] = _select.select
        for name in _SELECTORS:
            if hasattr(_selectors, name):
                _real[f"selectors.{name}"] = getattr(_selectors, name)
        for name, (module, sim, blocking) in _TABLE.items():
            attr = name.split(".", 1)[1]
            if sim is not None:
                setattr(module, attr, _shim(name, sim, blocking))
            elif blocking:
                setattr(module, attr, _refusing(name))
        _socket.socket = _SocketClass  # type: ignore[misc,assignment]
        _select.select = _select_dispatch
        for name in _SELECTORS:
            if f"selectors.{name}" in _real:
                setattr(_selectors, name, _selector_shim(f"selectors.{name}"))
        # the poll object of PollSelector instances, for the classes bound at import
        # (socketserver's _ServerSelector): _SimPoll in blocking code
        poll_selector: Any = _real["selectors.PollSelector"]
        _real_poll_cls.append(poll_selector.__dict__["_selector_cls"])
        poll_selector._selector_cls = staticmethod(_shim("select.poll", _SimPoll))


def _select_dispatch(*args: Any) -> Any:
    if _current() is not None:
        return _select_select(*args)
    return _select_refusing(*args)


def _refusing(name: str) -> Callable[..., Any]:
    real = _real[name]

    @functools.wraps(real)
    def refuse_on_loop(*args: Any, **kwargs: Any) -> Any:
        if _current() is None:
            _refuse(f"{name}()")
        return real(*args, **kwargs)
    return refuse_on_loop


def _uninstall(loop: asyncio.AbstractEventLoop | None) -> None:
    with _lock:
        left = _active_loops[loop] - 1
        if left:
            _active_loops[loop] = left
            return
        del _active_loops[loop]
        if _active_loops:
            return
        for name, original in _real.items():
            module_name, attr = name.split(".", 1)
            module = {"socket": _socket, "time": _time, "select": _select,
                      "selectors": _selectors}[module_name]
            setattr(module, attr, original)
        poll_selector: Any = _real["selectors.PollSelector"]
        poll_selector._selector_cls = _real_poll_cls.pop()
        _real.clear()
