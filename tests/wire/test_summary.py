"""summarize(): frames built by scapy (an independent encoder) and the line a user expects."""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    ICMPv6ND_NS,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    fragment6,
)
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from stacklab.wire.summary import summarize

E = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
A, B = "10.0.0.1", "10.0.0.2"


def s(pkt: object, link: str = "ether") -> str:
    return summarize(bytes(pkt), link)  # type: ignore[call-overload]


def test_tcp_syn_with_options() -> None:
    pkt = E / IP(src=A, dst=B) / TCP(sport=5000, dport=80, flags="S", seq=1, window=65535,
                                     options=[("MSS", 1460), ("NOP", None), ("WScale", 7)])
    assert s(pkt) == ("10.0.0.1.5000 > 10.0.0.2.80: Flags [S], seq 1, win 65535, "
                      "options [mss 1460,nop,wscale 7], length 0")


def test_arp_request_and_reply() -> None:
    assert s(E / ARP(op=1, psrc=A, pdst=B)) == (
        "ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28")
    assert s(E / ARP(op=2, psrc=B, hwsrc="02:00:00:00:00:02", pdst=A)) == (
        "ARP, Reply 10.0.0.2 is-at 02:00:00:00:00:02, length 28")


def test_icmp_echo() -> None:
    pkt = E / IP(src=A, dst=B) / ICMP(type=8, id=1, seq=1) / Raw(b"x" * 56)
    assert s(pkt) == "10.0.0.1 > 10.0.0.2: ICMP echo request, id 1, seq 1, length 64"


def test_udp_raw_link() -> None:
    assert s(IP(src=A, dst=B) / UDP(sport=53, dport=999) / Raw(b"hello"), "raw") == (
        "10.0.0.1.53 > 10.0.0.2.999: UDP, length 5")


def test_vlan_prefix() -> None:
    pkt = E / Dot1Q(vlan=5, prio=3) / IP(src=A, dst=B) / UDP(sport=1, dport=2)
    assert s(pkt) == "vlan 5, p 3, 10.0.0.1.1 > 10.0.0.2.2: UDP, length 0"


def test_bad_checksums_are_noted() -> None:
    pkt = E / IP(src=A, dst=B, chksum=5) / UDP(sport=1, dport=2, chksum=7) / Raw(b"hi")
    line = s(pkt)
    assert line.startswith("10.0.0.1.1 > 10.0.0.2.2: UDP, length 2")
    assert "[bad udp cksum]" in line and "[bad ipv4 cksum]" in line
    good = s(E / IP(src=A, dst=B) / TCP(sport=1, dport=2))
    assert "bad" not in good


def test_ipv4_fragments() -> None:
    frags = fragment(IP(src=A, dst=B, id=7) / UDP(sport=1, dport=2) / Raw(b"x" * 3000), 1480)
    lines = [s(f, "raw") for f in frags]
    assert lines == [
        "10.0.0.1 > 10.0.0.2: UDP, frag 7:1480@0+, ttl 64, length 1480",
        "10.0.0.1 > 10.0.0.2: UDP, frag 7:1480@1480+, ttl 64, length 1480",
        "10.0.0.1 > 10.0.0.2: UDP, frag 7:48@2960, ttl 64, length 48",
    ]


def test_ipv6_tcp_and_icmpv6() -> None:
    pkt = E / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=5000, dport=80,
                                                                flags="SA", seq=1, ack=5)
    assert s(pkt) == ("2001:db8::1.5000 > 2001:db8::2.80: Flags [S.], seq 1, ack 5, "
                      "win 8192, length 0")
    echo = E / IPv6(src="fe80::1", dst="ff02::16") / IPv6ExtHdrHopByHop() / ICMPv6EchoRequest(
        id=3, seq=4)
    assert s(echo) == "fe80::1 > ff02::16: HBH ICMP6, echo request, id 3, seq 4, length 8"
    ns = (E / IPv6(src="fe80::1", dst="ff02::1:ff00:2") / ICMPv6ND_NS(tgt="fe80::2")
          / ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:00:01"))
    line = s(ns)
    assert line.startswith("fe80::1 > ff02::1:ff00:2: ICMP6, neighbor solicitation, "
                           "who has fe80::2")
    assert "02:00:00:00:00:01" in line and "bad" not in line


def test_ipv6_fragments() -> None:
    frags = fragment6(IPv6(src="::1", dst="::2") / IPv6ExtHdrFragment(id=9)
                      / UDP(sport=1, dport=2) / Raw(b"x" * 3000), 1280)
    lines = [s(f, "raw") for f in frags]
    assert lines == [
        "::1 > ::2: frag (0x9:0+) UDP, hlim 64, length 1232",
        "::1 > ::2: frag (0x9:1232+) UDP, hlim 64, length 1232",
        "::1 > ::2: frag (0x9:2464) UDP, hlim 64, length 544",
    ]


def test_other_ethertype() -> None:
    assert s(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x88B5)
             / Raw(b"z" * 46)) == (
        "02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype 0x88b5, length 46")


@pytest.mark.parametrize(
    "frame, link, expected",
    [
        (b"abc", "ether", "[malformed ethernet: length: frame of 3 bytes < 14], length 3"),
        (b"", "raw", "[malformed ip: length: empty packet], length 0"),
        (b"\x45" + bytes(30), "raw",
         "IP [malformed ipv4: total_length: total length 0 < header 20], length 31"),
        (b"\x75" + bytes(30), "raw",
         "[malformed ip: version: version 7 is neither 4 nor 6], length 31"),
        (bytes(IP(src=A, dst=B) / TCP(dataofs=15)), "raw",
         "10.0.0.1 > 10.0.0.2: [malformed tcp: data_offset: data offset 15 words, segment has "
         "20 bytes], length 20"),
        (bytes(IPv6(src="::1", dst="::2") / UDP(len=3)), "raw",
         "::1 > ::2: [malformed udp: length: length field 3, datagram has 8 bytes], length 8"),
    ],
)
def test_malformed_lines(frame: bytes, link: str, expected: str) -> None:
    assert summarize(frame, link) == expected


def test_malformed_arp_and_ipv6_chain() -> None:
    good = bytes(E / ARP(psrc=A, pdst=B))
    bad_arp = good[:14] + b"\x00\x06" + good[16:]  # htype 6 (IEEE 802)
    assert summarize(bad_arp) == (
        "ARP, [malformed arp: htype: hardware type 6 is not Ethernet (1)], length 28")
    chain = bytes(IPv6(src="::1", dst="::2", nh=60) / Raw(b"\x3b\x05" + bytes(6)))
    assert summarize(chain, "raw").startswith("::1 > ::2: [malformed ipv6: ext_header:")


def test_unknown_link() -> None:
    assert summarize(b"x", "ppp") == "[unknown link type 'ppp'], length 1"
