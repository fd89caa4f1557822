"""What the TCP layer asks of the host it runs in (a structural type: ``stack.host.Host`` is one,
and a test may pass anything with these members)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from stacklab.stack.route import Route, RouteMetrics, RoutingTable
from stacklab.trace.events import Tracer


class _Link(Protocol):
    @property
    def mtu(self) -> int: ...


class TcpHost(Protocol):
    """What the TCP layer needs from the host it runs in."""

    name: str
    counters: Counter[str]
    rng: random.Random
    tracer: Tracer | None
    routes: RoutingTable
    rx_gso_size: int  # the segment size of the GRO aggregate being received, 0: none

    @property
    def interfaces(self) -> Sequence[_Link]: ...

    def trace(self, now: float, layer: str, event: str, **details: Any) -> None: ...

    def register_protocol(self, proto: int, handler: Callable[..., None],
                          view_handler: Callable[..., Any] | None = None) -> None: ...

    def register_icmp_error(self, proto: int, handler: Callable[..., None]) -> None: ...

    def add_timer_source(self, obj: Any) -> None: ...

    def ip_send(self, src: bytes | None, dst: bytes, proto: int,
                payload: bytes | bytearray | memoryview, now: float, *, df: bool | None = None,
                ttl: int | None = None, tos: int = 0,
                ifindex: int | None = None) -> None: ...

    def source_address_for(self, dst: bytes) -> bytes | None: ...

    def path_mtu(self, dst: bytes, now: float | None = None) -> int: ...

    def route_metrics(self, dst: bytes) -> RouteMetrics: ...

    def xmit_blocked(self, dst: bytes) -> bool: ...

    def route_out(self, route: Route, dst: bytes) -> tuple[_Link | None, bytes]: ...

    def request_wake(self) -> None: ...
