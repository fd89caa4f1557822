"""Scenario files: a network, its impairments and its applications, in TOML.

    seed = 1
    duration = "30s"

    [[node]]
    name = "a"
    kind = "host"            # host | router | switch (switch: optional aging = "300s")

    [[link]]
    ends = ["a", "r"]
    delay = "5ms"            # every link parameter of stacklab.net.link.LinkParams
    rate = "100Mbit"
    aqm = "codel"            # with a rate: droptail | red | codel | fq_codel; ecn = true marks
    loss = 0.01
    down = [["2s", "4s"]]    # down at 2 s, up at 4 s
    forward = { loss = 0.1 } # a -> r only; `reverse` for r -> a

    [[event]]                # faults at run time (stacklab.net.faults)
    at = "5s"
    action = "partition"     # partition (groups) | heal | crash, restart (node) | link
    groups = [["a"], ["b"]]

    [[app]]
    node = "a"
    kind = "ping"            # kinds come from stacklab.scenario.registry
    to = "b"

Errors name the file, the table and the key: ``FILE: [[link]] #2 (a-r): key 'delay': ...``.
:func:`run_scenario` returns the summary the CLI prints with ``--json``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stacklab.errors import StacklabError
from stacklab.net.faults import check_event, schedule_events
from stacklab.net.link import LINK_PARAMS, LinkParams
from stacklab.net.network import Network, TopologyError, parse_down
from stacklab.net.units import ParamError, parse_duration
from stacklab.trace.events import Tracer

from . import ip_config
from .flows import fairness_summary
from .lan_kinds import lan_summary, start_addressing
from .node_options import NODE_OPTIONS, apply_node_options, check_node_option
from .registry import AppKind, app_kinds, get_app

__all__ = ["Scenario", "ScenarioError", "check_scenario", "load_scenario", "run_scenario"]

TOP_KEYS = ("seed", "duration", "name", "description", "autoconfigure", "node", "link", "app",
            "event")
NODE_KINDS = ("host", "router", "switch")
NODE_KEYS = ("name", "kind", "aging", *NODE_OPTIONS, *ip_config.NODE_KEYS)
LINK_KEYS = ("ends", "name", "down", "forward", "reverse", *LINK_PARAMS, *ip_config.LINK_KEYS)


# Virtual time is a float of seconds: at 10 years its spacing is 60 ns, still far finer than any
# link delay or timer; beyond that timings would visibly round.
MAX_DURATION = 10 * 365 * 86400.0


class ScenarioError(StacklabError, ValueError):
    """A scenario file that cannot be run; the message names file, table and key."""


@dataclass
class Scenario:
    path: str
    seed: int = 1
    duration: float = 10.0
    name: str = ""
    description: str = ""
    autoconfigure: bool = True
    nodes: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    apps: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # faults (stacklab.net.faults)


class _Where:
    """Formats errors: ``file: [[link]] #2 (a-b): key 'delay': message``."""

    def __init__(self, path: str, table: str) -> None:
        self.path = path
        self.table = table

    def error(self, message: str, key: str | None = None) -> ScenarioError:
        where = f"{self.path}: {self.table}"
        if key is not None:
            where += f": key {key!r}"
        return ScenarioError(f"{where}: {message}")

    def check_keys(self, table: dict[str, Any], allowed: tuple[str, ...] | frozenset[str],
                   what: str) -> None:
        for key in table:
            if key not in allowed:
                known = ", ".join(sorted(allowed)) or "none"
                raise self.error(f"unknown key for {what} (allowed: {known})", key)


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and check a scenario file (keys, units, node references, link parameters)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fp:
            data = tomllib.load(fp)
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{path}: is a directory, not a scenario file") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8 text (a binary file, another encoding)
        raise ScenarioError(f"{path}: not a TOML text file: byte {exc.start} is not UTF-8 "
                            f"({exc.object[exc.start:exc.start + 1]!r})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    return check_scenario(data, path)


def check_scenario(data: dict[str, Any], path: str = "<scenario>") -> Scenario:
    """Check a scenario given as the dict its TOML file parses to (``path`` names it in errors):
    what :func:`load_scenario` does after reading the file (``stacklab sweep`` edits the dict)."""
    top = _Where(path, "top level")
    top.check_keys(data, TOP_KEYS, "a scenario")
    scn = Scenario(path)
    seed = data.get("seed", 1)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise top.error(f"expected an integer, got {seed!r}", "seed")
    scn.seed = seed
    try:
        scn.duration = parse_duration(data.get("duration", "10s"), "duration")
    except ParamError as exc:
        raise top.error(exc.message, "duration") from None
    if scn.duration <= 0:
        raise top.error("the duration must be positive", "duration")
    if scn.duration > MAX_DURATION:
        raise top.error(f"at most {MAX_DURATION:g} s (10 years) of virtual time; got "
                        f"{scn.duration:g} s", "duration")
    for key in ("name", "description"):
        value = data.get(key, "")
        if not isinstance(value, str):
            raise top.error(f"expected a string, got {value!r}", key)
        setattr(scn, key, value)
    scn.autoconfigure = data.get("autoconfigure", True)
    if not isinstance(scn.autoconfigure, bool):
        raise top.error(f"expected true or false, got {scn.autoconfigure!r}", "autoconfigure")
    for key in ("node", "link", "app", "event"):
        tables = data.get(key, [])
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise top.error(f"write it as [[{key}]] tables", key)
    scn.nodes, scn.links, scn.apps = data.get("node", []), data.get("link", []), data.get("app", [])
    scn.events = data.get("event", [])

    names: dict[str, str] = {}
    for i, node in enumerate(scn.nodes, 1):
        w = _Where(path, f"[[node]] #{i}" + (f" ({node['name']})" if "name" in node else ""))
        w.check_keys(node, NODE_KEYS, "a node")
        name = node.get("name")
        if not isinstance(name, str) or not name:
            raise w.error("every node needs a name (a string)", "name")
        if name in names:
            raise w.error(f"a node named {name!r} is already defined", "name")
        kind = node.get("kind")
        if kind not in NODE_KINDS:
            raise w.error(f"expected one of {', '.join(NODE_KINDS)}, got {kind!r}", "kind")
        if "aging" in node:
            if kind != "switch":
                raise w.error("only switches have an aging time", "aging")
            try:
                parse_duration(node["aging"], "aging")
            except ParamError as exc:
                raise w.error(exc.message, "aging") from None
        for key in NODE_OPTIONS:  # sysctl, plpmtud, mss_clamp, pmtu_expires
            if key in node:
                try:
                    check_node_option(key, node[key], kind)
                except ParamError as exc:
                    raise w.error(exc.message, key) from None
        try:
            ip_config.check_node(node)
        except ParamError as exc:
            raise w.error(exc.message, exc.key) from None
        names[name] = kind
    if not scn.nodes:
        raise top.error("a scenario needs at least one [[node]]", "node")

    for i, link in enumerate(scn.links, 1):
        ends = link.get("ends")
        label = f" ({ends[0]}-{ends[1]})" if isinstance(ends, list) and len(ends) == 2 else ""
        w = _Where(path, f"[[link]] #{i}{label}")
        w.check_keys(link, LINK_KEYS, "a link")
        if (not isinstance(ends, list) or len(ends) != 2
                or not all(isinstance(e, str) for e in ends)):
            raise w.error("expected two node names, e.g. ends = [\"a\", \"b\"]", "ends")
        for end in ends:
            if end not in names:
                raise w.error(f"unknown node {end!r} (nodes: {', '.join(names)})", "ends")
        if ends[0] == ends[1]:
            raise w.error(f"a link joins two different nodes, not {ends[0]!r} to itself", "ends")
        base = {k: v for k, v in link.items() if k in LINK_PARAMS}
        try:
            params = LinkParams().with_updates(base)
        except ParamError as exc:
            raise w.error(exc.message, exc.key) from None
        if params.delay >= scn.duration:
            raise w.error(f"{params.delay:g} s is not shorter than the scenario's duration "
                          f"({scn.duration:g} s): no frame would ever arrive", "delay")
        for side in ("forward", "reverse"):
            if side in link:
                own = link[side]
                if not isinstance(own, dict):
                    raise w.error("expected a table of link parameters, e.g. "
                                  f"{side} = {{ loss = 0.1 }}", side)
                try:
                    params.with_updates(own)
                except ParamError as exc:
                    raise w.error(exc.message, f"{side}.{exc.key}") from None
        if "down" in link:
            try:
                parse_down(link["down"])
            except ParamError as exc:
                raise w.error(exc.message, "down") from None
        if "name" in link and not isinstance(link["name"], str):
            raise w.error("expected a string", "name")
        try:
            ip_config.check_link(link, names)
        except ParamError as exc:
            raise w.error(exc.message, exc.key) from None

    for i, app in enumerate(scn.apps, 1):
        w = _Where(path, f"[[app]] #{i}")
        on = app.get("node")
        if not isinstance(on, str) or on not in names:
            raise w.error(f"unknown node {on!r} (nodes: {', '.join(names)})", "node")
        if names[on] == "switch":
            raise w.error(f"{on!r} is a switch; apps run on hosts and routers", "node")
        if not isinstance(app.get("kind"), str):
            raise w.error("every app needs a kind, e.g. kind = \"ping\"", "kind")
        to = app.get("to")
        if isinstance(to, str) and to not in names and not _is_address(to):
            raise w.error(f"no node named {to!r} and not an IP address "
                          f"(nodes: {', '.join(names)})", "to")
        if "start" in app:
            try:
                start = parse_duration(app["start"], "start")
            except ParamError as exc:
                raise w.error(exc.message, "start") from None
            if start >= scn.duration:
                raise w.error(f"{start:g} s is not before the end of the scenario "
                              f"(duration {scn.duration:g} s)", "start")
    for i, event in enumerate(scn.events, 1):
        try:
            check_event(event, names)
        except ParamError as exc:
            raise _Where(path, f"[[event]] #{i}").error(exc.message, exc.key) from None
    return scn


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass
class _AppRun:
    spec: dict[str, Any]
    app: Any
    daemon: bool
    task: asyncio.Task[dict[str, Any]] | None = None


def build_network(scn: Scenario, *, seed: int | None = None,
                  tracer: Tracer | None = None) -> Network:
    """The network of a checked scenario: nodes, links, addresses and routes."""
    net = Network(seed=scn.seed if seed is None else seed, tracer=tracer)
    try:
        for i, node in enumerate(scn.nodes, 1):
            w = _Where(scn.path, f"[[node]] #{i} ({node['name']})")
            try:
                if node["kind"] == "switch":
                    net.add_switch(node["name"], aging=node.get("aging", 300.0))
                else:
                    host = (net.add_router(node["name"]) if node["kind"] == "router"
                            else net.add_host(node["name"]))
                    apply_node_options(host, node)
            except TopologyError as exc:
                raise w.error(str(exc), "name") from None
        made = []
        for i, link in enumerate(scn.links, 1):
            a, b = link["ends"]
            w = _Where(scn.path, f"[[link]] #{i} ({a}-{b})")
            params = {k: v for k, v in link.items() if k in LINK_PARAMS}
            try:
                made.append((net.connect(a, b, name=link.get("name"), forward=link.get("forward"),
                                         reverse=link.get("reverse"), down=link.get("down"),
                                         **params), link))
            except ParamError as exc:
                raise w.error(exc.message, exc.key) from None
            except TopologyError as exc:
                raise w.error(str(exc), exc.key or "ends") from None
            ip_config.apply_mtu(net, made[-1][0], link)
        try:
            if scn.autoconfigure:
                net.autoconfigure()
            ip_config.apply(net, made, scn.nodes, scn.autoconfigure)
        except TopologyError as exc:
            raise _Where(scn.path, "[[link]]").error(str(exc)) from None
        except ParamError as exc:
            raise _Where(scn.path, "[[node]]").error(exc.message, exc.key) from None
        try:
            schedule_events(net, scn.events)
        except TopologyError as exc:
            raise _Where(scn.path, "[[event]]").error(str(exc), "link") from None
        for node in scn.nodes:
            if node["kind"] == "host":
                start_addressing(net, net.node(node["name"]), node)
    except BaseException:
        net.close()
        raise
    return net


def _make_apps(scn: Scenario, net: Network) -> list[_AppRun]:
    runs = []
    for i, spec in enumerate(scn.apps, 1):
        w = _Where(scn.path, f"[[app]] #{i} ({spec['kind']} on {spec['node']})")
        kind: AppKind | None = get_app(spec["kind"])
        if kind is None:
            known = ", ".join(app_kinds()) or "none registered"
            raise w.error(f"unknown app kind {spec['kind']!r} (known: {known})", "kind")
        params = {k: v for k, v in spec.items() if k not in ("node", "kind")}
        w.check_keys(params, kind.params, f"a {kind.kind!r} app")
        try:
            app = kind.factory(net, net.node(spec["node"]), params)
        except ParamError as exc:
            raise w.error(exc.message, exc.key) from None
        except (ValueError, TypeError, TopologyError) as exc:
            raise w.error(str(exc)) from None
        runs.append(_AppRun(spec, app, bool(getattr(app, "daemon", False))))
    return runs


async def _run_app(net: Network, run: _AppRun) -> dict[str, Any]:
    start = net.now
    try:
        result = dict(await run.app.run() or {})
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # an app failing is a result, not a crash of the runner
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    result.setdefault("ok", True)
    result.setdefault("elapsed", net.now - start)
    return result


def _partial(run: _AppRun) -> dict[str, Any]:
    getter = getattr(run.app, "result", None)
    if not callable(getter):
        return {}
    try:
        return dict(getter() or {})
    except Exception as exc:
        return {"ok": False, "error": f"result(): {type(exc).__name__}: {exc}"}


def run_scenario(path: str | os.PathLike[str] | Scenario, *, seed: int | None = None,
                 pcap: str | None = None, pcap_points: tuple[str, ...] = ("rx",),
                 tracer: Tracer | None = None,
                 inspect: Callable[[Network], None] | None = None,
                 on_start: Callable[[Network], None] | None = None) -> dict[str, Any]:
    """Load (unless given a checked :class:`Scenario`), build and run a scenario; return its
    summary (the ``--json`` output).

    ``pcap_points``: "rx" and/or "tx" (:meth:`Network.capture`). ``on_start(net)`` is called
    when the simulation is about to start (progress reports), ``inspect(net)`` at the end of the
    run, before the network closes (statistics)."""
    scn = path if isinstance(path, Scenario) else load_scenario(path)
    net = build_network(scn, seed=seed, tracer=tracer)
    try:
        if pcap:
            for point in pcap_points:
                net.capture(pcap, point)
        runs = _make_apps(scn, net)
        if on_start is not None:
            on_start(net)
        loop = net.loop
        for i, run in enumerate(runs, 1):
            run.task = loop.create_task(_run_app(net, run),
                                        name=f"app#{i} {run.spec['kind']} on {run.spec['node']}")
        net.run(until=scn.duration)
        end = net.now
        results = []
        pending = []
        for run in runs:
            assert run.task is not None
            if run.task.done():
                result = run.task.result()
            elif run.daemon:
                pending.append(run.task)
                result = {"ok": True, **_partial(run)}
            else:
                pending.append(run.task)
                result = {**_partial(run), "ok": False,
                          "error": f"still running when the scenario ended at {end:g}s"}
            results.append({"node": run.spec["node"], "kind": run.spec["kind"], **result})
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        summary = summarize(net, scn, results, seed if seed is not None else scn.seed)
        if inspect is not None:
            inspect(net)
        return summary
    finally:
        net.close()


def summarize(net: Network, scn: Scenario, apps: list[dict[str, Any]],
              seed: int) -> dict[str, Any]:
    connections: list[dict[str, Any]] = []
    for name, node in net.nodes.items():
        # Hook for the TCP layer: a list of {"local", "remote", "states", "retransmits", "mss",
        # "pmtu", ...} for every connection the node had.
        hook = getattr(node, "tcp_connections_summary", None)
        if callable(hook):
            for conn in hook():
                connections.append({"node": name, **conn})
    counters = net.counters()
    return {
        "scenario": scn.path,
        "name": scn.name,
        "seed": seed,
        "duration": scn.duration,
        "time": net.now,
        "apps": apps,
        "nodes": {name: {"kind": net.kinds[name], "counters": c,
                         **lan_summary(net.nodes[name], net.now)}
                  for name, c in counters["nodes"].items()},
        "links": counters["links"],
        "queues": {link.name: {d.label: q for d in link.directions
                               if (q := d.queue_summary()) is not None}
                   for link in net.links if link.ab.params.rate or link.ba.params.rate},
        "connections": connections,
        **fairness_summary(apps),  # flows sampled by tcp-send's `sample`
    }
