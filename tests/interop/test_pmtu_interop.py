"""Path MTU discovery across real Linux: a Linux router with a narrow link in front of stacklab
(stacklab's TCP must adapt to the kernel's Frag Needed / Packet Too Big), and stacklab as the
router between two Linux namespaces (Linux must learn the MTU from stacklab's ICMP errors)."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from .linux import Netns, open_tap, tshark_lines, tshark_problems, wait_for
from .stackhost import LINUX4, LINUX6, STACK4, STACK6, pcap_file, start_stack

NARROW = 1280
DATA = 2 * (1 << 20)


def veth(a: Netns, a_dev: str, b: Netns, b_dev: str) -> None:
    a.run("ip", "link", "add", a_dev, "type", "veth", "peer", "name", b_dev, "netns", b.name)
    a.run("ip", "link", "set", a_dev, "up")
    b.run("ip", "link", "set", b_dev, "up")


def forwarding(ns: Netns) -> None:
    ns.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
    ns.run("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")


@pytest.mark.parametrize("family", [4, 6])
def test_stacklab_tcp_adapts_to_linux_router_icmp(make_netns: Callable[[], Netns],
                                                  tmp_path: Path, family: int) -> None:
    router, server = make_netns(), make_netns()
    tap = open_tap(router)  # 10.211.0.1 / fd00:5ac:0:1::1 on the router, towards stacklab
    forwarding(router)
    veth(router, "vr", server, "vs")
    router.run("ip", "link", "set", "vr", "mtu", str(NARROW))  # the narrow hop, router side
    router.run("ip", "addr", "add", "10.211.1.1/24", "dev", "vr")
    router.run("ip", "addr", "add", "fd00:5ac:0:2::1/64", "dev", "vr", "nodad")
    server.run("ip", "addr", "add", "10.211.1.2/24", "dev", "vs")
    server.run("ip", "addr", "add", "fd00:5ac:0:2::2/64", "dev", "vs", "nodad")
    server.run("ip", "route", "add", "default", "via", "10.211.1.1")
    server.run("ip", "-6", "route", "add", "default", "via", "fd00:5ac:0:2::1")
    peer = "10.211.1.2" if family == 4 else "fd00:5ac:0:2::2"
    bind = peer if family == 4 else f"[{peer}]"
    out = tmp_path / "received"
    server.popen("socat", "-u", f"TCP{family}-LISTEN:5004,bind={bind},reuseaddr",
                 f"CREATE:{out}")
    server.wait_listening(5004)

    h = start_stack([(tap, [f"{STACK4}/24", f"{STACK6}/64"])], pcap_file(tmp_path),
                    gateways=[LINUX4, LINUX6])
    try:
        data = os.urandom(DATA)
        with h.net.create_connection((peer, 5004), timeout=30) as s:
            s.sendall(data)
        wait_for(lambda: out.exists() and out.stat().st_size == len(data), 30,
                 "the server behind the narrow link to receive every byte")
        assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
        conn = h.call(h.node.tcp_connections_summary)[-1]
    finally:
        problems = h.stop()
    assert not problems, problems
    assert conn["pmtu"] == NARROW, conn
    icmp = ("icmp.type == 3 && icmp.code == 4 && icmp.mtu == 1280" if family == 4 else
            "icmpv6.type == 2 && icmpv6.mtu == 1280")
    assert tshark_lines(h.pcap_path, icmp), "no Frag Needed / Packet Too Big from Linux"


def test_linux_learns_pmtu_from_stacklab_router(make_netns: Callable[[], Netns],
                                                tmp_path: Path) -> None:
    a, b = make_netns(), make_netns()
    # Linux A -- tapa -- [stacklab router] -- tapb (stacklab side MTU 1280) -- Linux B
    tap_a = open_tap(a, "tapa", ipv4="10.211.10.1/24", ipv6="fd00:5ac:10::1/64")
    tap_b = open_tap(b, "tapb", ipv4="10.211.20.1/24", ipv6="fd00:5ac:20::1/64")
    a.run("ip", "route", "add", "default", "via", "10.211.10.2")
    a.run("ip", "-6", "route", "add", "default", "via", "fd00:5ac:10::2")
    b.run("ip", "route", "add", "default", "via", "10.211.20.2")
    b.run("ip", "-6", "route", "add", "default", "via", "fd00:5ac:20::2")
    out4, out6 = tmp_path / "received4", tmp_path / "received6"
    b.popen("socat", "-u", "TCP4-LISTEN:5005,bind=10.211.20.1,reuseaddr", f"CREATE:{out4}")
    b.popen("socat", "-u", "TCP6-LISTEN:5006,bind=[fd00:5ac:20::1],reuseaddr",
            f"CREATE:{out6}")
    b.wait_listening(5005)
    b.wait_listening(5006)

    src = tmp_path / "bulk"
    data = os.urandom(DATA)
    src.write_bytes(data)
    h = start_stack([(tap_a, ["10.211.10.2/24", "fd00:5ac:10::2/64"]),
                     (tap_b, ["10.211.20.2/24", "fd00:5ac:20::2/64"], NARROW)],
                    pcap_file(tmp_path), router=True)
    try:
        # Linux A sends through stacklab; stacklab's narrow port makes it answer big packets
        # with Frag Needed / Packet Too Big, and Linux must adapt (route cache mtu).
        errors: list[str] = []

        def send(dst: str, port: int) -> None:
            r = a.run("socat", "-u", f"OPEN:{src}", f"TCP:{dst}:{port}", timeout=60,
                      check=False)
            if r.returncode:
                errors.append(r.stderr)

        threads = [threading.Thread(target=send, args=("10.211.20.1", 5005)),
                   threading.Thread(target=send, args=("[fd00:5ac:20::1]", 5006))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        assert not errors, errors
        for out in (out4, out6):
            wait_for(lambda out=out: out.exists() and out.stat().st_size == len(data), 30,
                     f"Linux B to receive every byte in {out.name}")
            assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
        route4 = a.run("ip", "route", "get", "10.211.20.1").stdout
        route6 = a.run("ip", "-6", "route", "get", "fd00:5ac:20::1").stdout
    finally:
        problems = h.stop()
    assert not problems, problems
    assert re.search(r"\bmtu 1280\b", route4), route4
    assert re.search(r"\bmtu 1280\b", route6), route6
    assert tshark_lines(h.pcap_path, "icmp.type == 3 && icmp.code == 4 && icmp.mtu == 1280")
    assert tshark_lines(h.pcap_path, "icmpv6.type == 2 && icmpv6.mtu == 1280")
    assert not tshark_problems(h.pcap_path)
