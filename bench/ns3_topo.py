#!/usr/bin/env python3
"""The ns-3 side of ``bench/sim_topo.py``: the same two larger topologies in ns-3, run by the
Python of a venv with the PyPI ``ns3`` package (as ``bench/ns3_tcp.py``: loaded once, then one
run per JSON line read, so that runs interleave with stacklab's).

* ``dumbbell``: ``flows`` senders, each on its own point-to-point link (1 Gbit/s, 1 ms) to
  router r1; r1 - r2 the bottleneck (200 Mbit/s, 5 ms, a drop-tail queue of 100 packets, ns-3's
  default as stacklab's); r2 to ``flows`` receivers as on the left. Flow i: a
  ``BulkSendApplication`` of ``size`` bytes from sender i to a ``PacketSink`` on receiver i,
  TCP CUBIC (stacklab's default) with timestamps and SACK, segments of 1448 bytes, 4 MiB socket
  buffers; all flows start at once. Global routing tables.
* ``ping``: ``hosts`` hosts in ``subnets`` IPv4 subnets; each subnet one switch (a
  ``BridgeNetDevice`` over CSMA links, one channel per port, 100 Gbit/s: no rate limit, as
  stacklab's links without one) with one port to a router joining all subnets. Host k of
  subnet s pings host k of subnet s + 1 (``count`` echo requests 1 s apart, starting at 1 s +
  k ms), so every ping crosses switch, router, switch; ARP resolves as it goes.

The figure is frames received per wall-second: every frame a device (host, router or switch
port) receives, counted by a C++ trace sink on each device's ``PhyRxEnd`` (cppyy compiles it;
a Python callback per frame would be timed too), over ``Simulator.Run()`` of the measured phase
only: the ping topology first runs 1 s of virtual time untimed (nothing is sent in it in ns-3;
stacklab's hosts do their IPv6 start-up there).

Usage (in the ns-3 venv): ``echo '{"topo": "ping", "hosts": 1000, "subnets": 5, "count": 3}' |
python bench/ns3_topo.py``.
"""

from __future__ import annotations

import json
import sys
import time
from importlib import metadata
from typing import Any

# no #include: the ns-3 headers are in the interpreter already (including one again makes its
# static initialisers fail to link)
COUNTER = r"""
namespace stacklab_bench {
uint64_t frames = 0;
void on_rx(ns3::Ptr<const ns3::Packet>) { ++frames; }
ns3::Callback<void, ns3::Ptr<const ns3::Packet>> sink() { return ns3::MakeCallback(&on_rx); }
}
"""


def _count_rx(ns: Any, cb: Any, kind: str) -> None:
    ns.Config.ConnectWithoutContext(f"/NodeList/*/DeviceList/*/$ns3::{kind}/PhyRxEnd", cb)


def dumbbell(ns: Any, cpp: Any, flows: int, size: int) -> dict:
    ns.Config.SetDefault("ns3::TcpL4Protocol::SocketType", ns.StringValue("ns3::TcpCubic"))
    ns.Config.SetDefault("ns3::TcpSocket::SegmentSize", ns.UintegerValue(1448))
    ns.Config.SetDefault("ns3::TcpSocket::SndBufSize", ns.UintegerValue(4 << 20))
    ns.Config.SetDefault("ns3::TcpSocket::RcvBufSize", ns.UintegerValue(4 << 20))
    ns.Config.SetDefault("ns3::TcpSocketBase::Sack", ns.BooleanValue(True))
    left, right, routers = ns.NodeContainer(), ns.NodeContainer(), ns.NodeContainer()
    left.Create(flows)
    right.Create(flows)
    routers.Create(2)
    internet = ns.InternetStackHelper()
    for c in (left, right, routers):
        internet.Install(c)
    access = ns.PointToPointHelper()
    access.SetDeviceAttribute("DataRate", ns.StringValue("1Gbps"))
    access.SetChannelAttribute("Delay", ns.StringValue("1ms"))
    neck = ns.PointToPointHelper()
    neck.SetDeviceAttribute("DataRate", ns.StringValue("200Mbps"))
    neck.SetChannelAttribute("Delay", ns.StringValue("5ms"))
    addr = ns.Ipv4AddressHelper()
    sinks = []
    addr.SetBase(ns.Ipv4Address("10.250.0.0"), ns.Ipv4Mask("255.255.255.0"))
    addr.Assign(neck.Install(routers.Get(0), routers.Get(1)))
    dst = []
    for i in range(flows):
        addr.SetBase(ns.Ipv4Address(f"10.1.{i}.0"), ns.Ipv4Mask("255.255.255.0"))
        addr.Assign(access.Install(left.Get(i), routers.Get(0)))
        addr.SetBase(ns.Ipv4Address(f"10.2.{i}.0"), ns.Ipv4Mask("255.255.255.0"))
        dst.append(addr.Assign(access.Install(right.Get(i), routers.Get(1))).GetAddress(0))
    ns.Ipv4GlobalRoutingHelper.PopulateRoutingTables()
    port = 9
    for i in range(flows):
        sink = ns.PacketSinkHelper(
            "ns3::TcpSocketFactory",
            ns.InetSocketAddress(ns.Ipv4Address.GetAny(), port).ConvertTo())
        apps = sink.Install(right.Get(i))
        apps.Start(ns.Seconds(0.0))
        sinks.append(apps)
        bulk = ns.BulkSendHelper("ns3::TcpSocketFactory",
                                 ns.InetSocketAddress(dst[i], port).ConvertTo())
        bulk.SetAttribute("MaxBytes", ns.UintegerValue(size))
        bulk.SetAttribute("SendSize", ns.UintegerValue(64 * 1024))
        bulk.Install(left.Get(i)).Start(ns.Seconds(0.0))
    _count_rx(ns, cpp.sink(), "PointToPointNetDevice")
    ns.Simulator.Stop(ns.Seconds(3600.0))
    cpp.frames = 0
    t0 = time.perf_counter()
    ns.Simulator.Run()
    wall = time.perf_counter() - t0
    virtual = ns.Simulator.Now().GetSeconds()
    got = sum(int(ns.DynamicCast[ns.PacketSink](s.Get(0)).GetTotalRx()) for s in sinks)
    frames = int(cpp.frames)
    ns.Simulator.Destroy()
    return {"frames": frames, "wall": wall, "bytes": got, "virtual": virtual}


def ping(ns: Any, cpp: Any, hosts: int, subnets: int, count: int) -> dict:
    per = hosts // subnets
    router = ns.NodeContainer()
    router.Create(1)
    switches = ns.NodeContainer()
    switches.Create(subnets)
    groups = []
    for _ in range(subnets):
        g = ns.NodeContainer()
        g.Create(per)
        groups.append(g)
    internet = ns.InternetStackHelper()
    internet.Install(router)
    for g in groups:
        internet.Install(g)
    csma = ns.CsmaHelper()
    csma.SetChannelAttribute("DataRate", ns.StringValue("100Gbps"))
    csma.SetChannelAttribute("Delay", ns.TimeValue(ns.MicroSeconds(1)))
    bridge = ns.BridgeHelper()
    addr = ns.Ipv4AddressHelper()
    host_addrs = []
    for s in range(subnets):
        sw_ports = ns.NetDeviceContainer()
        ends = ns.NetDeviceContainer()
        for k in range(per + 1):  # the hosts, then the router's port
            node = groups[s].Get(k) if k < per else router.Get(0)
            pair = ns.NodeContainer()
            pair.Add(node)
            pair.Add(switches.Get(s))
            devs = csma.Install(pair)
            ends.Add(devs.Get(0))
            sw_ports.Add(devs.Get(1))
        bridge.Install(switches.Get(s), sw_ports)
        addr.SetBase(ns.Ipv4Address(f"10.3.{s}.0"), ns.Ipv4Mask("255.255.255.0"))
        ifs = addr.Assign(ends)
        host_addrs.append([ifs.GetAddress(k) for k in range(per)])
    ns.Ipv4GlobalRoutingHelper.PopulateRoutingTables()
    for s in range(subnets):
        for k in range(per):
            helper = ns.PingHelper(host_addrs[(s + 1) % subnets][k].ConvertTo())
            helper.SetAttribute("Count", ns.UintegerValue(count))
            helper.SetAttribute("Interval", ns.TimeValue(ns.Seconds(1.0)))
            helper.SetAttribute("Size", ns.UintegerValue(56))
            helper.SetAttribute("VerboseMode", ns.StringValue("Silent"))
            apps = helper.Install(groups[s].Get(k))
            apps.Start(ns.Seconds(1.0 + k / 1000))
            apps.Stop(ns.Seconds(1.0 + count + 3.0))
    _count_rx(ns, cpp.sink(), "CsmaNetDevice")
    ns.Simulator.Stop(ns.Seconds(1.0))
    ns.Simulator.Run()  # the untimed first second (nothing happens in it here)
    cpp.frames = 0
    ns.Simulator.Stop(ns.Seconds(count + 3.0))
    t0 = time.perf_counter()
    ns.Simulator.Run()
    wall = time.perf_counter() - t0
    frames = int(cpp.frames)
    ns.Simulator.Destroy()
    return {"frames": frames, "wall": wall}


def main() -> int:
    """One JSON request a line (``{"topo": "dumbbell", "flows", "size"}`` or ``{"topo":
    "ping", "hosts", "subnets", "count"}``), one JSON answer each; the first line out is
    ``{"ready": ..., "version": ...}`` once ns-3 is loaded."""
    import cppyy
    from ns import ns  # the PyPI ns3 package (cppyy): slow to import, not timed

    cppyy.cppdef(COUNTER)
    cpp = cppyy.gbl.stacklab_bench
    print(json.dumps({"ready": True, "version": f"ns-3 {metadata.version('ns3')}"}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        ns.RngSeedManager.SetSeed(int(req.get("seed", 1)))
        if req["topo"] == "dumbbell":
            out = dumbbell(ns, cpp, int(req["flows"]), int(req["size"]))
        else:
            out = ping(ns, cpp, int(req["hosts"]), int(req["subnets"]), int(req["count"]))
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
