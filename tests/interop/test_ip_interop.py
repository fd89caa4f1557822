"""IP level against the Linux kernel: ping, ARP, NDP, fragments, UDP, ICMP errors."""

from __future__ import annotations

import re

import pytest

from stacklab.wire.addr import mac_str

from .linux import Netns
from .stackhost import LINUX4, LINUX6, STACK4, STACK6, StackOnTap


def ping_ok(out: str, count: int) -> None:
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m, out
    assert int(m.group(2)) == count, out


@pytest.mark.parametrize("size", [56, 1472, 4000])
def test_linux_pings_stacklab_v4(netns: Netns, host_on_tap: StackOnTap, size: int) -> None:
    r = netns.run("ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", str(size), STACK4,
                  timeout=15, check=False)
    ping_ok(r.stdout, 3)
    # ARP Linux -> stacklab: Linux learnt our MAC from our reply.
    assert mac_str(host_on_tap.mac) in netns.neigh(STACK4)
    if size > 1472:
        frags = host_on_tap.node.counters
        assert any(k.startswith("ipv4.reasm") or "frag" in k for k in frags), dict(frags)


@pytest.mark.parametrize("size", [56, 1452, 4000])
def test_linux_pings_stacklab_v6(netns: Netns, host_on_tap: StackOnTap, size: int) -> None:
    r = netns.run("ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "-s", str(size), STACK6,
                  timeout=15, check=False)
    ping_ok(r.stdout, 3)
    # NDP Linux -> stacklab.
    assert mac_str(host_on_tap.mac) in netns.neigh(STACK6)


@pytest.mark.parametrize(("family", "size"), [(4, 56), (4, 4000), (6, 56), (6, 4000)])
def test_stacklab_pings_linux(netns: Netns, host_on_tap: StackOnTap, family: int,
                              size: int) -> None:
    dst = LINUX4 if family == 4 else LINUX6
    result = host_on_tap.run(host_on_tap.node.ping(dst, count=3, size=size, interval=0.2,
                                                   timeout=2.0, out=None))
    assert result.transmitted == 3 and result.received == 3, result.summary()
    # ARP / NDP stacklab -> Linux: Linux answered our request and learnt our MAC from it.
    assert mac_str(host_on_tap.mac) in netns.neigh(STACK4 if family == 4 else STACK6)
    n = host_on_tap.call(host_on_tap.node.neighbors.lookup, dst)
    assert n is not None and n.mac == host_on_tap.taps[0].kernel_mac()
