"""Where Linux's PSH bits fall in a burst of new data: at the end of each TSO packet.

Linux hands the device TSO packets (super-segments) and the device (or GSO) cuts each into MSS
segments, the PSH of the packet on its last one. ``tcp_write_xmit`` sizes each packet of new data
it sends at one go as at most

* half the congestion window (``tcp_cwnd_test``: "at least 2 GSO packets in flight"),
* what the congestion window has left (cwnd - packets in flight),
* ``tcp_tso_autosize``: about 1 ms at the pacing rate (``sk_pacing_rate >> sk_pacing_shift``,
  plus ``gso_max_size >> (min_rtt_us >> tcp_tso_rtt_log)`` on short paths), at least
  ``tcp_min_tso_segs`` (2) segments, at most ``gso_max_size`` (64 KiB) bytes,

and the packets Linux sends this way carry PSH when they hold two or more segments, not when a
packet is a single segment cut from the middle of the queue (the upstream packetdrill scripts
``slow-start-after-idle``, ``limited-transmit-*``, ``cubic-rto-ss-ca-cwnd-bump`` show both).
stacklab marks the last segment of each such packet to look the same on the wire; on a device
that segments itself (gso.py) it also hands the kernel these very packets.
The pacing rate is Linux's ``tcp_update_pacing_rate``: cwnd * MSS / SRTT, times 2 in slow start
(cwnd below half of ssthresh), else times 1.2.
"""

from __future__ import annotations

from math import floor

GSO_MAX_SIZE = 65536
TSO_RTT_LOG = 9  # net.ipv4.tcp_tso_rtt_log
PACING_SHIFT = 10  # sk_pacing_shift: ~1 ms of data per TSO packet


def autosize_segs(cwnd: int, ssthresh: int, mss: int, srtt: float | None,
                  min_segs: int) -> int:
    """``tcp_tso_autosize`` in segments (``srtt`` stands in for min_rtt; ``min_segs`` is
    ``tcp_min_tso_segs``)."""
    if srtt is None or srtt <= 0:
        return max(GSO_MAX_SIZE // mss, min_segs)  # no rate yet: ~0U, as Linux
    ratio = 2.0 if cwnd < ssthresh // 2 else 1.2
    # (floor(), not int(): the same for these positive values, at a third of the cost; asked
    # for most ACKs, the TSO deferral's)
    nbytes = floor(cwnd * ratio / srtt) >> PACING_SHIFT
    r = floor(srtt * 1e6) >> TSO_RTT_LOG
    if r < 32:
        nbytes += GSO_MAX_SIZE >> r
    # max(min(nbytes, GSO_MAX_SIZE) // mss, min_segs), written out (asked after every ACK)
    segs = (nbytes if nbytes < GSO_MAX_SIZE else GSO_MAX_SIZE) // mss
    return segs if segs > min_segs else min_segs


def quota(cwnd_segs: int, in_flight: int, auto: int) -> int:
    """The segments of the next TSO packet (``tcp_write_xmit``): at most half the congestion
    window (``cwnd_segs``, in segments), what it has left over ``in_flight`` segments and the
    autosize ``auto``; at least one. ``packet_ends`` and ``gso.send_packets`` cut by it."""
    return max(min(max(cwnd_segs >> 1, 1), cwnd_segs - in_flight, auto), 1)


def packet_ends(lengths: list[int], pushed: list[bool], flight: int, cwnd: int,
                ssthresh: int, mss: int, srtt: float | None, min_segs: int) -> list[int]:
    """Indexes (into ``lengths``, the new data segments of one burst in order) of the segments
    that end a Linux TSO packet of two or more segments: those get PSH. ``pushed`` marks the
    segments that already end a write (a packet ends there too); ``flight`` is the bytes in
    flight before the burst."""
    cwnd_segs = max(cwnd // mss, 1)
    auto = autosize_segs(cwnd, ssthresh, mss, srtt, min_segs)
    in_flight = -(-flight // mss)
    ends: list[int] = []
    i, n = 0, len(lengths)
    while i < n:
        q = quota(cwnd_segs, in_flight, auto)
        j = i
        while j < n and j - i < q:
            j += 1
            if pushed[j - 1]:
                break
        if j - i >= 2:
            ends.append(j - 1)
        in_flight += j - i
        i = j
    return ends


def packet_ends_run(n: int, pushed: list[int], flight: int, cwnd: int, ssthresh: int,
                    mss: int, srtt: float | None, min_segs: int) -> list[int]:
    """:func:`packet_ends` (its specification) for a burst of ``n`` segments given as
    ``pushed``, the ascending indexes of those that end a write: cut once per packet, not
    per segment (the send fast path's uniform runs, ``TcbOutput._push_run``)."""
    cwnd_segs = max(cwnd // mss, 1)
    auto = autosize_segs(cwnd, ssthresh, mss, srtt, min_segs)
    in_flight = -(-flight // mss)
    half = max(cwnd_segs >> 1, 1)
    ends: list[int] = []
    i = k = 0
    np = len(pushed)
    while i < n:
        q = cwnd_segs - in_flight  # quota(), written out
        if half < q:
            q = half
        if auto < q:
            q = auto
        if q < 1:
            q = 1
        j = i + q
        if j > n:
            j = n
        while k < np and pushed[k] < i:
            k += 1
        if k < np and pushed[k] < j:
            j = pushed[k] + 1  # the packet ends with the write
        if j - i >= 2:
            ends.append(j - 1)
        in_flight += j - i
        i = j
    return ends


__all__ = ["autosize_segs", "packet_ends", "packet_ends_run", "quota"]
