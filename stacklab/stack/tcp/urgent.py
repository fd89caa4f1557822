"""Urgent data (RFC 9293 §3.8.5, MUST-30..33; RFC 6093), with Linux's choices.

Sending (``send(..., MSG_OOB)``): the urgent pointer is the sequence number *after* the last byte
of the urgent write (Linux ``tcp_mark_urg``: snd_up = write_seq; RFC 6093 §4: what every stack
does, whatever RFC 1122 said), so the last byte written is the out-of-band byte. Every segment
sent from below the pointer carries URG and the offset to it (0xFFFF while it is further than a
header can say), until the peer acknowledges it (Linux ``tcp_transmit_skb``,
``tcp_clean_rtx_queue``); Nagle does not hold urgent data back (``tcp_nagle_test``).

Receiving: the byte before the pointer is the out-of-band byte (Linux with ``tcp_stdurg`` = 0,
``tcp_check_urg``); a later pointer replaces an earlier one (the older byte stays in the stream).
By default the byte is taken out of the stream and read with ``recv(MSG_OOB)``; with
SO_OOBINLINE (``TcpConfig.oobinline``) it stays in the stream. Either way a read stops at the
mark, so that ``SIOCATMARK`` (:func:`at_mark`) tells the application where it is. Errors as
``tcp_recv_urg``: EINVAL with SO_OOBINLINE, without urgent data or once it was read; EAGAIN while
the byte has not arrived. One deviation: the byte skipped by a stream read stays readable with
MSG_OOB until read (Linux forgets it once the read passes the mark), because the asyncio
transport reads the TCB ahead of the application.

Everything counts in stream offsets of the receive buffer (``rb.nxt - len(rb.ready)`` is the next
byte the application reads); the TCB holds an :class:`Urgent` only while there is urgent data
(``Tcb.urg``), so the common paths pay one ``is None`` test.
"""

from __future__ import annotations

import errno
from typing import Any

from .fsm import CAN_RECEIVE, CLOSED
from .seq import seq_sub
from .tcbvars import TcbVars as Tcb
from .tcbvars import Urgent


def _read_pos(tcb: Tcb) -> int:
    rb = tcb.recvbuf
    return rb.nxt - len(rb.ready)


# -- sending ------------------------------------------------------------------------------------
def mark_sent(tcb: Tcb) -> None:
    """An urgent write was queued: the pointer goes to the end of the send buffer."""
    tcb.snd_up = tcb.sendbuf.end


def urgent_field(tcb: Tcb, seq: int) -> int:
    """The urgent pointer of a segment starting at ``seq`` (0: no URG). Urgent mode ends once
    the peer acknowledged the pointer."""
    up = tcb.snd_up
    assert up is not None
    if up <= tcb.sendbuf.base:
        tcb.snd_up = None
        return 0
    ahead = up - tcb._abs(seq)
    if ahead <= 0:
        return 0
    return ahead if ahead < 0x10000 else 0xFFFF


# -- receiving ----------------------------------------------------------------------------------
def on_segment(tcb: Tcb, seg: Any) -> None:
    """The sixth check (RFC 9293 §3.10.7.4, URG) of a segment with URG, as Linux's
    ``tcp_check_urg``: the pointer names the byte before it; one already read or received, or
    not beyond the urgent byte known, changes nothing."""
    if tcb.state not in CAN_RECEIVE:
        return
    ptr = seg.urgent
    rb = tcb.recvbuf
    # stream offset of SEG.SEQ + pointer - 1 (seq_sub: SEG.SEQ may lie before RCV.NXT)
    off = seq_sub(seg.seq, tcb.rcv_nxt) + rb.nxt + (ptr - 1 if ptr else 0)
    if off < _read_pos(tcb) or off < rb.nxt:
        return
    cur = tcb.urg
    if cur is not None and off <= cur.off:
        return
    tcb.urg = Urgent(off)


def read(tcb: Tcb, n: int) -> bytes:
    """A stream read with urgent data pending: up to the mark; at the mark the out-of-band byte
    is skipped (kept for ``recv(MSG_OOB)``), or read inline with SO_OOBINLINE."""
    u = tcb.urg
    assert u is not None
    rb = tcb.recvbuf
    pos = _read_pos(tcb)
    inline = tcb.config.oobinline
    skipped = b""
    if u.off == pos and rb.nxt > pos:
        if not inline:
            skipped = rb.read(1)
            if not u.taken:
                u.byte = skipped[0]
            pos += 1  # the skipped byte does not count in n: the read goes on after it
    elif u.off > pos:
        room = u.off - pos
        if n < 0 or n > room:
            n = room
    data = rb.read(n)
    if pos + len(data) > u.off and (inline or u.taken):
        tcb.urg = None  # past the mark: urgent mode is over (Linux urg_data = 0)
    return data


def readable(tcb: Tcb) -> int:
    """Bytes a stream read can return: the out-of-band byte at the read position is not one."""
    u = tcb.urg
    n = len(tcb.recvbuf)
    if u is not None and not tcb.config.oobinline and u.off == _read_pos(tcb) and n:
        n -= 1
    return n


def at_mark(tcb: Tcb) -> bool:
    """SIOCATMARK / sockatmark(): the next byte read is the urgent mark."""
    u = tcb.urg
    return u is not None and u.off == _read_pos(tcb)


def read_past_mark(tcb: Tcb) -> int | None:
    """How many stream bytes the reads handed out after the mark (None: not reached yet), for
    a reader that buffers ahead of its application (the socket facade's queue)."""
    u = tcb.urg
    if u is None:
        return None
    pos = _read_pos(tcb)
    if u.off >= pos:
        return 0 if u.off == pos else None
    return pos - u.off - (0 if tcb.config.oobinline else 1)


def recv_oob(tcb: Tcb, peek: bool = False) -> bytes:
    """``recv(MSG_OOB)``: the out-of-band byte, b"" at the end of the connection; OSError EINVAL
    (inline, none, already read), ENOTCONN (closed), EAGAIN (not arrived yet)."""
    u = tcb.urg
    if tcb.config.oobinline or u is None or u.taken:
        raise OSError(errno.EINVAL, "no out-of-band data")
    byte = u.byte
    rb = tcb.recvbuf
    if byte is None and rb.nxt > u.off:
        byte = rb.ready[u.off - _read_pos(tcb)]
    if byte is not None:
        if not peek:
            u.taken = True
            if u.byte is not None:
                tcb.urg = None  # skipped by the stream already: nothing more to track
        return bytes([byte])
    if tcb.state is CLOSED and not tcb.fin_received:
        raise OSError(errno.ENOTCONN, "not connected")
    if tcb.state is CLOSED or tcb.fin_received:
        return b""
    raise OSError(errno.EAGAIN, "out-of-band byte not arrived yet")


def has_oob(tcb: Tcb) -> bool:
    """POLLPRI: an out-of-band byte is there to read."""
    u = tcb.urg
    return u is not None and not u.taken and not tcb.config.oobinline and (
        u.byte is not None or tcb.recvbuf.nxt > u.off)
