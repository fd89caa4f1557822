"""The seam between the sans-IO host and its asyncio face (stacklab.api.host).

The sans-IO Host has no coroutines and no driver, however it is driven; the hosts a Network or a
RealtimeStack runs are API hosts that own their driver and take their clock from it.
"""

from __future__ import annotations

import random

import pytest

from stacklab.api.driver import NodeDriver
from stacklab.api.host import Host, Router
from stacklab.api.realtime import RealtimeStack
from stacklab.net.loop import VirtualTimeLoop
from stacklab.net.network import Network
from stacklab.stack import host as sansio
from stacklab.stack.router import Router as SansIoRouter
from stacklab.wire.addr import ip_bytes

API = ("open_connection", "start_server", "create_connection", "create_server",
       "create_datagram_endpoint", "udp_socket", "ping", "traceroute")


@pytest.fixture
def net():
    n = Network(seed=3)
    yield n
    n.close()


def test_a_driven_sans_io_host_has_no_asyncio_face_and_no_driver(net):
    """A plain stack Host in a Network answers pings, yet nothing was patched onto it."""
    plain = sansio.Host("plain", rng=random.Random(1))
    net.add_node(plain, "host")
    a = net.add_host("a")
    net.connect(a, plain, delay="1ms")
    net.autoconfigure()
    result = net.run(a.ping("plain", count=2, out=None), until="10s")
    assert result.received == 2
    assert plain.counters["rx.frames"] > 0  # it was driven
    for name in (*API, "driver", "now", "loop"):
        assert not hasattr(plain, name), name
    assert not any(hasattr(sansio.Host, name) for name in API)


def test_network_hosts_and_routers_are_api_hosts_owning_their_driver(net):
    a, r = net.add_host("a"), net.add_router("r")
    assert isinstance(a, Host) and isinstance(r, Router) and isinstance(r, SansIoRouter)
    assert r.kind == "router" and r.forwarding and not a.forwarding
    for node in (a, r):
        assert node.driver is net.drivers[node.name]
        assert all(callable(getattr(node, name)) for name in API)
    net.run(until="2.5s")
    assert a.now() == r.now() == net.now == 2.5
    assert a.loop is net.loop


def test_an_api_host_without_a_driver_says_how_to_drive_it():
    h = Host("lonely")
    with pytest.raises(RuntimeError, match="host lonely is not driven: add it to a Network"):
        h.now()
    other = NodeDriver(Host("other"), VirtualTimeLoop(), lambda ifindex, frame: None)
    try:
        with pytest.raises(ValueError, match="runs 'other', not 'lonely'"):
            h.attach(other)
    finally:
        other.loop.close()


def test_route_get_takes_now_explicitly_and_the_api_host_passes_its_clock(net):
    h = sansio.Host("h", rng=random.Random(1))
    h.add_interface("eth0", bytes.fromhex("020000000001"))
    h.add_address(0, "10.0.0.1/24")
    dst = ip_bytes("10.0.0.9")
    assert h.learn_path_mtu(dst, 1400, 10.0) == 1400
    assert h.route_get("10.0.0.9", 10.0) == \
        "10.0.0.9 dev eth0 src 10.0.0.1 mtu 1400 expires 600s"
    assert h.route_get(dst, 310.0).endswith("mtu 1400 expires 300s")

    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b)
    net.autoconfigure()
    a.learn_path_mtu(ip_bytes("10.0.1.2"), 1400, 0.0)
    net.run(until="100s")
    assert a.route_get("b") == a.route_get("b", 100.0) == \
        "10.0.1.2 dev eth0 src 10.0.1.1 mtu 1400 expires 500s"


def test_realtime_stack_attaches_and_detaches_the_driver():
    """On a real loop (no devices, no traffic): the API host's clock is the driver's."""
    h = Host("rt")
    stack = RealtimeStack(h, []).start()
    try:
        assert h.driver is stack.driver
        assert stack.loop is not None and h.loop is stack.loop
        now = stack.call(h.now)
        assert 0 < now <= stack.call(stack.loop.time)
    finally:
        stack.stop()
    assert h.driver is None and h.wake is None


def test_realtime_stack_thread_stays_on_one_cpu():
    """The background loop thread pins itself to the CPU it starts on (a TAP writer that
    migrates reorders its own frames: realtime._pin_to_current_cpu); the caller's threads keep
    their CPUs."""
    import os

    from stacklab.api.realtime import current_cpu

    mine = os.sched_getaffinity(0)
    if len(mine) < 2:
        pytest.skip("this thread may run on one CPU only")
    stack = RealtimeStack(Host("rt"), []).start()
    try:
        cpus, on = stack.call(lambda: (os.sched_getaffinity(0), current_cpu()))
        assert cpus == {on}
        assert on in mine
        assert os.sched_getaffinity(0) == mine  # (the thread's own, not the process's)
    finally:
        stack.stop()


def test_a_device_frame_is_drained_before_the_device_flushes() -> None:
    """A TAP device hands frames to ``NodeDriver.receive`` and flushes once per batch: the drain
    hooks (the TCP events the application pulls) must run for each frame, or a connection over
    TAP never sees its data (the interop suite stalled before this)."""
    import asyncio

    from stacklab.api.driver import NodeDriver
    from stacklab.stack.host import Host

    loop = asyncio.new_event_loop()
    try:
        host = Host("h")
        host.add_interface("eth0", bytes.fromhex("020000000001"))
        sent: list[bytes] = []
        driver = NodeDriver(host, loop, lambda _i, f: sent.append(bytes(f)))
        drained: list[float] = []
        driver.on_drain("probe", drained.append)
        driver.receive(0, bytes(60))
        assert len(drained) == 1
        assert not sent  # the flush is the device's, after its batch
        driver.flush()
    finally:
        loop.close()


def test_on_tap_a_stack_bug_in_one_frame_is_counted_and_the_stack_keeps_serving() -> None:
    """The real-time runtime (TAP) logs and counts an exception escaping one frame's processing
    (``drop.driver.exception``) and goes on with the next frames — unlike the simulator, which
    stops the run naming the frame."""
    import asyncio

    from stacklab.api.host import Host
    from stacklab.api.realtime import RealtimeStack
    from stacklab.wire.arp import ARP_REQUEST, build_arp
    from stacklab.wire.ethernet import ETH_P_ARP, build_ethernet

    class FakeDevice:  # what RealtimeStack needs of a TapDevice
        def __init__(self) -> None:
            self.on_frame = None
            self.sent: list[bytes] = []

        def attach(self, loop, on_frame, on_batch_end):  # noqa: ANN001
            self.on_frame, self.on_batch_end = on_frame, on_batch_end

        def detach(self) -> None:
            pass

        def send(self, frame: bytes) -> None:
            self.sent.append(frame)

    mac, peer = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
    host = Host("h")
    host.add_interface("eth0", mac)
    host.add_address(0, "10.0.0.1/24")
    dev = FakeDevice()
    stack = RealtimeStack(host, [dev])  # type: ignore[list-item]  # a stand-in device
    loop = asyncio.new_event_loop()
    try:
        stack.attach(loop)
        who_has = build_ethernet(b"\xff" * 6, peer, ETH_P_ARP,
                                 build_arp(ARP_REQUEST, peer, bytes([10, 0, 0, 2]), bytes(6),
                                           bytes([10, 0, 0, 1])))
        real = host.receive_frame
        calls = {"n": 0}

        def first_one_breaks(ifindex: int, frame: bytes, now: float) -> None:
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("planted bug")
            real(ifindex, frame, now)

        host.receive_frame = first_one_breaks  # type: ignore[method-assign]
        dev.sent.clear()
        dev.on_frame(bytes(who_has))  # the bug: counted, not raised
        dev.on_frame(bytes(who_has))  # the next frame is served: an ARP reply
        dev.on_batch_end()
        assert host.counters["drop.driver.exception"] == 1
        assert any(f[12:14] == b"\x08\x06" and f[21] == 2 for f in dev.sent)
    finally:
        stack.detach()
        loop.close()
