"""NAT, multicast, redirects and ARP conflict detection against the Linux kernel over TAP.

* NAT: a Linux client behind a stacklab router that masquerades, a Linux server outside that
  has no route back in; the same test against a Linux router doing ``nft ... masquerade`` (the
  reference): the server sees the router's outside address and the client's own port, ping and
  a UDP exchange come back through the translation;
* multicast: a stacklab host's stream reaches a Linux socket that joined the group, and a Linux
  sender's stream reaches a stacklab socket joined with the facade's ``IP_ADD_MEMBERSHIP``;
* redirects: Linux honours stacklab's ICMP Redirect (``ip route get`` shows the new gateway),
  and stacklab honours Linux's;
* ARP: ``arping -D`` finds stacklab's address in use; stacklab's RFC 5227 probe finds Linux's.

Addresses: 10.211.0.0/16 inside the test's own namespaces only.
"""

from __future__ import annotations

import shutil
import socket
import time

import pytest

from stacklab.api.sockets import SOCK_DGRAM
from stacklab.wire.addr import ip_bytes

from .linux import Netns, open_tap, wait_for
from .stackhost import LINUX4, STACK4, StackOnTap, pcap_file, start_stack

pytestmark = pytest.mark.skipif(shutil.which("nft") is None or shutil.which("arping") is None,
                                reason="needs nft (nftables) and arping (iputils-arping)")

# A Linux TCP echo server that prints each peer: "peer <addr> <port>".
ECHO_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(4)
print("ready", flush=True)
s.settimeout(15)
c, a = s.accept()
print("peer", a[0], a[1], flush=True)
c.settimeout(5)
c.sendall(c.recv(100)); c.close()
"""

# A Linux TCP client from a fixed source port: prints what came back.
CLIENT = """
import socket, sys
s = socket.socket(); s.bind(("0.0.0.0", int(sys.argv[3]))); s.settimeout(10)
s.connect((sys.argv[1], int(sys.argv[2]))); s.sendall(b"through the nat")
print(s.recv(100).decode(), flush=True)
"""

# A Linux multicast receiver on the group, joined on the interface with address argv[2].
MCAST_RECV = """
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[3])))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
             socket.inet_aton(sys.argv[1]) + socket.inet_aton(sys.argv[2]))
print("ready", flush=True)
s.settimeout(10)
for _ in range(3):
    d, a = s.recvfrom(2000)
    print(d.decode(), a[0], flush=True)
"""

MCAST_SEND = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(sys.argv[2]))
for i in range(20):
    s.sendto(b"linux %d" % i, (sys.argv[1], int(sys.argv[3]))); time.sleep(0.1)
"""

GROUP = "239.1.2.3"


def veth(a: Netns, a_dev: str, b: Netns, b_dev: str) -> None:
    a.run("ip", "link", "add", a_dev, "type", "veth", "peer", "name", b_dev, "netns", b.name)
    a.run("ip", "link", "set", a_dev, "up")
    b.run("ip", "link", "set", b_dev, "up")


def check_capture(h: StackOnTap) -> None:
    problems = h.stop()
    assert not problems, "tshark flags packets in the capture:\n" + "\n".join(problems)


# -- NAT ------------------------------------------------------------------------------------------
def nat_exchange(inside: Netns, outside: Netns) -> tuple[str, str, str]:
    """Client 10.211.1.1 (inside) -> server 10.211.2.1:8080 (outside) from port 40000: what
    the server saw as its peer, what the client got back, and a ping's summary."""
    srv = outside.popen("python3", "-c", ECHO_SERVER, "8080", text=True)
    assert srv.stdout.readline().strip() == "ready"
    cli = inside.run("python3", "-c", CLIENT, "10.211.2.1", "8080", "40000", timeout=20)
    out, _ = srv.communicate(timeout=15)
    ping = inside.run("ping", "-c", "2", "-i", "0.2", "-W", "2", "10.211.2.1", check=False)
    return out.strip(), cli.stdout.strip(), ping.stdout


def test_stacklab_router_masquerades_like_linux(make_netns, tmp_path) -> None:
    inside, outside = make_netns(), make_netns()
    t_in = open_tap(inside, "tap0", ipv4="10.211.1.1/24", ipv6=None)
    t_out = open_tap(outside, "tap1", ipv4="10.211.2.1/24", ipv6=None)
    inside.run("ip", "route", "add", "default", "via", "10.211.1.2")
    # outside: no route to 10.211.1.0/24 at all, only its connected 10.211.2.0/24
    h = start_stack([(t_in, ["10.211.1.2/24"]), (t_out, ["10.211.2.2/24"])],
                    pcap_file(tmp_path), router=True)
    try:
        h.call(h.node.enable_nat, h.node.ports[1].name)
        peer, echoed, ping = nat_exchange(inside, outside)
        assert peer == "peer 10.211.2.2 40000"  # translated address, port preserved
        assert echoed == "through the nat"
        assert " 0% packet loss" in ping
        lines = h.call(lambda: h.node.nat.describe(h.node.now()))
        assert any("src=10.211.1.1 dst=10.211.2.1 sport=40000 dport=8080" in ln for ln in lines)
        assert any(ln.startswith("icmp") for ln in lines)
    finally:
        check_capture(h)


def test_linux_reference_masquerade(make_netns) -> None:
    """The same exchange through a Linux router: what the reference shows."""
    inside, router, outside = make_netns(), make_netns(), make_netns()
    veth(inside, "eth0", router, "in0")
    veth(router, "out0", outside, "eth0")
    inside.run("ip", "addr", "add", "10.211.1.1/24", "dev", "eth0")
    router.run("ip", "addr", "add", "10.211.1.2/24", "dev", "in0")
    router.run("ip", "addr", "add", "10.211.2.2/24", "dev", "out0")
    outside.run("ip", "addr", "add", "10.211.2.1/24", "dev", "eth0")
    inside.run("ip", "route", "add", "default", "via", "10.211.1.2")
    router.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
    router.run("nft", "add table ip nat; add chain ip nat post { type nat hook postrouting "
               "priority 100; }; add rule ip nat post oifname out0 masquerade")
    peer, echoed, ping = nat_exchange(inside, outside)
    assert peer == "peer 10.211.2.2 40000"
    assert echoed == "through the nat"
    assert " 0% packet loss" in ping


# -- multicast -----------------------------------------------------------------------------------
def test_multicast_both_ways(netns: Netns, host_on_tap: StackOnTap) -> None:
    h = host_on_tap
    recv = netns.popen("python3", "-c", MCAST_RECV, GROUP, LINUX4, "5004", text=True)
    assert recv.stdout.readline().strip() == "ready"
    with h.net.socket(socket.AF_INET, SOCK_DGRAM) as s:
        for i in range(3):
            s.sendto(b"stacklab %d" % i, (GROUP, 5004))
            time.sleep(0.05)
        out, err = recv.communicate(timeout=15)
    assert out.split("\n")[:3] == [f"stacklab {i} {STACK4}" for i in range(3)], err

    with h.net.socket(socket.AF_INET, SOCK_DGRAM) as r:
        r.bind(("", 5005))
        r.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                     socket.inet_aton(GROUP) + socket.inet_aton("0.0.0.0"))
        sender = netns.popen("python3", "-c", MCAST_SEND, GROUP, LINUX4, "5005")
        r.settimeout(5)
        data, addr = r.recvfrom(2000)
        sender.kill()
    assert data.startswith(b"linux ") and addr[0] == LINUX4
    assert h.call(lambda: h.node.counters["igmp.tx"]) >= 1  # the report on join


# -- redirects -----------------------------------------------------------------------------------
def redirect_lab(make_netns) -> tuple[Netns, Netns, object]:
    """tap0 and a veth to ``gw`` bridged in ``lan``; gw (10.211.0.5) reaches 10.211.9.0/24."""
    lan, gw = make_netns(), make_netns()
    tap = open_tap(lan, "tap0", ipv4=None, ipv6=None)
    lan.run("ip", "link", "add", "br0", "type", "bridge")
    lan.run("ip", "link", "set", "tap0", "master", "br0")
    veth(lan, "v0", gw, "eth0")
    lan.run("ip", "link", "set", "v0", "master", "br0")
    lan.run("ip", "link", "set", "br0", "up")
    gw.run("ip", "addr", "add", "10.211.0.5/24", "dev", "eth0")
    gw.run("ip", "addr", "add", "10.211.9.1/32", "dev", "lo")  # the network behind gw
    return lan, gw, tap


def test_linux_honours_stacklab_redirect(make_netns, tmp_path) -> None:
    lan, gw, tap = redirect_lab(make_netns)
    lan.run("ip", "addr", "add", f"{LINUX4}/24", "dev", "br0")
    lan.run("ip", "route", "add", "10.211.9.0/24", "via", STACK4)
    h = start_stack([(tap, [f"{STACK4}/24"])], pcap_file(tmp_path), router=True)
    try:
        h.call(h.node.add_route, "10.211.9.0/24", "10.211.0.5")
        gw.run("ip", "route", "add", f"{LINUX4}/32", "dev", "eth0")
        ping = lan.run("ping", "-c", "3", "-i", "0.3", "-W", "2", "10.211.9.1", check=False)
        assert " 0% packet loss" in ping.stdout or "Redirect" in ping.stdout, ping.stdout
        route = lan.run("ip", "route", "get", "10.211.9.1").stdout
        assert "via 10.211.0.5" in route and "redirected" in route, route
        assert h.call(lambda: h.node.counters["icmp.tx.5/1"]) >= 1
    finally:
        check_capture(h)


def test_stacklab_honours_linux_redirect(make_netns, tmp_path) -> None:
    lan, gw, tap = redirect_lab(make_netns)
    lan.run("ip", "addr", "add", f"{LINUX4}/24", "dev", "br0")
    lan.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
    lan.run("sysctl", "-qw", "net.ipv4.conf.all.send_redirects=1")
    lan.run("sysctl", "-qw", "net.ipv4.conf.br0.send_redirects=1")
    lan.run("ip", "route", "add", "10.211.9.0/24", "via", "10.211.0.5")
    gw.run("ip", "route", "add", f"{STACK4}/32", "dev", "eth0")
    h = start_stack([(tap, [f"{STACK4}/24"])], pcap_file(tmp_path), gateways=[LINUX4])
    try:
        async def pings() -> int:
            r = await h.node.ping("10.211.9.1", count=3, interval=0.3, out=None)
            return int(r.received)
        assert h.run(pings()) == 3
        assert h.call(lambda: h.node.counters["icmp.redirect.accepted"]) == 1
        assert "via 10.211.0.5" in h.call(h.node.route_get, "10.211.9.1")
    finally:
        check_capture(h)


# -- ARP conflict detection ----------------------------------------------------------------------
def test_arping_duplicate_detection_and_stacklab_probe(netns: Netns,
                                                      host_on_tap: StackOnTap) -> None:
    h = host_on_tap
    taken = netns.run("arping", "-D", "-c", "2", "-w", "3", "-I", "tap0", STACK4, check=False)
    assert taken.returncode == 1 and "reply from" in taken.stdout.lower(), taken.stdout
    free = netns.run("arping", "-D", "-c", "2", "-w", "3", "-I", "tap0", "10.211.0.77",
                     check=False)
    assert free.returncode == 0, free.stdout

    results: list[tuple[str, bool]] = []

    def probe(addr: str) -> None:
        h.node.acd.probe(0, ip_bytes(addr), h.node.now(),
                         lambda ok, t: results.append((addr, ok)))
        h.node.request_wake()
    h.call(probe, LINUX4)
    h.call(probe, "10.211.0.78")
    wait_for(lambda: len(results) == 2, 15, "both probes to finish")
    assert dict(results) == {LINUX4: False, "10.211.0.78": True}
