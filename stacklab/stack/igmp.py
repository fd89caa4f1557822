"""Multicast group membership: IGMPv1/v2/v3 (RFC 1112, 2236, 3376) and MLDv1/v2 (RFC 2710,
3810), host side and a simple querier, sans-IO.

One engine, :class:`GroupMembership`, for both families (the protocols differ in wire format,
not in behaviour); :class:`Igmp` and :class:`Mld` are its two faces, ``host.igmp`` and
``host.mld``. A UDP socket's ``IP_ADD_MEMBERSHIP`` / ``IPV6_JOIN_GROUP`` ends in
:meth:`GroupMembership.join` (counted per socket: the group stays while one socket holds it).

Host behaviour (Linux's defaults):

* **join**: the group is added to the interface's filter (its frames and packets are received
  from then on) and an unsolicited report is sent at once and repeated ``robustness - 1``
  times (2 in all) at a random time within the Unsolicited Report Interval: 1 s for IGMPv3 /
  MLDv2 (State-Change Report ``CHANGE_TO_EXCLUDE({})``), 10 s for IGMPv2 / MLDv1
  (RFC 3376 §5.1, RFC 2236 §3, RFC 3810 §6.1, Linux's ``igmp_v{2,3}_unsolicited_report_interval``);
* **leave**: v3 sends ``CHANGE_TO_INCLUDE({})`` twice, v2 a Leave Group to 224.0.0.2
  (MLDv1: Done to ff02::2), v1 nothing;
* **queries** are answered after a random delay up to the query's Maximum Response Time:
  v3 with one Current-State Report of every group (``MODE_IS_EXCLUDE({})``), v2 per group,
  suppressed when another member's report for the group is heard first (RFC 2236 §3; v3 has no
  suppression). A v1/v2 query (MLDv1 for IPv6) switches the interface to that version for the
  Older Version Querier Present Timeout, ``robustness × 125 s + 10 s`` = 260 s (RFC 3376
  §7.2.1, §8.12);
* 224.0.0.1 and ff02::1 (all systems / all nodes) are never reported; the groups a host joins
  for itself (solicited-node, all-routers) are not reported either — a difference from Linux,
  which reports solicited-node groups: it would add two MLD reports to every address add.

Messages carry TTL / hop limit 1 and the Router Alert option (RFC 2113, RFC 2711); IGMP's
source is the interface's address (0.0.0.0 when it has none, RFC 3376 §4.2.13), MLD's its
link-local address (:: while it has none, RFC 3810 §5.2.13). Malformed messages are counted
drops (``drop.igmp.*``, ``drop.mld.*``).

A router can be the querier of a link (:meth:`GroupMembership.start_querier`, or
``querier = True`` for every interface, the scenario's ``multicast_querier``): General Queries
every 125 s (the first two 31.25 s apart, RFC 3376 §8.6, §8.7), a Group-Specific Query when a
member leaves, and the groups heard on each interface (``queried_groups``) for
``robustness × 125 + 10`` s. No querier election: one querier per link.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from stacklab.wire.addr import ip_str
from stacklab.wire.errors import MalformedPacket
from stacklab.wire.igmp import (
    ALL_NODES6,
    ALL_ROUTERS4,
    ALL_ROUTERS6,
    ALL_SYSTEMS,
    CHANGE_TO_EXCLUDE,
    CHANGE_TO_INCLUDE,
    HBH_ROUTER_ALERT6,
    IGMPV3_ROUTERS,
    MLDV2_ROUTERS,
    MODE_IS_EXCLUDE,
    ROUTER_ALERT4,
    GroupMessage,
    GroupRecord,
    build_igmp_leave,
    build_igmp_query,
    build_igmp_report,
    build_igmp_v3_report,
    build_mld_done,
    build_mld_query,
    build_mld_v1_report,
    build_mld_v2_report,
    parse_igmp,
    parse_mld,
)
from stacklab.wire.proto import PROTO_HOPOPTS, PROTO_IGMP

if TYPE_CHECKING:
    from .context import HostContext, RxInfo
    from .interface import Interface

__all__ = ["GroupMembership", "Igmp", "Mld"]

ROBUSTNESS = 2  # RFC 3376 §8.1, Linux IGMP_QRV_DEFAULT
QUERY_INTERVAL = 125.0  # §8.2
QUERY_RESPONSE_INTERVAL = 10.0  # §8.3
MEMBERSHIP_INTERVAL = ROBUSTNESS * QUERY_INTERVAL + QUERY_RESPONSE_INTERVAL  # §8.4 / §8.12
LAST_MEMBER_QUERY_INTERVAL = 1.0  # §8.8


@dataclass(slots=True)
class _Group:
    refs: int = 0


class GroupMembership:
    """The family-neutral engine (see the module docstring)."""

    family = 0
    layer = ""
    top_version = 3  # 3: IGMPv3 / MLDv2

    def __init__(self, host: HostContext) -> None:
        self.host = host
        self.groups: dict[tuple[int, bytes], _Group] = {}
        # scheduled sends: ("join"|"leave"|"report", ifindex, group) or ("general"|"query",
        # ifindex, b"") -> (due time, retransmissions left)
        self.pending: dict[tuple[str, int, bytes], tuple[float, int]] = {}
        self.compat: dict[int, tuple[int, float]] = {}  # ifindex -> (older version, until)
        self.queriers: set[int] = set()  # interfaces we are the querier of
        self.querier = False  # be the querier of every interface (started from the timer)
        self.queried_groups: dict[tuple[int, bytes], float] = {}  # querier: heard -> expiry
        self._query_count: dict[int, int] = {}
        host.add_timer_source(self)

    # -- what a family provides ------------------------------------------------------------------
    def _filter(self, iface: Interface) -> set[bytes]:
        raise NotImplementedError

    def _reportable(self, group: bytes) -> bool:
        raise NotImplementedError

    def _send(self, iface: Interface, dst: bytes, msg: bytes, now: float) -> None:
        raise NotImplementedError

    def _v3_report(self, iface: Interface, records: list[GroupRecord]) -> tuple[bytes, bytes]:
        raise NotImplementedError

    def _old_report(self, iface: Interface, group: bytes, version: int) -> tuple[bytes, bytes]:
        raise NotImplementedError

    def _old_leave(self, iface: Interface, group: bytes) -> tuple[bytes, bytes] | None:
        raise NotImplementedError

    def _query(self, iface: Interface, group: bytes, max_resp: float) -> tuple[bytes, bytes]:
        raise NotImplementedError

    def _router_groups(self) -> tuple[bytes, ...]:
        raise NotImplementedError

    def _unsolicited_interval(self, version: int) -> float:
        return 1.0 if version == self.top_version else 10.0

    def _parse(self, buf: bytes | memoryview) -> GroupMessage:
        raise NotImplementedError

    # -- user calls ------------------------------------------------------------------------------
    def version(self, ifindex: int, now: float) -> int:
        """The version the interface speaks now (lowered while an older querier is heard)."""
        old = self.compat.get(ifindex)
        if old is not None and old[1] > now:
            return old[0]
        return self.top_version

    def join(self, ifindex: int, group: bytes, now: float) -> None:
        """``IP_ADD_MEMBERSHIP`` / ``IPV6_JOIN_GROUP`` on interface ``ifindex``."""
        key = (ifindex, group)
        g = self.groups.get(key)
        if g is not None:
            g.refs += 1
            return
        self.groups[key] = _Group(1)
        iface = self.host.interfaces[ifindex]
        self._filter(iface).add(group)
        self.host.counters[f"{self.layer}.joins"] += 1
        self.host.trace(now, self.layer, "join", group=ip_str(group), iface=iface.name)
        if not self._reportable(group):
            return
        self.pending.pop(("leave", ifindex, group), None)
        self._state_change(iface, group, "join", now)
        self.pending[("join", ifindex, group)] = (self._later(self._unsolicited_interval(
            self.version(ifindex, now)), now), ROBUSTNESS - 1)
        self.host.request_wake()

    def leave(self, ifindex: int, group: bytes, now: float) -> None:
        """``IP_DROP_MEMBERSHIP`` / ``IPV6_LEAVE_GROUP`` (or the socket closed)."""
        key = (ifindex, group)
        g = self.groups.get(key)
        if g is None:
            return
        g.refs -= 1
        if g.refs > 0:
            return
        del self.groups[key]
        iface = self.host.interfaces[ifindex]
        self._filter(iface).discard(group)
        for kind in ("join", "report"):
            self.pending.pop((kind, ifindex, group), None)
        self.host.counters[f"{self.layer}.leaves"] += 1
        self.host.trace(now, self.layer, "leave", group=ip_str(group), iface=iface.name)
        if not self._reportable(group):
            return
        self._state_change(iface, group, "leave", now)
        if self.version(ifindex, now) == self.top_version:
            self.pending[("leave", ifindex, group)] = (self._later(1.0, now), ROBUSTNESS - 1)
            self.host.request_wake()

    def joined(self, ifindex: int | None = None) -> list[str]:
        """The groups joined (on ``ifindex``, or on every interface), as text."""
        return sorted(ip_str(g) for (i, g) in self.groups if ifindex is None or i == ifindex)

    def start_querier(self, ifindex: int, now: float) -> None:
        """Be the querier of ``ifindex``'s link: General Queries from now on."""
        iface = self.host.interfaces[ifindex]
        for group in self._router_groups():
            self._filter(iface).add(group)
        self.queriers.add(ifindex)
        self._query_count[ifindex] = 0
        self.pending[("general-query", ifindex, b"")] = (now, 0)
        self.host.request_wake()

    def members(self, ifindex: int, now: float) -> list[str]:
        """A querier's view: the groups with members on ``ifindex``'s link."""
        return sorted(ip_str(g) for (i, g), t in self.queried_groups.items()
                      if i == ifindex and t > now)

    # -- sending ---------------------------------------------------------------------------------
    def _later(self, interval: float, now: float) -> float:
        return now + self.host.rng.uniform(0.0, interval)

    def _state_change(self, iface: Interface, group: bytes, kind: str, now: float) -> None:
        version = self.version(iface.index, now)
        if version == self.top_version:
            rtype = CHANGE_TO_EXCLUDE if kind == "join" else CHANGE_TO_INCLUDE
            dst, msg = self._v3_report(iface, [GroupRecord(rtype, group)])
        elif kind == "join":
            dst, msg = self._old_report(iface, group, version)
        else:
            leave = self._old_leave(iface, group) if version > 1 else None
            if leave is None:
                return
            dst, msg = leave
        self._send(iface, dst, msg, now)

    def _current_state(self, iface: Interface, groups: list[bytes], now: float) -> None:
        version = self.version(iface.index, now)
        if version == self.top_version:
            if groups:
                dst, msg = self._v3_report(iface, [GroupRecord(MODE_IS_EXCLUDE, g)
                                                   for g in groups])
                self._send(iface, dst, msg, now)
            return
        for g in groups:
            dst, msg = self._old_report(iface, g, version)
            self._send(iface, dst, msg, now)

    # -- receiving -------------------------------------------------------------------------------
    def receive_message(self, iface: Interface, src: bytes, buf: bytes | memoryview,
                        now: float) -> None:
        c = self.host.counters
        try:
            m = self._parse(buf)
        except MalformedPacket as e:
            c[f"drop.{e.layer}.{e.field}"] += 1
            return
        c[f"{self.layer}.rx.{m.kind}.v{m.version}"] += 1
        i = iface.index
        if m.kind == "query":
            if m.version < self.top_version:
                self.compat[i] = (m.version, now + MEMBERSHIP_INTERVAL)
            self._on_query(iface, m, now)
        elif m.kind == "report":
            groups = [m.group] if m.version < 3 else [
                r.group for r in m.records if r.type not in (CHANGE_TO_INCLUDE, 1) or r.sources]
            left = [] if m.version < 3 else [
                r.group for r in m.records if r.type in (CHANGE_TO_INCLUDE, 1) and not r.sources]
            if m.version < 3 and self.version(i, now) < self.top_version:
                for g in groups:  # RFC 2236 §3: another member answered, ours is not needed
                    if self.pending.pop(("report", i, g), None) is not None:
                        c[f"{self.layer}.suppressed"] += 1
            if i in self.queriers:
                for g in groups:
                    self.queried_groups[(i, g)] = now + MEMBERSHIP_INTERVAL
                for g in left:
                    self._member_left(iface, g, now)
        elif m.kind == "leave" and i in self.queriers:
            self._member_left(iface, m.group, now)

    def _on_query(self, iface: Interface, m: GroupMessage, now: float) -> None:
        i = iface.index
        delay = max(m.max_resp, 0.1)
        general = not any(m.group)
        mine = [g for (j, g) in self.groups if j == i and self._reportable(g)]
        if not general:
            mine = [g for g in mine if g == m.group]
        if not mine:
            return
        if self.version(i, now) == self.top_version and general:
            self._schedule(("general", i, b""), self._later(delay, now))
            return
        for g in mine:
            self._schedule(("report", i, g), self._later(delay, now))

    def _schedule(self, key: tuple[str, int, bytes], due: float) -> None:
        """Keep the earlier of a pending send and a new one (RFC 3376 §5.2, RFC 2236 §3)."""
        old = self.pending.get(key)
        if old is None or due < old[0]:
            self.pending[key] = (due, 0)
            self.host.request_wake()

    def _member_left(self, iface: Interface, group: bytes, now: float) -> None:
        """Querier: ask who else is in ``group``; forget it after the last member query time."""
        key = (iface.index, group)
        if key in self.queried_groups:
            self.queried_groups[key] = min(self.queried_groups[key],
                                           now + ROBUSTNESS * LAST_MEMBER_QUERY_INTERVAL)
        dst, msg = self._query(iface, group, LAST_MEMBER_QUERY_INTERVAL)
        self._send(iface, dst, msg, now)

    # -- timers ----------------------------------------------------------------------------------
    def get_timer(self) -> float | None:
        if self.querier and len(self.queriers) < len(self.host.interfaces):
            return 0.0  # an interface to start querying on: at once
        if not self.pending:
            return None
        return min(t for t, _ in self.pending.values())

    def handle_timer(self, now: float) -> None:
        if self.querier:
            for iface in self.host.interfaces:
                if iface.index not in self.queriers:
                    self.start_querier(iface.index, now)
        for key, (due, left) in sorted(self.pending.items(), key=lambda kv: kv[1][0]):
            if due > now:
                continue
            del self.pending[key]
            kind, i, group = key
            iface = self.host.interfaces[i]
            if kind in ("join", "leave"):
                if kind == "join" and (i, group) not in self.groups:
                    continue
                self._state_change(iface, group, kind, now)
                if left > 1:
                    self.pending[key] = (self._later(self._unsolicited_interval(
                        self.version(i, now)), now), left - 1)
            elif kind == "report":
                if (i, group) in self.groups:
                    self._current_state(iface, [group], now)
            elif kind == "general":
                self._current_state(iface, sorted(
                    g for (j, g) in self.groups if j == i and self._reportable(g)), now)
            elif kind == "general-query":
                dst, msg = self._query(iface, b"", QUERY_RESPONSE_INTERVAL)
                self._send(iface, dst, msg, now)
                n = self._query_count[i] = self._query_count[i] + 1
                # startup: the first ROBUSTNESS queries a quarter interval apart (§8.6, §8.7)
                gap = QUERY_INTERVAL / 4 if n < ROBUSTNESS else QUERY_INTERVAL
                self.pending[key] = (now + gap, 0)


class Igmp(GroupMembership):
    """IGMP on a host's IPv4 interfaces (``host.igmp``)."""

    family = 4
    layer = "igmp"

    def _filter(self, iface: Interface) -> set[bytes]:
        return iface.groups4

    def _reportable(self, group: bytes) -> bool:
        return group != ALL_SYSTEMS

    def _parse(self, buf: bytes | memoryview) -> GroupMessage:
        return parse_igmp(buf)

    def receive(self, src: bytes, dst: bytes, payload: memoryview, now: float,
                info: RxInfo) -> None:
        """Registered for IP protocol 2."""
        self.receive_message(self.host.interfaces[info.ifindex], src, payload, now)

    def _send(self, iface: Interface, dst: bytes, msg: bytes, now: float) -> None:
        src = iface.v4[0][0] if iface.v4 else bytes(4)
        try:
            self.host.ip_send(src, dst, PROTO_IGMP, msg, now, ttl=1, tos=0xC0,
                              ifindex=iface.index, options=ROUTER_ALERT4)
        except OSError:
            self.host.counters["drop.igmp.tx"] += 1
            return
        self.host.counters["igmp.tx"] += 1

    def _v3_report(self, iface: Interface, records: list[GroupRecord]) -> tuple[bytes, bytes]:
        return IGMPV3_ROUTERS, build_igmp_v3_report(records)

    def _old_report(self, iface: Interface, group: bytes, version: int) -> tuple[bytes, bytes]:
        return group, build_igmp_report(group, version)

    def _old_leave(self, iface: Interface, group: bytes) -> tuple[bytes, bytes] | None:
        return ALL_ROUTERS4, build_igmp_leave(group)

    def _query(self, iface: Interface, group: bytes, max_resp: float) -> tuple[bytes, bytes]:
        return (group if any(group) else ALL_SYSTEMS,
                build_igmp_query(group or bytes(4), max_resp))

    def _router_groups(self) -> tuple[bytes, ...]:
        return (ALL_ROUTERS4, IGMPV3_ROUTERS)


class Mld(GroupMembership):
    """MLD on a host's IPv6 interfaces (``host.mld``); MLDv1 is version 2 here."""

    family = 6
    layer = "mld"

    def _filter(self, iface: Interface) -> set[bytes]:
        return iface.groups6

    def _reportable(self, group: bytes) -> bool:
        # RFC 3810 §6: never the all-nodes group, nor reserved/node-local scopes (0, 1)
        return group != ALL_NODES6 and (group[1] & 0x0F) > 1

    def _parse(self, buf: bytes | memoryview) -> GroupMessage:
        return parse_mld(buf)

    def receive(self, info: RxInfo, src: bytes, dst: bytes, payload: bytes | memoryview,
                now: float) -> None:
        """ICMPv6 types 130-132 and 143 (``icmp.mld_receiver``)."""
        if not (src[0] == 0xFE and src[1] & 0xC0 == 0x80) and any(src):
            self.host.counters["drop.mld.source_not_link_local"] += 1  # RFC 3810 §5.1.14
            return
        self.receive_message(self.host.interfaces[info.ifindex], src, payload, now)

    def _src(self, iface: Interface) -> bytes:
        return iface.link_local or bytes(16)

    def _send(self, iface: Interface, dst: bytes, msg: bytes, now: float) -> None:
        try:
            # next header 0: the Hop-by-Hop header with Router Alert, then the ICMPv6 message
            self.host.ip_send(self._src(iface), dst, PROTO_HOPOPTS, HBH_ROUTER_ALERT6 + msg,
                              now, ttl=1, ifindex=iface.index)
        except OSError:
            self.host.counters["drop.mld.tx"] += 1
            return
        self.host.counters["mld.tx"] += 1

    def _v3_report(self, iface: Interface, records: list[GroupRecord]) -> tuple[bytes, bytes]:
        return MLDV2_ROUTERS, build_mld_v2_report(self._src(iface), MLDV2_ROUTERS, records)

    def _old_report(self, iface: Interface, group: bytes, version: int) -> tuple[bytes, bytes]:
        return group, build_mld_v1_report(self._src(iface), group, group)

    def _old_leave(self, iface: Interface, group: bytes) -> tuple[bytes, bytes] | None:
        return ALL_ROUTERS6, build_mld_done(self._src(iface), ALL_ROUTERS6, group)

    def _query(self, iface: Interface, group: bytes, max_resp: float) -> tuple[bytes, bytes]:
        dst = group if any(group) else ALL_NODES6
        return dst, build_mld_query(self._src(iface), dst, group or bytes(16), max_resp)

    def _router_groups(self) -> tuple[bytes, ...]:
        return (MLDV2_ROUTERS,)
