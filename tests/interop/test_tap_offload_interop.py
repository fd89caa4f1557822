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


def test_super_frames_in_carry_the_kernels_segment_size(netns: Netns, offload_stack: Any,
                                                        tmp_path: Path) -> None:
    """Linux's TSO packets come in whole (one 64 KiB frame) with the segment size in the
    virtio_net_hdr; the receiver's idea of the sender's MSS (tcpi_rcv_mss, which paces its
    delayed ACKs) is that size, 1448 with timestamps, as Linux's GRO reports it
    (tcp_measure_rcv_mss), not the frame's length capped at our advertised 1460."""
    node, stack, tap = offload_stack
    info: dict[str, Any] = {}
    done = stack.submit(_sink_once(node, 5003, info), timeout=10)
    src = tmp_path / "bulk"
    src.write_bytes(os.urandom(4 * MB))
    r = netns.run("socat", "-u", f"FILE:{src}", f"TCP4:{STACK4}:5003", timeout=60, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    wait_for(lambda: done.is_set(), 30, "stacklab to read every byte")
    assert info["bytes"] == 4 * MB
    assert tap.counters["rx.gso_frames"] > 0
    assert info["rcv_mss"] == 1448


async def _sink_once(node: Any, port: int, info: dict[str, Any]) -> Any:
    """A server that reads one connection to its end and keeps its tcp_info's rcv_mss."""
    import asyncio
    import threading

    done = threading.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        n = 0
        while chunk := await reader.read(1 << 20):
            n += len(chunk)
        info["bytes"] = n
        info["rcv_mss"] = writer.get_extra_info("tcp_info")["rcv_mss"]
        writer.close()
        done.set()

    await node.start_server(handle, port=port)
    return done
