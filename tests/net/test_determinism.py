"""Determinism, the simulator's first promise: the same scenario and seed give the same bytes in
every process, whatever the hash seed and the memory layout (issue 20 item 5)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import stacklab

_SERVERS = """
seed = 11
duration = "300ms"

[[node]]
name = "srv"
kind = "host"

[[node]]
name = "cli"
kind = "host"

[[link]]
ends = ["srv", "cli"]
delay = "5ms"
rate = "10Mbit"
loss = 0.01

[[app]]
node = "srv"
kind = "http-server"
port = 80
bytes = "2MB"

[[app]]
node = "srv"
kind = "smtp-server"
port = 25

[[app]]
node = "srv"
kind = "ftp-server"
port = 21
bytes = "2MB"
"""

_CLIENTS = """
[[app]]
node = "cli"
kind = "http-get"
to = "srv"
port = 80
path = "/f{i}"
start = "{i}ms"

[[app]]
node = "cli"
kind = "smtp-send"
to = "srv"
port = 25
from = "a@cli"
rcpt = "b@srv"
bytes = "1MB"
start = "{i}ms"

[[app]]
node = "cli"
kind = "ftp-get"
to = "srv"
port = 21
path = "f{i}.bin"
start = "{i}ms"
"""


def _pcap_in_subprocess(scenario: Path, out: Path, hashseed: int) -> bytes:
    out.mkdir()
    code = ("import sys; from stacklab.scenario.runner import run_scenario; "
            "run_scenario(sys.argv[1], pcap=sys.argv[2])")
    env = {**os.environ, "PYTHONHASHSEED": str(hashseed)}
    subprocess.run([sys.executable, "-c", code, str(scenario), str(out)], env=env, check=True,
                   timeout=120)
    return (out / "srv-cli.pcap").read_bytes()


def test_overlapping_http_ftp_smtp_give_the_same_pcap_across_hash_seeds(tmp_path: Path) -> None:
    # nine transfers still running when the scenario ends: the servers close their connections
    # then, and the order of those FINs must not follow memory addresses
    scenario = tmp_path / "overlap.toml"
    scenario.write_text(_SERVERS + "".join(_CLIENTS.format(i=i) for i in (1, 2, 3)))
    pcaps = [_pcap_in_subprocess(scenario, tmp_path / f"h{seed}", seed) for seed in range(6)]
    assert len(pcaps[0]) > 100_000
    assert all(p == pcaps[0] for p in pcaps[1:])


def test_closing_a_network_cancels_its_tasks_oldest_first() -> None:
    cancelled: list[int] = []

    async def worker(i: int) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(i)
            raise

    async def main() -> None:
        # tasks that lived and died first leave their memory to the next ones in another order
        await asyncio.gather(*(asyncio.sleep(0) for _ in range(200)))
        for i in range(200):
            asyncio.ensure_future(worker(i))
        await asyncio.sleep(1)

    net = stacklab.Network(seed=1)
    net.run(main())
    net.close()
    assert cancelled == list(range(200))
