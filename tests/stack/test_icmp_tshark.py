"""Every ICMP/ICMPv6 error our router emits, checked by tshark from the pcap.

tshark is the independent judge of type/code/MTU, checksums and the quoted header. Without
tshark: fail when CI is set, skip loudly otherwise.
"""

from __future__ import annotations

import asyncio
import subprocess

from stacklab.testing import require_tool

from .conftest import line_topology


def tshark(pcap, fields, filt):
    cmd = [require_tool("tshark", package="tshark"), "-r", str(pcap),
           "-o", "ip.check_checksum:TRUE", "-Y", filt,
           "-T", "fields", "-E", "separator=|"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    return [line.split("|") for line in out.splitlines() if line]


def test_router_icmp_checked_by_tshark(net, tmp_path):
    a, r1, r2, b = line_topology(net, mtus=(1500, 576, 1500))
    net.capture(tmp_path)

    async def main():
        s = a.udp_socket(4, df=True)
        s.connect(("b", 5000))
        await s.send(bytes(1000))  # Frag Needed from r1
        await asyncio.sleep(0.5)
        t = a.udp_socket(4, ttl=1)
        await t.sendto(b"ttl", ("b", 5001))  # Time Exceeded from r1
        await asyncio.sleep(0.5)

    net.run(main(), until="10s")
    rows = tshark(tmp_path / "a-r1.pcap",
                  ["ip.src", "icmp.type", "icmp.code", "icmp.mtu", "icmp.checksum.status",
                   "ip.checksum.status", "ip.dst", "udp.dstport"],
                  "icmp")
    assert len(rows) == 2, rows
    fn, te = rows
    r1_addr = net.addresses[("r1", 0)][0]
    # tshark lists both IP headers (outer, quoted) for ip.src/ip.dst, comma-separated
    assert fn[1] == "3" and fn[2] == "4" and fn[3] == "576"
    assert fn[4] == "1"  # ICMP checksum good
    assert fn[5].split(",") == ["1", "1"]  # outer and quoted IP header checksums good
    assert fn[0].split(",") == [r1_addr, a.address(4)]  # quoted header: from a...
    assert fn[6].split(",") == [a.address(4), b.address(4)]  # ...to b
    assert fn[7] == "5000"  # quoted UDP header
    assert te[1] == "11" and te[2] == "0" and te[4] == "1" and te[7] == "5001"
    assert te[5].split(",") == ["1", "1"]


def test_router_icmpv6_checked_by_tshark(net, tmp_path):
    a, r1, r2, b = line_topology(net, mtus=(1500, 1280, 1500))
    net.capture(tmp_path)

    async def main():
        s = a.udp_socket(6)
        s.connect(("b", 6000))
        s.df = True
        await s.send(bytes(1400))  # Packet Too Big from r1
        await asyncio.sleep(0.5)
        t = a.udp_socket(6, ttl=2)
        await t.sendto(b"hop", ("b", 6001))  # Time Exceeded from r2
        await asyncio.sleep(0.5)

    net.run(main(), until="10s")
    rows = tshark(tmp_path / "a-r1.pcap",
                  ["ipv6.src", "icmpv6.type", "icmpv6.code", "icmpv6.mtu",
                   "icmpv6.checksum.status", "ipv6.dst", "udp.dstport"],
                  "icmpv6.type < 128")
    assert len(rows) == 2, rows
    ptb, te = rows
    assert ptb[1:4] == ["2", "0", "1280"] and ptb[4] == "1"
    assert ptb[0].split(",") == [net.addresses[("r1", 0)][1], a.address(6)]
    assert ptb[5].split(",") == [a.address(6), b.address(6)] and ptb[6] == "6000"
    assert te[1:3] == ["3", "0"] and te[4] == "1" and te[6] == "6001"
    assert te[0].split(",")[0] == net.addresses[("r2", 0)][1]
