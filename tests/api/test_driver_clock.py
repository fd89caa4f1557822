"""On a real loop the clock moves while a node call runs. What the application does from a
drain hook (a write that goes out at once) must not happen later in the node's time than
what the call does after the hook: a segment sent with an older time than the one before it
carries an older TCP timestamp, which the peer drops (PAWS, RFC 7323 §5; over TAP under load
Linux counted such drops, TcpExtPAWSEstab, and SACK recovery followed)."""

from __future__ import annotations

import asyncio
import time

from stacklab.api.driver import DrivenHost, NodeDriver


def test_inside_a_node_call_the_hosts_clock_is_the_calls() -> None:
    loop = asyncio.new_event_loop()
    try:
        host = DrivenHost("h")
        driver = NodeDriver(host, loop, lambda ifindex, frame: None)
        host.attach(driver)
        seen: list[tuple[float, float]] = []

        def hook(now: float) -> None:
            time.sleep(0.005)  # the real clock moves on meanwhile (a busy machine)
            seen.append((now, host.now()))

        driver.on_drain("app", hook)
        driver.receive(0, bytes(60))  # a frame in (the host has no interface: dropped)
        driver.kick()  # a kick, run on the next loop iteration
        loop.run_until_complete(asyncio.sleep(0))
        assert len(seen) == 2
        assert all(app == call for call, app in seen)
        # outside a node call: the loop's clock
        assert host.now() >= seen[-1][0] + 0.005
    finally:
        loop.close()
