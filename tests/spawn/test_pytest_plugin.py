"""The pytest plugin (stacklab.pytest.plugin), run inside pytest's own pytester."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

pytest_plugins = ("pytester",)

# a test whose outcome depends on the seed: the first frame lost or not on a lossy link
TEST_FILE = """
import asyncio

def lost_first(simnet):
    a, b = simnet.add_host("a"), simnet.add_host("b")
    link = simnet.connect(a, b, loss=0.5)
    simnet.autoconfigure()
    async def main():
        await a.ping("b", count=1, timeout=1)
    simnet.run(main())
    return link.ab.counters["drop.loss"] > 0

def test_ping(simnet, stacklab_seed):
    assert not lost_first(simnet), "lost"
"""


def test_the_plugin_is_an_installed_pytest11_entry_point() -> None:
    points = importlib.metadata.entry_points(group="pytest11")
    assert [p.value for p in points if p.name == "stacklab"] == ["stacklab.pytest.plugin"]


def test_seeds_repeat_a_test_and_a_failure_names_seed_pcaps_and_command(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_lossy=TEST_FILE)
    result = pytester.runpytest("--stacklab-seeds", "6", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 6
    assert outcomes.get("failed", 0) >= 1  # loss=0.5 over 6 seeds
    text = result.stdout.str()
    failed = [line.split("[seed=")[1].split("]")[0] for line in text.splitlines()
              if line.startswith("FAILED") and "[seed=" in line]
    seed = failed[0]
    result.stdout.fnmatch_lines([f"*seed {seed}; pcaps in *pcap*",
                                 f"*reproduce: pytest 'test_lossy.py::test_ping' "
                                 f"--stacklab-seed {seed}"])
    # the printed command reproduces the failure, and the pcap directory holds the capture
    again = pytester.runpytest("test_lossy.py::test_ping", "--stacklab-seed", seed,
                               "-p", "no:cacheprovider")
    again.assert_outcomes(failed=1)
    pcap_dir = next(line for line in again.stdout.lines if "pcaps in" in line)
    path = pcap_dir.split("pcaps in ", 1)[1].strip()
    assert (Path(path) / "a-b.pcap").stat().st_size > 24  # more than the pcap header


def test_a_marker_asks_for_seeds_and_the_seed_option_moves_them(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_marked="""
import pytest

@pytest.mark.stacklab_seeds(3)
def test_seed(simnet, stacklab_seed):
    assert simnet.seed == stacklab_seed
    print("SEED", stacklab_seed)

def test_plain(simnet):
    assert simnet.seed == 40
""")
    result = pytester.runpytest("--stacklab-seed", "40", "-v", "-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*test_seed?seed=40?*", "*test_seed?seed=41?*",
                                 "*test_seed?seed=42?*"])
