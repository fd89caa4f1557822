"""Readable specifications of the TCB's fast code, written with the general helpers.

Production code has one implementation of each rule, written for speed (``stack/tcp/output.py``);
these are the same rules as the RFC states them, and ``test_fast_paths.py`` checks that both agree
on random inputs.
"""

from __future__ import annotations

from stacklab.stack.tcp.seq import seq_add, seq_sub
from stacklab.stack.tcp.tcb import Tcb


def window_candidate(tcb: Tcb) -> tuple[int, int | None]:
    """(current window, a larger one to offer or None), from free buffer space with
    receiver-side SWS avoidance (RFC 9293 §3.8.6.2.2): the right edge moves only by
    min(buffer/2, MSS) or more, and never moves left; never more than Linux's rcv_ssthresh."""
    cur = max(0, seq_sub(tcb.rcv_adv, tcb.rcv_nxt))
    shift = tcb.rcv_wscale
    cand = min(tcb.recvbuf.free, tcb.rcv_ssthresh, 0xFFFF << shift) >> shift << shift
    if cand > cur and cand - cur >= min(tcb.recvbuf.capacity // 2, tcb.adv_mss):
        return cur, cand
    return cur, None


def window_field(tcb: Tcb) -> int:
    """The window field of the next segment; moves RCV.ADV (the right edge advertised)."""
    cur, cand = window_candidate(tcb)
    if cand is not None:
        cur = cand
    shift = tcb.rcv_wscale
    field = min(0xFFFF, (cur + (1 << shift) - 1) >> shift)  # round up: never shrink (Linux)
    tcb.rcv_adv = seq_add(tcb.rcv_nxt, field << shift)
    return field


def window_update_due(tcb: Tcb) -> bool:
    """After the application read: advertise the larger window when it opens from below one
    MSS or at least doubles (a window update, RFC 9293 §3.8.6.2.2)."""
    cur, cand = window_candidate(tcb)
    return cand is not None and (cur < tcb.adv_mss or cand >= 2 * cur)
