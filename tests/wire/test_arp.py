from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.l2 import ARP

from stacklab.wire import MalformedPacket
from stacklab.wire.arp import ARP_REPLY, ARP_REQUEST, Arp, ArpView, build_arp

from .conftest import h, ip4s, macs

MAC1 = bytes.fromhex("020000000001")
MAC2 = bytes.fromhex("020000000002")
IP1 = bytes([10, 0, 0, 1])
IP2 = bytes([10, 0, 0, 2])

# RFC 826: ar$hrd=1 ar$pro=0800 ar$hln=6 ar$pln=4 ar$op=1 sha spa tha tpa
REQUEST = h("0001 0800 06 04 0001 020000000001 0a000001 000000000000 0a000002")
REPLY = h("0001 0800 06 04 0002 020000000002 0a000002 020000000001 0a000001")


def test_request_vector() -> None:
    v = ArpView(REQUEST)
    assert (v.op, v.sha, v.spa, v.tha, v.tpa) == (ARP_REQUEST, MAC1, IP1, bytes(6), IP2)
    assert Arp(ARP_REQUEST, MAC1, IP1, bytes(6), IP2).build() == REQUEST
    assert build_arp(ARP_REQUEST, MAC1, IP1, bytes(6), IP2) == REQUEST


def test_reply_vector() -> None:
    a = Arp.parse(REPLY)
    assert a == Arp(ARP_REPLY, MAC2, IP2, MAC1, IP1)
    assert a.build() == REPLY


def test_ethernet_padding_ignored() -> None:
    assert Arp.parse(REQUEST + bytes(18)) == Arp.parse(REQUEST)


def test_summaries() -> None:
    assert Arp.parse(REQUEST).summary() == "ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28"
    assert Arp.parse(REPLY).summary() == "ARP, Reply 10.0.0.2 is-at 02:00:00:00:00:02, length 28"
    assert "op 9" in Arp(9, MAC1, IP1, MAC2, IP2).summary()


@pytest.mark.parametrize(
    "packet, field",
    [
        (REQUEST[:27], "length"),
        (b"", "length"),
        (h("0006") + REQUEST[2:], "htype"),  # IEEE 802 networks
        (REQUEST[:2] + h("86dd") + REQUEST[4:], "ptype"),
        (REQUEST[:4] + h("0804") + REQUEST[6:], "hlen/plen"),
        (REQUEST[:4] + h("0610") + REQUEST[6:], "hlen/plen"),
    ],
)
def test_malformed(packet: bytes, field: str) -> None:
    with pytest.raises(MalformedPacket) as ei:
        ArpView(packet)
    assert ei.value.layer == "arp" and ei.value.field == field


def test_build_checks_address_lengths() -> None:
    with pytest.raises(ValueError):
        Arp(ARP_REQUEST, MAC1, b"\x0a\x00\x00", bytes(6), IP2).build()


ops = st.integers(0, 0xFFFF)


@settings(max_examples=200, deadline=None)
@given(ops, macs, ip4s, macs, ip4s)
def test_we_build_scapy_parses(op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes) -> None:
    p = ARP(bytes(Arp(op, sha, spa, tha, tpa).build()))
    assert (p.hwtype, p.ptype, p.hwlen, p.plen, p.op) == (1, 0x0800, 6, 4, op)
    assert p.hwsrc == sha.hex(":") and p.hwdst == tha.hex(":")
    assert p.psrc == ".".join(map(str, spa)) and p.pdst == ".".join(map(str, tpa))


@settings(max_examples=200, deadline=None)
@given(ops, macs, ip4s, macs, ip4s)
def test_scapy_builds_we_parse(op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes) -> None:
    pkt = bytes(ARP(op=op, hwsrc=sha.hex(":"), psrc=".".join(map(str, spa)),
                    hwdst=tha.hex(":"), pdst=".".join(map(str, tpa))))
    assert Arp.parse(pkt) == Arp(op, sha, spa, tha, tpa)
