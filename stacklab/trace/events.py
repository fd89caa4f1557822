"""A structured event stream per run: (time, node, layer, event, details).

Nodes hold an optional :class:`Tracer`; emitting is a no-op when there is none, so the hot path
pays one attribute test. The simulator, the TAP driver and the CLI decide where events go.
"""

from __future__ import annotations

import json
import re
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


_OPTIONS = re.compile(r", options \[[^\]]*\]")


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _short_conn(conn: object) -> str:
    """``10.0.1.1:34664>10.0.2.2:5001`` -> ``34664>5001`` (the node is on the line already)."""
    text = str(conn)
    local, sep, remote = text.partition(">")
    if not sep:
        return text
    return f"{local.rpartition(':')[2]}>{remote.rpartition(':')[2]}"


def format_event(ev: TraceEvent, width: int = 100) -> str:
    """One readable line for ``ev``, at most ``width`` columns (``stacklab run --trace``).

    Frames: ``tx`` shows the tcpdump-like summary (TCP options left out), ``rx`` the short
    label and how long the frame flew, ``drop`` the reason. TCP state changes read
    ``OLD -> NEW (cause)``; every other event lists its details as ``key=value``.
    """
    d = dict(ev.details)
    event = "rx" if ev.layer == "link" and ev.event == "deliver" else ev.event
    head = f"{ev.time:10.6f} {ev.node:<8} {ev.layer:<6} {event:<7} "
    if ev.layer == "link" and ev.event == "tx" and "summary" in d:
        rest = f"> {d['dst']} " + _OPTIONS.sub("", str(d["summary"]))
    elif ev.layer == "link" and ev.event == "deliver" and "label" in d:
        flew = (ev.time - float(d.get("sent", ev.time))) * 1000
        rest = f"< {d.get('src')} {d['label']} ({flew:.3f} ms)"
    elif ev.layer == "link" and ev.event == "drop":
        what = d.get("label") or f"{d.get('len', '?')} bytes"
        rest = f"{d.get('reason')}: {d.get('dir', '')} {what}"
    elif ev.layer == "tcp" and ev.event == "state":
        rest = f"{_short_conn(d.get('conn', ''))} {d.get('old')} -> {d.get('new')}"
        if d.get("cause"):
            rest += f" ({d['cause']})"
    else:
        conn = d.pop("conn", None)
        rest = " ".join(f"{k}={_fmt_value(v)}" for k, v in d.items())
        if conn is not None:
            rest = f"{_short_conn(conn)} {rest}"
    line = head + rest
    if len(line) > width:
        line = line[: width - 1] + "~"
    return line.rstrip()


class Tracer:
    """Collects events in memory and forwards them to any number of sinks."""

    def __init__(self, keep: bool = True) -> None:
        self.events: list[TraceEvent] = []
        self.keep = keep
        self._sinks: list[Callable[[TraceEvent], object]] = []

    def add_sink(self, sink: Callable[[TraceEvent], object]) -> None:
        """``sink(event)`` is called for every event from now on (its result is ignored)."""
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
