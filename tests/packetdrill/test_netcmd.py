"""The runner's network commands: ip route metrics, tc qdisc's local drops, ethtool -K."""

import random

from stacklab.packetdrill.netcmd import ip_route, offload_off, tc_qdisc
from stacklab.stack.host import Host
from stacklab.stack.route import RouteMetrics
from stacklab.wire.addr import ip_bytes

PEER = ip_bytes("192.0.2.1")


def _host() -> Host:
    h = Host("h", rng=random.Random(1))
    h.add_interface("tun0", bytes.fromhex("020000000001"))
    h.add_address(0, "192.168.0.1/16")
    h.add_route("0.0.0.0/0", ifindex=0)
    h.frames_to_send()  # the start-up's gratuitous ARP
    return h


def _words(text: str) -> list[str]:
    return text.split()


def test_ip_route_change_sets_a_host_route_with_metrics():
    h = _host()
    note = ip_route(h, _words("ip route change 192.0.2.1 via 192.168.0.2 dev tun0 advmss 600 "
                              "mtu lock 640 initcwnd 11 quickack 1"))
    assert note == "ip route: quickack 1 not modelled"
    r = h.routes.lookup(PEER)
    assert (r.plen, r.via, r.ifindex) == (32, None, 0)  # tun0 is point-to-point
    assert r.metrics == RouteMetrics(mtu=640, mtu_lock=True, advmss=600, initcwnd=11)
    assert ip_route(h, _words("ip -6 route change 2001:db8::1 dev tun0 advmss 600")) == ""
    assert h.routes.lookup(ip_bytes("2001:db8::1")).plen == 128
    assert ip_route(h, _words("ip tcp_metrics flush")) is None
    assert "bad value" in ip_route(h, _words("ip route add 10.0.0.0/8 dev tun0 mtu big"))


def test_tc_qdisc_limit_0_drops_every_frame_until_deleted():
    h = _host()
    assert tc_qdisc(h, _words("tc qdisc add dev tun0 root pfifo limit 0"))
    assert h.xmit_blocked(PEER)
    h.send_frame(0, b"x" * 60)
    assert h.frames_to_send() == [] and h.counters["drop.qdisc"] == 1
    assert tc_qdisc(h, _words("tc qdisc delete dev tun0 root"))
    assert not h.xmit_blocked(PEER)
    assert tc_qdisc(h, _words("tc qdisc replace dev tun0 root pfifo limit 0"))
    assert tc_qdisc(h, _words("tc qdisc replace dev tun0 root fq"))  # a queue that takes them
    assert not h.qdisc_drop
    assert not tc_qdisc(h, _words("tc qdisc add dev eth9 root pfifo limit 0"))


def test_ethtool_offload_off():
    assert offload_off(_words("ethtool -K tun0 gso off tso off")) is True
    assert offload_off(_words("ethtool -K tun0 gro off")) is False
    assert offload_off(_words("ip link set tun0 up")) is None
