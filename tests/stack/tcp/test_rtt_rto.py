"""The RTO as the per-segment paths read it (``RttEstimator.rto``, an attribute kept up to date,
computed written out for speed) is RFC 6298's with Linux's bounds as ``base_rto`` states them, on
random estimator states, after each way its inputs change."""

import random

from stacklab.stack.tcp.rtt import RttEstimator


def test_rto_is_base_rto_with_backoff_on_random_states() -> None:
    rnd = random.Random(23)
    for _ in range(20_000):
        e = RttEstimator(rnd.choice([1.0, 3.0, 0.0005]), rnd.choice([0.2, 0.0, 0.0005, 5.0]),
                         rnd.choice([120.0, 0.3, 1.0]))
        for _ in range(rnd.randrange(4)):
            e.update(rnd.choice([0.0, 0.0001, 0.01, 0.5, 3.0, rnd.random()]))
        e.backoff = rnd.choice([0, 0, 1, 5, 31, 40])
        assert e.rto == min(e.max_rto, e.base_rto * (1 << min(e.backoff, 30)))
        step = rnd.randrange(4)
        if step == 0:
            e.on_timeout()
        elif step == 1:
            e.on_new_ack()
        elif step == 2:
            e.min_rto = rnd.choice([0.2, 0.0, 0.0005, 5.0])  # (route metrics' rto_min)
        else:
            e.update(rnd.random())
        assert e.rto == min(e.max_rto, e.base_rto * (1 << min(e.backoff, 30)))
