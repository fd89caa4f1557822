"""After a path MTU decrease TCP resends only what went out in segments larger than the new MSS
(Linux tcp_simple_retransmit): with two successive drops (1500 -> 1400 -> 1300) the receiver
never gets a byte twice (issue 16 defect 9, audit D22: before the fix the second drop resent
the short tail segment that had already crossed the path, answered with a D-SACK)."""

from __future__ import annotations

import random

import pytest

from stacklab.net.network import Network


@pytest.mark.parametrize("sack", [True, False])
@pytest.mark.parametrize("size", [14_480, 200_000, 1_000_000])
@pytest.mark.parametrize("recovery", [1, 0])
def test_two_pmtu_drops_resend_nothing_twice(size, sack, recovery):
    # recovery 0 (net.ipv4.tcp_recovery, RACK off): the transmission records (sent.py) that
    # the resend reads are kept all the same
    net = Network(seed=11)
    a, r1, r2, r3, b = (net.add_host("a"), net.add_router("r1"), net.add_router("r2"),
                        net.add_router("r3"), net.add_host("b"))
    net.connect(a, r1, mtu=1500, delay="2ms", rate="100Mbit")  # examples/pmtud-v4.toml
    net.connect(r1, r2, mtu=1400, delay="5ms", rate="50Mbit")
    net.connect(r2, r3, mtu=1300, delay="5ms", rate="50Mbit")
    net.connect(r3, b, mtu=1500, delay="2ms", rate="100Mbit")
    net.autoconfigure()
    if not sack:
        a.sysctl["net.ipv4.tcp_sack"] = 0
    a.sysctl["net.ipv4.tcp_recovery"] = recovery
    data = random.Random(size).randbytes(size)
    got: dict = {}

    async def handler(r, w):
        got["tcb"] = next(iter(b.tcp.conns.values()))
        got["data"] = await r.read()
        w.close()

    async def main():
        await b.start_server(handler, 80)
        _, w = await a.open_connection("b", 80)
        got["tx"] = next(iter(a.tcp.conns.values()))
        w.write(data)
        await w.drain()
        w.close()
        await w.wait_closed()

    net.run(main(), until="30s")
    rx, tx = got["tcb"].stats, got["tx"].stats
    conn = a.tcp_connections_summary()[0]
    net.close()
    assert got["data"] == data
    assert conn["mss"] == 1248  # both drops taken (1300 - 40 - 12 of timestamps)
    assert rx.dup_segments == 0 and rx.dsacks_out == 0, (rx.dup_segments, rx.dsacks_out)
    if size == 14_480:  # one initial window (10 x 1448): every byte resent after the first
        # drop (10 x 1348 + 1000), after the second all but the 1000-byte tail, which fit
        assert tx.bytes_retrans == 14_480 + 13_480
