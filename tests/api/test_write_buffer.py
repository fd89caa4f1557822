"""The transport's write buffer, as asyncio's socket transports count theirs: only what the TCB's
send buffer (the kernel's socket buffer) did not take."""

from __future__ import annotations

from stacklab.net.network import Network


def two_hosts() -> tuple:
    """a and b on one 10 ms link."""
    net = Network(seed=1)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="10ms")
    net.autoconfigure()
    return net, a, b


def test_drain_returns_once_the_send_buffer_took_the_data():
    """asyncio's transports count only their own buffer: data the TCB's send buffer (the
    kernel's socket buffer) took, sent or not yet acknowledged, does not hold drain() back."""
    net, a, b = two_hosts()
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


def test_writes_go_on_while_a_view_of_the_write_buffer_is_still_alive():
    """A view of the transport's own buffer kept alive elsewhere (say by a reference cycle until
    the collector runs, at a time that differs per process) must not turn a write or the
    buffer's drain into the TCB into BufferError: a sweep worker's tcp-send app died so."""
    net, a, b = two_hosts()
    data = bytes(range(256)) * 4096  # 1 MiB: more than the send buffer takes at once
    got: dict = {}

    async def sink(r, w):
        got["data"] = await r.read()
        w.close()

    async def main():
        await b.start_server(sink, 5000)
        r, w = await a.open_connection("b", 5000)
        w.write(data[:600_000])
        assert w.transport.get_write_buffer_size() > 0  # some of it waits in the transport
        held = memoryview(w.transport._pending)  # noqa: F841  (the view someone still holds)
        w.write(data[600_000:])  # the buffer grows
        await w.drain()  # and is taken from its front
        w.close()
        await w.wait_closed()

    net.run(main(), until="30s")
    assert got["data"] == data


def test_a_write_into_an_empty_transport_buffer_is_copied_before_write_returns():
    """A write while nothing waits in the transport goes into the TCB's send buffer itself, only
    the rest being kept: what the caller does with its buffer after ``write()`` returns changes
    nothing sent, the rest keeps its order, and a memoryview of wider items counts its bytes,
    as the transport's own copy of the whole write did."""
    import array

    net, a, b = two_hosts()
    words = array.array("H", range(40_000))  # 80,000 bytes as 40,000 items
    first = bytearray(b"a" * 300_000)  # more than the send buffer takes at once
    second = bytes(range(256)) * 100
    want = words.tobytes() + bytes(first) + bytes(second) + b"tail"
    got: dict = {}

    async def sink(r, w):
        got["data"] = await r.read()
        w.close()

    async def main():
        await b.start_server(sink, 5000)
        r, w = await a.open_connection("b", 5000)
        w.write(memoryview(words))
        words[0] = 0xFFFF
        got["taken"] = w.transport.get_write_buffer_size() == 0
        w.write(first)
        got["waiting"] = w.transport.get_write_buffer_size()
        first[:] = b"z" * len(first)  # the caller reuses its buffer
        await w.drain()
        view = memoryview(bytearray(second))
        w.write(view[:10_000])
        w.write(view[10_000:])
        view[:] = b"y" * len(view)
        w.write(b"tail")
        w.close()
        await w.wait_closed()

    net.run(main(), until="30s")
    assert got["taken"]  # the TCB's send buffer took the whole first write
    assert 0 < got["waiting"] < 300_000  # some of the first write waited in the transport
    assert got["data"] == want
