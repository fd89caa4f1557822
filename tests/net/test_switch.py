"""The L2 learning switch: flooding, learning, filtering, aging; switch loops are refused."""

from __future__ import annotations

import asyncio

import pytest

from stacklab.net.network import TopologyError

from .rawnodes import RawNode, numbered_frame

BCAST = b"\xff" * 6


def star(net, n=3):
    sw = net.add_switch("sw", aging="10s")
    nodes = [net.add_node(RawNode(f"h{i}")) for i in range(n)]
    for node in nodes:
        net.connect(node, sw, delay="1ms")
    return sw, nodes


def mac(node) -> bytes:
    return node.ports[0].mac


def send_at(net, plan):
    """plan: list of (time, node, frame); runs until 1 s after the last send."""

    async def main():
        for t, node, frame in plan:
            await asyncio.sleep(max(0.0, t - net.now))
            node.send(frame)
        await asyncio.sleep(1)

    net.run(main())


def test_broadcast_floods_to_all_other_ports(net):
    sw, (h0, h1, h2) = star(net)
    send_at(net, [(0.1, h0, numbered_frame(1, dst=BCAST, src=mac(h0)))])
    assert h0.seqs() == [] and h1.seqs() == [1] and h2.seqs() == [1]
    assert sw.counters["switch.flood.broadcast"] == 1


def test_unknown_unicast_floods_then_learned_goes_one_way(net):
    sw, (h0, h1, h2) = star(net)
    send_at(net, [
        (0.1, h0, numbered_frame(1, dst=mac(h1), src=mac(h0))),  # h1 unknown: flooded
        (0.2, h1, numbered_frame(2, dst=mac(h0), src=mac(h1))),  # h0 learned: to h0 only
        (0.3, h0, numbered_frame(3, dst=mac(h1), src=mac(h0))),  # h1 learned now
    ])
    assert h1.seqs() == [1, 3]
    assert h2.seqs() == [1]
    assert h0.seqs() == [2]
    assert sw.counters["switch.flood.unknown"] == 1
    assert sw.counters["switch.forward"] == 2
    assert sw.lookup(mac(h0), net.now) == h0_port(net, h0)


def h0_port(net, node):
    # the switch port on the other end of node's link
    for link in net.links:
        if link.a is node:
            return link.b_port
    raise AssertionError


def test_entries_age_out(net):
    sw, (h0, h1, h2) = star(net)
    send_at(net, [
        (0.1, h1, numbered_frame(1, dst=BCAST, src=mac(h1))),
        (5.0, h0, numbered_frame(2, dst=mac(h1), src=mac(h0))),  # fresh: h1 only
        (20.0, h0, numbered_frame(3, dst=mac(h1), src=mac(h0))),  # aged (10 s): flooded
    ])
    assert h2.seqs() == [1, 3]
    assert h1.seqs() == [2, 3]
    assert sw.counters["switch.aged"] == 1


def test_station_move_is_relearned(net):
    sw, (h0, h1, h2) = star(net)
    roaming = b"\x02\xaa\x00\x00\x00\x01"
    send_at(net, [
        (0.1, h1, numbered_frame(1, dst=BCAST, src=roaming)),
        (0.2, h2, numbered_frame(2, dst=BCAST, src=roaming)),  # same MAC now behind h2's port
        (0.3, h0, numbered_frame(3, dst=roaming, src=mac(h0))),
    ])
    assert h2.seqs() == [1, 3] and h1.seqs() == [2]


def test_two_switches_learn_across_the_uplink(net):
    sw = net.add_switch("sw")
    up = net.add_switch("up")
    h0, h1, h2 = (net.add_node(RawNode(f"h{i}")) for i in range(3))
    net.connect(h0, up)
    net.connect(h1, up)
    net.connect(up, sw)
    net.connect(h2, sw)
    send_at(net, [
        (0.1, h0, numbered_frame(1, dst=BCAST, src=mac(h0))),
        (0.2, h1, numbered_frame(2, dst=BCAST, src=mac(h1))),
        (0.3, h0, numbered_frame(3, dst=mac(h1), src=mac(h0))),
    ])
    # up learned h1 from its broadcast: frame 3 goes to h1 only, sw never sees it
    assert h2.seqs() == [1, 2]
    assert h1.seqs() == [1, 3]
    assert up.counters["switch.forward"] == 1
    assert sw.counters["rx.frames"] == 2


def test_frame_for_the_port_it_came_from_is_filtered():
    from stacklab.net.switch import Switch

    sw = Switch("sw")
    for i in range(3):
        sw.add_port(f"p{i}", bytes([2, 0, 0, 0, 9, i]))
    a, b = b"\x02\x00\x00\x00\x00\x0a", b"\x02\x00\x00\x00\x00\x0b"
    sw.receive_frame(0, numbered_frame(1, dst=BCAST, src=a), 0.0)
    sw.receive_frame(0, numbered_frame(2, dst=BCAST, src=b), 0.0)  # a and b share port 0 (a hub)
    assert sorted(i for i, _ in sw.frames_to_send()) == [1, 1, 2, 2]
    sw.receive_frame(0, numbered_frame(3, dst=b, src=a), 1.0)
    assert sw.frames_to_send() == []
    assert sw.counters["switch.filter"] == 1


def test_switch_loops_are_refused(net):
    a, b, c = (net.add_switch(n) for n in "abc")
    net.connect(a, b)
    net.connect(b, c)
    with pytest.raises(TopologyError, match="loop"):
        net.connect(c, a)
    with pytest.raises(TopologyError, match="loop"):
        net.connect(a, b)
