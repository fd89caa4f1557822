"""SYN flood: spoofed SYNs from random sources at A's listener, on virtual time. SYN cookies
(RFC 4987 §3.6, Linux tcp_syncookies=1) keep the SYN queue bounded; a legitimate client still
connects during the flood and its connection carries data; the memory A holds stays bounded."""

from __future__ import annotations

import random

import pytest

from stacklab.wire.tcp import SYN, encode_options

from ..fuzz.frames import A4, SSH_PORT, eth, tcp4
from .common import Bench, held_bytes


def flood(b: Bench, n: int, *, rate: float = 10_000.0, legit_every: int = 0) -> list[str]:
    """``n`` spoofed SYNs to A:22 at ``rate`` a second; every ``legit_every`` SYNs B opens a
    real connection and must get through. A's answers to the spoofed sources are dropped (the
    sources do not exist); R never sees them."""
    rng = random.Random(5)
    opts = encode_options(mss=1460, wscale=7, sack_permitted=True, timestamps=(1, 0))
    a = b.a
    opened = []
    for i in range(n):
        src = bytes((198, 18 + (i >> 16) % 2, rng.randrange(256), rng.randrange(1, 255)))
        a.receive_frame(0, eth(tcp4(src, A4, rng.randrange(1024, 65536), SSH_PORT,
                                    rng.getrandbits(32), 0, SYN, opts=opts)), b.now)
        a.frames_to_send()  # SYN-ACKs to nowhere
        b.now += 1 / rate
        if i % 1000 == 999:  # A's timers (SYN-ACK retransmissions of the SYN queue)
            t = a.get_timer()
            if t is not None and t <= b.now:
                a.handle_timer(b.now)
            a.frames_to_send()
        if legit_every and i % legit_every == legit_every - 1:
            lv = b.open(f"legit{i}", b.b, A4, SSH_PORT)
            opened.append(lv.name)
    return opened


def check_bounded(b: Bench, held: int, n: int) -> None:
    lst = b.a.tcp.find_listener(A4, SSH_PORT)
    assert lst is not None and len(lst.pending) <= lst.backlog
    assert len(b.a.tcp.conns) <= len(b.conns) + lst.backlog
    assert b.a.counters["tcp.syncookies.sent"] > n // 2
    assert held < 4_000_000, f"{held} bytes held after {n} spoofed SYNs"


def _flood_and_check(n: int, legit_every: int) -> None:
    b = Bench()
    with held_bytes() as held:
        opened = flood(b, n, legit_every=legit_every)
        b.advance(1.0)
    assert len(opened) == n // legit_every
    b.verify()  # every legitimate connection (and the bench's own) carries data byte-exact
    check_bounded(b, held(), n)


def test_10k_spoofed_syns_legit_clients_still_connect_memory_bounded():
    _flood_and_check(10_000, 2_500)


@pytest.mark.slow
def test_100k_spoofed_syns_legit_clients_still_connect_memory_bounded():
    _flood_and_check(100_000, 10_000)
