"""LAN services against real Linux peers over TAP: busybox's DHCP client and server, ``dig``
against our DNS server, and loopback semantics compared with Linux's."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from typing import Any

import pytest

from stacklab.apps.dns import Authority, make_zone, serve_dns
from stacklab.stack.dhcp_server import DhcpServer, PoolConfig

from .linux import Netns, wait_for
from .stackhost import LINUX4, STACK4, StackOnTap, pcap_file, start_stack, tap_in

pytestmark = pytest.mark.skipif(shutil.which("busybox") is None or shutil.which("dig") is None,
                                reason="needs busybox (udhcpc, udhcpd) and dig: make sysdeps")

ZONE = {"www": ["10.211.0.80", "fd00:5ac:0:1::80"], "web": "CNAME www",
        "big": [f"10.211.9.{i}" for i in range(1, 61)]}


def _stack(make_netns: Callable[[], Netns], tmp_path: Any, addrs: list[str]
           ) -> tuple[Netns, StackOnTap]:
    ns = make_netns()
    tap = tap_in(ns, ipv4=None if not addrs else f"{LINUX4}/24")
    h = start_stack([(tap, addrs)], pcap_file(tmp_path))
    return ns, h


def test_busybox_udhcpc_gets_a_lease_from_our_server(make_netns: Callable[[], Netns],
                                                      tmp_path: Any) -> None:
    ns = make_netns()
    tap = tap_in(ns, ipv4=None)  # the Linux side starts without an IPv4 address
    h = start_stack([(tap, [f"{STACK4}/24"])], pcap_file(tmp_path))
    cfg = PoolConfig("10.211.0.100", "10.211.0.110", 24, router=STACK4, dns=(STACK4,),
                     domain="lab.example", lease_time=600)
    server = h.call(DhcpServer, h.node, 0, cfg)
    script = tmp_path / "udhcpc.sh"  # udhcpc calls it with the lease in its environment
    out = tmp_path / "lease.env"
    script.write_text(f"#!/bin/sh\n[ \"$1\" = bound ] && env > {out}\nexit 0\n")
    script.chmod(0o755)
    r = ns.run("busybox", "udhcpc", "-i", "tap0", "-n", "-q", "-f", "-t", "5", "-T", "1",
               "-s", str(script), timeout=30)
    assert "obtained" in r.stdout + r.stderr, r.stdout + r.stderr
    env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert env["ip"] == "10.211.0.100" and env["subnet"] == "255.255.255.0"
    assert env["router"] == STACK4 and env["dns"].strip() == STACK4
    assert env["domain"] == "lab.example" and env["lease"] == "600"
    summary = h.call(server.summary, h.node.now())
    assert [b["address"] for b in summary["leases"].values()] == ["10.211.0.100"]
    assert h.stop() == []


def test_our_client_gets_a_lease_from_busybox_udhcpd(make_netns: Callable[[], Netns],
                                                     tmp_path: Any) -> None:
    ns = make_netns()
    tap = tap_in(ns)  # Linux: 10.211.0.1/24, the server
    h = start_stack([(tap, [])], pcap_file(tmp_path))  # stacklab: no IPv4 address
    conf = tmp_path / "udhcpd.conf"
    conf.write_text(f"""start 10.211.0.150
end 10.211.0.160
interface tap0
lease_file {tmp_path}/udhcpd.leases
pidfile {tmp_path}/udhcpd.pid
option subnet 255.255.255.0
option router {LINUX4}
option dns {LINUX4}
option domain lab.example
option lease 300
""")
    (tmp_path / "udhcpd.leases").write_bytes(b"")
    ns.popen("busybox", "udhcpd", "-f", str(conf))
    time.sleep(0.5)
    client = h.call(h.node.dhcp4.client, 0)
    h.call(client.start, h.node.now())
    wait_for(lambda: h.call(lambda: client.state) == "BOUND", 20.0, "a lease from udhcpd")
    lease = h.call(client.summary, h.node.now())
    addr = lease["address"].split("/")[0]
    assert lease["address"].endswith("/24") and lease["router"] == LINUX4
    assert 150 <= int(addr.split(".")[3]) <= 160  # udhcpd picks from the MAC's hash
    assert lease["dns"] == [LINUX4] and lease["domain"] == "lab.example"
    assert lease["lease_time"] == 300
    # the address works: Linux pings it
    assert " 0% packet loss" in ns.run("ping", "-c", "1", "-W", "2", addr).stdout
    h.call(client.release, h.node.now())
    assert h.stop() == []


def test_dig_queries_our_dns_server(make_netns: Callable[[], Netns], tmp_path: Any) -> None:
    ns, h = _stack(make_netns, tmp_path, [f"{STACK4}/24"])
    server = h.run(serve_dns(h.node, Authority({"lab.example": make_zone("lab.example",
                                                                          ZONE)})))

    def dig(*args: str) -> str:
        return ns.run("dig", "+time=2", "+tries=1", f"@{STACK4}", *args, timeout=20).stdout

    assert dig("+short", "www.lab.example", "A").split() == ["10.211.0.80"]
    assert dig("+short", "www.lab.example", "AAAA").split() == ["fd00:5ac:0:1::80"]
    assert dig("+short", "web.lab.example").split() == ["www.lab.example.", "10.211.0.80"]
    assert dig("+short", "+tcp", "www.lab.example").split() == ["10.211.0.80"]
    # 60 A records do not fit 512 bytes: TC over UDP, dig asks again over TCP
    big = dig("+noedns", "big.lab.example")
    assert "Truncated, retrying in TCP mode" in big
    assert len(re.findall(r"IN\s+A\s+10\.211\.9\.", big)) == 60
    nx = dig("nosuch.lab.example")
    assert "status: NXDOMAIN" in nx and "flags: qr aa rd" in nx and "SOA" in nx
    assert "status: REFUSED" in dig("www.elsewhere.test")
    assert h.call(lambda: server.errors["refused"]) == 1
    assert h.stop() == []


def test_loopback_as_linux(make_netns: Callable[[], Netns], tmp_path: Any) -> None:
    """``ip route get`` of 127/8 addresses and of our own address, and ping 127.1.2.3 (the
    whole /8 answers, from the pinged address), the same on both sides."""
    ns, h = _stack(make_netns, tmp_path, [f"{STACK4}/24"])
    for dst, src in (("127.5.5.5", "127.0.0.1"), ("127.0.0.1", "127.0.0.1")):
        linux = ns.run("ip", "route", "get", dst).stdout
        assert linux.startswith(f"local {dst} dev lo") and f"src {src}" in linux
        assert h.call(h.node.route_get, dst) == f"local {dst} dev lo src {src}"
    linux_own = ns.run("ip", "route", "get", LINUX4).stdout
    assert linux_own.startswith(f"local {LINUX4} dev lo") and f"src {LINUX4}" in linux_own
    assert h.call(h.node.route_get, STACK4) == f"local {STACK4} dev lo src {STACK4}"
    linux_ping = ns.run("ping", "-c", "1", "-W", "2", "127.1.2.3").stdout
    assert "from 127.1.2.3" in linux_ping
    result = h.run(h.node.ping("127.1.2.3", count=1, out=None))
    assert result.received == 1
    assert h.stop() == []
