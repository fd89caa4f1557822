"""`stacklab packetdrill FILE.pkt...`: run packetdrill scripts against a stacklab host on
virtual time (no root, no TAP). Exit status 0 only when every script passed."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("packetdrill", help="run packetdrill scripts against the stack")
    p.add_argument("scripts", nargs="+", type=Path, metavar="FILE.pkt",
                   help="scripts (a directory: every .pkt under it)")
    p.add_argument("--tolerance_usecs", type=int, metavar="N",
                   help="timing tolerance (default: the script's, else 4000)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--markdown", action="store_true",
                   help="print conformance tables (by directory, then by script) in Markdown")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print each script's packet trace and notes")
    p.add_argument("--pcap", type=Path, metavar="DIR", help="write each script's capture to DIR")
    p.set_defaults(func=run)


def _expand(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        out += sorted(p.rglob("*.pkt")) if p.is_dir() else [p]
    return out


def run(args: argparse.Namespace) -> int:
    from stacklab.cli.main import CliError
    from stacklab.packetdrill import report
    from stacklab.packetdrill.runner import run_script

    scripts = _expand(args.scripts)
    missing = [p for p in scripts if not p.is_file()]
    if missing:
        raise CliError(f"no such script: {missing[0]}")
    if args.pcap:
        args.pcap.mkdir(parents=True, exist_ok=True)
    tol = args.tolerance_usecs / 1e6 if args.tolerance_usecs is not None else None
    results = []
    taken: set[str] = set()
    for path in scripts:
        pcap = None
        if args.pcap:
            name = path.stem
            if name in taken:  # the same name in two directories: prefix the directory's
                name = f"{path.parent.name}-{name}"
            taken.add(name)
            pcap = args.pcap / (name + ".pcap")
        r = run_script(path, tolerance=tol, pcap=pcap)
        results.append(r)
        if not (args.json or args.markdown):
            print(report.line(r))
            if r.status != "PASS" and "\n" in r.message:
                print("\n".join("    " + ln for ln in r.message.splitlines()[1:]))
            if args.verbose:
                for t in r.trace:
                    print("    " + t)
                for n in r.notes:
                    print("    note: " + n)
    if args.json:
        print(report.as_json(results))
    elif args.markdown:
        roots = [p if p.is_dir() else p.parent for p in args.scripts]
        print(report.markdown(results, Path(os.path.commonpath([str(p) for p in roots]))))
    else:
        print(report.summary(results))
    sys.stdout.flush()
    return 0 if all(r.status == "PASS" for r in results) else 1
