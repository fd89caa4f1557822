"""epoll(7) for the packetdrill runner, with Linux's semantics (fs/eventpoll.c).

An :class:`Epoll` instance watches files (the runner's sockets): each watched file keeps a list
of wakeup callbacks (``waiters``) that the socket layer calls with a wakeup's event key, as the
kernel's wait-queue callbacks (``ep_poll_callback``): data arrival wakes with EPOLLIN's key, a
writer's wakeup (the send buffer has room again, stack/tcp/sndbuf.py) with EPOLLOUT's, an error
queue notification with EPOLLERR's, a state change with key 0 (every event). A wakeup whose key
meets the item's events puts the item on the ready list (once). ``epoll_wait`` takes items off
the ready list, polls each file and reports ``revents & events`` when not empty; a
level-triggered item goes back on the list, an edge-triggered one (EPOLLET) waits for the next
wakeup, a one-shot one (EPOLLONESHOT) is disabled until EPOLL_CTL_MOD. EPOLL_CTL_ADD and
EPOLL_CTL_MOD poll the file at once and list it when ready. EPOLLERR and EPOLLHUP are always
watched. Errors as Linux's epoll_ctl(2) and epoll_wait(2).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Protocol

from .sockets import SockError

EPOLLIN, EPOLLPRI, EPOLLOUT, EPOLLERR, EPOLLHUP = 0x1, 0x2, 0x4, 0x8, 0x10
EPOLLRDNORM, EPOLLRDBAND, EPOLLWRNORM, EPOLLWRBAND, EPOLLMSG = 0x40, 0x80, 0x100, 0x200, 0x400
EPOLLRDHUP = 0x2000
EPOLLEXCLUSIVE, EPOLLWAKEUP, EPOLLONESHOT, EPOLLET = 1 << 28, 1 << 29, 1 << 30, 1 << 31
EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD = 1, 2, 3
EPOLL_CLOEXEC = 0o2000000
EP_MAX_EVENTS = 0x7FFFFFFF // 12  # INT_MAX / sizeof(struct epoll_event)
# the bits that are not events (EP_PRIVATE_BITS), and what EPOLLEXCLUSIVE may come with
PRIVATE_BITS = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE
EXCLUSIVE_OK_BITS = EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET \
    | EPOLLEXCLUSIVE

# the keys the socket layer wakes with (include/net/sock.h, net/core/stream.c)
KEY_READABLE = EPOLLIN | EPOLLPRI | EPOLLRDNORM | EPOLLRDBAND  # sk_data_ready
KEY_WRITABLE = EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND  # sk_stream_write_space
KEY_ERROR = EPOLLERR  # sk_error_report
KEY_ALL = 0  # sk_state_change: no key, every waiter

SYMBOLS = {
    "EPOLLIN": EPOLLIN, "EPOLLPRI": EPOLLPRI, "EPOLLOUT": EPOLLOUT, "EPOLLERR": EPOLLERR,
    "EPOLLHUP": EPOLLHUP, "EPOLLRDNORM": EPOLLRDNORM, "EPOLLRDBAND": EPOLLRDBAND,
    "EPOLLWRNORM": EPOLLWRNORM, "EPOLLWRBAND": EPOLLWRBAND, "EPOLLMSG": EPOLLMSG,
    "EPOLLRDHUP": EPOLLRDHUP, "EPOLLEXCLUSIVE": EPOLLEXCLUSIVE, "EPOLLWAKEUP": EPOLLWAKEUP,
    "EPOLLONESHOT": EPOLLONESHOT, "EPOLLET": EPOLLET, "EPOLL_CTL_ADD": EPOLL_CTL_ADD,
    "EPOLL_CTL_DEL": EPOLL_CTL_DEL, "EPOLL_CTL_MOD": EPOLL_CTL_MOD,
    "EPOLL_CLOEXEC": EPOLL_CLOEXEC,
}


class Watchable(Protocol):
    """A file epoll can watch: its poll mask now, and its wakeup callbacks."""

    waiters: list[Callable[[int], None]]

    def poll(self) -> int: ...


class _Item:
    __slots__ = ("fd", "file", "events", "data", "wake")

    def __init__(self, fd: int, file: Watchable, events: int, data: int,
                 wake: Callable[[int], None]) -> None:
        self.fd = fd
        self.file = file
        self.events = events
        self.data = data
        self.wake = wake


class Epoll:
    def __init__(self) -> None:
        self.items: dict[int, _Item] = {}
        self.ready: list[_Item] = []  # the ready list, oldest first
        self.waiters: list[Callable[[int], None]] = []  # an epoll file is pollable too

    def poll(self) -> int:
        """EPOLLIN while some ready item has events (ep_eventpoll_poll)."""
        return EPOLLIN | EPOLLRDNORM if any(
            it.file.poll() & it.events for it in self.ready) else 0

    def _callback(self, item: _Item) -> Callable[[int], None]:
        def wake(key: int) -> None:  # ep_poll_callback
            if not item.events & ~PRIVATE_BITS:
                return  # a one-shot item already reported: disabled until EPOLL_CTL_MOD
            if key and not key & item.events:
                return
            if item not in self.ready:
                self.ready.append(item)
                for w in list(self.waiters):
                    w(KEY_READABLE)
        return wake

    def _poll_in(self, item: _Item) -> None:
        """ADD and MOD poll the file at once: listed if it is ready."""
        if item.file.poll() & item.events and item not in self.ready:
            self.ready.append(item)

    def ctl(self, op: int, fd: int, file: Watchable | None, events: int, data: int) -> None:
        """epoll_ctl(); ``file`` is what ``fd`` names (None: not open)."""
        if file is None:
            raise SockError(errno.EBADF)
        if file is self:
            raise SockError(errno.EINVAL)
        if op not in (EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD):
            raise SockError(errno.EINVAL)
        if op != EPOLL_CTL_DEL and events & EPOLLEXCLUSIVE and (
                op == EPOLL_CTL_MOD or isinstance(file, Epoll) or events & ~EXCLUSIVE_OK_BITS):
            raise SockError(errno.EINVAL)
        events &= ~EPOLLWAKEUP  # needs CAP_BLOCK_SUSPEND: silently dropped without it
        item = self.items.get(fd)
        if op == EPOLL_CTL_ADD:
            if item is not None:
                raise SockError(errno.EEXIST)
            item = _Item(fd, file, events | EPOLLERR | EPOLLHUP, data, lambda _k: None)
            item.wake = self._callback(item)
            self.items[fd] = item
            file.waiters.append(item.wake)
            self._poll_in(item)
            return
        if item is None:
            raise SockError(errno.ENOENT)
        if op == EPOLL_CTL_DEL:
            self._remove(item)
            return
        if item.events & EPOLLEXCLUSIVE:
            raise SockError(errno.EINVAL)  # an exclusive item cannot be modified
        item.events = events | EPOLLERR | EPOLLHUP
        item.data = data
        self._poll_in(item)

    def _remove(self, item: _Item) -> None:
        del self.items[item.fd]
        if item in self.ready:
            self.ready.remove(item)
        if item.wake in item.file.waiters:
            item.file.waiters.remove(item.wake)

    def forget(self, file: object) -> None:
        """The file was closed: its items go (eventpoll_release)."""
        for item in [it for it in self.items.values() if it.file is file]:
            self._remove(item)

    def close(self) -> None:
        for item in list(self.items.values()):
            self._remove(item)

    def wait(self, maxevents: int) -> list[tuple[int, int]]:
        """Take up to ``maxevents`` ready events (ep_send_events): ``(revents, data)``."""
        if maxevents <= 0 or maxevents > EP_MAX_EVENTS:
            raise SockError(errno.EINVAL)
        out: list[tuple[int, int]] = []
        queue, self.ready = self.ready, []
        again: list[_Item] = []
        left: list[_Item] = []
        for k, item in enumerate(queue):
            if len(out) >= maxevents:
                left = queue[k:]
                break
            revents = item.file.poll() & item.events
            if not revents:
                continue
            out.append((revents, item.data))
            if item.events & EPOLLONESHOT:
                item.events &= PRIVATE_BITS
            elif not item.events & EPOLLET:
                again.append(item)  # level-triggered: listed again
        # the items not reached stay first; then what woke meanwhile, then the re-listed ones
        self.ready = left + [it for it in self.ready if it not in left] + [
            it for it in again if it not in left and it not in self.ready]
        return out
