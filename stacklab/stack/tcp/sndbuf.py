"""The send buffer as Linux accounts for it: socket buffers (skbs) and their true size.

Linux does not count a TCP send buffer in payload bytes. A write (``tcp_sendmsg_locked``) copies
into the last socket buffer of the write queue until that holds the *size goal*
(``tcp_xmit_size_goal``: half the largest window the peer offered, at most what one GSO packet
carries, in whole MSS), and allocates a new one only while the socket's memory is free
(``sk_stream_memory_free``):

* ``sk_wmem_queued < sk_sndbuf``: every buffer queued counts its *true size*, the payload plus
  :data:`SKB_OVERHEAD` (the buffer's header room and bookkeeping);
* fewer than TCP_NOTSENT_LOWAT bytes wait unsent (``tcp_stream_memory_free``).

So a write takes more than the limit says (the buffer it fills may overshoot it), and with
TCP_NOTSENT_LOWAT a write returns what whole buffers hold. A buffer that fills up while it is the
first one unsent goes out at once (``tcp_push_one``), and sending a part of a buffer splits it
(``tso_fragment``): the part left unsent is a new buffer, filled further by the same write. An
ACK frees the buffers it covers whole and trims the one it covers in part (``tcp_trim_head``:
its true size shrinks by the bytes dropped). A buffer that fills up more than half the largest
window the peer offered after the last push mark gets one and goes out at once (``forced_push``):
a long write is not held back for its end.

A writer that found no room sleeps until the buffer is *writeable* again
(``sk_stream_write_space``): a third of it free and fewer than half of TCP_NOTSENT_LOWAT unsent;
poll's POLLOUT and epoll's EPOLLOUT are the same test (``tcp_poll``): :func:`writeable`
(:func:`poll_writeable` for a poll, which also marks the socket short of space). Only for a
socket short of space (SOCK_NOSPACE: a write or a poll found no room) does an incoming ACK grow
an autotuned buffer, and only while cwnd is not full (``tcp_new_space``): :func:`check_space`.

The buffers are kept as their end offsets in the send buffer's stream positions
(``Tcb.skb_ends``, ascending): the first starts at ``sendbuf.base``; those that end at or before
``base`` were acknowledged and are dropped on the next look.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Protocol

from .buffers import Buffer, SendBuffer
from .config import TcpConfig, send_buffer_for
from .congestion import CongestionController
from .fsm import CLOSE_WAIT, ESTABLISHED, State
from .seq import HALF, MASK
from .tso import GSO_MAX_SIZE

# The true size of a socket buffer before any payload (Linux x86_64, tcp_stream_alloc_skb:
# SKB_TRUESIZE of the buffer's head area): the head is allocated for MAX_TCP_HEADER (320 bytes)
# plus struct skb_shared_info (320), 640 bytes that kmalloc serves from its 1024-byte cache, so
# the head area is 1024 - 320 = 704 bytes; with struct sk_buff (256 bytes after cache alignment)
# and skb_shared_info that is 1280. The payload sits in page fragments and adds its own length.
# These are the kernels the upstream packetdrill scripts were recorded on (epoll_out_edge*: a
# write returns 112000 with this cost, 128000 with less); Linux 6.3 gave the 640-byte heads a
# cache of their own (skb_small_head_cache), which makes it 896
MAX_TCP_HEADER = 320
SKB_OVERHEAD = 704 + 256 + 320
# the largest GSO packet a socket builds (sk_gso_max_size: the device's, minus the header room)
SK_GSO_MAX_SIZE = GSO_MAX_SIZE - MAX_TCP_HEADER - 1
TCP_MSS_DEFAULT = 536


class SkbTcb(Protocol):
    """What the send-buffer model reads and sets of a TCB (``output.TcbOutput`` is one; a
    protocol, so that this module imports none of the TCB's)."""

    state: State
    config: TcpConfig
    cc: CongestionController
    sendbuf: SendBuffer
    skb_ends: list[int]
    snd_nospace: bool
    snd_autotune: bool
    snd_mss: int
    snd_max: int
    snd_data_una: int
    max_sndwnd: int
    ts_ok: bool

    def output(self, now: float) -> None: ...

    def _in_flight(self) -> int: ...


def size_goal(tcb: SkbTcb, oob: bool = False) -> int:
    """How much payload a write puts in one buffer (Linux tcp_send_mss/tcp_xmit_size_goal): the
    largest GSO packet, at most half the largest window the peer offered
    (``tcp_bound_to_half_wnd``), in whole MSS, at least one; one MSS for MSG_OOB."""
    mss = tcb.snd_mss
    if oob:
        return mss
    goal = SK_GSO_MAX_SIZE
    win = tcb.max_sndwnd
    cutoff = win >> 1 if win > TCP_MSS_DEFAULT else win
    if cutoff and goal > cutoff:
        goal = max(cutoff, 68 - (32 if tcb.ts_ok else 20))
    goal = goal // mss * mss  # (max() written out: asked after every ACK)
    return goal if goal > mss else mss


def _prune(tcb: SkbTcb) -> list[int]:
    """The buffers not acknowledged yet (those ending at or before ``base`` are freed)."""
    ends = tcb.skb_ends
    base = tcb.sendbuf.base
    if ends and ends[0] <= base:
        del ends[:bisect_right(ends, base)]
    return ends


def wmem_queued(tcb: SkbTcb) -> int:
    """``sk_wmem_queued``: the true size of the buffers queued, sent or not."""
    ends = tcb.skb_ends
    sb = tcb.sendbuf
    if ends and ends[0] <= sb.base:  # (_prune, inline: asked after every ACK)
        del ends[:bisect_right(ends, sb.base)]
    return len(sb.data) + SKB_OVERHEAD * len(ends)


def wspace(tcb: SkbTcb) -> int:
    """``sk_stream_wspace``: the send buffer's limit minus what is queued (0 when over it)."""
    return max(0, tcb.sendbuf.capacity - wmem_queued(tcb))


def notsent(tcb: SkbTcb) -> int:
    """Bytes written and never sent (Linux write_seq - snd_nxt: SND.MAX here, which an RTO's
    go-back-N does not pull back)."""
    queued = len(tcb.sendbuf.data)
    sent = (tcb.snd_max - tcb.snd_data_una) & MASK  # seq_sub, at least 0, at most queued
    return queued if sent > HALF else queued - sent if sent < queued else 0


def notsent_lowat(tcb: SkbTcb) -> int:
    """TCP_NOTSENT_LOWAT, net.ipv4.tcp_notsent_lowat when the socket option is 0."""
    cfg = tcb.config
    return cfg.notsent_lowat or cfg.notsent_lowat_default


def _free(queued: int, unsent: int, cap: int, lowat: int, wake: bool) -> bool:
    return queued < cap and unsent << wake < lowat


def memory_free(tcb: SkbTcb, wake: bool = False) -> bool:
    """``__sk_stream_memory_free``: a write may start a new buffer. ``wake``: the test a sleeping
    writer and poll make (``tcp_stream_memory_free`` with wake=1: fewer than *half* the low-water
    mark unsent)."""
    return _memory_free(tcb, wmem_queued(tcb), wake)


def _memory_free(tcb: SkbTcb, queued: int, wake: bool) -> bool:
    """:func:`memory_free` with ``queued``, the buffers' true size (:func:`wmem_queued`)."""
    cap = tcb.sendbuf.capacity
    # (over the limit, the usual answer while a writer waits: without the unsent count)
    return queued < cap and _free(queued, notsent(tcb), cap, notsent_lowat(tcb), wake)


def write_space(tcb: SkbTcb) -> int | None:
    """What a writer waiting for room is told after an ACK freed data (``Tcb._space_freed``):
    None if a write (not MSG_OOB) would take nothing now (:func:`write`'s first test: room in
    the last buffer, or the memory free for a new one), else the room :func:`wspace` gives."""
    queued = wmem_queued(tcb)
    if not _memory_free(tcb, queued, False) and _tail_room(tcb, size_goal(tcb)) <= 0:
        return None
    return max(0, tcb.sendbuf.capacity - queued)


def writeable(tcb: SkbTcb) -> bool:
    """``__sk_stream_is_writeable(sk, 1)``, the one writability test: poll's POLLOUT, epoll's
    EPOLLOUT and what wakes a writer blocked on a full buffer (``sk_stream_write_space``):
    at least a third of the buffer free (wspace >= wmem_queued / 2) and the memory free with
    fewer than half of TCP_NOTSENT_LOWAT unsent."""
    queued = wmem_queued(tcb)
    cap = tcb.sendbuf.capacity
    return cap - queued >= queued >> 1 \
        and _free(queued, notsent(tcb), cap, notsent_lowat(tcb), True)  # memory_free(wake)


def poll_writeable(tcb: SkbTcb) -> bool:
    """poll's POLLOUT, epoll's EPOLLOUT (``tcp_poll``): :func:`writeable`; when not, the socket
    is marked short of space (SOCK_NOSPACE), so the ACK that frees enough wakes it and may grow
    the buffer (:func:`check_space`)."""
    if writeable(tcb):
        return True
    tcb.snd_nospace = True
    return False


def expand(tcb: SkbTcb) -> None:
    """Send-buffer autotuning (Linux tcp_sndbuf_expand): what the current cwnd wants
    (config.send_buffer_for); the buffer only grows."""
    mss = tcb.snd_mss
    sb = tcb.sendbuf
    if sb.capacity < tcb.config.wmem[2]:  # (at tcp_wmem's maximum already: it stays)
        want = send_buffer_for(tcb.config, tcb.cc.cwnd // mss, mss, tcb.cc.sndbuf_expand)
        if want > sb.capacity:
            sb.capacity = want


def check_space(tcb: SkbTcb) -> bool:
    """After an incoming segment and what it let us send (Linux tcp_check_space): if a write or
    a poll found the buffer short (SOCK_NOSPACE), an autotuned buffer grows to what cwnd wants
    unless cwnd is full (``tcp_new_space``, ``tcp_should_expand_sndbuf``: in flight < cwnd,
    in segments), and once writeable the writer is woken (``sk_stream_write_space``): True
    then (SOCK_NOSPACE clears; an edge-triggered EPOLLOUT)."""
    if not tcb.snd_nospace:
        return False
    mss = tcb.snd_mss
    if tcb.snd_autotune and tcb.sendbuf.capacity < tcb.config.wmem[2] \
            and -(-tcb._in_flight() // mss) < tcb.cc.cwnd // mss:
        expand(tcb)
    if not writeable(tcb):
        return False
    tcb.snd_nospace = False
    return True


def after_ack(tcb: SkbTcb) -> tuple[bool, int | None]:
    """:func:`check_space` then :func:`write_space`, what the send fast path asks after each
    ACK it takes (``Tcb._ack_predicted``; the output ran): whether a blocked writer wakes, and
    the room a waiting writer is told of (None: a write would take nothing). Written out, the
    buffers' true size and the unsent count taken once (nothing between the two moves them;
    only the autotuning moves the limit); ``tests/stack/tcp/test_sndbuf_after_ack.py`` compares
    it with the two on random states."""
    sb = tcb.sendbuf
    ends = tcb.skb_ends
    base = sb.base
    if ends and ends[0] <= base:  # (_prune)
        del ends[:bisect_right(ends, base)]
    nbytes = len(sb.data)
    queued = nbytes + SKB_OVERHEAD * len(ends)  # (wmem_queued)
    sent = (tcb.snd_max - tcb.snd_data_una) & MASK  # (notsent)
    unsent = nbytes if sent > HALF else nbytes - sent if sent < nbytes else 0
    cfg = tcb.config
    lowat = cfg.notsent_lowat or cfg.notsent_lowat_default
    woke = False
    if tcb.snd_nospace:  # (check_space)
        mss = tcb.snd_mss
        if tcb.snd_autotune and sb.capacity < cfg.wmem[2] \
                and -(-tcb._in_flight() // mss) < tcb.cc.cwnd // mss:
            expand(tcb)
        cap = sb.capacity
        if cap - queued >= queued >> 1 and queued < cap and unsent << 1 < lowat:  # (writeable)
            tcb.snd_nospace = False
            woke = True
    cap = sb.capacity
    if queued >= cap or unsent >= lowat:  # (write_space: not _memory_free, so _tail_room)
        if not ends:
            return woke, None
        start = ends[-2] if len(ends) > 1 else base
        room = size_goal(tcb) - (ends[-1] - start)
        end = base + nbytes
        if room <= 0 or start < end - unsent or (sb.eors and sb.eors[-1] == end):
            return woke, None
    return woke, cap - queued if cap > queued else 0


def _tail_room(tcb: SkbTcb, goal: int) -> int:
    """What the last buffer still takes: up to ``goal`` if it was never sent (it is still in the
    write queue) and ends no MSG_EOR record (``tcp_skb_can_collapse_to``), else 0."""
    ends = _prune(tcb)
    if not ends:
        return 0
    sb = tcb.sendbuf
    start = ends[-2] if len(ends) > 1 else sb.base
    room = goal - (ends[-1] - start)
    # (a full one first: what a writer behind a full buffer meets, without the unsent count)
    if room <= 0 or start < sb.end - notsent(tcb) or (sb.eors and sb.eors[-1] == sb.end):
        return 0
    return room


# the skb ends of every TCB before its first write (a new TCB's, TcbVars), never changed: write
# gives the TCB a list of its own (0.05 KiB per idle connection end, issue 23 item 4)
NO_SKBS: list[int] = []


def forced_push(tcb: SkbTcb) -> bool:
    """Linux ``forced_push``: more than half the largest window the peer offered was written
    since the last push mark, so the write marks one now (PSH, RFC 9293 §3.9.1: the sender
    may set PSH where it wants the data delivered)."""
    sb = tcb.sendbuf
    return sb.end > sb.pushed_to + (tcb.max_sndwnd >> 1)


def write(tcb: SkbTcb, data: Buffer, *, push: bool, eor: bool, oob: bool,
          now: float | None) -> int:
    """Copy ``data`` into the send buffer as ``tcp_sendmsg_locked`` does; returns how many bytes
    it took (0: no room). ``now``: a buffer that fills up while it is the first unsent one is
    sent at once (``tcp_push_one``) when the connection is synchronized; ``push``/``eor``: the
    write's PSH mark and MSG_EOR (see SendBuffer.write)."""
    sb = tcb.sendbuf
    ends = tcb.skb_ends
    if ends is NO_SKBS:  # the first write: a list of its own
        ends = tcb.skb_ends = []
    goal = size_goal(tcb, oob)
    total = len(data)
    view = memoryview(data)
    copied = 0
    while copied < total:
        room = _tail_room(tcb, goal)
        if room <= 0:
            if not memory_free(tcb):
                break
            ends.append(sb.end)  # a new buffer (tcp_stream_alloc_skb + tcp_skb_entail)
            room = goal
        n = min(room, total - copied)
        sb.write(view[copied:copied + n], push=False)
        ends[-1] = sb.end
        copied += n
        if copied == total or oob or n < room:
            continue
        if forced_push(tcb):  # a full buffer, far from the last mark: PSH and send now
            sb.mark(True, False)
            if now is not None and tcb.state in (ESTABLISHED, CLOSE_WAIT):
                tcb.output(now)  # __tcp_push_pending_frames
        elif now is not None and tcb.state in (ESTABLISHED, CLOSE_WAIT) \
                and notsent(tcb) == sb.end - (ends[-2] if len(ends) > 1 else sb.base):
            tcb.output(now)  # a full buffer, the first unsent one: tcp_push_one
    if copied:
        # tcp_push: the write's end gets a push mark unless MSG_MORE, or when forced
        sb.mark(push or forced_push(tcb), eor and copied == total)
    if copied < total:
        tcb.snd_nospace = True  # SOCK_NOSPACE: the writer waits for room
    return copied


def room(tcb: SkbTcb, oob: bool = False) -> int:
    """How many bytes a write would take now, nothing being sent meanwhile (0: none)."""
    goal = size_goal(tcb, oob)
    n = _tail_room(tcb, goal)
    queued, unsent = wmem_queued(tcb), notsent(tcb) + n
    cap, lowat = tcb.sendbuf.capacity, notsent_lowat(tcb)
    if not _free(queued, unsent, cap, lowat, False):
        return n
    # each new buffer adds goal + SKB_OVERHEAD queued and goal unsent, while both stay below
    return n + goal * min(-(-(cap - queued) // (goal + SKB_OVERHEAD)), -(-(lowat - unsent) // goal))


def ends_skb(tcb: SkbTcb, positions: list[int]) -> list[bool]:
    """Whether an skb ends at each stream position of ``positions`` (a TSO packet stops
    there)."""
    ends = set(_prune(tcb))  # (no bisection per segment of a burst)
    return [pos in ends for pos in positions]


def on_sent(tcb: SkbTcb) -> None:
    """New data went out up to SND.MAX: the buffer it ends in is split there (``tso_fragment``:
    the part sent stays, the rest is a new buffer with its own overhead)."""
    ends = _prune(tcb)
    sb = tcb.sendbuf
    pos = sb.end - notsent(tcb)
    i = bisect_right(ends, pos)
    if i < len(ends) and pos > (ends[i - 1] if i else sb.base):
        ends.insert(i, pos)


__all__ = ["SKB_OVERHEAD", "SkbTcb", "after_ack", "check_space", "ends_skb", "expand",
           "forced_push", "memory_free", "notsent", "on_sent", "poll_writeable", "room",
           "size_goal", "wmem_queued", "write", "write_space", "writeable", "wspace"]
