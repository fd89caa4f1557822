"""Faults at run time: partitions, link changes, host crashes — from code or a scenario.

    net.partition(["a"], ["b", "r"])   # nothing passes between the groups ...
    net.heal()                         # ... until the partition is healed
    net.link("a-r").set(loss=0.2, delay="50ms", down=True)
    net.crash("b"); net.restart("b")   # stacklab.api.host.Host.crash / restart
    net.run_for("30s")

A partition cuts, on every link, each frame between a node of one group and a node of another:
the frames of a link whose two ends are in different groups, and the IP packets whose source and
destination addresses belong to nodes in different groups wherever they travel (so a route
through a router cuts too). Nodes in no group are not cut off. Dropped frames count as
``drop.partition`` on the link direction; heal() restores everything at once.

Scenario files schedule the same faults as ``[[event]]`` tables (:func:`check_event`,
:func:`schedule_events`)::

    [[event]]
    at = "5s"
    action = "partition"         # partition | heal | crash | restart | link
    groups = [["a"], ["b"]]
    [[event]]
    at = "8s"
    action = "link"
    link = "a-r"
    loss = 0.1                   # any link parameter, and down = true | false
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from stacklab.api.host import Host
from stacklab.stack.node import Node
from stacklab.wire.addr import ip_bytes
from stacklab.wire.ethernet import ETH_P_8021Q, ETH_P_IPV4, ETH_P_IPV6

from .link import LINK_PARAMS, Direction, Link, LinkParams
from .stages import Stage
from .units import ParamError, parse_duration

__all__ = ["EVENT_ACTIONS", "Faults", "PartitionGate", "check_event", "schedule_events",
           "trace_fault"]

EVENT_ACTIONS = ("partition", "heal", "crash", "restart", "link")


def _ip_ends(frame: bytes) -> tuple[bytes, bytes] | None:
    """(source, destination) address of an IPv4/IPv6 frame, else None."""
    off = 14
    if len(frame) < 34:
        return None
    ethertype = frame[12] << 8 | frame[13]
    if ethertype == ETH_P_8021Q:
        ethertype = frame[16] << 8 | frame[17]
        off = 18
    if ethertype == ETH_P_IPV4:
        return frame[off + 12:off + 16], frame[off + 16:off + 20]
    if ethertype == ETH_P_IPV6 and len(frame) >= off + 40:
        return frame[off + 8:off + 24], frame[off + 24:off + 40]
    return None


class PartitionGate(Stage):
    """The partition check of one link direction (see the module docstring)."""

    __slots__ = ("faults", "ends")

    def __init__(self, direction: Direction, faults: Faults) -> None:
        super().__init__(direction)
        self.faults = faults
        self.ends = (direction.src_name, direction.dst_name)

    def push(self, frame: bytes, t: float) -> None:
        faults = self.faults
        if faults.group_of and faults.cut(*self.ends, frame):
            self.dir.drop("partition", frame, t)
        else:
            self.next.push(frame, t)


class Faults:
    """The faults of one :class:`~stacklab.net.network.Network` (``net.faults``)."""

    def __init__(self, net: Any) -> None:
        self.net = net  # the Network (typed Any: network.py imports this module)
        self.group_of: dict[str, int] = {}  # node name -> its group, while partitioned
        self._owner: dict[bytes, str] = {}  # address -> node name
        self._gated: set[str] = set()  # links with a PartitionGate

    def partition(self, *groups: Iterable[str | Node]) -> None:
        """Cut every group off from the others (at least two groups; a node in one only)."""
        if len(groups) < 2:
            raise ParamError("groups", "a partition needs at least two groups of nodes")
        group_of: dict[str, int] = {}
        for i, group in enumerate(groups):
            if isinstance(group, str | Node):
                raise ParamError("groups", f"each group is a list of node names, got {group!r}")
            for ref in group:
                name = self.net.node(ref).name
                if group_of.get(name, i) != i:
                    raise ParamError("groups", f"node {name!r} is in two groups")
                group_of[name] = i
        self._owner = {ip_bytes(a): name for name, node in self.net.nodes.items()
                       if isinstance(node, Host) for a in node.addresses()}
        for link in self.net.links:
            if link.name not in self._gated:
                self._gated.add(link.name)
                link.add_middleware(lambda d: PartitionGate(d, self))
        self.group_of = group_of
        self._trace("partition", groups=[sorted(n for n, g in group_of.items() if g == i)
                                         for i in range(len(groups))])

    def heal(self) -> None:
        """End every partition."""
        self.group_of = {}
        self._trace("heal")

    def cut(self, src: str, dst: str, frame: bytes) -> bool:
        group_of = self.group_of
        ga, gb = group_of.get(src), group_of.get(dst)
        if ga is not None and gb is not None and ga != gb:
            return True
        ends = _ip_ends(frame)
        if ends is None:
            return False
        owner = self._owner
        ga, gb = group_of.get(owner.get(ends[0], "")), group_of.get(owner.get(ends[1], ""))
        return ga is not None and gb is not None and ga != gb

    def _trace(self, what: str, **details: Any) -> None:
        trace_fault(self.net, what, **details)


def trace_fault(net: Any, what: str, **details: Any) -> None:
    """A ``net fault <what>`` trace event, when the network traces."""
    if net.tracer is not None:
        net.tracer.emit(net.now, "net", "fault", what, **details)


# -- scenario events ------------------------------------------------------------------------------
_EVENT_KEYS = {
    "partition": {"groups"},
    "heal": set(),
    "crash": {"node"},
    "restart": {"node"},
    "link": {"link", "down", *LINK_PARAMS},
}


def check_event(event: dict[str, Any], nodes: dict[str, str]) -> None:
    """Check one ``[[event]]`` table; ``nodes`` maps names to kinds. Raises ParamError (a
    link's name is checked by :func:`schedule_events`, once the links exist)."""
    action = event.get("action")
    if action not in _EVENT_KEYS:
        raise ParamError("action", f"expected one of {', '.join(EVENT_ACTIONS)}, got {action!r}")
    if "at" not in event:
        raise ParamError("at", "every event needs a time, e.g. at = \"5s\"")
    parse_duration(event["at"], "at")
    allowed = _EVENT_KEYS[action] | {"at", "action"}
    for key in event:
        if key not in allowed:
            raise ParamError(key, f"not a key of a {action!r} event "
                                  f"(known: {', '.join(sorted(allowed))})")
    if action == "partition":
        groups = event.get("groups")
        if (not isinstance(groups, list) or len(groups) < 2
                or not all(isinstance(g, list) for g in groups)):
            raise ParamError("groups", "expected two or more lists of node names, "
                                       "e.g. groups = [[\"a\"], [\"b\"]]")
        for name in (n for g in groups for n in g):
            if name not in nodes:
                raise ParamError("groups", f"unknown node {name!r} (nodes: {', '.join(nodes)})")
    elif action in ("crash", "restart"):
        name = event.get("node")
        if name not in nodes:
            raise ParamError("node", f"unknown node {name!r} (nodes: {', '.join(nodes)})")
        if nodes[name] == "switch":
            raise ParamError("node", f"{name!r} is a switch: it has no stack to {action}")
    elif action == "link":
        if not isinstance(event.get("link"), str):
            raise ParamError("link", "expected the name of a link, e.g. link = \"a-r\"")
        if "down" in event and not isinstance(event["down"], bool):
            raise ParamError("down", f"expected true or false, got {event['down']!r}")
        LinkParams().with_updates({k: v for k, v in event.items() if k in LINK_PARAMS})


def _apply(net: Any, event: dict[str, Any]) -> None:
    action = event["action"]
    if action == "partition":
        net.partition(*event["groups"])
    elif action == "heal":
        net.heal()
    elif action == "crash":
        net.crash(event["node"])
    elif action == "restart":
        net.restart(event["node"])
    else:
        link: Link = net.link(event["link"])
        link.set(**{k: v for k, v in event.items() if k not in ("at", "action", "link")})


def schedule_events(net: Any, events: list[dict[str, Any]]) -> None:
    """Schedule checked ``[[event]]`` tables at their times (absolute virtual seconds);
    TopologyError names an unknown link."""
    for event in events:
        if event["action"] == "link":
            net.link(event["link"])
    for event in events:
        net.loop.call_at(parse_duration(event["at"], "at"), _apply, net, event)
