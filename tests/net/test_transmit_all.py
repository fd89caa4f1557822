"""A driver's flush hands the network all its frames in one call (``transmit_all``): each
goes where ``transmit`` would send it, in order, at the loop's time; a port without a link
counts its drop as ``transmit`` does."""

from __future__ import annotations

from typing import Any

import stacklab
from stacklab.net.network import _Attachment
from stacklab.stack.host import Host


def test_transmit_all_is_transmit_of_each_frame_at_the_loops_time() -> None:
    with stacklab.Network(seed=1) as net:
        net.loop._vtime = 2.5  # (a clock that is not zero)
        results = []
        for batch in (False, True):
            node = Host("n")
            att = _Attachment(node, net.loop)
            got: list[tuple[str, bytes, Any]] = []
            att.sends = [None, lambda f, t=None, got=got: got.append(("one", f, t)),
                         lambda f, t=None, got=got: got.append(("two", f, t))]
            out: list[tuple[int, bytes | bytearray]] = [
                (1, b"a"), (0, b"b"), (2, b"c"), (7, b"d"), (1, b"e")]
            if batch:
                att.transmit_all(out)
            else:
                for ifindex, frame in out:
                    att.transmit(ifindex, frame)
            results.append(([(port, f) for port, f, _ in got],
                            node.counters["drop.link.unconnected"]))
            if batch:
                assert {t for _, _, t in got} == {2.5}
        assert results[0] == results[1] == ([("one", b"a"), ("two", b"c"), ("one", b"e")], 2)

