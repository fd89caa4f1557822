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


def test_short_fuzz_run_escapes_no_exception_at_all():
    _, found = short_run(11, 2000)
    assert [crash_key(e) for e in found] == []


REGRESSIONS = sorted((CORPUS.parent / "regressions").glob("*.bin"))
# the fuzz findings not fixed yet, by file name (the fix flips its strict xfail)
OPEN_FINDINGS: dict[str, str] = {}  # ra-prefix-length-200 (issue 20 item 1) is fixed


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


def test_with_dad_off_a_spoofed_na_does_not_remove_an_address():
    """RFC 4862 §5.4: DupAddrDetectTransmits 0 means no DAD — the address is assigned at once
    (Linux: preferred, not tentative). An NA for it from another node is then a conflict to
    log (RFC 4861 §7.2.5), not a DAD failure: the fuzzer removed R's fd01::1 so, and A lost
    its IPv6 path to B."""
    from stacklab.stack.host import Host
    from stacklab.wire.addr import ip_bytes
    from stacklab.wire.icmpv6 import NeighborAdvertisement, TargetLinkAddrOpt
    from stacklab.wire.ipv6 import build_ipv6
    from stacklab.wire.proto import PROTO_ICMPV6

    from .frames import ALL_NODES, MAC_X, X6, eth

    h = Host("h")
    h.ndp.dad_transmits = 0
    h.add_interface("eth0", bytes.fromhex("020000000001"))
    h.add_address(0, "fd01::1/64")
    mine = ip_bytes("fd01::1")
    na = NeighborAdvertisement(mine, override=True, options=[TargetLinkAddrOpt(MAC_X)]).build(
        X6, ALL_NODES)
    h.receive_frame(0, eth(build_ipv6(X6, ALL_NODES, PROTO_ICMPV6, na, hop_limit=255),
                           dst=b"\x33\x33\x00\x00\x00\x01", src=MAC_X), 1.0)
    assert "fd01::1" in h.addresses()
