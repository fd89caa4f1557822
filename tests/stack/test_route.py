"""Routing table: longest-prefix match, connected/static/default routes, `ip route` printing."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stacklab.stack.route import CONNECTED, Route, RoutingTable, parse_prefix
from stacklab.wire.addr import ip_bytes


def _table() -> RoutingTable:
    t = RoutingTable(ifname=lambda i: f"eth{i}")
    for text, via, ifi, proto in [
        ("10.0.1.0/24", None, 0, CONNECTED),
        ("10.0.0.0/8", "10.0.1.254", 0, "static"),
        ("10.0.2.128/25", "10.0.1.253", 0, "static"),
        ("default", "10.0.1.1", 0, "static"),
        ("fd00:1::/64", None, 1, CONNECTED),
        ("default6", "fd00:1::1", 1, "static"),
    ]:
        p, n = parse_prefix(text)
        t.add(Route(p, n, ip_bytes(via) if via else None, ifi, proto))
    return t


def test_longest_prefix_wins():
    t = _table()
    assert t.lookup(ip_bytes("10.0.1.7")).plen == 24
    assert t.lookup(ip_bytes("10.0.2.200")).via == ip_bytes("10.0.1.253")
    assert t.lookup(ip_bytes("10.0.2.100")).via == ip_bytes("10.0.1.254")
    assert t.lookup(ip_bytes("192.0.2.1")).plen == 0
    assert t.lookup(ip_bytes("fd00:1::5")).ifindex == 1
    assert t.lookup(ip_bytes("2001:db8::1")).via == ip_bytes("fd00:1::1")


def test_no_default_means_no_route_and_remove():
    t = _table()
    t.remove(*parse_prefix("default"))
    assert t.lookup(ip_bytes("192.0.2.1")) is None
    assert t.remove(*parse_prefix("10.0.1.0/24")).proto == CONNECTED
    assert t.lookup(ip_bytes("10.0.1.7")).plen == 8


def test_host_bits_are_cleared():
    t = RoutingTable()
    t.add(Route(*parse_prefix("10.1.2.3/16"), ifindex=0))
    assert t.lookup(ip_bytes("10.1.99.1")).prefix == ip_bytes("10.1.0.0")


def test_printing_like_ip_route():
    text = _table().format(4).splitlines()
    assert text[0] == "default via 10.0.1.1 dev eth0"
    assert "10.0.1.0/24 dev eth0 proto kernel scope link" in text
    assert "10.0.2.128/25 via 10.0.1.253 dev eth0" in text
    assert "default via fd00:1::1 dev eth1" in _table().format(6)


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)), max_size=30),
       st.integers(0, 2**32 - 1))
def test_lpm_matches_a_linear_scan(prefixes, addr):
    t = RoutingTable()
    ref = {}
    for net, plen in prefixes:
        mask = ((1 << 32) - 1) ^ ((1 << (32 - plen)) - 1)
        net &= mask
        t.add(Route(net.to_bytes(4, "big"), plen, ifindex=plen))
        ref[(net, plen)] = plen
    best = max((p for (n, p) in ref
                if addr & (((1 << 32) - 1) ^ ((1 << (32 - p)) - 1)) == n), default=None)
    r = t.lookup(addr.to_bytes(4, "big"))
    assert (r.plen if r else None) == best


def test_out_of_range_prefix_lengths_are_refused_with_a_clear_error():
    t = RoutingTable()
    for prefix, plen in ((ip_bytes("10.0.0.0"), 33), (ip_bytes("fd00::"), 129),
                         (ip_bytes("fd00::"), -1)):
        with pytest.raises(ValueError, match="out of range"):
            t.add(Route(prefix, plen, None, 0))
    assert len(t) == 0
