"""A sans-IO test bench for hostile frames: host A — router R — host B, with live traffic.

    A eth0 (10.0.1.2, fd01::2) —— L1 —— R eth0 (10.0.1.1, fd01::1)
                                          R eth1 (10.0.2.1, fd02::1) —— L2 —— B (10.0.2.2, fd02::2)

The links are zero-delay wires run by :meth:`Bench.pump`; time moves only in :meth:`advance`.
Live state on A, the host under attack: a TCP connection A→B:80 over IPv4 (A active), a LISTEN
socket on A:22 with one connection B→A:22 over IPv6 (A passive), a UDP socket on A:53 that B
talks to, a UDP datagram's first fragment in reassembly (per family), neighbour entries for R.

:meth:`inject` hands one hostile frame to A or to R (either side) and checks the oracle:

* nothing escapes ``receive_frame``/``handle_timer`` (the exception propagates to the caller:
  the fuzzers record it with the frame);
* a frame may change a live connection only as a peer who knows its sequence numbers could
  (RFC 9293/5961: the stack accepted it): the bench notices the change (state, RCV.NXT,
  SND.UNA of either end) and replaces the connection — every other one must still carry data
  byte-exact (:meth:`verify`);
* an on-link attacker may legitimately move A's path (a spoofed ARP/NA for R, an RA on-link
  prefix): the bench notices that the next hop changed and rebuilds, counted in ``diverted``;
* memory stays bounded: :meth:`footprint` counts what the engines hold.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from stacklab.stack.host import Host
from stacklab.stack.router import Router
from stacklab.stack.tcp.events import ConnectionLost
from stacklab.stack.tcp.fsm import State
from stacklab.stack.tcp.tcb import Tcb
from stacklab.wire.proto import PROTO_UDP
from stacklab.wire.udp import build_udp

from .frames import (
    A4,
    A6,
    B4,
    B6,
    B_UDP_PORT,
    DNS_PORT,
    HTTP_PORT,
    MAC_A,
    MAC_B,
    MAC_R0,
    MAC_R1,
    R04,
    R06,
    SSH_PORT,
    eth,
    frags4,
    frags6,
)

# where a hostile frame enters: A's only port, or R's port on L1 / on L2
TARGETS = ("A", "R0", "R1")

Frame = bytes


class Broken(AssertionError):
    """The oracle failed: a live connection or datagram lost or corrupted by a frame it
    should have survived."""


def _pattern(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


class Live:
    """One live TCP connection (two TCBs) and the bytes each side sent and received."""

    def __init__(self, name: str, client_host: Host, server_host: Host, client: Tcb) -> None:
        self.name = name
        self.client_host = client_host
        self.server_host = server_host
        self.client = client
        self.server: Tcb | None = None
        self.sent = {"c2s": bytearray(), "s2c": bytearray()}
        self.got = {"c2s": bytearray(), "s2c": bytearray()}

    def snapshot(self) -> tuple[Any, ...]:
        out: list[Any] = []
        for t in (self.client, self.server):
            if t is None:
                out.append(None)
            else:
                out += [t.state, t.rcv_nxt, t.snd_una]
        return tuple(out)


class Bench:
    def __init__(self, seed: int = 1) -> None:
        self.seed = seed
        self.now = 0.0
        self.stats: Counter[str] = Counter()
        self.a = Host("a", rng=random.Random(seed))
        self.r = Router("r", rng=random.Random(seed + 1))
        self.b = Host("b", rng=random.Random(seed + 2))
        self.a.add_interface("eth0", MAC_A)
        self.r.add_interface("eth0", MAC_R0)
        self.r.add_interface("eth1", MAC_R1)
        self.b.add_interface("eth0", MAC_B)
        self.a.add_address(0, "10.0.1.2/24")
        self.a.add_address(0, "fd01::2/64")
        self.r.add_address(0, "10.0.1.1/24")
        self.r.add_address(0, "fd01::1/64")
        self.r.add_address(1, "10.0.2.1/24")
        self.r.add_address(1, "fd02::1/64")
        self.b.add_address(0, "10.0.2.2/24")
        self.b.add_address(0, "fd02::2/64")
        # host routes: an RA's prefix or default route (a legitimate on-link message) is less
        # specific and does not move the live traffic
        self.a.add_route("10.0.2.2/32", via="10.0.1.1")
        self.a.add_route("fd02::2/128", via="fd01::1")
        self.a.add_route("0.0.0.0/0", via="10.0.1.1")
        self.a.add_route("::/0", via="fd01::1")
        self.b.add_route("0.0.0.0/0", via="10.0.2.1")
        self.b.add_route("::/0", via="fd02::1")
        # the wires: (node, port) -> (node, port)
        self.wires: dict[tuple[Host, int], tuple[Host, int]] = {
            (self.a, 0): (self.r, 0), (self.r, 0): (self.a, 0),
            (self.r, 1): (self.b, 0), (self.b, 0): (self.r, 1)}
        self.nodes: tuple[Host, ...] = (self.a, self.r, self.b)
        self.conns: list[Live] = []
        self._accepted: dict[Host, list[Tcb]] = {self.a: [], self.b: []}
        # listening ports whose connections are never read: zero-window peers
        self.sink_ports: set[int] = set()
        self.a.tcp.listen(SSH_PORT, lambda t: None)
        self.b.tcp.listen(HTTP_PORT, lambda t: None)
        self.udp_a = self.a.udp.socket(4)
        self.udp_a.bind(None, DNS_PORT)
        self.udp_a.listener = self
        self.udp_a6 = self.a.udp.socket(6)
        self.udp_a6.bind(None, DNS_PORT)
        self.udp_a6.listener = self
        self.udp_b = self.b.udp.socket(4)
        self.udp_b.bind(None, B_UDP_PORT)
        self.udp_b.listener = self
        self.udp_got: list[tuple[bytes, tuple[bytes, int]]] = []
        self._round = 0
        self._idents = random.Random(seed * 7919)
        # DAD (one probe, RFC 4862 §5.4) makes the addresses preferred before traffic starts
        # (with DAD off they would stay tentative: see test_fuzz.py's DAD finding)
        self.advance(2.0)
        self.open("http", self.a, B4, HTTP_PORT)
        self.open("ssh", self.b, A6, SSH_PORT)
        self.advance(1.0)
        self.verify()
        self._path = self._path_state()

    # -- UDP listener protocol (both sockets) ----------------------------------------------------
    def datagram_received(self, data: bytes, addr: tuple[bytes, int], now: float) -> None:
        self.udp_got.append((data, addr))

    def error_received(self, exc: Exception, now: float) -> None:
        self.stats["udp_errors"] += 1

    # -- connections -----------------------------------------------------------------------------
    def open(self, name: str, client: Host, dst: bytes, port: int) -> Live:
        server = self.b if client is self.a else self.a
        tcb = client.tcp.connect(dst, port, self.now)
        live = Live(name, client, server, tcb)
        self.conns.append(live)
        self.pump()
        accepted = self._accepted[server]
        for t in accepted:
            if t.remote_port == tcb.local_port and t.remote_ip == tcb.local_ip:
                live.server = t
        if live.server is None:
            raise Broken(f"{name}: the handshake did not complete")
        accepted.remove(live.server)
        return live

    def _drain(self) -> None:
        for h in (self.a, self.b):
            q = h.tcp.events
            while q:
                tcb, ev = q.popleft()
                if type(ev) is ConnectionLost:
                    continue
                if h.tcp.listener_of(tcb) is not None and tcb.state is State.ESTABLISHED \
                        and tcb not in self._accepted[h] \
                        and not any(tcb is lv.server for lv in self.conns):
                    self._accepted[h].append(tcb)
            for tcb in self._accepted[h]:  # unclaimed children (a fuzzer's SYNs): keep reading
                if tcb.local_port not in self.sink_ports:
                    tcb.read()
        for lv in self.conns:
            if lv.server is not None:
                lv.got["c2s"] += lv.server.read()
            lv.got["s2c"] += lv.client.read()

    # -- the wires and the clock -------------------------------------------------------------------
    def pump(self, max_rounds: int = 10000) -> None:
        """Deliver every queued frame (and what it causes) at ``now``; run user output."""
        for _ in range(max_rounds):
            moved = False
            for h in self.nodes:
                h.tcp.poll(self.now)
                for ifindex, frame in h.frames_to_send():
                    moved = True
                    peer, port = self.wires[(h, ifindex)]
                    peer.receive_frame(port, bytes(frame), self.now)
                if h.get_timer() == 0.0:  # looped-back packets are due at once
                    h.handle_timer(self.now)
                    moved = True
            self._drain()
            if not moved:
                return
        raise Broken("the wires never went quiet")

    def advance(self, dt: float) -> None:
        """Let ``dt`` seconds of virtual time pass, firing every timer due in it."""
        end = self.now + dt
        while True:
            self.pump()
            due = [t for t in (h.get_timer() for h in self.nodes) if t is not None]
            t = min(due, default=None)
            if t is None or t > end:
                break
            self.now = max(self.now, t)
            for h in self.nodes:
                ht = h.get_timer()
                if ht is not None and ht <= self.now:
                    h.handle_timer(self.now)
        self.now = end

    # -- the oracle --------------------------------------------------------------------------------
    def _path_state(self) -> tuple[Any, ...]:
        """What carries the live traffic: A's routes (and source addresses) to B, its hop
        limits (an RA's Cur Hop Limit of 1 is honoured, RFC 4861 §6.3.4: then R may not
        forward A's packets) and the link-layer addresses A and R hold for each other and R
        for B."""
        return (self.a.route_get(B4, self.now), self.a.route_get(B6, self.now),
                self.a.hop_limit6, self.a.default_ttl,
                *(n.mac if (n := cache.lookup(ip)) is not None else None
                  for cache, ip, _ in self._pinned))

    @property
    def _pinned(self) -> list[tuple[Any, bytes, bytes]]:
        a, r = self.a.interfaces[0], self.r.interfaces
        return [(a.arp, R04, MAC_R0), (a.nd, R06, MAC_R0), (r[0].arp, A4, MAC_A),
                (r[0].nd, A6, MAC_A), (r[1].arp, B4, MAC_B), (r[1].nd, B6, MAC_B)]

    def inject(self, target: str, frame: Frame, dt: float = 0.0) -> None:
        """One hostile frame into ``target`` (A, R0 or R1), then ``dt`` seconds pass."""
        before = [lv.snapshot() for lv in self.conns]
        gens = self._gens()
        node, port = {"A": (self.a, 0), "R0": (self.r, 0), "R1": (self.r, 1)}[target]
        node.receive_frame(port, frame, self.now)
        self.pump()
        self.stats["frames"] += 1
        for lv, snap in zip(list(self.conns), before, strict=True):
            if lv.snapshot() != snap:
                self._replace(lv)  # accepted as a peer who knows the state could send it
        if self._gens() != gens or self._neighbours_moved():
            path = self._path_state()
            if path != self._path:
                self.stats["diverted"] += 1
                raise Diverted
        if dt:
            self.advance(dt)

    def _gens(self) -> tuple[int, ...]:
        a = self.a
        return a.routes.gen, a.addr_gen, a.hop_limit6, a.default_ttl

    def _neighbours_moved(self) -> bool:
        """An on-link spoof (ARP, NA) changed a live next hop's link-layer address."""
        for cache, ip, mac in self._pinned:
            n = cache.lookup(ip)
            if n is not None and n.mac not in (None, mac):
                return True
        return False

    def _replace(self, lv: Live) -> None:
        self.stats[f"replaced.{lv.name}"] += 1
        self.conns.remove(lv)
        for h, t in ((lv.client_host, lv.client), (lv.server_host, lv.server)):
            if t is not None and not t.finished:
                t.abort(self.now)
                h.tcp.kick(t)
        self.pump()
        if lv.name == "http":
            self.open("http", self.a, B4, HTTP_PORT)
        else:
            self.open("ssh", self.b, A6, SSH_PORT)

    def verify(self, nbytes: int = 3000) -> None:
        """Every live connection carries ``nbytes`` each way byte-exact, UDP gets through, and
        A's reassembly holds one datagram's first fragment per family again."""
        self._round += 1
        for i, lv in enumerate(self.conns):
            srv = lv.server
            assert srv is not None
            for d, h, src in (("c2s", lv.client_host, lv.client), ("s2c", lv.server_host, srv)):
                data = _pattern(self._round * 100 + i * 2 + (d == "s2c"), nbytes)
                src.send(data)
                lv.sent[d] += data
                h.tcp.kick(src)
        dgram = _pattern(self._round, 200)
        self.udp_b.sendto(dgram, (A4, DNS_PORT), self.now)
        # a fragmented datagram per family, last fragment first; then the first fragment of
        # the next one stays in A's reassembly for the hostile frames to meet
        # identifications a mutated frame cannot guess: one that matches may legitimately
        # spoil the datagram (an overlap drops it, RFC 5722)
        ident = self._idents.getrandbits(16) & 0xFFFE
        expect = [dgram]
        for family, fr in ((4, frags4), (6, frags6)):
            src, dst = (B4, A4) if family == 4 else (B6, A6)
            for k, ident_k in ((0, ident), (1, ident + 1)):
                data = _pattern(self._round * 7 + family + k, 300)
                pieces = fr(src, dst, PROTO_UDP, bytes(build_udp(src, dst, B_UDP_PORT, DNS_PORT,
                                                                  data)), ident_k)
                if k == 0:
                    expect.append(data)
                    for p in reversed(pieces):
                        self.a.receive_frame(0, eth(p), self.now)
                else:
                    self.a.receive_frame(0, eth(pieces[0]), self.now)
        # a frame may legitimately have slowed a connection (a smaller path MTU, a zero window
        # from an in-window ACK): it has two minutes of retransmissions to recover
        for _ in range(120):
            self.advance(1.0)
            if all(lv.got[d] == lv.sent[d] for lv in self.conns for d in lv.got):
                break
        for lv in self.conns:
            for d in ("c2s", "s2c"):
                if lv.got[d] != lv.sent[d]:
                    raise Broken(f"{lv.name} {d}: {len(lv.got[d])} bytes received of "
                                 f"{len(lv.sent[d])} sent (state {lv.client.state}"
                                 f"/{lv.server and lv.server.state})")
        got = [d for d, _ in self.udp_got]
        for what, d in zip(("unfragmented", "IPv4 fragmented", "IPv6 fragmented"), expect,
                           strict=True):
            if d not in got:
                c = self.a.counters
                raise Broken(f"the {what} UDP datagram to A:53 was lost (A's reassembly "
                             f"drops: { {k: v for k, v in c.items() if 'frag' in k} })")
        self.udp_got.clear()
        self.stats["verified"] += 1

    def footprint(self) -> dict[str, int]:
        """What A and R hold that an attacker could grow."""
        out: Counter[str] = Counter()
        for name, h in (("a", self.a), ("r", self.r)):
            out[f"{name}.tcp.conns"] = len(h.tcp.conns)
            out[f"{name}.tcp.history"] = len(h.tcp.history)
            for iface in h.interfaces:
                out[f"{name}.neigh"] += len(iface.arp) + len(iface.nd)
                out[f"{name}.addrs"] += len(iface.v4) + len(iface.v6)
            out[f"{name}.routes"] = len(h.routes)
        return dict(out)


class Diverted(Exception):  # noqa: N818 - a verdict, not an error: the bench is rebuilt
    """A's path to B legitimately moved (on-link spoofing): rebuild the bench."""


FrameSource = Callable[[], tuple[str, Frame, float]]
