"""A connection that ends while the application has paused reading (asyncio's StreamReader
pauses its transport above twice its limit) still hands over every byte before the end."""

from __future__ import annotations

import asyncio

from stacklab.net.network import Network


def test_every_byte_arrives_when_the_connection_ends_during_paused_reading():
    net = Network(seed=1)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="5ms")
    net.autoconfigure()
    data = bytes(range(256)) * 1200  # 300 KiB: more than the reader buffers before pausing
    out: dict = {}

    async def source(r, w):
        w.write(data)
        await w.drain()
        w.close()  # FIN after the data; the client's FIN came first: the connection ends

    async def main():
        await b.start_server(source, 5000)
        r, w = await a.open_connection("b", 5000)
        w.write_eof()
        await asyncio.sleep(5)  # the transfer and both FINs are over before the first read
        out["paused"] = w.transport._reading_paused
        out["got"] = await r.read()
        w.close()

    net.run(main(), until="30s")
    assert out["paused"]  # the case under test: the end came while reading was paused
    assert out["got"] == data
