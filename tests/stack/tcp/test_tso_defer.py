"""TSO deferral's rule (tso_defer.py, Linux tcp_tso_should_defer): each reason to send now."""

from __future__ import annotations

from stacklab.stack.tcp.tso_defer import should_defer

# the last skb (8000 bytes) with room for 2000 of it, 20 ms SRTT, the head sent 20 ms ago
CASE = dict(skb_len=8000, is_tail=True, cong_win=2000, send_win=7896, snd_wnd=32896,
            cwnd=27000, ssthresh=1 << 30, mss=1000, srtt=0.02, min_tso_segs=10, idle=0.0,
            head_age=0.02)


def test_the_cut_tail_skb_waits_and_counts_as_cwnd_limited() -> None:
    assert should_defer(**CASE) == (True, True)


def test_each_reason_to_send_now() -> None:
    for change in ({"idle": 0.002},  # nothing sent for more than a jiffy
                   {"cong_win": 10000, "send_win": 20000},  # room for a full TSO packet
                   {"is_tail": False, "cong_win": 5000, "skb_len": 5000},  # not the last: fits
                   {"cong_win": 9000, "send_win": 9500},  # a third of the smaller window
                   {"head_age": 0.01},  # the head's ACK is over half an SRTT away
                   {"head_age": None}):  # nothing in flight
        assert should_defer(**(CASE | change)) == (False, False), change


def test_a_wait_the_peer_window_causes_is_not_cwnd_limited() -> None:
    assert should_defer(**(CASE | {"send_win": 1500})) == (True, False)
