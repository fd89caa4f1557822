"""Per-connection plots drawn from the TCP layer's own trace events (no matplotlib).

The TCB records what each plot needs (``stacklab/stack/tcp``; every event carries ``conn``):

* ``cwnd`` — ``cwnd``, ``ssthresh`` whenever either changes;
* ``rtt`` — each RTT sample with the new ``srtt`` and ``rto`` (RFC 6298); ``rto`` — a timeout
  fired, with the backed-off ``rto``;
* ``send`` — a segment with data left: ``seq`` (relative to the ISS: the first byte is 1),
  ``len``;
* ``ack`` — an ACK arrived: ``ack`` (relative), ``win`` (scaled), ``sack`` blocks (relative);
* ``retransmit`` — the reason a segment was resent.

:func:`flows` groups them per (node, connection); each ``*_plot`` returns an ``<svg>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from stacklab.trace.events import TraceEvent
from stacklab.trace.stats import NO_SSTHRESH

from .svg import Chart

__all__ = ["Flow", "cwnd_plot", "first_loss_window", "flows", "goodput", "goodput_plot", "rtt_plot",
           "time_sequence_plot"]



@dataclass
class Flow:
    """One TCP connection as one of its ends saw it."""

    node: str
    conn: str  # "10.0.1.1:34664>10.0.2.2:5001"
    cwnd: list[tuple[float, int, int]] = field(default_factory=list)  # (t, cwnd, ssthresh)
    rtt: list[tuple[float, float, float, float]] = field(default_factory=list)  # t, rtt, srtt, rto
    timeouts: list[tuple[float, float]] = field(default_factory=list)  # (t, backed-off rto)
    sends: list[tuple[float, int, int]] = field(default_factory=list)  # (t, seq, len)
    acks: list[tuple[float, int, int, list[list[int]]]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.node} {self.conn}"

    @property
    def sent_data(self) -> bool:
        return bool(self.sends)


def flows(events: Iterable[TraceEvent]) -> list[Flow]:
    """The connections of a trace, in the order they first appear."""
    out: dict[tuple[str, str], Flow] = {}
    for ev in events:
        if ev.layer != "tcp" or "conn" not in ev.details:
            continue
        d = ev.details
        key = (ev.node, str(d["conn"]))
        flow = out.get(key)
        if flow is None:
            flow = out[key] = Flow(*key)
        if ev.event == "cwnd":
            flow.cwnd.append((ev.time, int(d["cwnd"]), int(d["ssthresh"])))
        elif ev.event == "rtt":
            flow.rtt.append((ev.time, float(d["rtt"]), float(d["srtt"]), float(d["rto"])))
        elif ev.event == "rto":
            flow.timeouts.append((ev.time, float(d["rto"])))
        elif ev.event == "send":
            flow.sends.append((ev.time, int(d["seq"]), int(d["len"])))
        elif ev.event == "ack":
            flow.acks.append((ev.time, int(d["ack"]), int(d["win"]), list(d.get("sack", ()))))
    return list(out.values())


def cwnd_plot(flow: Flow) -> str:
    """cwnd and ssthresh (bytes) against time; timeouts marked."""
    chart = Chart(f"cwnd and ssthresh — {flow.name}", y_label="bytes")
    chart.step("cwnd", [(t, c) for t, c, _ in flow.cwnd], color="#1f4e9a")
    ss = [(t, s) for t, _, s in flow.cwnd if s < NO_SSTHRESH]
    if ss:
        chart.step("ssthresh", ss, color="#d4a017")
    if flow.timeouts:
        at = {t: c for t, c, _ in flow.cwnd}
        chart.marks("RTO", [(t, at.get(t, 0)) for t, _ in flow.timeouts], color="#c0392b")
    return chart.render()


def rtt_plot(flow: Flow) -> str:
    """RTT samples, SRTT and RTO (milliseconds) against time."""
    chart = Chart(f"RTT and RTO — {flow.name}", y_label="ms")
    chart.marks("RTT sample", [(t, r * 1000) for t, r, _, _ in flow.rtt], color="#7f8c8d",
                width=1)
    chart.line("SRTT", [(t, s * 1000) for t, _, s, _ in flow.rtt], color="#1f4e9a")
    rto = [(t, o * 1000) for t, _, _, o in flow.rtt] + [(t, o * 1000) for t, o in flow.timeouts]
    chart.step("RTO", sorted(rto), color="#c0392b")
    return chart.render()


def _resent(flow: Flow) -> list[bool]:
    """Per segment sent: does it end at or below the highest byte sent before (a resend)?"""
    out, top = [], 0
    for _t, seq, n in flow.sends:
        out.append(seq + n <= top)
        top = max(top, seq + n)
    return out


def first_loss_window(flow: Flow) -> tuple[float, float] | None:
    """A few round trips around the first resent segment (for a zoomed time-sequence graph)."""
    resent = _resent(flow)
    if True not in resent:
        return None
    t = flow.sends[resent.index(True)][0]
    srtt = next((s for ts, _r, s, _o in reversed(flow.rtt) if ts <= t), 0.05)
    return t - 4 * srtt, t + 6 * srtt


def time_sequence_plot(flow: Flow, window: tuple[float, float] | None = None) -> str:
    """The tcptrace / Stevens time-sequence graph at the sender: each segment a vertical bar
    from its first to its last byte (resent ones in red), the cumulative ACK, the right edge of
    the receive window (ACK + window) and the SACK blocks (RFC 2018) the receiver reported.
    ``window``: only that (start, end) of virtual time."""
    lo, hi = window or (float("-inf"), float("inf"))
    zoom = f" ({lo:.3f}–{hi:.3f} s)" if window else ""
    chart = Chart(f"time–sequence — {flow.name}{zoom}", y_label="sequence (bytes, relative)",
                  height=420)
    fresh: list[tuple[float, float, float]] = []
    resent: list[tuple[float, float, float]] = []
    for (t, seq, n), again in zip(flow.sends, _resent(flow), strict=True):
        if lo <= t <= hi:
            (resent if again else fresh).append((t, seq, seq + n))
    shown = [a for a in flow.acks if lo <= a[0] <= hi]
    chart.step("ACK", [(t, a) for t, a, _, _ in shown], color="#2e8b57")
    if not window:  # zoomed in, the window's edge would squash the rest to a line
        chart.step("window", [(t, a + w) for t, a, w, _ in shown], color="#d4a017", width=1)
    sacks = [(t, left, right) for t, _, _, blocks in shown for left, right in blocks]
    if sacks:  # under the segments, so that a resend drawn at the same place shows
        chart.bars("SACK", sacks, color="#b084cc", width=3)
    chart.bars("sent", fresh, color="#1f4e9a", width=2)
    if resent:
        chart.bars("retransmitted", resent, color="#c0392b", width=2.5)
    return chart.render()


def goodput(flow: Flow, bin_s: float) -> list[tuple[float, float]]:
    """Bits per second newly acknowledged, per ``bin_s`` of time (the flow's goodput)."""
    if not flow.acks or bin_s <= 0:
        return []
    start = flow.sends[0][0] if flow.sends else flow.acks[0][0]
    bins: dict[int, int] = {}
    best = 1  # the first data byte is 1: the SYN took 0
    for t, ack, _, _ in flow.acks:
        if ack > best:
            k = int((t - start) // bin_s)
            bins[k] = bins.get(k, 0) + ack - best
            best = ack
    if not bins:
        return []
    return [(start + (k + 1) * bin_s, bins.get(k, 0) * 8 / bin_s)
            for k in range(0, max(bins) + 1)]


def goodput_plot(all_flows: Iterable[Flow]) -> str:
    """Goodput (Mbit/s acknowledged) of every flow that sent data, on one chart."""
    senders = [f for f in all_flows if f.sent_data]
    chart = Chart("goodput per flow", y_label="Mbit/s")
    for f in senders:
        span = max(t for t, *_ in f.acks) - f.sends[0][0] if f.acks else 0.0
        bin_s = max(span / 80, 0.001)
        chart.line(f.name, [(t, v / 1e6) for t, v in goodput(f, bin_s)])
    return chart.render()
