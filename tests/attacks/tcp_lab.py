"""A sans-IO lab for attacks on one host's TCP layer, on explicit virtual time.

The server is a real :class:`TcpLayer` over :class:`LabHost`, a host that only records what the
layer sends; its clients are :class:`Tcb` objects driven by hand. Every segment goes through the
wire format both ways. An attacker injects segments with any source address (``inject``) and,
being off-path, sees only what the server sends to its own address (``take_sent``).
"""

from __future__ import annotations

import random
from collections import Counter, deque
from typing import Any

from stacklab.stack.route import NO_METRICS, RouteMetrics, RoutingTable
from stacklab.stack.tcp.config import TcpConfig
from stacklab.stack.tcp.fsm import ESTABLISHED
from stacklab.stack.tcp.layer import TcpLayer
from stacklab.stack.tcp.tcb import Tcb
from stacklab.wire.tcp import TcpView, build_tcp

SERVER_IP = bytes([10, 0, 0, 1])
SERVER_PORT = 80


class LabHost:
    """What :class:`TcpLayer` asks of a host (``TcpHost``), keeping what it sends in ``sent``."""

    def __init__(self, seed: int) -> None:
        self.name = "server"
        self.counters: Counter[str] = Counter()
        self.rng = random.Random(seed)
        self.tracer = None
        self.routes = RoutingTable()
        self.rx_gso_size = 0
        self.interfaces: list[Any] = []
        self.sent: deque[tuple[bytes, TcpView]] = deque()  # (destination, segment), oldest first

    def trace(self, now: float, layer: str, event: str, **details: Any) -> None:
        pass

    def register_protocol(self, proto: int, handler: Any, view_handler: Any = None) -> None:
        pass

    def register_icmp_error(self, proto: int, handler: Any) -> None:
        pass

    def add_timer_source(self, obj: Any) -> None:
        pass

    def ip_send(self, src: bytes | None, dst: bytes, proto: int, payload: Any, now: float,
                **kw: Any) -> int | None:
        self.sent.append((dst, TcpView(bytes(payload))))
        return None

    def source_address_for(self, dst: bytes) -> bytes | None:
        return SERVER_IP

    def path_mtu(self, dst: bytes, now: float | None = None) -> int:
        return 1500

    def route_metrics(self, dst: bytes) -> RouteMetrics:
        return NO_METRICS

    def xmit_blocked(self, dst: bytes) -> bool:
        return False

    def route_out(self, route: Any, dst: bytes) -> tuple[Any, bytes]:
        return None, dst

    def request_wake(self) -> None:
        pass


def wire(tcb: Tcb) -> list[TcpView]:
    """A client's queued segments, as bytes on the wire."""
    return [TcpView(bytes(build_tcp(tcb.local_ip, tcb.remote_ip, tcb.local_port,
                                    tcb.remote_port, s.seq, s.ack, s.flags, s.window, s.payload,
                                    s.options_bytes())))
            for s in tcb.segments_to_send()]


class Lab:
    """One server (a TCP layer listening on port 80) and the clients connected to it."""

    def __init__(self, seed: int = 1, config: TcpConfig | None = None) -> None:
        self.now = 0.0
        self.host = LabHost(seed)
        self.layer = TcpLayer(self.host, config)
        self.layer.listen(SERVER_PORT, on_established=lambda tcb: None)
        self.clients: dict[tuple[bytes, int], Tcb] = {}
        self._busy: dict[Tcb, None] = {}  # clients that may have segments to send
        self.injected = 0  # segments the attacker sent

    # -- clients ------------------------------------------------------------------------------
    def connect(self, ip: bytes, port: int, config: TcpConfig | None = None) -> Tcb:
        tcb = Tcb(ip, port, SERVER_IP, SERVER_PORT, iss=random.Random(port).getrandbits(32),
                  now=self.now, config=config or TcpConfig(), rng=random.Random(port))
        self.clients[(ip, port)] = tcb
        tcb.connect(self.now)
        self._busy[tcb] = None
        self.exchange()
        assert tcb.state is ESTABLISHED
        return tcb

    def server_side(self, client: Tcb) -> Tcb:
        """The server's TCB of a client's connection."""
        return self.layer.conns[(SERVER_IP, SERVER_PORT, client.local_ip, client.local_port)]

    # -- the wire -----------------------------------------------------------------------------
    def inject(self, src: bytes, sport: int, seq: int, ack: int, flags: int,
               payload: bytes = b"", window: int = 1000) -> None:
        """A segment to the server claiming to come from ``src``:``sport``."""
        raw = build_tcp(src, SERVER_IP, sport, SERVER_PORT, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                        flags, window, payload)
        self.injected += 1
        self.layer.receive_view(src, SERVER_IP, TcpView(bytes(raw)), None, self.now, False,
                                None)

    def take_sent(self, dst: bytes) -> list[TcpView]:
        """What the server sent to ``dst`` (taken off the wire: the clients never see it)."""
        sent = self.host.sent
        mine = [v for d, v in sent if d == dst]
        self.host.sent = deque((d, v) for d, v in sent if d != dst)
        return mine

    def exchange(self) -> None:
        """Deliver segments both ways until the wire is quiet (the application side of the
        server pulls its events and does nothing with them)."""
        layer = self.layer
        while True:
            layer.poll(self.now)
            layer.events.clear()
            busy, self._busy = self._busy, {}
            moved = False
            for tcb in busy:
                for v in wire(tcb):
                    moved = True
                    layer.receive_view(tcb.local_ip, SERVER_IP, v, None, self.now, False, None)
            sent = self.host.sent
            while sent:
                moved = True
                dst, v = sent.popleft()
                client = self.clients.get((dst, v.dst_port))
                if client is not None:
                    client.receive(v, self.now)
                    self._busy[client] = None
            if not moved:
                return

    def send(self, client: Tcb, data: bytes) -> None:
        """The client's application writes ``data``; what it allows is sent at once."""
        client.send(data)
        client.output(self.now)
        self.push(client)

    def push(self, client: Tcb) -> None:
        """A user call changed ``client``: deliver what it has to send."""
        self._busy[client] = None
        self.exchange()

    def run(self, until: float) -> None:
        """Fire the timers of the server and the clients in time order up to ``until``."""
        while True:
            self.exchange()
            timers = [t for t in (self.layer.get_timer(),
                                  *(c.get_timer() for c in self.clients.values()))
                      if t is not None]
            if not timers or min(timers) > until:
                self.now = max(self.now, until)
                return
            self.now = max(self.now, min(timers))
            if (t := self.layer.get_timer()) is not None and t <= self.now:
                self.layer.handle_timer(self.now)
            for c in self.clients.values():
                if (t := c.get_timer()) is not None and t <= self.now:
                    c.handle_timer(self.now)
                    self._busy[c] = None
