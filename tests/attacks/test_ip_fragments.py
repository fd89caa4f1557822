"""Fragment floods stay within the reassembly memory cap; IPv6 first fragments carry the whole
header chain (issue 20, item 8).

Before: the cap counted payload bytes only, so 100k empty or 8-byte fragments (each a datagram
of its own) counted under 1 MB while holding ~50 MB of this process for the 30 s timeout.
"""

from __future__ import annotations

import random
import struct
import sys

from stacklab.stack.frag import HIGH_THRESH
from stacklab.stack.host import Host
from stacklab.wire.addr import ip_bytes
from stacklab.wire.ethernet import ETH_P_IPV4, ETH_P_IPV6, EthernetView, build_ethernet
from stacklab.wire.icmpv6 import Icmpv6View
from stacklab.wire.ipv4 import build_ipv4
from stacklab.wire.ipv6 import IPv6View, build_ipv6
from stacklab.wire.udp import build_udp

MAC_H = bytes.fromhex("020000000001")
MAC_P = bytes.fromhex("020000000099")
H4, P4 = ip_bytes("10.0.0.1"), ip_bytes("10.0.0.2")
H6, P6 = ip_bytes("fd00::1"), ip_bytes("fd00::2")


def make_host() -> tuple[Host, list[bytes]]:
    h = Host("h", rng=random.Random(1))
    h.ndp.dad_transmits = 0
    h.add_interface("eth0", MAC_H)
    h.add_address(0, "10.0.0.1/24")
    h.add_address(0, "fd00::1/64")
    h.frames_to_send()
    h.interfaces[0].arp.update(P4, MAC_P, 0.0, solicited=True)
    h.interfaces[0].nd.update(P6, MAC_P, 0.0, solicited=True)
    got: list[bytes] = []
    for fam in (4, 6):
        s = h.udp.socket(fam)
        s.bind(None, 9)
        s.listener = type("L", (), {"datagram_received": lambda self, d, a, n: got.append(d),
                                    "error_received": lambda self, e, n: None})()
    return h, got


def frag4(ident: int, off: int, data: bytes, mf: bool) -> bytes:
    pkt = build_ipv4(P4, H4, 17, data, ident=ident, mf=mf, frag_offset=off)
    return bytes(build_ethernet(MAC_H, MAC_P, ETH_P_IPV4, pkt))


def frag6(ident: int, off: int, data: bytes, more: bool, nxt: int = 17) -> bytes:
    fh = struct.pack("!BBHI", nxt, 0, off | more, ident)
    return bytes(build_ethernet(MAC_H, MAC_P, ETH_P_IPV6, build_ipv6(P6, H6, 44, fh + data)))


def deep_size(obj: object, seen: set[int] | None = None) -> int:
    """Bytes held by ``obj`` and everything it references (not shared small ints)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or obj is None or isinstance(obj, (bool, float)):
        return 0
    seen.add(id(obj))
    n = sys.getsizeof(obj)
    if isinstance(obj, dict):
        n += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        n += sum(deep_size(x, seen) for x in obj)
    elif hasattr(obj, "__slots__"):
        n += sum(deep_size(getattr(obj, a, None), seen) for a in obj.__slots__)
    return n


def test_100k_tiny_and_empty_fragments_stay_under_the_cap():
    h, got = make_host()
    r4, r6 = h.ipv4.reasm, h.ipv6.reasm
    kinds = [lambda i: frag4(i & 0xFFFF, 64, b"", False),  # an empty last fragment
             lambda i: frag4(i & 0xFFFF, 0, b"\0" * 8, True),  # 8 bytes, more to come
             lambda i: frag6(i, 64, b"", False),
             lambda i: frag6(i, 8, b"\0" * 8, True)]
    peak_counted = 0
    for i in range(100_000):
        h.receive_frame(0, kinds[i % 4](i), 1.0 + i * 1e-5)  # in 1 s: nothing times out
        peak_counted = max(peak_counted, getattr(r4, "mem", 0), getattr(r6, "mem", 0))
    # what each reassembler really holds (every object it keeps, as CPython sizes them)
    for r in (r4, r6):
        assert deep_size(r.pending) < HIGH_THRESH * 1.1
    assert peak_counted <= HIGH_THRESH
    assert h.counters["drop.ipv4.frag_memory"] > 0 and h.counters["drop.ipv6.frag_memory"] > 0
    # a real fragmented datagram still gets through afterwards
    dgram = bytes(build_udp(P4, H4, 1234, 9, bytes(range(256)) * 8))
    h.receive_frame(0, frag4(4242, 0, dgram[:1024], True), 2.0)
    h.receive_frame(0, frag4(4242, 1024, dgram[1024:], False), 2.0)
    assert got == [bytes(range(256)) * 8]


def test_one_datagram_in_8_byte_fragments_costs_log_n_per_fragment():
    """8184 fragments of 8 bytes: the overlap check no longer walks every held piece."""
    h, got = make_host()
    payload = bytes(random.Random(2).randbytes(65_000))
    dgram = bytes(build_udp(P4, H4, 1234, 9, payload))
    offsets = list(range(0, len(dgram), 8))
    random.Random(3).shuffle(offsets)
    for off in offsets:
        h.receive_frame(0, frag4(77, off, dgram[off:off + 8], off + 8 < len(dgram)), 1.0)
    assert got == [payload] and h.ipv4.reasm.mem == 0


def test_ipv6_first_fragment_without_the_whole_header_chain_is_dropped_with_code_3():
    h, got = make_host()
    dgram = bytes(build_udp(P6, H6, 1234, 9, bytes(64)))
    # first fragment: only a Destination Options header whose length says 16 bytes, 8 present
    dst_opts = bytes([17, 1]) + bytes(6)
    h.receive_frame(0, frag6(9, 0, dst_opts, True, nxt=60), 1.0)
    (f,) = h.frames_to_send()
    m = Icmpv6View(IPv6View(EthernetView(f[1]).payload).payload)
    assert (m.type, m.code, m.pointer) == (4, 3, 0)
    assert h.counters["drop.ipv6.frag_incomplete_chain"] == 1
    # a TCP first fragment of 8 bytes (the header needs 20): dropped too
    h.receive_frame(0, frag6(10, 0, bytes(8), True, nxt=6), 1.0)
    assert h.counters["drop.ipv6.frag_incomplete_chain"] == 2
    assert not h.ipv6.reasm.pending
    # a first fragment with the UDP header in it is fine
    h.receive_frame(0, frag6(11, 0, dgram[:16], True), 1.0)
    h.receive_frame(0, frag6(11, 16, dgram[16:], False), 1.0)
    assert got == [bytes(64)]
