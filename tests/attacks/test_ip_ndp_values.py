"""Out-of-range values in NDP/ICMP messages are dropped and counted, never raised (issue 20, 1).

The messages are well formed on the wire (right length, checksum, hop limit 255, link-local
source): only their field values are hostile. Before the fix an RA whose prefix option said
``/200`` raised ``ValueError: negative shift count`` in route masking and stopped the run.
"""

from __future__ import annotations

import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from stacklab.stack.host import Host
from stacklab.stack.router import Router
from stacklab.wire.addr import ip_bytes
from stacklab.wire.ethernet import ETH_P_IPV4, ETH_P_IPV6, build_ethernet
from stacklab.wire.icmpv4 import build_icmpv4
from stacklab.wire.icmpv6 import PrefixInfoOpt, SourceLinkAddrOpt, build_icmpv6
from stacklab.wire.ipv4 import build_ipv4
from stacklab.wire.ipv6 import build_ipv6

MAC_H = bytes.fromhex("020000000001")
MAC_P = bytes.fromhex("020000000099")
LL_P = ip_bytes("fe80::99")
ALL_NODES = ip_bytes("ff02::1")
H4, P4 = ip_bytes("10.0.0.1"), ip_bytes("10.0.0.2")
H6 = ip_bytes("fd00::1")


def make_host(cls: type[Host] = Host) -> Host:
    h = cls("h", rng=random.Random(1))
    h.ndp.dad_transmits = 0
    h.add_interface("eth0", MAC_H)
    h.add_address(0, "10.0.0.1/24")
    h.add_address(0, "fd00::1/64")
    h.frames_to_send()
    return h


def nd_frame(icmp_type: int, body: bytes, src: bytes = LL_P, dst: bytes = ALL_NODES,
             code: int = 0) -> bytes:
    msg = build_icmpv6(src, dst, icmp_type, code, body)
    mac = bytes.fromhex("333300000001") if dst[0] == 0xFF else MAC_H
    return bytes(build_ethernet(mac, MAC_P, ETH_P_IPV6, build_ipv6(src, dst, 58, msg, 255)))


def ra_body(*opts: bytes, lifetime: int = 1800) -> bytes:
    return bytes([64, 0]) + lifetime.to_bytes(2, "big") + bytes(8) + b"".join(opts)


def test_ra_prefix_length_over_128_is_dropped_and_counted():
    h = make_host()
    routes = len(h.routes)
    for plen in (129, 200, 255):
        pio = PrefixInfoOpt(plen, True, True, 3600, 1800, ip_bytes("fd00:bad::")).encode()
        h.receive_frame(0, nd_frame(134, ra_body(pio)), 1.0)
    h.handle_timer(2.0)
    assert h.counters["drop.ndp.prefix_length"] == 3
    assert len(h.routes) == routes + 1  # the default route via the router, nothing else
    assert not any(a.startswith("fd00:bad") for a in h.addresses(6))


def test_nd_link_layer_address_of_the_wrong_length_is_dropped():
    """RFC 4861 §4.6.1: on Ethernet the option carries 6 bytes; Linux drops the message
    (``ndisc_opt_addr_data``). A 14-byte "MAC" must not enter the cache."""
    h = make_host()
    bad = SourceLinkAddrOpt(bytes(range(14))).encode()
    ns = bytes(4) + H6 + bad
    h.receive_frame(0, nd_frame(135, ns, src=ip_bytes("fd00::2"), dst=H6), 1.0)
    h.receive_frame(0, nd_frame(134, ra_body(bad)), 1.0)
    assert h.counters["drop.ndp.lladdr_length"] == 2
    assert h.neighbors.lookup("fd00::2") is None and h.neighbors.lookup("fe80::99") is None
    assert h.frames_to_send() == []


def test_ra_multicast_or_link_local_prefix_is_ignored():
    h = make_host()
    before = h.addresses(6)
    for p in ("ff02::", "fe80::"):
        pio = PrefixInfoOpt(64, True, True, 3600, 1800, ip_bytes(p)).encode()
        h.receive_frame(0, nd_frame(134, ra_body(pio)), 1.0)
    assert not any(r.dest_str().startswith(("ff02", "fe80")) for r in h.routes)
    assert h.addresses(6) == before
    assert h.counters["drop.ndp.prefix_scope"] == 2


_OPT = st.one_of(
    st.builds(lambda t, n, data: bytes([t, n]) + data[:max(0, n * 8 - 2)].ljust(
        max(0, n * 8 - 2), b"\0"), st.integers(0, 255), st.integers(1, 5), st.binary(max_size=38)),
    st.builds(lambda plen, fl, v, p, pre: struct.pack("!BBBBIII16s", 3, 4, plen, fl, v, p, 0, pre),
              st.integers(0, 255), st.integers(0, 255),
              st.sampled_from([0, 1, 7200, 7201, 0xFFFFFFFF]),
              st.sampled_from([0, 1, 7200, 0xFFFFFFFF]),
              st.sampled_from([bytes(16), ip_bytes("fd00:1::"), ip_bytes("ff02::"),
                               ip_bytes("fe80::"), ip_bytes("2001:db8::1")])),
    st.builds(lambda mtu: struct.pack("!BBHI", 5, 1, 0, mtu),
              st.sampled_from([0, 68, 1279, 1280, 1500, 9000, 0xFFFFFFFF])),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([133, 134, 135, 136, 137]), st.binary(min_size=4, max_size=36),
       st.lists(_OPT, max_size=5), st.sampled_from([LL_P, ip_bytes("fd00::2"), bytes(16)]),
       st.sampled_from([ALL_NODES, H6, ip_bytes("ff02::1:ff00:1")]), st.booleans())
def test_any_nd_message_values_never_raise(icmp_type, fixed, opts, src, dst, router):
    h = make_host(Router if router else Host)
    h.receive_frame(0, nd_frame(icmp_type, fixed + b"".join(opts), src=src, dst=dst), 1.0)
    h.handle_timer(8000.0)
    h.frames_to_send()


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 255), st.integers(0, 255), st.binary(min_size=4, max_size=4),
       st.binary(max_size=60))
def test_any_icmp_error_values_never_raise(t, code, rest, quote):
    h = make_host()
    h.interfaces[0].arp.update(P4, MAC_P, 0.0, solicited=True)
    msg = build_icmpv4(t, code, rest, quote)
    h.receive_frame(0, bytes(build_ethernet(MAC_H, MAC_P, ETH_P_IPV4,
                                            build_ipv4(P4, H4, 1, msg))), 1.0)
    msg6 = build_icmpv6(LL_P, H6, t, code, rest + b"\x60" + quote)
    h.receive_frame(0, bytes(build_ethernet(MAC_H, MAC_P, ETH_P_IPV6,
                                            build_ipv6(LL_P, H6, 58, msg6))), 1.0)
    h.frames_to_send()
