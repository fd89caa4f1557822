"""Loss recovery on a hand-driven TCB pair: fast retransmit / fast recovery (RFC 5681), NewReno
partial ACKs (RFC 6582), SACK-based recovery (RFC 6675), limited transmit (RFC 3042), D-SACK
(RFC 2883), RTO with the scoreboard. Segments are dropped deterministically by index."""

from __future__ import annotations

import pytest

from stacklab.stack.tcp.config import TcpConfig
from stacklab.stack.tcp.recovery import RangeSet, Recovery
from stacklab.stack.tcp.seq import seq_sub
from stacklab.wire.tcp import TcpView

from .pair import Pair

MSS = 1448  # 1500 - 40 - 12 (timestamps)


def transfer(drops: set[int], *, sack: bool, nseg: int = 30, cc: str = "reno",
             drop_first_retransmit_of: set[int] = frozenset(), timestamps: bool = True,
             extra_drop=None, cwnd_segments: int | None = None, early_retrans: int = 3,
             recovery: int = 1) -> Pair:
    """A sends ``nseg`` full segments to B; the first transmission of segment k (k in
    ``drops``) is lost, and for k in ``drop_first_retransmit_of`` its first retransmission too."""
    cfg = TcpConfig(sack=sack, congestion=cc, timestamps=timestamps, nodelay=True,
                    early_retrans=early_retrans, recovery=recovery)
    p = Pair(cfg, cfg)
    seen: dict[int, int] = {}

    def filt(direction: str, v: TcpView) -> TcpView | None:
        if direction == "a>b" and v.payload_len:
            k = seq_sub(v.seq, p.a.iss + 1) // p.a.snd_mss
            seen[k] = seen.get(k, 0) + 1
            if seen[k] == 1 and k in drops:
                return None
            if seen[k] == 2 and k in drop_first_retransmit_of:
                return None
        if extra_drop is not None and extra_drop(direction, v):
            return None
        return v

    p.filter = filt
    p.handshake()
    data = bytes(range(256)) * (nseg * p.a.snd_mss // 256 + 1)
    data = data[: nseg * p.a.snd_mss]
    assert p.a.send(data) == len(data)
    if cwnd_segments is not None:
        p.a.cc.cwnd = cwnd_segments * p.a.snd_mss
    p.a.output(p.now)
    p.run(until=30.0)
    got = p.b.read()
    assert got == data, "every byte delivered in order"
    p.seen = seen  # type: ignore[attr-defined]
    return p


@pytest.mark.parametrize("sack", [True, False])
@pytest.mark.parametrize("cc", ["reno", "cubic"])
def test_single_loss_one_fast_retransmit(sack, cc):
    p = transfer({3}, sack=sack, cc=cc)
    st = p.a.stats
    assert st.retransmits == 1 and st.fast_retransmits == 1 and st.recoveries == 1
    assert st.rto_expiries == 0
    assert p.a.sack_ok is sack
    assert p.seen[3] == 2 and all(n == 1 for k, n in p.seen.items() if k != 3)


@pytest.mark.parametrize("sack", [True, False])
def test_two_losses_in_one_window_one_recovery(sack):
    p = transfer({2, 6}, sack=sack)
    st = p.a.stats
    # RFC 6675: both holes resent in one episode; RFC 6582: the partial ACK resends the second
    assert st.retransmits == 2 and st.recoveries == 1 and st.rto_expiries == 0
    assert p.seen[2] == 2 and p.seen[6] == 2


@pytest.mark.parametrize("sack", [True, False])
def test_many_losses_in_one_window(sack):
    drops = {1, 3, 4, 6, 8}
    p = transfer(drops, sack=sack)
    st = p.a.stats
    assert st.retransmits == len(drops)  # each lost segment resent exactly once
    assert st.recoveries == 1 and st.rto_expiries == 0
    assert p.b.stats.dup_segments == 0  # nothing the receiver already had came again


def test_newreno_partial_acks_each_resend_the_next_hole():
    p = transfer({2, 5, 8}, sack=False)
    delivered = [v for d, v in p.log if d == "a>b" and v.payload_len]
    assert p.a.stats.retransmits == 3 and p.a.stats.fast_retransmits == 1
    assert p.a.stats.rto_expiries == 0
    assert len(delivered) == 30 and sum(p.seen.values()) == 33


def test_recovery_ssthresh_halves_reno_and_cubic_beta():
    for cc, factor in (("reno", 0.5), ("cubic", 0.7)):
        p = transfer({12}, sack=True, nseg=40, cc=cc)
        ss = p.a.cc.ssthresh
        # cwnd when the loss was detected was at least IW (10) segments
        assert ss >= int(10 * MSS * factor) - MSS
        assert p.a.stats.recoveries == 1


def test_tail_loss_needs_the_rto_without_loss_probes():
    # nothing after the lost tail to trigger dupacks; tcp_early_retrans=0: no TLP
    p = transfer({27, 28, 29}, sack=True, early_retrans=0)
    st = p.a.stats
    assert st.rto_expiries >= 1 and st.fast_retransmits == 0
    assert st.retransmits == 3


def test_tail_loss_repaired_by_a_loss_probe():
    # RFC 8985 §7: the probe resends the last segment; its SACK lets RACK mark the two before
    # it lost, and fast recovery (not the RTO) resends them
    p = transfer({27, 28, 29}, sack=True)
    st = p.a.stats
    assert st.loss_probes == 1 and st.rto_expiries == 0 and st.fast_retransmits == 1
    assert st.retransmits == 3


def test_lost_retransmission_rto_resends_only_the_holes_with_sack():
    # RFC 6675 alone (tcp_recovery=0) cannot tell a lost retransmission: the RTO repairs it
    p = transfer({2, 5}, sack=True, drop_first_retransmit_of={2}, recovery=0)
    st = p.a.stats
    assert st.rto_expiries == 1
    assert p.b.stats.dup_segments == 0  # the RTO skipped everything SACKed
    assert p.seen[2] == 3 and p.seen[5] == 2


def test_rack_detects_a_lost_retransmission_without_the_rto():
    # RFC 8985 §2.2: segments sent after the retransmission are SACKed, so it is lost by time
    p = transfer({2, 5}, sack=True, drop_first_retransmit_of={2})
    st = p.a.stats
    assert st.rto_expiries == 0 and st.recoveries == 1
    assert p.b.stats.dup_segments == 0
    assert p.seen[2] == 3 and p.seen[5] == 2


@pytest.mark.parametrize("sack", [True, False])
def test_limited_transmit_turns_two_dupacks_into_a_fast_retransmit(sack):
    # cwnd of 3 segments, the first lost: only two duplicate ACKs come back. Limited transmit
    # (RFC 3042) sends a new segment for each, whose ACKs make the third duplicate: no RTO.
    p = transfer({0}, sack=sack, nseg=8, cwnd_segments=3)
    assert p.a.stats.fast_retransmits == 1 and p.a.stats.rto_expiries == 0
    assert p.a.stats.retransmits == 1


def test_sack_blocks_most_recent_first_and_bounded():
    cfg = TcpConfig(nodelay=True)
    p = Pair(cfg, cfg)
    p.handshake()
    a, b = p.a, p.b
    mss = a.snd_mss
    a.send(b"x" * 12 * mss)
    a.output(p.now)
    segs = p.segs(a)  # the IW of 10 segments
    assert len(segs) == 10
    acks = []
    for k in (1, 3, 5, 7, 9):  # five islands
        b.receive(segs[k], p.now)
        acks += p.segs(b)
    blocks = acks[-1].sack_blocks()
    assert len(blocks) == 3  # timestamps leave room for three blocks
    base = a.iss + 1
    assert blocks[0] == (base + 9 * mss, base + 10 * mss)  # the most recent first
    assert blocks[1] == (base + 7 * mss, base + 8 * mss)
    b.receive(segs[4], p.now)  # joins 3 and 5: that block comes first
    blocks = p.segs(b)[-1].sack_blocks()
    assert blocks[0] == (base + 3 * mss, base + 6 * mss)


def test_sack_four_blocks_without_timestamps():
    cfg = TcpConfig(nodelay=True, timestamps=False)
    p = Pair(cfg, cfg)
    p.handshake()
    a, b = p.a, p.b
    a.send(b"x" * 10 * a.snd_mss)
    a.output(p.now)
    segs = p.segs(a)
    for k in (1, 3, 5, 7, 9):
        b.receive(segs[k], p.now)
    assert len(p.segs(b)[-1].sack_blocks()) == 4


def test_dsack_sent_for_duplicate_and_read_by_sender():
    cfg = TcpConfig(nodelay=True)
    p = Pair(cfg, cfg)
    p.handshake()
    a, b = p.a, p.b
    a.send(b"y" * 2 * a.snd_mss)
    a.output(p.now)
    segs = p.segs(a)
    p.to_b(segs)
    p.to_a(p.segs(b))
    p.now += 0.01
    p.to_b([segs[0]])  # a duplicate
    acks = p.segs(b)
    assert acks and acks[0].sack_blocks()
    left, right = acks[0].sack_blocks()[0]
    assert (left, right) == (segs[0].seq, segs[0].seq + segs[0].payload_len)
    assert b.stats.dsacks_out == 1
    p.to_a(acks)
    assert a.stats.dsacks_in == 1
    assert a.stats.fast_retransmits == 0 and a.stats.dup_acks_in == 0


def test_rangeset_and_scoreboard_rules():
    rs = RangeSet()
    assert rs.add(10, 20) == 10 and rs.add(15, 25) == 5 and rs.add(30, 40) == 10
    assert list(rs) == [(10, 25), (30, 40)] and rs.add(25, 30) == 5 and list(rs) == [(10, 40)]
    rs.remove_below(12)
    assert list(rs) == [(12, 40)] and rs.covered_between(0, 20) == 8
    rec = Recovery()
    mss = 100
    # holes at [0,100) and [200,300); SACKed [100,200) [300,600)
    assert rec.on_sack(0, 1000, [(300, 600), (100, 200)]) == 400
    assert rec.is_lost(0, 0, mss) and rec.is_lost(200, 0, mss) and not rec.is_lost(600, 0, mss)
    # pipe: 1000 sent, 400 SACKed, 200 lost: 400 (RFC 6675 SetPipe)
    assert rec.pipe(0, 1000, mss) == 400
    rec.enter(1000, True)
    assert rec.next_seg(0, 1000, mss) == (0, 100)
    rec.on_retransmit(0, 100)
    assert rec.pipe(0, 1000, mss) == 500  # the retransmission is in flight again
    assert rec.next_seg(0, 1000, mss) == (200, 100)
    # D-SACK: a first block below SND.UNA
    assert rec.on_sack(0, 1000, [(-100, 0), (100, 200)]) == 0 and rec.dsacks == 1


def test_stale_timestamp_echo_after_timeouts_is_no_rtt_sample():
    """All ACKs lost for several timeouts: the ACK that finally arrives echoes the TSval of
    the first transmission (the receiver's TS.Recent; the retransmissions were duplicates).
    Measuring from it would take the whole outage as the RTT (RFC 6298 §3 Karn, RFC 7323 §4)."""
    p = Pair()
    p.handshake()
    p.segs(p.a)
    p.segs(p.b)
    srtt = p.a.rtt.srtt
    lose = [True]
    p.filter = lambda d, v: None if d == "b>a" and lose[0] else v
    p.a.send(b"x" * 1000)
    p.a.output(p.now)
    p.run(until=p.now + 4.0)
    assert p.a.stats.rto_expiries >= 4
    lose[0] = False
    p.run(until=p.now + 10.0)
    assert p.a.snd_una == p.a.snd_max  # delivered and acknowledged
    assert p.a.rtt.srtt == srtt  # no sample from the stale echo
