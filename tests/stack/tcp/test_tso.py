"""PSH where Linux's TSO packets end (stack/tcp/tso.py), on the cases the upstream packetdrill
scripts show: each packet of two or more segments ends with PSH, a one-segment packet cut from
the middle of the queue has none."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stacklab.stack.tcp.tso import autosize_segs, packet_ends, packet_ends_run

MSS = 1000
BIG = 1 << 30  # ssthresh before the first loss


def ends(n: int, flight: int, cwnd: int, *, min_segs: int = 2, srtt: float | None = 0.1,
         pushed: tuple[int, ...] = ()) -> list[int]:
    return packet_ends([MSS] * n, [i in pushed for i in range(n)], flight, cwnd, BIG, MSS,
                       srtt, min_segs)


def test_half_cwnd_packets_with_ten_segment_autosize():
    # slow-start-after-idle (tcp_min_tso_segs=10): IW10 leaves as two 5-segment packets
    assert ends(10, 0, 10 * MSS, min_segs=10) == [4, 9]
    # cwnd 20 after the ACK: 10 + 6 segments
    assert ends(16, 0, 20 * MSS, min_segs=10) == [9, 15]


def test_two_segment_packets_at_a_low_rate():
    # 10 segments per 100 ms is far below 2 segments per ms: tcp_min_tso_segs (2) decides
    assert autosize_segs(10 * MSS, BIG, MSS, 0.1, 2) == 2
    assert ends(10, 0, 10 * MSS) == [1, 3, 5, 7, 9]


def test_one_segment_packets_carry_no_psh():
    # cubic-rto-ss-ca-cwnd-bump: cwnd 2 (half of it: 1 segment per packet), then cwnd 4 with 2
    # in flight (one 2-segment packet, PSH)
    assert ends(2, 0, 2 * MSS) == []
    assert ends(2, 2 * MSS, 4 * MSS) == [1]


def test_a_write_end_ends_a_packet():
    assert ends(6, 0, 10 * MSS, pushed=(2,)) == [1, 4]


def test_no_rate_yet_means_the_largest_packets():
    assert autosize_segs(10 * MSS, BIG, MSS, None, 2) == 65
    assert ends(10, 0, 10 * MSS, srtt=None) == [4, 9]


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 120), st.data(), st.integers(0, 200), st.integers(1, 300),
       st.sampled_from([None, 0.0, 1e-5, 0.0002, 0.001, 0.03, 0.3]), st.integers(1, 12),
       st.sampled_from([536, 1448, 8948]))
def test_packet_ends_run_matches_packet_ends(n, data, flight_segs, cwnd_segs, srtt, min_segs,
                                             mss):
    # the per-packet cut of a uniform run against the per-segment cut (its specification)
    pushed = sorted(data.draw(st.sets(st.integers(0, max(n - 1, 0)), max_size=6))) if n else []
    flight = flight_segs * mss - data.draw(st.integers(0, mss - 1))
    cwnd = cwnd_segs * mss + data.draw(st.integers(0, mss - 1))
    ssthresh = data.draw(st.sampled_from([BIG, 2 * mss, cwnd, 4 * cwnd]))
    spec = packet_ends([mss] * n, [i in pushed for i in range(n)], max(flight, 0), cwnd,
                       ssthresh, mss, srtt, min_segs)
    assert packet_ends_run(n, pushed, max(flight, 0), cwnd, ssthresh, mss, srtt,
                           min_segs) == spec


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 1 << 31), st.sampled_from([2, 1000, 1 << 30]),
       st.sampled_from([536, 1448, 8948]), st.floats(1e-7, 100.0), st.integers(1, 12))
def test_autosize_segs_is_tcp_tso_autosize_with_truncation(cwnd, ssthresh, mss, srtt, min_segs):
    # autosize_segs takes floor() where the kernel's integer arithmetic truncates (int())
    ratio = 2.0 if cwnd < ssthresh // 2 else 1.2
    nbytes = int(cwnd * ratio / srtt) >> 10
    r = int(srtt * 1e6) >> 9
    if r < 32:
        nbytes += 65536 >> r
    want = max(min(nbytes, 65536) // mss, min_segs)
    assert autosize_segs(cwnd, ssthresh, mss, srtt, min_segs) == want
