"""An L2 learning switch (IEEE 802.1D transparent bridging without spanning tree).

It learns which port each source MAC lives behind, forwards known unicast out of that port only,
floods broadcast, multicast and unknown unicast to every other port, and forgets entries not
refreshed for ``aging`` seconds (802.1D default 300 s). There is no STP, so the Network refuses
to build switch loops.
"""

from __future__ import annotations

from stacklab.stack.node import Node
from stacklab.trace.events import Tracer

__all__ = ["Switch"]


class Switch(Node):
    kind = "switch"

    def __init__(self, name: str, *, aging: float = 300.0, tracer: Tracer | None = None) -> None:
        super().__init__(name, tracer)
        self.aging = aging
        self.table: dict[bytes, tuple[int, float]] = {}  # MAC -> (port index, last seen)

    def receive_frame(self, ifindex: int, frame: bytes | memoryview, now: float,
                      csum_valid: bool = False, gso_size: int = 0) -> None:
        c = self.counters
        c["rx.frames"] += 1
        if not isinstance(frame, bytes):
            frame = bytes(frame)  # a device's view: the table keys and what it forwards are bytes
        if len(frame) < 14:
            c["drop.runt"] += 1
            return
        src = frame[6:12]
        table = self.table
        if not src[0] & 1:  # learn unicast sources only
            old = table.get(src)
            if old is None or old[0] != ifindex:
                c["switch.learn"] += 1
                if self.tracer is not None:
                    self.trace(now, "link", "cache", mac=src.hex(":"), port=ifindex,
                               moved_from=None if old is None else old[0])
            table[src] = (ifindex, now)
        dst = frame[0:6]
        if not dst[0] & 1:
            entry = table.get(dst)
            if entry is not None:
                if now - entry[1] <= self.aging:
                    port = entry[0]
                    if port == ifindex:  # the destination is on the segment it came from
                        c["switch.filter"] += 1
                        return
                    if self.ports[port].up:
                        c["switch.forward"] += 1
                        c["tx.frames"] += 1
                        self._out.append((port, frame))
                        return
                else:
                    del table[dst]
                    c["switch.aged"] += 1
            c["switch.flood.unknown"] += 1
        else:
            c["switch.flood.broadcast" if dst == b"\xff\xff\xff\xff\xff\xff"
              else "switch.flood.multicast"] += 1
        out = self._out
        for p in self.ports:
            if p.index != ifindex and p.up:
                out.append((p.index, frame))
                c["tx.frames"] += 1

    def lookup(self, mac: bytes, now: float) -> int | None:
        """The port ``mac`` was learned on, if the entry is still fresh at ``now``."""
        entry = self.table.get(mac)
        if entry is None or now - entry[1] > self.aging:
            return None
        return entry[0]
