"""TCP against the Linux kernel over a TAP device with offloads (virtio-net header, TSO/GSO,
checksum offload): the kernel's 64 KiB super-frames come in with their checksum vouched for and
not summed (csum_valid), stacklab's TSO packets go out for the kernel to cut; sha256 checks
both ways, through socat and the stack's echo server, and a stacklab client uploading."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stacklab.api.realtime import RealtimeStack
from stacklab.api.sockets import StackSockets
from stacklab.cli.tap import ConnLog, DeviceSpec, TapConfig, build_node, tcp_service
from stacklab.device.tap import TapDevice

from .linux import Netns, wait_for
from .stackhost import LINUX4, STACK4

MB = 1 << 20


@pytest.fixture
def offload_stack(netns: Netns) -> Iterator[tuple[Any, RealtimeStack, TapDevice]]:
    tap = TapDevice.open("tap0", netns=netns.name, up=True, mtu=1500, offload=True)
    netns.on_cleanup(tap.close)
    netns.run("ip", "addr", "add", f"{LINUX4}/24", "dev", "tap0")
    cfg = TapConfig(router=False, devices=[DeviceSpec("tap0", [f"{STACK4}/24"], 1500)],
                    gateways=[], services=[], mac=None, mtu=None)
    node = build_node(cfg, seed=5)
    stack = RealtimeStack(node, [tap]).start()
    try:
        yield node, stack, tap
    finally:
        stack.stop()
    assert node.counters["drop.tcp.bad_checksum"] == 0


def test_linux_bulk_through_stacklab_echo_with_offloads(netns: Netns, offload_stack: Any,
                                                        tmp_path: Path) -> None:
    node, stack, tap = offload_stack
    data = os.urandom(8 * MB)
    src = tmp_path / "bulk"
    src.write_bytes(data)
    stack.submit(node.start_server(tcp_service("echo", 7, ConnLog(quiet=True)), port=7),
                 timeout=10)
    r = netns.run("bash", "-c", f"set -o pipefail; socat -t 30 -T 30 TCP4:{STACK4}:7 - "
                  f"< {src} | sha256sum", timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[0] == hashlib.sha256(data).hexdigest()
    c = tap.counters
    assert c["rx.gso_frames"] > 0 and c["rx.csum_trusted"] > 0  # unsummed super-frames in
    assert c["tx.tso_frames"] > 0 and node.counters["ipv4.tx.packets"] > c["tx.frames"]


def test_stacklab_uploads_to_linux_in_tso_packets(netns: Netns, offload_stack: Any,
                                                  tmp_path: Path) -> None:
    node, stack, tap = offload_stack
    out = tmp_path / "received"
    netns.popen("socat", "-u", f"TCP4-LISTEN:5002,bind={LINUX4},reuseaddr", f"CREATE:{out}")
    netns.wait_listening(5002)
    data = os.urandom(8 * MB)
    net = StackSockets(stack)
    with net.create_connection((LINUX4, 5002), timeout=30) as s:
        s.sendall(data)
    wait_for(lambda: out.exists() and out.stat().st_size == len(data), 30,
             "Linux to receive every byte")
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert tap.counters["tx.tso_frames"] > 0  # the TCB's own TSO packets
    assert tap.counters["tx.gso_segments"] >= len(data) // 1448 // 2  # most of it in packets
