"""Two TCBs wired back to back by hand, on explicit virtual time (no simulator, no driver).

Every segment goes through the real wire format (``build_tcp`` then ``TcpView``), so the test
exercises what the layer does with bytes. ``filter`` may drop or alter segments in flight.
"""

from __future__ import annotations

from collections.abc import Callable

from stacklab.stack.tcp.config import TcpConfig
from stacklab.stack.tcp.segment import Segment
from stacklab.stack.tcp.tcb import Tcb
from stacklab.wire.tcp import TcpView, build_tcp

A_IP = bytes([10, 0, 0, 1])
B_IP = bytes([10, 0, 0, 2])
A_PORT = 40000
B_PORT = 80


def wire(tcb: Tcb, seg: Segment) -> TcpView:
    raw = build_tcp(tcb.local_ip, tcb.remote_ip, tcb.local_port, tcb.remote_port, seg.seq,
                    seg.ack, seg.flags, seg.window, seg.payload, seg.options_bytes(),
                    seg.urgent)
    view = TcpView(bytes(raw))
    assert view.checksum_ok(tcb.local_ip, tcb.remote_ip)
    return view


class Pair:
    def __init__(self, a_cfg: TcpConfig | None = None, b_cfg: TcpConfig | None = None,
                 a_iss: int = 1000, b_iss: int = 900000) -> None:
        self.now = 0.0
        self.a_cfg = a_cfg or TcpConfig()
        self.b_cfg = b_cfg or TcpConfig()
        self.a = Tcb(A_IP, A_PORT, B_IP, B_PORT, iss=a_iss, now=0.0, config=self.a_cfg)
        self.b: Tcb | None = None
        self.b_iss = b_iss
        self.log: list[tuple[str, TcpView]] = []  # ("a>b" | "b>a", segment) as delivered
        self.filter: Callable[[str, TcpView], TcpView | None] | None = None

    def segs(self, tcb: Tcb) -> list[TcpView]:
        return [wire(tcb, s) for s in tcb.segments_to_send()]

    def to_b(self, views: list[TcpView]) -> None:
        for v in views:
            if self.filter is not None and (v := self.filter("a>b", v)) is None:
                continue
            self.log.append(("a>b", v))
            if self.b is None:
                assert v.flags & 0x02, "the first segment to the listener must be a SYN"
                self.b = Tcb.accept_syn(v, B_IP, B_PORT, A_IP, A_PORT, self.now,
                                        iss=self.b_iss, config=self.b_cfg)
            else:
                self.b.receive(v, self.now)

    def to_a(self, views: list[TcpView]) -> None:
        for v in views:
            if self.filter is not None and (v := self.filter("b>a", v)) is None:
                continue
            self.log.append(("b>a", v))
            self.a.receive(v, self.now)

    def step(self) -> bool:
        """Deliver everything queued on both sides once; True if anything moved."""
        va = self.segs(self.a)
        self.to_b(va)
        vb = self.segs(self.b) if self.b is not None else []
        self.to_a(vb)
        return bool(va or vb)

    def run(self, until: float | None = None, max_steps: int = 100000,
            dt: float = 0.001) -> None:
        """Exchange segments (each hop takes ``dt``) and fire timers until quiet or ``until``."""
        for _ in range(max_steps):
            if self.step():
                self.now += dt
                continue
            timers = [t for t in (self.a.get_timer(), self.b.get_timer() if self.b else None)
                      if t is not None]
            if not timers:
                return
            t = min(timers)
            if until is not None and t > until:
                self.now = until
                return
            self.now = max(self.now, t)
            self.a.handle_timer(self.now)
            if self.b is not None:
                self.b.handle_timer(self.now)
        raise AssertionError("no quiescence")

    def handshake(self) -> None:
        self.a.connect(self.now)
        for _ in range(3):
            self.step()
            self.now += 0.001
