"""Router Advertisement floods and lifetimes (issue 20, item 9; RFC 4861 §6.3.4, RFC 4862 §5.5.3).

Before: 500 RAs (each from another router, four new prefixes each) added 2,002 addresses and
routes, and source address selection walked all of them for every connection.
"""

from __future__ import annotations

import random
import struct
import time

from stacklab.stack.host import Host
from stacklab.stack.route import RA
from stacklab.wire.addr import ip_bytes
from stacklab.wire.ethernet import ETH_P_IPV6, build_ethernet
from stacklab.wire.icmpv6 import PrefixInfoOpt, build_icmpv6
from stacklab.wire.ipv6 import build_ipv6

MAC_H = bytes.fromhex("020000000001")
ALL_NODES = ip_bytes("ff02::1")
INF = 0xFFFFFFFF


def make_host() -> Host:
    h = Host("h", rng=random.Random(1))
    h.ndp.dad_transmits = 0
    h.add_interface("eth0", MAC_H)
    h.frames_to_send()
    return h


def ra(router: int, *pios: tuple[str, int, int], lifetime: int = 1800, plen: int = 64) -> bytes:
    src = ip_bytes("fe80::") [:8] + struct.pack("!Q", router)
    mac = b"\x02\x77" + router.to_bytes(4, "big")
    body = bytes([64, 0]) + lifetime.to_bytes(2, "big") + bytes(8)
    for prefix, valid, preferred in pios:
        body += PrefixInfoOpt(plen, True, True, valid, preferred, ip_bytes(prefix)).encode()
    msg = build_icmpv6(src, ALL_NODES, 134, 0, body)
    return bytes(build_ethernet(bytes.fromhex("333300000001"), mac, ETH_P_IPV6,
                                build_ipv6(src, ALL_NODES, 58, msg, 255)))


def ra_routes(h: Host) -> list:
    return [r for r in h.routes if r.proto == RA and r.plen]


def slaac(h: Host) -> list[str]:
    return [a for a in h.addresses(6) if not a.startswith("fe80")]


def test_500_ras_stay_within_the_limits():
    h = make_host()
    for i in range(500):
        pios = [(f"2001:db8:{i:x}:{k:x}::", 86400, 14400) for k in range(4)]
        h.receive_frame(0, ra(i + 1, *pios), 1.0 + i * 0.01)
    nd = h.ndp
    assert len(h.interfaces[0].v6) <= nd.max_addresses  # link-local + SLAAC: 16 in all
    assert len(slaac(h)) == nd.max_addresses - 1
    assert len(ra_routes(h)) <= nd.max_prefixes
    assert h.counters["drop.ndp.max_addresses"] > 0 and h.counters["drop.ndp.max_prefixes"] > 0
    assert len(h.routes) <= nd.max_prefixes + 1  # and one default route
    # source selection over the few addresses left stays quick
    dst = ip_bytes("2001:db8:ffff::1")
    t0 = time.perf_counter()
    for _ in range(2000):
        h.source_address_for(dst)
    assert (time.perf_counter() - t0) / 2000 < 200e-6


def test_prefix_lifetime_rules():
    h = make_host()
    # preferred > valid: the option is ignored (RFC 4862 §5.5.3 c)
    h.receive_frame(0, ra(1, ("2001:db8:1::", 100, 200)), 1.0)
    # valid 0 for a prefix we do not know: ignored (RFC 4861 §6.3.4, RFC 4862 §5.5.3 d)
    h.receive_frame(0, ra(1, ("2001:db8:2::", 0, 0)), 1.0)
    assert slaac(h) == [] and ra_routes(h) == []
    assert h.counters["drop.ndp.prefix_lifetime"] == 1
    # a prefix valid one day: its address and on-link route
    h.receive_frame(0, ra(1, ("2001:db8:3::", 86400, 3600)), 10.0)
    (addr,) = slaac(h)
    a6 = next(x for x in h.interfaces[0].v6 if x.addr == ip_bytes(addr))
    assert a6.valid_until == 10.0 + 86400
    # RFC 4862 §5.5.3 e, the two-hour rule: a forged RA cannot shorten it below 2 hours...
    h.receive_frame(0, ra(1, ("2001:db8:3::", 60, 30)), 20.0)
    assert a6.valid_until == 20.0 + 7200
    # ...nor at all once 2 hours or less remain
    h.receive_frame(0, ra(1, ("2001:db8:3::", 60, 30)), 30.0)
    assert a6.valid_until == 20.0 + 7200
    # a longer lifetime is always taken
    h.receive_frame(0, ra(1, ("2001:db8:3::", 9000, 30)), 40.0)
    assert a6.valid_until == 40.0 + 9000
    # preferred lifetime over: deprecated (still ours, not chosen as a source while another is)
    h.handle_timer(100.0)
    assert a6.state == "deprecated" and addr in slaac(h)
    # the on-link route lives as long as its valid lifetime, then route and address go
    h.handle_timer(40.0 + 9000)
    assert slaac(h) == [] and ra_routes(h) == []
    assert ip_bytes(addr) not in h.local6


def test_an_ra_with_valid_zero_removes_a_known_on_link_prefix_but_not_the_address():
    h = make_host()
    h.receive_frame(0, ra(1, ("2001:db8:3::", INF, INF)), 1.0)
    assert len(ra_routes(h)) == 1 and len(slaac(h)) == 1
    h.receive_frame(0, ra(1, ("2001:db8:3::", 0, 0)), 2.0)
    assert ra_routes(h) == []  # RFC 4861 §6.3.4: times out at once
    assert len(slaac(h)) == 1  # the two-hour rule keeps the address
    assert h.get_timer() is not None
