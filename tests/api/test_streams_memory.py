"""A stream server forgets each accepted connection once it is lost (issue 20 item 3: every
accepted transport stayed in the server's list forever, ~7.8 KB each with its protocol and
reader)."""

from __future__ import annotations

import asyncio
import gc

from stacklab.api.streams import TcpTransport
from stacklab.net.network import Network

_PER_CONNECTION = (TcpTransport, asyncio.StreamReader, asyncio.StreamReaderProtocol,
                   asyncio.StreamWriter)


def _alive() -> dict[str, int]:
    gc.collect()
    counts = dict.fromkeys((t.__name__ for t in _PER_CONNECTION), 0)
    for o in gc.get_objects():
        for t in _PER_CONNECTION:  # (the stream protocol is a subclass of asyncio's)
            if isinstance(o, t):
                counts[t.__name__] += 1
    return counts


def test_two_thousand_connections_leave_no_transport_behind() -> None:
    with Network(seed=4) as net:
        a, b = net.add_host("a"), net.add_host("b")
        net.connect(a, b, delay="1ms")
        net.autoconfigure()

        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.read(100))
            writer.close()

        async def main() -> tuple[int, dict[str, int]]:
            server = await b.start_server(echo, 7)
            for i in range(2000):
                reader, writer = await a.open_connection("b", 7)
                writer.write(b"hello %d" % i)
                assert await reader.read() == b"hello %d" % i
                writer.close()
                await writer.wait_closed()
                del reader, writer
            await asyncio.sleep(120)  # past TIME-WAIT
            assert not a.tcp.conns and not b.tcp.conns
            return len(server.transports), _alive()

        still_listed, alive = net.run(main(), until=3600)
    assert still_listed == 0
    assert alive == dict.fromkeys(alive, 0)
