"""A GRO aggregate handed to the host with its segment size (``receive_frame(gso_size=)``, what a
TAP's virtio-net header carries): TCP measures the peer's segment size by it, as Linux's
tcp_measure_rcv_mss does with ``skb_shinfo(skb)->gso_size``, not by the aggregate's length."""

from __future__ import annotations

import pytest

from .hostframes import ACK, ISN, established, frame


@pytest.mark.parametrize("fast", [True, False], ids=["fused-frame", "per-layer"])
def test_gro_aggregate_sets_rcv_mss_to_its_segment_size(fast: bool) -> None:
    h, tcb, iss1 = established()
    assert tcb.tcp_info()["rcv_mss"] == 536  # Linux's first guess
    h.receive_frame(0, frame(ISN + 1, iss1, ACK, bytes(8000), as_bytearray=not fast), 0.02,
                    gso_size=1000)
    assert tcb.rcv_nxt == ISN + 8001
    assert tcb.tcp_info()["rcv_mss"] == 1000  # not min(8000, our MSS 1460)
    assert h.rx_gso_size == 0  # the hint belongs to that one frame
    # an ordinary full-sized segment afterwards is measured by its own length
    h.receive_frame(0, frame(ISN + 8001, iss1, ACK, bytes(1400), as_bytearray=not fast), 0.03)
    assert tcb.tcp_info()["rcv_mss"] == 1400
