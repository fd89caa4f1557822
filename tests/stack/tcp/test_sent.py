"""The one transmission log (sent.py): a record per data segment sent, by position; a resend
of part of a record splits it, the rest keeping its first transmission; the path MTU decrease
keeps in flight the ranges whose latest transmission fits the new MSS."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stacklab.stack.tcp.sent import Sent, SentLog


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


def test_a_resend_joins_whole_small_records_up_to_an_mss_with_their_psh():
    log = SentLog()
    for i in range(4):  # four 300-byte writes sent one by one, each with PSH
        log.on_sent(i * 300, (i + 1) * 300, 300, 0.0, False, False, True)
    assert log.resend(0, 1000) == 900  # the fourth would not fit whole
    assert log.pushed(0, 900)
    assert log.resend(900, 1000) == 300
    log.records[2].sacked = True  # a SACKed record is not joined
    assert log.resend(0, 1000) == 600


def test_a_resend_cut_inside_a_record_leaves_its_psh_to_the_rest():
    log = SentLog()
    log.on_sent(0, 1000, 1000, 0.0, False, False, True)
    assert not log.pushed(0, 600)  # Linux tcp_fragment: PSH on the second part only
    rec, _ = log.on_sent(0, 600, 600, 0.2, True, False, False)
    assert [(s.start, s.end, s.psh) for s in log.records] == [(0, 600, False), (600, 1000, True)]
    assert log.pushed(600, 400)


def test_sack_blocks_count_only_whole_records():
    log = SentLog()
    log.on_sent(0, 1000, 1000, 0.0, False, False)
    log.on_sent(1000, 2001, 1000, 0.0, False, True)  # the last data byte and the FIN
    assert log.whole(999, 2000) == (1000, 2000)  # part of the first: nothing of it
    assert log.whole(500, 1500) == (1000, 1000)  # empty
    s, e = log.whole(1200, 2000)
    assert s >= e


def _state(log: SentLog) -> tuple:
    # the compiled tier's Sent is a native class: its attributes are __mypyc_attrs__
    fields = list(getattr(Sent, "__slots__", ()) or Sent.__mypyc_attrs__)
    return (log.order, log.fin_end, log.retrans_top,
            [tuple(getattr(s, f) for f in fields) for s in log.records],
            [tuple(getattr(s, f) for f in fields) for s in log.tsorted])


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 5), st.integers(0, 40), st.sampled_from([536, 1448]), st.data())
def test_on_sent_run_is_on_sent_for_each_segment_of_the_run(before, count, size, data):
    # the run at once against one on_sent per segment (its specification), field by field,
    # after a log of `before` records (none: the first of the log), some SACKed and resent
    pushed = sorted(data.draw(st.sets(st.integers(0, count - 1), max_size=5))) if count else []
    stamps = data.draw(st.sampled_from([None, Sent(0, 1, 0.5, False, 1, 1)]))
    if stamps is not None:
        stamps.delivered, stamps.delivered_time, stamps.first_sent = 7, 0.25, 0.125
        stamps.app_limited = True
    gap = data.draw(st.sampled_from([0, 0, 100, -size]))  # -size: below the last record
    logs = [SentLog(), SentLog()]
    for log in logs:
        for i in range(before):
            log.on_sent(i * size, (i + 1) * size, size, 0.1 * i, False, False)
        if before > 1:
            log.records[0].sacked = True
    start = max(before * size + gap, 0)
    spec, run = logs
    unsacked = 0
    for k in range(count):
        rec, n = spec.on_sent(start + k * size, start + (k + 1) * size, size, 1.0, False,
                              False, k in pushed)
        unsacked += n
        if stamps is not None:
            rec.delivered, rec.delivered_time = stamps.delivered, stamps.delivered_time
            rec.first_sent, rec.app_limited = stamps.first_sent, stamps.app_limited
    assert run.on_sent_run(start, count, size, 1.0, pushed, stamps) == unsacked
    assert _state(run) == _state(spec)
