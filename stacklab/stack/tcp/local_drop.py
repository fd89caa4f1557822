"""Local congestion: the device queue refuses TCP's packets (Linux: the qdisc drops, the
transmit returns NET_XMIT_DROP; stacklab: ``Host.qdisc_drop``, ``tc qdisc add dev X root pfifo
limit 0`` in a packetdrill script).

As Linux, a segment the queue refuses was not sent: new data stays unsent (SND.NXT does not
move) and nothing counts as in flight, so the retransmission timer does not run and the
probe timer does (Linux ``tcp_check_probe_timer``, the TCB's PERSIST timer, after the RTO).
A probe that cannot leave either is "local congestion" (``tcp_send_probe0`` with a positive
error): the next one comes ``RESOURCE_PROBE_INTERVAL`` later, without backoff. The probes
count in ``probes_out`` (``tcpi_probes``).

The user timeout (TCP_USER_TIMEOUT) runs for probes as in Linux's ``tcp_probe_timer``: from
the first probe timer of a series (one no ACK interrupted), whether the probes went out or not;
the probe timer never waits past it (``tcp_clamp_probe0_to_user_timeout``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .config import TcpConfig

RESOURCE_PROBE_INTERVAL = 0.5  # Linux TCP_RESOURCE_PROBE_INTERVAL (HZ / 2)


class _Tcb(Protocol):
    xmit_blocked: Callable[[bytes], bool] | None
    remote_ip: bytes
    probes_out: int
    probes_since: float
    config: TcpConfig


def blocked(tcb: _Tcb) -> bool:
    """Whether the device queue refuses this connection's packets now."""
    xb = tcb.xmit_blocked
    return xb is not None and xb(tcb.remote_ip)


def user_timeout_over(tcb: _Tcb, now: float) -> bool:
    """At a probe timer: has the user timeout passed since this series of probes began (its
    first timer, when ``probes_out`` was 0)?"""
    if tcb.probes_out == 0:
        tcb.probes_since = now  # Linux icsk_probes_tstamp
    ut = tcb.config.user_timeout
    return ut is not None and now - tcb.probes_since >= ut


def next_probe(tcb: _Tcb, now: float, wait: float) -> float:
    """When the next probe timer fires: after ``wait``, never past the user timeout."""
    ut = tcb.config.user_timeout
    if ut is not None:
        wait = min(wait, max(tcb.probes_since + ut - now, 0.0))
    return now + wait
