"""The app kinds of the stack's own tools: TCP and UDP senders and sinks, ping, traceroute.

Each runs on an API host (:class:`stacklab.api.host.Host`) through the same methods an
application uses (``open_connection``, ``udp_socket``, ``ping``...), and reports a dict for the
scenario summary (see :mod:`stacklab.scenario.registry`).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import random
from typing import Any

from stacklab.api.host import Host
from stacklab.net.network import Network
from stacklab.net.units import ParamError, parse_bool, parse_duration, parse_int, parse_size
from stacklab.stack.tcp.congestion import available_congestion

from . import params as p
from .flows import FlowSampler
from .params import Param

__all__ = ["NET_KINDS"]


class _Client:
    """A kind that talks to ``to`` and may wait ``start`` seconds first."""

    def __init__(self, node: Host, params: dict[str, Any]) -> None:
        self.node = node
        self.to = p.target(params)
        self.family = p.family(params)
        self.start = p.start(params)

    async def run(self) -> dict[str, Any]:
        if self.start:
            await asyncio.sleep(self.start)
        return await self.go()

    async def go(self) -> dict[str, Any]:
        raise NotImplementedError


MAX_SEND = 256_000_000  # tcp-send's bytes: held in memory (and random.randbytes' limit)


# -- TCP ------------------------------------------------------------------------------------------
class TcpSendApp(_Client):
    """tcp-send: connect to ``to``:``port``, send ``bytes`` bytes (or a ``file``), half-close,
    read until the peer closes; reports sha256 of what was sent (and of what came back)."""

    params = {
        "to": p.TO, "port": p.port_param(9), "start": p.START, "family": p.FAMILY,
        "bytes": Param("how many (deterministic pseudo-random) bytes to send, at most 256MB",
                       "size", 100_000),
        "file": Param("send this file's bytes instead of `bytes`", "text"),
        "nodelay": Param("TCP_NODELAY: no Nagle delay for small segments", "bool", True),
        "maxseg": Param("TCP_MAXSEG: cap the MSS (bytes, 88..65495)", "size"),
        "congestion": Param("congestion control (TCP_CONGESTION): reno, newreno, cubic, bbr "
                            "(default: the node's sysctl net.ipv4.tcp_congestion_control)",
                            "text"),
        "sample": Param("sample the flow (acknowledged bytes, cwnd, SRTT) at this interval: "
                        "`flow` figures in the result, the summary's `fairness` section",
                        "duration")}

    def __init__(self, net: Network, node: Host, params: dict[str, Any]) -> None:
        super().__init__(node, params)
        self.port = p.port(params, 9)
        self.nodelay = parse_bool(params.get("nodelay", True), "nodelay")
        self.congestion = params.get("congestion")
        if self.congestion is not None and self.congestion not in available_congestion():
            raise ParamError("congestion", f"unknown congestion control {self.congestion!r}"
                             f" (known: {', '.join(available_congestion())})")
        self.sample = None if params.get("sample") is None else parse_duration(
            params["sample"], "sample")
        if self.sample is not None and not 0.001 <= self.sample <= 60:
            raise ParamError("sample", f"from 1ms to 60s, got {self.sample:g} s")
        self.maxseg = params.get("maxseg")
        if self.maxseg is not None:
            self.maxseg = parse_int(self.maxseg, "maxseg", 88, 65495)
        if "file" in params:
            try:
                with open(str(params["file"]), "rb") as fp:
                    self.data = fp.read()
            except OSError as exc:
                raise ParamError("file", str(exc)) from None
        else:
            n = parse_size(params.get("bytes", 100_000), "bytes")
            if n > MAX_SEND:
                raise ParamError("bytes", f"at most {MAX_SEND:,} bytes (they are generated "
                                          f"in memory), got {n:,}")
            self.data = random.Random(f"{net.seed}/tcp-send/{node.name}").randbytes(n)

    async def go(self) -> dict[str, Any]:
        node = self.node
        t0 = node.now()
        cfg = node.tcp.config.replace(nodelay=self.nodelay, maxseg=self.maxseg,
                                      record_cwnd=True)
        if self.congestion is not None:
            cfg = cfg.replace(congestion=self.congestion)
        reader, writer = await node.open_connection(self.to, self.port, config=cfg,
                                                    family=self.family)
        self.writer = writer
        info = writer.get_extra_info("tcp_info")
        tcb = writer.get_extra_info("tcb")
        sampler = None
        if self.sample is not None:
            sampler = self.sampler = FlowSampler(
                node.now, lambda: writer.get_extra_info("tcp_info"), self.sample)
            sampler.start()
        try:
            writer.write(self.data)
            await writer.drain()
            writer.write_eof()
            back = await reader.read()
        finally:  # a failed or cancelled transfer stops its sampler too
            if sampler is not None:
                sampler.stop()
        elapsed = node.now() - t0
        writer.close()
        await writer.wait_closed()
        info = writer.get_extra_info("tcp_info") or info
        out: dict[str, Any] = {"ok": True, "bytes": len(self.data),
                               "sha256": hashlib.sha256(self.data).hexdigest(),
                               "elapsed": elapsed, "retransmits": info["retransmits"],
                               "mss": info["snd_mss"], "congestion": info["congestion"],
                               "fast_retransmits": info["fast_retransmits"],
                               "rto_expiries": info["rto_expiries"],
                               "throughput_bps": round(8 * len(self.data) / elapsed)
                               if elapsed > 0 else None}
        if info.get("ecn"):  # ECN negotiated (RFC 3168): CE marks received, reductions for ECE
            out["ecn"] = info["ecn_figures"]  # and AccECN's counters (accecn.py)
        if tcb is not None and tcb.cwnd_log:
            # cwnd over time, thinned to at most ~200 points: [t, cwnd, ssthresh], t in seconds
            # of virtual time (as in the trace, the plots and the pcaps), sizes in bytes
            log = tcb.cwnd_log
            step = max(1, len(log) // 200)
            out["cwnd"] = [[round(t, 6), cw, min(ss, 1 << 30)] for t, cw, ss in log[::step]]
        if sampler is not None:
            out["flow"] = sampler.figures(info["retransmits"], tcb.cwnd_log if tcb else ())
        if back:
            out["received"] = len(back)
            out["received_sha256"] = hashlib.sha256(back).hexdigest()
        return out

    def result(self) -> dict[str, Any]:
        """How far a transfer still running at the end got: bytes acknowledged of all, and
        the retransmissions it took."""
        writer = getattr(self, "writer", None)
        if writer is None:
            return {"bytes": len(self.data), "acked": 0}
        info = writer.get_extra_info("tcp_info")
        out = {"bytes": len(self.data), "acked": info["bytes_acked"],
               "state": info["state"], "retransmits": info["retransmits"],
               "rto_expiries": info["rto_expiries"], "mss": info["snd_mss"],
               "congestion": info["congestion"]}
        sampler = getattr(self, "sampler", None)
        if sampler is not None:  # the flow so far: sampled up to the end of the run
            sampler.stop()
            tcb = writer.get_extra_info("tcb")
            out["flow"] = sampler.figures(info["retransmits"], tcb.cwnd_log if tcb else ())
        return out


class TcpSinkApp:
    """tcp-sink: accept connections on ``port`` and read everything (sha256 per connection);
    on both families unless ``family`` names one."""

    params = {"port": p.port_param(9), "family": p.LISTEN_FAMILY}
    daemon = True
    echo = False

    def __init__(self, net: Network, node: Host, params: dict[str, Any]) -> None:
        self.node = node
        self.port = p.port(params, 9)
        self.family = p.listen_family(params)
        self.conns: list[dict[str, Any]] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        digest = hashlib.sha256()
        n = 0
        rec: dict[str, Any] = {"peer": "{}:{}".format(*writer.get_extra_info("peername"))}
        self.conns.append(rec)
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                n += len(chunk)
                digest.update(chunk)
                rec.update(bytes=n, sha256=digest.hexdigest())
                if self.echo:
                    writer.write(chunk)
                    await writer.drain()
            rec.update(bytes=n, sha256=digest.hexdigest(), eof=True)
            writer.close()
            await writer.wait_closed()
        except (ConnectionError, TimeoutError) as exc:
            rec["error"] = f"{type(exc).__name__}: {exc}"

    async def run(self) -> dict[str, Any]:
        server = await self.node.start_server(self._handle, self.port,
                                              "0.0.0.0" if self.family == 4 else "::",
                                              v6only=self.family == 6)
        try:
            await server.serve_forever()
        finally:
            server.close()
        return self.result()

    def result(self) -> dict[str, Any]:
        total = sum(c.get("bytes", 0) for c in self.conns)
        out: dict[str, Any] = {"ok": not any("error" in c for c in self.conns),
                               "connections": len(self.conns), "bytes": total,
                               "conns": self.conns}
        if len(self.conns) == 1 and "sha256" in self.conns[0]:
            out["sha256"] = self.conns[0]["sha256"]
        return out


class TcpEchoApp(TcpSinkApp):
    """tcp-echo: accept connections on ``port`` and send back everything received."""

    echo = True


# -- UDP ------------------------------------------------------------------------------------------
class UdpSendApp(_Client):
    """udp-send: ``count`` datagrams of ``size`` bytes to ``to``:``port``, ``interval`` apart
    (``to`` may be a multicast group; ``ttl``: its IP_MULTICAST_TTL, else the unicast TTL)."""

    params = {
        "to": p.TO, "port": p.port_param(9), "start": p.START, "family": p.FAMILY,
        "size": Param("payload bytes per datagram (0..65507)", "size", 512),
        "count": Param("how many datagrams", "integer", 1),
        "interval": Param("time between datagrams", "duration", "10ms"),
        "df": Param("set Don't Fragment (IPv4)", "bool", False),
        "ttl": Param("IP TTL / hop limit, 0..255 (to a multicast group: IP_MULTICAST_TTL, "
                     "default 1; else the node's)", "integer")}

    def __init__(self, net: Network, node: Host, params: dict[str, Any]) -> None:
        super().__init__(node, params)
        self.port = p.port(params, 9)
        self.size = parse_int(params.get("size", 512), "size", 0, 65507)
        self.count = parse_int(params.get("count", 1), "count", 1, 10_000_000)
        self.interval = parse_duration(params.get("interval", "10ms"), "interval")
        self.df = parse_bool(params.get("df", False), "df")
        self.ttl = parse_int(params["ttl"], "ttl", 0, 255) if "ttl" in params else None

    async def go(self) -> dict[str, Any]:
        t0 = self.node.now()
        sock = self.node.udp_socket(self.family, df=self.df, ttl=self.ttl)
        if self.ttl is not None:
            sock.multicast_ttl = self.ttl
        sock.connect((self.to, self.port))
        digest = hashlib.sha256()
        sent = 0
        errors: list[str] = []
        for i in range(self.count):
            # numbered datagrams: udp-sink counts loss, reordering and duplicates from the number
            data = (i.to_bytes(4, "big") * (self.size // 4 + 1))[:self.size]
            try:
                await sock.send(data)
            except OSError as exc:
                errors.append(f"datagram {i}: {exc}")
            else:
                sent += 1
                digest.update(data)
            if i + 1 < self.count:
                await asyncio.sleep(self.interval)
        sock.close()
        out: dict[str, Any] = {"ok": not errors, "datagrams": sent, "bytes": sent * self.size,
                               "sha256": digest.hexdigest(), "elapsed": self.node.now() - t0}
        if errors:
            out["error"] = errors[0]
            out["errors"] = len(errors)
        return out


class UdpSinkApp:
    """udp-sink: receive datagrams on ``port`` until the scenario ends; on both families unless
    ``family`` names one; ``group``: join that multicast group first (IP_ADD_MEMBERSHIP)."""

    params = {"port": p.port_param(9), "family": p.LISTEN_FAMILY,
              "group": Param("a multicast group to join first (IP_ADD_MEMBERSHIP)", "address")}
    daemon = True

    def __init__(self, net: Network, node: Host, params: dict[str, Any]) -> None:
        self.node = node
        self.port = p.port(params, 9)
        self.family = p.listen_family(params)
        self.group = params.get("group")
        if self.group is not None:
            try:
                g = ipaddress.ip_address(self.group)
            except ValueError:
                raise ParamError("group", f"not an address: {self.group!r}") from None
            if not g.is_multicast:
                raise ParamError("group", f"{self.group} is not a multicast address")
        self.datagrams = 0
        self.nbytes = 0
        self.digest = hashlib.sha256()
        self.first: float | None = None
        self.last: float | None = None
        # udp-send numbers its datagrams (the first 4 bytes): loss/reorder/duplicate accounting
        self.seen: set[int] = set()
        self.highest = -1
        self.reordered = 0
        self.duplicates = 0

    def _account(self, data: bytes) -> None:
        if len(data) < 4:
            return
        n = int.from_bytes(data[:4], "big")
        if n in self.seen:
            self.duplicates += 1
            return
        self.seen.add(n)
        if n < self.highest:
            self.reordered += 1  # arrived after a later-numbered datagram
        else:
            self.highest = n

    async def run(self) -> dict[str, Any]:
        sock = self.node.udp_socket(self.family or 6, v6only=self.family == 6)
        sock.bind(("", self.port))
        if self.group is not None:
            sock.join_group(self.group)
        try:
            while True:
                data = await sock.recv()
                now = self.node.now()
                if self.first is None:
                    self.first = now
                self.last = now
                self.datagrams += 1
                self.nbytes += len(data)
                self.digest.update(data)
                self._account(data)
        finally:
            sock.close()

    def result(self) -> dict[str, Any]:
        elapsed = (self.last - self.first) if self.first is not None and self.last else 0.0
        return {"ok": True, "datagrams": self.datagrams, "bytes": self.nbytes,
                "sha256": self.digest.hexdigest(), "elapsed": elapsed,
                "received": len(self.seen), "lost": self.highest + 1 - len(self.seen),
                "reordered": self.reordered, "duplicates": self.duplicates}


# -- ping and traceroute --------------------------------------------------------------------------
class PingApp(_Client):
    """ping: echo requests to ``to`` (count, size, interval, df, family, ttl)."""

    params = {
        "to": p.TO, "start": p.START, "family": p.FAMILY,
        "count": Param("echo requests to send (ping -c)", "integer", 4),
        "size": Param("payload bytes per request (ping -s)", "size", 56),
        "interval": Param("time between requests (ping -i)", "duration", "1s"),
        "df": Param("set Don't Fragment (ping -M do)", "bool", False),
        "ttl": Param("IP TTL / hop limit, 1..255 (ping -t; default: the node's)", "integer")}

    def __init__(self, net: Network, node: Host, params: dict[str, Any]) -> None:
        super().__init__(node, params)
        self.count = parse_int(params.get("count", 4), "count", 1, 1_000_000)
        self.size = parse_int(params.get("size", 56), "size", 0, 65507)
        self.interval = parse_duration(params.get("interval", "1s"), "interval")
        self.df = parse_bool(params.get("df", False), "df")
        self.ttl = parse_int(params["ttl"], "ttl", 1, 255) if "ttl" in params else None

    async def go(self) -> dict[str, Any]:
        r = await self.node.ping(self.to, count=self.count, size=self.size,
                                 interval=self.interval, df=self.df, family=self.family,
                                 ttl=self.ttl, out=None)
        out: dict[str, Any] = {"ok": r.received > 0, "address": r.address, **r.summary(),
                               "elapsed": r.elapsed, "lines": r.lines}
        if not out["ok"]:
            out["error"] = r.errors[0] if r.errors else "no reply"
        return out


class TracerouteApp(_Client):
    """traceroute: the routers on the path to ``to`` (method udp|icmp, max_hops, wait)."""

    params = {
        "to": p.TO, "start": p.START, "family": p.FAMILY,
        "method": Param("probe with \"udp\" datagrams or \"icmp\" echo requests", "text",
                        "udp"),
        "max_hops": Param("the largest TTL tried (traceroute -m), 1..255", "integer", 30),
        "probes": Param("probes per hop (traceroute -q), 1..10", "integer", 3),
        "wait": Param("how long to wait for each probe's answer (traceroute -w)", "duration",
                      "3s")}

    def __init__(self, net: Network, node: Host, params: dict[str, Any]) -> None:
        super().__init__(node, params)
        self.method = params.get("method", "udp")
        if self.method not in ("udp", "icmp"):
            raise ParamError("method", f"expected \"udp\" or \"icmp\", got {self.method!r}")
        self.max_hops = parse_int(params.get("max_hops", 30), "max_hops", 1, 255)
        self.probes = parse_int(params.get("probes", 3), "probes", 1, 10)
        self.wait = parse_duration(params.get("wait", "3s"), "wait")

    async def go(self) -> dict[str, Any]:
        r = await self.node.traceroute(self.to, max_hops=self.max_hops, probes=self.probes,
                                       wait=self.wait, method=self.method, family=self.family,
                                       out=None)
        out: dict[str, Any] = {"ok": r.reached, "address": r.address, "hops": r.addresses,
                               "lines": r.lines}
        if not r.reached:
            out["error"] = "destination not reached"
        return out


NET_KINDS: dict[str, type] = {
    "tcp-send": TcpSendApp,
    "tcp-sink": TcpSinkApp,
    "tcp-echo": TcpEchoApp,
    "udp-send": UdpSendApp,
    "udp-sink": UdpSinkApp,
    "ping": PingApp,
    "traceroute": TracerouteApp,
}
