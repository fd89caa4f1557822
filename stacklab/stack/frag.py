"""IP fragmentation and reassembly, both families, sans-IO.

Reassembly (RFC 791 §3.2, RFC 815 holes; RFC 8200 §4.5 for IPv6):

* fragments may arrive in any order; an exact duplicate (same offset and length) is ignored;
* any other overlap discards the whole datagram — mandatory for IPv6 (RFC 5722), and what Linux
  does for IPv4 too since 4.19: no "first/last wins" ambiguity an attacker could exploit;
* a datagram not complete ``timeout`` seconds after its first fragment is dropped (IPv4 30 s,
  IPv6 60 s); if its first fragment was received the caller sends Time Exceeded code 1;
* memory is counted as Linux counts it, on the *truesize*: each fragment costs its data plus
  ``FRAG_TRUESIZE`` and each pending datagram ``QUEUE_TRUESIZE`` (what holding them costs this
  process, measured with tracemalloc), so 100k empty or 8-byte fragments cannot hide behind
  their payload size. Over ``high_thresh`` (``net.ipv4.ipfrag_high_thresh``, 4 MB) the oldest
  datagrams are evicted until ``low_thresh`` (``ipfrag_low_thresh``, 3 MB) is reached;
* a datagram that would exceed the family's maximum size is dropped;
* the pieces stay sorted by offset, so the overlap check is a binary search: a datagram cut
  into 8-byte fragments costs O(log n) per fragment, not O(n).

Fragmentation: :func:`fragment_ipv4` (source and routers; options with the copy bit repeat in
every fragment) and :func:`fragment_ipv6` (source only, inserting a Fragment header).
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stacklab.wire.checksum import internet_checksum
from stacklab.wire.proto import PROTO_FRAGMENT as NH_FRAGMENT

Key = tuple[Any, ...]

# Memory accounting (bytes of this process, CPython 3.11, measured with tracemalloc): a stored
# fragment's tuple, bytes object and offsets; a pending datagram's record, key and queue slot.
FRAG_TRUESIZE = 360
QUEUE_TRUESIZE = 240
HIGH_THRESH = 4 << 20  # net.ipv4.ipfrag_high_thresh / net.ipv6.ip6frag_high_thresh
LOW_THRESH = 3 << 20  # net.ipv4.ipfrag_low_thresh / net.ipv6.ip6frag_low_thresh


def _start(piece: tuple[int, int, bytes]) -> int:
    return piece[0]


@dataclass(slots=True)
class _Pending:
    created: float
    deadline: float
    pieces: list[tuple[int, int, bytes]] = field(default_factory=list)  # sorted by start
    total: int | None = None  # known once the last fragment (MF=0) arrived
    have: int = 0  # data bytes held
    mem: int = QUEUE_TRUESIZE  # truesize charged for this datagram
    first: Any = None  # caller data saved with the offset-0 fragment (its header)


class Reassembler:
    """Collects fragments per key until a datagram is complete.

    ``add()`` returns ``(payload, first)`` when the datagram completes — ``first`` being what the
    caller passed with the offset-0 fragment (e.g. its IP header) — else None. Drops are counted
    in ``counters`` as ``drop.<layer>.frag_<reason>``. ``on_timeout(key, first, now)`` is called
    for each datagram that expires. ``mem`` is the truesize held, never above ``high_thresh``
    once ``add`` returns.
    """

    def __init__(self, layer: str, timeout: float, max_size: int, counters: Any,
                 on_timeout: Callable[[Key, Any, float], None] | None = None, *,
                 high_thresh: int = HIGH_THRESH, low_thresh: int = LOW_THRESH) -> None:
        self.layer = layer
        self.timeout = timeout
        self.high_thresh = high_thresh  # ipfrag_high_thresh
        self.low_thresh = low_thresh  # ipfrag_low_thresh
        self.max_size = max_size
        self.counters = counters
        self.on_timeout = on_timeout
        self.pending: OrderedDict[Key, _Pending] = OrderedDict()  # oldest first
        self.mem = 0

    def _drop(self, key: Key, reason: str) -> None:
        p = self.pending.pop(key, None)
        if p is not None:
            self.mem -= p.mem
        self.counters[f"drop.{self.layer}.frag_{reason}"] += 1

    def add(self, key: Key, offset: int, data: bytes | memoryview, more: bool, now: float,
            first: Any = None, first_size: int = 0) -> tuple[bytes, Any] | None:
        """Add one fragment; ``first`` (kept with the offset-0 fragment) holds ``first_size``
        bytes, charged to the datagram."""
        n = len(data)
        end = offset + n
        if end > self.max_size:
            self._drop(key, "too_big")
            return None
        if more and (n == 0 or n & 7):
            # every fragment but the last carries a multiple of 8 bytes (RFC 791, RFC 8200)
            self._drop(key, "bad_length")
            return None
        p = self.pending.get(key)
        if p is None:
            p = _Pending(now, now + self.timeout)
            self.pending[key] = p
            self.mem += p.mem
        pieces = p.pieces
        if not more:
            if (p.total is not None and p.total != end) or (pieces and pieces[-1][1] > end):
                self._drop(key, "bad_length")  # two different ends, or data past the end
                return None
            p.total = end
        elif p.total is not None and end > p.total:
            self._drop(key, "bad_length")
            return None
        i = bisect_left(pieces, offset, key=_start)
        if i < len(pieces) and pieces[i][0] == offset and pieces[i][1] == end:
            self.counters[f"{self.layer}.frag_duplicates"] += 1
            return None
        if (i < len(pieces) and pieces[i][0] < end) or (i and pieces[i - 1][1] > offset):
            self._drop(key, "overlap")
            return None
        pieces.insert(i, (offset, end, bytes(data)))
        p.have += n
        cost = n + FRAG_TRUESIZE
        if offset == 0 and first is not None:
            p.first = first
            cost += first_size
        p.mem += cost
        self.mem += cost
        if p.total is not None and p.have == p.total:
            del self.pending[key]
            self.mem -= p.mem
            return b"".join(d for _, _, d in pieces), p.first
        if self.mem > self.high_thresh:
            while self.mem > self.low_thresh and self.pending:
                self._drop(next(iter(self.pending)), "memory")
        return None

    def get_timer(self) -> float | None:
        if not self.pending:
            return None
        return next(iter(self.pending.values())).deadline  # FIFO, all have the same timeout

    def handle_timer(self, now: float) -> None:
        while self.pending:
            key, p = next(iter(self.pending.items()))
            if p.deadline > now:
                break
            self._drop(key, "timeout")
            if self.on_timeout is not None:
                self.on_timeout(key, p.first, now)


# -- IPv4 fragmentation -----------------------------------------------------------------------
_V4 = struct.Struct("!BBHHHBBH4s4s")


def _copied_options(options: bytes) -> bytes:
    """The options with the 'copied' flag set (RFC 791), padded to a multiple of 4."""
    out = bytearray()
    i = 0
    while i < len(options):
        t = options[i]
        if t == 0:
            break
        if t == 1:
            i += 1
            continue
        if i + 1 >= len(options):
            break
        ln = options[i + 1]
        if ln < 2:
            break
        if t & 0x80:
            out += options[i:i + ln]
        i += ln
    if len(out) & 3:
        out += bytes(4 - (len(out) & 3))
    return bytes(out)


def fragment_ipv4(header: bytes | bytearray | memoryview,
                  payload: bytes | bytearray | memoryview, mtu: int) -> list[bytearray]:
    """Split one IPv4 packet (``header`` with options, ``payload``) into packets <= ``mtu``.

    Works for an original datagram and for a fragment being fragmented again at a router: the
    offsets continue from the packet's own offset and the last piece keeps its MF flag.
    The caller checked DF.
    """
    vihl, tos, _tlen, ident, ff, ttl, proto, _c, src, dst = _V4.unpack_from(header)
    hl = (vihl & 0x0F) << 2
    options = bytes(header[20:hl])
    base_off = (ff & 0x1FFF) << 3
    orig_mf = ff & 0x2000
    flags_keep = ff & 0x4000
    rest_options = _copied_options(options) if options else b""
    out = []
    pos = 0
    n = len(payload)
    first = True
    while pos < n or first:
        opts = options if first else rest_options
        hlen = 20 + len(opts)
        chunk = (mtu - hlen) & ~7
        if chunk <= 0:
            raise ValueError(f"MTU {mtu} too small to fragment a {hlen}-byte header")
        end = min(n, pos + chunk)
        last = end >= n
        mf = orig_mf if last else 0x2000
        hdr = bytearray(_V4.pack(0x40 | (hlen >> 2), tos, hlen + end - pos, ident,
                                 flags_keep | mf | ((base_off + pos) >> 3), ttl, proto, 0, src,
                                 dst))
        hdr += opts
        struct.pack_into("!H", hdr, 10, internet_checksum(hdr))
        hdr += payload[pos:end]
        out.append(hdr)
        pos = end
        first = False
    return out


# -- IPv6 fragmentation -----------------------------------------------------------------------
_V6 = struct.Struct("!IHBB16s16s")
_FRAG6 = struct.Struct("!BBHI")


def fragment_ipv6(src: bytes, dst: bytes, next_header: int,
                  payload: bytes | bytearray | memoryview,
                  mtu: int, ident: int, hop_limit: int = 64, traffic_class: int = 0,
                  flow_label: int = 0) -> list[bytearray]:
    """Source fragmentation (RFC 8200 §4.5): 40-byte header + Fragment header + data pieces.

    ``payload`` is the fragmentable part (upper-layer header and data); we send no
    unfragmentable extension headers.
    """
    chunk = (mtu - 40 - 8) & ~7
    if chunk <= 0:
        raise ValueError(f"MTU {mtu} too small to fragment")
    vtf = (6 << 28) | (traffic_class << 20) | flow_label
    out: list[bytearray] = []
    n = len(payload)
    pos = 0
    while pos < n or not out:
        end = min(n, pos + chunk)
        more = 1 if end < n else 0
        pkt = bytearray(_V6.pack(vtf, 8 + end - pos, NH_FRAGMENT, hop_limit, src, dst))
        pkt += _FRAG6.pack(next_header, 0, pos | more, ident)
        pkt += payload[pos:end]
        out.append(pkt)
        pos = end
    return out
