#!/usr/bin/env python3
"""Larger topologies on the simulator against ns-3: frames simulated per wall-second (issue 23).

Two workloads, the same in both simulators (``bench/ns3_topo.py`` is ns-3's side, run with the
Python of a venv that has the PyPI ``ns3`` package, ``--ns3-python PATH``; this script installs
nothing):

* **dumbbell**: ``--flows`` (20) senders, each on its own link (1 Gbit/s, 1 ms) to router r1;
  r1 - r2 the bottleneck (200 Mbit/s, 5 ms, a queue of 100 packets); r2 to as many receivers.
  Every sender writes ``--size`` bytes (64 KiB writes) to its receiver's discard server, all at
  once, with stacklab's defaults (CUBIC, timestamps, SACK; ns-3: TcpCubic, 1448-byte segments,
  SACK, 4 MiB buffers, what stacklab autotunes to). Timed until the last byte arrives.
* **ping**: ``--hosts`` (1,000) hosts in ``--subnets`` (5) subnets; each subnet one switch
  (links without a rate limit, 1 us), every switch with one port to a router; host k of subnet s
  pings host k of subnet s + 1, ``--count`` (3) echo requests 1 s apart starting at 1 s + k ms,
  through switch, router, switch, resolving ARP as it goes. The first second of virtual time
  (stacklab's IPv6 start-up: DAD, router solicitations) is run untimed.

The figure is frames received per wall-second: every frame any node (host, router, switch)
receives — stacklab: the nodes' ``rx.frames``; ns-3: a C++ counter on every device's
``PhyRxEnd``. Best of ``--repeats`` per row, each ns-3 run right after stacklab's.

Usage: ``python3 bench/sim_topo.py [--quick] [--repeats 2] [--only dumbbell,ping]
[--ns3-python PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Ns3Process, loadavg, machine_line, table  # noqa: E402
from stacklab.net.network import Network  # noqa: E402
from stacklab.net.units import parse_size  # noqa: E402

CHUNK = 64 * 1024


def _frames(net: Network) -> int:
    return sum(n.counters["rx.frames"] for n in net.nodes.values())


def dumbbell(flows: int, size: int, seed: int = 1) -> dict[str, float]:
    net = Network(seed=seed)
    r1, r2 = net.add_router("r1"), net.add_router("r2")
    net.connect(r1, r2, delay="5ms", rate="200Mbit", queue=100)
    pairs = []
    for i in range(flows):
        s, d = net.add_host(f"s{i}"), net.add_host(f"d{i}")
        net.connect(s, r1, delay="1ms", rate="1Gbit")
        net.connect(r2, d, delay="1ms", rate="1Gbit")
        pairs.append((s, d))
    net.autoconfigure()
    got = [0] * flows
    data = bytes(range(256)) * (CHUNK // 256)

    def discard(i: int) -> type[asyncio.Protocol]:
        class Discard(asyncio.Protocol):
            def data_received(self, b: bytes) -> None:
                got[i] += len(b)
        return Discard

    async def flow(i: int) -> None:
        s, d = pairs[i]
        _, writer = await s.open_connection(d.name, 9)
        left = size
        while left:
            k = min(left, CHUNK)
            writer.write(data[:k])
            await writer.drain()
            left -= k
        writer.write_eof()
        while got[i] < size:
            await asyncio.sleep(0.001)
        writer.close()

    async def main() -> float:
        for i, (_, d) in enumerate(pairs):
            await d.create_server(discard(i), port=9)
        t0 = time.perf_counter()
        await asyncio.gather(*(flow(i) for i in range(flows)))
        return time.perf_counter() - t0

    f0 = _frames(net)
    v0 = net.now
    wall = net.run(main(), until=3600)
    out = {"frames": _frames(net) - f0, "wall": wall, "bytes": sum(got),
           "virtual": net.now - v0}
    net.close()
    if out["bytes"] != flows * size:
        raise SystemExit(f"dumbbell: {out['bytes']} of {flows * size} bytes arrived")
    return out


def ping(hosts: int, subnets: int, count: int, seed: int = 1) -> dict[str, float]:
    net = Network(seed=seed)
    router = net.add_router("r")
    per = hosts // subnets
    groups = []
    for s in range(subnets):
        sw = net.add_switch(f"sw{s}")
        group = []
        for k in range(per):
            h = net.add_host(f"h{s}x{k}")
            net.connect(h, sw, delay="1us")
            group.append(h)
        net.connect(router, sw, delay="1us")
        groups.append(group)
    net.autoconfigure()
    net.run(until=1.0)  # IPv6 start-up (DAD, router solicitations): not timed
    lost = [0]

    async def one(s: int, k: int) -> None:
        await asyncio.sleep(k / 1000)
        dst = groups[(s + 1) % subnets][k]
        r = await groups[s][k].ping(dst.address(4), count=count, interval=1.0, out=None)
        lost[0] += count - r.received

    async def main() -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(s, k) for s in range(subnets) for k in range(per)))
        return time.perf_counter() - t0

    f0 = _frames(net)
    wall = net.run(main(), until=3600)
    out = {"frames": _frames(net) - f0, "wall": wall}
    net.close()
    if lost[0]:
        raise SystemExit(f"ping: {lost[0]} echo replies missing")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small topologies, one run")
    ap.add_argument("--repeats", type=int, default=None, help="runs per row (best is kept)")
    ap.add_argument("--only", default="dumbbell,ping", help="rows, comma-separated")
    ap.add_argument("--flows", type=int, default=None, help="dumbbell flows (default 20)")
    ap.add_argument("--size", default=None, help="bytes per dumbbell flow (default 2MiB)")
    ap.add_argument("--hosts", type=int, default=None, help="pinging hosts (default 1000)")
    ap.add_argument("--subnets", type=int, default=None, help="switches (default 5)")
    ap.add_argument("--count", type=int, default=None, help="pings per host (default 3)")
    ap.add_argument("--ns3-python", default=None, metavar="PATH",
                    help="python of a venv with the ns3 package: measure ns-3 too")
    args = ap.parse_args(argv)
    q = args.quick
    flows = args.flows or (4 if q else 20)
    size = parse_size(args.size, "size") if args.size else (128 << 10 if q else 2 << 20)
    hosts = args.hosts or (40 if q else 1000)
    subnets = args.subnets or (2 if q else 5)
    count = args.count or (1 if q else 3)
    repeats = args.repeats or (1 if q else 2)
    only = args.only.split(",")
    specs = {
        "dumbbell": (f"dumbbell, {flows} flows x {size / 2**20:g} MiB",
                     lambda: dumbbell(flows, size),
                     {"topo": "dumbbell", "flows": flows, "size": size}),
        "ping": (f"ping, {hosts} hosts on {subnets} switches, {count} each",
                 lambda: ping(hosts, subnets, count),
                 {"topo": "ping", "hosts": hosts, "subnets": subnets, "count": count}),
    }
    print(machine_line())
    load0 = loadavg()
    ns3 = Ns3Process(args.ns3_python, "ns3_topo.py") if args.ns3_python else None
    best: dict[str, dict[str, float]] = {}
    best_ns3: dict[str, dict[str, Any]] = {}
    for _ in range(repeats):
        for key in only:
            _, run, req = specs[key]
            r = run()
            if key not in best or r["frames"] / r["wall"] > best[key]["frames"] / best[key]["wall"]:
                best[key] = r
            if ns3 is not None:
                n = ns3.request(**req)
                if key not in best_ns3 or n["frames"] / n["wall"] > \
                        best_ns3[key]["frames"] / best_ns3[key]["wall"]:
                    best_ns3[key] = n
    if ns3 is not None:
        ns3.close()
    rows = []
    for key in only:
        r = best[key]
        row = [specs[key][0], f"{r['frames']:,}", f"{r['wall']:.2f}",
               f"{r['frames'] / r['wall'] / 1000:.1f}k"]
        if ns3 is not None:
            n = best_ns3[key]
            row += [f"{n['frames']:,}", f"{n['wall']:.2f}",
                    f"{n['frames'] / n['wall'] / 1000:.1f}k",
                    f"{(r['frames'] / r['wall']) / (n['frames'] / n['wall']):.2f}x"]
        rows.append(tuple(row))
    head = ["workload", "frames", "wall s", "frames/wall-s"]
    if ns3 is not None:
        head += [f"{ns3.version} frames", "wall s", "frames/wall-s", "stacklab / ns-3"]
    print(f"frames received by all nodes per wall-second, best of {repeats}")
    print(table(head, rows))
    print(f"load average before/after: {load0} / {loadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
