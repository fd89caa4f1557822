"""PSH where Linux's TSO packets end (stack/tcp/tso.py), on the cases the upstream packetdrill
scripts show: each packet of two or more segments ends with PSH, a one-segment packet cut from
the middle of the queue has none."""

from __future__ import annotations

from stacklab.stack.tcp.tso import autosize_segs, packet_ends

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
