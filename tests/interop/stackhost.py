"""A stacklab Host (or Router) on TAP devices inside test namespaces, run in a background thread
of the test process, every frame captured to a pcap that tshark checks at the end."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from typing import Any

from stacklab.api.realtime import RealtimeStack
from stacklab.api.sockets import StackSockets
from stacklab.cli.tap import DeviceSpec, TapConfig, build_node
from stacklab.device.pcap import PcapWriter
from stacklab.device.tap import TapDevice

from .linux import Netns, open_tap, tshark_problems

# The private test plan: Linux side .1 / ::1, stacklab .2 / ::2 on each link.
LINUX4, STACK4 = "10.211.0.1", "10.211.0.2"
LINUX6, STACK6 = "fd00:5ac:0:1::1", "fd00:5ac:0:1::2"


@dataclass
class StackOnTap:
    node: Any
    stack: RealtimeStack
    taps: list[TapDevice]
    pcap_path: str
    pcap: PcapWriter
    net: StackSockets = field(init=False)

    def __post_init__(self) -> None:
        self.net = StackSockets(self.stack)
        self.net.default_timeout = 10.0

    @property
    def mac(self) -> bytes:
        return self.node.ports[0].mac

    def run(self, coro: Any, timeout: float = 20.0) -> Any:
        return self.stack.submit(coro, timeout=timeout)

    def call(self, fn: Any, *args: Any) -> Any:
        return self.stack.call(fn, *args, timeout=10.0)

    def tcp_fields(self, port: int, fields: list[str]) -> list[list[str]]:
        """The TCP segments of ``port`` in the capture so far, each as tshark's ``fields``."""
        self.call(self.pcap.flush)
        argv = ["tshark", "-n", "-r", self.pcap_path, "-Y", f"tcp.port == {port}", "-T", "fields"]
        for f in fields:
            argv += ["-e", f]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return [line.split("\t") for line in r.stdout.splitlines()]

    def stop(self) -> list[str]:
        """Stop the stack, close the capture; the tshark problems found in it."""
        if self.stack.running:
            self.stack.stop()
        self.pcap.close()
        return tshark_problems(self.pcap_path)


def start_stack(ports: list[tuple[TapDevice, list[str]] | tuple[TapDevice, list[str], int]],
                pcap_path: str, *, router: bool = False, gateways: list[str] | None = None,
                seed: int = 7) -> StackOnTap:
    """One stacklab port per (TAP device, stacklab addresses[, MTU]); the MTU defaults to the
    device's. The Linux side must already be configured (see :func:`open_tap`)."""
    devices = []
    for entry in ports:
        tap, addrs = entry[0], entry[1]
        mtu = entry[2] if len(entry) > 2 else tap.kernel_mtu()  # type: ignore[misc]
        devices.append(DeviceSpec(tap.name, list(addrs), mtu))
    cfg = TapConfig(router=router, devices=devices, gateways=list(gateways or []),
                    services=[], mac=None, mtu=None)
    node = build_node(cfg, seed=seed)
    taps = [entry[0] for entry in ports]
    pcap = PcapWriter(pcap_path)

    def capture(ifindex: int, direction: str, t: float, frame: bytes) -> None:
        pcap.write(frame, t)

    stack = RealtimeStack(node, taps, capture=capture).start()
    return StackOnTap(node, stack, taps, pcap_path, pcap)


def tap_in(ns: Netns, dev: str = "tap0", *, ipv4: str | None = f"{LINUX4}/24",
           ipv6: str | None = f"{LINUX6}/64", mtu: int = 1500) -> TapDevice:
    """A TAP device in ``ns`` with the Linux side's addresses (.1 / ::1 by default)."""
    return open_tap(ns, dev, ipv4=ipv4, ipv6=ipv6, mtu=mtu)


def pcap_file(tmp_path: Any, name: str = "stack.pcap") -> str:
    return os.path.join(str(tmp_path), name)
