"""Fragmentation and reassembly engines (sans-IO)."""

import random
from collections import Counter

from stacklab.stack.frag import (
    FRAG_TRUESIZE,
    QUEUE_TRUESIZE,
    Reassembler,
    fragment_ipv4,
    fragment_ipv6,
)
from stacklab.wire.ipv4 import IPv4View, build_ipv4
from stacklab.wire.ipv6 import IPv6View, walk_ext_headers

A = bytes([10, 0, 0, 1])
B = bytes([10, 0, 0, 2])


def _reasm(timeout=30.0, high=1 << 20, low=None):
    c = Counter()
    timeouts = []
    r = Reassembler("ipv4", timeout, 65535 - 20, c,
                    on_timeout=lambda k, first, now: timeouts.append((k, first, now)),
                    high_thresh=high, low_thresh=high if low is None else low)
    return r, c, timeouts


def _pieces(data: bytes, size: int):
    return [(o, data[o:o + size], o + size < len(data)) for o in range(0, len(data), size)]


def test_in_order_and_shuffled_reassembly():
    data = bytes(random.Random(1).randbytes(4000))
    for seed in range(5):
        r, c, _ = _reasm()
        pieces = _pieces(data, 552)
        random.Random(seed).shuffle(pieces)
        results = [r.add("k", o, d, m, 0.0, first="hdr" if o == 0 else None)
                   for o, d, m in pieces]
        assert results[:-1] == [None] * (len(pieces) - 1)
        assert results[-1] == (data, "hdr")
        assert r.mem == 0 and not r.pending


def test_exact_duplicates_are_ignored():
    r, c, _ = _reasm()
    data = bytes(range(200)) * 8
    p = _pieces(data, 400)
    assert r.add("k", *p[0][:2], p[0][2], 0.0) is None
    assert r.add("k", *p[0][:2], p[0][2], 0.1) is None
    assert c["ipv4.frag_duplicates"] == 1
    out = None
    for o, d, m in p[1:]:
        out = r.add("k", o, d, m, 0.2)
    assert out[0] == data


def test_overlap_discards_the_whole_datagram():
    r, c, _ = _reasm()
    assert r.add("k", 0, bytes(16), True, 0.0) is None
    assert r.add("k", 8, bytes(16), True, 0.0) is None  # overlaps [8,16)
    assert c["drop.ipv4.frag_overlap"] == 1
    assert not r.pending
    # the rest of the datagram arriving later does not complete anything
    assert r.add("k", 16, bytes(8), False, 0.0) is None


def test_timeout_reports_first_fragment_and_frees_memory():
    r, c, timeouts = _reasm(timeout=30.0)
    r.add("k", 0, bytes(8), True, 1.0, first="hdr")
    r.add("j", 8, bytes(8), False, 2.0)
    assert r.get_timer() == 31.0
    r.handle_timer(30.9)
    assert len(r.pending) == 2
    r.handle_timer(31.0)
    assert timeouts == [("k", "hdr", 31.0)]
    r.handle_timer(32.0)
    assert [t[1] for t in timeouts] == ["hdr", None]
    assert c["drop.ipv4.frag_timeout"] == 2 and r.mem == 0 and r.get_timer() is None


def test_memory_cap_evicts_oldest_down_to_low_thresh():
    one = QUEUE_TRUESIZE + FRAG_TRUESIZE + 400  # a datagram holding one 400-byte fragment
    r, c, _ = _reasm(high=4 * one, low=2 * one)
    for i in range(4):
        r.add(i, 0, bytes(400), True, float(i))
    assert r.mem == 4 * one and c["drop.ipv4.frag_memory"] == 0  # at the cap, not over
    r.add(4, 0, bytes(400), True, 4.0)
    assert r.mem == 2 * one and c["drop.ipv4.frag_memory"] == 3  # evicted down to low_thresh
    assert list(r.pending) == [3, 4]


def test_bad_lengths():
    r, c, _ = _reasm()
    r.add("a", 0, bytes(10), True, 0.0)  # not a multiple of 8 with MF
    r.add("b", 65520, bytes(16), False, 0.0)  # beyond 65515
    r.add("c", 0, bytes(16), False, 0.0 + 0)  # complete single piece -> returned
    assert c["drop.ipv4.frag_bad_length"] == 1 and c["drop.ipv4.frag_too_big"] == 1
    r.add("d", 16, bytes(8), False, 0.0)
    r.add("d", 32, bytes(8), True, 0.0)  # past the known end
    assert c["drop.ipv4.frag_bad_length"] == 2


def test_fragment_ipv4_roundtrip_and_refragment():
    data = bytes(random.Random(2).randbytes(3992))
    pkt = build_ipv4(A, B, 17, data, ttl=9, ident=77)
    frags = fragment_ipv4(pkt[:20], memoryview(pkt)[20:], 1500)
    assert [len(f) for f in frags] == [1500, 1500, 20 + 3992 - 2 * 1480]
    views = [IPv4View(f) for f in frags]
    assert all(v.checksum_ok() and v.ident == 77 and v.ttl == 9 for v in views)
    assert [v.mf for v in views] == [True, True, False]
    # a router fragments the middle fragment again for a 576 link
    mid = views[1]
    again = fragment_ipv4(mid.buf[:20], mid.payload, 576)
    av = [IPv4View(f) for f in again]
    assert all(len(f) <= 576 for f in again)
    assert av[0].frag_offset == 1480 and all(v.mf for v in av)
    r, _, _ = _reasm()
    out = None
    for v in [views[0], *av, views[2]]:
        out = r.add("k", v.frag_offset, v.payload, v.mf, 0.0) or out
    assert out[0] == data


def test_fragment_ipv4_copies_only_copied_options():
    # option 0x94 (router alert, copied) + 0x07 record route (not copied), padded
    opts = bytes([0x94, 4, 0, 0, 0x07, 7, 4, 0, 0, 0, 0, 0])
    pkt = build_ipv4(A, B, 17, bytes(1000), options=opts)
    frags = [IPv4View(f) for f in fragment_ipv4(pkt[:32], memoryview(pkt)[32:], 576)]
    assert bytes(frags[0].options) == opts
    assert bytes(frags[1].options) == bytes([0x94, 4, 0, 0])
    assert sum(len(f.payload) for f in frags) == 1000


def test_fragment_ipv6():
    src, dst = bytes(15) + b"\x01", bytes(15) + b"\x02"
    data = bytes(random.Random(3).randbytes(4000))
    frags = fragment_ipv6(src, dst, 17, data, 1280, ident=0xABCD)
    assert all(len(f) <= 1280 for f in frags)
    r = Reassembler("ipv6", 60, 65535, Counter())
    out = None
    for f in frags:
        v = IPv6View(f)
        upper, off, fr, _ = walk_ext_headers(v)
        assert upper == 17 and fr.ident == 0xABCD
        out = r.add("k", fr.offset, v.buf[off:40 + v.payload_length], fr.more, 0.0) or out
    assert out[0] == data
