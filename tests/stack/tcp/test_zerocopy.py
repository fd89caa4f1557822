"""MSG_ZEROCOPY completion bookkeeping (stacklab/stack/tcp/zerocopy.py)."""

from stacklab.stack.tcp.errqueue import ErrQueue, ExtendedErr
from stacklab.stack.tcp.zerocopy import ZeroCopy, frag_ends


def take(q: ErrQueue) -> tuple[int, int] | None:
    """recvmsg(MSG_ERRQUEUE) of a completion: its id range (ee_info, ee_data)."""
    e = q.take()
    return None if e is None else (e.ee_info, e.ee_data)


def test_one_call_written_in_pieces_takes_one_id() -> None:
    # a blocking send larger than the send buffer queues in several pieces: one id, completed
    # once its last piece is acknowledged
    zc = ZeroCopy(q := ErrQueue())
    zc.queued(100, new_call=True)
    zc.queued(250, new_call=False)
    zc.acked(100)
    assert take(q) is None
    zc.queued(300, new_call=True)
    zc.acked(250)
    assert take(q) == (0, 0)
    zc.acked(300)
    assert take(q) == (1, 1)
    assert zc.next_id == 2


def test_completions_coalesce_until_read() -> None:
    zc = ZeroCopy(q := ErrQueue())
    for end in (10, 20, 30):
        zc.queued(end, new_call=True)
    zc.acked(10)
    zc.acked(30)
    assert take(q) == (0, 2)
    assert take(q) is None
    zc.queued(40, new_call=True)
    zc.acked(40)
    assert take(q) == (3, 3)


def test_an_skb_fills_every_17_non_empty_elements() -> None:
    assert frag_ends([1] * 18) == [17]
    assert frag_ends([0, 2] * 20) == [34]
    assert frag_ends([1] * 34) == [17, 34]
    assert frag_ends([1000] * 16) == []


def test_flush_completes_what_is_pending() -> None:
    zc = ZeroCopy(q := ErrQueue())
    zc.queued(10, new_call=True)
    zc.queued(20, new_call=True)
    zc.flush()
    assert take(q) == (0, 1)
    zc.flush()
    assert take(q) is None


def test_a_range_extends_only_the_queue_tail() -> None:
    # Linux skb_zerocopy_notify_extend: a completion joins the last entry of the error queue
    # only if that is a zero-copy range; another report in between starts a new range
    zc = ZeroCopy(q := ErrQueue())
    for end in (10, 20):
        zc.queued(end, new_call=True)
    zc.acked(10)
    q.append(ExtendedErr(42, 4, 0, 1, 7))  # e.g. a TX timestamp (tstamp.py)
    zc.acked(20)
    assert take(q) == (0, 0)
    assert take(q) == (1, 7)
    assert take(q) == (1, 1)
