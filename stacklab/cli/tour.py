"""`stacklab tour`: walk through every concept of the seed, each as a simulated scenario."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from stacklab import __version__


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("tour", help="walk through every concept, each as a simulated scenario",
                       description="A guided tour: each step builds a small simulated network, "
                                   "runs it and prints what happened (a sequence diagram and "
                                   "the facts it measured).")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="steps to run, by name or by the number --list shows (default: all)")
    p.add_argument("--list", action="store_true", help="list the steps and exit")
    p.add_argument("--lang", choices=["en", "ko"], default="en", help="language of explanations")
    p.add_argument("--pcap", type=Path, metavar="DIR", help="keep each step's captures in DIR")
    p.add_argument("--html", type=Path, metavar="DIR", help="write a browsable report to DIR")
    p.add_argument("--pause", action="store_true",
                   help="wait for Enter between steps (only when stdin is a terminal)")
    p.add_argument("--seed", type=int, default=1,
                   help="seed of the steps' random choices (loss, ports, ISNs; default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stacklab.cli.main import CliError
    from stacklab.tour import runner

    names = runner.available()
    if args.list:
        print(f"stacklab {__version__} tour: {len(names)} steps")
        for i, name in enumerate(names, 1):
            print(f"{i:3d}. {name:<18} {runner.title(name, args.lang)}")
        return 0
    chosen = [names[int(n) - 1] if n.isdigit() and 1 <= int(n) <= len(names) else n
              for n in args.names] or names
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise CliError(f"unknown tour step {unknown[0]!r}; `stacklab tour --list` lists them")
    ctx = runner.StepContext(lang=args.lang, pcap_dir=args.pcap, seed=args.seed)
    for option, path in (("--pcap", args.pcap), ("--html", args.html)):  # before any step runs
        if path is None:
            continue
        if path.exists() and not path.is_dir():
            raise CliError(f"{option} {path}: not a directory")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"{option} {path}: cannot create the directory: "
                           f"{exc.strerror or exc}") from None
    sections = []
    from rich.console import Console
    from rich.progress import Progress

    class _Console(Console):
        def on_broken_pipe(self) -> None:  # rich exits 1 here; main() treats it as for `run`
            self.quiet = True
            raise BrokenPipeError

    console = _Console(width=80)
    pause = args.pause and sys.stdin.isatty()  # piped or scripted input: no waiting
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("tour", total=len(chosen))
        for i, name in enumerate(chosen, 1):
            progress.update(task, description=runner.title(name, args.lang))
            result = runner.run_step(name, ctx)
            progress.console.print(runner.render_step(name, result, args.lang, i, len(chosen)),
                                   markup=False, highlight=False, end="")
            sections.append(_report_step(name, result, args))
            progress.advance(task)
            if pause and i < len(chosen):
                progress.stop()
                print(f"-- Enter: step {i + 1}/{len(chosen)} --", end="", file=sys.stderr,
                      flush=True)
                if not sys.stdin.readline():  # end of input: the rest without waiting
                    pause = False
                progress.start()
    if args.html:
        from stacklab.report.tour import tour_page

        try:
            args.html.mkdir(parents=True, exist_ok=True)
            (args.html / "index.html").write_text(
                tour_page(sections, "stacklab tour", lang=args.lang, base=str(args.html)),
                "utf-8")
        except OSError as exc:
            raise CliError(f"--html {args.html}: {exc.strerror or exc}") from None
        print(f"report written to {args.html / 'index.html'}", file=sys.stderr)
    return 0


def _report_step(name: str, result: Any, args: argparse.Namespace) -> Any:
    from stacklab.report.tour import TourStep
    from stacklab.tour import runner

    pcaps = sorted(str(p) for p in (args.pcap / name).glob("*.pcap")) if args.pcap else []
    return TourStep(runner.title(name, args.lang), runner.explanation(name, args.lang),
                    result.table(), result.svg, list(result.notes), pcaps)
