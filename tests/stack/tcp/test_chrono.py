"""Linux's chronographs (stack/tcp/chrono.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from stacklab.stack.tcp import chrono
from stacklab.stack.tcp.buffers import SendBuffer
from stacklab.stack.tcp.chrono import BUSY, RWND_LIMITED, SNDBUF_LIMITED, Chrono
from stacklab.stack.tcp.config import TcpConfig
from stacklab.stack.tcp.fsm import ESTABLISHED


def test_the_most_interesting_condition_runs_and_busy_sums_them() -> None:
    c = Chrono()
    c.start(BUSY, 1.0)
    c.start(RWND_LIMITED, 1.5)
    c.start(BUSY, 1.6)  # less interesting: RWND_LIMITED keeps running
    c.stop(RWND_LIMITED, 2.0, queues_empty=False)  # back to BUSY
    c.start(SNDBUF_LIMITED, 2.5)
    c.stop(RWND_LIMITED, 2.7, queues_empty=False)  # not the running one: no change
    assert c.usecs(3.0) == (2_000_000, 500_000, 500_000)
    c.stop(SNDBUF_LIMITED, 3.0, queues_empty=True)  # nothing left: the chronograph stops
    assert c.usecs(10.0) == (2_000_000, 500_000, 500_000)


def _sender(*, unsent: int, flight: int, wnd: int, cwnd: int, cwnd_limited: bool,
            nospace: bool) -> Any:
    buf = SendBuffer(1 << 20)
    buf.write(bytes(unsent + flight))
    return SimpleNamespace(sendbuf=buf, snd_una=1, snd_data_una=1, snd_nxt=1 + flight,
                           snd_max=1 + flight,
                           snd_wnd=wnd, snd_mss=1000, cwnd_effective=cwnd,
                           cwnd_limited=lambda: cwnd_limited, snd_nospace=nospace,
                           state=ESTABLISHED, chrono=Chrono(), config=TcpConfig())


def test_after_output_tells_what_held_the_sender_back() -> None:
    held = _sender(unsent=1000, flight=0, wnd=0, cwnd=10000, cwnd_limited=False, nospace=False)
    chrono.after_output(held, False, 1.0)
    assert held.chrono.kind == RWND_LIMITED  # data waits, cwnd has room, the window has not
    cwnd = _sender(unsent=1000, flight=10000, wnd=10 ** 6, cwnd=10000, cwnd_limited=True,
                   nospace=True)
    chrono.after_output(cwnd, True, 1.0)
    assert cwnd.chrono.kind == BUSY  # cwnd, not the window or the buffer
    starved = _sender(unsent=0, flight=5000, wnd=10 ** 6, cwnd=10000, cwnd_limited=False,
                      nospace=True)
    chrono.after_output(starved, True, 1.0)
    assert starved.chrono.kind == SNDBUF_LIMITED  # all sent, a writer waits for room
    starved.chrono.stop(SNDBUF_LIMITED, 1.5, chrono.queues_empty(starved))  # woken
    assert starved.chrono.kind == BUSY and starved.chrono.usecs(2.0)[2] == 500_000
