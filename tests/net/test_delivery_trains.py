"""Frames a link delivers at one instant (a train) reach the node one by one as always, each
followed by the drain hooks (the application's callbacks and what it does in reaction), but the
node's output is flushed once after the whole train (``NodeDriver.hold``/``release``, the
``Deliver.take_due`` batch). That is exactly the delivery of one frame at a time with a flush
after each: the same frames, bytes and times, on a workload whose callbacks act mid-train (an
echo server writing from ``data_received``, a reader whose StreamReader pauses the transport)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

import stacklab
from stacklab.api.driver import NodeDriver


def _run(seed: int) -> tuple[list[tuple[float, str, bytes]], dict[str, Any]]:
    data = random.Random(f"trains/{seed}").randbytes(300_000)
    sent: list[tuple[float, str, bytes]] = []
    with stacklab.Network(seed=seed) as net:
        a, b = net.add_host("a"), net.add_host("b")
        net.connect(a, b, mtu=1500, delay="1ms")
        net.autoconfigure()
        for h in (a, b):
            drv = h.driving()
            tx = drv.transmit

            def record(ifindex: int, frame: bytes | bytearray, tx: Any = tx,
                       name: str = h.name) -> None:
                sent.append((net.loop.time(), name, bytes(frame)))
                tx(ifindex, frame)
            drv.transmit = record
            tx_all = drv.transmit_all
            assert tx_all is not None  # the network's: a flush's frames in one call

            def record_all(out: list[tuple[int, bytes | bytearray]], tx_all: Any = tx_all,
                           name: str = h.name) -> None:
                sent.extend((net.loop.time(), name, bytes(frame)) for _, frame in out)
                tx_all(out)
            drv.transmit_all = record_all

        class Echo(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                self.t = transport

            def data_received(self, d: bytes) -> None:
                self.t.write(d)  # a reaction inside the drain, between frames of a train

        async def slow_sink(reader: asyncio.StreamReader, writer: Any) -> None:
            got = 0  # small reads with pauses: the StreamReader pauses the transport mid-train
            while chunk := await reader.read(3000):
                got += len(chunk)
                await asyncio.sleep(0.002)
            writer.write(got.to_bytes(4, "big"))
            writer.close()

        async def main() -> tuple[bytes, bytes]:
            await b.create_server(Echo, port=7)
            await b.start_server(slow_sink, 9)
            er, ew = await a.open_connection("b", 7)
            sr, sw = await a.open_connection("b", 9, limit=4096)

            async def echo() -> bytes:
                back = bytearray()
                for i in range(0, len(data), 20_000):
                    ew.write(data[i:i + 20_000])
                    await ew.drain()
                while len(back) < len(data):
                    back += await er.read(65536)
                return bytes(back)

            async def bulk() -> bytes:
                for i in range(0, len(data), 32768):
                    sw.write(data[i:i + 32768])
                    await sw.drain()
                sw.write_eof()
                return await sr.read()

            return await asyncio.gather(echo(), bulk())  # type: ignore[return-value]

        back, count = net.run(main(), until=600)
        assert back == data and int.from_bytes(count, "big") == len(data)
        return sent, net.counters()


@pytest.mark.parametrize("seed", [1, 2])
def test_a_train_flushed_once_sends_what_frame_by_frame_delivery_sends(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    trains = _run(seed)
    with monkeypatch.context() as m:  # no batch: each frame delivered and flushed on its own
        m.setattr(NodeDriver, "hold", lambda self: None)
        m.setattr(NodeDriver, "release", lambda self, flush=True: None)
        one_by_one = _run(seed)
    assert len(trains[0]) > 500
    assert trains == one_by_one
