"""The "checksum already verified" flag of a node's frame input (``receive_frame(...,
csum_valid=True)``, Linux's CHECKSUM_UNNECESSARY): the TCP checksum is not checked when the
device vouches for it, and is checked (bad: dropped and counted) otherwise."""

from __future__ import annotations

import pytest

from stacklab.net.network import Network
from stacklab.wire.addr import ip_bytes
from stacklab.wire.ethernet import build_ethernet
from stacklab.wire.ipv4 import build_ipv4
from stacklab.wire.tcp import SYN, build_tcp


def _host_and_frames():
    net = Network(seed=3)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="1ms")
    net.autoconfigure()
    net.run(until=1.0)
    src, dst = ip_bytes(a.address(4)), ip_bytes(b.address(4))
    seg = bytearray(build_tcp(src, dst, 40000, 9, 1, 0, SYN, 1000))
    seg[16] ^= 0x5A  # a wrong TCP checksum (a partial sum, as the kernel leaves it, is one)
    packet = build_ipv4(src, dst, 6, bytes(seg), 64, 1, True)
    mac, peer = b.interfaces[0].mac, a.interfaces[0].mac
    bad_tcp = bytes(build_ethernet(mac, peer, 0x0800, packet))
    bad_ip = bytearray(bad_tcp)
    bad_ip[24] ^= 0x01  # and the IPv4 header's checksum too
    return net, b, bad_tcp, bytes(bad_ip)


@pytest.mark.parametrize("view", [False, True], ids=["bytes", "memoryview"])
def test_a_wrong_tcp_checksum_is_accepted_only_with_the_flag(view: bool) -> None:
    net, b, frame, _ = _host_and_frames()
    f = memoryview(frame) if view else frame
    c = b.counters
    b.receive_frame(0, f, 1.0)  # no flag: dropped and counted, no answer
    assert c["drop.tcp.bad_checksum"] == 1 and c["tcp.tx.rst"] == 0
    b.receive_frame(0, f, 1.0, csum_valid=True)  # the device verified it: a SYN to a closed port
    assert c["drop.tcp.bad_checksum"] == 1 and c["tcp.tx.rst"] == 1
    net.close()


def test_the_flag_does_not_cover_the_ipv4_header() -> None:
    net, b, _, frame = _host_and_frames()
    b.receive_frame(0, frame, 1.0, csum_valid=True)
    assert b.counters["drop.ipv4.bad_checksum"] == 1 and b.counters["tcp.tx.rst"] == 0
    net.close()
