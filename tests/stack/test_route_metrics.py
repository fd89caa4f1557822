"""Linux's per-route metrics (ip route ... advmss 600 mtu lock 640 initcwnd 11 rto_min 50ms):
the words, the host's path MTU, and what a TCP connection to the route's destination takes."""

import random

import pytest

from stacklab.net.units import ParamError
from stacklab.scenario.ip_config import _routes
from stacklab.stack.host import Host
from stacklab.stack.route import RouteMetrics, parse_metrics
from stacklab.wire.addr import ip_bytes

PEER = ip_bytes("192.0.2.1")


def _host(metrics: RouteMetrics) -> Host:
    h = Host("h", rng=random.Random(1))
    h.add_interface("eth0", bytes.fromhex("020000000001"), mtu=1500)
    h.add_address(0, "192.168.0.1/16")
    h.add_route("0.0.0.0/0", ifindex=0)
    h.add_route("192.0.2.1/32", ifindex=0, metrics=metrics)
    return h


def test_ip_route_words_parse_and_print_back():
    m, rest = parse_metrics(["via", "10.0.0.1", "dev", "tun0", "advmss", "600", "mtu", "lock",
                             "640", "initcwnd", "11", "rto_min", "50ms", "quickack", "1"])
    assert m == RouteMetrics(mtu=640, mtu_lock=True, advmss=600, initcwnd=11, rto_min=0.05)
    assert rest == ["via", "10.0.0.1", "dev", "tun0", "quickack", "1"]  # not modelled
    h = _host(m)
    assert "192.0.2.1/32 dev eth0 mtu lock 640 advmss 600 rto_min 50ms initcwnd 11" in \
        h.routes.format(4).splitlines()
    with pytest.raises(ValueError, match="initcwnd"):
        parse_metrics(["initcwnd", "ten"])
    with pytest.raises(ValueError, match="advmss"):
        parse_metrics(["advmss"])


def test_route_mtu_is_the_path_mtu_and_a_locked_one_ignores_icmp():
    h = _host(RouteMetrics(mtu=1000))
    assert h.path_mtu(PEER) == 1000
    assert h.learn_path_mtu(PEER, 800, 0.0) == 800  # not locked: ICMP lowers it
    locked = _host(RouteMetrics(mtu=1000, mtu_lock=True))
    assert locked.learn_path_mtu(PEER, 800, 0.0) is None
    assert locked.path_mtu(PEER) == 1000 and locked.counters["pmtu.locked"] == 1


def test_a_connection_takes_advmss_initcwnd_and_rto_min_of_its_route():
    h = _host(RouteMetrics(advmss=700, initcwnd=4, rto_min=0.05))
    tcb = h.tcp.connect(PEER, 80, 0.0)
    assert tcb.adv_mss == 700
    assert tcb.rtt.min_rto == 0.05
    assert tcb.cc.initial_segments == 4
    tcb.cc.set_mss(1000)  # the handshake's MSS: the initial window follows the route's initcwnd
    assert tcb.cc.cwnd == 4000
    other = h.tcp.connect(ip_bytes("192.0.2.9"), 80, 0.0)  # the default route: no metrics
    assert other.adv_mss == 1460 and other.cc.initial_segments == 10


def test_scenario_routes_take_the_metrics():
    [(prefix, via, m)] = _routes([{"to": "10.9.0.0/16", "via": "10.0.1.2", "advmss": 600,
                                   "mtu": 640, "mtu_lock": True, "initcwnd": 11,
                                   "rto_min": "50ms"}])
    assert (prefix, via) == ("10.9.0.0/16", "10.0.1.2")
    assert m == RouteMetrics(mtu=640, mtu_lock=True, advmss=600, initcwnd=11, rto_min=0.05)
    with pytest.raises(ParamError, match="initcwnd"):
        _routes([{"to": "10.9.0.0/16", "via": "10.0.1.2", "initcwnd": 0}])
    with pytest.raises(ParamError, match="optional"):
        _routes([{"to": "10.9.0.0/16", "via": "10.0.1.2", "window": 5}])
