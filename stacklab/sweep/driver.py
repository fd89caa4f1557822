"""A sweep from start to end: the grid of runs, the engine, the table, the page."""

from __future__ import annotations

import os
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .grid import Param, SweepError, check, grid
from .report import write_html
from .runs import Run, run_dask, run_pool
from .table import FIGURES, Row, as_text, columns, read_csv, text, write_csv, write_parquet

__all__ = ["Sweep", "SweepResult", "run_sweep"]

SAVE_EVERY = 5.0  # seconds between two writes of the table while the sweep runs (for --resume)


@dataclass
class Sweep:
    path: str
    params: Sequence[Param] = ()
    seeds: int = 1
    zipped: bool = False
    workers: int | None = None  # the process pool's size (default: the usable cores)
    dask: str | Any | None = None  # a scheduler address, or a distributed.Client
    out: str = "."
    resume: bool = False

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.params]


@dataclass
class SweepResult:
    csv: str
    html: str
    parquet: str | None
    runs: int  # in the sweep
    ran: int  # by this call (the others were in the table: --resume)
    failed: int  # runs with a failure row
    wall: float
    cells: list[list[str]] = field(repr=False, default_factory=list)


def load(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fp:
            return tomllib.load(fp)
    except OSError as exc:
        raise SweepError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{path}: not valid TOML: {exc}") from None


def plan(sweep: Sweep, data: dict[str, Any]) -> list[Run]:
    """Every run of the sweep, in table order: each point of the grid with each seed (the file's
    seed, then the next ones)."""
    if sweep.seeds < 1:
        raise SweepError(f"--seeds must be at least 1, not {sweep.seeds}")
    first = data.get("seed", 1)
    if isinstance(first, bool) or not isinstance(first, int):
        first = 1  # check() reports the file's bad seed
    points = grid(sweep.params, zipped=sweep.zipped)
    seeds = range(first, first + sweep.seeds)
    return [Run(i, point, seed)
            for i, (point, seed) in enumerate((p, s) for p in points for s in seeds)]


def _key(cells: Sequence[str], nkeys: int) -> tuple[str, ...]:
    """A run's identity in the table: its seed and parameter values (columns 1..nkeys+1)."""
    return tuple(cells[1:2 + nkeys])


def identity(run: Run) -> tuple[str, ...]:
    """The same identity for a run of the plan."""
    return (text(run.seed), *map(text, run.point))


def run_sweep(sweep: Sweep, *, progress: Callable[[int, int], None] | None = None) -> SweepResult:
    """Run the sweep, write ``results.csv`` (and ``results.parquet`` when pyarrow is there) and
    ``results.html`` into ``sweep.out``. ``progress(done, total)`` after each run."""
    data = load(sweep.path)
    check(data, sweep.path, sweep.params)
    runs = plan(sweep, data)
    keys = sweep.keys
    nkeys = len(keys)
    os.makedirs(sweep.out, exist_ok=True)
    csv_path = os.path.join(sweep.out, "results.csv")

    # the rows of runs done before (--resume), by run identity; "lost" runs are tried again
    old: dict[tuple[str, ...], list[list[str]]] = {}
    if sweep.resume and os.path.exists(csv_path):
        header, cells = read_csv(csv_path)
        if header != columns(keys):
            had = ", ".join(header[2:-len(FIGURES)]) or "none"
            raise SweepError(f"--resume: {csv_path} has the parameters {had} and this sweep "
                             f"{', '.join(keys) or 'none'}: use another --out")
        kind = header.index("kind")
        for row in cells:
            old.setdefault(_key(row, nkeys), []).append(row)
        old = {k: rows for k, rows in old.items() if not any(r[kind] == "lost" for r in rows)}

    by_key = {identity(r): r for r in runs}
    todo = [r for r in runs if identity(r) not in old]
    results: dict[int, list[list[str]]] = {}
    for k, rows in old.items():
        if k in by_key:
            index = by_key[k].index
            results[index] = [[str(index), *row[1:]] for row in rows]

    def table() -> list[list[str]]:
        ordered = [row for i in sorted(results) for row in results[i]]
        extra = [row for k, rows in old.items() if k not in by_key for row in rows]
        return ordered + extra  # rows of runs not in this grid are kept, after it

    last_save = time.monotonic()
    done_count = len(runs) - len(todo)

    def done(run: Run, rows: list[Row]) -> None:
        nonlocal last_save, done_count
        full = [{"run": run.index, "seed": run.seed, **dict(zip(keys, run.point, strict=True)),
                 **row} for row in rows]
        results[run.index] = as_text(full, keys)
        done_count += 1
        if time.monotonic() - last_save > SAVE_EVERY:
            write_csv(csv_path, keys, table())
            last_save = time.monotonic()
        if progress is not None:
            progress(done_count, len(runs))

    if progress is not None:
        progress(done_count, len(runs))
    wall = time.perf_counter()
    try:
        if sweep.dask is not None:
            run_dask(data, sweep.path, keys, todo, done, sweep.dask)
        else:
            run_pool(data, sweep.path, keys, todo, done, sweep.workers)
    finally:
        cells = table()
        write_csv(csv_path, keys, cells)  # what finished is kept, even after ^C
    wall = time.perf_counter() - wall
    header = columns(keys)
    parquet = os.path.join(sweep.out, "results.parquet")
    if not write_parquet(parquet, header, cells):
        parquet = ""
    html = os.path.join(sweep.out, "results.html")
    write_html(html, sweep.path, sweep.params, sweep.seeds, sweep.zipped, header, cells)
    entity, ok = header.index("entity"), header.index("ok")
    failed = {row[0] for row in cells if row[entity] == "run" and row[ok] == "false"}
    return SweepResult(csv_path, html, parquet or None, len(runs), len(todo), len(failed), wall,
                       cells)
