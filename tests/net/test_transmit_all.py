"""A driver's flush hands the network all its frames in one call (``transmit_all``): each
goes where ``transmit`` would send it, in order, at the loop's time; a flush of several frames
for one port (a host's) in one ``send_all``, one frame or several ports' frame by frame; a port
without a link counts its drop as ``transmit`` does."""

from __future__ import annotations

import stacklab
from stacklab.net.network import _Attachment
from stacklab.stack.host import Host


class _Port:
    def __init__(self, name: str, got: list[tuple[str, bytes | bytearray, float]],
                 calls: list[tuple[str, int]]) -> None:
        self.name, self.got, self.calls = name, got, calls

    def send_all(self, run: list[tuple[int, bytes]], at: float) -> None:
        self.calls.append(("all", len(run)))
        self.got.extend((self.name, f, at) for _, f in run)

    def send_one(self, frame: bytes, at: float) -> None:
        self.calls.append(("one", 1))
        self.got.append((self.name, frame, at))


def test_transmit_all_is_transmit_of_each_frame_at_the_loops_time() -> None:
    mixed: list[tuple[int, bytes | bytearray]] = [
        (1, b"a"), (1, b"b"), (0, b"c"), (2, b"d"), (7, b"e"), (1, b"f"), (1, b"g")]
    one_port: list[tuple[int, bytes | bytearray]] = [(2, b"h"), (2, b"i"), (2, b"j")]
    cases = (  # (the flush, how transmit_all hands it over, what arrives, unconnected drops)
        (mixed, [("one", 1)] * 5,
         [("one", b"a"), ("one", b"b"), ("two", b"d"), ("one", b"f"), ("one", b"g")], 2),
        (one_port, [("all", 3)], [("two", b"h"), ("two", b"i"), ("two", b"j")], 0),
        ([(0, b"k"), (0, b"l")], [], [], 2),
        ([(1, b"m")], [("one", 1)], [("one", b"m")], 0),
    )
    with stacklab.Network(seed=1) as net:
        net.loop._vtime = 2.5  # (a clock that is not zero)
        for out, want_calls, want, drops in cases:
            results = []
            for batch in (False, True):
                node = Host("n")
                att = _Attachment(node, net.loop)
                got: list[tuple[str, bytes | bytearray, float]] = []
                calls: list[tuple[str, int]] = []
                att.sends = [None, _Port("one", got, calls), _Port("two", got, calls)]
                if batch:
                    att.transmit_all(out)
                    assert calls == want_calls
                else:
                    for ifindex, frame in out:
                        att.transmit(ifindex, frame)
                assert {t for _, _, t in got} <= {2.5}
                results.append(([(p, f) for p, f, _ in got],
                                node.counters["drop.link.unconnected"]))
            assert results[0] == results[1] == (want, drops)


def test_a_directions_send_all_is_its_send_of_each_frame() -> None:
    """On the plain wire (the schedule inline) and on an impaired one (the stage chain): the
    same counters, the same frames queued in the same order at the same times, with frames
    to convert (a bytearray), too big for the MTU, and while the link is down."""
    frames: list[bytes | bytearray] = [bytes(60), bytearray(b"\x01" * 100), bytes(1600),
                                       bytes(1514), bytes(61)]
    for params in ({}, {"loss": 0.5}):
        for up in (True, False):
            seen = []
            for batch in (False, True):
                with stacklab.Network(seed=3) as net:
                    a, b = net.add_node(Host("a")), net.add_node(Host("b"))
                    d = net.connect(a, b, delay="1ms", mtu=1500, **params).ab
                    d.up = up
                    if batch:
                        d.send_all([(0, f) for f in frames], net.loop.time())
                        d.send_all([(0, frames[0])], net.loop.time())
                    else:
                        for f in [*frames, frames[0]]:
                            d.send(f)
                    sched = d._schedule
                    assert sched is not None
                    seen.append((dict(d.counters), [(t, bytes(f), type(f)) for t, f in
                                                    sched._fifo[sched._head:]]))
            assert seen[0] == seen[1]
            assert seen[0][0]["tx.frames"] == 6
