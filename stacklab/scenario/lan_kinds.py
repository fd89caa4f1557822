"""The LAN services in scenarios: DHCP and DNS app kinds, and the node keys that use them.

App kinds (:data:`LAN_KINDS`, merged into the registry):

* ``dhcp-server`` (daemon): ``pool`` ("10.0.1.100-10.0.1.199"; default .100-.199 of the
  server's subnet), ``router``, ``dns`` (an address or a list), ``domain``, ``mtu``, ``lease``
  ("1h"), ``interface`` (its index, 0). Reports its leases.
* ``dhcp-relay`` (daemon, routers): ``servers`` (addresses), ``interface`` (the clients' side,
  0): relays DHCPv4 to servers on other links (RFC 1542).
* ``dhcp6-server`` (daemon): ``pool`` ("fd00:0:0:1::1000-fd00:0:0:1::10ff"; without it
  stateless only), ``dns``, ``domain`` (a search domain or a list), ``interface``.
* ``dns-server`` (daemon): ``zones`` = { "lab.example" = { www = "10.0.1.10", web = "CNAME
  www" } } (see :func:`stacklab.apps.dns.make_zone`), ``port`` (53). Authoritative.
* ``dns-resolver`` (daemon): ``upstream`` (addresses of the servers it asks), ``port`` (53).
  Recursive and caching.
* ``dns-lookup``: ``name``, ``family`` (4, 6 or "any"), ``expect`` (the addresses it should
  get: ok only then), ``start``. Reports the addresses, through the host's stub resolver.

Node keys (:data:`LAN_OPTIONS`, hosts): ``addressing = "dhcp"`` (IPv4 from DHCP on every
interface instead of the scenario's static numbering; the lease is in the summary's node
entry), ``dhcp6 = "stateful"`` (an address and DNS from DHCPv6, beside the static ones) or
``"stateless"`` (DNS only), ``dns`` (resolver addresses) and ``search`` (search domains), like
resolv.conf.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

from stacklab.net.units import ParamError, parse_duration, parse_int, parse_text
from stacklab.stack.dhcp_server import DhcpServer, PoolConfig

from . import params as p
from .params import Param

__all__ = ["LAN_KINDS", "LAN_OPTIONS", "check_lan_option", "apply_lan_option",
           "start_addressing", "lan_summary"]

LAN_OPTIONS = ("addressing", "dhcp6", "dns", "search")

IFACE = Param("the index of the interface it serves (0: the first)", "integer", 0)


def _addresses(value: object, key: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ParamError(key, "expected an address or a list of addresses")
    out = []
    for a in items:
        try:
            out.append(str(ipaddress.ip_address(a)))
        except ValueError:
            raise ParamError(key, f"{a!r} is not an IP address") from None
    return out


def _names(value: object, key: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(x, str) and x for x in items):
        raise ParamError(key, "expected a domain or a list of domains")
    return list(items)


# -- node keys ---------------------------------------------------------------------------------
def check_lan_option(key: str, value: object, kind: str) -> None:
    if key == "addressing":
        if value not in ("static", "dhcp"):
            raise ParamError(key, f'expected "static" or "dhcp", got {value!r}')
        if value == "dhcp" and kind != "host":
            raise ParamError(key, "only hosts take their address from DHCP")
    elif key == "dhcp6":
        if value not in ("stateful", "stateless"):
            raise ParamError(key, f'expected "stateful" or "stateless", got {value!r}')
        if kind != "host":
            raise ParamError(key, "only hosts run a DHCPv6 client")
    elif key == "dns":
        _addresses(value, key)
    elif key == "search":
        _names(value, key)


def apply_lan_option(node: Any, table: dict[str, Any]) -> None:
    """``dns`` / ``search``: the host's static resolver configuration."""
    if "dns" in table or "search" in table:
        node.resolv.learn("static", _addresses(table["dns"], "dns") if "dns" in table else [],
                          _names(table["search"], "search") if "search" in table else [])


def start_addressing(net: Any, node: Any, table: dict[str, Any]) -> None:
    """After the network numbered itself: an ``addressing = "dhcp"`` host gives back its
    static IPv4 addresses and routes (and its name in the hosts tables: DNS says it now) and
    starts a DHCP client on each interface; ``dhcp6`` starts a DHCPv6 client on each."""
    if "dhcp6" in table:
        for iface in node.interfaces:
            node.dhcp6.client(iface.index).start(net.now,
                                                 stateful=table["dhcp6"] == "stateful")
    if table.get("addressing") != "dhcp":
        return
    for iface in node.interfaces:
        for addr, plen in list(iface.v4):
            node.remove_address(iface.index, f"{ipaddress.IPv4Address(addr)}/{plen}")
    node.routes.remove_where(lambda r: r.family == 4)
    for other in net.nodes.values():
        hosts = getattr(other, "hosts", None)
        if isinstance(hosts, dict) and node.name in hosts:
            hosts[node.name] = [a for a in hosts[node.name] if ":" in a]
    for iface in node.interfaces:
        node.dhcp4.client(iface.index).start(net.now)


def lan_summary(node: Any, now: float) -> dict[str, Any]:
    """The DHCP leases of a node, for its entry in the JSON summary."""
    out: dict[str, Any] = {}
    dhcp = getattr(node, "dhcp4", None)
    if dhcp is not None and dhcp.by_ifindex:
        out["dhcp"] = [c.summary(now) for c in dhcp.by_ifindex.values()]
    dhcp6 = getattr(node, "dhcp6", None)
    if dhcp6 is not None and dhcp6.by_ifindex:
        out["dhcp6"] = [c.summary() for c in dhcp6.by_ifindex.values()]
    return out


# -- app kinds ---------------------------------------------------------------------------------
class _Daemon:
    daemon = True

    async def serve(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        return None

    async def run(self) -> dict[str, Any]:
        await self.serve()
        try:
            await asyncio.Event().wait()  # until the scenario ends (we are cancelled)
        finally:
            await self.stop()
        return self.result()

    def result(self) -> dict[str, Any]:
        raise NotImplementedError


class DhcpServerApp(_Daemon):
    """dhcp-server: hands out addresses from ``pool`` with router, DNS, domain and MTU."""

    params = {
        "pool": Param("the addresses it hands out, \"first-last\" (default: .100-.199 of the "
                      "server's subnet)", "text"),
        "router": Param("the router option (3) it gives", "address"),
        "dns": Param("DNS server address(es) it gives (option 6): one or a list", "address"),
        "domain": Param("the domain name it gives (option 15)", "text"),
        "mtu": Param("the interface MTU it gives (option 26), 68..65535", "integer"),
        "lease": Param("the lease time", "duration", "1h"),
        "interface": IFACE}

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        self.net, self.node = net, node
        self.ifindex = parse_int(params.get("interface", 0), "interface", 0,
                                 len(node.interfaces) - 1)
        iface = node.interfaces[self.ifindex]
        if not iface.v4:
            raise ParamError("interface", f"{iface.name} has no IPv4 address to serve from")
        addr, plen = iface.v4[0]
        subnet = ipaddress.IPv4Network(f"{ipaddress.IPv4Address(addr)}/{plen}", strict=False)
        pool = params.get("pool", f"{subnet[100]}-{subnet[199]}" if plen <= 24 else None)
        if not isinstance(pool, str) or pool.count("-") != 1:
            raise ParamError("pool", 'expected "first-last", e.g. "10.0.1.100-10.0.1.199"')
        first, last = (x.strip() for x in pool.split("-"))
        cfg = PoolConfig(first, last, plen,
                         router=str(ipaddress.IPv4Address(parse_text(params["router"], "router")))
                         if "router" in params else None,
                         dns=tuple(_addresses(params["dns"], "dns")) if "dns" in params else (),
                         domain=parse_text(params["domain"], "domain")
                         if "domain" in params else None,
                         mtu=parse_int(params["mtu"], "mtu", 68, 65535)
                         if "mtu" in params else None,
                         lease_time=parse_duration(params.get("lease", "1h"), "lease"))
        try:
            cfg.validate()
            for a in (first, last):
                if ipaddress.IPv4Address(a) not in subnet:
                    raise ValueError(f"{a} is not in {iface.name}'s subnet {subnet}")
        except ValueError as exc:
            raise ParamError("pool", str(exc)) from None
        self.cfg = cfg
        self.server: DhcpServer | None = None

    async def serve(self) -> None:
        self.server = DhcpServer(self.node, self.ifindex, self.cfg)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    def result(self) -> dict[str, Any]:
        if self.server is None:
            return {"ok": False, "error": "not started"}
        out: dict[str, Any] = {"ok": True, **self.server.summary(self.net.now)}
        exhausted = self.node.counters["dhcp.server.pool_exhausted"]
        if exhausted:
            out["pool_exhausted"] = exhausted
        return out


class DhcpRelayApp(_Daemon):
    """dhcp-relay: relays DHCPv4 from ``interface`` to ``servers`` (a router)."""

    params = {"servers": Param("the DHCP servers' addresses (one or a list)", "address",
                         required=True),
              "interface": Param("the index of the clients' interface", "integer", 0)}

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        self.net, self.node = net, node
        if not getattr(node, "forwarding", False):
            raise ParamError("servers", "a relay agent runs on a router")
        self.ifindex = parse_int(params.get("interface", 0), "interface", 0,
                                 len(node.interfaces) - 1)
        self.servers = _addresses(params.get("servers"), "servers")
        self.relay: Any = None

    async def serve(self) -> None:
        from stacklab.stack.dhcp_relay import DhcpRelay
        self.relay = DhcpRelay(self.node, self.ifindex, self.servers)

    async def stop(self) -> None:
        if self.relay is not None:
            self.relay.close()

    def result(self) -> dict[str, Any]:
        c = self.node.counters
        return {"ok": self.relay is not None, "to_server": c["dhcp.relay.to_server"],
                "to_client": c["dhcp.relay.to_client"]}


class Dhcp6ServerApp(_Daemon):
    """dhcp6-server: DHCPv6 addresses from ``pool`` (or stateless only) with DNS and domains."""

    params = {
        "pool": Param("the addresses it hands out, \"first-last\" (without it: stateless, "
                      "DNS only)", "text"),
        "dns": Param("DNS server address(es) it gives: one or a list", "address"),
        "domain": Param("search domain(s) it gives: one or a list", "text"),
        "interface": IFACE}

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        from stacklab.stack.dhcp6_server import Dhcp6Pool
        self.net, self.node = net, node
        self.ifindex = parse_int(params.get("interface", 0), "interface", 0,
                                 len(node.interfaces) - 1)
        first = last = None
        if "pool" in params:
            pool = params["pool"]
            if not isinstance(pool, str) or pool.count("-") != 1:
                raise ParamError("pool", 'expected "first-last", e.g. "fd00:0:0:1::1000-'
                                 'fd00:0:0:1::10ff"')
            first, last = (x.strip() for x in pool.split("-"))
        self.cfg = Dhcp6Pool(first, last,
                             tuple(_addresses(params["dns"], "dns")) if "dns" in params else (),
                             tuple(_names(params["domain"], "domain"))
                             if "domain" in params else ())
        try:
            self.cfg.addresses()
        except ValueError as exc:
            raise ParamError("pool", str(exc)) from None
        self.server: Any = None

    async def serve(self) -> None:
        from stacklab.stack.dhcp6_server import Dhcp6Server
        self.server = Dhcp6Server(self.node, self.ifindex, self.cfg)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    def result(self) -> dict[str, Any]:
        if self.server is None:
            return {"ok": False, "error": "not started"}
        return {"ok": True, **self.server.summary(self.net.now)}


class _DnsApp(_Daemon):
    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        self.net, self.node = net, node
        self.port = p.port(params, 53)
        self.server: Any = None

    def answerer(self) -> Any:
        raise NotImplementedError

    async def serve(self) -> None:
        from stacklab.apps.dns import serve_dns
        self.server = await serve_dns(self.node, self.answerer(), self.port)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()

    def result(self) -> dict[str, Any]:
        if self.server is None:
            return {"ok": False, "error": "not started"}
        out: dict[str, Any] = {"ok": self.server.errors.get("internal", 0) == 0,
                               "port": self.port, "queries": self.server.queries}
        if self.server.errors:
            out["errors"] = dict(sorted(self.server.errors.items()))
        return out


class DnsServerApp(_DnsApp):
    """dns-server: authoritative for ``zones`` (tables of records), UDP and TCP."""

    params = {"zones": Param("tables of records per zone, e.g. { \"lab.example\" = { www = "
                       "\"10.0.1.10\", web = \"CNAME www\" } }", "table", required=True),
              "port": p.port_param(53)}

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        super().__init__(net, node, params)
        from stacklab.apps.dns import make_zone
        zones = params.get("zones")
        if not isinstance(zones, dict) or not zones:
            raise ParamError("zones", 'expected a table of zones, e.g. zones = { "lab.example"'
                             ' = { www = "10.0.1.10" } }')
        self.zones = {}
        for origin, records in zones.items():
            if not isinstance(records, dict):
                raise ParamError("zones", f"zone {origin}: expected a table of records")
            try:
                self.zones[origin] = make_zone(origin, records)
            except ValueError as exc:
                raise ParamError("zones", str(exc)) from None

    def answerer(self) -> Any:
        from stacklab.apps.dns import Authority
        return Authority(self.zones)


class DnsResolverApp(_DnsApp):
    """dns-resolver: recursive and caching, asking the ``upstream`` servers."""

    params = {"upstream": Param("the servers it asks (one address or a list)", "address",
                           required=True),
              "port": p.port_param(53)}

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        super().__init__(net, node, params)
        self.upstream = _addresses(params.get("upstream"), "upstream")

    def answerer(self) -> Any:
        from stacklab.api.dns import query
        from stacklab.apps.dns import Recursor

        async def ask(server: str, qname: str, rdtype: Any) -> Any:
            return await query(self.node, server, qname, rdtype, rd=False)

        return Recursor(self.upstream, ask, clock=self.node.now)

    def result(self) -> dict[str, Any]:
        out = super().result()
        if self.server is not None:
            out["cache_hits"] = self.server.answerer.hits
            out["cache_misses"] = self.server.answerer.misses
        return out


class DnsLookupApp:
    """dns-lookup: resolve ``name`` with the host's stub resolver; ``expect`` the answer."""

    params = {"name": Param("the name to resolve", "text", required=True),
              "family": Param("4, 6 or \"any\" (A, AAAA or both)", "text", "any"),
              "expect": Param("the addresses it should get (ok only then): one or a list",
                              "address"),
              "start": p.START}

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        self.node = node
        self.name = parse_text(params.get("name"), "name")
        fam = params.get("family", "any")
        if fam not in (4, 6, "any"):
            raise ParamError("family", f'expected 4, 6 or "any", got {fam!r}')
        self.family = None if fam == "any" else int(fam)
        self.expect = _addresses(params["expect"], "expect") if "expect" in params else None
        self.start = p.start(params)

    async def run(self) -> dict[str, Any]:
        if self.start:
            await asyncio.sleep(self.start)
        try:
            addrs = await self.node.resolve_name(self.name, self.family)
        except socket.gaierror as exc:
            return {"ok": False, "name": self.name, "error": str(exc)}
        ok = self.expect is None or sorted(addrs) == sorted(self.expect)
        out: dict[str, Any] = {"ok": ok, "name": self.name, "addresses": addrs}
        if not ok:
            out["error"] = f"expected {self.expect}"
        return out


LAN_KINDS: dict[str, type] = {
    "dhcp-server": DhcpServerApp,
    "dhcp-relay": DhcpRelayApp,
    "dhcp6-server": Dhcp6ServerApp,
    "dns-server": DnsServerApp,
    "dns-resolver": DnsResolverApp,
    "dns-lookup": DnsLookupApp,
}
