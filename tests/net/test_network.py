"""Network: autoconfigure (segments, addresses, routes, names), capture, run, determinism."""

from __future__ import annotations

import asyncio
import time

import pytest

from stacklab.device.pcap import read_pcap
from stacklab.net.loop import SimulationDeadlock
from stacklab.net.network import Network, SimulationTimeout, TopologyError

from .rawnodes import RawNode, numbered_frame


class L3Node(RawNode):
    """Records what autoconfigure tells it (the calls a Host/Router gets)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.addresses: list[tuple[int, str]] = []
        self.routes: dict[str, str] = {}
        self.hosts: dict[str, list[str]] = {}

    def add_address(self, ifindex: int, cidr: str) -> None:
        self.addresses.append((ifindex, cidr))

    def add_route(self, prefix: str, via: str) -> None:
        assert prefix not in self.routes
        self.routes[prefix] = via


def build(net: Network):
    """a - r1 - r2 - b, and a switch on r1 with c and d; e hangs off host c (not a router)."""
    n = {name: net.add_node(L3Node(name), kind) for name, kind in
         [("a", "host"), ("r1", "router"), ("r2", "router"), ("b", "host"), ("c", "host"),
          ("d", "host"), ("e", "host")]}
    sw = net.add_switch("sw")
    net.connect("a", "r1")       # segment 1
    net.connect("r1", "r2")      # segment 2
    net.connect("r2", "b")       # segment 3
    net.connect("r1", sw)        # segment 4: r1, c, d
    net.connect("c", sw)
    net.connect("d", sw)
    net.connect("c", "e")        # segment 5, behind a host: not routable from elsewhere
    net.autoconfigure()
    return n


def test_autoconfigure_addresses(net):
    n = build(net)
    assert [s.number for s in net.segments] == [1, 2, 3, 4, 5]
    assert n["a"].addresses == [(0, "10.0.1.1/24"), (0, "fd00:0:0:1::1/64")]
    assert n["r1"].addresses == [(0, "10.0.1.2/24"), (0, "fd00:0:0:1::2/64"),
                                 (1, "10.0.2.1/24"), (1, "fd00:0:0:2::1/64"),
                                 (2, "10.0.4.1/24"), (2, "fd00:0:0:4::1/64")]
    assert n["c"].addresses[:2] == [(0, "10.0.4.2/24"), (0, "fd00:0:0:4::2/64")]
    assert n["d"].addresses[:2] == [(0, "10.0.4.3/24"), (0, "fd00:0:0:4::3/64")]


def test_autoconfigure_shortest_path_routes(net):
    n = build(net)
    # a reaches everything through r1 (10.0.1.2); segment 5 is behind host c: no route
    assert n["a"].routes == {
        "10.0.2.0/24": "10.0.1.2", "fd00:0:0:2::/64": "fd00:0:0:1::2",
        "10.0.3.0/24": "10.0.1.2", "fd00:0:0:3::/64": "fd00:0:0:1::2",
        "10.0.4.0/24": "10.0.1.2", "fd00:0:0:4::/64": "fd00:0:0:1::2",
    }
    assert n["r1"].routes == {"10.0.3.0/24": "10.0.2.2", "fd00:0:0:3::/64": "fd00:0:0:2::2"}
    assert n["r2"].routes["10.0.1.0/24"] == "10.0.2.1"
    assert n["r2"].routes["10.0.4.0/24"] == "10.0.2.1"
    assert n["b"].routes["10.0.4.0/24"] == "10.0.3.1"
    assert n["d"].routes["10.0.3.0/24"] == "10.0.4.1"
    assert "10.0.5.0/24" not in n["d"].routes
    assert n["e"].routes == {}  # its only neighbour, c, does not forward


def test_autoconfigure_fills_hosts_like_etc_hosts(net):
    n = build(net)
    hosts = n["a"].hosts
    assert hosts["b"] == ["10.0.3.2", "fd00:0:0:3::2"]
    assert hosts["c"] == ["10.0.4.2", "10.0.5.1", "fd00:0:0:4::2", "fd00:0:0:5::1"]
    assert "sw" not in hosts
    assert n["b"].hosts == hosts and n["b"].hosts is not hosts  # each node owns its copy


def test_shorter_path_wins(net):
    for name, kind in [("a", "host"), ("r1", "router"), ("r2", "router"), ("r3", "router"),
                       ("b", "host")]:
        net.add_node(L3Node(name), kind)
    net.connect("a", "r1")          # 1
    net.connect("r1", "r2")         # 2
    net.connect("r2", "r3")         # 3
    net.connect("r3", "b")          # 4
    net.connect("r1", "r3")         # 5: the shortcut
    net.autoconfigure()
    assert net["a"].routes["10.0.4.0/24"] == "10.0.1.2"
    assert net["r1"].routes["10.0.4.0/24"] == "10.0.5.2"  # via r3 directly, not via r2


def test_unknown_nodes_and_self_links(net):
    net.add_node(RawNode("a"))
    with pytest.raises(TopologyError, match="unknown node 'zz'"):
        net.connect("a", "zz")
    with pytest.raises(TopologyError, match="itself"):
        net.connect("a", "a")
    with pytest.raises(TopologyError, match="already a node"):
        net.add_node(RawNode("a"))


def traffic(seed: int, tmp_path, name: str) -> bytes:
    with Network(seed=seed) as net:
        a, b = net.add_node(RawNode("a")), net.add_node(RawNode("b"))
        net.connect(a, b, delay="3ms", jitter="1ms", rate="10Mbit", loss=0.1, corrupt=0.05,
                    duplicate=0.02, reorder=0.02)
        net.capture(tmp_path / name)

        async def main():
            for i in range(500):
                a.send(numbered_frame(i, 60 + i % 1000, dst=b.ports[0].mac))
                b.send(numbered_frame(i, 1000, dst=a.ports[0].mac))
                await asyncio.sleep(0.0005)
            await asyncio.sleep(1)

        net.run(main())
    return (tmp_path / name / "a-b.pcap").read_bytes()


def test_same_seed_identical_pcap_bytes(tmp_path):
    one, two = traffic(3, tmp_path, "one"), traffic(3, tmp_path, "two")
    assert len(one) > 500_000
    assert one == two
    assert traffic(4, tmp_path, "three") != one


def test_capture_is_stamped_with_virtual_delivery_time(net, tmp_path):
    a, b = net.add_node(RawNode("a")), net.add_node(RawNode("b"))
    net.connect(a, b, delay="5ms", name="wire")
    net.capture(tmp_path)

    async def main():
        await asyncio.sleep(10)
        a.send(numbered_frame(1))
        await asyncio.sleep(0.5)
        b.send(numbered_frame(2))
        await asyncio.sleep(1)

    net.run(main())
    linktype, recs = read_pcap(str(tmp_path / "wire.pcap"))
    assert linktype == 1
    assert [r.time_ns for r in recs] == [10_005_000_000, 10_505_000_000]
    assert [r.data for r in recs] == [numbered_frame(1), numbered_frame(2)]


def test_run_returns_result_and_until(net):
    async def main():
        await asyncio.sleep(3)
        return "done"

    assert net.run(main(), until="10s") == "done"
    assert net.now == pytest.approx(3)
    net.run(until="8s")
    assert net.now == pytest.approx(8)

    async def forever():
        while True:
            await asyncio.sleep(1)

    with pytest.raises(SimulationTimeout, match="t=20s"):
        net.run(forever(), until=20)
    assert net.now == pytest.approx(20)


def test_deadlock_is_named(net):
    async def stuck():
        await asyncio.Event().wait()

    with pytest.raises(SimulationDeadlock, match="stuck"):
        net.run(stuck())


def test_120_virtual_seconds_take_little_wall_time(net):
    a, b = net.add_node(RawNode("a")), net.add_node(RawNode("b"))
    net.connect(a, b, delay="20ms", loss=0.05, rate="1Mbit")

    async def main():
        for i in range(1200):  # one frame every 100 ms for 120 s
            a.send(numbered_frame(i, 500))
            await asyncio.sleep(0.1)

    start = time.perf_counter()
    net.run(main())
    wall = time.perf_counter() - start
    assert net.now == pytest.approx(120)
    assert 1050 < len(b.received) < 1190
    assert wall < 12.0  # 120 virtual seconds, no real sleeping (~0.2 s measured)


def test_tx_capture_sees_frames_the_link_loses(net, tmp_path):
    a, b = net.add_node(RawNode("a")), net.add_node(RawNode("b"))
    net.connect(a, b, loss=0.5, name="lossy")
    net.capture(tmp_path, point="tx")
    net.capture(tmp_path)

    async def main():
        for i in range(200):
            a.send(numbered_frame(i))
            await asyncio.sleep(0.001)
        await asyncio.sleep(1)

    net.run(main())
    _, sent = read_pcap(str(tmp_path / "lossy.tx.pcap"))
    _, got = read_pcap(str(tmp_path / "lossy.pcap"))
    assert len(sent) == 200
    assert len(got) == len(b.received) < 150
    assert [r.data for r in got] == [f for _, _, f in b.received]


def test_link_names(net):
    a, b = net.add_node(RawNode("a")), net.add_node(RawNode("b"))
    assert net.connect(a, b).name == "a-b"
    assert net.connect(a, b).name == "a-b-2"
    assert net.connect(b, a, name="backup").name == "backup"
    with pytest.raises(TopologyError, match="already a link named 'backup'") as info:
        net.connect(a, b, name="backup")
    assert info.value.key == "name"
    with pytest.raises(TopologyError, match="bad link name"):
        net.connect(a, b, name="../etc")
    assert net.link("backup").a is b


class Buggy(RawNode):
    def receive_frame(self, ifindex: int, frame: bytes, now: float) -> None:
        if len(self.received) == 2:
            raise KeyError("oops")
        super().receive_frame(ifindex, frame, now)


def test_an_exception_in_a_node_stops_the_run_loudly(net):
    from stacklab.net.network import SimulationError

    a, b = net.add_node(RawNode("a")), net.add_node(Buggy("b"))
    net.connect(a, b, delay="10ms")

    async def main():
        for i in range(5):
            a.send(numbered_frame(i))
            await asyncio.sleep(1)

    with pytest.raises(SimulationError, match=r"KeyError: 'oops' at t=2\.010000s") as info:
        net.run(main())
    assert isinstance(info.value.__cause__, KeyError)
    assert len(b.received) == 2
    with pytest.raises(SimulationError, match="already failed"):
        net.run(until=10)


def test_a_stack_bug_stops_the_simulation_naming_the_frame():
    """On the simulator an exception escaping a node's frame processing stops the run and the
    error names the frame (link, time, summary and bytes), so the bug stays visible."""
    import pytest

    from stacklab.net.network import Network, SimulationError

    net = Network(seed=1)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b)
    net.autoconfigure()

    def broken(*_args: object) -> None:
        raise ValueError("planted bug")

    b.ipv4.receive = broken  # every IPv4 frame b receives hits it
    with pytest.raises(SimulationError) as err:
        net.run(a.ping(b.address(4), count=1), until=10)
    text = str(err.value)
    assert "planted bug" in text and "while b received on a>b" in text
    assert "ICMP echo request" in text and "(frame 02000002" in text
    net.close()
