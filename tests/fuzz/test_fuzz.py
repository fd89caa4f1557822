"""The short fuzz runs of `make test` (the long ones: `make fuzz`), and the seed corpus."""

from __future__ import annotations

import random

import pytest

from .bench import Bench
from .run import CORPUS, Session, crash_key, known_crash, load_corpus, mutate, seed_inputs

SHORT_FRAMES = 20_000


def short_run(seed: int, frames: int) -> tuple[Session, list[BaseException]]:
    """``frames`` seeded mutations of the corpus; the bench rebuilt after each exception."""
    rng = random.Random(seed)
    pool = load_corpus()
    session = Session(seed, verify_every=500)
    found: list[BaseException] = []
    for _ in range(frames):
        try:
            session.feed(mutate(rng, rng.choice(pool), pool))
        except Exception as e:  # noqa: BLE001 - collected: the test decides
            found.append(e)
            session.rebuild()
    session.bench.verify()
    return session, found


def test_the_corpus_in_the_repo_is_what_the_builders_make():
    """tests/fuzz/corpus is written by `python -m tests.fuzz.run --write-corpus`."""
    assert {p.stem: p.read_bytes() for p in CORPUS.glob("*.bin")} == seed_inputs()


def test_every_seed_is_accepted_without_harm():
    b = Bench()
    for data in load_corpus():
        s = Session()
        s.bench = b
        s.feed(data)
    b.verify()
    assert b.stats["frames"] == len(load_corpus())


@pytest.mark.parametrize("seed", [1, 11])
def test_short_fuzz_run_escapes_only_known_crashes_and_connections_survive(seed):
    session, found = short_run(seed, SHORT_FRAMES)
    unknown = [crash_key(e) for e in found if known_crash(e) is None]
    assert unknown == []
    st = session.bench.stats
    assert st["verified"] >= SHORT_FRAMES // 500 - len(found) - st["diverted"]
    fp = session.bench.footprint()
    assert fp["a.tcp.conns"] <= 8 and fp["a.neigh"] <= 64 and fp["r.neigh"] <= 64


@pytest.mark.xfail(strict=True, reason="issue 20 item 1: an RA's prefix length > 128 raises "
                                       "ValueError in route masking")
def test_short_fuzz_run_escapes_no_exception_at_all():
    _, found = short_run(11, 2000)
    assert [crash_key(e) for e in found] == []


REGRESSIONS = sorted((CORPUS.parent / "regressions").glob("*.bin"))
# the fuzz findings not fixed yet, by file name (the fix flips its strict xfail)
OPEN_FINDINGS = {"ra-prefix-length-200": "issue 20 item 1: an RA's prefix length > 128 raises "
                                         "ValueError in route masking"}


def _open_finding(stem: str) -> list[pytest.MarkDecorator]:
    if stem not in OPEN_FINDINGS:
        return []
    return [pytest.mark.xfail(strict=True, raises=ValueError, reason=OPEN_FINDINGS[stem])]


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem, marks=_open_finding(p.stem))
                                  for p in REGRESSIONS])
def test_fuzz_findings_stay_fixed(path):
    """Each input the fuzzers found a crash with (tests/fuzz/regressions): no exception, the
    connections still carry data."""
    s = Session()
    s.feed(path.read_bytes())
    s.bench.verify()
