"""The simulated network: nodes, links, addressing, capture and running, on a virtual clock.

    net = stacklab.Network(seed=1)
    a, r, b = net.add_host("a"), net.add_router("r"), net.add_host("b")
    net.connect(a, r, delay="5ms", rate="100Mbit")
    net.connect(r, b, mtu=1280, loss=0.01)
    net.autoconfigure()          # 10.0.N.0/24 + fd00:0:0:N::/64 per segment, static routes, hosts
    net.capture("pcaps/")        # one pcap per link, virtual timestamps
    result = net.run(main(), until="60s")
    task = b.spawn(server())     # unmodified asyncio code on host b (stacklab.api.spawn)
    net.partition(["a"], ["b"]); net.run_for("5s"); net.heal()   # faults (net/faults.py)

Every node is driven by a :class:`~stacklab.api.driver.NodeDriver` on the network's
:class:`~stacklab.net.loop.VirtualTimeLoop` (hosts and routers are the API classes of
:mod:`stacklab.api.host`, which know their driver); every link direction is a chain of middlewares
(:mod:`stacklab.net.link`). Randomness: each node and each link derive their own
``random.Random`` from the network seed and their name.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import deque
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from stacklab.api.driver import DrivenHost, NodeDriver
from stacklab.api.host import Host, Router
from stacklab.device.pcap import LINKTYPE_ETHERNET, PcapWriter
from stacklab.errors import StacklabError
from stacklab.stack.node import Node
from stacklab.trace.events import Tracer
from stacklab.trace.label import Labeler

from .capture import Capture
from .faults import Faults, trace_fault
from .link import Direction, Link, LinkParams
from .loop import VirtualTimeLoop, describe_tasks
from .switch import Switch
from .units import ParamError, parse_duration

if TYPE_CHECKING:
    from stacklab.report.connection import Connection

__all__ = ["BroadcastDomain", "Network", "SimulationError", "SimulationTimeout", "TopologyError",
           "parse_down"]

T = TypeVar("T")


class TopologyError(StacklabError, ValueError):
    """A network that cannot be built: unknown node, switch loop, too many segments...
    ``key`` names the offending argument when there is one (``"ends"``, ``"name"``)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class SimulationTimeout(StacklabError, TimeoutError):
    """``run(coro, until=...)`` reached ``until`` before the coroutine finished."""


class SimulationError(StacklabError, RuntimeError):
    """A node, link or callback raised inside the simulation (a bug: the stack must drop and
    count bad input, never raise). The run stops at the first one; ``__cause__`` is the error."""


@dataclass(eq=False)
class BroadcastDomain:
    """One L2 broadcast domain (a point-to-point link, or switches and what hangs off them)."""

    number: int
    endpoints: list[tuple[Node, int]] = field(default_factory=list)  # (node, ifindex), in order
    prefix4: str = ""
    prefix6: str = ""


class _Attachment:
    """A node's side of its links: ifindex -> the Direction its frames go out on."""

    __slots__ = ("node", "sends", "loop")

    def __init__(self, node: Node, loop: asyncio.AbstractEventLoop) -> None:
        self.node = node
        self.sends: list[Any] = []  # ifindex -> its link's Direction (None: no link)
        self.loop = loop

    def transmit(self, ifindex: int, frame: bytes | bytearray) -> None:
        self.transmit_all([(ifindex, frame)])

    def transmit_all(self, out: list[tuple[int, bytes | bytearray]]) -> None:
        """Each ``(ifindex, frame)`` of ``out``, in order, onto its port's link: a driver's
        flush, at one instant (the clock, which moves only between loop callbacks, read once).
        A flush of several frames for one port (a host's) goes in one ``Direction.send_all``;
        one frame, or frames for several ports (a switch's flood, a router's flush), frame by
        frame (``Direction.send_one``)."""
        t = self.loop.time()
        sends = self.sends
        if len(out) > 1:
            first = out[0][0]
            for ifindex, _ in out:
                if ifindex != first:
                    break
            else:
                d = sends[first] if first < len(sends) else None
                if d is not None:
                    d.send_all(out, t)
                else:
                    self.node.counters["drop.link.unconnected"] += len(out)
                return
        for ifindex, frame in out:
            d = sends[ifindex] if ifindex < len(sends) else None
            if d is not None:
                d.send_one(frame, t)
            else:
                self.node.counters["drop.link.unconnected"] += 1


class Network:
    """A simulated network on a virtual clock. See the module docstring."""

    def __init__(self, seed: int | str = 0, *, tracer: Tracer | None = None) -> None:
        self.seed = seed
        self.tracer = tracer
        self.labeler: Labeler | None = None
        if tracer is not None:
            self.labeler = Labeler()  # one per run: TCP seq/ack shown relative to each ISN
        self.loop = VirtualTimeLoop()
        self.nodes: dict[str, Node] = {}
        self.kinds: dict[str, str] = {}  # name -> "host" | "router" | "switch" | other
        self.drivers: dict[str, NodeDriver] = {}
        self.links: list[Link] = []
        self.segments: list[BroadcastDomain] = []
        self._attach: dict[str, _Attachment] = {}
        self._switch_parent: dict[str, str] = {}  # union-find over switches joined by links
        self._captures: list[tuple[str, str]] = []  # (directory, point)
        self._writers: list[PcapWriter] = []
        self._closed = False
        self._error: BaseException | None = None
        self._error_text = ""
        self.loop.set_exception_handler(self._on_loop_error)
        self.faults = Faults(self)

    # -- randomness and time -----------------------------------------------------------------
    def rng(self, *parts: object) -> random.Random:
        """A ``random.Random`` for one named thing, derived from the network seed."""
        return random.Random("/".join(str(p) for p in (self.seed, *parts)))

    @property
    def now(self) -> float:
        return self.loop.time()

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, asyncio.CancelledError):
            # Python 3.11's asyncio.start_server callback calls task.exception() on a handler
            # task that was cancelled (a crash, the end of a run): not an error
            return
        if context.get("handle") is None or exc is None or self._error is not None:
            loop.default_exception_handler(context)
            return
        # An exception escaped a frame delivery or a timer: stop at once, run() raises it.
        self._error = exc
        notes = "; ".join(getattr(exc, "__notes__", ()))
        self._error_text = (f"{type(exc).__name__}: {exc} at t={loop.time():.6f}s "
                            + (notes if notes else f"in {context.get('handle')!r}"))
        loop.stop()

    # -- nodes -------------------------------------------------------------------------------
    def add_node(self, node: Node, kind: str | None = None) -> Node:
        """Attach any :class:`Node` (hosts, routers and switches use this too)."""
        name = node.name
        if not name or not isinstance(name, str) or any(ch in name for ch in "/\\ \t\n"):
            raise TopologyError(f"bad node name {name!r}: use letters, digits, '-' or '_'")
        if name in self.nodes:
            raise TopologyError(f"there is already a node named {name!r}")
        self.nodes[name] = node
        self.kinds[name] = kind or node.kind
        att = _Attachment(node, self.loop)
        self._attach[name] = att
        driver = self.drivers[name] = NodeDriver(node, self.loop, att.transmit, att.transmit_all)
        if isinstance(node, DrivenHost):
            node.attach(driver)  # the application API's clock and loop
        for directory, point in self._captures:
            self._capture_lo(node, directory, point)
        return node

    def add_host(self, name: str) -> Host:
        """A new host with the application API (:class:`stacklab.api.host.Host`)."""
        host = Host(name, rng=self.rng("node", name), tracer=self.tracer)
        self.add_node(host, "host")
        return host

    def add_router(self, name: str) -> Router:
        """A new router with the application API (:class:`stacklab.api.host.Router`)."""
        router = Router(name, rng=self.rng("node", name), tracer=self.tracer)
        self.add_node(router, "router")
        return router

    def add_switch(self, name: str, aging: float | str = 300.0) -> Switch:
        sw = Switch(name, aging=parse_duration(aging, "aging"), tracer=self.tracer)
        self.add_node(sw, "switch")
        return sw

    def node(self, ref: str | Node) -> Node:
        if isinstance(ref, Node):
            if self.nodes.get(ref.name) is not ref:
                raise TopologyError(f"node {ref.name!r} is not part of this network")
            return ref
        try:
            return self.nodes[ref]
        except KeyError:
            known = ", ".join(self.nodes) or "none yet"
            raise TopologyError(f"unknown node {ref!r} (known: {known})") from None

    __getitem__ = node

    def link(self, name: str) -> Link:
        for link in self.links:
            if link.name == name:
                return link
        known = ", ".join(link.name for link in self.links)
        raise TopologyError(f"unknown link {name!r} (known: {known})")

    # -- links -------------------------------------------------------------------------------
    def connect(self, a: str | Node, b: str | Node, *, name: str | None = None,
                forward: dict[str, Any] | None = None, reverse: dict[str, Any] | None = None,
                down: Iterable[Any] | None = None, **params: Any) -> Link:
        """Join a new interface of ``a`` to a new interface of ``b``.

        ``params`` are :class:`~stacklab.net.link.LinkParams` names in user units (``mtu=1500,
        delay="5ms", jitter="1ms", rate="100Mbit", queue=100, loss=0.01, duplicate=0.001,
        reorder=0.01, reorder_delay="2ms", corrupt=0.001, icmp_blackhole=True``) for both
        directions; ``forward`` (a→b) and ``reverse`` (b→a) override them per direction.
        ``down=[("2s", "4s"), ("10s",)]`` takes the link down at 2 s, up at 4 s, down at 10 s.
        """
        na, nb = self.node(a), self.node(b)
        if na is nb:
            raise TopologyError(f"cannot connect {na.name!r} to itself", "ends")
        base = LinkParams().with_updates(params)
        ab = base.with_updates(forward or {})
        ba = base.with_updates(reverse or {})
        for side, own, p in (("forward", forward, ab), ("reverse", reverse, ba)):
            keys = [k for k in LinkParams.QUEUE_PARAMS if k in params] + [
                f"{side}.{k}" for k in LinkParams.QUEUE_PARAMS if k in (own or {})]
            if p.rate is None and keys:
                what = "a queue limit" if keys[0].endswith("queue") else "a queue discipline"
                raise ParamError(keys[0], f"{what} applies to a rate-limited link: set rate too")
        if isinstance(na, Switch) and isinstance(nb, Switch):
            ra, rb = self._sw_find(na.name), self._sw_find(nb.name)
            if ra == rb:
                raise TopologyError(
                    f"connecting switches {na.name!r} and {nb.name!r} makes a loop (they are "
                    "already joined, and there is no spanning tree): frames would circle forever",
                    "ends")
        intervals = parse_down(down) if down is not None else []
        if name is None:
            name = f"{na.name}-{nb.name}"
            n = 2
            while any(l.name == name for l in self.links):
                name = f"{na.name}-{nb.name}-{n}"
                n += 1
        elif not isinstance(name, str) or not name or any(ch in name for ch in "/\\\0"):
            raise TopologyError(f"bad link name {name!r} (it names the pcap file)", "name")
        elif any(l.name == name for l in self.links):
            raise TopologyError(f"there is already a link named {name!r}", "name")
        pa = self._add_port(na, ab.mtu)
        pb = self._add_port(nb, ba.mtu)
        link = Link(name, na, pa, nb, pb)
        link.setup(ab, ba, self.seed, self.loop)
        for d, sender, receiver, rx_if in ((link.ab, na, nb, pb), (link.ba, nb, na, pa)):
            if self.tracer is not None:
                d.tracer = self.tracer
                d.labeler = self.labeler
                d.rebuild()
            d.receiver = self.drivers[receiver.name]
            d.rx_ifindex = rx_if
            sends = self._attach[sender.name].sends
            tx_if = pa if sender is na else pb
            while len(sends) <= tx_if:
                sends.append(None)
            sends[tx_if] = d
        if isinstance(na, Switch) and isinstance(nb, Switch):
            self._switch_parent[self._sw_find(na.name)] = self._sw_find(nb.name)
        for at, until in intervals:
            link.schedule_down(at, until)
        self.links.append(link)
        for directory, point in self._captures:
            self._capture_link(link, directory, point)
        return link

    def _add_port(self, node: Node, mtu: int) -> int:
        index = len(node.ports)
        node_no = list(self.nodes).index(node.name) + 1
        mac = bytes((0x02, 0x00, node_no >> 8 & 0xFF, node_no & 0xFF, index >> 8 & 0xFF,
                     index & 0xFF))
        add = getattr(node, "add_interface", None) or node.add_port
        port = add(f"eth{index}", mac, mtu)
        port.csum_offload = True  # a simulated link: veth-like checksum offload (PartialFrame)
        return port.index

    def _sw_find(self, name: str) -> str:
        parent = self._switch_parent
        while parent.get(name, name) != name:
            name = parent[name]
        return name

    # -- addressing and routes ---------------------------------------------------------------
    def l2_segments(self) -> list[BroadcastDomain]:
        """The broadcast domains, numbered from 1 in the order their first link was made."""
        segments: list[BroadcastDomain] = []
        by_switch: dict[str, BroadcastDomain] = {}

        def switch_segment(sw: Node) -> BroadcastDomain:
            root = self._sw_find(sw.name)
            seg = by_switch.get(root)
            if seg is None:
                seg = by_switch[root] = BroadcastDomain(0)
                segments.append(seg)
            return seg

        for link in self.links:
            a_sw, b_sw = isinstance(link.a, Switch), isinstance(link.b, Switch)
            if a_sw and b_sw:
                switch_segment(link.a)
            elif a_sw:
                switch_segment(link.a).endpoints.append((link.b, link.b_port))
            elif b_sw:
                switch_segment(link.b).endpoints.append((link.a, link.a_port))
            else:
                segments.append(BroadcastDomain(0, [(link.a, link.a_port), (link.b, link.b_port)]))
        segments = [s for s in segments if s.endpoints]
        for number, seg in enumerate(segments, 1):
            seg.number = number
        return segments

    def autoconfigure(self) -> None:
        """Addresses on every interface, shortest-path static routes on every node, and the
        name → addresses map (``node.hosts``) on every node, like /etc/hosts.

        L2 segment N gets ``10.0.N.0/24`` and ``fd00:0:0:N::/64``; its interfaces get host numbers
        1, 2, 3... in link order (so ``10.0.N.k`` and ``fd00:0:0:N::k`` go together).
        """
        segments = self.l2_segments()
        if len(segments) > 255:
            raise TopologyError(f"{len(segments)} L2 segments; autoconfigure numbers at most 255")
        addr: dict[tuple[str, int], tuple[str, str]] = {}  # (node, ifindex) -> (v4, v6)
        node_ifs: dict[str, list[tuple[int, BroadcastDomain]]] = {}
        for seg in segments:
            n = seg.number
            seg.prefix4, seg.prefix6 = f"10.0.{n}.0/24", f"fd00:0:0:{n}::/64"
            if len(seg.endpoints) > 254:
                raise TopologyError(f"segment {n} has {len(seg.endpoints)} interfaces; "
                                    "a /24 holds 254")
            for k, (node, ifindex) in enumerate(seg.endpoints, 1):
                v4, v6 = f"10.0.{n}.{k}", f"fd00:0:0:{n}::{k}"
                addr[(node.name, ifindex)] = (v4, v6)
                node_ifs.setdefault(node.name, []).append((ifindex, seg))
                if hasattr(node, "add_address"):
                    node.add_address(ifindex, f"{v4}/24")
                    node.add_address(ifindex, f"{v6}/64")
        self.segments = segments
        self.addresses = addr

        for name in node_ifs:
            node = self.nodes[name]
            if not hasattr(node, "add_route"):
                continue
            for seg, (v4, v6) in self._routes_from(name, node_ifs, addr).items():
                node.add_route(seg.prefix4, via=v4)
                node.add_route(seg.prefix6, via=v6)

        names: dict[str, list[str]] = {}
        for name, ifs in node_ifs.items():
            v4s = [addr[(name, i)][0] for i, _ in ifs]
            v6s = [addr[(name, i)][1] for i, _ in ifs]
            names[name] = v4s + v6s
        for node in self.nodes.values():
            hosts = getattr(node, "hosts", None)
            if isinstance(hosts, dict):
                hosts.update({k: list(v) for k, v in names.items()})

    def _routes_from(self, src: str, node_ifs: dict[str, list[tuple[int, BroadcastDomain]]],
                     addr: dict[tuple[str, int], tuple[str, str]]
                     ) -> dict[BroadcastDomain, tuple[str, str]]:
        """Breadth-first from ``src`` through routers: remote segment -> first-hop addresses."""
        first_hop: dict[str, tuple[str, str] | None] = {src: None}
        arrived: dict[str, BroadcastDomain] = {}  # the segment each node was reached by
        routes: dict[BroadcastDomain, tuple[str, str] | None] = {}
        queue = deque([src])
        while queue:
            u = queue.popleft()
            if u != src and self.kinds.get(u) != "router":
                continue  # hosts and other nodes do not forward
            if u != src and arrived[u] is self._nat_outside(u, node_ifs):
                continue  # a NAT router hides its inside segments from the outside
            for _, seg in node_ifs.get(u, []):
                if seg in routes:
                    continue
                routes[seg] = first_hop[u]
                for v, v_if in seg.endpoints:
                    if v.name not in first_hop:
                        first_hop[v.name] = first_hop[u] or addr[(v.name, v_if)]
                        arrived[v.name] = seg
                        queue.append(v.name)
        return {seg: via for seg, via in routes.items() if via is not None}

    def _nat_outside(self, name: str, node_ifs: dict[str, list[tuple[int, BroadcastDomain]]]
                     ) -> BroadcastDomain | None:
        """The segment of a NAT router's outside interface (``router.nat.outside``)."""
        node = self.nodes[name]
        nat = getattr(node, "nat", None)
        if nat is None:
            return None
        for ifindex, seg in node_ifs.get(name, []):
            if node.ports[ifindex].name == nat.outside:
                return seg
        return None

    # -- capture -----------------------------------------------------------------------------
    def capture(self, directory: str | os.PathLike[str], point: str = "rx") -> Capture:
        """One pcap per link in ``directory`` (``<link name>.pcap``, both directions, nanosecond
        virtual timestamps), for the links that exist and those made later; the
        :class:`~stacklab.net.capture.Capture` returned reads them back (a packet table).

        ``point="rx"``: frames as delivered (after loss, corruption, delay: what a receiver's
        tcpdump shows). ``point="tx"``: frames as the senders sent them.

        Each host's loopback interface is a capture point too: ``<host>.lo.pcap`` (with the
        ``rx`` point; lo loses nothing, so rx and tx are the same frames), made on the first
        looped packet only, so a run without local traffic writes no such file.
        """
        if point not in ("rx", "tx"):
            raise ValueError(f"capture point is 'rx' or 'tx', not {point!r}")
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        self._captures.append((directory, point))
        for link in self.links:
            self._capture_link(link, directory, point)
        for node in self.nodes.values():
            self._capture_lo(node, directory, point)
        return Capture(self, directory, point)

    def _capture_lo(self, node: Node, directory: str, point: str) -> None:
        taps = getattr(node, "lo_taps", None)
        if taps is None or point != "rx":
            return
        writers: list[PcapWriter] = []

        def tap(frame: bytes, t: float) -> None:
            if not writers:
                writers.append(PcapWriter(os.path.join(directory, f"{node.name}.lo.pcap"),
                                          LINKTYPE_ETHERNET, nanosecond=True))
                self._writers.append(writers[0])
            writers[0].write(frame, t)

        taps.append(tap)

    def flush_captures(self) -> None:
        for writer in self._writers:
            writer.flush()

    def _capture_link(self, link: Link, directory: str, point: str) -> None:
        suffix = "" if point == "rx" else ".tx"
        writer = PcapWriter(os.path.join(directory, f"{link.name}{suffix}.pcap"),
                            LINKTYPE_ETHERNET, nanosecond=True)
        self._writers.append(writer)
        for d in link.directions:
            (d.rx_taps if point == "rx" else d.tx_taps).append(writer)
            d.rebuild()

    # -- faults (net/faults.py) ----------------------------------------------------------------
    def partition(self, *groups: Iterable[str | Node]) -> None:
        """Cut each group of nodes off from the others until :meth:`heal`."""
        self.faults.partition(*groups)

    def heal(self) -> None:
        self.faults.heal()

    def crash(self, node: str | Node) -> None:
        """``host.crash()`` by name (:meth:`stacklab.api.host.Host.crash`)."""
        host = self._stack_of(node, "crash")
        host.crash()
        trace_fault(self, "crash", node=host.name)

    def restart(self, node: str | Node) -> None:
        """``host.restart()`` by name."""
        host = self._stack_of(node, "restart")
        host.restart()
        trace_fault(self, "restart", node=host.name)

    def _stack_of(self, ref: str | Node, what: str) -> Host:
        node = self.node(ref)
        if not isinstance(node, Host):
            raise TopologyError(f"{node.name!r} is a {self.kinds[node.name]}: it has no stack to "
                                f"{what} (crash a host or a router; take a link down with "
                                "link.set(down=True))")
        return node

    # -- running -----------------------------------------------------------------------------
    def run_for(self, duration: float | str) -> None:
        """Let ``duration`` of virtual time pass ("30s"), the spawned programs running."""
        self.run(until=self.now + parse_duration(duration, "duration"))

    def run(self, coro: Coroutine[Any, Any, T] | asyncio.Future[T] | None = None, *,
            until: float | str | None = None) -> T | None:
        """Run the simulation until ``coro`` finishes and return its result.

        ``until`` is a virtual time (seconds since the network was made, or "30s"): with a
        coroutine, :class:`SimulationTimeout` is raised if it is still running then (and it is
        cancelled); without one, the simulation just runs until that time. Other tasks (servers,
        sinks) stay alive between calls. Raises
        :class:`~stacklab.net.loop.SimulationDeadlock` when everything waits and nothing is
        scheduled.
        """
        loop = self.loop
        if self._error is not None:
            if isinstance(coro, Coroutine):
                coro.close()
            raise SimulationError(f"the simulation already failed: {self._error_text}")
        deadline = None if until is None else parse_duration(until, "until")
        main: Coroutine[Any, Any, Any] | asyncio.Future[Any]
        if coro is None:
            if deadline is None:
                raise ValueError("run() needs a coroutine, or until= to just let time pass")
            main = asyncio.sleep(max(0.0, deadline - loop.time()))
            deadline = None
        else:
            main = coro
        # a spawned program (host.spawn) is awaited as it is
        task = main if isinstance(main, asyncio.Future) else loop.create_task(main, name="main")
        timed_out: list[str] = []
        handle = None
        if deadline is not None:
            def on_deadline() -> None:
                if not task.done():
                    timed_out.extend(describe_tasks(loop))
                    task.cancel()
            handle = loop.call_at(deadline, on_deadline)
        try:
            result: T | None = loop.run_until_complete(task)
            return result
        except RuntimeError:
            if self._error is not None:
                task.cancel()
                raise SimulationError(self._error_text) from self._error
            raise
        except asyncio.CancelledError:
            if timed_out:
                raise SimulationTimeout(
                    f"still running at t={deadline:g}s (until=): " + "; ".join(timed_out)) from None
            raise
        finally:
            if handle is not None:
                handle.cancel()
            for writer in self._writers:
                writer.flush()

    def close(self) -> None:
        """Cancel what still runs, close capture files and the loop."""
        if self._closed:
            return
        self._closed = True
        loop = self.loop
        pending = loop.unfinished_tasks()

        def quiet(lp: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            # Python 3.11's asyncio.start_server callback calls task.exception() on the handler
            # tasks we cancel here, which raises CancelledError into the loop: not an error.
            if not isinstance(context.get("exception"), asyncio.CancelledError):
                lp.default_exception_handler(context)

        loop.set_exception_handler(quiet)
        for t in pending:
            t.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        for writer in self._writers:
            writer.close()
        loop.close()

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- results -----------------------------------------------------------------------------
    def counters(self) -> dict[str, Any]:
        """``{"nodes": {name: {...}}, "links": {name: {"a>b": {...}, "b>a": {...}}}}``."""
        return {
            "nodes": {name: dict(sorted(n.counters.items())) for name, n in self.nodes.items()},
            "links": {link.name: link.counters() for link in self.links},
        }

    def directions(self) -> list[Direction]:
        return [d for link in self.links for d in link.directions]

    def connections(self) -> list[Connection]:
        """Every TCP connection of every node, finished ones too; each draws itself in Jupyter
        (figures, sequence diagram, plots: those two need the network's tracer)."""
        from stacklab.report.connection import connections

        return connections(self)

    # -- Jupyter -----------------------------------------------------------------------------
    def _repr_svg_(self) -> str:
        """The topology."""
        from stacklab.report.topology import render_topology, topology_of

        return render_topology(topology_of(self))

    def _repr_html_(self) -> str:
        """The topology and a table of the links (state, parameters, frames each way)."""
        from stacklab.report.page import table
        from stacklab.report.topology import describe_params

        rows = [(link.name, "up" if link.up else "down", describe_params(d.params), d.label,
                 d.counters["tx.frames"], d.counters["rx.frames"])
                for link in self.links for d in link.directions]
        return (f"<div class='stacklab-network'>{self._repr_svg_()}"
                + table(("link", "state", "parameters", "direction", "sent", "delivered"), rows)
                + "</div>")


def parse_down(down: Iterable[Any]) -> list[tuple[float, float | None]]:
    """``[("2s", "4s"), ("10s",)]`` or ``["10s"]`` -> [(2.0, 4.0), (10.0, None)]."""
    if isinstance(down, str | bytes):
        raise ParamError("down", "expected a list of [down_at, up_at] pairs, e.g. [['2s', '4s']]")
    out = []
    for item in down:
        if isinstance(item, str | int | float):
            item = [item]
        if not isinstance(item, list | tuple) or not 1 <= len(item) <= 2:
            raise ParamError("down", f"expected [down_at] or [down_at, up_at], got {item!r}")
        at = parse_duration(item[0], "down")
        until = parse_duration(item[1], "down") if len(item) == 2 else None
        if until is not None and until <= at:
            raise ParamError("down", f"up_at must come after down_at, got {item!r}")
        out.append((at, until))
    return out
