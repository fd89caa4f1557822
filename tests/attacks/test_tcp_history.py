"""Finished connections are remembered as figures, not as TCBs: a peer that fills the receive
window and resets, again and again, must not make the server keep the unread bytes (before:
300 such resets held 82 MB; 300 of 64 kB here, 20 MB), and the record of them is bounded."""

from __future__ import annotations

import gc
import tracemalloc

from stacklab.stack.tcp.layer import HISTORY_LIMIT
from stacklab.stack.tcp.tcb import Tcb

from .tcp_lab import Lab

CLIENT_IP = bytes([10, 0, 0, 2])


def reset(lab: Lab, client: Tcb) -> None:
    """The client aborts (a RST) and is gone from the lab."""
    client.abort(lab.now)
    lab.push(client)
    del lab.clients[(client.local_ip, client.local_port)]


def test_resets_with_unread_data_leave_figures_not_buffers():
    lab = Lab()
    data = bytes(range(256)) * 256  # 64 kB: the server's application never reads it
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(300):
            client = lab.connect(CLIENT_IP, 20000 + i)
            lab.send(client, data)
            lab.run(until=lab.now + 1)
            assert lab.server_side(client).readable == len(data)
            reset(lab, client)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert not lab.layer.conns
    assert held < 2_000_000, f"{held / 1e6:.1f} MB held after 300 resets"
    rows = lab.layer.summary()
    assert len(rows) == HISTORY_LIMIT  # the latest ones, as figures
    assert [r["remote"] for r in rows] == [f"10.0.0.2:{20000 + i}"
                                           for i in range(300 - HISTORY_LIMIT, 300)]
    for r in rows:
        assert r["states"] == ["LISTEN", "SYN-RECEIVED", "ESTABLISHED", "CLOSED"]
        assert r["bytes_received"] == len(data) and r["local"] == "10.0.0.1:80"
        assert r["mss"] == 1448 and r["pmtu"] == 1500 and r["retransmits"] == 0
    last = lab.layer.history[-1]
    assert isinstance(last.error, ConnectionResetError) and last.tcp_info()["state"] == "CLOSED"


def test_the_history_is_bounded():
    lab = Lab()
    for i in range(HISTORY_LIMIT + 100):
        reset(lab, lab.connect(CLIENT_IP, 20000 + i))
    rows = lab.layer.summary()
    assert len(rows) == len(lab.layer.history) == HISTORY_LIMIT == 64
    assert rows[0]["remote"] == "10.0.0.2:20100"  # the oldest went first
    assert rows[-1]["remote"] == f"10.0.0.2:{20000 + HISTORY_LIMIT + 99}"
