"""host.sysctl: Linux's names and units over the host's knobs (stacklab.stack.sysctl)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from stacklab.errors import StacklabError
from stacklab.stack.host import Host
from stacklab.stack.router import Router
from stacklab.stack.sysctl import TABLE, BadSysctlValue, UnknownSysctl
from stacklab.wire.addr import ip_bytes
from stacklab.wire.ethernet import EthernetView
from stacklab.wire.ipv4 import IPv4View
from stacklab.wire.tcp import TcpView

MAC = bytes.fromhex("020000000001")
PEER4 = ip_bytes("10.0.0.2")


def make_host(cls: type[Host] = Host) -> Host:
    h = cls("h", rng=random.Random(1))
    h.add_interface("eth0", MAC)
    h.add_address(0, "10.0.0.1/24")
    h.interfaces[0].arp.add_permanent(PEER4, bytes.fromhex("020000000099"), 0.0)
    h.frames_to_send()
    return h


Check = Callable[[Host], Any]
# every writable name: (value written, value read back, the knob it reached, its new value)
ROUND_TRIPS: dict[str, tuple[str | int, str, Check, Any]] = {
    "net.ipv4.tcp_timestamps": (0, "0", lambda h: h.tcp.config.timestamps, False),
    "net.ipv4.tcp_sack": ("0", "0", lambda h: h.tcp.config.sack, False),
    "net.ipv4.tcp_window_scaling": (False, "0", lambda h: h.tcp.config.window_scaling, False),
    "net.ipv4.tcp_rmem": ("4096 87380 262144", "4096 87380 262144",
                          lambda h: h.tcp.config.rmem, (4096, 87380, 262144)),
    "net.ipv4.tcp_wmem": ("4096 65536 4194304", "4096 65536 4194304",
                          lambda h: h.tcp.config.wmem, (4096, 65536, 4194304)),
    "net.ipv4.tcp_moderate_rcvbuf": (0, "0", lambda h: h.tcp.config.moderate_rcvbuf, False),
    "net.ipv4.tcp_syn_retries": ("3", "3", lambda h: h.tcp.config.syn_retries, 3),
    "net.ipv4.tcp_synack_retries": ("2", "2", lambda h: h.tcp.config.synack_retries, 2),
    "net.ipv4.tcp_slow_start_after_idle": ("0", "0",
                                           lambda h: h.tcp.config.slow_start_after_idle, False),
    "net.ipv4.tcp_min_snd_mss": ("536", "536", lambda h: h.tcp.config.min_snd_mss, 536),
    "net.ipv4.tcp_recovery": ("0", "0", lambda h: h.tcp.config.recovery, 0),
    "net.ipv4.tcp_early_retrans": ("0", "0", lambda h: h.tcp.config.early_retrans, 0),
    "net.ipv4.tcp_frto": ("0", "0", lambda h: h.tcp.config.frto, 0),
    "net.ipv4.tcp_min_tso_segs": ("10", "10", lambda h: h.tcp.config.min_tso_segs, 10),
    "net.ipv4.tcp_retries2": (8, "8", lambda h: h.tcp.config.max_retries, 8),
    "net.ipv4.tcp_fin_timeout": ("30", "30", lambda h: h.tcp.config.fin_wait_2_timeout, 30.0),
    "net.ipv4.tcp_keepalive_time": ("600", "600", lambda h: h.tcp.config.keepidle, 600.0),
    "net.ipv4.tcp_keepalive_intvl": ("10", "10", lambda h: h.tcp.config.keepintvl, 10.0),
    "net.ipv4.tcp_keepalive_probes": ("4", "4", lambda h: h.tcp.config.keepcnt, 4),
    "net.ipv4.tcp_notsent_lowat": ("131072", "131072",
                                   lambda h: h.tcp.config.notsent_lowat_default, 131072),
    "net.ipv4.tcp_mtu_probing": ("2", "2", lambda h: h.tcp.config.mtu_probing, "always"),
    "net.ipv4.tcp_ecn": ("1", "1", lambda h: h.tcp.config.ecn, 1),
    "net.ipv4.tcp_ecn_option": ("1", "1", lambda h: h.tcp.config.ecn_option, 1),
    "net.ipv4.tcp_ecn_option_beacon": ("0", "0", lambda h: h.tcp.config.ecn_option_beacon, 0),
    "net.ipv4.tcp_ecn_fallback": ("0", "0", lambda h: h.tcp.config.ecn_fallback, False),
    "net.ipv4.tcp_base_mss": ("512", "512", lambda h: h.tcp.config.base_mss, 512),
    "net.ipv4.tcp_rto_min_us": ("50000", "50000", lambda h: h.tcp.config.min_rto, 0.05),
    "net.ipv4.tcp_rto_max_ms": ("60000", "60000", lambda h: h.tcp.config.max_rto, 60.0),
    "net.ipv4.tcp_congestion_control": ("reno", "reno", lambda h: h.tcp.config.congestion,
                                        "reno"),
    "net.core.default_qdisc": ("fq", "fq", lambda h: h.tcp.config.qdisc, "fq"),
    "net.ipv4.tcp_syncookies": ("0", "0", lambda h: h.tcp.syncookies, False),
    "net.ipv4.tcp_max_syn_backlog": ("64", "64", lambda h: h.tcp.max_syn_backlog, 64),
    "net.ipv4.tcp_challenge_ack_limit": ("100", "100", lambda h: h.tcp.challenge_ack_limit,
                                         100),
    "net.ipv4.tcp_invalid_ratelimit": ("250", "250", lambda h: h.tcp.config.invalid_ratelimit,
                                       0.25),
    "net.ipv4.tcp_orphan_retries": ("3", "3", lambda h: h.tcp.config.orphan_retries, 3),
    "net.ipv4.tcp_fastopen": ("0x403", "1027", lambda h: h.tcp.tfo.mode, 0x403),
    "net.ipv4.tcp_fastopen_key": ("A0BF63F7-ed803d81-cd641d30-cebc4a90",
                                  "a0bf63f7-ed803d81-cd641d30-cebc4a90",
                                  lambda h: h.tcp.tfo.key.hex(),
                                  "f763bfa0813d80ed301d64cd904abcce"),  # words little-endian
    "net.ipv4.tcp_max_orphans": ("100", "100", lambda h: h.tcp.max_orphans, 100),
    "net.ipv4.ip_default_ttl": ("32", "32", lambda h: h.default_ttl, 32),
    "net.ipv4.conf.all.send_redirects": ("0", "0", lambda h: h.redirects.send_redirects, False),
    "net.ipv4.conf.all.accept_redirects": ("0", "0", lambda h: h.redirects.accept_redirects,
                                           False),
    "net.ipv6.conf.all.hop_limit": ("200", "200", lambda h: h.hop_limit6, 200),
    "net.ipv4.ipfrag_time": ("10", "10", lambda h: h.ipv4.reasm.timeout, 10.0),
    "net.ipv4.ipfrag_high_thresh": ("1048576", "1048576", lambda h: h.ipv4.reasm.high_thresh,
                                    1 << 20),
    "net.ipv4.ipfrag_low_thresh": ("524288", "524288", lambda h: h.ipv4.reasm.low_thresh,
                                   1 << 19),
    "net.ipv6.ip6frag_time": ("20", "20", lambda h: h.ipv6.reasm.timeout, 20.0),
    "net.ipv6.ip6frag_low_thresh": ("32768", "32768", lambda h: h.ipv6.reasm.low_thresh,
                                    32768),
    "net.ipv6.conf.all.max_addresses": ("4", "4", lambda h: h.ndp.max_addresses, 4),
    "net.ipv6.ip6frag_high_thresh": ("65536", "65536", lambda h: h.ipv6.reasm.high_thresh,
                                     65536),
    "net.ipv4.route.mtu_expires": ("120", "120", lambda h: h.pmtu.expires, 120.0),
    "net.ipv4.route.min_pmtu": ("576", "576", lambda h: h.pmtu.min_v4, 576),
    "net.ipv4.icmp_ratelimit": ("250", "250", lambda h: h.icmp.peer_rate, 4.0),
    "net.ipv4.icmp_msgs_per_sec": ("100", "100", lambda h: h.icmp.rate_global.rate, 100),
    "net.ipv4.icmp_msgs_burst": ("10", "10", lambda h: h.icmp.rate_global.burst, 10),
    "net.ipv4.icmp_echo_ignore_broadcasts": ("0", "0", lambda h: h.icmp.echo_ignore_broadcasts,
                                             False),
    "net.ipv6.conf.all.accept_ra": ("0", "0", lambda h: h.ndp.accept_ra, False),
    "net.ipv6.conf.all.dad_transmits": ("3", "3", lambda h: h.ndp.dad_transmits, 3),
    "net.ipv6.conf.all.router_solicitations": ("1", "1", lambda h: h.ndp.rs_max, 1),
    "net.ipv6.conf.all.router_solicitation_interval": ("2", "2", lambda h: h.ndp.rs_interval,
                                                       2.0),
}
for _fam, _cache in ((4, "arp"), (6, "nd")):
    _p = f"net.ipv{_fam}.neigh.default."

    def _param(field: str, cache: str = _cache) -> Check:
        return lambda h: getattr(getattr(h.interfaces[0], cache).params, field)

    ROUND_TRIPS |= {
        _p + "base_reachable_time_ms": ("15000", "15000", _param("base_reachable_time"), 15.0),
        _p + "retrans_time_ms": ("250", "250", _param("retrans_time"), 0.25),
        _p + "delay_first_probe_time": ("2", "2", _param("delay_first_probe_time"), 2.0),
        _p + "mcast_solicit": ("5", "5", _param("mcast_solicit"), 5),
        _p + "ucast_solicit": ("1", "1", _param("ucast_solicit"), 1),
        _p + "unres_qlen": ("10", "10", _param("queue_len"), 10),
        _p + "gc_stale_time": ("120", "120", _param("gc_stale_time"), 120.0),
        _p + "gc_thresh1": ("256", "256", _param("gc_thresh1"), 256),
        _p + "gc_thresh2": ("600", "600", _param("gc_thresh2"), 600),
        _p + "gc_thresh3": ("2048", "2048", _param("gc_thresh3"), 2048),
    }
# Linux behaviour stacklab has built in, and what the host's nature decides: (value, Linux's)
FIXED = {"net.ipv4.tcp_dsack": "1", "net.ipv4.tcp_reordering": "3",
         "net.ipv4.tcp_fack": "0", "net.ipv4.ip_forward": "0",
         "net.ipv6.conf.all.forwarding": "0"}


def test_every_name_is_tested() -> None:
    assert set(ROUND_TRIPS) | set(FIXED) == set(TABLE)


@pytest.mark.parametrize("name", sorted(ROUND_TRIPS))
def test_every_name_round_trips(name: str) -> None:
    h = make_host()
    value, shown, knob, new = ROUND_TRIPS[name]
    before = h.sysctl[name]
    assert before != shown and knob(h) != new
    h.sysctl[name] = value
    assert h.sysctl[name] == shown
    assert knob(h) == new
    h.sysctl[name] = before  # and back: the write is not one-way
    assert h.sysctl[name] == before and knob(h) != new


@pytest.mark.parametrize("name", sorted(FIXED))
def test_fixed_names_take_only_their_value(name: str) -> None:
    h = make_host()
    assert h.sysctl[name] == FIXED[name]
    h.sysctl[name] = FIXED[name]  # sysctl -w with the value it has: accepted
    with pytest.raises(BadSysctlValue, match=name):
        h.sysctl[name] = "7"


def test_a_router_forwards_and_says_so() -> None:
    r = make_host(Router)
    assert r.sysctl["net.ipv4.ip_forward"] == r.sysctl["net.ipv6.conf.all.forwarding"] == "1"
    r.sysctl["net.ipv4.ip_forward"] = 1
    with pytest.raises(BadSysctlValue, match=r"net.ipv4.ip_forward: read-only.*Router"):
        r.sysctl["net.ipv4.ip_forward"] = 0
    assert r.sysctl["net.ipv6.conf.all.accept_ra"] == "0"  # routers ignore RAs


def test_reads_are_linux_text() -> None:
    h = make_host()
    assert h.sysctl["net.ipv4.tcp_rmem"] == "4096 131072 6291456"  # Linux's defaults
    assert h.sysctl["net.ipv4.tcp_wmem"] == "4096 16384 4194304"
    assert h.sysctl["net.ipv4.tcp_mtu_probing"] == "1"
    assert h.sysctl["net.ipv4.tcp_rto_min_us"] == "200000"
    assert h.sysctl["net.ipv4.neigh.default.base_reachable_time_ms"] == "30000"
    assert dict(h.sysctl)["net.ipv4.tcp_sack"] == "1"  # a Mapping: iterates over every name
    assert len(h.sysctl) == len(TABLE) and "net.ipv4.tcp_sack" in h.sysctl


def test_slashes_hex_and_partial_vectors_as_linux() -> None:
    h = make_host()
    h.sysctl["/proc/sys/net/ipv4/tcp_sack"] = "0x0"
    assert h.sysctl["net/ipv4/tcp_sack"] == "0" and not h.tcp.config.sack
    h.sysctl["net.ipv4.tcp_rmem"] = "8192"  # proc_dointvec: only the first field changes
    assert h.sysctl["net.ipv4.tcp_rmem"] == "8192 131072 6291456"
    assert h.tcp.config.rmem == (8192, 131072, 6291456)
    h.tcp.config = h.tcp.config.replace(rmem=(8192, 100000, 6291456))  # set by other means
    assert h.sysctl["net.ipv4.tcp_rmem"] == "8192 100000 6291456"


@pytest.mark.parametrize(("name", "value", "why"), [
    ("net.ipv4.tcp_sack", "2", "expected 0 or 1"),
    ("net.ipv4.tcp_sack", "yes", "expected 0 or 1"),
    ("net.ipv4.ip_default_ttl", "0", "expected an integer 1..255"),
    ("net.ipv4.ip_default_ttl", 256, "expected an integer 1..255"),
    ("net.ipv4.tcp_fin_timeout", "1.5", "expected seconds"),
    ("net.ipv4.tcp_fin_timeout", "-1", "expected at least 0 seconds"),
    ("net.ipv4.tcp_rmem", "4096 0 8192", "one to three positive integers"),
    ("net.ipv4.tcp_rmem", "1 2 3 4", "one to three positive integers"),
    ("net.ipv4.tcp_mtu_probing", "3", "expected one of 0, 1, 2"),
    ("net.ipv4.tcp_congestion_control", "westwood", "unknown congestion control 'westwood'"),
    ("net.ipv4.icmp_ratelimit", "0", "no unlimited setting"),
    ("net.ipv4.tcp_syn_retries", 1.5, "as text or an int"),
])
def test_bad_values_are_refused_naming_the_sysctl(name: str, value: Any, why: str) -> None:
    h = make_host()
    before = h.sysctl[name]
    with pytest.raises(BadSysctlValue) as info:
        h.sysctl[name] = value
    assert str(info.value).startswith(f"{name}: ") and why in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, StacklabError)
    assert h.sysctl[name] == before  # nothing changed


def test_unknown_names_are_refused_naming_them() -> None:
    h = make_host()
    for name in ("net.ipv4.tcp_autocorking", "net.ipv4.tcp_sak"):
        with pytest.raises(UnknownSysctl) as info:
            h.sysctl[name] = 0
        assert isinstance(info.value, KeyError) and isinstance(info.value, StacklabError)
        assert str(info.value).startswith(f"{name}: no stacklab knob for it")
        with pytest.raises(KeyError, match=name):
            h.sysctl[name]  # noqa: B018 - reading raises too
    assert "did you mean net.ipv4.tcp_sack?" in str(info.value)


def _syn(h: Host) -> tuple[IPv4View, TcpView]:
    h.tcp.connect(PEER4, 80, 0.0)
    (frame,) = [f for _, f in h.frames_to_send()]
    ip = IPv4View(EthernetView(bytes(frame)).payload)
    return ip, TcpView(ip.payload)


def test_tcp_settings_reach_the_next_syn() -> None:
    h = make_host()
    ip, syn = _syn(h)
    assert syn.timestamps() is not None and syn.wscale() == 7 and ip.ttl == 64  # 6 MiB max
    h.sysctl["net.ipv4.tcp_timestamps"] = 0
    h.sysctl["net.ipv4.tcp_rmem"] = "4096 131072 262144"  # a 256 KiB max: window scale 3
    h.sysctl["net.ipv4.ip_default_ttl"] = 32
    ip, syn = _syn(h)
    assert syn.timestamps() is None and syn.wscale() == 3 and ip.ttl == 32


def test_live_connections_keep_their_configuration() -> None:
    h = make_host()
    h.tcp.connect(PEER4, 80, 0.0)
    (tcb,) = h.tcp.conns.values()
    h.sysctl["net.ipv4.tcp_sack"] = 0
    assert tcb.config.sack and not h.tcp.config.sack


def test_neighbour_settings_reach_every_interface_now_and_later() -> None:
    h = make_host()
    h.sysctl["net.ipv4.neigh.default.base_reachable_time_ms"] = 2000
    h.add_interface("eth1", bytes.fromhex("020000000002"))
    for iface in h.interfaces:
        assert iface.arp.params.base_reachable_time == 2.0
        # RFC 4861 §6.3.2: ReachableTime is drawn again from the new base (0.5..1.5 x)
        assert 1.0 <= iface.arp.reachable_time <= 3.0
    assert h.interfaces[0].nd.params.base_reachable_time == 30.0  # IPv6 has its own
