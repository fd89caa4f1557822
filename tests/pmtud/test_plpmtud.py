"""The PLPMTUD state machine (RFC 4821) on its own: black-hole detection, base fallback, binary
search against a simulated path, ICMP bounds, modes, re-probing after the interval."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stacklab.stack.tcp.plpmtud import Plpmtud, PlpmtudState, parse_mode


def search(p: Plpmtud, path_mtu: int, limit: int = 1500, now: float = 10.0) -> list[int]:
    """Drive the search against a path that carries ``path_mtu``; return the probe sizes."""
    probes = []
    seq = 1000
    for _ in range(64):
        size = p.want_probe(limit, now)
        if size is None:
            break
        assert p.search_low < size <= p.search_high
        probes.append(size)
        p.probe_sent(seq, seq + size, size, now)
        if size <= path_mtu:
            assert p.on_ack(seq + size, now)
        else:
            assert p.probe_at(seq)
            p.on_probe_lost(now)
        seq += size
        now += 0.05
    return probes


def test_blackhole_detection_after_three_timeouts_of_full_size_segments():
    p = Plpmtud("blackhole", 40, 1500)
    assert p.mtu_clamp() is None and p.state is PlpmtudState.DISABLED
    assert not p.on_rto(1, 1448, 1.0) and not p.on_rto(2, 1448, 1.4)
    assert p.want_probe(1500, 1.5) is None  # not engaged: no probing
    assert p.on_rto(3, 1448, 2.2)
    assert p.mtu_clamp() == 1064 and p.state is PlpmtudState.SEARCHING  # base MSS 1024 + 40
    assert p.blackholes == 1
    # still timing out at the base size: halve (Linux tcp_mtu_probing)
    assert p.on_rto(4, 1024, 4.0)
    assert p.mtu_clamp() == 512 + 40


def test_small_segments_timing_out_are_not_a_black_hole():
    p = Plpmtud("blackhole", 40, 1500)
    assert not p.on_rto(5, 500, 1.0)  # 540 < 1064: falling back would not help
    assert p.mtu_clamp() is None


def test_off_never_engages_and_always_starts_at_base():
    off = Plpmtud("off", 40, 1500)
    for k in range(1, 10):
        assert not off.on_rto(k, 1448, float(k))
    assert off.mtu_clamp() is None and off.want_probe(1500, 100.0) is None
    always = Plpmtud("always", 40, 1500)
    assert always.mtu_clamp() == 1064
    assert always.want_probe(1500, 0.0) == (1064 + 1500 + 1) // 2


def test_ipv6_base_is_base_mss_plus_headers_as_linux():
    """Linux's tcp_mtup_init / tcp_mtu_probing take tcp_base_mss plus the headers on IPv6 too
    (upstream mtu_probe/basic-v6: tcp_base_mss 512 probes 986 bytes between 572 and 1520)."""
    p = Plpmtud("always", 60, 1500)
    assert p.mtu_clamp() == 1024 + 60
    q = Plpmtud("always", 60, 1520, base_mss=512)
    assert q.want_probe(1520, 0.0) == (572 + 1520 + 1) // 2


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=1064, max_value=1500))
def test_binary_search_converges_within_threshold(path_mtu):
    p = Plpmtud("always", 40, 1500)
    probes = search(p, path_mtu)
    assert p.state is PlpmtudState.SEARCH_COMPLETE
    assert path_mtu - 8 < p.mtu_clamp() <= path_mtu  # within tcp_probe_threshold, never above
    assert len(probes) <= 7  # log2(436 / 8) rounds up to 6, plus one


def test_search_from_a_black_hole_to_1280():
    p = Plpmtud("blackhole", 40, 1500)
    for k in (1, 2, 3):
        p.on_rto(k, 1448, float(k))
    probes = search(p, 1280)
    assert probes[0] == (1064 + 1500 + 1) // 2 == 1282  # just too big: lost
    assert 1273 <= p.mtu_clamp() <= 1280
    assert p.probes_lost >= 1 and p.probes_acked >= 1


def test_icmp_bounds_the_search():
    p = Plpmtud("always", 40, 1500)
    p.on_ptb(1300)
    assert p.search_high == 1300
    probes = search(p, 1400)  # the path would carry more, but ICMP said 1300
    assert max(probes) <= 1300 and p.mtu_clamp() <= 1300
    q = Plpmtud("always", 40, 1500)
    q.on_ptb(1000)  # below the base: the known-good size follows it down
    assert q.mtu_clamp() == 1000


def test_peer_limit_bounds_probes():
    p = Plpmtud("always", 40, 1500)
    assert search(p, 1500, limit=1200)[0] <= 1200
    assert p.mtu_clamp() <= 1200


def test_reprobe_after_interval_finds_a_larger_path():
    p = Plpmtud("always", 40, 1500, interval=600.0)
    search(p, 1300, now=10.0)
    low = p.mtu_clamp()
    assert 1292 < low <= 1300
    assert p.want_probe(1500, 500.0) is None  # complete: quiet until the interval passes
    probes = search(p, 1500, now=700.0)  # the path grew
    assert probes and p.mtu_clamp() > 1490


def test_parse_mode():
    assert parse_mode(True) == "blackhole" and parse_mode(False) == "off"
    assert [parse_mode(i) for i in (0, 1, 2)] == ["off", "blackhole", "always"]
    with pytest.raises(ValueError):
        parse_mode("sometimes")
