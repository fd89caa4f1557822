"""The stub resolver of a host: ``await host.resolve_name(name, family)`` → addresses.

What glibc's resolver does for ``getaddrinfo``, with resolv.conf's defaults (``timeout:5
attempts:2 ndots:1``): literal addresses pass through; then the host's ``hosts`` table (the
scenario's /etc/hosts); then DNS, asking the servers of ``host.resolv`` (a
:class:`~stacklab.stack.dns.ResolverConfig` filled by the scenario, DHCP or RA RDNSS) in turn,
over UDP, each ``attempts`` times with ``timeout`` seconds each, over TCP when an answer comes
back truncated (RFC 1035 §4.2.1, RFC 7766). Names with fewer than ``ndots`` dots try the search
domains first, others the name as given first (resolv.conf(5)). CNAME chains in the answer are
followed (and asked again for when the server gave only the alias, at most 8 deep).

Errors are ``socket.gaierror`` with glibc's codes: EAI_NONAME (no such name), EAI_NODATA (the
name exists but has no address of that family), EAI_AGAIN (no server answered).
For ``family=None`` the IPv4 addresses come first, then the IPv6 ones (both queries are made).
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any, Protocol

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from stacklab.errors import StacklabError
from stacklab.wire.dns import parse_message, tcp_frame
from stacklab.wire.errors import MalformedPacket

__all__ = ["ResolverOptions", "query", "resolve"]

DNS_PORT = 53
MAX_CNAME = 8


@dataclass
class ResolverOptions:
    timeout: float = 5.0
    attempts: int = 2
    ndots: int = 1


class Host(Protocol):
    """What the stub needs of an API host (:class:`stacklab.api.host.Host`)."""

    counters: Any
    rng: Any
    hosts: dict[str, list[str]]
    resolv: Any

    def udp_socket(self, family: int = 4, **kwargs: Any) -> Any: ...

    async def open_connection(self, addr: str, port: int, **kwargs: Any) -> tuple[Any, Any]: ...


class _NoAnswer(StacklabError):
    """Internal: this server gave nothing usable (timeout, SERVFAIL, REFUSED, garbage)."""


def _candidates(name: str, search: list[str], ndots: int) -> list[str]:
    if name.endswith("."):
        return [name]
    searched = [f"{name}.{d.strip('.')}." for d in search]
    if name.count(".") >= ndots:
        return [f"{name}.", *searched]
    return [*searched, f"{name}."]


async def query(host: Host, server: str, qname: str, rdtype: dns.rdatatype.RdataType,
                options: ResolverOptions | None = None, *, rd: bool = True
                ) -> dns.message.Message:
    """One question to one server: UDP with retries, TCP if truncated. Raises
    :class:`TimeoutError` when every attempt timed out."""
    opts = options or ResolverOptions()
    q = dns.message.make_query(qname, rdtype)
    q.id = host.rng.getrandbits(16)
    if not rd:
        q.flags &= ~dns.flags.RD
    wire = q.to_wire()
    c = host.counters
    family = 6 if ":" in server else 4
    for _ in range(max(1, opts.attempts)):
        sock = host.udp_socket(family)
        try:
            c["dns.stub.queries"] += 1
            # connected, as glibc's res_send: a Port Unreachable ends the wait at once
            sock.connect((server, DNS_PORT))
            await sock.send(wire)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + opts.timeout
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    raise TimeoutError
                try:
                    data, peer = await asyncio.wait_for(sock.recvfrom(), left)
                except TimeoutError:  # (an OSError too: not the case below)
                    raise
                except OSError:  # ICMP port unreachable: nobody serves DNS there
                    c["dns.stub.unreachable"] += 1
                    raise _NoAnswer from None
                try:
                    resp = parse_message(data)
                except MalformedPacket as e:
                    c[f"drop.dns.{e.field}"] += 1
                    continue
                if resp.id != q.id or not q.is_response(resp):
                    c["dns.stub.mismatched"] += 1  # RFC 5452: id and question must match
                    continue
                break
        except TimeoutError:
            c["dns.stub.timeouts"] += 1
            continue
        finally:
            sock.close()
        if resp.flags & dns.flags.TC:
            c["dns.stub.tcp_fallback"] += 1
            return await _query_tcp(host, server, q, opts)
        return resp
    raise TimeoutError(f"no answer from {server}")


async def _query_tcp(host: Host, server: str, q: dns.message.Message,
                     opts: ResolverOptions) -> dns.message.Message:
    try:
        reader, writer = await asyncio.wait_for(host.open_connection(server, DNS_PORT),
                                                opts.timeout)
    except (OSError, TimeoutError):
        raise _NoAnswer from None
    try:
        writer.write(tcp_frame(q.to_wire()))
        n = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), opts.timeout), "big")
        data = await asyncio.wait_for(reader.readexactly(n), opts.timeout)
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        raise _NoAnswer from None
    finally:
        writer.close()
    try:
        resp = parse_message(data)
    except MalformedPacket as e:
        host.counters[f"drop.dns.{e.field}"] += 1
        raise _NoAnswer from None
    if resp.id != q.id or not q.is_response(resp):
        raise _NoAnswer
    return resp


def _addresses(resp: dns.message.Message, qname: dns.name.Name,
               rdtype: dns.rdatatype.RdataType
               ) -> tuple[list[str], dns.name.Name | None]:
    """The addresses for ``qname`` in ``resp``'s answer, following its CNAMEs; when the chain
    ends in a name without records here, that name (to ask again for)."""
    name = qname
    for _ in range(MAX_CNAME + 1):
        rrset = resp.get_rrset(resp.answer, name, dns.rdataclass.IN, rdtype)
        if rrset is not None:
            return [r.address for r in rrset], None
        cname = resp.get_rrset(resp.answer, name, dns.rdataclass.IN, dns.rdatatype.CNAME)
        if cname is None:
            return [], (name if name != qname else None)
        name = cname[0].target
    return [], None


async def _lookup(host: Host, fqdn: str, rdtype: dns.rdatatype.RdataType,
                  opts: ResolverOptions
                  ) -> tuple[str, list[str]]:
    """("ok" | "nxdomain" | "nodata", addresses) for one name, from the first server that
    answers; raises _NoAnswer when none does."""
    servers = host.resolv.nameservers
    if not servers:
        raise _NoAnswer
    name = dns.name.from_text(fqdn)
    for _ in range(MAX_CNAME):
        for server in servers:
            try:
                resp = await query(host, server, name.to_text(), rdtype, opts)
            except (TimeoutError, _NoAnswer):
                continue
            rcode = resp.rcode()
            if rcode == dns.rcode.NXDOMAIN:
                return "nxdomain", []
            if rcode != dns.rcode.NOERROR:
                host.counters[f"dns.stub.rcode.{dns.rcode.to_text(rcode).lower()}"] += 1
                continue  # SERVFAIL, REFUSED...: the next server may know
            addrs, again = _addresses(resp, name, rdtype)
            if addrs:
                return "ok", addrs
            if again is None:
                return "nodata", []
            name = again  # an alias the server did not chase
            break
        else:
            raise _NoAnswer
    return "nodata", []


async def resolve(host: Host, name: str, family: int | None = None,
                  options: ResolverOptions | None = None) -> list[str]:
    """Addresses of ``name`` (text) from the host's DNS servers (literals and the ``hosts``
    table come first, in ``Host.lookup``); see the module docstring."""
    if family not in (None, 4, 6):
        raise ValueError(f"family is 4, 6 or None, not {family!r}")
    opts = options or ResolverOptions()
    types = {4: [dns.rdatatype.A], 6: [dns.rdatatype.AAAA]}.get(
        family or 0, [dns.rdatatype.A, dns.rdatatype.AAAA])
    exists = timed_out = False
    for fqdn in _candidates(name, host.resolv.search, opts.ndots):
        found: list[str] = []
        for rdtype in types:
            try:
                status, addrs = await _lookup(host, fqdn, rdtype, opts)
            except _NoAnswer:
                timed_out = True
                continue
            exists = exists or status != "nxdomain"
            found += addrs
        if found:
            return found
    if exists:
        raise socket.gaierror(socket.EAI_NODATA, f"{name}: No address associated with hostname")
    if timed_out:
        raise socket.gaierror(socket.EAI_AGAIN, f"{name}: Temporary failure in name resolution")
    raise socket.gaierror(socket.EAI_NONAME, f"{name}: Name or service not known")
