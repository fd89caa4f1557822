"""Integrity at scale: seeded 256 KB transfers over combined impairments (loss up to 20 %,
reorder, duplication, corruption, jitter): not one byte lost or altered, every connection closed.
20 transfers always; the full 200 are marked slow."""

from __future__ import annotations

import asyncio
import hashlib
import random

import pytest

from stacklab.net.network import Network

SIZE = 256 * 1024


def impairments(seed: int) -> dict:
    r = random.Random(f"integrity/{seed}")
    return {"loss": round(r.uniform(0.0, 0.20), 3), "reorder": round(r.uniform(0, 0.05), 3),
            "duplicate": round(r.uniform(0, 0.03), 3), "corrupt": round(r.uniform(0, 0.02), 3),
            "jitter": f"{r.randint(0, 3)}ms"}


def one_transfer(seed: int) -> dict:
    link = impairments(seed)
    net = Network(seed=seed)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="5ms", **link)
    net.autoconfigure()
    if seed % 2:
        a.tcp.default_congestion = "reno"
    data = random.Random(seed).randbytes(SIZE)
    got = {}

    async def handler(r, w):
        got["data"] = await r.read()
        w.write(hashlib.sha256(got["data"]).digest())
        await w.drain()
        w.close()
        await w.wait_closed()

    async def main():
        await b.start_server(handler, 5001)
        r, w = await a.open_connection("b", 5001)
        w.write(data)
        await w.drain()
        w.write_eof()
        got["digest"] = await r.read()
        w.close()
        await w.wait_closed()
        for _ in range(600):  # the server's FIN may need retransmissions: wait for the close
            if all(t.state.value in ("CLOSED", "TIME-WAIT") for h in (a, b)
                   for t in h.tcp.conns.values()):
                break
            await asyncio.sleep(1)

    net.run(main(), until="3000s")
    conns = [c for h in (a, b) for c in h.tcp_connections_summary()]
    net.close()
    return {"link": link, "data": data, "got": got, "conns": conns}


def check(res: dict) -> None:
    data, got = res["data"], res["got"]
    assert len(got["data"]) == SIZE and got["data"] == data, res["link"]
    assert got["digest"] == hashlib.sha256(data).digest()
    assert len(res["conns"]) == 2
    for c in res["conns"]:
        assert c["states"][-1] in ("CLOSED", "TIME-WAIT"), (res["link"], c["states"])


@pytest.mark.parametrize("seed", range(20))
def test_integrity_quick(seed):
    check(one_transfer(seed))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20, 200))
def test_integrity_full(seed):
    check(one_transfer(seed))


# -- issue 16: every transfer completes in bounded time ------------------------------------------
# Seeded transfers of 1 KB - 4 MB under random loss 0-20 %, reorder, duplication, jitter, rate
# limits and link flaps must all complete intact within 600 s of virtual time (before the
# issue 16 fixes, seeds 21 and 68 of the quick set were still running at 600 s). 100 always,
# 1,000 in the slow suite. A third of the transfers cross a router whose next link changes its
# MTU during the transfer (down and up again: path MTU discovery, RFC 1191, on both drops).

DEADLINE = 600.0


def bounded_transfer(seed: int) -> tuple[float, dict]:
    r = random.Random(f"bounded/{seed}")
    size = int(2 ** r.uniform(10, 22))
    link: dict = {"loss": round(r.uniform(0, 0.20), 3), "reorder": round(r.uniform(0, 0.05), 3),
                  "duplicate": round(r.uniform(0, 0.03), 3), "jitter": f"{r.randint(0, 5)}ms",
                  "delay": f"{r.randint(1, 50)}ms"}
    if r.random() < 0.5:
        link["rate"] = f"{r.choice([1, 10, 100])}Mbit"
    if r.random() < 0.3:
        t = r.uniform(0.5, 5)
        link["down"] = [(f"{t:.3f}s", f"{t + r.uniform(0.1, 3):.3f}s")]
    mtus: list[tuple[float, int]] = []
    if r.random() < 0.3:
        t = 0.0
        for _ in range(r.randint(1, 3)):
            t += r.uniform(0.05, 3)
            mtus.append((t, r.choice([1400, 1280, 1006, 576, 1500])))
    net = Network(seed=seed)
    a, b = net.add_host("a"), net.add_host("b")
    if mtus:  # a -link- r -narrowing link- b
        rt = net.add_router("r")
        net.connect(a, rt, **link)
        narrow = net.connect(rt, b, delay="1ms")
        link["mtu"] = mtus
    else:
        net.connect(a, b, **link)
    net.autoconfigure()
    data = random.Random(seed).randbytes(size)
    got: dict = {}

    async def mtu_changes():
        for at, mtu in mtus:
            await asyncio.sleep(at - net.now)
            narrow.set(mtu=mtu)  # the link and both interfaces: the router answers Frag Needed
            narrow.a.ports[narrow.a_port].mtu = mtu
            narrow.b.ports[narrow.b_port].mtu = mtu

    async def handler(r, w):
        got["data"] = await r.read()
        w.close()

    async def main():
        while True:  # a flap or heavy loss can defeat ARP: EHOSTUNREACH (as Linux); retry
            try:
                r, w = await a.open_connection("b", 5001)
                break
            except OSError:
                await asyncio.sleep(1)
        w.write(data)
        await w.drain()
        w.write_eof()
        await r.read()
        got["done"] = net.now
        w.close()

    async def serve():
        changes = asyncio.ensure_future(mtu_changes())
        await b.start_server(handler, 5001)
        await main()
        await changes

    net.run(serve(), until=f"{DEADLINE}s")
    net.close()
    assert got.get("data") == data, (seed, size, link)
    return got["done"], link


@pytest.mark.parametrize("seed", range(100))
def test_transfers_complete_in_bounded_time_quick(seed):
    done, link = bounded_transfer(seed)
    assert done < DEADLINE, link


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 1000))
def test_transfers_complete_in_bounded_time_full(seed):
    done, link = bounded_transfer(seed)
    assert done < DEADLINE, link
