"""RFC 8899 DPLPMTUD on UDP sockets, and the search rule it shares with TCP's PLPMTUD."""

from __future__ import annotations

import asyncio

import pytest

import stacklab
from stacklab.stack.plpmtu import Dplpmtud, DplpmtudState, PmtuSearch
from stacklab.stack.udp import PacketTooBigError


def black_hole_path(blackhole: bool = True):
    """a -1500- r -1400- b; ICMP from r back to a dropped (a PMTUD black hole) if asked."""
    net = stacklab.Network(seed=12)
    a, r, b = net.add_host("a"), net.add_router("r"), net.add_host("b")
    net.connect(a, r, delay="2ms", reverse={"icmp_blackhole": blackhole})
    net.connect(r, b, delay="2ms", mtu=1400)
    net.autoconfigure()
    return net, a, b


async def echo_probes(b, port):
    """The peer application: answers each probe with its first 8 bytes (tag + size)."""
    s = b.udp_socket(4)
    s.bind(("", port))
    while True:
        data, addr = await s.recvfrom()
        await s.sendto(data[:8], addr)


async def discover(a, dst, port, rounds=40):
    s = a.udp_socket(4)
    s.connect((dst, port))
    s.enable_plpmtud()
    for _ in range(rounds):
        size = await s.send_probe(b"PROBE" + b"\0\0\0")
        if size is None:
            if s.plpmtud_state == "search-complete":
                break
            await asyncio.sleep(1)
            continue
        try:
            await asyncio.wait_for(s.recv(), 2.0)
        except TimeoutError:
            await asyncio.sleep(15)  # the probe timer decides it was lost
            continue
        except PacketTooBigError:
            continue  # EMSGSIZE, as Linux reports it; DPLPMTUD took the MTU in already
        s.probe_acked(size)
    return s


def test_udp_finds_the_path_mtu_through_a_black_hole():
    net, a, b = black_hole_path()
    with net:
        async def main():
            asyncio.ensure_future(echo_probes(b, 7))
            s = await discover(a, "b", 7)
            n = s.max_payload()
            await s.send(bytes(n))  # the largest datagram that fits: gets there
            await asyncio.sleep(1)
            return s, n

        s, n = net.run(main(), until=2000)
        assert s.plpmtud_state == "search-complete"
        assert 1400 - 8 < s.plpmtu <= 1400
        assert n == s.plpmtu - 28
        assert a.path_mtu(bytes([10, 0, 2, 2])) == 1500  # classic PMTUD never heard
        probes = [e for e in s._pcb.plpmtud.log if e[1] == "probe-acked"]
        assert b.counters["udp.rx.datagrams"] == len(probes) + 1  # the acked probes, the data


def test_packet_too_big_lowers_the_search_at_once():
    net, a, b = black_hole_path(blackhole=False)
    with net:
        async def main():
            asyncio.ensure_future(echo_probes(b, 7))
            return await discover(a, "b", 7)

        s = net.run(main(), until=2000)
        assert s.plpmtu == 1400  # the Fragmentation Needed's MTU, then confirmed
        assert s._pcb.plpmtud is not None
        assert any(ev == "ptb" for _, ev, _ in s._pcb.plpmtud.log)


def test_state_machine_base_error_and_black_hole():
    d = Dplpmtud(4, 1500, probe_timer=1.0)
    assert d.state is DplpmtudState.BASE and d.plpmtu == 1200
    assert d.probe_size(1500, 0.0) == 1200
    for t in range(3):  # three losses of the base probe: ERROR, MIN_PLPMTU
        d.probe_sent(1200, float(t * 2))
        d.handle_timer(float(t * 2 + 1))
    assert d.state is DplpmtudState.ERROR and d.plpmtu == 68
    d.probe_sent(1200, 10.0)
    assert d.probe_acked(1200, 10.5) and d.state is DplpmtudState.SEARCHING
    assert d.probe_size(1500, 11.0) == 1350
    d.black_hole(12.0)
    assert d.state is DplpmtudState.BASE and d.plpmtu == 1200 and d.probe is None
    assert Dplpmtud(6, 1000).state is DplpmtudState.DISABLED  # below IPv6's base


def test_enable_needs_a_connected_socket():
    net, a, b = black_hole_path()
    with net:
        s = a.udp_socket(4)
        with pytest.raises(OSError):
            s.enable_plpmtud()
        with pytest.raises(OSError):
            s.probe_acked(1200)


def test_the_search_rule():
    s = PmtuSearch(1000, 1500, threshold=8, interval=600)
    assert s.next_size(1500, 1500, 0) == 1250
    s.acked(1250, 0)
    assert s.next_size(1500, 1500, 0) == 1375
    s.lost(1375, 0)
    assert s.high == 1374
    s.ptb(1300)
    assert (s.low, s.high) == (1250, 1300)
    while (n := s.next_size(1500, 1500, 1)) is not None:
        s.acked(n, 1)
    assert s.complete_at == 1 and s.high - s.low < 8
    assert s.next_size(1500, 1500, 300) is None  # complete until the interval is over
    assert s.next_size(1500, 1500, 601) is not None and s.high == 1500
