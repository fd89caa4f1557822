"""What :meth:`Network.capture <stacklab.net.network.Network.capture>` returns: the pcap files
of one capture point, readable as packets, shown as a packet table in Jupyter."""

from __future__ import annotations

import os
from typing import Any

from stacklab.report.packets import Packet, packet_table, read_packets

__all__ = ["Capture"]


class Capture:
    def __init__(self, net: Any, directory: str, point: str) -> None:
        self.net = net
        self.directory = directory
        self.point = point

    def __repr__(self) -> str:
        return f"<Capture {self.point} of {len(self.files())} links in {self.directory}>"

    def files(self) -> dict[str, str]:
        """Link name -> its pcap path (links made after the capture started included)."""
        suffix = "" if self.point == "rx" else ".tx"
        return {link.name: os.path.join(self.directory, f"{link.name}{suffix}.pcap")
                for link in self.net.links}

    def packets(self) -> list[Packet]:
        """Every frame captured so far, on every link, in time order."""
        self.net.flush_captures()
        return read_packets(self.files().items())

    def _repr_html_(self) -> str:
        return packet_table(self.packets())
