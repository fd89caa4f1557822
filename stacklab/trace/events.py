"""A structured event stream per run: (time, node, layer, event, details).

Nodes hold an optional :class:`Tracer`; emitting is a no-op when there is none, so the hot path
pays one attribute test. The simulator, the TAP driver and the CLI decide where events go.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass(slots=True)
class TraceEvent:
    time: float
    node: str
    layer: str  # "link", "arp", "ndp", "ipv4", "ipv6", "icmp", "udp", "tcp", "pmtu", "app", ...
    event: str  # "tx", "rx", "drop", "state", "retransmit", "rto", "cwnd", "cache", ...
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"time": round(self.time, 9), "node": self.node, "layer": self.layer,
             "event": self.event, **self.details},
            sort_keys=False, default=str,
        )

    def line(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.details.items())
        return f"{self.time:12.6f} {self.node:<8} {self.layer:<5} {self.event:<10} {extra}"


class Tracer:
    """Collects events in memory and forwards them to any number of sinks."""

    def __init__(self, keep: bool = True) -> None:
        self.events: list[TraceEvent] = []
        self.keep = keep
        self._sinks: list[Callable[[TraceEvent], None]] = []

    def add_sink(self, sink: Callable[[TraceEvent], None]) -> None:
        self._sinks.append(sink)

    def add_jsonl(self, fp: TextIO) -> None:
        self.add_sink(lambda ev: fp.write(ev.to_json() + "\n"))

    def emit(self, time: float, node: str, layer: str, event: str, **details: Any) -> None:
        ev = TraceEvent(time, node, layer, event, details)
        if self.keep:
            self.events.append(ev)
        for sink in self._sinks:
            sink(ev)

    def select(self, node: str | None = None, layer: str | None = None,
               event: str | None = None) -> Iterator[TraceEvent]:
        for ev in self.events:
            if node is not None and ev.node != node:
                continue
            if layer is not None and ev.layer != layer:
                continue
            if event is not None and ev.event != event:
                continue
            yield ev
