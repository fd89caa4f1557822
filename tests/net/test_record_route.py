"""An ICMP echo request with the Record Route option is answered with the option reflected and
updated with the host's address, as RFC 1122 §3.2.2.6 asks and Linux does (``ping -R``): the
route recorded is the whole round trip (issue 20 item 14)."""

from __future__ import annotations

import random

from stacklab.stack.host import Host
from stacklab.wire.addr import ip_bytes
from stacklab.wire.arp import ARP_REPLY, build_arp
from stacklab.wire.ethernet import ETH_P_ARP, ETH_P_IPV4, EthernetView, build_ethernet
from stacklab.wire.icmpv4 import ECHO_REPLY, ECHO_REQUEST, IcmpView, build_icmpv4
from stacklab.wire.ipv4 import IPv4View, build_ipv4

MAC_H, MAC_P = bytes.fromhex("020000000001"), bytes.fromhex("020000000099")
H4, P4 = ip_bytes("10.0.0.1"), ip_bytes("10.0.0.2")
RR = 7


def _host() -> Host:
    h = Host("h", rng=random.Random(1))
    h.ndp.dad_transmits = 0
    h.add_interface("eth0", MAC_H)
    h.add_address(0, "10.0.0.1/24")
    arp = build_arp(ARP_REPLY, MAC_P, P4, MAC_H, H4)  # the peer's MAC known: replies leave
    h.receive_frame(0, bytes(build_ethernet(MAC_H, MAC_P, ETH_P_ARP, arp)), 0.0)
    h.frames_to_send()
    return h


def _ping(h: Host, options: bytes) -> IPv4View:
    echo = build_icmpv4(ECHO_REQUEST, 0, b"\x12\x34\x00\x01", b"payload")
    pkt = build_ipv4(P4, H4, 1, echo, options=options)
    h.receive_frame(0, bytes(build_ethernet(MAC_H, MAC_P, ETH_P_IPV4, pkt)), 1.0)
    (frame,) = [EthernetView(f) for _, f in h.frames_to_send()]
    reply = IPv4View(frame.payload)
    icmp = IcmpView(reply.payload)
    assert (icmp.type, bytes(icmp.payload)) == (ECHO_REPLY, b"payload")
    return reply


def _rr(pointer: int, *addresses: bytes, slots: int = 9) -> bytes:
    recorded = b"".join(addresses)
    return bytes((RR, 3 + 4 * slots, pointer)) + recorded + bytes(4 * slots - len(recorded))


def test_record_route_is_reflected_with_the_host_recorded_on_the_way_in_and_out() -> None:
    # ping -R: the sender recorded its own address; a Linux target adds its own as the
    # request arrives and again as the reply leaves (ip_options_compile, ip_options_echo)
    reply = _ping(_host(), _rr(8, P4))
    assert bytes(reply.options) == _rr(16, P4, H4, H4) + b"\x00"  # padded with End of List
    assert reply.checksum_ok()


def test_a_full_record_route_is_reflected_unchanged() -> None:
    full = _rr(40, *[P4] * 9)
    assert bytes(_ping(_host(), full).options) == full + b"\x00"


def test_room_for_one_address_records_the_arrival_only() -> None:
    reply = _ping(_host(), _rr(8, P4, slots=2))
    assert bytes(reply.options) == _rr(12, P4, H4, slots=2) + b"\x00" * 1


def test_an_echo_without_options_is_answered_without() -> None:
    assert bytes(_ping(_host(), b"").options) == b""
