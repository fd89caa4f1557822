"""SendSpace is queued only for an ACK after which a write would take at least one byte
(``Tcb._space_freed``, issue 23): the same frames on the wire and the same write timings as
with one for every ACK that freed send-buffer data, with fewer calls into the TCB."""

from __future__ import annotations

import asyncio
import hashlib
import random

import pytest

import stacklab
from stacklab.net.network import Network
from stacklab.stack.tcp import sndbuf
from stacklab.stack.tcp.tcb import Tcb

CASES = {
    # (MTU, loss, writes, socket options of the writer)
    "bulk": (1500, 0.0, [65536] * 24, {}),
    "loss": (1500, 0.01, [65536] * 16, {}),
    "jumbo": (9000, 0.0, [65536] * 16, {}),
    "small-sndbuf": (1500, 0.0, [20000, 300, 65536, 1, 40000] * 4, {"send_buffer": 32768}),
    "notsent-lowat": (1500, 0.0, [65536, 5000] * 8, {"notsent_lowat": 16384}),
}


def _run(tmp_path, mtu, loss, sizes, opts):
    """A writer and a discard server: the pcap of the link, when each write's drain()
    returned (virtual time), what the receiver got, and how many times the TCB was asked to
    take data."""
    net = Network(seed=3)
    a, b = net.add_host("a"), net.add_host("b")
    params: dict = {"mtu": mtu, "delay": "1ms"}
    if loss:
        params["loss"] = loss
    net.connect(a, b, **params)
    net.autoconfigure()
    net.capture(tmp_path)
    data = random.Random(7).randbytes(sum(sizes))
    got = bytearray()
    timings: list[float] = []

    async def sink(r, w):
        while chunk := await r.read(1 << 20):
            got.extend(chunk)
        w.close()

    async def main():
        await b.start_server(sink, 9)
        r, w = await a.open_connection("b", 9, **opts)
        off = 0
        for n in sizes:
            w.write(data[off:off + n])
            off += n
            await w.drain()
            timings.append(net.loop.time())
        w.write_eof()
        while len(got) < len(data):
            await asyncio.sleep(0.001)
        timings.append(net.loop.time())
        w.close()

    sends = 0
    send = Tcb.send

    def counted(self, *args, **kw):
        nonlocal sends
        sends += 1
        return send(self, *args, **kw)

    Tcb.send = counted
    try:
        net.run(main(), until=600)
    finally:
        Tcb.send = send
    assert bytes(got) == data
    pcaps = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(tmp_path.iterdir()) if p.suffix == ".pcap"}
    assert pcaps
    return pcaps, timings, sends


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.skipif(stacklab.tier() != "pure Python", reason="replaces Tcb.send and "
                    "sndbuf.write_space: the compiled tier's callers do not look them up")
def test_space_events_only_when_a_write_would_take_something(tmp_path, monkeypatch, case):
    mtu, loss, sizes, opts = CASES[case]
    pcaps, timings, sends = _run(tmp_path / "kept", mtu, loss, sizes, opts)
    # every ACK that freed data queues one, as before (a write would take nothing or not)
    monkeypatch.setattr(sndbuf, "write_space", sndbuf.wspace)
    monkeypatch.setattr(sndbuf, "after_ack",  # (the send fast path's check_space + write_space)
                        lambda tcb: (sndbuf.check_space(tcb), sndbuf.wspace(tcb)))
    pcaps_all, timings_all, sends_all = _run(tmp_path / "all", mtu, loss, sizes, opts)
    assert pcaps == pcaps_all
    assert timings == timings_all
    assert sends <= sends_all
    if case in ("bulk", "loss", "small-sndbuf"):  # the writer waits behind a full buffer
        assert sends < sends_all
