"""A GRO aggregate handed to the host with its segment size (``receive_frame(gso_size=)``, what a
TAP's virtio-net header carries): TCP measures the peer's segment size by it, as Linux's
tcp_measure_rcv_mss does with ``skb_shinfo(skb)->gso_size``, not by the aggregate's length."""

from __future__ import annotations

import random

import pytest

from stacklab.stack.host import Host
from stacklab.stack.tcp.tcb import Tcb
from stacklab.wire.addr import ip_bytes
from stacklab.wire.ethernet import ETH_P_IPV4, build_ethernet
from stacklab.wire.ipv4 import build_ipv4
from stacklab.wire.tcp import TcpView, build_tcp

MAC_H, MAC_P = bytes.fromhex("020000000001"), bytes.fromhex("020000000099")
H4, P4 = ip_bytes("10.0.0.1"), ip_bytes("10.0.0.2")
ISN = 1000


def frame(seq: int, ack: int, flags: int, payload: bytes = b"", opts: bytes = b"",
          *, as_bytearray: bool = False) -> bytes | bytearray:
    seg = build_tcp(P4, H4, 40000, 80, seq, ack, flags, 65535, payload, opts)
    f = build_ethernet(MAC_H, MAC_P, ETH_P_IPV4, build_ipv4(P4, H4, 6, seg, df=True))
    return bytearray(f) if as_bytearray else bytes(f)


def established() -> tuple[Host, Tcb, int]:
    h = Host("h", rng=random.Random(1))
    h.add_interface("eth0", MAC_H)
    h.add_address(0, "10.0.0.1/24")
    h.interfaces[0].arp.add_permanent(P4, MAC_P, 0.0)
    h.tcp.listen(80, lambda tcb: None)
    h.receive_frame(0, frame(ISN, 0, 0x02, opts=bytes([2, 4, 5, 0xB4])), 0.0)  # SYN, MSS 1460
    synack = TcpView(memoryview(h.frames_to_send()[-1][1])[34:])
    h.receive_frame(0, frame(ISN + 1, synack.seq + 1, 0x10), 0.01)
    (tcb,) = h.tcp.conns.values()
    return h, tcb, synack.seq + 1


@pytest.mark.parametrize("fast", [True, False], ids=["fused-frame", "per-layer"])
def test_gro_aggregate_sets_rcv_mss_to_its_segment_size(fast: bool) -> None:
    h, tcb, iss1 = established()
    assert tcb.tcp_info()["rcv_mss"] == 536  # Linux's first guess
    h.receive_frame(0, frame(ISN + 1, iss1, 0x10, bytes(8000), as_bytearray=not fast), 0.02,
                    gso_size=1000)
    assert tcb.rcv_nxt == ISN + 8001
    assert tcb.tcp_info()["rcv_mss"] == 1000  # not min(8000, our MSS 1460)
    assert h.rx_gso_size == 0  # the hint belongs to that one frame
    # an ordinary full-sized segment afterwards is measured by its own length
    h.receive_frame(0, frame(ISN + 8001, iss1, 0x10, bytes(1400), as_bytearray=not fast), 0.03)
    assert tcb.tcp_info()["rcv_mss"] == 1400
