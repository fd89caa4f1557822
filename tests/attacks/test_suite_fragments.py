"""Fragment attacks on A's reassembly: overlaps (RFC 5722 for IPv6; Linux drops overlapping
IPv4 fragments too), teardrop, tiny first fragments (RFC 7112), floods of fragments that never
complete (memory bounded as Linux's ipfrag_high_thresh, on real memory), and IP ID prediction
(RFC 7739)."""

from __future__ import annotations

import random

import pytest

from stacklab.wire.ipv4 import IPv4View, build_ipv4
from stacklab.wire.ipv6 import Fragment, IPv6
from stacklab.wire.proto import PROTO_TCP, PROTO_UDP
from stacklab.wire.tcp import SYN, build_tcp
from stacklab.wire.udp import build_udp

from ..fuzz.frames import A4, A6, B4, B6, B_UDP_PORT, DNS_PORT, SSH_PORT, eth, frags4, frags6
from .common import Bench, held_bytes

DATA = bytes(range(256)) * 2


def dgram(family: int, data: bytes = DATA) -> bytes:
    src, dst = (B4, A4) if family == 4 else (B6, A6)
    return bytes(build_udp(src, dst, B_UDP_PORT, DNS_PORT, data))


def delivered(b: Bench) -> list[bytes]:
    b.pump()
    return [d for d, _ in b.udp_got]


@pytest.mark.parametrize("family", [4, 6])
def test_overlapping_fragment_drops_the_whole_datagram(family):
    """RFC 5722 §4 (IPv6: MUST drop the datagram and its fragments); Linux does the same for
    IPv4 since 4.19 (commit 7969e5c40dfd)."""
    b = Bench()
    fr = frags4 if family == 4 else frags6
    src, dst = (B4, A4) if family == 4 else (B6, A6)
    pieces = fr(src, dst, PROTO_UDP, dgram(family), 0x777, size=64)
    junk = b"\xee" * 64
    if family == 4:  # bytes 56..120: overlaps the end of the first fragment
        evil = build_ipv4(src, dst, PROTO_UDP, junk, ident=0x777, mf=True, frag_offset=56)
    else:
        evil = IPv6(src, dst, PROTO_UDP, junk, ext_headers=[Fragment(56, True, 0x777)]).build()
    b.a.receive_frame(0, eth(pieces[0]), b.now)
    b.a.receive_frame(0, eth(evil), b.now)
    for p in pieces[1:]:
        b.a.receive_frame(0, eth(p), b.now)
    got = delivered(b)
    assert DATA not in got and not any(b"\xee" in d for d in got)
    b.verify()  # the next datagrams (fragmented too) get through


@pytest.mark.parametrize("family", [4, 6])
def test_teardrop_is_refused_and_harmless(family):
    """The classic: a second fragment that ends inside the first (length underflow)."""
    b = Bench()
    src, dst = (B4, A4) if family == 4 else (B6, A6)
    l4 = dgram(family)
    if family == 4:
        first = build_ipv4(src, dst, PROTO_UDP, l4[:64], ident=0x99, mf=True)
        tear = build_ipv4(src, dst, PROTO_UDP, l4[24:40], ident=0x99, frag_offset=24)
    else:
        first = IPv6(src, dst, PROTO_UDP, l4[:64], ext_headers=[Fragment(0, True, 0x99)]).build()
        tear = IPv6(src, dst, PROTO_UDP, l4[24:40], ext_headers=[Fragment(24, False, 0x99)]
                    ).build()
    for _ in range(50):
        b.a.receive_frame(0, eth(first), b.now)
        b.a.receive_frame(0, eth(tear), b.now)
    assert delivered(b) == []
    b.verify()


def test_ipv6_first_fragment_without_the_upper_layer_header_is_dropped():
    """RFC 7112 §5: a first fragment that does not hold the TCP header is dropped — here a SYN
    to A's listener split 8 + 12 bytes: A must not answer it."""
    b = Bench()
    syn = bytes(build_tcp(B6, A6, 3333, SSH_PORT, 77, 0, SYN, 65535))
    for p in frags6(B6, A6, PROTO_TCP, syn, 0x42, size=8):
        b.a.receive_frame(0, eth(p), b.now)
    answers = [bytes(f) for _, f in b.a.frames_to_send() if bytes(f)[12:14] == b"\x86\xdd"]
    assert not [f for f in answers if f[20] == PROTO_TCP]  # no SYN-ACK
    # RFC 7112 §5: a Parameter Problem, code 3 (incomplete IPv6 header chain), instead
    assert [(f[20], f[54], f[55]) for f in answers] == [(58, 4, 3)]


def fragment_flood(b: Bench, n: int) -> None:
    """``n`` first fragments (8 bytes of payload) of datagrams that never complete, from
    spoofed sources, all within the reassembly timeout."""
    rng = random.Random(3)
    for i in range(n):
        src = bytes((198, 51, rng.randrange(256), rng.randrange(1, 255)))
        b.a.receive_frame(0, eth(build_ipv4(src, A4, PROTO_UDP, bytes(8), ident=i & 0xFFFF,
                                            mf=True)), b.now + i * 1e-5)
    b.a.frames_to_send()


FRAG_HIGH_THRESH = 4 * 1024 * 1024  # Linux net.ipv4.ipfrag_high_thresh (bytes of truesize)


def test_fragment_flood_memory_is_bounded_by_real_size():
    b = Bench()
    with held_bytes() as held:
        fragment_flood(b, 20_000)
    assert held() < 2 * FRAG_HIGH_THRESH, f"{held()} bytes held by 20k tiny fragments"


@pytest.mark.slow
def test_100k_fragment_flood_memory_is_bounded_by_real_size():
    b = Bench()
    with held_bytes() as held:
        fragment_flood(b, 100_000)
    assert held() < 2 * FRAG_HIGH_THRESH, f"{held()} bytes held by 100k tiny fragments"


def test_fragment_flood_does_not_stop_legitimate_reassembly():
    b = Bench()
    fragment_flood(b, 5_000)
    b.verify()  # the bench's own fragmented datagrams, both families


def _ids_to(b: Bench, dst: bytes, n: int) -> list[int]:
    out = []
    for i in range(n):
        b.udp_a.sendto(b"x" * 10, (dst, 9), b.now + i)
        for _, f in b.a.frames_to_send():
            f = bytes(f)
            if f[12:14] == b"\x08\x00":
                out.append(IPv4View(f[14:]).ident)
    return out


def test_ip_ids_to_one_destination_do_not_reveal_the_next_to_another():
    """RFC 7739 §5 (Linux: per-destination counters chosen by a keyed hash): the attacker X
    learns A's current ID from its own traffic; it must not predict the ID of A's next
    datagram to B (and so plant a fragment in its reassembly)."""
    b = Bench()
    b.a.interfaces[0].arp.update(bytes((10, 0, 1, 66)), bytes.fromhex("0200000000ee"), b.now,
                                 solicited=True)
    seen = []
    for _ in range(20):
        x_id = _ids_to(b, bytes((10, 0, 1, 66)), 1)
        b_id = _ids_to(b, B4, 1)
        seen.append((b_id[0] - x_id[0]) & 0xFFFF)
    assert len(set(seen)) > 1 or seen[0] not in (0, 1), seen
