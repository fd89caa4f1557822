"""The issue's acceptance sweep: 1,000 runs of examples/lossy-tcp.toml over a grid, on a
LocalCluster of 2 workers and on a process pool: the same table, every run there, the plots.
Minutes of CPU: it runs only when asked for by its marker,
`pytest -m slow tests/sweep/test_big_sweep.py -s` (which prints both wall times)."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest

from stacklab.sweep import Sweep, parse_set, run_sweep

ROOT = Path(__file__).resolve().parents[2]
# 10 losses x 2 delays x 2 congestion controls x 25 seeds = 1,000 runs of 1 MB each
SETS = ["link.r1-server.loss=0:0.045:0.005", "link.r1-server.delay=5ms,25ms",
        "app.client.congestion=reno,cubic"]


@pytest.mark.slow
def test_a_thousand_runs_on_a_localcluster_and_a_pool_give_one_table(
        request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("1,000 runs: not in the default suite; run it with -m slow")
    distributed = pytest.importorskip("distributed")
    params = [parse_set(s) for s in SETS]
    scenario = str(ROOT / "examples" / "lossy-tcp.toml")
    walls = {}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as c, \
            distributed.Client(c) as client:
        t = time.perf_counter()
        dask = run_sweep(Sweep(scenario, params, seeds=25, dask=client, out=str(tmp_path / "d")))
        walls["LocalCluster, 2 workers"] = time.perf_counter() - t
    t = time.perf_counter()
    pool = run_sweep(Sweep(scenario, params, seeds=25, workers=2, out=str(tmp_path / "p")))
    walls["process pool, 2 workers"] = time.perf_counter() - t
    for name, wall in walls.items():
        print(f"1,000 runs on a {name}: {wall:.1f} s wall")
    assert (dask.runs, dask.failed, pool.runs, pool.failed) == (1000, 0, 1000, 0)
    assert Path(dask.csv).read_bytes() == Path(pool.csv).read_bytes()
    with open(dask.csv, newline="") as fp:
        rows = list(csv.DictReader(fp))
    senders = [r for r in rows if r["label"] == "tcp-send on client"]
    assert len(senders) == 1000 and len({r["run"] for r in rows}) == 1000
    ok = [r for r in senders if r["ok"] == "true"]
    assert len(ok) > 990, [r["error"] for r in senders if r["ok"] != "true"][:5]
    page = Path(dask.html).read_text()
    assert page.count("<svg") >= 4
    for line in ("link.r1-server.delay=5ms, app.client.congestion=cubic",
                 "link.r1-server.delay=25ms, app.client.congestion=reno"):
        assert f">{line}</text>" in page
