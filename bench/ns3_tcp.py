#!/usr/bin/env python3
"""The ns-3 side of ``bench/sim_tcp.py``: the same bulk TCP workload in ns-3, run by the Python
of a venv that has the PyPI ``ns3`` package (a release build of ns-3 with cppyy bindings).

``sim_tcp.py --ns3-python PATH`` runs this file with that Python in a separate process (the
benchmark's own Python needs no ns-3), which loads ns-3 once (tens of seconds: cppyy compiles
the headers) and then runs one transfer per JSON line it reads, so that the benchmark can
interleave ns-3's runs with stacklab's in the same minute. The workload: two
nodes, one point-to-point link of 1 ms delay and MTU ``--mtu`` (ns-3 needs a data rate: 400 Gbit/s,
far above what either simulator moves per wall-second, so the link never limits), TCP NewReno
with timestamps and SACK (ns-3's defaults) and a segment size of the MTU minus 52 bytes of
headers (IPv4, TCP with timestamps: what stacklab sends), a ``BulkSendApplication`` writing
``--size`` bytes to a ``PacketSink``, ns-3's default socket buffers (128 KiB; ``--buffers``).
``--loss`` drops that share of the frames received in each direction (a ``RateErrorModel`` per
device). The wall time is that of ``Simulator.Run()`` (ns-3 has no per-transfer clock like
stacklab's; the handshake and the close are a handful of events of the 10,000s); the figure is
payload bytes the sink received per wall-second.

Usage (in the ns-3 venv): ``echo '{"size": 16777216, "mtu": 1500, "loss": 0}' | python
bench/ns3_tcp.py [--buffers BYTES]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import metadata
from typing import Any


def run_once(ns: Any, size: int, mtu: int, loss: float, seed: int, buffers: int) -> dict:
    """One transfer: ``{"bytes", "wall", "mtu", "loss"}``."""
    ns.RngSeedManager.SetSeed(seed)
    ns.Config.SetDefault("ns3::TcpSocket::SegmentSize", ns.UintegerValue(mtu - 52))
    if buffers:
        ns.Config.SetDefault("ns3::TcpSocket::SndBufSize", ns.UintegerValue(buffers))
        ns.Config.SetDefault("ns3::TcpSocket::RcvBufSize", ns.UintegerValue(buffers))
    ns.Config.SetDefault("ns3::TcpL4Protocol::SocketType", ns.StringValue("ns3::TcpNewReno"))

    nodes = ns.NodeContainer()
    nodes.Create(2)
    p2p = ns.PointToPointHelper()
    p2p.SetDeviceAttribute("DataRate", ns.StringValue("400Gbps"))
    p2p.SetDeviceAttribute("Mtu", ns.UintegerValue(mtu))
    p2p.SetChannelAttribute("Delay", ns.StringValue("1ms"))
    devices = p2p.Install(nodes)
    if loss:
        for i in range(2):
            em = ns.CreateObject[ns.RateErrorModel]()
            em.SetAttribute("ErrorRate", ns.DoubleValue(loss))
            em.SetAttribute("ErrorUnit", ns.StringValue("ERROR_UNIT_PACKET"))
            devices.Get(i).SetAttribute("ReceiveErrorModel", ns.PointerValue(em))
    stack = ns.InternetStackHelper()
    stack.Install(nodes)
    addresses = ns.Ipv4AddressHelper()
    addresses.SetBase(ns.Ipv4Address("10.0.0.0"), ns.Ipv4Mask("255.255.255.0"))
    ifaces = addresses.Assign(devices)

    port = 9
    sink_helper = ns.PacketSinkHelper(
        "ns3::TcpSocketFactory",
        ns.InetSocketAddress(ns.Ipv4Address.GetAny(), port).ConvertTo())
    sink_apps = sink_helper.Install(nodes.Get(1))
    sink_apps.Start(ns.Seconds(0.0))
    bulk = ns.BulkSendHelper("ns3::TcpSocketFactory",
                             ns.InetSocketAddress(ifaces.GetAddress(1), port).ConvertTo())
    bulk.SetAttribute("MaxBytes", ns.UintegerValue(size))
    bulk.SetAttribute("SendSize", ns.UintegerValue(64 * 1024))
    bulk_apps = bulk.Install(nodes.Get(0))
    bulk_apps.Start(ns.Seconds(0.0))
    ns.Simulator.Stop(ns.Seconds(3600.0))

    t0 = time.perf_counter()
    ns.Simulator.Run()
    wall = time.perf_counter() - t0
    received = int(ns.DynamicCast[ns.PacketSink](sink_apps.Get(0)).GetTotalRx())
    ns.Simulator.Destroy()
    return {"bytes": received, "wall": wall, "mtu": mtu, "loss": loss}


def main() -> int:
    """Reads one JSON request a line (``{"size", "mtu", "loss"}``) on stdin, answers one JSON
    line each; the first line out is ``{"ready": ..., "version": ...}`` once ns-3 is loaded."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--buffers", type=int, default=0,
                    help="socket buffer bytes (0: ns-3's defaults, 128 KiB)")
    args = ap.parse_args()
    from ns import ns  # the PyPI ns3 package (cppyy): slow to import, not timed

    print(json.dumps({"ready": True, "version": f"ns-3 {metadata.version('ns3')}"}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        out = run_once(ns, int(req["size"]), int(req["mtu"]), float(req.get("loss", 0.0)),
                       args.seed, args.buffers)
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
