"""Spoofed ICMP errors against live connections (RFC 5927): an error whose quoted segment is
not in flight (SEQ outside SND.UNA..SND.NXT) is ignored; hard errors (unreachable, parameter
problem) do not kill a synchronized connection (RFC 1122 §4.2.3.9: soft errors); a Packet Too
Big / Fragmentation Needed does not shrink it unless it quotes data in flight."""

from __future__ import annotations

import random
import struct

import pytest

from stacklab.stack.tcp.fsm import State
from stacklab.wire.icmpv4 import build_icmpv4
from stacklab.wire.icmpv6 import build_icmpv6
from stacklab.wire.ipv4 import build_ipv4
from stacklab.wire.ipv6 import build_ipv6
from stacklab.wire.proto import PROTO_ICMP, PROTO_ICMPV6
from stacklab.wire.tcp import ACK

from ..fuzz.frames import R04, R06, eth, tcp4, tcp6
from .common import Bench, live_tcb

# (type, code, the 4 bytes after the checksum) per family
V4_ERRORS = {"net-unreach": (3, 0, b"\0" * 4), "host-unreach": (3, 1, b"\0" * 4),
             "proto-unreach": (3, 2, b"\0" * 4), "port-unreach": (3, 3, b"\0" * 4),
             "admin-prohibited": (3, 13, b"\0" * 4),
             "frag-needed-576": (3, 4, struct.pack("!HH", 0, 576)),
             "frag-needed-68": (3, 4, struct.pack("!HH", 0, 68)),
             "ttl-exceeded": (11, 0, b"\0" * 4), "param-problem": (12, 0, b"\x14\0\0\0"),
             "source-quench": (4, 0, b"\0" * 4)}
V6_ERRORS = {"no-route": (1, 0, bytes(4)), "addr-unreach": (1, 3, bytes(4)),
             "port-unreach": (1, 4, bytes(4)), "admin": (1, 1, bytes(4)),
             "ptb-1280": (2, 0, struct.pack("!I", 1280)), "ptb-600": (2, 0, struct.pack("!I", 600)),
             "hop-limit": (3, 0, bytes(4)), "param-problem": (4, 0, struct.pack("!I", 6))}


def icmp_error(tcb, kind: str, quoted_seq: int) -> bytes:
    """An ICMP error from R quoting a segment A sent on ``tcb`` with ``quoted_seq``."""
    if len(tcb.local_ip) == 4:
        t, c, rest = V4_ERRORS[kind]
        q = tcp4(tcb.local_ip, tcb.remote_ip, tcb.local_port, tcb.remote_port, quoted_seq,
                 tcb.rcv_nxt, ACK, bytes(1000))
        return eth(build_ipv4(R04, tcb.local_ip, PROTO_ICMP, build_icmpv4(t, c, rest, q[:576])))
    t, c, rest = V6_ERRORS[kind]
    q = tcp6(tcb.local_ip, tcb.remote_ip, tcb.local_port, tcb.remote_port, quoted_seq,
             tcb.rcv_nxt, ACK, bytes(1000))
    return eth(build_ipv6(R06, tcb.local_ip, PROTO_ICMPV6,
                          build_icmpv6(R06, tcb.local_ip, t, c, rest + q[:1232])))


@pytest.mark.parametrize("name,kind", [("http", k) for k in V4_ERRORS]
                         + [("ssh", k) for k in V6_ERRORS])
def test_spoofed_icmp_error_neither_kills_nor_shrinks_a_connection(name, kind):
    b = Bench()
    tcb = live_tcb(b, name)
    mss, pmtu = tcb.snd_mss, b.a.path_mtu(tcb.remote_ip)
    rng = random.Random(kind)
    for _ in range(200):  # blind guesses of the quoted sequence number, none in flight
        b.inject("A", icmp_error(tcb, kind, (tcb.snd_una + 0x10000000 + rng.getrandbits(28))
                             & 0xFFFFFFFF))  # outside SND.UNA..SND.MAX, modulo 2**32
    assert tcb.state is State.ESTABLISHED
    assert (tcb.snd_mss, b.a.path_mtu(tcb.remote_ip)) == (mss, pmtu)
    b.verify()


@pytest.mark.parametrize("name,kind", [("http", "host-unreach"), ("http", "port-unreach"),
                                       ("ssh", "addr-unreach"), ("ssh", "port-unreach")])
def test_hard_error_quoting_data_in_flight_is_soft_for_a_synchronized_connection(name, kind):
    """Even an error that quotes the right sequence number (an on-path attacker, or a real
    transient failure) does not abort an ESTABLISHED connection (RFC 5927 §4.1, RFC 1122)."""
    b = Bench()
    tcb = live_tcb(b, name)
    lv = next(lv for lv in b.conns if lv.name == name)
    host = b.a
    tcb.send(b"in flight" * 100)
    host.tcp.kick(tcb)
    host.tcp.poll(b.now)
    host.frames_to_send()  # lost on the way: the data stays in flight
    b.inject("A", icmp_error(tcb, kind, tcb.snd_una))
    assert tcb.state is State.ESTABLISHED
    d = "c2s" if tcb is lv.client else "s2c"
    lv.sent[d] += b"in flight" * 100
    b.verify()
