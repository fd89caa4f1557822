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
    p.add_argument("--diagram", metavar="A,B[,C]",
                   help="draw a sequence diagram of the frames between these nodes")
    p.add_argument("--only", metavar="KINDS",
                   help="diagram only these frames: tcp,udp,icmp,icmpv6,arp,ndp,ip (comma list)")
    p.add_argument("--svg", metavar="F.svg", help="write the diagram as SVG too")
    p.add_argument("--html", metavar="F.html",
                   help="write the run's report: results, topology, diagrams, plots, pcap links")
    p.add_argument("--topology", metavar="F.svg", help="draw the topology as SVG")
    p.add_argument("--stats", action="store_true",
                   help="print per-connection (bytes, retransmits, srtt, rto, cwnd, mss, pmtu) "
                        "and per-node figures")
    p.add_argument("--plot", metavar="F.png",
                   help="plot cwnd and throughput against time (needs matplotlib: the plot extra)")
    p.add_argument("--list", action="store_true",
                   help="list the node kinds, link parameters and app kinds a scenario may use")
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from stacklab.net.network import SimulationError, TopologyError
    from stacklab.scenario.runner import ScenarioError, run_scenario
    from stacklab.trace.events import Tracer

    if args.list:
        print_schema()
        return 0
    if not args.file:
        raise CliError("which scenario? e.g. stacklab run examples/ping.toml (--list: the schema)")
    lifelines = _lifelines(args)
    kinds = _kinds(args)
    if args.svg and not lifelines:
        raise CliError("--svg draws the diagram: say which nodes with --diagram a,b")
    want_events = bool(lifelines) or args.stats or bool(args.plot) or bool(args.html)
    tracer = None
    trace_fp = None
    if args.trace or args.trace_file or want_events:
        tracer = Tracer(keep=want_events)
        if args.trace:
            out = sys.stderr if args.json else sys.stdout
            tracer.add_sink(_PrintSink(out))
        if args.trace_file:
            try:
                trace_fp = open(args.trace_file, "w", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise CliError(f"--trace-file: {exc}") from None
            tracer.add_jsonl(trace_fp)
    wall = time.perf_counter()
    figures: list[Any] = []
    views: list[Any] = []

    def inspect(net: Any) -> None:
        if args.html or args.topology:
            from stacklab.report.run import RunView

            views.append(RunView.of(net, tracer.events if tracer is not None else ()))
        if args.stats or args.plot:
            from stacklab.trace.stats import collect

            figures.append(collect(net, tracer.events if tracer is not None else ()))
        if lifelines:
            unknown = [n for n in lifelines if n not in net.nodes]
            if unknown:
                raise CliError(f"--diagram: no node named {unknown[0]!r} "
                               f"(nodes: {', '.join(net.nodes)})")

    try:
        summary = run_scenario(args.file, seed=args.seed, pcap=args.pcap, tracer=tracer,
                               inspect=inspect)
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
        if lifelines and tracer is not None:
            _diagram(args, tracer.events, lifelines, kinds, summary)
        if figures:
            _figures(args, figures[0])
        if views:
            _report(args, views[0], summary, lifelines, kinds)
        sys.stdout.flush()
    except BrokenPipeError:  # `stacklab run x.toml | head`: the reader left, that is fine
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return status


_KINDS = ("tcp", "udp", "icmp", "icmpv6", "arp", "ndp", "ip", "other")


def _lifelines(args: argparse.Namespace) -> list[str]:
    if not args.diagram:
        return []
    names = [n.strip() for n in args.diagram.split(",") if n.strip()]
    if len(names) < 2 or len(set(names)) != len(names):
        raise CliError(f"--diagram: give two or more different node names, e.g. a,b "
                       f"(got {args.diagram!r})")
    return names


def _kinds(args: argparse.Namespace) -> set[str] | None:
    if not args.only:
        return None
    kinds = {k.strip() for k in args.only.split(",") if k.strip()}
    bad = sorted(kinds - set(_KINDS))
    if bad:
        raise CliError(f"--only: unknown kind {bad[0]!r} (known: {', '.join(_KINDS)})")
    return kinds


def _diagram(args: argparse.Namespace, events: list[Any], lifelines: list[str],
             kinds: set[str] | None, summary: dict[str, Any]) -> None:
    from stacklab.trace.diagram import from_trace, render_svg, render_text

    rows = from_trace(events, lifelines, kinds=kinds)
    print(f"sequence diagram {' / '.join(lifelines)}: {len(rows)} rows "
          f"(virtual time in seconds)")
    print(render_text(rows, lifelines))
    title = f"{summary['name'] or summary['scenario']}: {' / '.join(lifelines)}"
    if args.svg:
        _write(args.svg, render_svg(rows, lifelines, title=title), "diagram")


def _report(args: argparse.Namespace, view: Any, summary: dict[str, Any],
            lifelines: list[str], kinds: set[str] | None) -> None:
    from stacklab.report.run import run_page
    from stacklab.report.topology import render_topology

    if args.topology:
        _write(args.topology, render_topology(view.topology), "topology")
    if args.html:
        _write(args.html, run_page(view, summary, html_path=args.html,
                                   diagrams=[lifelines] if lifelines else (), kinds=kinds,
                                   pcap_dir=args.pcap), "report")


def _write(path: str, text: str, what: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fp:
            fp.write(text)
    except OSError as exc:
        raise CliError(f"{path}: {exc}") from None
    print(f"{what} written to {path}", file=sys.stderr)


def _figures(args: argparse.Namespace, stats: Any) -> None:
    from stacklab.trace.stats import PlotUnavailable, plot, render

    if args.stats:
        print(render(stats))
    if args.plot:
        try:
            plot(stats, args.plot)
        except PlotUnavailable as exc:
            raise CliError(str(exc)) from None
        print(f"plot written to {args.plot}", file=sys.stderr)


class _PrintSink:
    """Prints each trace event on one line; stops quietly when the reader goes away."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.closed = False

    def __call__(self, ev: Any) -> None:
        from stacklab.trace.events import format_event

        if self.closed:
            return
        try:
            print(format_event(ev), file=self.out)
        except BrokenPipeError:  # `stacklab run x.toml --trace | head`
            self.closed = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.out.fileno())


def print_schema() -> None:
    from stacklab.net.link import LINK_PARAMS, LinkParams
    from stacklab.scenario.registry import app_kinds
    from stacklab.scenario.runner import LINK_KEYS, NODE_KINDS, TOP_KEYS

    defaults = LinkParams()
    print(f"top level: {', '.join(k for k in TOP_KEYS if k not in ('node', 'link', 'app'))}")
    print(f"[[node]]: name, kind = {' | '.join(NODE_KINDS)} (switch: aging)")
    print(f"[[link]]: {', '.join(k for k in LINK_KEYS if k not in LINK_PARAMS)}, and")
    for key in LINK_PARAMS:
        print(f"    {key:<15} default {getattr(defaults, key)!r}")
    print_sysctl()
    print("[[app]]: node, kind, and the kind's parameters:")
    for kind, spec in app_kinds().items():
        doc = spec.doc.removeprefix(f"{kind}: ")
        print(f"    {kind:<12} {', '.join(sorted(spec.params))}" + (f"  ({doc})" if doc else ""))


def print_sysctl() -> None:
    """The sysctl table a ``[[node]]`` may set, from :data:`stacklab.stack.sysctl.TABLE`."""
    from stacklab.stack.host import Host

    print("[[node]] sysctl = { \"name\" = value, ... }: Linux's sysctl names "
          "(stacklab's value | Linux's default: meaning)")
    for row, value in Host("defaults").sysctl.rows():
        linux = "" if row.linux == value else f" | Linux {row.linux}"
        print(f"    {row.name:<46} {value}{linux}: {row.doc}")


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
