"""Hypothesis stateful test: a host with live connections (TCP ESTABLISHED both ways, a LISTEN
socket, UDP, fragments in reassembly) receives a mix of valid traffic and hostile frames —
seed frames with fields overwritten, truncated or extended — while time passes. After every
step the engines' state is bounded; at the end every live connection carries data byte-exact."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from .bench import TARGETS
from .run import FIX, REBASE, Session, known_crash, seed_inputs

SEEDS = sorted(seed_inputs().items())


class HostUnderAttack(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.s = Session(verify_every=10**9)
        self.known: list[str] = []

    def _feed(self, data: bytes) -> None:
        try:
            self.s.feed(data)
        except Exception as e:
            if known_crash(e) is None:
                raise
            self.known.append(known_crash(e) or "")  # reported, being fixed elsewhere
            self.s.rebuild()

    @rule(seed=st.sampled_from(SEEDS),
          patches=st.lists(st.tuples(st.integers(0, 100) | st.integers(0, 1500),
                                     st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]) |
                                     st.integers(0, 255)), max_size=6),
          cut=st.none() | st.integers(2, 1500),
          tail=st.binary(max_size=24),
          ctl=st.sampled_from([0, FIX, FIX | REBASE]),
          where=st.sampled_from(TARGETS),
          steps=st.integers(0, 15))
    def hostile_frame(self, seed, patches, cut, tail, ctl, where, steps):
        frame = bytearray(seed[1][1:])
        for pos, val in patches:
            if pos < len(frame):
                frame[pos] = val
        if cut is not None:
            del frame[cut:]
        frame += tail
        self._feed(bytes([TARGETS.index(where) | ctl | steps << 4]) + bytes(frame))

    @rule(seed=st.sampled_from(SEEDS))
    def valid_frame(self, seed):
        self._feed(seed[1])

    @rule(conn=st.integers(0, 1), size=st.integers(1, 20000), reverse=st.booleans())
    def send(self, conn, size, reverse):
        b = self.s.bench
        lv = b.conns[conn]
        tcb, host, d = (lv.server, lv.server_host, "s2c") if reverse else \
            (lv.client, lv.client_host, "c2s")
        data = bytes([size & 0xFF]) * size
        tcb.send(data)
        lv.sent[d] += data
        host.tcp.kick(tcb)
        b.pump()

    @rule(dt=st.sampled_from([0.01, 0.2, 1.0, 31.0, 120.0]))
    def wait(self, dt):
        self.s.bench.advance(dt)

    @rule()
    def verify(self):
        self.s.bench.verify()

    @invariant()
    def bounded(self):
        fp = self.s.bench.footprint()
        assert fp["a.tcp.conns"] <= 16 and fp["a.neigh"] <= 64 and fp["a.routes"] <= 64

    def teardown(self) -> None:
        self.s.bench.verify()


HostUnderAttack.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
test_host_under_attack = HostUnderAttack.TestCase
