"""``build_tcp(..., psum=, timestamps=)`` is the engine's segment builder: the layer's
``segment_bytes`` (which picks the timestamps-only layout or option bytes) gives the same bytes as
a plain ``build_tcp`` from the addresses, for any segment the TCB emits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stacklab.stack.tcp.output import segment_bytes
from stacklab.stack.tcp.segment import ACK, FIN, PSH, RST, SYN, Segment
from stacklab.wire.checksum import pseudo_header
from stacklab.wire.proto import PROTO_TCP
from stacklab.wire.tcp import TcpView, build_tcp, encode_options

U32 = st.integers(0, 0xFFFFFFFF)


@settings(max_examples=300, deadline=None)
@given(U32, U32, st.sampled_from([ACK, ACK | PSH, ACK | FIN, SYN, SYN | ACK, RST, RST | ACK]),
       st.integers(0, 0xFFFF), st.binary(max_size=2000),
       st.one_of(st.none(), st.tuples(U32, U32)),
       st.lists(st.tuples(U32, U32), max_size=4), st.booleans(), st.booleans(),
       st.one_of(st.none(), st.integers(0, 14)),
       st.one_of(st.binary(min_size=4, max_size=4), st.binary(min_size=16, max_size=16)))
def test_segment_bytes_with_psum_equal_build_tcp(seq, ack, flags, window, payload, ts, sack, mss,
                                                 sack_perm, wscale, src):
    dst = bytes(range(len(src)))
    syn = bool(flags & SYN)
    seg = Segment(seq, ack, flags, window, payload, ts=ts, sack=tuple(sack),
                  mss=1460 if mss and syn else None, sack_perm=sack_perm and syn,
                  wscale=wscale if syn else None)
    psum = pseudo_header(src, dst, PROTO_TCP, 0)  # what the TCB keeps as tx_psum
    got = segment_bytes(psum, 40000, 80, seg)
    assert got == build_tcp(src, dst, 40000, 80, seq, ack, flags, window, payload,
                            seg.options_bytes())
    assert TcpView(got).checksum_ok(src, dst)


def test_timestamps_is_the_nop_nop_ts_layout_and_excludes_option_bytes():
    a, b = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    assert build_tcp(a, b, 1, 2, 3, 4, ACK, 5, b"x", timestamps=(6, 7)) == \
        build_tcp(a, b, 1, 2, 3, 4, ACK, 5, b"x", encode_options(timestamps=(6, 7)))
    with pytest.raises(ValueError, match="timestamps="):
        build_tcp(a, b, 1, 2, 3, 4, ACK, 5, b"", encode_options(mss=1460), timestamps=(6, 7))
