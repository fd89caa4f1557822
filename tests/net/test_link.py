"""Link middlewares measured against their parameters over many frames."""

from __future__ import annotations

import asyncio
import math
import statistics

import pytest

from stacklab.net.network import Network
from stacklab.net.stages import is_packet_too_big
from stacklab.net.units import ParamError

from .rawnodes import RawNode, numbered_frame, pair, seq_of


def blast(net: Network, node: RawNode, count: int, size: int = 100, spacing: float = 0.0001,
          settle: float = 2.0) -> None:
    """Send ``count`` numbered frames ``spacing`` seconds apart, then let them arrive."""

    async def main() -> None:
        for i in range(count):
            node.send(numbered_frame(i, size))
            await asyncio.sleep(spacing)
        await asyncio.sleep(settle)

    net.run(main())


def within(count: int, n: int, p: float, sigmas: float = 4.5) -> bool:
    """``count`` successes of ``n`` trials is within ``sigmas`` std devs of Binomial(n, p)."""
    sd = math.sqrt(n * p * (1 - p))
    return abs(count - n * p) <= sigmas * sd


def test_loss_rate_matches_parameter(net):
    a, b, link = pair(net, loss=0.1)
    blast(net, a, 10_000)
    lost = 10_000 - len(b.received)
    assert within(lost, 10_000, 0.1), lost
    assert link.ab.counters["drop.loss"] == lost
    assert b.seqs() == sorted(b.seqs())  # loss never reorders


def test_loss_per_direction_override(net):
    a, b, link = pair(net, loss=0.0, reverse={"loss": 0.5})
    blast(net, a, 2000)
    blast(net, b, 2000)
    assert len(b.received) == 2000
    assert within(2000 - len(a.received), 2000, 0.5)


def test_duplicate_rate(net):
    a, b, link = pair(net, duplicate=0.05)
    blast(net, a, 10_000)
    extra = len(b.received) - 10_000
    assert within(extra, 10_000, 0.05), extra
    assert len(set(b.seqs())) == 10_000
    assert link.ab.counters["duplicate"] == extra


def test_corrupt_flips_one_bit_after_the_ethernet_header(net):
    a, b, link = pair(net, corrupt=0.02)
    blast(net, a, 10_000, size=200)
    corrupted = 0
    for i, (_, _, frame) in enumerate(b.received):
        sent = numbered_frame(i, 200)
        if frame != sent:
            corrupted += 1
            diff = [j for j in range(len(frame)) if frame[j] != sent[j]]
            assert len(diff) == 1 and diff[0] >= 14
            assert bin(frame[diff[0]] ^ sent[diff[0]]).count("1") == 1
    assert len(b.received) == 10_000
    assert within(corrupted, 10_000, 0.02), corrupted
    assert link.ab.counters["corrupt"] == corrupted


def test_reorder_fraction(net):
    # Held frames (reorder_delay 1 ms) are overtaken by the next ones (sent 0.1 ms apart), so
    # the number of frames arriving after a higher-numbered one equals the number held.
    a, b, link = pair(net, reorder=0.05, reorder_delay="1ms")
    blast(net, a, 10_000)
    seqs = b.seqs()
    assert sorted(seqs) == list(range(10_000))
    late, highest = 0, -1
    for s in seqs:
        if s < highest:
            late += 1
        highest = max(highest, s)
    assert within(late, 10_000, 0.05), late
    assert late == link.ab.counters["reorder"]


def test_delay_and_jitter(net):
    a, b, link = pair(net, delay="20ms", jitter="4ms")
    sent_at = {}

    async def main():
        for i in range(5000):
            sent_at[i] = net.now
            a.send(numbered_frame(i))
            await asyncio.sleep(0.05)  # far apart: jitter never needs FIFO clamping
        await asyncio.sleep(1)

    net.run(main())
    delays = [t - sent_at[seq_of(f)] for t, _, f in b.received]
    assert len(delays) == 5000
    assert min(delays) >= 0.016 - 1e-9 and max(delays) <= 0.024 + 1e-9
    assert statistics.mean(delays) == pytest.approx(0.020, abs=0.0002)
    # uniform on [-4ms, 4ms]: sd = 4ms / sqrt(3)
    assert statistics.pstdev(delays) == pytest.approx(0.004 / math.sqrt(3), rel=0.05)


def test_jitter_keeps_frames_in_order(net):
    a, b, link = pair(net, delay="10ms", jitter="5ms")
    blast(net, a, 3000, spacing=0.0005)
    assert b.seqs() == list(range(3000))


def test_fixed_delay_is_exact(net):
    a, b, link = pair(net, delay="7ms")

    async def main():
        await asyncio.sleep(1.0)
        a.send(numbered_frame(1))
        await asyncio.sleep(1.0)

    net.run(main())
    assert [t for t, _, _ in b.received] == [pytest.approx(1.007, abs=1e-12)]


def test_rate_serialization_delay(net):
    # 1000-byte frames at 8 Mbit/s: 1 ms each; a burst of 10 arrives 1 ms apart.
    a, b, link = pair(net, delay="5ms", rate="8Mbit", queue=100)

    async def main():
        for i in range(10):
            a.send(numbered_frame(i, 1000))
        await asyncio.sleep(1)

    net.run(main())
    times = [t for t, _, _ in b.received]
    assert times == pytest.approx([0.005 + 0.001 * (i + 1) for i in range(10)], abs=1e-9)


def test_rate_throughput_over_many_frames(net):
    # Offered 2x the link rate for 1 s: delivered bytes match the rate, the rest is queue drops.
    a, b, link = pair(net, delay="1ms", rate="4Mbit", queue=20)
    blast(net, a, 1000, size=1000, spacing=0.001)  # 8 Mbit/s offered
    got = sum(len(f) for _, _, f in b.received)
    first, last = b.received[0][0], b.received[-1][0]
    measured = (got - 1000) * 8 / (last - first)
    assert measured == pytest.approx(4e6, rel=0.01)
    assert link.ab.counters["drop.queue"] == 1000 - len(b.received)
    # ~1 s of sending at 2 ms per frame served, plus the 20 still queued when the sender stops
    assert 500 <= len(b.received) <= 522


def test_queue_limit_drops_tail(net):
    a, b, link = pair(net, rate="1Mbit", queue=8)

    async def main():
        for i in range(50):
            a.send(numbered_frame(i, 500))
        await asyncio.sleep(2)

    net.run(main())
    assert b.seqs() == list(range(8))
    assert link.ab.counters["drop.queue"] == 42


def test_mtu_enforced_with_reason(net):
    a, b, link = pair(net, mtu=1280)

    async def main():
        a.send(numbered_frame(1, 1280 + 14))
        a.send(numbered_frame(2, 1280 + 15))
        a.send(numbered_frame(3, 9000))
        await asyncio.sleep(1)

    net.run(main())
    assert b.seqs() == [1]
    assert link.ab.counters["drop.mtu"] == 2
    assert a.ports[0].mtu == 1280 and b.ports[0].mtu == 1280


def test_up_down_schedule(net):
    a, b, link = pair(net, delay="10ms", down=[("1s", "2s")])
    blast(net, a, 300, spacing=0.01, settle=0.5)  # 0 .. 3 s
    seqs = b.seqs()
    sent_times = {i: i * 0.01 for i in range(300)}
    for s in seqs:
        # neither in flight when it went down at 1 s (10 ms delay) nor sent while down
        assert not (0.99 - 1e-9 <= sent_times[s] < 2.0 - 1e-9)
    assert set(range(300)) - set(seqs) == set(range(99, 200))
    assert link.ab.counters["drop.down"] == 101
    assert link.ab.counters["went_down"] == 1 and link.ab.counters["went_up"] == 1


def test_set_changes_parameters_live(net):
    a, b, link = pair(net)
    blast(net, a, 100, settle=0.1)
    link.set(loss=1.0)
    blast(net, a, 100, settle=0.1)
    link.set(loss=0.0)
    blast(net, a, 100, settle=0.1)
    assert len(b.received) == 200


def test_bad_parameters_name_the_key(net):
    net.add_node(RawNode("a"))
    net.add_node(RawNode("b"))
    with pytest.raises(ParamError, match="delay") as info:
        net.connect("a", "b", delay="5 parsecs")
    assert info.value.key == "delay"
    with pytest.raises(ParamError, match="rate"):
        net.connect("a", "b", rate="fast")
    with pytest.raises(ParamError, match="loss"):
        net.connect("a", "b", loss=1.5)
    with pytest.raises(ParamError, match="lossy"):
        net.connect("a", "b", lossy=0.1)
    with pytest.raises(ParamError, match="mtu"):
        net.connect("a", "b", mtu=20)


def _icmp_frames():
    from scapy.layers.inet import ICMP, IP, TCP
    from scapy.layers.inet6 import (
        ICMPv6DestUnreach,
        ICMPv6EchoRequest,
        ICMPv6PacketTooBig,
        IPv6,
        IPv6ExtHdrHopByHop,
    )
    from scapy.layers.l2 import Ether

    quoted = IP(src="10.0.1.1", dst="10.0.2.1") / TCP()
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    ptb = [
        e / IP(src="10.0.2.254", dst="10.0.1.1") / ICMP(type=3, code=4, nexthopmtu=1280) / quoted,
        e / IPv6(src="fd00::1", dst="fd00::2") / ICMPv6PacketTooBig(mtu=1280) / bytes(48),
        e / IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrHopByHop() / ICMPv6PacketTooBig(),
    ]
    other = [
        e / IP(src="10.0.2.254", dst="10.0.1.1") / ICMP(type=3, code=3) / quoted,
        e / IP(src="10.0.2.254", dst="10.0.1.1") / ICMP(type=8),
        e / IPv6(src="fd00::1", dst="fd00::2") / ICMPv6DestUnreach() / bytes(48),
        e / IPv6(src="fd00::1", dst="fd00::2") / ICMPv6EchoRequest(),
        e / IP(src="10.0.1.1", dst="10.0.2.1") / TCP(),
        # a later fragment whose data happens to start with 3, 4: not an ICMP header
        e / IP(src="10.0.2.254", dst="10.0.1.1", proto=1, frag=10) / (b"\x03\x04" + bytes(30)),
    ]
    return [bytes(f) for f in ptb], [bytes(f) for f in other]


def test_icmp_blackhole_drops_only_packet_too_big(net):
    ptb, other = _icmp_frames()
    assert all(is_packet_too_big(f) for f in ptb)
    assert not any(is_packet_too_big(f) for f in other)
    a, b, link = pair(net, forward={"icmp_blackhole": True})

    async def main():
        for f in ptb + other:
            a.send(f)
            b.send(f)
        await asyncio.sleep(1)

    net.run(main())
    assert [f for _, _, f in b.received] == other
    assert [f for _, _, f in a.received] == ptb + other  # the reverse direction is clean
    assert link.ab.counters["drop.icmp_blackhole"] == len(ptb)


def test_same_seed_same_fate_different_seed_differs():
    def run(seed):
        with Network(seed=seed) as net:
            a, b, _ = pair(net, loss=0.2, corrupt=0.1, duplicate=0.05, reorder=0.05,
                           jitter="1ms", rate="10Mbit")
            blast(net, a, 2000, size=300)
            return [(t, f) for t, _, f in b.received]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_set_keeps_the_queue_and_the_random_stream(net):
    a, b, link = pair(net, delay="5ms", rate="8Mbit", queue=100)

    async def main():
        for i in range(10):
            a.send(numbered_frame(i, 1000))
        link.set(delay="5ms", loss=0.0)  # rebuilds the chain mid-burst
        for i in range(10, 20):
            a.send(numbered_frame(i, 1000))
        await asyncio.sleep(1)

    net.run(main())
    times = [t for t, _, _ in b.received]
    assert b.seqs() == list(range(20))
    assert times == pytest.approx([0.005 + 0.001 * (i + 1) for i in range(20)], abs=1e-9)

    # a loss stream continues across set(): toggling an unrelated parameter changes no fate
    def fates(toggle: bool) -> list[int]:
        with Network(seed=1) as n2:
            x, y, l2 = pair(n2, loss=0.3)
            blast(n2, x, 200, settle=0.1)
            if toggle:
                l2.set(duplicate=0.0)
            blast(n2, x, 200, settle=0.1)
            return y.seqs()

    assert fates(False) == fates(True)


def test_custom_middleware_composes_with_the_built_in_ones(net):
    from stacklab.net.stages import Stage

    class DropEveryThird(Stage):
        __slots__ = ("n",)

        def __init__(self, direction):
            super().__init__(direction)
            self.n = 0

        def push(self, frame, t):
            self.n += 1
            if self.n % 3 == 0:
                self.dir.drop("every_third", frame, t)
            else:
                self.next.push(frame, t)

    a, b, link = pair(net, delay="2ms", rate="10Mbit")
    link.add_middleware(DropEveryThird, reverse=False)
    assert link.ab.stages() == ["Gate", "MtuCheck", "RateLimit", "DropEveryThird", "Delay",
                                "Schedule", "Deliver"]
    assert "DropEveryThird" not in link.ba.stages()
    blast(net, a, 30)
    assert b.seqs() == [i for i in range(30) if (i + 1) % 3]
    assert link.ab.counters["drop.every_third"] == 10


class RecordingReceiver:
    """A Receiver in front of the node's driver that records what the link asks of it."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls: list[object] = []

    def deliver(self, ifindex: int, frame: bytes) -> None:
        self.calls.append(("deliver", seq_of(frame)))
        self.inner.deliver(ifindex, frame)

    def hold(self) -> None:
        self.calls.append("hold")
        self.inner.hold()

    def release(self, flush: bool = True) -> None:
        self.calls.append(("release", flush))
        self.inner.release(flush)


def test_frames_due_at_one_instant_are_delivered_as_one_batch(net):
    a, b, link = pair(net, delay="1ms")
    rec = link.ab.receiver = RecordingReceiver(link.ab.receiver)

    async def main() -> None:
        for i in range(3):  # three frames sent at one instant arrive at one instant
            a.send(numbered_frame(i))
        await asyncio.sleep(0.01)
        a.send(numbered_frame(3))  # alone: no batch
        await asyncio.sleep(0.01)

    net.run(main())
    assert rec.calls == ["hold", ("deliver", 0), ("deliver", 1), ("deliver", 2),
                         ("release", True), ("deliver", 3)]
    assert b.seqs() == [0, 1, 2, 3]
    assert [t for t, _, _ in b.received][:3] == [pytest.approx(0.001)] * 3


def test_each_frame_of_a_batch_sees_the_batch_clock_the_running_host_and_its_drain(net):
    """The driver takes a batch's clock and running host once (at hold): every frame of it is
    received at that time with the host running, the drain hooks follow each frame, a node
    crashed by one frame's drain drops the rest (counted), and the running host is reset."""
    from stacklab.api.driver import DrivenHost, running_host

    a, b, link = pair(net, delay="1ms")
    drv = net.drivers["b"]
    seen: list[tuple[str, float, object]] = []

    def receive_frame(ifindex: int, frame: bytes, now: float) -> None:
        seen.append(("frame", now, running_host.get()))
        RawNode.receive_frame(b, ifindex, frame, now)

    b.receive_frame = receive_frame  # type: ignore[method-assign]
    drv.app_host = marker = DrivenHost("marker")  # (a host of the type the driver holds)

    def hook(now: float) -> None:
        seen.append(("drain", now, running_host.get()))
        if len(b.received) == 2:
            drv.power_off()  # the second frame's reaction crashes the node

    drv.on_drain("test", hook)

    async def main() -> None:
        for i in range(4):
            a.send(numbered_frame(i))
        await asyncio.sleep(0.01)

    net.run(main())
    t = pytest.approx(0.001)
    assert seen == [("frame", t, marker), ("drain", t, marker),
                    ("frame", t, marker), ("drain", t, marker)]
    assert b.seqs() == [0, 1]
    assert b.counters["drop.crashed"] == 2
    assert running_host.get() is None
