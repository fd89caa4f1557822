"""Events are pulled: the TCP layer queues ``(tcb, event)`` and never calls the application; the
API drains the queue after every node call, so what the application does reaches the wire in
the same loop turn."""

from __future__ import annotations

import asyncio

from stacklab.net.network import Network
from stacklab.stack.tcp.config import TcpConfig
from stacklab.stack.tcp.events import Connected, DataReceived
from stacklab.stack.tcp.fsm import CLOSED, ESTABLISHED


def two_hosts():
    net = Network(seed=2)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="5ms")
    net.autoconfigure()
    return net, a, b


def test_a_write_reaches_the_wire_in_one_loop_turn():
    net, a, b = two_hosts()
    seen = {}

    async def main():
        await b.start_server(lambda r, w: None, port=7)
        _, w = await a.open_connection("b", 7)
        await asyncio.sleep(0.1)
        before = a.counters["tcp.tx.segments"]
        w.write(b"hello")
        await asyncio.sleep(0)  # one turn of the loop: the driver's kick has run
        seen["sent"] = a.counters["tcp.tx.segments"] - before
        w.close()

    net.run(main(), until=5)
    net.close()
    assert seen["sent"] == 1


def test_the_layer_queues_events_for_the_application_to_pull():
    net, a, b = two_hosts()
    got = {}

    async def main():
        await b.start_server(lambda r, w: None, port=7)
        _, w = await a.open_connection("b", 7)
        w.write(b"x" * 100)
        await asyncio.sleep(0.1)
        # the drain hook emptied b's queue: nothing waits for the application
        got["queued"] = list(b.tcp.events)
        got["conn"] = next(iter(b.tcp.conns.values()))
        w.close()

    net.run(main(), until=5)
    net.close()
    assert got["queued"] == []
    assert got["conn"].stats.bytes_received == 100


def test_the_events_queue_hands_out_what_a_tcb_reported():
    net, a, b = two_hosts()
    got = []

    async def main():
        lst = b.tcp.listen(9, on_established=lambda tcb: None)
        # no drain hook for b (no API server): its events stay queued for whoever pulls them
        _, w = await a.open_connection("b", 9)
        w.write(b"abc")
        await asyncio.sleep(0.1)
        while b.tcp.events:
            got.append(b.tcp.events.popleft())
        lst.close()
        w.close()

    net.run(main(), until=5)
    net.close()
    tcb = got[0][0]
    assert [type(ev) for _, ev in got] == [Connected, DataReceived]
    assert tcb.state is ESTABLISHED and tcb.read() == b"abc"


def test_a_child_completing_after_its_listener_closed_is_reset():
    net, a, b = two_hosts()
    got = {}

    async def main():
        lst = b.tcp.listen(9, on_established=lambda tcb: None)
        task = asyncio.ensure_future(a.open_connection("b", 9))
        while not lst.pending:  # until the SYN,ACK is on its way back: the child is half-open
            await asyncio.sleep(0.001)
        lst.close()
        _, w = await task
        await asyncio.sleep(0.1)
        got["a"] = next(iter(a.tcp.history))
        got["rst"] = b.counters["tcp.tx.rst"]

    net.run(main(), until=5)
    net.close()
    assert got["rst"] == 1
    assert got["a"].state is CLOSED and isinstance(got["a"].error, ConnectionResetError)


def test_a_new_syn_reopens_a_connection_in_time_wait():
    net, a, b = two_hosts()
    got = {}

    async def handler(r, w):
        w.write(await r.read(5))
        w.close()  # the server closes first: its side of the connection ends in TIME-WAIT

    async def main():
        await b.start_server(handler, port=7)
        for attempt in range(2):  # the same 4-tuple twice (RFC 6191)
            # without timestamps (their offsets are per connection) the ISN must have grown
            r, w = await a.open_connection("b", 7, local_addr=("", 40000),
                                           config=TcpConfig(timestamps=False))
            w.write(b"hello")
            got[attempt] = await r.read()
            w.close()
            await asyncio.sleep(1.0)
            if attempt == 0:
                got["old"] = next(iter(b.tcp.conns.values()))

    net.run(main(), until=30)
    net.close()
    assert got[0] == got[1] == b"hello"
    old = got["old"]
    assert old.state is CLOSED
    assert old.transitions[-1][3] == "new SYN in TIME-WAIT (RFC 6191)"
