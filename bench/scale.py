#!/usr/bin/env python3
"""Many concurrent TCP connections in one simulation: open, idle, close.

Two hosts on one link (MTU 1500, 1 ms delay). Host ``b`` listens (``create_server`` with a
protocol that keeps its transport; listen backlog and ``max_syn_backlog`` raised to ``N``, so
every handshake is a regular one, not a SYN cookie); host ``a`` opens ``N`` connections at once
(``create_connection`` with ``asyncio.gather``), waits until all ``2 N`` ends are ESTABLISHED,
lets them sit idle (past 25,000 connections the server listens on one port more per 25,000, as
the ephemeral range is per destination; the hosts' connection and orphan limits are raised to
fit), then closes every client end and waits until both ends of every connection
have reported ``connection_lost`` (the client ends go on to TIME-WAIT, as in Linux).
With ``--streams`` the connections are asyncio streams instead: ``open_connection`` on ``a``,
``start_server`` on ``b`` with a callback that keeps the reader and writer (a plain function: a
coroutine would add the application's task per connection), so each end holds a
``StreamReader`` and a ``StreamWriter`` too; the close phase closes both ends' writers and
waits in ``wait_closed()``.

Figures (best of ``--repeats``):

* open time (wall): from the first ``connect`` call until the last of the ``2 N`` ends is up;
  handshakes per wall-second = ``N`` / that;
* close time (wall): from the first ``close`` until the last ``connection_lost``;
* memory per idle connection: ``tracemalloc`` growth between "no connection" and "all idle
  established", divided by ``N``: both ends (client TCB + transport + protocol and the server's
  the same; the protocol is the least an application keeps, its transport in one slot; with
  ``--streams`` the reader, writer and the protocol between them instead) and per end.
  Measured in a separate run (tracemalloc slows Python down ~2x, so the timed runs have it
  off);
* peak RSS of the process (``getrusage``), after all the runs;
* with ``--breakdown K``: the memory run's K largest allocation sites (file:line, tracemalloc),
  bytes and objects per connection end, to see which object kinds the figure is made of.

Usage: ``python3 bench/scale.py [--quick] [-n 10000] [--repeats 3] [--no-memory] [--streams]
[--breakdown 25]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import loadavg, machine_line, table  # noqa: E402
from stacklab.net.network import Network  # noqa: E402

PORT = 5001


def one_run(n: int, *, measure_memory: bool = False, streams: bool = False,
            sites: list[tracemalloc.Statistic] | None = None) -> dict[str, float]:
    """One run; with ``sites`` (and ``measure_memory``), the idle memory's allocation sites
    are put there, largest first."""
    net = Network(seed=7)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, mtu=1500, delay="1ms")
    net.autoconfigure()
    b.tcp.max_syn_backlog = n
    # past the ephemeral range (28,232 ports per destination) the server listens on more ports;
    # the per-host limits (Linux-like: 65,536 TCBs, half of them orphans) raised to fit
    ports = [PORT + i for i in range(-(-n // 25_000))]
    for h in (a, b):
        h.tcp.max_connections = max(h.tcp.max_connections, 2 * n)
        h.tcp.max_orphans = max(h.tcp.max_orphans, n)
    counts = {"up": 0, "lost": 0}
    marks: dict[str, float] = {}

    class Idle(asyncio.Protocol):
        __slots__ = ("transport",)  # the least an application keeps: its transport

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            counts["up"] += 1

        def connection_lost(self, exc: Exception | None) -> None:
            counts["lost"] += 1

    async def wait_for(key: str, target: int) -> None:
        while counts[key] < target:
            await asyncio.sleep(0.001)

    served: list[asyncio.StreamWriter] = []

    def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.append(writer)  # (the writer holds the reader)
        counts["up"] += 1

    async def open_stream(port: int) -> asyncio.StreamWriter:
        _, writer = await a.open_connection("b", port)
        counts["up"] += 1
        return writer

    async def main() -> None:
        for port in ports:
            if streams:
                await b.start_server(on_client, port=port, backlog=n)
            else:
                await b.create_server(Idle, port=port, backlog=n)
        await asyncio.sleep(0.01)
        gc.collect()
        if measure_memory:
            tracemalloc.start()
            marks["mem0"] = tracemalloc.get_traced_memory()[0]
        marks["t0"] = time.perf_counter()
        if streams:
            writers = await asyncio.gather(*(open_stream(ports[i % len(ports)])
                                             for i in range(n)))
        else:
            # (the transports kept, not gather's (transport, protocol) pairs: bench
            # bookkeeping is not the connections' memory)
            transports = [t for t, _ in await asyncio.gather(
                *(a.create_connection(Idle, "b", ports[i % len(ports)]) for i in range(n)))]
        await wait_for("up", 2 * n)
        marks["t1"] = time.perf_counter()
        await asyncio.sleep(1.0)  # idle: delayed ACKs and timers settle
        if measure_memory:
            gc.collect()
            marks["mem1"] = tracemalloc.get_traced_memory()[0]
            if sites is not None:
                sites.extend(tracemalloc.take_snapshot().statistics("lineno"))
            tracemalloc.stop()
        states = {t.state.value for h in (a, b) for t in h.tcp.conns.values()}
        assert states == {"ESTABLISHED"}, states
        marks["t2"] = time.perf_counter()
        if streams:
            for w in writers + served:
                w.close()
            await asyncio.gather(*(w.wait_closed() for w in writers + served))
        else:
            for transport in transports:
                transport.close()
            await wait_for("lost", 2 * n)
        marks["t3"] = time.perf_counter()

    net.run(main(), until=3600)
    net.close()
    out = {"open": marks["t1"] - marks["t0"], "close": marks["t3"] - marks["t2"]}
    if measure_memory:
        out["mem"] = (marks["mem1"] - marks["mem0"]) / n
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 connections, one run")
    ap.add_argument("-n", type=int, default=None, help="connections (default 10000)")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--no-memory", action="store_true",
                    help="skip the tracemalloc run (100,000 connections: half the time)")
    ap.add_argument("--streams", action="store_true",
                    help="asyncio streams (open_connection / start_server), not protocols")
    ap.add_argument("--breakdown", type=int, default=0, metavar="K",
                    help="print the K largest allocation sites of the idle memory, per end")
    args = ap.parse_args(argv)
    n = args.n or (200 if args.quick else 10_000)
    repeats = args.repeats or (1 if args.quick else 3)

    print(machine_line())
    load0 = loadavg()
    runs = [one_run(n, streams=args.streams) for _ in range(repeats)]
    sites: list[tracemalloc.Statistic] = []
    mem = None if args.no_memory else one_run(n, measure_memory=True, streams=args.streams,
                                              sites=sites)["mem"]
    open_s = min(r["open"] for r in runs)
    close_s = min(r["close"] for r in runs)
    kind = "asyncio streams" if args.streams else "protocols"
    print(f"{n} concurrent TCP connections a -> b ({kind}) in one simulation, best of {repeats}")
    rows = [
        ("open all (wall s)", f"{open_s:.2f}"),
        ("handshakes per wall-second", f"{n / open_s:,.0f}"),
        ("close all (wall s)", f"{close_s:.2f}"),
        ("closes per wall-second", f"{n / close_s:,.0f}"),
    ]
    if mem is not None:
        rows += [
            ("memory per idle connection, both ends", f"{mem / 1024:.1f} KiB"),
            ("memory per idle connection end", f"{mem / 2048:.1f} KiB"),
            (f"memory for {n} connections", f"{mem * n / 2**20:.1f} MiB"),
        ]
    rows.append(("peak RSS of the process",
                 f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB"))
    print(table(["figure", "value"], rows, align="<>"))
    if args.breakdown and sites:
        root = str(Path(__file__).resolve().parent.parent) + "/"
        print(f"\nlargest allocation sites of the idle memory, per connection end ({2 * n} ends)")
        print(table(["site", "bytes", "objects"], [
            (f"{st.traceback[0].filename.replace(root, '')}:{st.traceback[0].lineno}",
             f"{st.size / (2 * n):.1f}", f"{st.count / (2 * n):.2f}")
            for st in sites[:args.breakdown]], align="<>>"))
    print(f"load average before/after: {load0} / {loadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
