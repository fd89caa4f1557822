"""MSG_ZEROCOPY completion bookkeeping (stacklab/stack/tcp/zerocopy.py)."""

from stacklab.stack.tcp.zerocopy import ZeroCopy, frag_ends


def test_one_call_written_in_pieces_takes_one_id() -> None:
    # a blocking send larger than the send buffer queues in several pieces: one id, completed
    # once its last piece is acknowledged
    zc = ZeroCopy()
    zc.queued(100, new_call=True)
    zc.queued(250, new_call=False)
    zc.acked(100)
    assert zc.take() is None
    zc.queued(300, new_call=True)
    zc.acked(250)
    assert zc.take() == (0, 0)
    zc.acked(300)
    assert zc.take() == (1, 1)
    assert zc.next_id == 2


def test_completions_coalesce_until_read() -> None:
    zc = ZeroCopy()
    for end in (10, 20, 30):
        zc.queued(end, new_call=True)
    zc.acked(10)
    zc.acked(30)
    assert zc.take() == (0, 2)
    assert zc.take() is None
    zc.queued(40, new_call=True)
    zc.acked(40)
    assert zc.take() == (3, 3)


def test_an_skb_fills_every_17_non_empty_elements() -> None:
    assert frag_ends([1] * 18) == [17]
    assert frag_ends([0, 2] * 20) == [34]
    assert frag_ends([1] * 34) == [17, 34]
    assert frag_ends([1000] * 16) == []


def test_flush_completes_what_is_pending() -> None:
    zc = ZeroCopy()
    zc.queued(10, new_call=True)
    zc.queued(20, new_call=True)
    zc.flush()
    assert zc.take() == (0, 1)
    zc.flush()
    assert zc.take() is None
