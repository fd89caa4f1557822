"""A small toolkit for tour steps: a traced network, frame taps and droppers, diagrams.

Everything a step reports is measured here: frames are taken from the links (a middleware that
keeps a copy, or the trace), states and timers from the trace, figures from the nodes.
:func:`lab_step` is the skeleton every step shares: a fresh :class:`Lab`, closed afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Coroutine, Sequence
from typing import Any

from stacklab.net.link import Stage
from stacklab.net.network import Network
from stacklab.trace.diagram import (
    Arrow,
    Note,
    Row,
    from_trace,
    page_col_width,
    render_svg,
    render_text,
)
from stacklab.trace.events import TraceEvent, Tracer
from stacklab.wire import MalformedPacket, ipv4, ipv6, tcp, udp
from stacklab.wire.ethernet import ETH_P_IPV4, ETH_P_IPV6, EthernetView

from .registry import StepContext, StepResult, step


class Tap(Stage):
    """Keeps ``(time, direction label, frame)`` of every frame that got past the impairments."""

    __slots__ = ("log",)

    def __init__(self, direction: Any, log: list[tuple[float, str, bytes]]) -> None:
        super().__init__(direction)
        self.log = log

    def push(self, frame: bytes, t: float) -> None:
        self.log.append((t, self.dir.label, frame))
        self.next.push(frame, t)


class Dropper(Stage):
    """Drops the frames ``pick(frame)`` chooses (counted ``drop.<reason>``, traced as drops)."""

    __slots__ = ("pick", "reason")

    def __init__(self, direction: Any, pick: Callable[[bytes], bool], reason: str) -> None:
        super().__init__(direction)
        self.pick = pick
        self.reason = reason

    def push(self, frame: bytes, t: float) -> None:
        if self.pick(frame):
            self.dir.drop(self.reason, frame, t)
        else:
            self.next.push(frame, t)


class Mangler(Stage):
    """Flips one bit in the frames ``pick(frame)`` chooses: ``offset`` bytes from the end."""

    __slots__ = ("pick", "offset")

    def __init__(self, direction: Any, pick: Callable[[bytes], bool], offset: int) -> None:
        super().__init__(direction)
        self.pick = pick
        self.offset = offset

    def push(self, frame: bytes, t: float) -> None:
        if self.pick(frame):
            b = bytearray(frame)
            b[len(b) - self.offset] ^= 0x10
            frame = self.dir.corrupted_copy(frame, bytes(b), t)
        self.next.push(frame, t)


def l4(frame: bytes) -> tuple[int, Any, Any] | None:
    """(protocol, ip view, transport payload memoryview) of an unfragmented IP frame."""
    try:
        eth = EthernetView(frame)
        if eth.ethertype == ETH_P_IPV4:
            ip = ipv4.IPv4View(eth.payload)
            if ip.mf or ip.frag_offset:
                return None
            return ip.proto, ip, ip.payload
        if eth.ethertype == ETH_P_IPV6:
            ip6 = ipv6.IPv6View(eth.payload)
            proto, off, frag, _ = ipv6.walk_ext_headers(ip6)
            if frag is not None:
                return None
            return proto, ip6, ip6.buf[off:40 + ip6.payload_length]
    except MalformedPacket:
        return None
    return None


def ipv4_frames(frames: list[tuple[float, bytes]]) -> list[ipv4.IPv4View]:
    """The IPv4 packets among tapped ``(time, frame)`` pairs."""
    out = []
    for _, f in frames:
        eth = EthernetView(f)
        if eth.ethertype == ETH_P_IPV4:
            out.append(ipv4.IPv4View(eth.payload))
    return out


def tcp_view(frame: bytes) -> tcp.TcpView | None:
    got = l4(frame)
    if got is None or got[0] != 6:
        return None
    try:
        return tcp.TcpView(got[2])
    except MalformedPacket:
        return None


def udp_view(frame: bytes) -> udp.UdpView | None:
    got = l4(frame)
    if got is None or got[0] != 17:
        return None
    try:
        return udp.UdpView(got[2])
    except MalformedPacket:
        return None


def nth(pred: Callable[[bytes], bool], *which: int) -> Callable[[bytes], bool]:
    """A ``pick`` for :class:`Dropper`: the ``which``-th frames (1-based) matching ``pred``."""
    seen = [0]
    wanted = set(which)

    def pick(frame: bytes) -> bool:
        if not pred(frame):
            return False
        seen[0] += 1
        return seen[0] in wanted

    return pick


def tcp_data(frame: bytes) -> bool:
    v = tcp_view(frame)
    return v is not None and v.payload_len > 0


class Lab:
    """A traced network for one tour step."""

    def __init__(self, ctx: StepContext, name: str) -> None:
        self.ctx = ctx
        self.name = name
        self.tracer = Tracer()
        self.net = Network(seed=ctx.seed, tracer=self.tracer)
        self.frames: list[tuple[float, str, bytes]] = []

    @property
    def events(self) -> list[TraceEvent]:
        return self.tracer.events

    def connect(self, a: str, b: str, *, tap: bool = False, **params: Any) -> Any:
        link = self.net.connect(a, b, **params)
        if tap:
            link.add_middleware(lambda d: Tap(d, self.frames))
        return link

    def pair(self, **link: Any) -> tuple[Any, Any]:
        """Hosts "client" and "server" on one tapped link (10 ms unless ``delay`` says), started."""
        c, s = self.net.add_host("client"), self.net.add_host("server")
        link.setdefault("delay", "10ms")
        self.connect("client", "server", tap=True, **link)
        self.start()
        return c, s

    def through_router(self, mtu: int) -> tuple[Any, Any, Any]:
        """Hosts "a" and "b" with router "r" between them: a-r at MTU 1500, r-b at ``mtu``
        (2 ms each way, tapped), started: the path MTU steps of the PMTU chapter."""
        net = self.net
        a, r, b = net.add_host("a"), net.add_router("r"), net.add_host("b")
        self.connect("a", "r", mtu=1500, delay="2ms", tap=True)
        self.connect("r", "b", mtu=mtu, delay="2ms", tap=True)
        self.start()
        return a, r, b

    def start(self) -> None:
        """Addresses and routes; captures into ``--pcap DIR/<step>/`` when asked."""
        self.net.autoconfigure()
        if self.ctx.pcap_dir is not None:
            self.net.capture(self.ctx.pcap_dir / self.name)

    def run(self, coro: Coroutine[Any, Any, Any], until: float | None = None) -> Any:
        return self.net.run(coro, until=until)

    def close(self) -> None:
        self.net.close()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sent(self, label: str) -> list[tuple[float, bytes]]:
        """Frames tapped in direction ``label`` ("a>b")."""
        return [(t, f) for t, d, f in self.frames if d == label]

    def select(self, layer: str | None = None, event: str | None = None,
               node: str | None = None) -> list[TraceEvent]:
        return list(self.tracer.select(node=node, layer=layer, event=event))

    def states(self, node: str, conn_port: int | None = None) -> list[str]:
        """The TCP states ``node`` entered, in order (of the connection with local port
        ``conn_port`` when given)."""
        out = []
        for ev in self.select("tcp", "state", node):
            conn = str(ev.details.get("conn", ""))
            if conn_port is not None and not conn.split(">")[0].endswith(f":{conn_port}"):
                continue
            out.append(str(ev.details["new"]))
        return out

    def rows(self, lifelines: Sequence[str], kinds: Collection[str] | None = None,
             start: float | None = None, end: float | None = None,
             notes: bool = True) -> list[Row]:
        return from_trace(self.events, lifelines, start=start, end=end, kinds=kinds,
                          notes=notes)

    def diagram(self, result: StepResult, rows: Sequence[Row], lifelines: Sequence[str],
                title: str) -> None:
        result.diagram = render_text(rows, lifelines, width=80)
        result.svg = render_svg(rows, lifelines, title=title,
                                col_width=page_col_width(len(lifelines)))


LabStep = Callable[[Lab, StepResult], None]


def lab_step(name: str) -> Callable[[LabStep], LabStep]:
    """Registers ``fn(lab, res)`` as the tour step ``name``: it builds, runs and measures its
    network on a fresh ``lab`` and fills in ``res``; the lab is closed afterwards."""

    def deco(fn: LabStep) -> LabStep:
        @step(name)
        def run(ctx: StepContext) -> StepResult:
            res = StepResult()
            with Lab(ctx, name) as lab:
                fn(lab, res)
            return res

        return fn

    return deco


# -- what steps measure with ------------------------------------------------------------------


def addr(host: Any, family: int = 4) -> str:
    """``host``'s address of that family, without the prefix length."""
    return str(host.address(family)).split("/")[0]


def counter(node: Any, key: str) -> int:
    """One of ``node``'s counters (0 when it never counted)."""
    return int(node.counters.get(key, 0))


def payload(n: int, seed: int = 0) -> bytes:
    """``n`` bytes of a recognisable pattern."""
    return bytes((i * 7 + seed) & 0xFF for i in range(n))


async def sink(host: Any, port: int, got: bytearray, close_after: float = 0.0) -> Any:
    """A TCP server that reads everything, then (after ``close_after``) closes."""

    async def handle(r: Any, w: Any) -> None:
        while True:
            chunk = await r.read(65536)
            if not chunk:
                break
            got.extend(chunk)
        if close_after:
            await asyncio.sleep(close_after)
        w.close()

    return await host.start_server(handle, port)


async def send(host: Any, dst: str, port: int, data: bytes) -> None:
    """Connect, send ``data``, close, and read until the peer closes too."""
    r, w = await host.open_connection(dst, port)
    w.write(data)
    await w.drain()
    w.close()
    await w.wait_closed()
    await r.read()


def cut(rows: Sequence[Row], limit: int) -> list[Row]:
    """The first ``limit`` rows (a diagram that fits a screen)."""
    return list(rows[:limit])


def squeeze(rows: Sequence[Row], keep: int = 2) -> list[Row]:
    """Runs of more than ``keep + 1`` alike arrows (same ends, same fate, same kind of frame)
    become their first ``keep`` and a note saying how many more there were."""
    from stacklab.trace.label import label_kind

    def shape(r: Row) -> tuple[Any, ...] | None:
        if not isinstance(r, Arrow):
            return None
        # the flags, PSH aside (it falls on every TSO packet's end: data is data)
        return (r.src, r.dst, r.dropped, label_kind(r.label),
                r.label.split(" ")[0].replace("P", ""))

    out: list[Row] = []
    i = 0
    while i < len(rows):
        s = shape(rows[i])
        j = i + 1
        if s is not None:
            while j < len(rows) and shape(rows[j]) == s:
                j += 1
        run = j - i
        if s is not None and run > keep + 1:
            out.extend(rows[i:i + keep])
            last = rows[j - 1]
            assert isinstance(last, Arrow)
            out.append(Note(last.time, last.src, f"... {run - keep} more"))
        else:
            out.extend(rows[i:j])
        i = j
    return out
