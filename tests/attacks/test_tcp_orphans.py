"""Orphans: connections the application closed (``close(full=True)``, a socket's ``close()``)
while the peer still holds them open. A peer that advertises a zero window and never reads keeps
such a connection in FIN-WAIT-1 with its send buffer full (before: for over 7 days). Linux bounds
them: ``tcp_orphan_retries`` (0, meaning 8 while the backed-off RTO is below TCP_RTO_MAX) for the
probes and retransmissions of an orphan, ``tcp_max_orphans`` for how many a host keeps (a new one
over it is reset), ``tcp_fin_timeout`` for one in FIN-WAIT-2."""

from __future__ import annotations

import pytest

from stacklab.stack.tcp.config import TcpConfig
from stacklab.stack.tcp.fsm import CLOSED, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, TIME_WAIT
from stacklab.stack.tcp.tcb import Tcb
from stacklab.wire.tcp import RST

from .tcp_lab import Lab

PEER_IP = bytes([10, 0, 0, 2])
STALLED = TcpConfig(recv_buffer=4096)  # a peer that never reads: its window closes at 4 kB
WEEK = 7 * 86400.0


def orphan_to_stalled_peer(lab: Lab, port: int) -> tuple[Tcb, Tcb]:
    """A client that never reads; the server's application writes 100 kB to it and closes."""
    client = lab.connect(PEER_IP, port, STALLED)
    server = lab.server_side(client)
    server.send(bytes(100_000))
    server.close(lab.now, full=True)
    lab.layer.kick(server)
    lab.run(until=lab.now + 5)  # until the peer's window is full
    return client, server


def run_until_gone(lab: Lab, tcb: Tcb, limit: float) -> float:
    """Virtual time until the layer forgot ``tcb`` (or ``limit``)."""
    while tcb.key in lab.layer.conns and lab.now < limit:
        lab.run(until=lab.now + 1)
    return lab.now


# Linux, at a 200 ms RTO: probes at 0.2 s, then 0.4 s, 0.8 s... after the window closed; the
# orphan goes at the first probe whose backoff reaches TCP_RTO_MAX (120 s), 0.2 s x 2^10: the
# tenth probe is sent 0.2 s x (2^10 - 1) = 204.6 s after, the orphan gone 120 s later
LINUX_BOUND = 0.2 * (2 ** 10 - 1) + 120


@pytest.mark.parametrize("peer", ["answers", "goes-silent"])
def test_an_orphan_to_a_zero_window_peer_is_gone_within_linux_bound(peer):
    lab = Lab()
    client, server = orphan_to_stalled_peer(lab, 40000)
    assert server.state is FIN_WAIT_1 and server.snd_wnd == 0 and server.send_queued > 40_000
    if peer == "goes-silent":
        del lab.clients[(client.local_ip, client.local_port)]
    closed_by = lab.now  # the window closed before this
    gone = run_until_gone(lab, server, WEEK) - closed_by
    # the bound counts from the window closing; the lab steps 1 s at a time
    assert gone <= LINUX_BOUND + 1, f"still in {server.state} after {gone:.0f} s"
    assert server.state is CLOSED and isinstance(server.error, TimeoutError)
    assert client.state is ESTABLISHED  # no RST (Linux tcp_write_err): the peer was stuck


def test_an_orphan_whose_peer_went_silent_goes_after_tcp_orphan_retries_probes():
    lab = Lab(config=TcpConfig(orphan_retries=3))
    client, server = orphan_to_stalled_peer(lab, 40000)
    probes = server.stats.zero_window_probes
    del lab.clients[(client.local_ip, client.local_port)]  # the peer vanishes
    run_until_gone(lab, server, WEEK)
    assert server.state is CLOSED and server.stats.zero_window_probes - probes == 3


def test_an_orphan_whose_peer_vanished_gives_up_after_8_retransmissions():
    """Linux tcp_write_timeout: an orphan's retransmissions are bounded by tcp_orphan_retries
    (0: 8), not tcp_retries2 (15)."""
    lab = Lab()
    client = lab.connect(PEER_IP, 40000)
    server = lab.server_side(client)
    del lab.clients[(client.local_ip, client.local_port)]  # the peer vanishes
    server.send(bytes(10_000))
    server.close(lab.now, full=True)
    lab.layer.kick(server)
    run_until_gone(lab, server, WEEK)
    assert server.state is CLOSED and server.stats.rto_expiries == 8


def test_a_connection_whose_zero_window_peer_went_silent_goes_after_tcp_retries2_probes():
    """Not an orphan: the application still holds it (Linux: tcp_retries2 = 15 unanswered
    probes; a peer that answers keeps it forever, RFC 1122 §4.2.2.17)."""
    lab = Lab()
    client = lab.connect(PEER_IP, 40000, STALLED)
    server = lab.server_side(client)
    server.send(bytes(100_000))
    lab.layer.kick(server)
    lab.run(until=1200)  # the probes back off to one per 120 s (Linux's persist cap)
    assert server.state is ESTABLISHED and server.stats.zero_window_probes > 15  # answered
    del lab.clients[(client.local_ip, client.local_port)]
    probes = server.stats.zero_window_probes
    run_until_gone(lab, server, WEEK)
    assert server.state is CLOSED and isinstance(server.error, TimeoutError)
    assert server.stats.zero_window_probes - probes == 15


def test_orphans_over_tcp_max_orphans_are_reset():
    lab = Lab()
    lab.layer.max_orphans = 3
    pairs = [orphan_to_stalled_peer(lab, 40000 + i) for i in range(5)]
    states = [server.state for _, server in pairs]
    assert states == [FIN_WAIT_1] * 3 + [CLOSED] * 2
    assert [c.state for c, _ in pairs] == [ESTABLISHED] * 3 + [CLOSED] * 2  # they got a RST
    assert lab.host.counters["tcp.abort_on_memory"] == 2
    assert len(lab.layer.orphans) == 3
    # one orphan's peer reads everything and closes: through TIME-WAIT it leaves the count
    client, server = pairs[0]
    for _ in range(200):
        client.read()
        client.output(lab.now)  # the window update
        lab.push(client)
        lab.run(until=lab.now + 0.5)
        if client.at_eof:
            break
    client.close(lab.now, full=True)
    lab.push(client)
    assert server.state is TIME_WAIT and len(lab.layer.orphans) == 2
    _, fresh = orphan_to_stalled_peer(lab, 40010)
    assert fresh.state is FIN_WAIT_1 and len(lab.layer.orphans) == 3


def test_an_orphan_in_fin_wait_2_goes_after_tcp_fin_timeout():
    lab = Lab()
    client = lab.connect(PEER_IP, 40000)
    server = lab.server_side(client)
    server.close(lab.now, full=True)
    lab.layer.kick(server)
    lab.exchange()
    assert server.state is FIN_WAIT_2 and client.fin_received  # the peer never closes
    closed_at = lab.now
    gone = run_until_gone(lab, server, WEEK)
    assert server.state is CLOSED and gone - closed_at <= 60 + 1  # tcp_fin_timeout = 60 s
    assert not any(v.flags & RST for _, v in lab.host.sent)
