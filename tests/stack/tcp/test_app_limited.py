"""Application-limited rate samples as Linux marks them (rate.py, Linux tcp_rate.c): the mark is
checked at the start of each application write (tcp_sendmsg_locked -> tcp_rate_check_app_limited)
and only there: less than a segment unsent, nothing in the device's queue, cwnd not full and
every lost segment resent. BBR's full-bandwidth test (bbr_check_full_bw_reached) skips the
samples so marked, and so does not leave STARTUP on a rate the application set."""

from __future__ import annotations

import pytest

from stacklab.net.network import Network
from stacklab.stack.tcp.config import TcpConfig
from stacklab.stack.tcp.congestion.bbr import STARTUP

from .pair import Pair

CHUNK = 256 * 1024


def bulk(nbytes: int, *, send_buffer: int | None = None, rate: str | None = None,
         loss: float = 0.0, chunk: int = CHUNK) -> dict:
    """``nbytes`` from a to b with BBR, 10 ms each way, written ``chunk`` bytes at a time (then
    drain, as the bench's sender); every rate sample BBR saw (app-limited or not, the
    connection's delivered count when its segment left) and BBR's mode after it."""
    net = Network(seed=3)
    a, b = net.add_host("a"), net.add_host("b")
    params: dict = {"delay": "10ms", "loss": loss}
    if rate is not None:
        params.update(rate=rate, queue=300)
    net.connect(a, b, **params)
    net.autoconfigure()
    seen: dict = {"samples": []}

    async def sink(r, w):
        seen["got"] = len(await r.read())
        w.close()

    async def main():
        await b.start_server(sink, 5000)
        config = a.tcp.config.replace(congestion="bbr", send_buffer=send_buffer)
        r, w = await a.open_connection("b", 5000, config=config)
        tcb = w.get_extra_info("tcb")
        orig = tcb.cc.on_rate_sample

        def record(rs, now):
            orig(rs, now)
            if rs.interval > 0:  # a valid sample (what BBR's bandwidth filter takes)
                seen["samples"].append((rs.app_limited, rs.prior_delivered, tcb.cc.mode))

        tcb.cc.on_rate_sample = record
        left = nbytes
        while left:
            k = min(left, chunk)
            w.write(b"x" * k)
            await w.drain()
            left -= k
        w.write_eof()
        await r.read()
        seen["tcb"] = tcb
        w.close()

    net.run(main(), until="60s")
    return seen


def test_a_sender_whose_buffer_is_all_in_flight_stays_in_startup():
    """A 64 KB send buffer on a 20 ms path with no bottleneck: what the application keeps in
    the buffer is all in flight with cwnd to spare, so each write marks the samples
    app-limited, and BBR, whose full-bandwidth test skips them, stays in STARTUP (as Linux's
    through the lossy bench path, whose send buffer is all in flight)."""
    seen = bulk(2_000_000, send_buffer=64 * 1024, chunk=16 * 1024)
    samples, tcb = seen["samples"], seen["tcb"]
    assert seen["got"] == 2_000_000
    assert len(samples) > 100
    assert sum(al for al, _, _ in samples) > 0.5 * len(samples)
    assert not tcb.cc.full_bw_reached and tcb.cc.mode == STARTUP


def test_a_cwnd_limited_sender_is_not_app_limited_and_leaves_startup():
    """10 Mbit/s behind a 300-packet queue, the send buffer autotuned: cwnd, not the
    application, limits the sender, no sample after the first flight's is app-limited, and
    BBR finds the bottleneck full and leaves STARTUP."""
    seen = bulk(3_000_000, rate="10Mbit")
    samples, tcb = seen["samples"], seen["tcb"]
    assert seen["got"] == 3_000_000
    first_flight = 10 * tcb.snd_mss  # the first write's mark covers the initial window
    assert [s for s in samples if s[0] and s[1] >= first_flight] == []
    assert tcb.cc.full_bw_reached
    assert [m for _, _, m in samples][-1] != STARTUP


def test_output_without_a_write_does_not_mark_samples():
    """One write the send buffer takes whole: Linux checks at that write only, so the ACK-clocked
    output that sends the last bytes (less than a segment left, cwnd not full) marks nothing,
    and the tail's samples are not app-limited. Before, the check ran after every output and
    marked the last round's samples."""
    seen = bulk(400_000, send_buffer=1 << 20, rate="10Mbit", chunk=400_000)
    samples, tcb = seen["samples"], seen["tcb"]
    first_flight = 10 * tcb.snd_mss
    assert len(samples) > 50
    assert [s for s in samples if s[0] and s[1] >= first_flight] == []


@pytest.mark.parametrize("lost", [False, True])
def test_no_mark_while_a_lost_segment_waits_to_be_resent(lost):
    """A write finding everything sent, cwnd not full, marks the samples app-limited at the
    connection's delivered count plus its flight; not while RACK has marked a segment lost
    that is not resent yet (Linux: lost_out <= retrans_out): recovery limits the sender then,
    not the application. Before, the check ran after the output and ignored losses."""
    p = Pair(TcpConfig(congestion="bbr"))
    p.handshake()
    a = p.a
    a.send(b"x" * 5000)
    a.output(p.now)  # (the layer's kick after a user call)
    p.segs(a)  # the four segments leave and stay in flight (nothing delivered)
    assert a.rec.rack_mode and a._in_flight() == 5000
    if lost:  # RACK marked the second segment lost (rack.py), not resent yet
        a.rec.mark_lost(a._abs(a.snd_una) + a.snd_mss, a._abs(a.snd_una) + 2 * a.snd_mss)
    a.rate.app_limited = 0  # (the first write's mark, with nothing in flight, is 1)
    a.send(b"y" * 100)
    a.output(p.now)
    p.segs(a)
    assert a.rate.app_limited == (0 if lost else 5000)
