"""DNS servers: authoritative (zones from the scenario) and recursive/caching, over UDP and TCP.

* :func:`make_zone` builds a zone from a table of records (``{"www": "10.0.0.10", "web":
  "CNAME www", "sub": "NS ns.sub", "ns.sub": "10.0.1.53"}``: an address is an A or AAAA record,
  anything else ``TYPE rdata`` in zone-file syntax; a list for several records), adding the SOA
  and NS records a zone needs when they are missing.
* :class:`Authority` answers from its zones (RFC 1034 §4.3.2): AA answers, CNAME chains inside
  the zone, referrals with glue at delegations, NXDOMAIN / NODATA with the SOA (RFC 2308), and
  REFUSED for names in no zone of ours (counted in ``errors["refused"]``).
* :class:`Recursor` resolves for its clients by asking ``upstream`` servers and following
  referrals and CNAMEs (at most 16 steps), caching answers for their TTL and negative answers
  for the SOA's minimum (RFC 2308 §5); answers carry RA.

Both serve UDP (answers over 512 bytes truncated with TC, RFC 1035 §4.2.1) and TCP (RFC 7766,
2-byte length framing) on the same port. Malformed queries are counted (``errors["malformed"]``)
and dropped, never answered with a crash; a query that is not a QUERY gets NOTIMP, one with other
than one question FORMERR.

The network is reached through ``net``: ``create_datagram_endpoint`` and ``start_server``, as a
stacklab host offers them (and asyncio's loop).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

from .common import close_writer

__all__ = ["Authority", "DnsServer", "Recursor", "make_zone", "serve_dns"]

DEFAULT_TTL = 300
UDP_MAX = 512  # RFC 1035 §4.2.1: bigger answers are truncated (TC) unless EDNS says more
IN = dns.rdataclass.IN
MAX_STEPS = 16

Answerer = Callable[[dns.message.Message], Awaitable[dns.message.Message]]
# ask(server, qname, rdtype) -> response: how a recursor puts a question to another server
Asker = Callable[[str, str, dns.rdatatype.RdataType], Awaitable[dns.message.Message]]


def make_zone(origin: str, records: dict[str, Any], ttl: int = DEFAULT_TTL) -> dns.zone.Zone:
    """A zone for ``origin`` from a table of records (see the module docstring); ValueError
    naming the record for a bad one."""
    org = dns.name.from_text(origin)
    zone = dns.zone.Zone(org, relativize=True)
    for owner, values in records.items():
        if not isinstance(owner, str) or not owner:
            raise ValueError(f"zone {origin}: bad owner name {owner!r}")
        for value in values if isinstance(values, list) else [values]:
            if not isinstance(value, str):
                raise ValueError(f"zone {origin}: {owner}: expected a string, got {value!r}")
            try:
                addr = ipaddress.ip_address(value)
            except ValueError:
                rtype, _, text = value.strip().partition(" ")
            else:
                rtype, text = ("A" if addr.version == 4 else "AAAA"), str(addr)
            try:
                rdtype = dns.rdatatype.from_text(rtype)
                rdata = dns.rdata.from_text(IN, rdtype, text, origin=org, relativize_to=org)
                name = dns.name.from_text(owner, org).relativize(org)
            except (dns.exception.DNSException, ValueError) as e:
                raise ValueError(f"zone {origin}: {owner} = {value!r}: {e}") from None
            zone.find_rdataset(name, rdtype, create=True).add(rdata, ttl)
    apex = dns.name.empty
    if zone.get_rdataset(apex, dns.rdatatype.NS) is None:
        zone.find_rdataset(apex, dns.rdatatype.NS, create=True).add(
            dns.rdata.from_text(IN, dns.rdatatype.NS, "ns", origin=org, relativize_to=org), ttl)
    if zone.get_rdataset(apex, dns.rdatatype.SOA) is None:
        zone.find_rdataset(apex, dns.rdatatype.SOA, create=True).add(dns.rdata.from_text(
            IN, dns.rdatatype.SOA, f"ns hostmaster 1 3600 600 86400 {ttl}", origin=org,
            relativize_to=org), ttl)
    return zone


def _origin(zone: dns.zone.Zone) -> dns.name.Name:
    assert zone.origin is not None  # every zone here is made with one
    return zone.origin


def _rrset(zone: dns.zone.Zone, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
           ) -> dns.rrset.RRset | None:
    rds = zone.get_rdataset(name.relativize(_origin(zone)), rdtype)
    if rds is None:
        return None
    rrset = dns.rrset.RRset(name, IN, rdtype)
    for rd in rds:
        rrset.add(rd, rds.ttl)
    return rrset


def _absolute(zone: dns.zone.Zone, rrset: dns.rrset.RRset) -> dns.rrset.RRset:
    """``rrset`` with its rdata names made absolute (the zone stores them relative)."""
    out = dns.rrset.RRset(rrset.name, IN, rrset.rdtype)
    for rd in rrset:
        out.add(rd.replace(**{f: getattr(rd, f).derelativize(_origin(zone))
                              for f in ("target", "mname", "rname", "exchange")
                              if isinstance(getattr(rd, f, None), dns.name.Name)}),
                rrset.ttl)
    return out


class Authority:
    """Answers from ``zones`` (origin text -> :class:`dns.zone.Zone`)."""

    def __init__(self, zones: dict[str, dns.zone.Zone]) -> None:
        self.zones = {_origin(z): z for z in zones.values()}
        self.errors: Counter[str] = Counter()
        self.answered = 0

    def _zone_for(self, name: dns.name.Name) -> dns.zone.Zone | None:
        best = None
        for origin, zone in self.zones.items():
            if name.is_subdomain(origin) and (best is None or len(origin) > len(_origin(best))):
                best = zone
        return best

    async def __call__(self, q: dns.message.Message) -> dns.message.Message:
        r = dns.message.make_response(q)
        question = q.question[0]
        qname, qtype = question.name, question.rdtype
        zone = self._zone_for(qname)
        if zone is None:
            self.errors["refused"] += 1
            r.set_rcode(dns.rcode.REFUSED)
            return r
        name = qname
        for _ in range(MAX_STEPS):
            if not name.is_subdomain(_origin(zone)):
                # a CNAME out of the zone: the client asks on (RFC 1034 §4.3.2 step 3)
                self.answered += 1
                return r
            referral = self._referral(zone, name)
            if referral is not None:
                r.authority.append(referral[0])
                r.additional += referral[1]
                self.answered += 1
                return r
            r.flags |= dns.flags.AA
            if zone.get_node(name.relativize(_origin(zone))) is None:
                r.set_rcode(dns.rcode.NXDOMAIN)
                break
            rrset = _rrset(zone, name, qtype)
            if rrset is not None:
                r.answer.append(_absolute(zone, rrset))
                self.answered += 1
                return r
            cname = _rrset(zone, name, dns.rdatatype.CNAME)
            if cname is None or qtype == dns.rdatatype.CNAME:
                break  # NODATA
            cname = _absolute(zone, cname)
            r.answer.append(cname)
            name = cname[0].target
        # NXDOMAIN or NODATA: the SOA tells how long to cache it (RFC 2308 §3)
        soa = _rrset(zone, _origin(zone), dns.rdatatype.SOA)
        if soa is not None:
            r.authority.append(_absolute(zone, soa))
        self.answered += 1
        return r

    @staticmethod
    def _referral(zone: dns.zone.Zone, name: dns.name.Name
                  ) -> tuple[dns.rrset.RRset, list[dns.rrset.RRset]] | None:
        """A delegation between the apex and ``name``: its NS set and their glue."""
        cut = name
        while cut != _origin(zone):
            ns = _rrset(zone, cut, dns.rdatatype.NS)
            if ns is not None:
                ns = _absolute(zone, ns)
                glue = []
                for rd in ns:
                    if rd.target.is_subdomain(_origin(zone)):
                        for t in (dns.rdatatype.A, dns.rdatatype.AAAA):
                            g = _rrset(zone, rd.target, t)
                            if g is not None:
                                glue.append(g)
                return ns, glue
            cut = cut.parent()
        return None


class Recursor:
    """A recursive, caching resolver asking ``upstream`` servers through ``ask``."""

    def __init__(self, upstream: list[str], ask: Asker,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not upstream:
            raise ValueError("a recursive resolver needs upstream servers (upstream = [...])")
        self.upstream = list(upstream)
        self.ask = ask
        self.clock = clock
        # (name, type) -> (expires, rcode, answer rrsets, authority rrsets)
        self.cache: dict[tuple[dns.name.Name, int], tuple[float, int, list[dns.rrset.RRset],
                                                          list[dns.rrset.RRset]]] = {}
        self.errors: Counter[str] = Counter()
        self.hits = self.misses = self.answered = 0

    async def __call__(self, q: dns.message.Message) -> dns.message.Message:
        r = dns.message.make_response(q)
        r.flags |= dns.flags.RA
        question = q.question[0]
        if not q.flags & dns.flags.RD:
            self.errors["no_recursion_desired"] += 1
        rcode, answer, authority = await self.resolve(question.name, question.rdtype)
        r.set_rcode(dns.rcode.Rcode(rcode))
        r.answer += answer
        r.authority += authority
        self.answered += 1
        return r

    async def resolve(self, qname: dns.name.Name, qtype: dns.rdatatype.RdataType
                      ) -> tuple[int, list[dns.rrset.RRset], list[dns.rrset.RRset]]:
        now = self.clock()
        hit = self.cache.get((qname, qtype))
        if hit is not None and hit[0] > now:
            self.hits += 1
            return hit[1], list(hit[2]), list(hit[3])
        self.misses += 1
        answer: list[dns.rrset.RRset] = []
        servers = list(self.upstream)
        name = qname
        rcode: int = dns.rcode.SERVFAIL
        authority: list[dns.rrset.RRset] = []
        for _ in range(MAX_STEPS):
            resp = None
            for server in servers:
                try:
                    resp = await self.ask(server, name.to_text(), qtype)
                except (OSError, TimeoutError, dns.exception.DNSException):
                    self.errors["upstream_timeout"] += 1
                    continue
                if resp.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                    break
                resp = None
            if resp is None:
                rcode = dns.rcode.SERVFAIL
                break
            rcode = resp.rcode()
            authority = [rr for rr in resp.authority if rr.rdtype == dns.rdatatype.SOA]
            found = resp.get_rrset(resp.answer, name, IN, qtype)
            if found is not None:
                answer += [rr for rr in resp.answer if rr not in answer]
                break
            cname = resp.get_rrset(resp.answer, name, IN, dns.rdatatype.CNAME)
            if cname is not None:  # follow the alias from the top again
                answer += [rr for rr in resp.answer if rr not in answer]
                tail = resp.answer[-1]
                if tail.rdtype == qtype:
                    break
                name = tail[0].target if tail.rdtype == dns.rdatatype.CNAME else cname[0].target
                servers = list(self.upstream)
                continue
            ns = [rr for rr in resp.authority if rr.rdtype == dns.rdatatype.NS]
            if rcode == dns.rcode.NOERROR and ns and not resp.flags & dns.flags.AA:
                glue = [rd.address for rr in resp.additional
                        if rr.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA) for rd in rr]
                if glue:
                    servers = glue  # a referral: ask the delegated servers
                    continue
                self.errors["referral_without_glue"] += 1
                rcode = dns.rcode.SERVFAIL
            break
        else:
            rcode = dns.rcode.SERVFAIL
        if rcode != dns.rcode.SERVFAIL:
            if answer:
                ttl = min(rr.ttl for rr in answer)
            else:  # RFC 2308 §5: negative answers live min(SOA TTL, SOA minimum)
                ttl = min((min(rr.ttl, rr[0].minimum) for rr in authority), default=0)
            self.cache[(qname, qtype)] = (now + ttl, rcode, answer, authority)
            final = answer[-1] if answer else None
            if final is not None and final.rdtype == qtype and final.name != qname:
                # the end of a CNAME chain is an answer for its own name too
                self.cache[(final.name, qtype)] = (now + final.ttl, rcode, [final], [])
        return rcode, answer, authority


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        q = self.server.parse(data)
        if q is None:
            return
        task = asyncio.ensure_future(self.server.answer(q))
        self.server.tasks.add(task)

        def done(t: asyncio.Future[dns.message.Message | None]) -> None:
            self.server.tasks.discard(t)
            if not t.cancelled() and t.exception() is None:
                r = t.result()
                if r is not None and not self.transport.is_closing():
                    self.transport.sendto(to_wire_udp(r, _udp_limit(q)), addr)

        task.add_done_callback(done)


def to_wire_udp(msg: dns.message.Message, limit: int = UDP_MAX) -> bytes:
    """``msg`` for one datagram of at most ``limit`` bytes: when it does not fit, the
    answer, authority and additional sections are dropped and TC set (RFC 2181 §9)."""
    try:
        return msg.to_wire(max_size=limit)
    except dns.exception.TooBig:
        msg.answer.clear()
        msg.authority.clear()
        msg.additional.clear()
        msg.flags |= dns.flags.TC
        return msg.to_wire(max_size=limit)


def _udp_limit(q: dns.message.Message) -> int:
    # EDNS (RFC 6891): the client says how big a datagram it takes
    return max(512, min(q.payload, 4096)) if q.edns >= 0 else 512


class DnsServer:
    """Serves ``answerer`` on UDP and TCP ``port`` (see :func:`serve_dns`)."""

    def __init__(self, answerer: Answerer, port: int) -> None:
        self.answerer = answerer
        self.port = port
        self.queries = 0
        found = getattr(answerer, "errors", None)
        self.errors: Counter[str] = found if isinstance(found, Counter) else Counter()
        self.tasks: set[asyncio.Future[Any]] = set()
        self._udp: Any = None
        self._tcp: Any = None

    def parse(self, data: bytes) -> dns.message.Message | None:
        self.queries += 1
        try:
            return dns.message.from_wire(data)
        except (dns.exception.DNSException, ValueError, IndexError):
            # whatever dnspython finds wrong (stacklab.wire.dns names the kinds, for the stub)
            self.errors["malformed"] += 1
            return None

    async def answer(self, q: dns.message.Message) -> dns.message.Message | None:
        if q.flags & dns.flags.QR:
            self.errors["not_a_query"] += 1
            return None
        if q.opcode() != dns.opcode.QUERY:
            r = dns.message.make_response(q)
            r.set_rcode(dns.rcode.NOTIMP)
            return r
        if len(q.question) != 1:
            r = dns.message.make_response(q)
            r.set_rcode(dns.rcode.FORMERR)
            return r
        try:
            return await self.answerer(q)
        except Exception:  # never take the server down: SERVFAIL and count it
            self.errors["internal"] += 1
            r = dns.message.make_response(q)
            r.set_rcode(dns.rcode.SERVFAIL)
            return r

    async def _tcp_client(self, reader: Any, writer: Any) -> None:
        try:
            while True:  # RFC 7766 §6.2.1: several queries on one connection
                try:
                    head = await asyncio.wait_for(reader.readexactly(2), 30.0)
                    data = await asyncio.wait_for(
                        reader.readexactly(int.from_bytes(head, "big")), 30.0)
                except (asyncio.IncompleteReadError, TimeoutError, OSError):
                    return
                q = self.parse(data)
                if q is None:
                    return
                r = await self.answer(q)
                if r is not None:
                    wire = r.to_wire(max_size=65535)
                    writer.write(len(wire).to_bytes(2, "big") + wire)
                    await writer.drain()
        finally:
            await close_writer(writer)

    async def start(self, net: Any) -> None:
        self._udp, _ = await net.create_datagram_endpoint(lambda: _Udp(self),
                                                          local_addr=("::", self.port))
        self._tcp = await net.start_server(self._tcp_client, self.port)

    async def close(self) -> None:
        for t in list(self.tasks):
            t.cancel()
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            wait = getattr(self._tcp, "wait_closed", None)
            if wait is not None:
                await wait()


async def serve_dns(net: Any, answerer: Answerer, port: int = 53) -> DnsServer:
    """Start a DNS server answering with ``answerer`` (an :class:`Authority` or a
    :class:`Recursor`) on ``net``'s UDP and TCP ``port``."""
    server = DnsServer(answerer, port)
    await server.start(net)
    return server
