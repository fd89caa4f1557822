"""stacklab's DHCPv6 client (RFC 8415) against a real server over TAP: dnsmasq in the test's
namespace hands out an address from its range with DNS servers and a search domain, stateful
(SOLICIT, ADVERTISE, REQUEST, REPLY) and stateless (INFORMATION-REQUEST, REPLY); the lease is
in dnsmasq's lease file with our DUID."""

from __future__ import annotations

import ipaddress
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .linux import Netns, wait_for
from .stackhost import LINUX6, StackOnTap, pcap_file, start_stack, tap_in

pytestmark = pytest.mark.skipif(shutil.which("dnsmasq") is None,
                                reason="needs dnsmasq (dnsmasq-base): make sysdeps")

FIRST, LAST = "fd00:5ac:0:1::1000", "fd00:5ac:0:1::10ff"


def _dnsmasq(ns: Netns, tmp_path: Any) -> str:
    """dnsmasq as a DHCPv6 server only (no DNS: --port=0) on tap0; its lease file."""
    leases = str(tmp_path / "dnsmasq.leases")
    ns.popen("dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0", "--user=root",
             "--interface=tap0", "--bind-interfaces", f"--dhcp-leasefile={leases}",
             f"--pid-file={tmp_path}/dnsmasq.pid", f"--dhcp-range={FIRST},{LAST},64,600",
             f"--dhcp-option=option6:dns-server,[{LINUX6}]",
             "--dhcp-option=option6:domain-search,lab.example", "--log-dhcp")
    ns.wait_listening(547, "u")
    return leases


def _client(make_netns: Callable[[], Netns], tmp_path: Any) -> tuple[Netns, StackOnTap, str]:
    ns = make_netns()
    tap = tap_in(ns, ipv4=None)  # Linux: fd00:5ac:0:1::1/64, the server
    leases = _dnsmasq(ns, tmp_path)
    h = start_stack([(tap, [])], pcap_file(tmp_path))  # stacklab: its link-local address only
    return ns, h, leases


def test_our_client_gets_an_address_and_dns_from_dnsmasq(make_netns: Callable[[], Netns],
                                                         tmp_path: Any) -> None:
    ns, h, leases = _client(make_netns, tmp_path)
    client = h.call(h.node.dhcp6.client, 0)
    h.call(lambda: client.start(h.node.now()))
    wait_for(lambda: h.call(lambda: client.state) == "BOUND", 20.0, "a lease from dnsmasq")
    lease = h.call(client.summary)
    assert client.history == ["SOLICIT", "ADVERTISE", "REQUEST", "REPLY"]
    addr = ipaddress.IPv6Address(lease["address"])
    assert ipaddress.IPv6Address(FIRST) <= addr <= ipaddress.IPv6Address(LAST)
    assert lease["valid"] == 600 and 0 < lease["t1"] <= lease["t2"] < 600
    assert lease["dns"] == [LINUX6] and lease["domains"] == ["lab.example"]
    assert h.call(lambda: h.node.resolv.nameservers) == [LINUX6]
    assert str(addr) in h.call(lambda: h.node.addresses(6))
    duid = h.call(lambda: client.duid.hex(":"))
    wait_for(lambda: str(addr) in Path(leases).read_text(), 5.0, "the lease in dnsmasq's file")
    assert duid in Path(leases).read_text()  # dnsmasq recorded our DUID (RFC 8415 §11)
    assert h.stop() == []


def test_stateless_dhcpv6_gets_dns_from_dnsmasq(make_netns: Callable[[], Netns],
                                                tmp_path: Any) -> None:
    ns, h, _ = _client(make_netns, tmp_path)
    client = h.call(h.node.dhcp6.client, 0)
    h.call(lambda: client.start(h.node.now(), stateful=False))
    wait_for(lambda: h.call(lambda: client.state) == "INFORMED", 20.0, "a REPLY from dnsmasq")
    assert client.history == ["INFORMATION-REQUEST", "REPLY"]
    lease = h.call(client.summary)
    assert lease["dns"] == [LINUX6] and lease["domains"] == ["lab.example"]
    assert "address" not in lease
    assert h.stop() == []
