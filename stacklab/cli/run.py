"""``stacklab run FILE.toml``: run a scenario on the simulated network and summarize it."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import textwrap
import time
from typing import Any

from stacklab.cli.main import CliError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run", help="run a scenario file (TOML) on the simulated network",
        description="Run a scenario (nodes, links with impairments, apps) on the deterministic "
                    "simulated network. Same seed, same frames, byte for byte. The scenario "
                    "format: docs/scenarios.md, or --list.")
    p.add_argument("file", metavar="FILE.toml", nargs="?", help="the scenario (see examples/)")
    p.add_argument("--seed", type=int, default=None, help="override the file's seed")
    p.add_argument("--pcap", metavar="DIR",
                   help="write one pcap per link into DIR (LINK.pcap; one DIR per scenario, "
                        "or files of the same link name are overwritten)")
    p.add_argument("--pcap-point", choices=("rx", "tx", "both"), default="rx",
                   help="capture frames as delivered (rx, the default: what the receiver's "
                        "tcpdump sees), as sent (tx: LINK.tx.pcap, lost frames included) or both")
    p.add_argument("--json", action="store_true",
                   help="print the summary as JSON, and only JSON, on stdout (--stats and "
                        "--diagram become its 'stats' and 'diagram' keys)")
    p.add_argument("--trace", action="store_true",
                   help="print every trace event (to stderr with --json)")
    p.add_argument("--trace-file", metavar="F.jsonl", help="write trace events as JSON lines")
    p.add_argument("--diagram", metavar="A,B[,C]",
                   help="draw a sequence diagram of the frames between these nodes (nodes "
                        "between two that are not neighbours are added: the path is drawn)")
    p.add_argument("--only", metavar="KINDS",
                   help="diagram only these frames: tcp,udp,icmp,icmpv6,arp,ndp,ip (comma list)")
    p.add_argument("--limit", type=int, default=DIAGRAM_LIMIT, metavar="ROWS",
                   help=f"rows of the terminal diagram (default {DIAGRAM_LIMIT}; 0: all); "
                        "--svg/--html draw all")
    p.add_argument("--svg", metavar="F.svg", help="write the diagram as SVG too")
    p.add_argument("--html", metavar="F.html",
                   help="write the run's report: results, topology, diagrams, plots, pcap links")
    p.add_argument("--topology", metavar="F.svg", help="draw the topology as SVG")
    p.add_argument("--stats", action="store_true",
                   help="print per-connection (bytes, retransmits, srtt, rto, cwnd, mss, pmtu) "
                        "and per-node figures")
    p.add_argument("--plot", metavar="F.png",
                   help="plot cwnd, ssthresh, retransmissions and throughput against time "
                        "(needs matplotlib: the plot extra)")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress line on stderr (there is none when stderr is not a terminal)")
    p.add_argument("--list", action="store_true",
                   help="print the scenario reference: node kinds and options, link parameters, "
                        "app kinds with their parameters, defaults and units")
    p.set_defaults(func=run_command)


# Rows of a terminal diagram unless --limit says otherwise: a screenful or two, not thousands.
DIAGRAM_LIMIT = 200


def run_command(args: argparse.Namespace) -> int:
    from stacklab.net.network import SimulationError, TopologyError
    from stacklab.scenario.runner import ScenarioError, load_scenario, run_scenario
    from stacklab.trace.events import Tracer

    if args.list:
        print_schema()
        return 0
    if not args.file:
        raise CliError("which scenario? e.g. stacklab run examples/ping.toml (--list: the schema)")
    # everything the user typed is checked before the simulation runs
    try:
        scn = load_scenario(args.file)
    except ScenarioError as exc:
        raise CliError(str(exc)) from None
    lifelines, path_note = _lifelines(args, scn)
    kinds = _kinds(args)
    if args.svg and not lifelines:
        raise CliError("--svg draws the diagram: say which nodes with --diagram a,b")
    if args.limit < 0:
        raise CliError(f"--limit: a number of rows >= 0 (0: all), not {args.limit}")
    _check_outputs(args)
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
                raise CliError(f"--trace-file {args.trace_file}: {exc.strerror or exc}") from None
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

    progress = _Progress(scn.duration) if not args.quiet and sys.stderr.isatty() else None
    points = ("rx", "tx") if args.pcap_point == "both" else (args.pcap_point,)
    try:
        summary = run_scenario(scn, seed=args.seed, pcap=args.pcap, pcap_points=points,
                               tracer=tracer, inspect=inspect,
                               on_start=progress.start if progress else None)
    except (ScenarioError, TopologyError) as exc:
        raise CliError(str(exc)) from None
    except SimulationError as exc:  # a bug in a node or an app: show where
        cause = exc.__cause__
        if isinstance(cause, OSError) and not isinstance(cause, ConnectionError):
            raise cause from None  # an output file failing (disk full): main() says which
        import traceback

        print(f"stacklab run: internal error in the simulation: {exc}", file=sys.stderr)
        traceback.print_exception(exc.__cause__ or exc, file=sys.stderr)
        return 3
    finally:
        if progress is not None:
            progress.stop()
        if trace_fp is not None:
            trace_fp.close()
    wall = time.perf_counter() - wall
    status = 0 if all(app.get("ok") for app in summary["apps"]) else 1
    diagram = None
    if lifelines and tracer is not None:
        diagram = _diagram(args, tracer.events, lifelines, kinds, summary, path_note)
    stats = figures[0] if figures else None
    if args.plot and stats is not None:
        from stacklab.trace.stats import PlotUnavailable, plot

        try:
            plot(stats, args.plot)
        except PlotUnavailable as exc:
            raise CliError(str(exc)) from None
        print(f"plot written to {args.plot}", file=sys.stderr)
    if args.json:
        if diagram is not None:
            summary["diagram"] = diagram
        if args.stats and stats is not None:
            from stacklab.trace.stats import as_json

            summary["stats"] = as_json(stats)
        print(json.dumps(summary, indent=2, default=str))
    else:
        print_human(summary, wall)
        if diagram is not None:
            print(diagram["text"])
        if args.stats and stats is not None:
            from stacklab.trace.stats import render

            print(render(stats))
    if views:
        _report(args, views[0], summary, lifelines, kinds)
    sys.stdout.flush()
    return status


def _check_outputs(args: argparse.Namespace) -> None:
    """Every output path usable, before the run: one line naming the option and the problem."""
    if args.pcap:
        if os.path.exists(args.pcap) and not os.path.isdir(args.pcap):
            raise CliError(f"--pcap {args.pcap}: not a directory (the pcaps go into it, "
                           "one per link)")
        try:
            os.makedirs(args.pcap, exist_ok=True)
        except OSError as exc:
            raise CliError(f"--pcap {args.pcap}: cannot create the directory: "
                           f"{exc.strerror or exc}") from None
        if not os.access(args.pcap, os.W_OK):
            raise CliError(f"--pcap {args.pcap}: the directory is not writable")
    for option, path in (("--svg", args.svg), ("--html", args.html), ("--plot", args.plot),
                         ("--topology", args.topology), ("--trace-file", args.trace_file)):
        if path:
            _check_file(option, path)
    if args.plot:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            raise CliError("--plot: plots need matplotlib: pip install 'stacklab[plot]' "
                           "(or pip install matplotlib)")


def _check_file(option: str, path: str) -> None:
    if os.path.isdir(path):
        raise CliError(f"{option} {path}: is a directory (give a file name)")
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise CliError(f"{option} {path}: no such directory {parent!r}")
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise CliError(f"{option} {path}: not writable")


class _Progress:
    """One status line on stderr, redrawn every half second of wall time while the simulation
    runs: virtual time reached, frames sent, wall time. A SIGALRM timer draws it, so the
    simulation's own events (and so its results) are untouched."""

    EVERY = 0.5

    def __init__(self, duration: float) -> None:
        self.duration = duration
        self.net: Any = None
        self.t0 = 0.0
        self.drawn = False

    def start(self, net: Any) -> None:
        import signal

        self.net = net
        self.t0 = time.perf_counter()
        signal.signal(signal.SIGALRM, self._tick)
        signal.setitimer(signal.ITIMER_REAL, self.EVERY, self.EVERY)

    def line(self) -> str:
        net = self.net
        frames = sum(d.counters["tx.frames"] for link in net.links for d in link.directions)
        return (f"t={net.now:.3f}/{self.duration:g} s virtual, {frames} frames, "
                f"{time.perf_counter() - self.t0:.1f} s wall")

    def _tick(self, signum: int, frame: Any) -> None:
        sys.stderr.write("\r\x1b[K" + self.line())
        sys.stderr.flush()
        self.drawn = True

    def stop(self) -> None:
        import signal

        if self.net is None:
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        if self.drawn:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


_KINDS = ("tcp", "udp", "icmp", "icmpv6", "arp", "ndp", "ip", "other")


def _lifelines(args: argparse.Namespace, scn: Any) -> tuple[list[str], str]:
    """The diagram's lifelines, checked against the scenario's nodes; the nodes between two
    that are not neighbours filled in (and a note saying so)."""
    from stacklab.trace.diagram import follow_path

    if not args.diagram:
        return [], ""
    names = [n.strip() for n in args.diagram.split(",") if n.strip()]
    if len(names) < 2 or len(set(names)) != len(names):
        raise CliError(f"--diagram: give two or more different node names, e.g. a,b "
                       f"(got {args.diagram!r})")
    nodes = [node["name"] for node in scn.nodes]
    unknown = [n for n in names if n not in nodes]
    if unknown:
        raise CliError(f"--diagram: no node named {unknown[0]!r} (nodes: {', '.join(nodes)})")
    try:
        return follow_path(names, [tuple(link["ends"]) for link in scn.links])
    except ValueError as exc:
        raise CliError(f"--diagram: {exc}") from None


def _kinds(args: argparse.Namespace) -> set[str] | None:
    if not args.only:
        return None
    kinds = {k.strip() for k in args.only.split(",") if k.strip()}
    bad = sorted(kinds - set(_KINDS))
    if bad:
        raise CliError(f"--only: unknown kind {bad[0]!r} (known: {', '.join(_KINDS)})")
    return kinds


def _diagram(args: argparse.Namespace, events: list[Any], lifelines: list[str],
             kinds: set[str] | None, summary: dict[str, Any], path_note: str) -> dict[str, Any]:
    """The diagram as text (limited to --limit rows) and rows for the JSON; the SVG file
    written (every row)."""
    from stacklab.trace.diagram import Note, from_trace, limit_rows, render_svg, render_text

    rows = from_trace(events, lifelines, kinds=kinds)
    shown, cut_note = limit_rows(rows, args.limit)
    lines = [f"sequence diagram {' / '.join(lifelines)}: {len(rows)} rows",
             "(virtual time in seconds; TCP seq/ack relative to each side's ISN)"]
    if path_note:
        lines += textwrap.wrap(path_note, 80)
    lines.append(render_text(shown, lifelines))
    if cut_note:
        lines.append(cut_note)
    title = f"{summary['name'] or summary['scenario']}: {' / '.join(lifelines)}"
    if args.svg:
        _write(args.svg, render_svg(rows, lifelines, title=title), "diagram")
    json_rows = [{"time": r.time, "node": r.node, "note": r.text} if isinstance(r, Note) else
                 {"time": r.t_send, "received": r.t_recv, "src": r.src, "dst": r.dst,
                  "label": r.label, "dropped": r.dropped, "corrupted": r.corrupted}
                 for r in rows]
    return {"lifelines": lifelines, "note": path_note, "rows": json_rows,
            "text": "\n".join(lines)}


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
        raise CliError(f"{path}: {exc.strerror or exc}") from None
    print(f"{what} written to {path}", file=sys.stderr)


class _PrintSink:
    """Prints each trace event on one line, cut to the terminal's width on a terminal and whole
    otherwise (a file, `| less`, `| grep`); stops quietly when the reader goes away."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.closed = False
        self.width = shutil.get_terminal_size().columns if out.isatty() else sys.maxsize

    def __call__(self, ev: Any) -> None:
        from stacklab.trace.events import format_event

        if self.closed:
            return
        try:
            print(format_event(ev, self.width), file=self.out)
        except BrokenPipeError:  # `stacklab run x.toml --trace | head`
            self.closed = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.out.fileno())


def print_schema() -> None:
    """The scenario reference (the text of docs/scenarios.md)."""
    from stacklab.scenario.reference import reference

    print(reference(), end="")


def _fmt(key: str, value: Any) -> str:
    if key == "loss" and isinstance(value, float):  # a fraction in the JSON, % as ping says
        return f"{value * 100:.4g}%"
    if key == "throughput_bps" and isinstance(value, int | float):
        return f"{value / 1e6:.4g} Mbit/s"
    if key == "elapsed" and isinstance(value, int | float):
        return f"{value:.4g} s"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str) and len(value) > 16:  # sha256 and the like
        return value[:12] + "…"
    return str(value)


# The lines of an app's result printed under it: ping's statistics (its last two lines: counts
# and rtt min/avg/max/mdev), every hop of a traceroute. The full output is in --json.
_SHOWN_LINES = {"ping": -2, "traceroute": 0}


def print_human(summary: dict[str, Any], wall: float) -> None:
    title = summary["name"] or summary["scenario"]
    print(f"{title}: seed {summary['seed']}, {summary['time']:g} s simulated "
          f"in {wall:.2f} s wall")
    if summary["apps"]:
        print("apps:")
    for app in summary["apps"]:
        status = "ok  " if app.get("ok") else "FAIL"
        extra = " ".join(f"{k}={_fmt(k, v)}" for k, v in app.items()  # lists/tables: --json
                         if k not in ("node", "kind", "ok", "error")
                         and not isinstance(v, list | dict))
        print(f"  {status} {app['kind']} on {app['node']}: {extra}".rstrip())
        if not app.get("ok"):
            print(f"       error: {app.get('error', '?')}")
        if app["kind"] in _SHOWN_LINES and app.get("lines"):
            for line in app["lines"][_SHOWN_LINES[app["kind"]]:]:
                print(f"       {line}")
    width = max([len(n) for n in summary["nodes"]] + [4])
    print("nodes:")
    for name, node in summary["nodes"].items():
        c = node["counters"]
        drops = sum(v for k, v in c.items() if k.startswith("drop."))
        print(f"  {name:<{width}}  {node['kind']:<7} rx {c.get('rx.frames', 0):>7}  "
              f"tx {c.get('tx.frames', 0):>7}  drops {drops}")
    print("links:")
    lwidth = max([len(n) for n in summary["links"]] + [4])
    dwidth = max([len(label) for dirs in summary["links"].values() for label in dirs] + [4])
    for name, dirs in summary["links"].items():
        for label, c in dirs.items():
            drops = ", ".join(f"{k[5:]} {v}" for k, v in c.items() if k.startswith("drop."))
            tail = f"  dropped: {drops}" if drops else ""
            print(f"  {name:<{lwidth}}  {label:<{dwidth}}  sent {c.get('tx.frames', 0):>7}  "
                  f"delivered {c.get('rx.frames', 0):>7}{tail}")
    for conn in summary["connections"]:
        states = " > ".join(conn.get("states", []))
        print(f"  tcp {conn.get('node')} {conn.get('local')} -> {conn.get('remote')}: {states}")
