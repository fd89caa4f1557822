"""A packet table (time, link, direction, tcpdump-like summary), from pcap files or frames."""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass

from stacklab.device.pcap import read_pcap
from stacklab.wire.summary import summarize

__all__ = ["Packet", "packet_table", "read_packets"]


@dataclass(slots=True)
class Packet:
    time: float
    where: str  # the link (pcap file) it was captured on
    summary: str


def read_packets(files: Iterable[tuple[str, str]]) -> list[Packet]:
    """``files``: (name, pcap path) pairs; every frame of every file, in time order."""
    out = []
    for name, path in files:
        _linktype, records = read_pcap(path)
        out += [Packet(r.time, name, summarize(r.data)) for r in records]
    out.sort(key=lambda p: p.time)
    return out


def packet_table(packets: list[Packet], limit: int = 500) -> str:
    """An HTML table of the first ``limit`` packets, with a note when there are more."""
    esc = html.escape
    rows = "".join(f"<tr><td class='num'>{i}</td><td class='num'>{p.time:.6f}</td>"
                   f"<td>{esc(p.where)}</td><td><code>{esc(p.summary)}</code></td></tr>"
                   for i, p in enumerate(packets[:limit], 1))
    note = (f"<p>first {limit} of {len(packets)} packets</p>" if len(packets) > limit else "")
    return ("<table class='results packets'><thead><tr><th>#</th><th>time (s)</th>"
            f"<th>link</th><th>summary</th></tr></thead><tbody>{rows}</tbody></table>{note}")
