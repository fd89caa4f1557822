"""The small contract between a protocol node and whatever drives it (simulator or TAP).

A node is sans-IO. The driver:

* hands it frames: ``node.receive_frame(ifindex, frame, now)``; ``csum_valid=True`` when the
  device vouches for the frame's transport checksum (Linux's ``CHECKSUM_UNNECESSARY``, virtio-net's
  ``DATA_VALID``/``NEEDS_CSUM``: a TAP device with offloads): the node may skip summing it, and the
  checksum field may hold anything (the kernel's partial sum); the default, False, checks it;
* drains what it wants to send: ``node.frames_to_send() -> [(ifindex, frame), ...]``;
* asks for its next deadline ``node.get_timer()`` and calls ``node.handle_timer(now)`` when due;
  the answer may be early (a host's TCP timer index is lazy: a deadline that moved later is
  asked again when the old one comes), and a ``handle_timer`` with nothing due does nothing;
* sets ``node.wake`` to a callable; the node (or an API object on top of it) calls
  ``node.request_wake()`` when something outside a driver call queued output or moved a timer
  (an application wrote data, opened a socket...). The driver then flushes soon.

Nothing here reads a clock: time always comes in as ``now`` (seconds, float).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stacklab.trace.events import Tracer


class NodeCounters(Counter[str]):
    """A node's counters: a ``Counter`` whose item deletion is dict's own. ``Counter`` defines
    ``__delitem__`` in Python (a missing key is no error), and a class that does so sends every
    item store through the generic slot too: each ``c[key] += 1`` of the per-segment path cost
    ~120 ns instead of ~55 (about 6 per data segment of a bulk transfer; issue 23). So ``del``
    of a missing key raises ``KeyError`` here, as a dict's; everything else is ``Counter``'s."""

    __delitem__ = dict.__delitem__  # type: ignore[assignment]


@dataclass(slots=True)
class Port:
    """One network interface of a node, as the link layer sees it. ``gso_max``: the device
    cuts TCP super-frames (:class:`GsoFrame`) of up to that many payload bytes itself (TSO,
    set by the driver of a TAP device with offloads); 0: frames are at most the MTU.
    ``csum_offload``: the link takes IPv4 TCP frames with the checksum partial
    (``stacklab.wire.frame.PartialFrame``) and its peer trusts them, as Linux's veth
    (NETIF_F_HW_CSUM): set by the simulator on the ports of its links."""

    index: int
    name: str
    mac: bytes
    mtu: int = 1500
    up: bool = True
    gso_max: int = 0
    csum_offload: bool = False


class GsoFrame(bytearray):
    """A TCP super-frame for a port with ``gso_max`` (TSO): one Ethernet, IP and TCP header
    for a payload of many segments, the IP length that of the whole, the TCP checksum field
    holding the pseudo-header's partial sum (Linux's CHECKSUM_PARTIAL); the device cuts it into
    segments of ``gso_size`` payload bytes and completes each one's checksum."""

    gso_size: int


class Node:
    kind = "node"

    def __init__(self, name: str, tracer: Tracer | None = None) -> None:
        self.name = name
        self.ports: list[Port] = []
        self.counters: Counter[str] = NodeCounters()
        self.tracer = tracer
        self.wake: Callable[[], None] | None = None
        self._out: list[tuple[int, bytes | bytearray]] = []

    # -- driver side -------------------------------------------------------------------------
    def add_port(self, name: str, mac: bytes, mtu: int = 1500) -> Port:
        port = Port(len(self.ports), name, mac, mtu)
        self.ports.append(port)
        return port

    def receive_frame(self, ifindex: int, frame: bytes | memoryview, now: float,
                      csum_valid: bool = False, gso_size: int = 0) -> None:
        raise NotImplementedError

    def frames_to_send(self) -> list[tuple[int, bytes | bytearray]]:
        out = self._out
        self._out = []
        return out

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        return None

    # -- node side ---------------------------------------------------------------------------
    def send_frame(self, ifindex: int, frame: bytes | bytearray) -> None:
        self._out.append((ifindex, frame))

    def request_wake(self) -> None:
        if self.wake is not None:
            self.wake()

    def trace(self, now: float, layer: str, event: str, **details: Any) -> None:
        if self.tracer is not None:
            self.tracer.emit(now, self.name, layer, event, **details)
