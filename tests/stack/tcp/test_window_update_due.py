"""``window_update_due``, written out with the receive window's offer (asked after most data
segments and ACKs), is the reference's test (``tests/stack/tcp/reference.py``) on small random
states, where its edges (an offer exactly at the window open now, or exactly min(buffer/2, MSS)
beyond it, or exactly twice it) come up often."""

from __future__ import annotations

import random

from stacklab.stack.tcp.tcb import Tcb

from . import reference


def test_window_update_due_is_the_reference_at_its_edges() -> None:
    rnd = random.Random(23)
    tcb = Tcb(bytes(4), 1, bytes(4), 2, iss=0, now=0.0)
    due = set()
    for _ in range(30_000):
        tcb.rcv_wscale = rnd.choice([0, 0, 1, 2])
        tcb.recvbuf.capacity = cap = rnd.randrange(1, 64)
        tcb.recvbuf.ready = bytearray(rnd.randrange(cap + 4))
        tcb.rcv_ssthresh = rnd.randrange(80)
        tcb.adv_mss = rnd.randrange(1, 40)
        tcb.rcv_nxt = nxt = rnd.choice([0, 5, 0xFFFFFFF0])
        tcb.rcv_adv = (nxt + rnd.randrange(-3, 70)) & 0xFFFFFFFF
        got = tcb.window_update_due()
        assert got == reference.window_update_due(tcb)
        due.add(got)
    assert due == {False, True}
