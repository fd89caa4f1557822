"""The IPv6 address helpers of wire/addr.py, on the RFCs' own examples."""

from __future__ import annotations

import pytest

from stacklab.wire.addr import ip6_bytes, is_link_local, mac_str, multicast_mac, solicited_node


@pytest.mark.parametrize(("addr", "link_local"), [
    ("fe80::1", True), ("fe80::200:ff:fe00:1", True), ("febf:ffff::1", True),  # all of fe80::/10
    ("fec0::1", False), ("fe7f::1", False), ("ff02::1", False), ("2001:db8::1", False),
    ("::1", False),
])
def test_is_link_local_is_fe80_slash_10(addr: str, link_local: bool) -> None:
    assert is_link_local(ip6_bytes(addr)) is link_local  # RFC 4291 §2.5.6


def test_solicited_node_keeps_the_low_24_bits() -> None:
    # RFC 4291 §2.7.1: "the IPv6 address 4037::01:800:200E:8C6C [has] the solicited-node
    # multicast address FF02::1:FF0E:8C6C"
    assert solicited_node(ip6_bytes("4037::01:800:200E:8C6C")) == ip6_bytes("ff02::1:ff0e:8c6c")


def test_multicast_mac_is_33_33_and_the_low_32_bits() -> None:
    # RFC 2464 §7: 33:33 followed by the last four octets of the multicast address
    assert mac_str(multicast_mac(ip6_bytes("ff02::1"))) == "33:33:00:00:00:01"
    assert mac_str(multicast_mac(ip6_bytes("ff02::1:ff0e:8c6c"))) == "33:33:ff:0e:8c:6c"
