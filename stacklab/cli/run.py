"""``stacklab run FILE.toml``: run a scenario on the simulated network and summarize it."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from stacklab.cli.main import CliError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run", help="run a scenario file (TOML) on the simulated network",
        description="Run a scenario (nodes, links with impairments, apps) on the deterministic "
                    "simulated network. Same seed, same frames, byte for byte.")
    p.add_argument("file", metavar="FILE.toml", nargs="?", help="the scenario (see examples/)")
    p.add_argument("--seed", type=int, default=None, help="override the file's seed")
    p.add_argument("--pcap", metavar="DIR", help="write one pcap per link into DIR")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--trace", action="store_true",
                   help="print every trace event (to stderr with --json)")
    p.add_argument("--trace-file", metavar="F.jsonl", help="write trace events as JSON lines")
    p.add_argument("--list", action="store_true",
                   help="list the node kinds, link parameters and app kinds a scenario may use")
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from stacklab.net.network import SimulationError, TopologyError
    from stacklab.net.scenario import ScenarioError, run_scenario
    from stacklab.trace.events import Tracer

    if args.list:
        print_schema()
        return 0
    if not args.file:
        raise CliError("which scenario? e.g. stacklab run examples/ping.toml (--list: the schema)")
    tracer = None
    trace_fp = None
    if args.trace or args.trace_file:
        tracer = Tracer(keep=False)
        if args.trace:
            out = sys.stderr if args.json else sys.stdout
            tracer.add_sink(lambda ev: print(ev.line(), file=out))
        if args.trace_file:
            try:
                trace_fp = open(args.trace_file, "w", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise CliError(f"--trace-file: {exc}") from None
            tracer.add_jsonl(trace_fp)
    wall = time.perf_counter()
    try:
        summary = run_scenario(args.file, seed=args.seed, pcap=args.pcap, tracer=tracer)
    except (ScenarioError, TopologyError) as exc:
        raise CliError(str(exc)) from None
    except SimulationError as exc:  # a bug in a node or an app: show where
        import traceback

        print(f"stacklab run: internal error in the simulation: {exc}", file=sys.stderr)
        traceback.print_exception(exc.__cause__ or exc, file=sys.stderr)
        return 3
    except OSError as exc:
        raise CliError(f"{args.file}: {exc}") from None
    finally:
        if trace_fp is not None:
            trace_fp.close()
    wall = time.perf_counter() - wall
    status = 0 if all(app.get("ok") for app in summary["apps"]) else 1
    try:
        if args.json:
            print(json.dumps(summary, indent=2, default=str))
        else:
            print_human(summary, wall)
        sys.stdout.flush()
    except BrokenPipeError:  # `stacklab run x.toml | head`: the reader left, that is fine
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return status


def print_schema() -> None:
    from stacklab.net.apps import app_kinds, load_app_modules
    from stacklab.net.link import LINK_PARAMS, LinkParams
    from stacklab.net.scenario import LINK_KEYS, NODE_KINDS, TOP_KEYS

    load_app_modules()
    defaults = LinkParams()
    print(f"top level: {', '.join(k for k in TOP_KEYS if k not in ('node', 'link', 'app'))}")
    print(f"[[node]]: name, kind = {' | '.join(NODE_KINDS)} (switch: aging)")
    print(f"[[link]]: {', '.join(k for k in LINK_KEYS if k not in LINK_PARAMS)}, and")
    for key in LINK_PARAMS:
        print(f"    {key:<15} default {getattr(defaults, key)!r}")
    print("[[app]]: node, kind, and the kind's parameters:")
    for kind, spec in app_kinds().items():
        doc = spec.doc.removeprefix(f"{kind}: ")
        print(f"    {kind:<12} {', '.join(sorted(spec.params))}" + (f"  ({doc})" if doc else ""))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str) and len(value) > 16:  # sha256 and the like
        return value[:12] + "…"
    return str(value)


def print_human(summary: dict[str, Any], wall: float) -> None:
    title = summary["name"] or summary["scenario"]
    print(f"{title}: seed {summary['seed']}, {summary['time']:g} s simulated "
          f"in {wall:.2f} s wall")
    if summary["apps"]:
        print("apps:")
    for app in summary["apps"]:
        status = "ok  " if app.get("ok") else "FAIL"
        extra = " ".join(f"{k}={_fmt(v)}" for k, v in app.items()  # lists/tables: see --json
                         if k not in ("node", "kind", "ok", "error")
                         and not isinstance(v, list | dict))
        line = f"  {status} {app['kind']} on {app['node']}: {extra}"
        if not app.get("ok"):
            line += f"\n       error: {app.get('error', '?')}"
        print(line)
    print("nodes:")
    for name, node in summary["nodes"].items():
        c = node["counters"]
        drops = sum(v for k, v in c.items() if k.startswith("drop."))
        print(f"  {name:<10} {node['kind']:<7} rx {c.get('rx.frames', 0):>7}  "
              f"tx {c.get('tx.frames', 0):>7}  drops {drops}")
    print("links:")
    for name, dirs in summary["links"].items():
        for label, c in dirs.items():
            drops = ", ".join(f"{k[5:]} {v}" for k, v in c.items() if k.startswith("drop."))
            tail = f"  dropped: {drops}" if drops else ""
            print(f"  {name:<12} {label:<14} sent {c.get('tx.frames', 0):>7}  "
                  f"delivered {c.get('rx.frames', 0):>7}{tail}")
    for conn in summary["connections"]:
        states = " > ".join(conn.get("states", []))
        print(f"  tcp {conn.get('node')} {conn.get('local')} -> {conn.get('remote')}: {states}")
