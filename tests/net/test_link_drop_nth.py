"""The deterministic "drop the Nth frame" link impairment (drop_nth, drop_count)."""

from __future__ import annotations

import pytest

from stacklab.net.network import Network
from stacklab.net.stages import is_tcp_data
from stacklab.net.units import ParamError


def run_transfer(**link):
    net = Network(seed=1)
    a, b = net.add_host("a"), net.add_host("b")
    lk = net.connect(a, b, delay="5ms", **link)
    net.autoconfigure()
    data = bytes(range(256)) * 200
    got = {}

    async def handler(r, w):
        got["data"] = await r.read()
        w.close()

    async def main():
        await b.start_server(handler, 80)
        r, w = await a.open_connection("b", 80)
        w.write(data)
        await w.drain()
        w.write_eof()
        await r.read()
        got["info"] = w.get_extra_info("tcp_info")
        w.close()

    net.run(main(), until="60s")
    return lk, got, data


def test_drop_third_tcp_data_segment_forward_only():
    lk, got, data = run_transfer(forward={"drop_nth": [3], "drop_count": "tcp-data"})
    assert got["data"] == data
    fwd, rev = lk.counters().values()
    assert fwd["drop.nth"] == 1 and rev.get("drop.nth", 0) == 0
    assert got["info"]["retransmits"] == 1 and got["info"]["fast_retransmits"] == 1


def test_drop_nth_counts_all_frames_by_default_and_is_validated():
    lk, got, data = run_transfer(drop_nth=[1])  # the first frame each way (ARP) is lost
    assert got["data"] == data
    assert sum(c.get("drop.nth", 0) for c in lk.counters().values()) == 2
    net = Network(seed=1)
    net.add_host("x")
    net.add_host("y")
    with pytest.raises(ParamError):
        net.connect("x", "y", drop_nth=[0])
    with pytest.raises(ParamError):
        net.connect("x", "y", drop_count="some")


def test_is_tcp_data_recognises_frames():
    assert not is_tcp_data(b"\x00" * 20)
