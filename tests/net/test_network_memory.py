"""A closed network is freed whole: its links, their directions and stages, its nodes (a
long-lived process that builds many simulations, a sweep, keeps none of them)."""

from __future__ import annotations

import asyncio
import gc

import stacklab
from stacklab.net.link import Direction
from stacklab.stack.tcp.tcb import Tcb


def _run_one() -> None:
    net = stacklab.Network(seed=5)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="1ms")
    net.autoconfigure()

    async def sink(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.read()

    async def main() -> None:
        await b.start_server(sink, 9)
        _, w = await a.open_connection("b", 9)
        w.write(b"x" * 10_000)
        w.close()
        await asyncio.sleep(0.1)

    net.run(main(), until="10s")
    net.close()


def test_a_closed_network_leaves_no_link_or_connection_behind() -> None:
    gc.collect()
    before = {id(o) for o in gc.get_objects() if isinstance(o, (Direction, Tcb))}
    _run_one()
    gc.collect()
    left = [type(o).__name__ for o in gc.get_objects()
            if isinstance(o, (Direction, Tcb)) and id(o) not in before]
    assert left == []
