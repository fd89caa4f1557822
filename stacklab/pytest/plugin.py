"""The pytest plugin: a seeded simulated network per test, and failures that say how to
reproduce them.

    def test_client_retries(simnet):             # a stacklab.net.network.Network, seeded
        a, b = simnet.add_host("a"), simnet.add_host("b")
        simnet.connect(a, b, loss=0.05)
        simnet.autoconfigure()
        b.spawn(serve())
        assert simnet.run(a.spawn(client()), until="60s") == ...

* ``--stacklab-seed N`` (default 0) seeds every ``simnet``;
* ``--stacklab-seeds K`` runs each test that uses ``simnet`` K times, seeds N .. N+K-1 (ids
  ``[seed=7]``); ``@pytest.mark.stacklab_seeds(50)`` asks for K seeds in the test itself;
* every ``simnet`` captures one pcap per link into the test's own temporary directory; when the
  test fails, the report has a ``stacklab`` section with the seed, that directory and the command
  that runs the same test on the same seed, frame for frame the same.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from stacklab.net.network import Network

_REPRO = pytest.StashKey[tuple[int, Path]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stacklab", "stacklab simulated network")
    group.addoption("--stacklab-seed", type=int, default=0, metavar="N",
                    help="seed of the simnet fixture (default 0)")
    group.addoption("--stacklab-seeds", type=int, default=None, metavar="K",
                    help="run each simnet test K times, seeds N .. N+K-1")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "stacklab_seeds(k): run this simnet test over k seeds "
                                       "(--stacklab-seeds overrides it)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "simnet" not in metafunc.fixturenames:
        return
    count = metafunc.config.getoption("stacklab_seeds")
    if count is None:
        marker = metafunc.definition.get_closest_marker("stacklab_seeds")
        count = int(marker.args[0]) if marker is not None else None
    if count is None:
        return
    if count < 1:
        raise pytest.UsageError(f"--stacklab-seeds must be at least 1, not {count}")
    base = metafunc.config.getoption("stacklab_seed")
    seeds = list(range(base, base + count))
    metafunc.parametrize("stacklab_seed", seeds, indirect=True,
                         ids=[f"seed={s}" for s in seeds])


@pytest.fixture
def stacklab_seed(request: pytest.FixtureRequest) -> int:
    """The seed of this test's ``simnet``."""
    return int(getattr(request, "param", request.config.getoption("stacklab_seed")))


@pytest.fixture
def simnet(request: pytest.FixtureRequest, stacklab_seed: int,
           tmp_path: Path) -> Iterator[Network]:
    """A fresh :class:`~stacklab.net.network.Network` seeded with ``stacklab_seed``, capturing
    every link into ``<tmp_path>/pcap``; closed after the test."""
    pcaps = tmp_path / "pcap"
    net = Network(seed=stacklab_seed)
    net.capture(pcaps)
    request.node.stash[_REPRO] = (stacklab_seed, pcaps)
    try:
        yield net
    finally:
        net.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]
                              ) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    repro = item.stash.get(_REPRO, None)
    if repro is None or not report.failed:
        return
    seed, pcaps = repro
    path = item.nodeid.split("::", 1)[0]
    name = getattr(item, "originalname", item.name)
    report.sections.append((
        "stacklab", f"seed {seed}; pcaps in {pcaps}{os.sep}\n"
                    f"reproduce: pytest '{path}::{name}' --stacklab-seed {seed}"))
