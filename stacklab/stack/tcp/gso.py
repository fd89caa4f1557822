"""TSO in the TCB: whole TSO packets of new data handed to a device that cuts them (GSO).

When the interface's device segments TCP itself (``Port.gso_max``: a TAP device with offloads,
as a NIC with TSO under Linux), the send side's header prediction hands it each TSO packet as
one super-segment: up to ``gso_max`` bytes of full-sized segments in one buffer, one header,
the segment size (the MSS) beside it (``stacklab.stack.node.GsoFrame``). The device cuts it at
the MSS the way Linux's ``tcp_gso_segment`` does (sequence numbers, PSH/FIN on the last piece
only, IPv4 IDs counting up), so what reaches the wire is what the TCB would have sent segment by
segment:

* the packets are Linux's TSO packets, sized by the one rule of ``tso.py`` (``tso.quota``),
  which is also where ``TcbOutput._push`` puts PSH, and they end at the end of a write (PSH) as
  ``tso.packet_ends`` cuts them, so each packet's PSH falls on its last segment;
* the transmission log (``sent.py``: RACK, rate samples, SACK marks) gets one record per
  segment, as before; the statistics count segments;
* what the fast path sends goes this way (full segments of new data, no loss recovery, SACK
  blocks, urgent data, ECN, pacing), and so do the paced packets of new data the general path
  sends (:class:`PacedBurst`: a pacer lets a TSO-sized packet of segments leave at once,
  ``pacing.py``, in or out of loss recovery: BBR's whole transfer); retransmissions and
  everything else stay per segment.

The layer (``TcpLayer.flush``) tells the TCB what the path's device takes (``gso_max``, 0 for
none: the simulator) and, should the path change under a packet built for it, cuts the packet
into its segments itself (:func:`cut`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable

from .pacing import Pacer
from .segment import ACK, FIN, PSH, Segment
from .seq import MASK
from .tcbvars import TcbVars
from .tso import autosize_segs, quota


def _per_segment(tcb: TcbVars) -> bool:
    """What makes segments differ so they cannot leave as one TSO packet: ECN's CWR, URG,
    SACK blocks (a D-SACK or out-of-order data held)."""
    return tcb.ecn is not None or tcb.snd_up is not None \
        or tcb._dsack is not None or bool(tcb.recvbuf.ooo_bytes)


def _push_cut(marks: list[int], pos: int, k: int, mss: int) -> tuple[int, bool]:
    """A packet of ``k`` segments from stream position ``pos``: where it ends if a write ends
    inside (with that segment, which carries PSH: Linux tcp_push), and whether one does."""
    i = bisect_right(marks, pos)
    if i < len(marks) and marks[i] <= pos + k * mss:
        return -(-(marks[i] - pos) // mss), True
    return k, False


def send_packets(tcb: TcbVars, emit: Callable[[int, int, bytes, float], None], gso_max: int,
                 now: float, defer: Callable[[int, int, float], tuple[bool, int]]) -> bool:
    """Send the full segments of new data the windows allow as TSO packets of at most
    ``gso_max`` bytes, each built by ``emit`` (the TCB's ``_emit``; called by the send fast
    path once its conditions hold; it sends what is left one segment at a time). ``defer`` is
    the TCB's TSO deferral judgement (``TcbOutput._tso_defer``), asked once per skb that cwnd
    cuts short, as the segment-by-segment paths ask it. True if anything went out."""
    if _per_segment(tcb):
        return False
    mss = tcb.snd_mss
    per = gso_max // mss  # segments in one super-segment
    if per < 2:
        return False
    sb = tcb.sendbuf
    data = sb.data
    total = len(data)
    marks, base = sb.marks, sb.base
    skb_ends = tcb.skb_ends
    una, data_una = tcb.flight_una(), tcb.snd_data_una
    cc = tcb.cc
    room = min(tcb.snd_wnd, cc.cwnd)  # what may be in flight
    cwnd_segs = max(cc.cwnd // mss, 1)
    auto = autosize_segs(cc.cwnd, cc.ssthresh, mss, tcb.rtt.srtt, tcb.config.min_tso_segs)
    fin = tcb.fin_seq is not None  # the last segment carries it: the general path sends that
    nxt = tcb.snd_nxt
    in_flight = -(-((nxt - una) & MASK) // mss)
    decided = -1  # TSO deferral judged up to here (once per skb)
    sent = False
    while True:
        off = (nxt - data_una) & MASK
        k = min(quota(cwnd_segs, in_flight, auto), (total - off - fin) // mss,
                (room - ((nxt - una) & MASK)) // mss)
        if k <= 0:
            break
        pos = base + off
        k, push = _push_cut(marks, pos, k, mss)
        j = bisect_right(skb_ends, pos)
        skb_end = skb_ends[j] if j < len(skb_ends) else sb.end
        if pos >= decided and skb_end - pos > room - ((nxt - una) & MASK):
            wait, decided = defer(nxt, cc.cwnd - ((nxt - una) & MASK), now)  # tso_defer.py
            if wait:
                break
        if skb_end < pos + k * mss:
            k = -(-(skb_end - pos) // mss)  # a packet never spans two skbs (sndbuf.py)
            push = False
        in_flight += k
        while k:
            g = per if k > per else k
            k -= g
            n = g * mss
            # the payload copied once (a slice of the bytearray and bytes() would be two)
            emit(nxt, ACK | PSH if push and not k else ACK, bytes(memoryview(data)[off:off + n]),
                 now)
            if g > 1:
                tcb.stats.segs_out += g - 1
                tcb.sent.split_last(mss)
            nxt = tcb.snd_nxt = tcb.snd_max = (nxt + n) & MASK
            off += n
            sent = True
    return sent


class PacedBurst:
    """The paced packets of new data one call of the general path sends (``_output_data``),
    as TSO packets for a device that segments: each segment that the pacer lets leave with
    the one before (``Pacer.burst``: a TSO-sized packet leaves at once, pacing.py) joins it in
    one packet, and the packets end wherever Linux's TSO packets of the burst end
    (``tso.packet_ends``, where ``TcbOutput._push`` puts PSH), so that cut they are the very
    segments sent one by one: :meth:`sent` follows that cut over every new segment of the
    burst. ``pipe``: what was in flight when the burst's first new segment went out."""

    __slots__ = ("left", "flight", "cwnd_segs", "auto")

    def __init__(self, tcb: TcbVars, pipe: int) -> None:
        mss = tcb.snd_mss
        cc = tcb.cc
        self.cwnd_segs = max(cc.cwnd // mss, 1)
        self.auto = autosize_segs(cc.cwnd, cc.ssthresh, mss, tcb.rtt.srtt,
                                  tcb.config.min_tso_segs)
        self.flight = -(-pipe // mss)  # segments in flight before the next packet
        self.left = 0  # segments the current Linux TSO packet still takes

    def sent(self, tcb: TcbVars, off: int, n: int, psh: bool, room: int, pacer: Pacer,
             now: float, gso_max: int) -> tuple[int, bool]:
        """A new segment of ``n`` bytes from ``off`` (bytes into the send buffer; ``psh``: it
        ends a write) left, paced, with room in the windows for ``room`` more bytes: how many
        full segments after it go with it in its TSO packet (of at most ``gso_max`` bytes),
        and whether the last of them ends a write (PSH); each is accounted with the pacer as it
        would have been sent alone (``Pacer.on_sent``, at the same instant). None without a
        full segment first, or with what makes the segments differ (ECN's CWR, urgent data,
        SACK blocks, MSG_EOR records, PLPMTUD, a persist-timer push, MSG_MORE); they stop
        before the FIN's segment and at the first skb's end (the next skb's TSO deferral is
        judged where it starts)."""
        if self.left == 0:
            self.left = quota(self.cwnd_segs, self.flight, self.auto)
        self.left -= 1
        self.flight += 1
        mss = tcb.snd_mss
        sb = tcb.sendbuf
        pos = sb.base + off + n  # where the next segment would start
        ends = tcb.skb_ends
        j = bisect_right(ends, pos)
        skb_end = ends[j] if j < len(ends) else sb.end
        if psh or (j and ends[j - 1] == pos):
            self.left = 0  # a write or an skb ends here: so does the packet (packet_ends)
            return 0, False
        k = min(self.left, pacer.burst, room // mss,
                (sb.end - pos - (tcb.fin_seq is not None)) // mss, gso_max // mss - 1,
                -(-(skb_end - pos) // mss))
        if k <= 0 or n != mss or _per_segment(tcb) or sb.eors \
                or tcb._wakeup_push or tcb._more or tcb.plpmtud.engaged:
            return 0, False
        k, push = _push_cut(sb.marks, pos, k, mss)
        self.left -= k
        self.flight += k
        if push or skb_end == pos + k * mss:
            self.left = 0
        min_segs = tcb.config.min_tso_segs
        for _ in range(k):
            pacer.on_sent(mss, now, mss, min_segs)
        return k, push


def as_segments(segs: list[Segment], mss: int) -> list[Segment]:
    """``segs`` with each TSO packet preceded by a stand-in per inner segment (no PSH), for
    ``tso.packet_ends`` (which counts segments): an end it finds is the packet's own last
    segment, since the packets were cut by the same rule."""
    out: list[Segment] = []
    for seg in segs:
        n = len(seg.payload)
        if n > mss:
            out += [_INNER] * ((n - 1) // mss)
        out.append(seg)
    return out


_INNER = Segment(0, 0, ACK, 0)  # as_segments' stand-in: no PSH (an end never falls on one)


def cut(out: list[Segment], mss: int) -> list[Segment]:
    """``out`` with each super-segment (payload longer than ``mss``) replaced by its segments,
    cut as the device would have: for a path whose device no longer segments."""
    res: list[Segment] = []
    for seg in out:
        payload = seg.payload
        if len(payload) <= mss:
            res.append(seg)
            continue
        last = len(payload) - mss
        for k in range(0, len(payload), mss):
            s = Segment(seg.seq + k & MASK, seg.ack, seg.flags if k >= last
                        else seg.flags & ~(PSH | FIN), seg.window, payload[k:k + mss],
                        ts=seg._ts)
            s.ecn = seg.ecn
            res.append(s)
    return res


__all__ = ["PacedBurst", "as_segments", "cut", "send_packets"]
