"""The one transmission log (sent.py): a record per data segment sent, by position; a resend
of part of a record splits it, the rest keeping its first transmission; the path MTU decrease
keeps in flight the ranges whose latest transmission fits the new MSS."""

from __future__ import annotations

from stacklab.stack.tcp.sent import SentLog


def test_a_partial_resend_splits_the_record_and_the_rest_keeps_its_transmission():
    log = SentLog()
    log.on_sent(0, 2000, 2000, 0.0, False, False)
    log.on_sent(2000, 3001, 1000, 0.0, False, True)  # data and FIN
    rec, unsacked = log.on_sent(500, 1000, 500, 0.3, True, False)
    assert unsacked == 0 and rec.retrans and rec.xmit == 0.3
    assert [(s.start, s.end, s.xmit, s.retrans) for s in log.records] == [
        (0, 500, 0.0, False), (500, 1000, 0.3, True), (1000, 2000, 0.0, False),
        (2000, 3001, 0.0, False)]
    assert log.fin_end == 3001


def test_the_cumulative_ack_removes_what_it_covers_and_trims_a_partly_acked_record():
    log = SentLog()
    for i in range(3):
        log.on_sent(i * 1000, (i + 1) * 1000, 1000, 0.0, False, False)
    assert [(s.start, s.end) for s in log.acked(1500)] == [(0, 1000)]
    assert [(s.start, s.end) for s in log.records] == [(1500, 2000), (2000, 3000)]


def test_after_a_mtu_decrease_only_what_went_out_in_larger_segments_is_resent():
    log = SentLog()
    log.on_sent(0, 1400, 1400, 0.0, False, False)
    log.on_sent(1400, 2800, 1400, 0.0, False, False)
    log.on_sent(2800, 3000, 200, 0.0, False, False)  # the short tail of the burst
    log.on_sent(0, 1000, 1000, 0.1, True, False)  # resent after an earlier drop, fits
    assert log.fitting(0, 3000, 1000) == [(0, 1000), (2800, 3000)]
    assert log.fitting(500, 2900, 1000) == [(500, 1000), (2800, 2900)]
