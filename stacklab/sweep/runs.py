"""One run of a sweep, and the engines that run many: a local process pool or a Dask cluster.

A run is :func:`stacklab.scenario.runner.run_scenario` on the scenario dict with the point's
values written in, with one seed; its result is its rows of the table (:mod:`.table`), so a
run depends only on its parameters and seed, whichever process or machine runs it.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from stacklab.scenario.runner import check_scenario, run_scenario

from .grid import Point, SweepError, apply
from .table import Row, error_row, rows_of

__all__ = ["Run", "run_one", "run_dask", "run_pool"]

# Dask: how often a run is tried again after an exception in it (a run that raises is already a
# row, so these are for the worker's own failures); a run whose worker dies is rescheduled by the
# scheduler itself, up to its `distributed.scheduler.allowed-failures` (3 by default).
DASK_RETRIES = 2


@dataclass(frozen=True)
class Run:
    index: int  # its place in the sweep: the table is sorted by it
    point: Point
    seed: int


def run_one(data: dict[str, Any], path: str, keys: Sequence[str], run: Run) -> list[Row]:
    """The rows of one run: its apps and connections, or one row with the error that stopped
    it (a bad value, a bug in the simulation)."""
    try:
        scn = check_scenario(apply(data, keys, run.point), path)
        summary = run_scenario(scn, seed=run.seed)
    except Exception as exc:  # a failed run is a row of the table, not the end of the sweep
        return [error_row("error", f"{type(exc).__name__}: {exc}")]
    return rows_of(summary)


Done = Callable[[Run, list[Row]], None]


# -- the local process pool -------------------------------------------------------------------
_job: tuple[dict[str, Any], str, tuple[str, ...]] | None = None


def _init(data: dict[str, Any], path: str, keys: tuple[str, ...]) -> None:
    global _job
    _job = (data, path, keys)


def _pool_run(run: Run) -> list[Row]:
    assert _job is not None, "the pool's initializer sets the job"
    return run_one(*_job, run)


def run_pool(data: dict[str, Any], path: str, keys: Sequence[str], runs: Sequence[Run],
             done: Done, workers: int | None = None) -> None:
    """Run on ``workers`` local processes (default: the usable cores), calling ``done`` in the
    order runs finish. A worker that dies makes its run a ``lost`` row."""
    workers = workers or len(os.sched_getaffinity(0))
    if not runs:
        return
    pool = cf.ProcessPoolExecutor(max_workers=min(workers, len(runs)), initializer=_init,
                                  initargs=(data, path, tuple(keys)))
    try:
        futures = {pool.submit(_pool_run, r): r for r in runs}
        for fut in cf.as_completed(futures):
            run = futures[fut]
            try:
                rows = fut.result()
            except Exception as exc:  # BrokenProcessPool: the worker process died
                rows = [error_row("lost", f"{type(exc).__name__}: {exc}")]
            done(run, rows)
    finally:  # on ^C too: the runs not started are dropped, not waited for
        pool.shutdown(wait=True, cancel_futures=True)


# -- Dask ---------------------------------------------------------------------------------------
def _dask_client(address: str) -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise SweepError("--dask needs dask.distributed: pip install 'stacklab[dask]'") from None
    try:
        return Client(address, timeout="10s")  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as exc:
        raise SweepError(f"--dask {address}: cannot reach the scheduler: {exc}") from None


def run_dask(data: dict[str, Any], path: str, keys: Sequence[str], runs: Sequence[Run],
             done: Done, address: str | Any) -> None:
    """Run on the Dask cluster whose scheduler is at ``address`` (or on a ``Client``), calling
    ``done`` in the order runs finish. A run whose worker dies is rescheduled by Dask; one that
    keeps killing workers, or fails after Dask's retries, is a ``lost`` row."""
    from distributed import as_completed

    client = _dask_client(address) if isinstance(address, str) else address
    try:
        # the scenario goes to every worker once, not with each run
        [job] = client.scatter([(data, path, tuple(keys))], broadcast=True)
        # a key per run of this sweep: Dask must not take two sweeps' runs for one result
        token = hashlib.sha256(repr((data, path, tuple(keys), [(r.point, r.seed) for r in runs])
                                    ).encode()).hexdigest()[:16]
        futures = {client.submit(_dask_run, job, r, key=f"stacklab-run-{token}-{r.index}",
                                 retries=DASK_RETRIES, pure=False): r for r in runs}
        for fut in as_completed(futures):  # type: ignore[no-untyped-call]
            run = futures[fut]
            try:
                rows = fut.result()
            except Exception as exc:  # KilledWorker, or the worker's own failure
                rows = [error_row("lost", f"{type(exc).__name__}: {exc}")]
            done(run, rows)
            fut.release()
    finally:
        if isinstance(address, str):
            client.close()


def _dask_run(job: tuple[dict[str, Any], str, tuple[str, ...]], run: Run) -> list[Row]:
    return run_one(*job, run)
