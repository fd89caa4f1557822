"""``stacklab shell [FILE]``: drive a simulated network interactively, as Mininet's CLI, on
virtual time; and the one-shot verbs ``stacklab ping FILE a b``, ``traceroute FILE a b``,
``ss FILE a``.

Commands (``help`` lists them; a bad one prints one line naming the problem and the shell goes
on): ``a ping b``, ``a traceroute b``, ``a ss``, ``a ip addr|route|neigh``, ``a dhcp`` (the
DHCPv4/DHCPv6 leases), ``a curl URL``,
``a start KIND [key=value ...]`` (any scenario app kind), ``link a-r set loss 5% delay 20ms``,
``link a-r down|up``, ``run 5s``, ``capture a-r`` / ``tcpdump a-r`` (a summary line per frame
delivered on that link, while time runs; ``capture off``), ``diagram a b [c]``, ``nodes``,
``links``, ``time``, ``add host|router|switch NAME``, ``add link A B [key value ...]``,
``save FILE.toml|.html|.svg``, ``quit``.

Time passes only when a command makes it pass (``run``, ``ping``, ``curl``...). The network is
autoconfigured (addresses, routes) when first used: ``add`` builds it until then. On a terminal
there is tab completion and a history (``~/.stacklab_history``); from a pipe the commands are
echoed after the prompt so the output reads as a transcript, and the exit status is 1 if any
command failed.
"""

from __future__ import annotations

import argparse
import cmd
import os
import shlex
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TextIO

from stacklab.cli.main import CliError
from stacklab.errors import StacklabError

PROMPT = "stacklab> "
HISTORY = os.path.expanduser("~/.stacklab_history")


class ShellError(StacklabError):
    """A command the shell cannot run: printed as one line, the shell goes on."""


def _value(text: str) -> Any:
    """A command-line token as a parameter value: 1500 -> int, 0.05 -> float, true -> bool."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _pairs(words: list[str], what: str) -> dict[str, Any]:
    """``loss 5% delay 20ms`` or ``loss=5% delay=20ms`` -> {"loss": "5%", "delay": "20ms"}."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if "=" in word:
            key, _, val = word.partition("=")
            i += 1
        elif i + 1 < len(words):
            key, val = word, words[i + 1]
            i += 2
        else:
            raise ShellError(f"{what}: {word!r} needs a value, e.g. {word} 5ms")
        out[key] = _value(val)
    return out


def _user_units(key: str, value: Any) -> Any:
    """A LinkParams value back in the units a scenario file uses."""
    if key in ("delay", "jitter", "reorder_delay"):
        return f"{value * 1000:g}ms"
    if key == "rate":
        return f"{value / 1e6:g}Mbit"
    if isinstance(value, tuple):
        return list(value)
    return value


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return repr(value)


class Shell(cmd.Cmd):
    """The command interpreter; ``net`` is a :class:`stacklab.net.network.Network` with a
    tracer (the diagrams, the report and ``capture`` read it)."""

    intro = "stacklab shell: `help` lists the commands, `quit` leaves. Time is virtual."
    prompt = PROMPT

    def __init__(self, net: Any, *, stdin: TextIO | None = None, stdout: TextIO | None = None,
                 interactive: bool = False, configured: bool = False) -> None:
        super().__init__(stdin=stdin, stdout=stdout)
        self.net = net
        self.use_rawinput = interactive
        self.interactive = interactive
        if not interactive:  # precmd echoes prompt and command on one line
            self.prompt = ""
            self.intro = ""
        self.status = 0  # 1 when the last ping had no reply (the one-shot verbs' exit status)
        self.configured = configured
        self.failures = 0
        self.apps: list[dict[str, Any]] = []  # started apps, as scenario [[app]] tables
        self.tasks: list[Any] = []
        self.watching: set[frozenset[str]] = set()  # captured links, as {end, end}
        net.tracer.add_sink(self._capture_line)

    # -- plumbing ------------------------------------------------------------------------------
    def say(self, text: str = "") -> None:
        self.stdout.write(text + "\n")

    def precmd(self, line: str) -> str:
        if not self.interactive and line.strip() and line != "EOF":  # EOF: end of the script
            self.say(PROMPT + line.rstrip("\n"))
        return line

    def onecmd(self, line: str) -> bool:
        try:
            return super().onecmd(line)
        except (StacklabError, ValueError, OSError, ConnectionError, TimeoutError) as exc:
            self.failures += 1
            self.say(f"error: {exc}")
            return False
        except KeyboardInterrupt:
            if not self.interactive:
                raise
            self.say(f"^C (t = {self.net.now:.6f} s)")  # back to the prompt, as Mininet
            return False

    def emptyline(self) -> bool:
        return False

    def default(self, line: str) -> None:
        words = shlex.split(line)
        if words and words[0] in self.net.nodes:
            self._node_command(words[0], words[1:])
            return
        known = ", ".join(self.net.nodes) or "none yet"
        raise ShellError(f"unknown command {words[0]!r} (`help` lists them; nodes: {known})")

    def _ready(self) -> None:
        """Addresses and routes when the network is first used (the topology is fixed then)."""
        if not self.configured:
            self.net.autoconfigure()
            self.configured = True

    def _run(self, coro: Coroutine[Any, Any, Any], limit: float) -> Any:
        self._ready()
        return self.net.run(coro, until=self.net.now + limit)

    def _host(self, name: str) -> Any:
        node = self.net.node(name)
        if self.net.kinds.get(name) == "switch":
            raise ShellError(f"{name!r} is a switch: it has no IP stack")
        return node

    def _link(self, name: str) -> Any:
        try:
            return self.net.link(name)
        except StacklabError:
            a, _, b = name.partition("-")
            for link in self.net.links:  # "b-a" names the link "a-b" too
                if {link.a.name, link.b.name} == {a, b}:
                    return link
            raise

    def _capture_line(self, ev: Any) -> None:
        if not self.watching or ev.layer != "link" or ev.event not in ("deliver", "drop"):
            return
        d = ev.details
        ends = frozenset((d.get("src"), d.get("dst")))
        if ends in self.watching:
            what = "" if ev.event == "deliver" else f" [dropped: {d.get('reason')}]"
            self.say(f"{ev.time:11.6f} {d.get('src')} > {d.get('dst')}: {d.get('summary')}{what}")

    # -- node commands -------------------------------------------------------------------------
    def _node_command(self, name: str, words: list[str]) -> None:
        if not words:
            raise ShellError(f"{name} what? e.g. {name} ping NODE, {name} ss, {name} ip addr")
        verb, args = words[0], words[1:]
        self._ready()
        handler: Callable[[str, list[str]], None] | None = getattr(
            self, "node_" + verb.replace("-", "_"), None)
        if handler is None:
            raise ShellError(f"unknown node command {verb!r} (known: {', '.join(NODE_VERBS)})")
        handler(name, args)

    def node_ping(self, name: str, args: list[str]) -> None:
        """NODE ping DEST [-c COUNT]: ICMP echo, as ping(8)."""
        host = self._host(name)
        parser = _Args("ping", "DEST")
        parser.add_argument("-c", type=int, default=4, dest="count")
        parser.add_argument("-s", type=int, default=56, dest="size")
        parser.add_argument("-6", action="store_const", const=6, dest="family")
        opts = parser.parse(args)
        res = self._run(host.ping(opts.dest, count=opts.count, size=opts.size,
                                  family=opts.family, out=self.say), opts.count + 10.0)
        self.status = 0 if res.received else 1

    def node_traceroute(self, name: str, args: list[str]) -> None:
        """NODE traceroute DEST: rising TTLs, as traceroute(8)."""
        host = self._host(name)
        parser = _Args("traceroute", "DEST")
        parser.add_argument("-I", action="store_const", const="icmp", default="udp",
                            dest="method")
        opts = parser.parse(args)
        self._run(host.traceroute(opts.dest, method=opts.method, out=self.say), 300.0)

    def node_ss(self, name: str, args: list[str]) -> None:
        """NODE ss: TCP listeners and connections, as ss -tn."""
        self.say(self._host(name).tcp.ss())

    def node_ip(self, name: str, args: list[str]) -> None:
        """NODE ip addr|route|neigh: interfaces and addresses, routes, neighbour caches."""
        host = self._host(name)
        what = args[0] if args else "addr"
        if "addr".startswith(what) or what == "a":
            self.say(self._ip_addr(host, self.net.now))
        elif "route".startswith(what):
            self.say(str(host.routes))
        elif "neighbour".startswith(what) or "neighbor".startswith(what):
            self.say(str(host.neighbors) or "(no neighbours)")
        else:
            raise ShellError(f"ip {what!r}: use ip addr, ip route or ip neigh")

    @staticmethod
    def _ip_addr(host: Any, now: float) -> str:
        from stacklab.wire.addr import ip_str, is_link_local, mac_str

        lines = []
        dhcp = getattr(host, "dhcp4", None)
        for iface in host.interfaces:
            lines.append(f"{iface.index + 1}: {iface.name}: mtu {iface.mtu}")
            lines.append(f"    link/ether {mac_str(iface.mac)}")
            client = dhcp.by_ifindex.get(iface.index) if dhcp is not None else None
            lease = client.lease if client is not None else None
            for a, plen in iface.v4:
                if lease is not None and lease.address == a:
                    # as ip(8) shows a lease: "dynamic", then the seconds left
                    left = max(0, int(lease.obtained + lease.lease_time - now))
                    lines.append(f"    inet {ip_str(a)}/{plen} dynamic")
                    lines.append(f"       valid_lft {left}sec preferred_lft {left}sec")
                else:
                    lines.append(f"    inet {ip_str(a)}/{plen}")
            for x in iface.v6:
                scope = "link" if is_link_local(x.addr) else "global"
                lines.append(f"    inet6 {ip_str(x.addr)}/{x.plen} scope {scope} {x.state}")
        return "\n".join(lines) or "(no interfaces)"

    def node_dhcp(self, name: str, args: list[str]) -> None:
        """NODE dhcp: the DHCPv4 and DHCPv6 clients' state and leases (the JSON summary's)."""
        from stacklab.scenario.lan_kinds import lan_summary

        leases = lan_summary(self._host(name), self.net.now)
        if not leases:
            self.say(f"{name}: no DHCP client (addressing = \"dhcp\" or dhcp6 = ... starts one)")
            return
        for family, clients in (("DHCPv4", leases.get("dhcp", [])),
                                ("DHCPv6", leases.get("dhcp6", []))):
            for c in clients:
                head = f"{c['iface']} {family}: {c['state']}"
                if "address" not in c:
                    self.say(head)
                    continue
                if family == "DHCPv4":
                    self.say(f"{head} {c['address']} from {c['server']}, lease "
                             f"{c['lease_time']:g} s, expires in {c['expires_in']:g} s")
                    self.say(f"    router {c['router'] or '-'}, dns "
                             f"{' '.join(c['dns']) or '-'}, domain {c['domain'] or '-'}, "
                             f"mtu {c['mtu'] or '-'}")
                else:
                    self.say(f"{head} {c['address']}, valid {c['valid']:g} s, "
                             f"preferred {c['preferred']:g} s")
                    self.say(f"    dns {' '.join(c.get('dns', [])) or '-'}, domains "
                             f"{' '.join(c.get('domains', [])) or '-'}")

    def node_curl(self, name: str, args: list[str]) -> None:
        """NODE curl URL: an HTTP GET (the body, or its size when it is long)."""
        from stacklab.apps.http import http_get

        host = self._host(name)
        if len(args) != 1:
            raise ShellError("curl URL, e.g. a curl http://b/")
        url = args[0] if "://" in args[0] else "http://" + args[0]
        res = self._run(http_get(host, None, url, timeout=30.0), 60.0)
        self.say(f"HTTP {res.status}, {len(res.body)} bytes, sha256 {res.sha256[:16]}")
        try:
            text = res.body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text and len(text) <= 2000:
            self.say(text.rstrip("\n"))
        elif res.body:
            self.say("(body not shown: binary or longer than 2000 bytes)")

    def node_start(self, name: str, args: list[str]) -> None:
        """NODE start KIND [key=value ...]: start a scenario app (http-server, tcp-sink...)."""
        if not args:
            raise ShellError("start KIND [key=value ...], e.g. b start http-server")
        self.start_app({"node": name, "kind": args[0], **_pairs(args[1:], args[0])})

    def start_app(self, spec: dict[str, Any], quiet: bool = False) -> None:
        from stacklab.scenario.registry import app_kinds, get_app

        kind = get_app(spec["kind"])
        if kind is None:
            raise ShellError(f"unknown app kind {spec['kind']!r} "
                             f"(known: {', '.join(app_kinds())})")
        params = {k: v for k, v in spec.items() if k not in ("node", "kind")}
        unknown = sorted(set(params) - set(kind.params))
        if unknown:
            raise ShellError(f"{kind.kind}: unknown parameter {unknown[0]!r} "
                             f"(known: {', '.join(sorted(kind.params))})")
        self._ready()  # a scenario file's apps start before any command
        app = kind.factory(self.net, self._host(spec["node"]), params)
        self.tasks.append(self.net.loop.create_task(app.run(), name=f"{kind.kind} on "
                                                    f"{spec['node']}"))
        self.apps.append(spec)
        if not quiet:
            self.say(f"started {kind.kind} on {spec['node']}")

    # -- network commands ----------------------------------------------------------------------
    def do_run(self, arg: str) -> None:
        """run DURATION: let virtual time pass (5s, 200ms)."""
        from stacklab.net.units import parse_duration

        seconds = parse_duration(arg.strip() or "1s", "run")
        self._ready()
        self.net.run(until=self.net.now + seconds)
        self.say(f"t = {self.net.now:.6f} s")

    def do_time(self, arg: str) -> None:
        """time: the virtual time now."""
        self.say(f"t = {self.net.now:.6f} s")

    def do_link(self, arg: str) -> None:
        """link A-B set KEY VALUE ... | link A-B down | link A-B up | link A-B: show it."""
        words = shlex.split(arg)
        if not words:
            raise ShellError("link A-B set loss 5% delay 20ms | down | up")
        link = self._link(words[0])
        action, rest = (words[1], words[2:]) if len(words) > 1 else ("show", [])
        if action == "set":
            if not rest:
                raise ShellError("link A-B set KEY VALUE ..., e.g. set loss 5% delay 20ms")
            link.set(**_pairs(rest, "set"))  # both directions (Link.set)
        elif action in ("down", "up"):
            link.set_up(action == "up")
        elif action != "show":
            raise ShellError(f"link: {action!r}? use set, down or up")
        self.say(self._describe_link(link))

    @staticmethod
    def _describe_link(link: Any) -> str:
        from stacklab.report.topology import describe_params

        state = "up" if link.up else "down"
        ab, ba = describe_params(link.ab.params), describe_params(link.ba.params)
        return f"{link.name} {state}: " + (ab if ab == ba else f"{link.ab.label} {ab}, "
                                           f"{link.ba.label} {ba}")

    def do_nodes(self, arg: str) -> None:
        """nodes: the nodes, their kinds and addresses."""
        self._ready()
        for name, node in self.net.nodes.items():
            addrs = getattr(node, "addresses", None)
            shown = " ".join(a for a in addrs(4)) if callable(addrs) else ""
            self.say(f"{name:<10} {self.net.kinds[name]:<7} {shown}")

    do_net = do_nodes

    def do_links(self, arg: str) -> None:
        """links: every link, up or down, and its parameters."""
        for link in self.net.links:
            self.say(self._describe_link(link))

    def do_add(self, arg: str) -> None:
        """add host|router|switch NAME | add link A B [KEY VALUE ...]: build the network
        (until it is first used)."""
        words = shlex.split(arg)
        if self.configured:
            raise ShellError("the network is in use (addresses and routes are set): the "
                             "topology is fixed; save it, edit the file and load it again")
        if len(words) >= 2 and words[0] in ("host", "router", "switch"):
            for name in words[1:]:
                getattr(self.net, f"add_{words[0]}")(name)
        elif len(words) >= 3 and words[0] == "link":
            self.say(self._describe_link(
                self.net.connect(words[1], words[2], **_pairs(words[3:], "add link"))))
        else:
            raise ShellError("add host NAME | add router NAME | add switch NAME | "
                             "add link A B [delay 5ms ...]")

    def do_capture(self, arg: str) -> None:
        """capture A-B [off] | capture off (or tcpdump A-B): print each frame delivered (or
        dropped) on a link as time runs."""
        words = shlex.split(arg)
        if words == ["off"] or not words:
            self.watching.clear()
            self.say("capture off")
            return
        link = self._link(words[0])
        ends = frozenset((link.a.name, link.b.name))
        if words[1:] == ["off"]:
            self.watching.discard(ends)
            self.say(f"capture on {link.name} off")
        else:
            self.watching.add(ends)
            self.say(f"capturing on {link.name} (frames print as time runs)")

    do_tcpdump = do_capture

    def do_diagram(self, arg: str) -> None:
        """diagram A B [C ...]: the sequence diagram of the frames between these nodes so far
        (the last 60 rows)."""
        from stacklab.trace.diagram import from_trace, render_text

        names = shlex.split(arg)
        if len(names) < 2:
            raise ShellError("diagram A B [C ...]: two or more node names")
        for name in names:
            self.net.node(name)
        rows = from_trace(self.net.tracer.events, names)
        if len(rows) > 60:
            self.say(f"(the last 60 of {len(rows)} rows)")
            rows = rows[-60:]
        self.say(render_text(rows, names))

    def do_save(self, arg: str) -> None:
        """save FILE.toml (the network and started apps, as a scenario) | FILE.html (the
        report of the session) | FILE.svg (the topology)."""
        path = arg.strip()
        if not path:
            raise ShellError("save FILE.toml | FILE.html | FILE.svg")
        if path.endswith(".toml"):
            text = self._scenario_text()
        elif path.endswith(".svg"):
            from stacklab.report.topology import render_topology, topology_of

            text = render_topology(topology_of(self.net))
        elif path.endswith((".html", ".htm")):
            text = self._report(path)
        else:
            raise ShellError(f"save {path}: the name ends in .toml, .html or .svg")
        with open(path, "w", encoding="utf-8") as fp:
            fp.write(text)
        self.say(f"saved {path}")

    def _scenario_text(self) -> str:
        from dataclasses import fields

        from stacklab.net.link import LinkParams

        default = LinkParams()
        out = [f"# saved by stacklab shell at t = {self.net.now:g} s", f"seed = {self.net.seed!r}",
               ""]
        for name in self.net.nodes:
            out += ["[[node]]", f"name = {_toml(name)}", f"kind = {_toml(self.net.kinds[name])}",
                    ""]
        for link in self.net.links:
            out += ["[[link]]", f"ends = {_toml([link.a.name, link.b.name])}"]
            if link.name != f"{link.a.name}-{link.b.name}":
                out.append(f"name = {_toml(link.name)}")
            diff = {}
            for f in fields(LinkParams):
                a, b = getattr(link.ab.params, f.name), getattr(link.ba.params, f.name)
                if a == b and a != getattr(default, f.name):
                    out.append(f"{f.name} = {_toml(_user_units(f.name, a))}")
                elif a != b:
                    diff[f.name] = (a, b)
            for side, i in (("forward", 0), ("reverse", 1)):
                if diff:
                    own = {k: _user_units(k, pair[i]) for k, pair in diff.items()}
                    out.append(f"{side} = {_toml(own)}")
            if not link.up:
                out.append(f"down = [[{_toml(f'{self.net.now:g}s')}]]")
            out.append("")
        for spec in self.apps:
            out += ["[[app]]"] + [f"{k} = {_toml(v)}" for k, v in spec.items()] + [""]
        return "\n".join(out)

    def _report(self, path: str) -> str:
        from stacklab.report.run import RunView, run_page

        view = RunView.of(self.net, self.net.tracer.events)
        counters = self.net.counters()
        summary = {"name": "stacklab shell", "scenario": "", "seed": self.net.seed,
                   "time": self.net.now, "apps": [{"node": s["node"], "kind": s["kind"],
                                                   "ok": True} for s in self.apps],
                   "nodes": {n: {"kind": self.net.kinds[n], "counters": c}
                             for n, c in counters["nodes"].items()},
                   "links": counters["links"]}
        return run_page(view, summary, html_path=path)

    def do_quit(self, arg: str) -> bool:
        """quit: leave the shell (exit and Ctrl-D too)."""
        return True

    do_exit = do_quit

    def do_EOF(self, arg: str) -> bool:
        if self.interactive:
            self.say()
        return True

    def do_help(self, arg: str) -> None:
        """help [COMMAND]: the commands, or one command's help."""
        if arg:
            doc = getattr(self, "do_" + arg, None) or getattr(self, "node_" + arg, None)
            if doc is None or not doc.__doc__:
                raise ShellError(f"no command {arg!r}")
            self.say(" ".join(doc.__doc__.split()))
            return
        self.say("node commands (NODE is a host or router name):")
        for verb in NODE_VERBS:
            self.say("  " + " ".join(getattr(self, "node_" + verb.replace("-", "_"))
                                     .__doc__.split(":")[0].split()))
        self.say("network commands:")
        for name in SHELL_COMMANDS:
            if name == "tcpdump":
                continue  # the same as capture
            doc = getattr(self, "do_" + name).__doc__ or name
            self.say("  " + " ".join(doc.split(":")[0].split()))

    # -- completion (on a terminal) ------------------------------------------------------------
    def completenames(self, text: str, *ignored: Any) -> list[str]:
        return sorted(w for w in [*SHELL_COMMANDS, *self.net.nodes] if w.startswith(text))

    def completedefault(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        words = line[:begidx].split()
        if words and words[0] in self.net.nodes:
            if len(words) == 1:
                return [v for v in NODE_VERBS if v.startswith(text)]
            if words[1] == "ip":
                return [v for v in ("addr", "route", "neigh") if v.startswith(text)]
            return [n for n in self.net.nodes if n.startswith(text)]
        if words and words[0] in ("link", "capture", "tcpdump"):
            if len(words) == 1:
                return [link.name for link in self.net.links if link.name.startswith(text)]
            return [v for v in ("set", "down", "up", "off") if v.startswith(text)]
        return [n for n in self.net.nodes if n.startswith(text)]

    def cmdloop_with_history(self) -> None:
        readline: Any = None
        if self.interactive:
            try:
                import readline
                readline.read_history_file(HISTORY)
            except (ImportError, OSError):
                pass
        try:
            self.cmdloop()
        finally:
            if readline is not None:
                try:
                    readline.write_history_file(HISTORY)
                except OSError:
                    pass


NODE_VERBS = ("ping", "traceroute", "ss", "ip", "dhcp", "curl", "start")
SHELL_COMMANDS = ("run", "time", "link", "links", "nodes", "add", "capture", "tcpdump",
                  "diagram", "save", "help", "quit")


class _Args(argparse.ArgumentParser):
    """argparse for a shell command: errors raise ShellError instead of exiting."""

    def __init__(self, prog: str, dest: str) -> None:
        super().__init__(prog=prog, add_help=False)
        self.add_argument("dest", metavar=dest)

    def error(self, message: str) -> Any:
        raise ShellError(f"{self.prog}: {message}")

    def parse(self, args: list[str]) -> argparse.Namespace:
        return self.parse_args(args)


# -- loading ---------------------------------------------------------------------------------

def open_network(path: str | None, seed: int | None = None) -> tuple[Any, dict[str, Any]]:
    """(network with a tracer, {"apps": [...], "duration": s}) of a scenario file, or an empty
    network; the scenario's apps are not started yet."""
    from stacklab.net.network import Network, TopologyError
    from stacklab.scenario.runner import ScenarioError, build_network, load_scenario
    from stacklab.trace.events import Tracer

    tracer = Tracer()
    if path is None:
        return Network(seed=1 if seed is None else seed, tracer=tracer), {"apps": [],
                                                                          "duration": 10.0}
    try:
        scn = load_scenario(path)
        net = build_network(scn, seed=seed, tracer=tracer)
    except (ScenarioError, TopologyError) as exc:
        raise CliError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: {exc}") from None
    return net, {"apps": scn.apps, "duration": scn.duration}


def _loaded_shell(args: argparse.Namespace, quiet: bool = False,
                  **kw: Any) -> tuple[Shell, float]:
    """The shell on the scenario's network, its apps started; and the scenario's duration."""
    net, scn = open_network(args.file, getattr(args, "seed", None))
    shell = Shell(net, configured=args.file is not None, **kw)
    try:
        for spec in scn["apps"]:
            shell.start_app(dict(spec), quiet)
    except StacklabError as exc:
        net.close()
        raise CliError(f"{args.file}: {exc}") from None
    return shell, scn["duration"]


def shell_command(args: argparse.Namespace) -> int:
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    sh, _duration = _loaded_shell(args, interactive=interactive)
    try:
        sh.cmdloop_with_history()
    finally:
        sh.net.close()
    return 1 if sh.failures and not interactive else 0


def _one_shot(args: argparse.Namespace, line: str, at: str | None = None) -> int:
    """Load FILE, start its apps, let time run to ``at`` (None: not at all; "end": the
    scenario's duration), run one shell command."""
    sh, duration = _loaded_shell(args, quiet=True)
    sh.precmd = lambda line: line  # type: ignore[method-assign]  # no transcript echo
    try:
        if at is not None:
            from stacklab.net.units import ParamError, parse_duration

            try:
                until = duration if at == "end" else parse_duration(at, "--at")
            except ParamError as exc:
                raise CliError(str(exc)) from None
            sh.net.run(until=until)
        sh.onecmd(line)
    finally:
        sh.net.close()
    return 1 if sh.failures or sh.status else 0


def ping_command(args: argparse.Namespace) -> int:
    return _one_shot(args, f"{args.node} ping {args.dest} -c {args.count}")


def traceroute_command(args: argparse.Namespace) -> int:
    return _one_shot(args, f"{args.node} traceroute {args.dest}")


def ss_command(args: argparse.Namespace) -> int:
    return _one_shot(args, f"{args.node} ss", args.at)


def register(sub: Any) -> None:
    p = sub.add_parser("shell", help="drive a simulated network interactively (as Mininet's CLI)",
                       description=__doc__.split("\n\n")[1].replace("``", "") if __doc__ else None)
    p.add_argument("file", metavar="FILE.toml", nargs="?", help="a scenario to load (its apps "
                   "start); without one, build the network with `add`")
    p.add_argument("--seed", type=int, default=None, help="override the file's seed")
    p.set_defaults(func=shell_command)
    for verb, func, extra in (("ping", ping_command, True),
                              ("traceroute", traceroute_command, True),
                              ("ss", ss_command, False)):
        q = sub.add_parser(verb, help=f"load a scenario and run `NODE {verb}` in it")
        q.add_argument("file", metavar="FILE.toml")
        q.add_argument("node", metavar="NODE")
        if extra:
            q.add_argument("dest", metavar="DEST", help="a node name or an address")
        if verb == "ping":
            q.add_argument("-c", "--count", type=int, default=4)
        if verb == "ss":
            q.add_argument("--at", default="end", metavar="TIME",
                           help="the virtual time to look at, e.g. 2.5s (default: the end of "
                                "the scenario's duration)")
        q.add_argument("--seed", type=int, default=None, help="override the file's seed")
        q.set_defaults(func=func)
