"""Undo of spurious recoveries and timeouts (undo.py, as Linux tcp_try_undo_*): D-SACK
(RFC 2883 §5) and the Eifel detection (RFC 3522). The packet-exact fast-recovery case is
tests/packetdrill/scripts/undo-dsack-fast-recovery.pkt."""

from __future__ import annotations

from stacklab.stack.tcp.config import TcpConfig
from stacklab.stack.tcp.undo import Undo
from stacklab.wire.tcp import TcpView

from .pair import Pair


def test_spurious_timeout_undone_by_the_dsack_of_its_retransmission() -> None:
    # every segment arrives, but the receiver's ACKs are lost until the RTO has fired: the
    # retransmission is a duplicate, which the receiver D-SACKs; the sender then knows the
    # timeout was spurious and takes back cwnd and ssthresh
    cfg = TcpConfig(nodelay=True, early_retrans=0)  # no probe: the RTO itself
    p = Pair(cfg, cfg)
    p.handshake()
    cwnd0 = p.a.cc.cwnd

    def filt(direction: str, v: TcpView) -> TcpView | None:
        if direction == "b>a" and p.a.stats.rto_expiries == 0:
            return None  # the ACKs of the originals are lost
        return v

    p.filter = filt
    assert p.a.send(b"x" * (4 * p.a.snd_mss)) == 4 * p.a.snd_mss
    p.a.output(p.now)
    p.run(until=5.0)
    st = p.a.stats
    assert st.rto_expiries == 1 and st.dsacks_in >= 1
    assert st.spurious_undos == 1
    assert p.a.cc.cwnd == cwnd0 and p.a.cc.ssthresh >= 1 << 29  # back to before the RTO
    assert p.b.read() == b"x" * (4 * p.a.snd_mss)


def test_eifel_an_ack_echoing_the_original_shows_the_retransmission_spurious() -> None:
    # RFC 3522 §3.2: the ACK echoes the timestamp of the original transmission (older than the
    # first retransmission's): the original arrived, the episode was not needed
    u = Undo()
    u.start(cwnd=14480, ssthresh=1 << 30)
    u.on_retransmit(tsval=5000)
    assert u.spurious(tsecr=4990) and not u.spurious(tsecr=5000)
    assert not u.spurious(tsecr=None)
    assert u.undo(cwnd=1448, ssthresh=7240) == (14480, 1 << 30)
    assert not u.active


def test_dsacks_must_cover_every_retransmission() -> None:
    u = Undo()
    u.start(cwnd=10, ssthresh=20)
    u.on_retransmit(None)
    u.on_retransmit(None)
    u.on_dsack(1)
    assert not u.spurious(None)  # one retransmission may have repaired a real loss
    u.on_dsack(1)
    assert u.spurious(None)


def _rto_with_acks_lost(frto: int) -> Pair:
    # the first segment is lost, the other three arrive, and every ACK until the RTO is lost:
    # the retransmission's ACK covers all four, three of them never resent (and no D-SACK, no
    # old timestamp: only F-RTO can tell)
    cfg = TcpConfig(nodelay=True, early_retrans=0, frto=frto)
    p = Pair(cfg, cfg)
    p.handshake()
    first = {"seen": 0}

    def filt(direction: str, v: TcpView) -> TcpView | None:
        if direction == "a>b" and v.payload_len and v.seq == p.a.iss + 1:
            first["seen"] += 1
            if first["seen"] == 1:
                return None
        if direction == "b>a" and p.a.stats.rto_expiries == 0:
            return None
        return v

    p.filter = filt
    p.a.send(b"y" * (4 * p.a.snd_mss))
    p.a.output(p.now)
    p.run(until=5.0)
    assert p.b.read() == b"y" * (4 * p.a.snd_mss)
    assert p.a.stats.rto_expiries == 1 and p.a.stats.dsacks_in == 0
    return p


def test_frto_never_resent_data_acknowledged_after_a_timeout_undoes_it() -> None:
    # RFC 5682 §3.1 step 3b (SACK-enhanced, Linux tcp_frto=2): not all data was lost
    p = _rto_with_acks_lost(frto=2)
    assert p.a.stats.spurious_undos == 1 and p.a.stats.retransmits == 1
    assert p.a.cc.ssthresh >= 1 << 29  # back to before the timeout


def test_without_frto_the_timeout_stands() -> None:
    p = _rto_with_acks_lost(frto=0)
    assert p.a.stats.spurious_undos == 0 and p.a.cc.ssthresh < 1 << 29


def test_eifel_compares_with_the_first_retransmission_only() -> None:
    # the ACK that ended the check consumed it (rack._try_undo clears first_tsval); a later
    # retransmission must not re-arm it: an ACK echoing a segment sent between the two would
    # undo a timeout whose losses were real (the PMTUD black hole of examples/ stalled so)
    u = Undo()
    u.start(cwnd=10, ssthresh=20)
    u.on_retransmit(tsval=5000)
    u.first_tsval = None
    u.on_retransmit(tsval=6000)
    assert not u.spurious(tsecr=5500)
