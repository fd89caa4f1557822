"""The transport's write buffer, as asyncio's socket transports count theirs: only what the TCB's
send buffer (the kernel's socket buffer) did not take."""

from __future__ import annotations

from stacklab.net.network import Network


def test_drain_returns_once_the_send_buffer_took_the_data():
    """asyncio's transports count only their own buffer: data the TCB's send buffer (the
    kernel's socket buffer) took, sent or not yet acknowledged, does not hold drain() back."""
    net = Network(seed=1)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="10ms")
    net.autoconfigure()
    out: dict = {}

    async def sink(r, w):
        await r.read()
        w.close()

    async def main():
        await b.start_server(sink, 5000)
        r, w = await a.open_connection("b", 5000)
        tcb = w.get_extra_info("tcb")
        w.write(b"x" * 20_000)  # fits the initial send buffer
        out["size"] = w.transport.get_write_buffer_size()
        await w.drain()
        out["acked_at_drain"] = tcb.stats.bytes_acked
        w.close()

    net.run(main(), until="5s")
    assert out["size"] == 0
    assert out["acked_at_drain"] == 0  # drain() did not wait a round trip for the ACKs
