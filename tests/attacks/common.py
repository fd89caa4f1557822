"""Shared pieces of the attack suites: the fuzz bench (host A — router R — host B with live
connections, tests/fuzz/bench.py) and an attacker's frame helpers."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from stacklab.stack.tcp.tcb import Tcb

from ..fuzz.bench import Bench
from ..fuzz.frames import eth, tcp4, tcp6

__all__ = ["Bench", "held_bytes", "spoof_from_b", "live_tcb"]


def live_tcb(b: Bench, name: str) -> Tcb:
    """A's end of the live connection ``name`` ("http": A→B:80 IPv4, "ssh": B→A:22 IPv6)."""
    lv = next(lv for lv in b.conns if lv.name == name)
    tcb = lv.client if name == "http" else lv.server
    assert tcb is not None
    return tcb


def spoof_from_b(tcb: Tcb, seq: int, ack: int, flags: int, data: bytes = b"",
                 window: int = 65535) -> bytes:
    """A segment claiming to come from B on ``tcb``'s 4-tuple, as A receives it from R."""
    mk = tcp4 if len(tcb.remote_ip) == 4 else tcp6
    return eth(mk(tcb.remote_ip, tcb.local_ip, tcb.remote_port, tcb.local_port,
                  seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags, data, window=window))


@contextmanager
def held_bytes() -> Iterator[Callable[[], int]]:
    """Python memory allocated inside the block and still held at its end (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    result = {"held": 0}
    try:
        yield lambda: result["held"]
    finally:
        gc.collect()
        result["held"] = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()

