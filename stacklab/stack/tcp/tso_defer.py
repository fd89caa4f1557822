"""Linux's TSO deferral (``tcp_tso_should_defer``): hold back the rest of a send buffer (skb)
that the congestion window cuts short, when an ACK that opens the window is due soon.

Linux sends an skb of several segments whole where it can; when cwnd (or the peer's window)
leaves room for only a part, it may wait for the next ACK and send a bigger TSO packet then. It
does not wait (it sends the part, ``tso_fragment``) when

* the connection is in recovery or loss (``icsk_ca_state >= TCP_CA_Recovery``); stacklab
  defers in the Open state only, so that limited transmit (RFC 3042) sends what duplicate ACKs
  and SACKs allow as before;
* nothing was sent for more than a jiffy (``tcp_jiffies32 - lsndtime > 1``: 1 ms at HZ 1000);
* the room is a full TSO packet (``tcp_tso_autosize``'s segments, tso.py);
* the skb is not the last one queued and fits the room whole (it will get no more data);
* the room is at least a third of the smaller window (``net.ipv4.tcp_tso_win_divisor`` 3);
* the oldest segment in flight left less than half an SRTT ago: its ACK comes late.

Deferring because cwnd is what stops the skb counts as being cwnd-limited (so cwnd still grows:
``tcp_cwnd_validate``, RFC 7661). With the rest held back, the packets in flight stay below cwnd,
which lets the ACK grow an autotuned send buffer (``tcp_should_expand_sndbuf``, sndbuf.py).
"""

from __future__ import annotations

from .tso import autosize_segs

TSO_WIN_DIVISOR = 3  # net.ipv4.tcp_tso_win_divisor
JIFFY = 0.001  # HZ 1000


def should_defer(skb_len: int, is_tail: bool, cong_win: int, send_win: int, snd_wnd: int,
                 cwnd: int, ssthresh: int, mss: int, srtt: float | None, min_tso_segs: int,
                 idle: float, head_age: float | None) -> tuple[bool, bool]:
    """(defer, cwnd_limited) for the unsent rest of one skb, ``skb_len`` bytes (more than one
    segment) starting at SND.NXT: ``cong_win`` the bytes cwnd leaves, ``send_win`` those the
    peer's window leaves from there, ``idle`` the time since data was last sent, ``head_age``
    how long ago the oldest segment in flight went (None: nothing in flight). (Positional
    parameters: the send path calls it positionally, for most ACKs; a keyword call of twelve
    costs twice as much.)"""
    # (each test alone says no; the full TSO packet's, the dearest, is asked last: in the bulk
    # runs it never says no alone, and the others say no to a fifth to a third of the skbs)
    if idle > JIFFY:
        return False, False
    limit = send_win if send_win < cong_win else cong_win
    if not is_tail and limit >= skb_len:
        return False, False
    if limit >= (snd_wnd if snd_wnd < cwnd else cwnd) // TSO_WIN_DIVISOR:  # (min())
        return False, False
    # the next ACK is due in SRTT - head_age; at most half an SRTT away: worth waiting for
    # (just sent, as in the same burst: send now, as Linux's microsecond clock sees it)
    if head_age is None or srtt is None or head_age <= srtt / 2:
        return False, False
    if limit >= autosize_segs(cwnd, ssthresh, mss, srtt, min_tso_segs) * mss:
        return False, False  # a full TSO packet fits the room: it goes
    return True, cong_win < send_win and cong_win <= skb_len


__all__ = ["TSO_WIN_DIVISOR", "should_defer"]
