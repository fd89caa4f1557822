"""Tiny test nodes that send and record raw Ethernet frames (no protocol stack needed)."""

from __future__ import annotations

import struct

from stacklab.net.network import Network
from stacklab.stack.node import Node


class RawNode(Node):
    """Records every frame it receives as (time, ifindex, frame); sends what tests tell it to."""

    kind = "raw"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.received: list[tuple[float, int, bytes]] = []

    def receive_frame(self, ifindex: int, frame: bytes, now: float) -> None:
        self.counters["rx.frames"] += 1
        self.received.append((now, ifindex, bytes(frame)))

    def send(self, frame: bytes, ifindex: int = 0) -> None:
        self.send_frame(ifindex, frame)
        self.counters["tx.frames"] += 1
        self.request_wake()

    def seqs(self) -> list[int]:
        return [seq_of(f) for _, _, f in self.received]


def numbered_frame(seq: int, size: int = 100, dst: bytes = b"\xff" * 6,
                   src: bytes = b"\x02\x00\x00\x00\x00\x01") -> bytes:
    """An Ethernet frame (experimental ethertype 0x88b5) carrying a sequence number."""
    body = struct.pack("!I", seq) + bytes(max(0, size - 14 - 4))
    return dst + src + b"\x88\xb5" + body


def seq_of(frame: bytes) -> int:
    return struct.unpack_from("!I", frame, 14)[0]


def pair(net: Network, **params) -> tuple[RawNode, RawNode, object]:
    a = net.add_node(RawNode("a"))
    b = net.add_node(RawNode("b"))
    link = net.connect(a, b, **params)
    return a, b, link  # type: ignore[return-value]
