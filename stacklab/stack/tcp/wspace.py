"""Write space: when a socket is writeable (Linux __sk_stream_is_writeable(sk, 1), what
tcp_poll's EPOLLOUT and the write-space wakeup both ask) and the wakeup of a writer that found
the buffer full (SOCK_NOSPACE, tcp_check_space -> sk_stream_write_space).

This is the one predicate of writeability: the send buffer's memory is free (what is queued is
below the buffer's size and leaves at least half of it again free, sk_stream_wspace >=
sk_stream_min_wspace) and the bytes not sent yet are below half of TCP_NOTSENT_LOWAT
(tcp_stream_memory_free with ``wake``: a writer is woken only once it can add a useful amount).
The send-buffer accounting behind ``len(sendbuf)`` and ``sendbuf.capacity`` is the buffer's.

SOCK_NOSPACE (``tcb.nospace``) is set by the socket layer when a write stopped at a full buffer
or a poll found the socket not writeable; every ACK processed after that runs
:func:`check_space` once the output it allowed went out (Linux tcp_data_snd_check, since the
removal of SOCK_QUEUE_SHRUNK also when no data was freed: sending unsent data lowers the
not-sent bytes too), which clears the flag and reports the wakeup once the socket is writeable.
An edge is only reported to a writer that saw the buffer full: ACKs freeing space while nobody
waits wake nobody (Linux's edge-triggered EPOLLOUT).
"""

from __future__ import annotations

from . import chrono
from .chrono import TcbLike


def notsent_lowat(tcb: TcbLike) -> int:
    """TCP_NOTSENT_LOWAT, else net.ipv4.tcp_notsent_lowat (UINT_MAX: no limit)."""
    cfg = tcb.config
    return cfg.notsent_lowat or cfg.notsent_lowat_default


def writeable(tcb: TcbLike) -> bool:
    """Linux __sk_stream_is_writeable(sk, 1)."""
    buf = tcb.sendbuf
    queued = len(buf)
    if queued >= buf.capacity or buf.capacity - queued < queued >> 1:
        return False
    return chrono.unsent(tcb) << 1 < notsent_lowat(tcb)


def check_space(tcb: TcbLike, now: float) -> bool:
    """After an ACK was processed and the output path ran (tcp_check_space): True
    when a writer that found the buffer full is to be woken (EPOLLOUT); SOCK_NOSPACE clears
    and the send-buffer-limited chronograph stops."""
    if not tcb.nospace or not writeable(tcb):
        return False
    tcb.nospace = False
    tcb.chrono.stop(chrono.SNDBUF_LIMITED, now, chrono.queues_empty(tcb))
    return True
