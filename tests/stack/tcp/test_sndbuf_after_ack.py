"""``sndbuf.after_ack``, the send fast path's one call after an ACK, answers as ``check_space``
then ``write_space`` (the rules it writes out) and leaves the same state, on random send-buffer
states: buffers sent in part or not, over or under the limit and TCP_NOTSENT_LOWAT, MSG_EOR
records, a writer short of space or not, autotuning with cwnd full or not."""

from __future__ import annotations

import copy
import random

from stacklab.stack.tcp import sndbuf
from stacklab.stack.tcp.buffers import SendBuffer
from stacklab.stack.tcp.config import TcpConfig
from stacklab.stack.tcp.congestion.cubic import Cubic
from stacklab.stack.tcp.fsm import ESTABLISHED
from stacklab.stack.tcp.seq import MASK


class FakeTcb:
    """What sndbuf.py reads and sets of a TCB (sndbuf.SkbTcb)."""

    def __init__(self, rnd: random.Random) -> None:
        self.state = ESTABLISHED
        self.config = TcpConfig(notsent_lowat=rnd.choice([0, 0, 3000, 20000, 100000]))
        self.snd_mss = mss = rnd.choice([536, 1448, 8948])
        self.cc = Cubic(mss)
        self.cc.cwnd = mss * rnd.randrange(1, 200)
        self.sendbuf = sb = SendBuffer(rnd.choice([16384, 87040, 200000, 4194304]))
        self.skb_ends: list[int] = []
        sb.base = base = rnd.randrange(1 << 20)
        end = base
        for _ in range(rnd.randrange(12)):  # writes, each ending one or more buffers
            n = rnd.choice([1, 100, mss, 2 * mss, 20000, 65000])
            sb.write(b"x" * n, eor=rnd.random() < 0.2)
            end += n
            self.skb_ends.append(end)
        # acknowledged up to somewhere in the buffers: SND.UNA of data at base
        cut = rnd.randrange(len(sb.data) + 1)
        sb.ack(cut)
        self.snd_data_una = una = rnd.randrange(1 << 32)
        self.snd_max = (una + rnd.randrange(len(sb.data) + 1)) & MASK
        self.snd_nospace = rnd.random() < 0.7
        self.snd_autotune = rnd.random() < 0.7
        self.max_sndwnd = rnd.choice([0, 500, 65535, 1 << 20])
        self.ts_ok = rnd.random() < 0.5
        self._flight = rnd.randrange(0, 300 * mss)

    def output(self, now: float) -> None:  # (the protocol's; not called)
        raise AssertionError

    def _in_flight(self) -> int:
        return self._flight


def test_after_ack_is_check_space_then_write_space_on_random_states() -> None:
    rnd = random.Random(23)
    seen = set()
    for _ in range(5000):
        a = FakeTcb(rnd)
        b = copy.deepcopy(a)
        woke = sndbuf.check_space(a)
        free = sndbuf.write_space(a)
        assert sndbuf.after_ack(b) == (woke, free)
        assert (b.snd_nospace, b.sendbuf.capacity, b.skb_ends) == \
            (a.snd_nospace, a.sendbuf.capacity, a.skb_ends)
        seen.add((woke, free is None, sndbuf.memory_free(a)))
    # woken, told nothing, the memory free (a writer woken is told of room: no (True, True, _));
    # (False, False, False): room in the last buffer though the memory is not free
    assert seen == {(False, True, False), (False, False, False), (False, False, True),
                    (True, False, True)}
