"""What a scenario may set by hand that autoconfiguration would otherwise guess.

* top level ``autoconfigure = false``: no automatic addresses or routes at all (default true:
  one subnet per L2 segment, shortest-path routes, see
  :meth:`stacklab.net.network.Network.autoconfigure`);
* ``[[link]]`` ``addresses = { a = "10.9.0.1/24", r = ["10.9.0.2/24", "2001:db8::2/64"] }``:
  addresses of each end's interface on this link (added to the automatic ones, or the only ones
  with ``autoconfigure = false``); ``if_mtu = { a = 1400 }``: the MTU of an end's interface (the
  IP layer's, as ``ip link set mtu``; the link's ``mtu`` is the wire's);
* ``[[node]]`` ``routes = [{ to = "10.9.0.0/16", via = "10.0.1.2" }, { to = "default",
  via = "10.0.1.2" }]`` (as ``ip route add``); ``neighbors = [{ address = "10.0.1.2",
  mac = "02:00:00:02:00:00" }]``: permanent neighbour entries (``ip neigh add ... nud
  permanent``), on the interface whose subnet holds the address.

:func:`check_link` and :func:`check_node` raise :class:`~stacklab.net.units.ParamError`
``(key, why)`` at load time; :func:`apply` configures a built network.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from stacklab.net.units import ParamError, parse_bool, parse_duration, parse_int
from stacklab.stack.route import RouteMetrics

__all__ = ["LINK_KEYS", "NODE_KEYS", "apply", "check_link", "check_node"]

LINK_KEYS = ("addresses", "if_mtu")
NODE_KEYS = ("routes", "neighbors")


def _per_end(link: dict[str, Any], key: str) -> dict[str, Any]:
    value = link.get(key, {})
    if not isinstance(value, dict):
        raise ParamError(key, f"expected a table by end, e.g. {key} = {{ a = ... }}")
    ends = link["ends"]
    for end in value:
        if end not in ends:
            raise ParamError(key, f"{end!r} is not an end of this link ({ends[0]}, {ends[1]})")
    return value


def _cidrs(value: object) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ParamError("addresses", f"expected an address like \"10.9.0.1/24\" or a list, "
                                      f"got {value!r}")
    out = []
    for item in items:
        if not isinstance(item, str) or "/" not in item:
            raise ParamError("addresses", f"expected an address with its prefix length, e.g. "
                                          f"\"10.9.0.1/24\", got {item!r}")
        try:
            out.append(ipaddress.ip_interface(item))
        except ValueError as exc:
            raise ParamError("addresses", str(exc)) from None
    return out


def check_link(link: dict[str, Any], kinds: dict[str, str]) -> None:
    """The ``addresses`` and ``if_mtu`` of a ``[[link]]`` whose ``ends`` are checked."""
    for end, value in _per_end(link, "addresses").items():
        if kinds[end] == "switch":
            raise ParamError("addresses", f"{end!r} is a switch: it has no IP addresses")
        _cidrs(value)
    for end, value in _per_end(link, "if_mtu").items():
        if kinds[end] == "switch":
            raise ParamError("if_mtu", f"{end!r} is a switch: it has no IP layer")
        if isinstance(value, bool) or not isinstance(value, int) or not 68 <= value <= 65535:
            raise ParamError("if_mtu", f"an MTU between 68 and 65535, got {value!r}")


def _route_prefix(to: object, via: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if to == "default":
        return "0.0.0.0/0" if via.version == 4 else "::/0"
    if not isinstance(to, str):
        raise ParamError("routes", f"`to` is a prefix like \"10.9.0.0/16\" or \"default\", "
                                   f"got {to!r}")
    try:
        net = ipaddress.ip_network(to)
    except ValueError as exc:
        raise ParamError("routes", str(exc)) from None
    if net.version != via.version:
        raise ParamError("routes", f"{to} via {via}: the families differ")
    return str(net)


_METRIC_KEYS = ("advmss", "mtu", "mtu_lock", "initcwnd", "rto_min")


def _routes(value: object) -> list[tuple[str, str, RouteMetrics]]:
    if not isinstance(value, list):
        raise ParamError("routes", "expected a list, e.g. routes = [{ to = \"10.9.0.0/16\", "
                                   "via = \"10.0.1.2\" }]")
    out = []
    for r in value:
        if not isinstance(r, dict) or not {"to", "via"} <= set(r) <= {"to", "via",
                                                                      *_METRIC_KEYS}:
            raise ParamError("routes", f"each route is {{ to = PREFIX, via = GATEWAY }} with "
                                       f"optional {', '.join(_METRIC_KEYS)}, got {r!r}")
        try:
            via = ipaddress.ip_address(r["via"])
        except ValueError as exc:
            raise ParamError("routes", str(exc)) from None
        out.append((_route_prefix(r["to"], via), str(via), _metrics(r)))
    return out


def _metrics(r: dict[str, Any]) -> RouteMetrics:
    """A route's Linux metrics (ip route ... advmss 600 mtu lock 640 initcwnd 11 rto_min
    50ms), validated."""
    vals: dict[str, Any] = {}
    for key in ("advmss", "mtu", "initcwnd"):
        if key in r:
            vals[key] = parse_int(r[key], f"routes.{key}", 1, 65535)
    if "mtu_lock" in r:
        vals["mtu_lock"] = parse_bool(r["mtu_lock"], "routes.mtu_lock")
    if "rto_min" in r:
        vals["rto_min"] = parse_duration(r["rto_min"], "routes.rto_min")
    return RouteMetrics(**vals)


def _mac(text: object) -> bytes:
    parts = text.split(":") if isinstance(text, str) else []
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ParamError("neighbors", f"a MAC address like \"02:00:00:02:00:00\", got {text!r}")
    try:
        return bytes.fromhex("".join(parts))
    except ValueError:
        raise ParamError("neighbors", f"a MAC address like \"02:00:00:02:00:00\", "
                                      f"got {text!r}") from None


def _neighbors(value: object) -> list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address,
                                            bytes]]:
    if not isinstance(value, list):
        raise ParamError("neighbors", "expected a list, e.g. neighbors = [{ address = "
                                      "\"10.0.1.2\", mac = \"02:00:00:02:00:00\" }]")
    out = []
    for n in value:
        if not isinstance(n, dict) or set(n) != {"address", "mac"}:
            raise ParamError("neighbors", f"each neighbour is {{ address = IP, mac = MAC }}, "
                                          f"got {n!r}")
        try:
            ip = ipaddress.ip_address(n["address"])
        except ValueError as exc:
            raise ParamError("neighbors", str(exc)) from None
        out.append((ip, _mac(n["mac"])))
    return out


def check_node(node: dict[str, Any]) -> None:
    """The ``routes`` and ``neighbors`` of a host's or router's ``[[node]]``."""
    for key in NODE_KEYS:
        if key in node and node["kind"] == "switch":
            raise ParamError(key, "a switch has no IP stack")
    if "routes" in node:
        _routes(node["routes"])
    if "neighbors" in node:
        _neighbors(node["neighbors"])


def apply_mtu(net: Any, link: Any, table: dict[str, Any]) -> None:
    """``if_mtu`` of a link just made, before any address is configured (IPv6 needs 1280)."""
    for end, mtu in table.get("if_mtu", {}).items():
        node, port = (link.a, link.a_port) if end == link.a.name else (link.b, link.b_port)
        node.ports[port].mtu = mtu


def apply(net: Any, links: list[tuple[Any, dict[str, Any]]], nodes: list[dict[str, Any]],
          autoconfigured: bool) -> None:
    """Addresses, then routes and neighbours, on a network whose links exist (and which was
    autoconfigured, or not). Without autoconfiguration each node's name map (``hosts``, as
    /etc/hosts) is made from the addresses written here."""
    names: dict[str, list[str]] = {}
    for link, table in links:
        for end, value in table.get("addresses", {}).items():
            node, port = (link.a, link.a_port) if end == link.a.name else (link.b, link.b_port)
            for itf in _cidrs(value):
                node.add_address(port, str(itf))
                names.setdefault(end, []).append(str(itf.ip))
    for table in nodes:
        if table["kind"] == "switch":
            continue
        node = net.node(table["name"])
        for prefix, via, metrics in _routes(table.get("routes", [])):
            node.add_route(prefix, via=via, metrics=metrics)
        for ip, mac in _neighbors(table.get("neighbors", [])):
            iface = next((i for i in node.interfaces
                          if any(ip in ipaddress.ip_network((a, plen), strict=False)
                                 for a, plen in _prefixes(i, ip.version))), None)
            if iface is None:
                raise ParamError("neighbors", f"{table['name']} has no interface on the subnet "
                                              f"of {ip}")
            (iface.arp if ip.version == 4 else iface.nd).add_permanent(ip.packed, mac)
    if not autoconfigured:
        ordered = {k: sorted(v, key=lambda a: ":" in a) for k, v in names.items()}
        for node in net.nodes.values():
            hosts = getattr(node, "hosts", None)
            if isinstance(hosts, dict):
                hosts.update({k: list(v) for k, v in ordered.items()})


def _prefixes(iface: Any, version: int) -> list[tuple[bytes, int]]:
    if version == 4:
        return list(iface.v4)
    return [(a.addr, a.plen) for a in iface.v6]
