"""The options of a scenario's ``[[node]]`` table (``plpmtud = "off"``, ``sysctl = {...}``).

* ``sysctl`` (hosts and routers): Linux's sysctl names and values, e.g.
  ``sysctl = { "net.ipv4.tcp_rmem" = "4096 131072 6291456", "net.ipv4.tcp_sack" = 0 }``,
  written to ``node.sysctl`` (:mod:`stacklab.stack.sysctl`, the one table);
* ``plpmtud`` (hosts and routers): TCP's RFC 4821 packetization-layer PMTU discovery,
  ``off`` | ``blackhole`` | ``always`` (Linux's ``tcp_mtu_probing`` 0/1/2);
* ``mss_clamp`` (routers): ``"pmtu"`` or an MSS, like ``iptables -j TCPMSS``;
* ``nat`` (routers): masquerade out of an interface, ``nat = "eth1"`` (``iptables -t nat -A
  POSTROUTING -o eth1 -j MASQUERADE``), with port forwards ``nat = { outside = "eth1", forward =
  [{ proto = "tcp", port = 8080, to = "srv:80" }] }`` (:mod:`stacklab.stack.nat`); the
  network's automatic routes then stop at the router: outside nodes get no route to the
  inside segments;
* ``multicast_querier`` (hosts and routers): be the IGMP and MLD querier of every link
  (:mod:`stacklab.stack.igmp`);
* ``pmtu_expires``: how long a learned path MTU lives, e.g. ``"10min"``;
* ``addressing`` (``"dhcp"``), ``dns``, ``search`` (hosts): see :mod:`.lan_kinds`.
"""

from __future__ import annotations

from typing import Any

from stacklab.net.units import ParamError, parse_bool, parse_duration
from stacklab.stack.host import Host
from stacklab.stack.nat import parse_nat
from stacklab.stack.router import Router, parse_mss_clamp
from stacklab.stack.sysctl import SysctlError
from stacklab.stack.tcp.plpmtud import parse_mode

from .lan_kinds import LAN_OPTIONS, apply_lan_option, check_lan_option

__all__ = ["NODE_OPTIONS", "apply_node_options", "apply_sysctl", "check_node_option"]

NODE_OPTIONS = ("sysctl", "plpmtud", "mss_clamp", "pmtu_expires", "nat", "multicast_querier",
                *LAN_OPTIONS)


def check_node_option(key: str, value: object, kind: str) -> None:
    """Raise :class:`~stacklab.net.units.ParamError` ``(key, why)`` for a bad option of a node
    of ``kind`` (host, router or switch)."""
    if kind == "switch":
        raise ParamError(key, "a switch has no IP stack")
    try:
        if key == "sysctl":
            # written to a scratch node of the same kind: the checks are the writes' own
            apply_sysctl(Router("check") if kind == "router" else Host("check"), value)
        elif key == "plpmtud":
            parse_mode(value)
        elif key == "mss_clamp":
            if kind != "router":
                raise ParamError(key, "only routers clamp the MSS of forwarded SYNs")
            parse_mss_clamp(value)
        elif key == "nat":
            if kind != "router":
                raise ParamError(key, "only routers translate addresses")
            parse_nat(value)
        elif key == "multicast_querier":
            parse_bool(value, key)
        elif key == "pmtu_expires":
            if parse_duration(value, key) <= 0:
                raise ParamError(key, "must be positive")
        elif key in LAN_OPTIONS:
            check_lan_option(key, value, kind)
        else:
            raise ParamError(key, f"unknown option (known: {', '.join(NODE_OPTIONS)})")
    except ParamError:
        raise
    except ValueError as exc:
        raise ParamError(key, str(exc)) from None


def apply_sysctl(node: Host, value: object) -> None:
    """Write a ``sysctl = { name = value, ... }`` table to ``node.sysctl``; ParamError
    ``("sysctl", "name: why")`` for the first bad name or value."""
    if not isinstance(value, dict):
        raise ParamError("sysctl", "expected a table of Linux sysctl names, e.g. sysctl = "
                         "{ \"net.ipv4.tcp_sack\" = 0 }")
    for name, v in value.items():
        try:
            node.sysctl[name] = v
        except SysctlError as exc:
            raise ParamError("sysctl", str(exc)) from None


def apply_node_options(node: Host, table: dict[str, Any]) -> None:
    """Configure ``node`` from the keys of its ``[[node]]`` table that
    :func:`check_node_option` accepted."""
    if "sysctl" in table:
        apply_sysctl(node, table["sysctl"])
    if "plpmtud" in table:
        node.tcp.config = node.tcp.config.replace(mtu_probing=parse_mode(table["plpmtud"]))
    if "mss_clamp" in table:
        assert isinstance(node, Router)  # check_node_option allows mss_clamp on routers only
        node.mss_clamp = parse_mss_clamp(table["mss_clamp"])
    if "nat" in table:
        assert isinstance(node, Router)  # check_node_option allows nat on routers only
        nat = parse_nat(table["nat"])
        if nat is not None:
            node.enable_nat(*nat)
    if "multicast_querier" in table:
        node.igmp.querier = node.mld.querier = parse_bool(table["multicast_querier"],
                                                          "multicast_querier")
    if "pmtu_expires" in table:
        node.pmtu.expires = parse_duration(table["pmtu_expires"], "pmtu_expires")
    apply_lan_option(node, table)
