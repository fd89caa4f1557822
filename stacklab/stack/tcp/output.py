"""What a TCB sends: the segmentizer (``output``), the window field, the SACK blocks of our ACKs
and the bytes of each segment.

``output(tcb, now)`` sends what the state, the peer's window, cwnd, Nagle and a pending ACK allow
(RFC 9293 §3.7.4, §3.8.6, RFC 5681/6675 for what loss recovery resends). Every segment is built
by ``emit``, which fills in the ACK, the window, timestamps and SACK blocks and accounts for it;
``segment_bytes`` turns it into wire bytes for the layer. The functions take the TCB as their
first argument; ``Tcb.output`` and ``Tcb.window_update_due`` are these functions.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from stacklab.wire.checksum import SPLIT_AT, le_sum

from .config import DUPACK_THRESHOLD
from .fsm import CLOSED, FIN_WAIT_2, LISTEN, SYN_RECEIVED, SYN_SENT, TIME_WAIT
from .plpmtud import PlpmtudState
from .segment import ACK, FIN, PSH, RST, SYN, Segment
from .seq import HALF, MASK, MOD, seq_add, seq_gt, seq_lt, seq_sub

if TYPE_CHECKING:
    from .tcb import Tcb

_PLPMTUD_DISABLED = PlpmtudState.DISABLED
_HDR = struct.Struct("!HHIIHHHH")
_HDR_TS = struct.Struct("!HHIIHHHH4sII")  # header + nop, nop, timestamps (32 bytes)
_NOPNOP_TS = b"\x01\x01\x08\x0a"
_CSUM_LE = struct.Struct("<H")  # the checksum computed from a little-endian sum (checksum.py)


def segment_bytes(psum: int, sp: int, dp: int, seg: Segment) -> bytearray:
    """``build_tcp`` for the TCB's own segments, with the pseudo-header's address part summed
    once per connection (``psum``) and the timestamps-only header (every data segment and ACK
    once timestamps are negotiated) packed in one call. Same bytes as ``build_tcp``."""
    ts = seg._ts
    if ts is not None and not seg._sack and seg._mss is None and seg._wscale is None \
            and not seg._sack_perm:
        buf = bytearray(_HDR_TS.pack(sp, dp, seg.seq, seg.ack, 0x8000 | seg.flags, seg.window,
                                     0, 0, _NOPNOP_TS, ts[0], ts[1]))
    else:
        opts = seg.options_bytes()
        hl = 20 + len(opts)
        buf = bytearray(_HDR.pack(sp, dp, seg.seq, seg.ack, (hl << 10) | seg.flags, seg.window,
                                  0, 0))
        buf += opts
    payload = seg.payload
    if payload:
        buf += payload
    n = len(buf)
    # little-endian sum = 256 x the big-endian one (mod 0xFFFF), stored byte-swapped; in two
    # halves above SPLIT_AT bytes (wire/checksum.py); a folded 0xFFFF is stored as 0x0000
    total = (int.from_bytes(buf, "little") if n <= SPLIT_AT else le_sum(buf)) + ((psum + n) << 8)
    _CSUM_LE.pack_into(buf, 16, -total % 0xFFFF)
    return buf



# -- receiver side SACK (RFC 2018 §4, RFC 2883) ---------------------------------------------

def sack_option(tcb: Tcb, plen: int) -> tuple[tuple[int, int], ...]:
    """SACK blocks for an outgoing ACK: a D-SACK first if one is pending, then the block
    holding the most recently received segment, then the other recent ones; at most 3 with
    timestamps (4 without), fewer when a data segment leaves less room."""
    rb = tcb.recvbuf
    if not tcb.sack_ok or (tcb._dsack is None and not rb.ooo_bytes):
        return ()
    room = 3 if tcb.ts_ok else 4
    if plen:
        room = min(room, max(0, (tcb.snd_mss - plen - 4) // 8))
    if room <= 0:
        return ()
    out: list[tuple[int, int]] = []
    if tcb._dsack is not None:
        out.append(tcb._dsack)
        tcb._dsack = None
    if rb.ooo_bytes:
        ranges = rb.ooo_ranges()
        order: list[tuple[int, int]] = []
        recent = [o for o in tcb._sack_recent if o >= rb.nxt]
        tcb._sack_recent = recent[-8:]
        for o in reversed(recent):
            for r in ranges:
                if r[0] <= o < r[1]:
                    if r not in order:
                        order.append(r)
                    break
        order += [r for r in ranges if r not in order]
        base, nxt = rb.nxt, tcb.rcv_nxt
        out += [(seq_add(nxt, a - base), seq_add(nxt, b - base)) for a, b in order]
    return tuple(out[:room])


# -- the receive window (RFC 9293 §3.8.6.2.2) -------------------------------------------------

def receive_window(tcb: Tcb) -> tuple[int, int]:
    """(the window now open to the peer, the window to offer in the next segment). The offer is
    the free buffer space (what the scale can express) when that moves the right edge by at
    least min(buffer/2, MSS): receiver-side SWS avoidance; else the window stays; the edge never
    moves left. Runs for every segment sent: written with the loop-invariant locals; the same
    rule with the general helpers is ``tests/stack/tcp/reference.py``, compared by a test."""
    cur = (tcb.rcv_adv - tcb.rcv_nxt) & MASK  # seq_sub(RCV.ADV, RCV.NXT), at least 0
    if cur > HALF:
        cur = 0
    shift = tcb.rcv_wscale
    rb = tcb.recvbuf
    cap = rb.capacity
    free = cap - len(rb.ready)
    lim = 0xFFFF << shift
    offer = (free if free < lim else lim) >> shift << shift
    if offer > cur:
        m = cap // 2
        if tcb.adv_mss < m:
            m = tcb.adv_mss
        if offer - cur >= m:
            return cur, offer
    return cur, cur


# -- output -----------------------------------------------------------------------------------

def ts_clock(tcb: Tcb, now: float) -> int:
    return (int(now * 1000) + tcb.ts_offset) & MASK


def emit(tcb: Tcb, seq: int, flags: int, payload: bytes, now: float) -> None:
    """Build one segment carrying ACK/window/timestamps; account for it."""
    if flags & SYN:
        emit_syn(tcb, seq, flags, payload, now)
        return
    rcv_nxt = tcb.rcv_nxt
    shift = tcb.rcv_wscale
    window = (receive_window(tcb)[1] + (1 << shift) - 1) >> shift  # round up: never shrink
    if window > 0xFFFF:
        window = 0xFFFF
    tcb.rcv_adv = (rcv_nxt + (window << shift)) & MASK
    rb = tcb.recvbuf
    stats = tcb.stats
    if flags & ACK:
        ts = ((int(now * 1000) + tcb.ts_offset) & MASK, tcb.ts_recent) \
            if tcb.ts_ok else None
        if tcb.sack_ok and (tcb._dsack is not None or rb.ooo_bytes):
            sack = sack_option(tcb, len(payload))
            if sack:
                stats.sack_blocks_out += 1
        else:
            sack = ()
        seg = Segment(seq, rcv_nxt, flags, window, payload, ts=ts, sack=sack)
        tcb.last_ack_sent = rcv_nxt
        tcb._ack_now = False
        tcb.delack_at = None
        tcb._unacked_bytes = 0
    else:
        ts = ((int(now * 1000) + tcb.ts_offset) & MASK, 0) if tcb.ts_ok else None
        seg = Segment(seq, 0, flags, window, payload, ts=ts)
    stats.segs_out += 1
    if payload:
        stats.bytes_sent += len(payload)
        if tcb.unacked_since is None:
            tcb.unacked_since = now
    elif flags & FIN and tcb.unacked_since is None:
        tcb.unacked_since = now
    tcb._out.append(seg)


def emit_syn(tcb: Tcb, seq: int, flags: int, payload: bytes, now: float) -> None:
    window = min(tcb.recvbuf.free, 0xFFFF)
    if seq_gt(seq_add(tcb.rcv_nxt, window), tcb.rcv_adv) or not flags & ACK:
        tcb.rcv_adv = seq_add(tcb.rcv_nxt, window)
    ack = tcb.rcv_nxt if flags & ACK else 0
    ts = None
    if tcb.ts_ok or (not flags & ACK and tcb.config.timestamps):
        ts = (ts_clock(tcb, now), tcb.ts_recent if flags & ACK else 0)
    active = not flags & ACK
    seg = Segment(seq, ack, flags, window, payload, mss=tcb.adv_mss,
                  wscale=(tcb.rcv_wscale if (active and tcb.config.window_scaling)
                          or tcb.wscale_ok else None),
                  sack_perm=(tcb.config.sack if active else tcb.sack_ok), ts=ts)
    if flags & ACK:
        tcb.last_ack_sent = tcb.rcv_nxt
        tcb._ack_now = False
        tcb.delack_at = None
        tcb._unacked_bytes = 0
    tcb.stats.segs_out += 1
    tcb.stats.bytes_sent += len(payload)
    if tcb.unacked_since is None:
        tcb.unacked_since = now
    tcb._out.append(seg)


def ack_seq(tcb: Tcb) -> int:
    """The sequence number of a segment without data: SND.MAX (BSD: acceptable even after
    SND.NXT went back for a retransmission), but never beyond the peer's window (Linux's
    ``tcp_acceptable_seq``: after a zero-window probe the window edge is SND.UNA)."""
    seq = tcb.snd_max
    edge = seq_add(tcb.snd_una, tcb.snd_wnd)
    if tcb.state not in (SYN_SENT, SYN_RECEIVED) and seq_gt(seq, edge):
        # the right edge itself fails the RFC 9293 acceptance test for an empty segment
        seq = seq_add(edge, -1) if tcb.snd_wnd else tcb.snd_una
    return seq


def emit_rst(tcb: Tcb, seq: int, ack: int | None) -> None:
    flags = RST | (ACK if ack is not None else 0)
    tcb.stats.segs_out += 1
    tcb._out.append(Segment(seq & MASK, (ack or 0) & MASK, flags, 0))


def output(tcb: Tcb, now: float) -> None:
    """Send whatever the state, the windows, Nagle and pending ACKs allow."""
    st = tcb.state
    if st is CLOSED or st is LISTEN:
        return
    sent_ack = False
    # SYN (first transmission or retransmission after SND.NXT went back to ISS)
    if tcb.snd_nxt == tcb.iss and tcb.snd_una == tcb.iss:
        if st is SYN_SENT:
            flags = SYN
        else:
            flags = SYN | ACK
        retrans = seq_gt(tcb.snd_max, tcb.iss)
        if retrans:
            tcb.stats.retransmits += 1
            if tcb.trace is not None:
                tcb.trace(now, "retransmit", {"seq": tcb.iss, "len": 0, "why": "SYN"})
        elif tcb._rtt_seq is None:
            tcb._rtt_seq = seq_add(tcb.iss, 1)
            tcb._rtt_time = now
        emit(tcb, tcb.iss, flags, b"", now)
        tcb.snd_nxt = seq_add(tcb.iss, 1)
        if seq_gt(tcb.snd_nxt, tcb.snd_max):
            tcb.snd_max = tcb.snd_nxt
        if tcb.rto_at is None:
            tcb.rto_at = now + tcb.rtt.rto
        return
    if st is SYN_SENT or st is TIME_WAIT or ((tcb.iss - tcb.snd_una) & MASK) < HALF:
        if tcb._ack_now and st is not SYN_SENT:
            emit(tcb, ack_seq(tcb), ACK, b"", now)
        return

    if st is not FIN_WAIT_2:
        nxt = tcb.snd_nxt
        sent = (nxt - tcb.snd_data_una) & MASK  # seq_sub(SND.NXT, data SND.UNA)
        if sent > HALF:
            sent -= MOD
        if tcb.recover is None and nxt == tcb.snd_max \
                and tcb.plpmtud.state is _PLPMTUD_DISABLED \
                and len(tcb.sendbuf.data) <= sent \
                and (tcb.fin_seq is None or nxt != tcb.fin_seq):
            tcb._sws_override = False  # nothing new to send: _output_data would do only this
        else:
            sent_ack = output_data(tcb, now)
    if not sent_ack:
        if not tcb._ack_now and tcb.window_update_due():
            tcb._ack_now = True
            tcb.stats.window_updates += 1
        if tcb._ack_now:
            emit(tcb, ack_seq(tcb), ACK, b"", now)
    # timers: retransmission while something is in flight and the window is open; the
    # persist timer when the peer's window is zero and we have something to send
    queued = len(tcb.sendbuf.data)
    if tcb.snd_wnd == 0 and queued > 0:
        tcb.rto_at = None  # zero window: probe instead of timing out
        if tcb.persist_at is None:
            tcb._arm_persist(now)
    elif tcb.snd_una != tcb.snd_max:
        tcb.persist_at = None
        if tcb.rto_at is None:
            tcb.rto_at = now + tcb.rtt.rto
    elif queued > seq_sub(tcb.snd_nxt, tcb.snd_data_una):  # unsent data
        tcb.rto_at = None
        if tcb.persist_at is None:
            tcb._arm_persist(now)  # SWS override timer: small window, nothing in flight
    else:
        tcb.rto_at = tcb.persist_at = None


def window_update_due(tcb: Tcb) -> bool:
    """After the application read: advertise the larger window when it opens from below one
    MSS or at least doubles (a window update, RFC 9293 §3.8.6.2.2). ``output()`` asks when it
    has nothing else to send."""
    cur, offer = receive_window(tcb)
    return offer > cur and (cur < tcb.adv_mss or offer >= 2 * cur)


def output_data(tcb: Tcb, now: float) -> bool:
    """Segmentise queued data (and our FIN); returns True if an ACK went out."""
    sent_ack = False
    mss = tcb.snd_mss
    probe = tcb._plpmtud_want_probe(now) if tcb.plpmtud.engaged else 0
    sendbuf = tcb.sendbuf
    total = len(sendbuf.data)
    fin_seq = tcb.fin_seq
    rec = tcb.rec
    recover = tcb.recover
    sack_recovery = recover is not None and rec.sack_mode
    if sack_recovery and tcb._sack_retransmit(now, rescue=False):
        sent_ack = True  # RFC 6675 NextSeg rule (1): lost holes first
    # constant while this loop runs: SND.UNA, the buffer's base, the windows
    snd_una = tcb.snd_una
    data_una = tcb.snd_data_una
    sack_ok = tcb.sack_ok
    sacked = rec.sacked
    cwnd0 = tcb.cwnd_effective
    dupacks = tcb.dupacks
    limited = recover is None and not sack_ok and 0 < dupacks < DUPACK_THRESHOLD
    while True:
        nxt = tcb.snd_nxt
        gap = 1 << 62
        if sack_ok and len(sacked) and nxt != tcb.snd_max and seq_lt(nxt, tcb.snd_max):
            # resending after a timeout: skip what the peer SACKed (RFC 6675 §5.1)
            pos = tcb._abs(nxt)
            end = sacked.containing(pos)
            if end is not None:
                tcb.snd_nxt = tcb._seq(min(end, tcb._abs(tcb.snd_max)))
                continue
            nxt_sacked = sacked.next_start(pos)
            if nxt_sacked is not None:
                gap = nxt_sacked - pos
        off = (nxt - data_una) & MASK
        if off > HALF:
            off -= MOD
        avail = total - off
        send_fin = False
        if avail <= 0:  # nothing new to send (n would be <= 0 whatever the windows)
            if fin_seq is None or nxt != fin_seq:
                break
            n = 0
            send_fin = True
        else:
            in_flight = (nxt - snd_una) & MASK
            if in_flight > HALF:
                in_flight -= MOD
            cwnd = cwnd0
            if limited and nxt == tcb.snd_max:
                cwnd += dupacks * mss  # limited transmit (RFC 3042): new data only
            if sack_ok and (len(sacked) or rec.in_recovery):
                pipe = tcb._in_flight()
            else:
                pipe = in_flight
            usable = tcb.snd_wnd - in_flight
            if cwnd - pipe < usable:
                usable = cwnd - pipe
            n = mss
            if avail < n:
                n = avail
            if usable < n:
                n = usable
            if gap < n:
                n = gap
            if probe and nxt == tcb.snd_max:  # PLPMTUD: this new segment may probe
                n = tcb._plpmtud_probe_len(probe, avail, usable, n, now)
                probe = 0
            if n <= 0:
                n = 0
                if not (fin_seq is not None and nxt == fin_seq):
                    break
                send_fin = True
            else:
                if n == usable and n < mss and n < avail and n < gap \
                        and not tcb._sws_override:
                    if n < tcb.max_sndwnd // 2 or tcb.max_sndwnd == 0:
                        break  # window-limited: sender SWS avoidance (RFC 9293 §3.8.6.2.1)
                elif n < mss and n == avail and not tcb.config.nodelay and in_flight > 0 \
                        and fin_seq is None:
                    break  # Nagle (RFC 9293 §3.7.4): wait for the ACK of outstanding data
                if fin_seq is not None and ((nxt + n) & MASK) == fin_seq:
                    send_fin = True
        seq = nxt
        snd_max = tcb.snd_max
        retrans = seq != snd_max and ((snd_max - seq) & MASK) < HALF  # seq_lt(seq, snd_max)
        flags = ACK
        if n and n == avail:
            flags |= PSH
        if send_fin:
            flags |= FIN
        payload = bytes(sendbuf.data[off:off + n]) if n else b""
        if retrans:
            tcb.stats.retransmits += 1
            tcb.stats.bytes_retrans += n
            if tcb.trace is not None:
                tcb.trace(now, "retransmit", {"seq": seq, "len": n, "why": "rto"})
        elif n and tcb._rtt_seq is None and not tcb.ts_ok:
            tcb._rtt_seq = seq_add(seq, n)
            tcb._rtt_time = now
        emit(tcb, seq, flags, payload, now)
        sent_ack = True
        nxt = tcb.snd_nxt = (seq + n + (1 if send_fin else 0)) & MASK
        if nxt != snd_max and ((nxt - snd_max) & MASK) < HALF:  # seq_gt(nxt, snd_max)
            tcb.snd_max = nxt
        if tcb.rto_at is None:
            tcb.rto_at = now + tcb.rtt.rto
        if send_fin:
            break
    if sack_recovery and tcb.recover is not None and tcb._sack_retransmit(now, rescue=True):
        sent_ack = True  # NextSeg rule (3): no new data went out, resend below the top SACK
    tcb._sws_override = False
    return sent_ack
