from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.l2 import Dot1Q, Ether

from stacklab.wire import MalformedPacket
from stacklab.wire.ethernet import (
    ETH_P_8021Q,
    ETH_P_ARP,
    ETH_P_IPV4,
    ETH_P_IPV6,
    Ethernet,
    EthernetView,
    build_ethernet,
    pad_frame,
)

from .conftest import ethertypes, h, macs

BCAST = b"\xff" * 6
MAC1 = bytes.fromhex("020000000001")

# dst | src | type | payload  (IEEE 802.3 clause 3 with an EtherType, no FCS)
UNTAGGED = h("ffffffffffff 020000000001 0806 deadbeef")
# dst | src | TPID 8100 | TCI: PCP 5, DEI 0, VID 100 = 1010 0000 0110 0100 | type 0800 | payload
TAGGED = h("ffffffffffff 020000000001 8100 a064 0800 0102")


def test_constants() -> None:
    assert (ETH_P_IPV4, ETH_P_ARP, ETH_P_IPV6, ETH_P_8021Q) == (0x0800, 0x0806, 0x86DD, 0x8100)


def test_untagged_vector_parse() -> None:
    v = EthernetView(UNTAGGED)
    assert v.dst == BCAST and v.src == MAC1
    assert v.ethertype == ETH_P_ARP
    assert v.vlan is None and v.header_len == 14
    assert isinstance(v.payload, memoryview) and bytes(v.payload) == h("deadbeef")


def test_tagged_vector_parse() -> None:
    v = EthernetView(TAGGED)
    assert v.ethertype == ETH_P_IPV4  # the inner type
    assert (v.vlan, v.pcp, v.dei, v.header_len) == (100, 5, 0, 18)
    assert bytes(v.payload) == h("0102")
    e = Ethernet.parse(TAGGED)
    assert e == Ethernet(BCAST, MAC1, ETH_P_IPV4, h("0102"), vlan=100, pcp=5)


def test_vectors_build() -> None:
    assert Ethernet(BCAST, MAC1, ETH_P_ARP, h("deadbeef")).build() == UNTAGGED
    assert build_ethernet(BCAST, MAC1, ETH_P_ARP, h("deadbeef")) == UNTAGGED
    assert Ethernet(BCAST, MAC1, ETH_P_IPV4, h("0102"), vlan=100, pcp=5).build() == TAGGED


def test_dei_bit() -> None:
    frame = h("ffffffffffff 020000000001 8100 1fff 86dd")
    v = EthernetView(frame)
    assert (v.vlan, v.pcp, v.dei, v.ethertype) == (0xFFF, 0, 1, ETH_P_IPV6)
    assert len(v.payload) == 0


def test_view_over_memoryview_slices_without_copy() -> None:
    buf = bytearray(UNTAGGED)
    v = EthernetView(memoryview(buf))
    buf[14] = 0x11
    assert v.payload[0] == 0x11


@pytest.mark.parametrize(
    "frame, field",
    [
        (b"", "length"),
        (UNTAGGED[:13], "length"),
        (h("ffffffffffff 020000000001 8100 a0"), "vlan"),  # tag cut short
        (h("ffffffffffff 020000000001 8100 a064"), "vlan"),  # no inner type
        (h("ffffffffffff 020000000001 05dc 00"), "ethertype"),  # 802.3 length 1500
        (h("ffffffffffff 020000000001 8100 a064 0040"), "ethertype"),
    ],
)
def test_malformed(frame: bytes, field: str) -> None:
    with pytest.raises(MalformedPacket) as ei:
        EthernetView(frame)
    assert ei.value.layer == "ethernet" and ei.value.field == field


def test_build_rejects_bad_tag_and_macs() -> None:
    with pytest.raises(ValueError):
        Ethernet(BCAST, MAC1, ETH_P_IPV4, vlan=4096).build()
    with pytest.raises(ValueError):
        Ethernet(BCAST, MAC1, ETH_P_IPV4, vlan=1, pcp=8).build()
    with pytest.raises(ValueError):
        Ethernet(BCAST[:5], MAC1, ETH_P_IPV4).build()


def test_pad_frame() -> None:
    f = build_ethernet(BCAST, MAC1, ETH_P_ARP, b"x" * 28)
    assert len(pad_frame(f)) == 60 and f[42:] == bytes(18)
    long = build_ethernet(BCAST, MAC1, ETH_P_ARP, b"x" * 100)
    assert pad_frame(long) == long and len(long) == 114


def test_summary() -> None:
    assert Ethernet.parse(UNTAGGED).summary() == (
        "02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff, ARP, length 18")
    assert "vlan 100 p 5" in Ethernet.parse(TAGGED).summary()


vlans = st.one_of(st.none(), st.integers(0, 0xFFF))


@settings(max_examples=200, deadline=None)
@given(macs, macs, ethertypes, vlans, st.integers(0, 7), st.integers(0, 1),
       st.binary(max_size=64))
def test_we_build_scapy_parses(dst: bytes, src: bytes, etype: int, vlan: int | None, pcp: int,
                               dei: int, payload: bytes) -> None:
    frame = Ethernet(dst, src, etype, payload, vlan, pcp, dei).build()
    p = Ether(bytes(frame))
    assert bytes.fromhex(p.dst.replace(":", "")) == dst
    assert bytes.fromhex(p.src.replace(":", "")) == src
    if vlan is None:
        assert p.type == etype
        assert bytes(p.payload) == payload
    else:
        assert p.type == ETH_P_8021Q
        q = p[Dot1Q]
        assert (q.vlan, q.prio, q.dei, q.type) == (vlan, pcp, dei, etype)
        assert bytes(q.payload) == payload


@settings(max_examples=200, deadline=None)
@given(macs, macs, ethertypes, vlans, st.integers(0, 7), st.binary(max_size=64))
def test_scapy_builds_we_parse(dst: bytes, src: bytes, etype: int, vlan: int | None, pcp: int,
                               payload: bytes) -> None:
    from scapy.packet import Raw

    if vlan is None:
        pkt = Ether(dst=dst.hex(":"), src=src.hex(":"), type=etype) / Raw(payload)
    else:
        pkt = (Ether(dst=dst.hex(":"), src=src.hex(":"))
               / Dot1Q(vlan=vlan, prio=pcp, type=etype) / Raw(payload))
    v = EthernetView(bytes(pkt))
    assert (v.dst, v.src, v.ethertype, v.vlan) == (dst, src, etype, vlan)
    assert v.pcp == (pcp if vlan is not None else 0)
    assert bytes(v.payload) == payload
    assert Ethernet.parse(bytes(pkt)).build() == bytes(pkt)
