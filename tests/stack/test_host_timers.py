"""Host.get_timer keeps the earliest deadline of the ARP/NDP caches (each cache reports its
changes) and NDP keeps its own answer: after any sequence of neighbour events and timer runs
the host answers what walking every cache and every deadline afresh answers."""

from __future__ import annotations

import random

from stacklab.stack.router import Router
from stacklab.wire.addr import ip_bytes


def _walked(r: Router) -> float | None:
    """The earliest deadline asked of every engine, no cached answer used."""
    r.ndp._timer_valid = False
    times = [r.ndp.get_timer(), r.ipv4.reasm.get_timer(), r.ipv6.reasm.get_timer()]
    times += [c.get_timer() for i in r.interfaces for c in (i.arp, i.nd)]
    times += [s.get_timer() for s in r._timer_sources]
    known = [t for t in times if t is not None]
    return min(known) if known else None


def test_cached_timer_is_the_walked_one() -> None:
    rng = random.Random(3)
    r = Router("r", rng=random.Random(1))
    for i in range(4):
        r.add_interface(f"eth{i}", bytes([2, 0, 0, 0, 0, i + 1]))
        r.add_address(i, f"10.0.{i}.1/24")
        r.add_address(i, f"fd00:{i}::1/64")
    r.advertise(1)
    now = 0.0
    fired = 0
    for _ in range(3000):
        iface = rng.choice(r.interfaces)
        k = rng.randrange(2, 12)
        v4 = ip_bytes(f"10.0.{iface.index}.{k}")
        v6 = ip_bytes(f"fd00:{iface.index}::{k:x}")
        mac = bytes([2, 1, 0, 0, iface.index, k])
        what = rng.randrange(7)
        if what == 0:
            iface.arp.resolve(v4, b"packet", now)
        elif what == 1:
            iface.nd.resolve(v6, b"packet", now)
        elif what == 2:
            iface.arp.update(v4, mac, now, solicited=rng.random() < 0.5)
        elif what == 3:
            iface.nd.update(v6, mac, now, solicited=rng.random() < 0.5, create=True)
        elif what == 4:
            (iface.arp if rng.random() < 0.5 else iface.nd).confirm(
                v4 if rng.random() < 0.5 else v6, now)
        elif what == 5:
            iface.arp.forget(v4)
        else:
            t = r.get_timer()
            if t is not None:
                now = max(now, t)
                r.handle_timer(now)
                fired += 1
        r.frames_to_send()
        now += rng.choice((0.0, 0.001, 0.5, 3.0))
        assert r.get_timer() == _walked(r)
    assert fired > 300
