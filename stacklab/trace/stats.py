"""Figures of a run: per TCP connection and per node, as a text table and (optionally) plots.

Per connection the numbers come from the TCP layer itself (each host's ``tcp`` layer keeps its
finished connections in ``history``; :meth:`Tcb.tcp_info` is a ``struct tcp_info``-like
snapshot) and the time series from the trace: ``tcp``/``cwnd`` events give cwnd over time, the
``link``/``deliver`` events of TCP segments give the bytes that reached each node over time.
Per node: the node's counters (``rx.frames``, ``drop.*``, ``icmp.tx.T/C``...).

Plots need matplotlib (``pip install 'stacklab[plot]'``); it is imported only when asked for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stacklab.errors import StacklabError

from .events import TraceEvent

# "10.0.1.1.34664 > 10.0.2.2.5001: Flags [P.], seq 1:1449, ack 1, ..., length 1448"
_TCP_SUMMARY = re.compile(r"^(\S+)\.(\d+) > (\S+)\.(\d+): Flags \[[^\]]*\].*length (\d+)")


@dataclass
class ConnStats:
    node: str
    local: str  # "10.0.1.1:34664"
    remote: str
    states: list[str]
    state: str
    bytes_sent: int  # payload bytes sent, retransmissions included
    bytes_acked: int
    bytes_received: int
    segs_out: int
    segs_in: int
    retransmits: int
    rto_expiries: int
    fast_retransmits: int
    srtt: float | None  # seconds
    rto: float
    cwnd: int
    ssthresh: int
    mss: int
    pmtu: int
    congestion: str
    ecn: dict[str, Any] | None = None  # ECN negotiated (RFC 3168): CE marks in, ECE reductions
    cwnd_series: list[tuple[float, int]] = field(default_factory=list)  # (time, cwnd bytes)
    ssthresh_series: list[tuple[float, int]] = field(default_factory=list)  # with cwnd's
    mss_known_at: float | None = None  # the peer's SYN processed: SYN-RECEIVED or ESTABLISHED
    rx_series: list[tuple[float, int]] = field(default_factory=list)  # (time, payload bytes)
    retransmit_times: list[float] = field(default_factory=list)
    rto_times: list[float] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.local}>{self.remote}"

    def throughput(self, bin_s: float) -> list[tuple[float, float]]:
        """Bytes per second that reached this end of the connection, per ``bin_s`` of time."""
        if not self.rx_series or bin_s <= 0:
            return []
        bins: dict[int, int] = {}
        for t, n in self.rx_series:
            k = int(t // bin_s)
            bins[k] = bins.get(k, 0) + n
        last = max(bins)
        return [((k + 0.5) * bin_s, bins.get(k, 0) / bin_s) for k in range(min(bins), last + 1)]


@dataclass
class RunStats:
    connections: list[ConnStats]
    nodes: dict[str, dict[str, int]]  # node -> counters
    duration: float


def _tcbs(node: Any) -> list[Any]:
    tcp = getattr(node, "tcp", None)
    if tcp is None or not hasattr(tcp, "conns"):
        return []
    return [*getattr(tcp, "history", []), *tcp.conns.values()]


def _endpoint(ip: bytes, port: int) -> str:
    from stacklab.wire.addr import ip_str

    text = ip_str(ip)
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


def connection_stats(nodes: Mapping[str, Any],
                     events: Iterable[TraceEvent] = ()) -> list[ConnStats]:
    """One :class:`ConnStats` per TCP connection any of ``nodes`` had (finished ones too)."""
    from stacklab.wire.addr import ip_str

    out: list[ConnStats] = []
    by_key: dict[tuple[str, str], ConnStats] = {}  # (node, trace conn name) -> stats
    by_addr: dict[tuple[str, str, int, str, int], ConnStats] = {}
    for name, node in nodes.items():
        for tcb in _tcbs(node):
            info = tcb.tcp_info()
            hdr = 60 if len(tcb.local_ip) == 16 else 40
            st = ConnStats(
                node=name, local=_endpoint(tcb.local_ip, tcb.local_port),
                remote=_endpoint(tcb.remote_ip, tcb.remote_port),
                states=list(tcb.states_entered), state=info["state"],
                bytes_sent=info["bytes_sent"], bytes_acked=info["bytes_acked"],
                bytes_received=info["bytes_received"], segs_out=info["segs_out"],
                segs_in=info["segs_in"], retransmits=info["retransmits"],
                rto_expiries=info["rto_expiries"], fast_retransmits=info["fast_retransmits"],
                srtt=info["srtt"], rto=info["rto"], cwnd=info["cwnd"],
                ssthresh=info["ssthresh"], mss=info["snd_mss"], pmtu=tcb.path_mss + hdr,
                congestion=info["congestion"], ecn=_ecn_figures(info))
            out.append(st)
            lip, rip = ip_str(tcb.local_ip), ip_str(tcb.remote_ip)
            trace_name = f"{lip}:{tcb.local_port}>{rip}:{tcb.remote_port}"
            by_key[(name, trace_name)] = st
            by_addr[(name, rip, tcb.remote_port, lip, tcb.local_port)] = st
    for ev in events:
        if ev.layer == "tcp":
            conn = by_key.get((ev.node, str(ev.details.get("conn"))))
            if conn is None:
                continue
            if ev.event == "cwnd":
                conn.cwnd_series.append((ev.time, int(ev.details.get("cwnd", 0))))
                conn.ssthresh_series.append((ev.time, int(ev.details.get("ssthresh", 0))))
            elif ev.event == "state" and conn.mss_known_at is None \
                    and ev.details.get("new") in ("SYN-RECEIVED", "ESTABLISHED"):
                conn.mss_known_at = ev.time
            elif ev.event == "retransmit":
                conn.retransmit_times.append(ev.time)
            elif ev.event == "rto":
                conn.rto_times.append(ev.time)
        elif ev.layer == "link" and ev.event == "deliver":
            m = _TCP_SUMMARY.match(str(ev.details.get("summary", "")))
            if m is None or not int(m.group(5)):
                continue
            conn = by_addr.get((ev.node, m.group(1), int(m.group(2)), m.group(3),
                                int(m.group(4))))
            if conn is not None:
                conn.rx_series.append((ev.time, int(m.group(5))))
    return out


def collect(net: Any, events: Iterable[TraceEvent] = ()) -> RunStats:
    """The figures of a :class:`stacklab.net.network.Network` after (or during) a run."""
    return RunStats(connection_stats(net.nodes, events), net.counters()["nodes"], net.now)


# -- text -------------------------------------------------------------------------------------

def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.1f}"


def _size(n: int) -> str:
    if n >= 10_000_000:
        return f"{n / 1e6:.0f}M"
    if n >= 100_000:
        return f"{n / 1e3:.0f}k"
    return str(n)


def _columns(rows: list[list[str]], left: int = 1) -> list[str]:
    """Rows of cells as lines: each column as wide as its widest cell, two spaces between
    columns (so they never run together), the first ``left`` columns left-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) if i < left else cell.rjust(w)
                      for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in rows]


def connections_table(conns: Iterable[ConnStats]) -> str:
    """Per connection: a line naming it, and its figures under column heads."""
    head = ["  state", "mss", "pmtu", "out", "in", "segs o/i", "retx", "rto#", "srtt", "rto",
            "cwnd"]
    rows = [head]
    names = []
    for c in conns:
        names.append(f"{c.node} {c.local} > {c.remote}")
        rows.append([f"  {c.state}", str(c.mss), str(c.pmtu), _size(c.bytes_sent),
                     _size(c.bytes_received), f"{c.segs_out}/{c.segs_in}", str(c.retransmits),
                     str(c.rto_expiries), _ms(c.srtt), f"{c.rto * 1000:.0f}", _size(c.cwnd)])
    lines = _columns(rows)
    out = [lines[0], "  (node local > remote above; out/in: payload bytes; srtt, rto: ms)"]
    for name, line in zip(names, lines[1:], strict=True):
        out += [name, line]
    return "\n".join(out)


def nodes_table(nodes: Mapping[str, Mapping[str, int]], width: int = 80) -> str:
    """Per node: frames in/out, drops by reason, ICMP sent; the details wrapped at ``width``
    columns under the node's line."""
    names = list(nodes)
    heads = _columns([[name, "rx", str(c.get("rx.frames", 0)), "tx", str(c.get("tx.frames", 0))]
                      for name, c in nodes.items()], left=2) if names else []
    indent = " " * 4
    lines = []
    for name, head in zip(names, heads, strict=True):
        c = nodes[name]
        drops = {k[5:]: v for k, v in c.items() if k.startswith("drop.") and v}
        icmp = {k: v for k, v in c.items() if k.startswith(("icmp.tx", "icmpv6.tx")) and v}
        extra = [f"dropped {k} {v}" for k, v in sorted(drops.items())]
        extra += [f"sent {k} {v}" for k, v in sorted(icmp.items())]
        fwd = c.get("ipv4.forwarded", 0) + c.get("ipv6.forwarded", 0)
        if fwd:
            extra.insert(0, f"forwarded {fwd}")
        lines.append(head)
        line = ""
        for item in extra:
            piece = (", " if line else indent) + item
            if line and len(line) + len(piece) > width:
                lines.append(line)
                line = indent + item
            else:
                line += piece
        if line:
            lines.append(line)
    return "\n".join(lines)


def _ecn_figures(info: dict[str, Any]) -> dict[str, Any] | None:
    """A connection's ECN figures (None: not negotiated): segments received with CE, window
    reductions for ECE, and with AccECN its counters (stack/tcp/accecn.py)."""
    if not info.get("ecn"):
        return None
    figures: dict[str, Any] = info["ecn_figures"]
    return figures


def as_json(stats: RunStats) -> dict[str, Any]:
    """The figures of :func:`render` for ``stacklab run --json --stats``: per connection its
    numbers (times in seconds, bytes) and the times of its retransmissions and RTOs."""
    conns = []
    for c in stats.connections:
        conns.append({
            "node": c.node, "local": c.local, "remote": c.remote, "state": c.state,
            "states": c.states, "bytes_sent": c.bytes_sent, "bytes_acked": c.bytes_acked,
            "bytes_received": c.bytes_received, "segs_out": c.segs_out, "segs_in": c.segs_in,
            "retransmits": c.retransmits, "rto_expiries": c.rto_expiries,
            "fast_retransmits": c.fast_retransmits, "srtt": c.srtt, "rto": c.rto,
            "cwnd": c.cwnd, "ssthresh": c.ssthresh, "mss": c.mss, "pmtu": c.pmtu,
            "congestion": c.congestion, "ecn": c.ecn, "retransmit_times": c.retransmit_times,
            "rto_times": c.rto_times})
    return {"connections": conns, "nodes": stats.nodes, "duration": stats.duration}


def render(stats: RunStats) -> str:
    parts = []
    if stats.connections:
        parts += ["TCP connections:", connections_table(stats.connections)]
    parts += ["nodes:", nodes_table(stats.nodes)]
    return "\n".join(parts)


# -- plots ------------------------------------------------------------------------------------

class PlotUnavailable(StacklabError, RuntimeError):
    """matplotlib is not installed."""


NO_SSTHRESH = 1 << 30  # the trace caps "no ssthresh yet" here
PLOT_BIN_S = 0.1  # throughput bins: 10 per second


@dataclass
class PlotSeries:
    """What :func:`plot` draws for one connection (times in seconds, sizes in bytes)."""

    label: str  # "node local>remote"
    cwnd: list[tuple[float, int]]  # from the moment the peer's MSS is known
    ssthresh: list[tuple[float, int]]  # once there is one (not the initial "infinite")
    retransmits: list[tuple[float, int]]  # (time, cwnd then): markers on the cwnd curve
    throughput: list[tuple[float, float]]  # bytes/s that reached this end, per PLOT_BIN_S


def plot_series(stats: RunStats, bin_s: float = PLOT_BIN_S) -> list[PlotSeries]:
    """The data of :func:`plot`, without matplotlib. A connection that never sent data (the
    receiving end) gets no cwnd, ssthresh or markers, only its throughput; the cwnd curve starts
    when the peer's SYN gave the MSS, not at the 536-byte default before it (RFC 9293 §3.7.1)."""
    out = []
    for c in stats.connections:
        cwnd: list[tuple[float, int]] = []
        ss: list[tuple[float, int]] = []
        marks: list[tuple[float, int]] = []
        if c.bytes_sent and c.mss_known_at is not None:
            known = c.mss_known_at
            cwnd = [(t, v) for t, v in c.cwnd_series if t >= known]
            ss = [(t, v) for t, v in c.ssthresh_series if t >= known and v < NO_SSTHRESH]
            for t in c.retransmit_times:
                before = [v for tc, v in cwnd if tc <= t]
                if before:
                    marks.append((t, before[-1]))
        out.append(PlotSeries(f"{c.node} {c.name}", cwnd, ss, marks, c.throughput(bin_s)))
    return out


def plot(stats: RunStats, path: str) -> str:
    """cwnd, ssthresh and retransmissions (top) and throughput (bottom) against virtual time,
    one colour per connection (:func:`plot_series`), into ``path`` (PNG, SVG or PDF by
    extension). Needs the ``plot`` extra."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable(
            "plots need matplotlib: pip install 'stacklab[plot]' (or pip install matplotlib)"
        ) from None
    fig, (ax1, ax2) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    for i, sr in enumerate(plot_series(stats)):
        color = f"C{i % 10}"
        if sr.cwnd:
            ts, vs = zip(*sr.cwnd, strict=True)
            ax1.step(ts, [v / 1000 for v in vs], where="post", color=color,
                     label=f"{sr.label} cwnd")
        if sr.ssthresh:
            ts, vs = zip(*sr.ssthresh, strict=True)
            ax1.step(ts, [v / 1000 for v in vs], where="post", color=color, linestyle="--",
                     label=f"{sr.label} ssthresh")
        if sr.retransmits:
            ts, vs = zip(*sr.retransmits, strict=True)
            ax1.plot(ts, [v / 1000 for v in vs], "x", color="#b00", linestyle="none",
                     label=f"{sr.label} retransmit")
        if sr.throughput and sum(v for _, v in sr.throughput):
            ts2, vs2 = zip(*sr.throughput, strict=True)
            ax2.plot(ts2, [v * 8 / 1e6 for v in vs2], color=color, label=sr.label)
    ax1.set_ylabel("cwnd, ssthresh (kB)")
    ax2.set_ylabel(f"received (Mbit/s, {PLOT_BIN_S:g} s bins)")
    ax2.set_xlabel("virtual time (s)")
    for ax in (ax1, ax2):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
