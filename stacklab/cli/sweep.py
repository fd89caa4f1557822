"""``stacklab sweep FILE.toml --set KEY=V1,V2 ...``: run a scenario over a grid of parameters
and seeds, on local processes or a Dask cluster; a table, a page of plots, a summary."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stacklab.cli.main import CliError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sweep", help="run a scenario over a grid of parameters and seeds (process pool or Dask)",
        description="Run a scenario once per point of a parameter grid and per seed; write "
                    "results.csv (and .parquet with pyarrow) and results.html.",
        epilog="keys: link.A-B.PARAM (or link.A-B.forward.PARAM), node.NAME.KEY "
               "(node.NAME.sysctl.net.ipv4.tcp_ecn), app.NODE.KEY (app.NODE:KIND.KEY), duration; "
               "values: V1,V2,... or START:STOP:STEP (STOP included, e.g. 0:0.1:0.01)")
    p.add_argument("file", metavar="FILE.toml", help="the scenario (see examples/)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a parameter and its values (repeatable)")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="N seeds per point: the file's seed and the N-1 next (default 1)")
    p.add_argument("--zip", action="store_true",
                   help="pair the lists (i-th values together) instead of the cartesian grid")
    p.add_argument("--workers", type=int, default=None, metavar="K",
                   help="local worker processes (default: the cores)")
    p.add_argument("--dask", metavar="tcp://HOST:8786",
                   help="run on this Dask scheduler's workers (pip install 'stacklab[dask]')")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="where the results go (default: FILE's name + '-sweep')")
    p.add_argument("--resume", action="store_true",
                   help="skip the runs already in DIR/results.csv")
    p.set_defaults(func=sweep_command)


def sweep_command(args: argparse.Namespace) -> int:
    import os

    from stacklab.sweep import Sweep, SweepError, parse_set, run_sweep
    from stacklab.sweep.report import summary_rows
    from stacklab.sweep.table import columns

    if args.workers is not None and args.workers < 1:
        raise CliError(f"--workers must be at least 1, not {args.workers}")
    out = args.out or os.path.splitext(os.path.basename(args.file))[0] + "-sweep"
    try:
        sweep = Sweep(args.file, [parse_set(s) for s in args.sets], seeds=args.seeds,
                      zipped=args.zip, workers=args.workers, dask=args.dask, out=out,
                      resume=args.resume)
        bar = _Progress() if sys.stderr.isatty() else None
        try:
            result = run_sweep(sweep, progress=bar)
        finally:
            if bar is not None:
                bar.stop()
    except SweepError as exc:
        raise CliError(str(exc)) from None
    head, rows, more = summary_rows(columns(sweep.keys), result.cells, sweep.keys)
    _print_table(head, rows)
    if more:
        print(f"... and {more} more rows: see {result.csv}")
    print(f"{result.runs} runs ({result.ran} run now, {result.runs - result.ran} already in "
          f"the table), {result.failed} failed, {result.wall:.1f} s wall")
    print(f"table: {result.csv}" + (f" and {result.parquet}" if result.parquet else "")
          + f"; plots: {result.html}")
    return 1 if result.failed else 0


def _print_table(head: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


class _Progress:
    """A progress bar with the ETA on the terminal (stderr), only when it is a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.progress = Progress("sweep", BarColumn(), MofNCompleteColumn(), "ETA",
                                 TimeRemainingColumn(), console=Console(stderr=True),
                                 transient=True)
        self.task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("sweep", total=total, completed=done)
        self.progress.update(self.task, completed=done)

    def stop(self) -> None:
        self.progress.stop()
