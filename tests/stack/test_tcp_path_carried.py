"""``Ipv4.tcp_path`` carries its answer while nothing it was read from moved (issue 23): after
random changes of each input (route, addresses, the neighbour entry's state, MAC and presence,
the path MTU cache, the port's MTU and offload, the interface's MTU cap, the TTL), the carried
answer is the one the look-ups (``_tcp_path``, its specification) give, and the neighbour entry
is marked used as ``NeighborCache.usable`` marks it."""

from __future__ import annotations

import random

import pytest

import stacklab
from stacklab.stack.route import Route
from stacklab.wire.addr import ip_str

OTHER_MAC = b"\x02\xee\xee\xee\xee\xee"
# mypyc keeps a fixed-length tuple unboxed and boxes it anew at every return to Python: on the
# compiled tier the carried answer is an equal tuple with the same interface and templates
COMPILED = stacklab.tier().startswith("compiled")


def _same(x: tuple[object, ...] | None, y: tuple[object, ...] | None) -> bool:
    if x is None or y is None or not COMPILED:
        return x is y
    return x == y and x[0] is y[0] and x[5] is y[5]  # (ints are boxed anew too)


def _changes(a: stacklab.Host, dst: bytes, rnd: random.Random, now: float) -> None:
    """One random change of what tcp_path reads (or none)."""
    iface = a.interfaces[0]
    arp = iface.arp
    n = arp.entries.get(dst)
    mac = n.mac if n is not None and n.mac is not None else OTHER_MAC
    kind = rnd.randrange(19)
    if kind == 0:
        a.default_ttl = rnd.choice((64, 33))
    elif kind == 1:
        iface.port.csum_offload = rnd.random() < 0.5
    elif kind == 2:
        iface.port.mtu = rnd.choice((1500, 1400))
    elif kind == 3:
        iface._mtu_cap = rnd.choice((None, 1300))
    elif kind == 4:
        a.pmtu.report(dst, rnd.choice((1200, 1000)), now, iface.mtu)
    elif kind == 5:
        a.pmtu.handle_timer(now + 10_000)  # every learned path MTU expires
    elif kind == 6:
        arp.update(dst, rnd.choice((mac, OTHER_MAC)), now, solicited=rnd.random() < 0.5)
    elif kind == 7:
        arp.forget(dst)
    elif kind == 8:
        arp.forget(dst)
        arp.update(dst, mac, now, solicited=True)  # a new entry, as it was
    elif kind == 9:
        if n is not None and n.mac is not None:
            n.mac = bytes(n.mac)  # the same address, another object
    elif kind == 10:
        arp.resolve(dst, None, now)  # STALE -> DELAY, or a new resolution
    elif kind == 11:
        arp.add_permanent(dst, rnd.choice((mac, OTHER_MAC)), now)
    elif kind == 12:  # the connected route goes, or comes back
        gone = a.routes.remove_where(lambda r: r.plen == 24 and r.prefix == dst[:3] + b"\0")
        if not gone:
            a.routes.add(Route(dst[:3] + b"\0", 24, ifindex=iface.index, proto="kernel",
                               src=iface.v4[0][0]))
    elif kind == 13:  # the destination becomes one of ours, or no longer
        if dst in a.local4:
            a.remove_address(iface.index, ip_str(dst) + "/32")
        else:
            a.add_address(iface.index, ip_str(dst) + "/32", route=False)
    elif kind == 14:
        arp.confirm(dst, now)
    elif kind == 15:
        arp.handle_timer(now)  # REACHABLE -> STALE once the reachable time is over, ...
    elif kind == 16:  # a different address without override: REACHABLE -> STALE, MAC kept
        arp.update(dst, OTHER_MAC if mac != OTHER_MAC else b"\x02" * 6, now, solicited=True,
                   override=False)
    elif kind == 17:
        a.add_address(iface.index, f"10.9.{rnd.randrange(250)}.1/24")
    # 18: nothing changes: the carried answer is taken


@pytest.mark.parametrize("seed", range(8))
def test_the_carried_path_is_the_looked_up_one(seed: int) -> None:
    net = stacklab.Network(seed=seed)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="1ms")
    net.autoconfigure()
    dst = b.interfaces[0].v4[0][0]
    a.interfaces[0].arp.update(dst, b.interfaces[0].mac, 0.0, solicited=True)
    ipv4 = a.ipv4
    rnd = random.Random(seed)
    carried = answered = 0
    now = 1.0
    for _ in range(800):
        now += rnd.choice((0.001, 0.5, 40.0))
        _changes(a, dst, rnd, now)
        before = ipv4._tcp_paths.get(dst)
        n = a.interfaces[0].arp.entries.get(dst)
        if n is not None:
            n.used = -1.0
        got = ipv4.tcp_path(dst, now)
        carried += got is not None and _same(got, before)
        if n is not None and got is not None:
            assert n.used == now  # usable's mark
        want = ipv4._tcp_path(dst, now)
        if want is None:
            assert got is None
            continue
        answered += 1
        assert got is not None
        assert got[0] is want[0] and got[1] == want[1] and got[2:5] == want[2:5]
        assert got[5] is want[5]  # the same frame templates
        # and carried from here: nothing moved since the look-ups
        assert _same(ipv4.tcp_path(dst, now), ipv4._tcp_paths[dst])
    assert carried > 20 and answered > 80
