"""Soak: connections opening, transferring and closing under loss for a long stretch of virtual
time, on the simulator with the asyncio API (the path an application takes). At the end every
transfer was byte-exact and nothing leaked: no TCB left once TIME-WAIT is over, no TCP timer
armed, no transport kept by the server, no task left; memory at the end within 10 % of memory
at the first twelfth of the run (minute 5 of the hour).

The hour (1,000 connections, 3.6 s apart) is marked slow; `make test` runs six minutes (100)."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import random
import tracemalloc
from dataclasses import dataclass, field

import pytest

from stacklab.net.network import Network
from stacklab.stack.tcp.layer import HISTORY_LIMIT

RECORD_BYTES = 3000  # a ConnectionRecord with its tcp_info figures, rounded up

SIZE = 16 * 1024


@dataclass
class SoakResult:
    connections: int
    ok: int = 0
    failed: list[str] = field(default_factory=list)
    mem_checkpoint: int = 0
    mem_end: int = 0
    tcbs_left: int = -1
    timers_left: object = None
    transports_left: int = -1
    history: int = -1
    tasks_left: int = -1
    figures: dict = field(default_factory=dict)


def soak(duration: float, connections: int, loss: float = 0.02, seed: int = 1) -> SoakResult:
    res = SoakResult(connections)
    net = Network(seed=seed)
    c, s = net.add_host("c"), net.add_host("s")
    net.connect(c, s, delay="2ms", loss=loss)
    net.autoconfigure()
    gap = duration / connections

    async def handler(r, w):
        data = await r.read()
        w.write(hashlib.sha256(data).digest())
        await w.drain()
        w.close()
        await w.wait_closed()

    async def one(i: int) -> None:
        data = random.Random(i).randbytes(SIZE)
        try:
            r, w = await c.open_connection("s", 7000)
            w.write(data)
            await w.drain()
            w.write_eof()
            digest = await r.read()
            w.close()
            await w.wait_closed()
        except OSError as e:
            res.failed.append(f"{i}: {e!r}")
            return
        if digest == hashlib.sha256(data).digest():
            res.ok += 1
        else:
            res.failed.append(f"{i}: digest differs")

    async def checkpoint() -> None:
        await asyncio.sleep(duration / 12)
        gc.collect()
        res.mem_checkpoint = tracemalloc.get_traced_memory()[0]

    async def main() -> None:
        server = await s.start_server(handler, 7000)
        base_tasks = len(asyncio.all_tasks())
        cp = asyncio.ensure_future(checkpoint())
        clients: dict[asyncio.Future[None], None] = {}  # the running ones (a finished task
        for i in range(connections):                     # kept here would be the test's leak)
            task = asyncio.ensure_future(one(i))
            clients[task] = None
            task.add_done_callback(clients.pop)
            await asyncio.sleep(gap)
        await asyncio.gather(*clients)
        await cp
        await asyncio.sleep(180)  # TIME-WAIT (60 s) and the last retransmissions are over
        gc.collect()
        res.mem_end = tracemalloc.get_traced_memory()[0]
        res.tasks_left = len(asyncio.all_tasks()) - base_tasks
        res.transports_left = len(server.transports)

    tracemalloc.start()
    try:
        net.run(main(), until=duration + 4000)
        res.tcbs_left = sum(len(h.tcp.conns) for h in (c, s))
        res.timers_left = (c.tcp.get_timer(), s.tcp.get_timer())
        res.history = sum(len(h.tcp.history) for h in (c, s))
        res.figures = {"mem_checkpoint_kb": res.mem_checkpoint // 1024,
                       "mem_end_kb": res.mem_end // 1024, "ok": res.ok,
                       "frames_lost": sum(d.get("drop.loss", 0) for d in
                                          net.counters()["links"]["c-s"].values()),
                       "virtual_s": round(net.now, 1)}
    finally:
        tracemalloc.stop()
        net.close()
    return res


@pytest.fixture(scope="module")
def short() -> SoakResult:
    return soak(360.0, 100)


@pytest.fixture(scope="module")
def hour() -> SoakResult:
    return soak(3600.0, 1000)


def check_transfers(r: SoakResult) -> None:
    assert r.failed == [] and r.ok == r.connections, (r.failed[:5], r.figures)


def check_no_leaks(r: SoakResult) -> None:
    assert r.tcbs_left == 0, r.figures
    assert r.timers_left == (None, None)
    assert r.tasks_left == 0


def check_memory(r: SoakResult, still_filling: int = 0) -> None:
    """Memory at the end within 10 % of the checkpoint's, plus what the bounded caches that
    were still filling at the checkpoint may add: ``still_filling`` finished-connection
    records (``TcpLayer.history``, at most HISTORY_LIMIT per host, ~2.3 kB each)."""
    assert r.transports_left == 0, f"{r.transports_left} transports kept by the server"
    assert r.mem_end <= 1.10 * r.mem_checkpoint + still_filling * RECORD_BYTES, r.figures


def test_short_soak_transfers_are_exact(short):
    check_transfers(short)


def test_short_soak_leaves_no_tcb_timer_or_task(short):
    check_no_leaks(short)


def test_short_soak_memory_is_bounded(short):
    """Six minutes: at the checkpoint (30 s) the histories of both hosts are not full yet."""
    check_memory(short, still_filling=2 * HISTORY_LIMIT)


@pytest.mark.slow
def test_hour_soak_transfers_are_exact(hour):
    check_transfers(hour)


@pytest.mark.slow
def test_hour_soak_leaves_no_tcb_timer_or_task(hour):
    check_no_leaks(hour)


@pytest.mark.slow
def test_hour_soak_memory_is_flat(hour):
    check_memory(hour)
