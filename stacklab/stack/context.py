"""What a protocol engine may ask of its host: the one declared seam inside ``stack/``.

The engines (ARP, NDP, IPv4, IPv6, ICMP, UDP, TCP) are typed against :class:`HostContext`, not
against :class:`~stacklab.stack.host.Host`: they see the host's tables (interfaces, routes,
path MTUs, counters), a handful of named operations (send a frame, deliver a datagram, send an
ICMP error, pick a source address...) and nothing else — no sibling engine's internals. The
:class:`~stacklab.stack.host.Host` is the one implementation; a test may pass a fake.

:class:`RxInfo` is what the IP layer tells a transport about a delivered datagram.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from stacklab.trace.events import Tracer

if TYPE_CHECKING:
    from .dns import ResolverConfig
    from .interface import Interface
    from .pmtu import PathMtuCache
    from .route import Route, RoutingTable

__all__ = ["ConflictWatcher", "EarlyHandler", "HostContext", "Membership", "ProtocolHandler",
           "RxInfo", "TimerSource", "ViewHandler"]


class RxInfo:
    """What the IP layer tells a transport about a delivered datagram.

    ``packet`` is the IP packet (header first; for a reassembled datagram, the first fragment's
    header and data) for quoting in ICMP errors; ``bcast`` is true when it was sent to a
    broadcast or multicast address (link or IP level).
    """

    __slots__ = ("family", "ifindex", "ttl", "tos", "bcast", "packet", "fragmented")

    def __init__(self, family: int, ifindex: int, ttl: int, tos: int, bcast: bool,
                 packet: memoryview | bytes, fragmented: bool = False) -> None:
        self.family = family
        self.ifindex = ifindex
        self.ttl = ttl
        self.tos = tos
        self.bcast = bcast
        self.packet = packet
        self.fragmented = fragmented


# handler(src, dst, payload, now, info): a delivered (reassembled) datagram of one IP protocol
ProtocolHandler = Callable[[bytes, bytes, memoryview, float, RxInfo], None]
# view_handler(src, dst, view, checksum_ok, now, bcast, ifindex, ip_ecn): the fused IPv4+TCP fast
# path hands the transport its already parsed view (see Ipv4.receive_tcp_frame) and the ECN bits;
# it returns the flow (a connection) whose next segments may skip the demux, or None
ViewHandler = Callable[[bytes, bytes, Any, bool, float, bool, int, int], Any]
# early_handler(flow, view, checksum_ok, now, ip_ecn): a segment of a flow a view handler returned
# (False: that flow is no longer one to early-demux; nothing done)
EarlyHandler = Callable[[Any, Any, bool, float, int], bool]


class TimerSource(Protocol):
    """Anything with a deadline the host folds into its own timer."""

    def get_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...


class Membership(Protocol):
    """What a socket asks of the host's IGMP / MLD engine (``IP_ADD_MEMBERSHIP``)."""

    def join(self, ifindex: int, group: bytes, now: float) -> None: ...

    def leave(self, ifindex: int, group: bytes, now: float) -> None: ...


class ConflictWatcher(Protocol):
    """What ARP tells the host's address conflict detection (RFC 5227, stack/acd.py)."""

    def arp_seen(self, iface: Interface, op: int, sha: bytes, spa: bytes, tpa: bytes,
                 now: float) -> None: ...

    def defend(self, iface: Interface, addr: bytes, now: float) -> None: ...

    def claim(self, ifindex: int, cidr: str, now: float,
              on_done: Callable[[bool, float], None] | None = None) -> None: ...


class HostContext(Protocol):
    """The host as an engine sees it."""

    # -- identity, accounting, randomness -------------------------------------------------------
    name: str
    counters: Counter[str]
    rng: random.Random
    tracer: Tracer | None
    forwarding: bool
    default_ttl: int
    hop_limit6: int

    def trace(self, now: float, layer: str, event: str, **details: Any) -> None: ...

    def request_wake(self) -> None: ...

    # -- tables ---------------------------------------------------------------------------------
    interfaces: list[Interface]
    lo: Interface  # loopback: what is sent on it comes back in on it
    resolv: ResolverConfig  # name servers and search domains (DHCP, RA RDNSS, the scenario)
    routes: RoutingTable
    pmtu: PathMtuCache
    local4: dict[bytes, Interface]
    local6: dict[bytes, Interface]
    addr_gen: int  # bumped when interfaces or addresses change (validates destination caches)
    protocols: dict[int, ProtocolHandler]
    view_handlers: dict[int, ViewHandler]
    icmp_error_handlers: dict[int, Callable[..., None]]

    @property
    def igmp(self) -> Membership: ...  # IPv4 multicast membership (IGMP, stack/igmp.py)

    @property
    def mld(self) -> Membership: ...  # IPv6 multicast membership (MLD)

    @property
    def acd(self) -> ConflictWatcher: ...  # IPv4 address conflict detection

    def is_local(self, a: bytes) -> bool: ...

    def is_local4(self, a: bytes) -> bool: ...

    def is_bcast4(self, a: bytes) -> bool: ...

    def route_out(self, route: Route, dst: bytes) -> tuple[Interface | None, bytes]: ...

    def default_link_iface(self, dst: bytes) -> Interface | None: ...

    def source_address_for(self, dst: bytes) -> bytes | None: ...

    def path_mtu(self, dst: bytes, now: float | None = None) -> int: ...

    def link_mtu(self, dst: bytes) -> int: ...

    def learn_path_mtu(self, dst: bytes, mtu: int, now: float,
                       original_length: int = 0) -> int | None: ...

    # -- operations -----------------------------------------------------------------------------
    def send_frame(self, ifindex: int, frame: bytes | bytearray) -> None: ...

    def send_frames(self, ifindex: int, frames: list[bytes]) -> None: ...

    def loopback(self, packet: bytes | bytearray, now: float,
                 iface: Interface | None = None) -> None: ...

    def deliver(self, src: bytes, dst: bytes, proto: int, payload: memoryview, now: float,
                info: RxInfo) -> None: ...

    def ip_send(self, src: bytes | None, dst: bytes, proto: int,
                payload: bytes | bytearray | memoryview, now: float, *, df: bool | None = None,
                ttl: int | None = None, tos: int = 0, ifindex: int | None = None,
                options: bytes = b"") -> None: ...

    def ipv6_output(self, iface: Interface, nexthop: bytes, packet: bytes | bytearray,
                    now: float) -> None: ...

    def send_icmp_error4(self, packet: bytes | bytearray | memoryview, icmp_type: int, code: int,
                         now: float, *, mtu: int = 0, l2_bcast: bool = False) -> None: ...

    def send_icmp_error6(self, packet: bytes | bytearray | memoryview, icmp_type: int, code: int,
                         now: float, *, param: int = 0, l2_mcast: bool = False) -> None: ...

    def resolution_failed(self, iface: Interface, ip: bytes, packets: list[bytes | bytearray],
                          now: float) -> None: ...

    def add_address(self, ifindex: int, cidr: str, *, route: bool = True) -> None: ...

    def address_duplicate(self, iface: Interface, addr: bytes) -> None: ...

    def address_expired(self, iface: Interface, addr: bytes) -> None: ...

    def register_protocol(self, proto: int, handler: ProtocolHandler,
                          view_handler: ViewHandler | None = None) -> None: ...

    def register_icmp_error(self, proto: int, handler: Callable[..., None]) -> None: ...

    def register_icmp_validator(self, proto: int,
                                check: Callable[[bytes, bytes, bytes], str | None]) -> None: ...

    def add_timer_source(self, obj: TimerSource) -> None: ...

    def remove_timer_source(self, obj: TimerSource) -> None: ...
