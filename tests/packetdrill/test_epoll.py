"""The epoll model (stacklab/packetdrill/epoll.py) on a file whose readiness the test sets."""

from __future__ import annotations

import errno
from collections.abc import Callable

import pytest

from stacklab.packetdrill.epoll import (
    EPOLL_CTL_ADD,
    EPOLL_CTL_MOD,
    EPOLLERR,
    EPOLLET,
    EPOLLIN,
    EPOLLONESHOT,
    EPOLLOUT,
    Epoll,
)
from stacklab.packetdrill.sockets import WAKE_IN, WAKE_OUT, SockError


class File:
    def __init__(self, mask: int = 0) -> None:
        self.mask = mask
        self.waiters: list[Callable[[int], None]] = []

    def poll(self) -> int:
        return self.mask

    def wake(self, key: int) -> None:
        for w in list(self.waiters):
            w(key)


def test_level_triggered_reports_while_ready_edge_triggered_once_per_wakeup() -> None:
    ep, lt, et = Epoll(), File(), File()
    ep.ctl(EPOLL_CTL_ADD, 4, lt, EPOLLIN, 4)
    ep.ctl(EPOLL_CTL_ADD, 5, et, EPOLLIN | EPOLLET, 5)
    assert ep.wait(8) == []
    for f in (lt, et):
        f.mask = EPOLLIN
        f.wake(WAKE_IN)
    assert ep.wait(8) == [(EPOLLIN, 4), (EPOLLIN, 5)]
    assert ep.wait(8) == [(EPOLLIN, 4)]  # only the level-triggered one again
    et.wake(WAKE_IN)  # new data: a new edge
    assert ep.wait(8) == [(EPOLLIN, 4), (EPOLLIN, 5)]
    lt.mask = 0  # drained: nothing to report, and it leaves the ready list
    assert ep.wait(8) == []


def test_a_wakeup_for_other_events_lists_nothing() -> None:
    ep, f = Epoll(), File(EPOLLOUT)
    ep.ctl(EPOLL_CTL_ADD, 4, f, EPOLLIN | EPOLLET, 4)  # not ready for EPOLLIN at ADD
    f.wake(WAKE_OUT)
    assert ep.wait(1) == []
    f.mask |= EPOLLERR  # EPOLLERR is always watched
    f.wake(EPOLLERR)
    assert ep.wait(1) == [(EPOLLERR, 4)]


def test_maxevents_leaves_the_rest_first_in_line() -> None:
    ep = Epoll()
    files = [File(EPOLLIN) for _ in range(3)]
    for k, f in enumerate(files):
        ep.ctl(EPOLL_CTL_ADD, 10 + k, f, EPOLLIN, k)
    assert ep.wait(2) == [(EPOLLIN, 0), (EPOLLIN, 1)]
    assert ep.wait(2) == [(EPOLLIN, 2), (EPOLLIN, 0)]  # the one left over first


def test_oneshot_disables_until_mod() -> None:
    ep, f = Epoll(), File(EPOLLIN)
    ep.ctl(EPOLL_CTL_ADD, 4, f, EPOLLIN | EPOLLONESHOT, 4)
    assert ep.wait(1) == [(EPOLLIN, 4)]
    f.wake(WAKE_IN)
    assert ep.wait(1) == []
    ep.ctl(EPOLL_CTL_MOD, 4, f, EPOLLIN | EPOLLONESHOT, 9)
    assert ep.wait(1) == [(EPOLLIN, 9)]


@pytest.mark.parametrize("op, events, err", [
    (EPOLL_CTL_MOD, EPOLLIN, errno.ENOENT),
    (7, EPOLLIN, errno.EINVAL),
])
def test_ctl_errors(op: int, events: int, err: int) -> None:
    with pytest.raises(SockError) as e:
        Epoll().ctl(op, 4, File(), events, 0)
    assert e.value.errno == err
