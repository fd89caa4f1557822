"""IP_MTU_DISCOVER (stacklab/stack/pmtudisc.py) and IP_TOS on a TCP connection: the DF bit and
TOS byte of its IPv4 segments, and whether a Fragmentation Needed lowers its MSS (Linux
ip_dont_fragment, ip_sk_accept_pmtu, tcp_v4_mtu_reduced)."""

from __future__ import annotations

import pytest

from stacklab.stack.pmtudisc import (
    IP_PMTUDISC_DO,
    IP_PMTUDISC_DONT,
    IP_PMTUDISC_INTERFACE,
    IP_PMTUDISC_OMIT,
    IP_PMTUDISC_PROBE,
    IP_PMTUDISC_WANT,
)
from stacklab.stack.tcp.config import TcpConfig
from stacklab.stack.tcp.tcb import Tcb

from .hostframes import established, frag_needed, sent

# mode: (DF on its segments, a Fragmentation Needed lowers the MSS)
MODES = {
    IP_PMTUDISC_DONT: (False, False),
    IP_PMTUDISC_WANT: (True, True),
    IP_PMTUDISC_DO: (True, True),
    IP_PMTUDISC_PROBE: (False, True),  # TCP's ip_queue_xmit sets DF only for DO and WANT
    IP_PMTUDISC_INTERFACE: (False, False),
    IP_PMTUDISC_OMIT: (False, False),
}


@pytest.mark.parametrize("mode", MODES, ids=["dont", "want", "do", "probe", "interface", "omit"])
def test_df_and_frag_needed_by_mode(mode: int) -> None:
    df, lowers = MODES[mode]
    h, tcb, _ = established(TcpConfig(pmtudisc=mode))
    assert tcb.send(bytes(1000)) == 1000
    h.tcp.kick(tcb)
    h.tcp.poll(0.02)
    ((ip, seg),) = sent(h)
    assert (seg.payload_len, ip.df) == (1000, df)
    h.receive_frame(0, frag_needed(800, bytes(ip.buf)), 0.03)
    assert tcb.snd_mss == (800 - 40 if lowers else 1460)
    resent = sent(h)
    assert [s.payload_len for _, s in resent] == ([760, 240] if lowers else [])


def test_a_path_at_the_floor_clears_df_only_for_want() -> None:
    # Linux locks the route's MTU at net.ipv4.route.min_pmtu (552) when told of a smaller one:
    # WANT then sends without DF (routers may fragment, RFC 1191 §3); DO keeps DF
    for mode, df in ((IP_PMTUDISC_WANT, False), (IP_PMTUDISC_DO, True)):
        h, tcb, _ = established(TcpConfig(pmtudisc=mode))
        assert tcb.send(bytes(1000)) == 1000
        h.tcp.kick(tcb)
        h.tcp.poll(0.02)
        ((ip, _),) = sent(h)
        h.receive_frame(0, frag_needed(400, bytes(ip.buf)), 0.03)
        assert {ip.df for ip, _ in sent(h)} == {df}


def test_ip_tos_sets_the_tos_byte() -> None:
    h, tcb, _ = established(TcpConfig(tos=0xB8))  # DSCP EF
    assert tcb.send(bytes(100)) == 100
    h.tcp.kick(tcb)
    h.tcp.poll(0.02)
    ((ip, _),) = sent(h)
    assert ip.tos == 0xB8


def test_ipv6_packet_too_big_lowers_the_mss_whatever_ip_mtu_discover_says() -> None:
    # IP_MTU_DISCOVER is IPv4's option: an IPv6 connection still follows Packet Too Big
    tcb = Tcb(bytes(15) + b"\x01", 80, bytes(15) + b"\x02", 40000, iss=1, now=0.0,
              config=TcpConfig(pmtudisc=IP_PMTUDISC_DONT), path_mtu=1500)
    tcb.peer_mss = 1440
    tcb.set_path_mtu(1500)
    assert tcb.snd_mss == 1440
    assert tcb.on_path_mtu(1400, 0.0) and tcb.snd_mss == 1340
