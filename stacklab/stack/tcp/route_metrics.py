"""The route's metrics as a TCP connection uses them, as Linux does (``ip route ... advmss 600
mtu lock 640 initcwnd 11 rto_min 50ms``; :class:`~stacklab.stack.route.RouteMetrics`).

* ``advmss``: the MSS option of our SYN / SYN-ACK (Linux ``dst_metric_advmss``); without it the
  route's ``mtu`` (or the interface's) less the IP and TCP headers;
* ``mtu``: the path MTU (``host.link_mtu``), hence the send MSS; ``lock``: ICMP cannot lower it
  (``host.learn_path_mtu`` ignores it);
* ``initcwnd``: the initial congestion window in segments (Linux ``tcp_init_cwnd``), also the
  floor of the restart after idle (``tcp_cwnd_restart``);
* ``rto_min``: the connection's minimum RTO (Linux ``tcp_rto_min``).

A route that changes under an open connection reaches it as in Linux, where the socket's cached
route is checked at transmit (``__sk_dst_check``): after the next segments went out (cut with
the MSS of before), the path MTU is read again and the send MSS follows (``tcp_sync_mss``).
"""

from __future__ import annotations

from typing import Protocol

from stacklab.stack.route import NO_METRICS, RouteMetrics

from .congestion import CongestionController
from .plpmtud import Plpmtud
from .rtt import RttEstimator


class _NewTcb(Protocol):
    cc: CongestionController
    rtt: RttEstimator
    route_gen: int | None
    route: RouteMetrics


class _Tcb(Protocol):
    route_gen: int | None
    remote_ip: bytes
    path_mss: int
    _ip_tcp_hdr: int

    def set_path_mtu(self, mtu: int) -> None: ...

    def own_plpmtud(self) -> Plpmtud: ...


class _Host(Protocol):
    def path_mtu(self, dst: bytes, now: float | None = None) -> int: ...


def advmss(metrics: RouteMetrics, mtu: int, header: int) -> int:
    """The MSS to advertise on a path of ``mtu``: the route's ``advmss``, or the MTU (the
    route's when lower) less ``header`` bytes of IP and TCP headers (Linux
    ``dst_metric_advmss``; a SYN resent after a Fragmentation Needed offers no more, as
    ``tcp_advertise_mss``)."""
    if metrics.advmss is not None:
        return metrics.advmss
    if metrics.mtu is not None and metrics.mtu < mtu:
        mtu = metrics.mtu
    return mtu - header


def attach(tcb: _NewTcb, metrics: RouteMetrics | None) -> None:
    """A new connection takes the metrics of the route to its peer."""
    tcb.route_gen = None  # the routing table's generation last seen (None: not yet)
    tcb.route = metrics = metrics or NO_METRICS
    if metrics.initcwnd is not None:
        tcb.cc.initial_segments = metrics.initcwnd
    if metrics.rto_min is not None:
        tcb.rtt.min_rto = metrics.rto_min


def sync(tcb: _Tcb, host: _Host, gen: int) -> None:
    """After a transmission with the routing table at generation ``gen``: when it changed since
    the last one, the path MTU is read again and the send MSS follows."""
    first = tcb.route_gen is None
    tcb.route_gen = gen
    if first:
        return
    mtu = host.path_mtu(tcb.remote_ip)
    if mtu != tcb.path_mss + tcb._ip_tcp_hdr:
        tcb.own_plpmtud().on_ptb(mtu)  # PLPMTUD never searches above it (Linux tcp_sync_mss)
        tcb.set_path_mtu(mtu)
