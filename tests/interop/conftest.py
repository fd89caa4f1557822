"""Fixtures for the interop suite: each test gets its own network namespaces and TAP devices."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .linux import Netns, environment_problem, tool_versions
from .stackhost import STACK4, STACK6, StackOnTap, pcap_file, start_stack, tap_in

_problem: list[str | None] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.interop)


def pytest_report_header(config: pytest.Config) -> list[str]:
    if os.geteuid() != 0:
        return ["interop: not root, the interop tests will not run"]
    return ["interop: " + "; ".join(f"{k}: {v}" for k, v in tool_versions().items())]


@pytest.fixture(scope="session")
def interop_env() -> None:
    if not _problem:
        _problem.append(environment_problem())
    problem = _problem[0]
    if problem is None:
        return
    msg = f"INTEROP TESTS CANNOT RUN ON THIS MACHINE: {problem}"
    if os.environ.get("CI"):
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


@pytest.fixture
def make_netns(interop_env: None) -> Iterator[Callable[[], Netns]]:
    made: list[Netns] = []

    def make() -> Netns:
        ns = Netns()
        made.append(ns)
        return ns

    yield make
    for ns in reversed(made):
        ns.close()


@pytest.fixture
def netns(make_netns: Callable[[], Netns]) -> Netns:
    return make_netns()


@pytest.fixture
def host_on_tap(netns: Netns, tmp_path: Path) -> Iterator[StackOnTap]:
    """Linux (10.211.0.1, fd00:5ac:0:1::1) on tap0 in ``netns``; a stacklab Host (.2, ::2) on
    the other end, in a background thread. At the end tshark reads the capture: no malformed
    packet, no bad checksum."""
    tap = tap_in(netns)
    h = start_stack([(tap, [f"{STACK4}/24", f"{STACK6}/64"])], pcap_file(tmp_path))
    try:
        yield h
    finally:
        problems = h.stop()
    assert not problems, "tshark flags packets in the capture:\n" + "\n".join(problems)
