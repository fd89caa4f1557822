"""IPv4 Address Conflict Detection (RFC 5227) and IPv4 link-local addresses (RFC 3927), sans-IO.

What Linux leaves to user space (NetworkManager, systemd-networkd's n-acd, avahi-autoipd), one
engine per host, ``host.acd``; the calls a DHCP client needs:

* :meth:`Acd.probe` ``(ifindex, addr, now, on_done)`` — *is this address free?* Waits a random
  0..PROBE_WAIT (1 s), sends PROBE_NUM (3) ARP Probes (sender IP 0.0.0.0, target the address)
  PROBE_MIN..PROBE_MAX (1-2 s) apart, then waits ANNOUNCE_WAIT (2 s); ``on_done(ok, now)``:
  False as soon as another machine answers for the address, sends any ARP from it, or probes
  for it too (RFC 5227 §2.1.1) — a DHCP client then sends DHCPDECLINE (RFC 2131 §3.1.5);
* :meth:`Acd.claim` ``(ifindex, "10.0.1.7/24", now, on_done)`` — probe, then assign the
  address and announce it ANNOUNCE_NUM (2) times ANNOUNCE_INTERVAL (2 s) apart (RFC 5227 §2.3;
  the first announcement is ``add_address``'s gratuitous ARP);
* :meth:`Acd.start_link_local` ``(ifindex, now, on_done)`` — RFC 3927 when DHCP fails: a
  pseudo-random address in 169.254.1.0 - 169.254.254.255 from a generator seeded with the MAC
  (so a host picks the same address every time, §2.1), claimed as above; on a conflict the
  next candidate, and after MAX_CONFLICTS (10) one attempt per RATE_LIMIT_INTERVAL (60 s).
  ``on_done(address or None, now)``.

Defence (RFC 5227 §2.4 (b)): an ARP from another machine claiming one of our addresses is
answered with one announcement, at most once per DEFEND_INTERVAL (10 s), and counted
(``arp.conflicts``, ``arp.defended``); the address is kept.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stacklab.wire.addr import BROADCAST_MAC, ZERO_MAC, ip_str, mac_str
from stacklab.wire.arp import ARP_REQUEST, build_arp
from stacklab.wire.ethernet import ETH_P_ARP, build_ethernet, pad_frame

from .arp import gratuitous_arp

if TYPE_CHECKING:
    from .context import HostContext
    from .interface import Interface

__all__ = ["Acd"]

# RFC 5227 §1.1 (RFC 3927 §9 has the same values)
PROBE_WAIT, PROBE_NUM, PROBE_MIN, PROBE_MAX = 1.0, 3, 1.0, 2.0
ANNOUNCE_WAIT, ANNOUNCE_NUM, ANNOUNCE_INTERVAL = 2.0, 2, 2.0
MAX_CONFLICTS, RATE_LIMIT_INTERVAL, DEFEND_INTERVAL = 10, 60.0, 10.0
ZERO_IP = bytes(4)


@dataclass(slots=True)
class _Probe:
    ifindex: int
    addr: bytes
    on_done: Callable[[bool, float], None]
    due: float
    left: int = PROBE_NUM  # probes still to send (0: in ANNOUNCE_WAIT)


@dataclass(slots=True)
class _LinkLocal:
    ifindex: int
    rng: random.Random
    on_done: Callable[[str | None, float], None] | None
    conflicts: int = 0


class Acd:
    """RFC 5227 / RFC 3927 for one host (see the module docstring)."""

    def __init__(self, host: HostContext) -> None:
        self.host = host
        self.probes: dict[tuple[int, bytes], _Probe] = {}
        self.announces: dict[tuple[int, bytes], tuple[float, int]] = {}  # due, left
        self.retry: dict[int, float] = {}  # link-local: ifindex -> next attempt (rate limit)
        self.link_local: dict[int, _LinkLocal] = {}
        self._defended: dict[bytes, float] = {}
        host.add_timer_source(self)

    # -- the calls ------------------------------------------------------------------------------
    def probe(self, ifindex: int, addr: bytes, now: float,
              on_done: Callable[[bool, float], None]) -> None:
        """Is ``addr`` free on ``ifindex``'s link? ``on_done(ok, now)`` says (RFC 5227 §2.1)."""
        self.probes[(ifindex, addr)] = _Probe(ifindex, addr, on_done,
                                              now + self.host.rng.uniform(0.0, PROBE_WAIT))
        self.host.request_wake()

    def claim(self, ifindex: int, cidr: str, now: float,
              on_done: Callable[[bool, float], None] | None = None) -> None:
        """Probe ``cidr``'s address, then assign and announce it; ``on_done(ok, now)``."""
        addr = ipaddress.IPv4Interface(cidr).ip.packed

        def done(ok: bool, t: float) -> None:
            if ok:
                self.host.add_address(ifindex, cidr)  # its gratuitous ARP: announcement 1
                self.announces[(ifindex, addr)] = (t + ANNOUNCE_INTERVAL, ANNOUNCE_NUM - 1)
                self.host.request_wake()
            if on_done is not None:
                on_done(ok, t)
        self.probe(ifindex, addr, now, done)

    def start_link_local(self, ifindex: int, now: float,
                         on_done: Callable[[str | None, float], None] | None = None) -> None:
        """Configure a 169.254/16 address on ``ifindex`` (RFC 3927); ``on_done(addr, now)``."""
        mac = self.host.interfaces[ifindex].mac
        self.link_local[ifindex] = _LinkLocal(ifindex, random.Random(int.from_bytes(mac, "big")),
                                              on_done)
        self._next_link_local(ifindex, now)

    def _next_link_local(self, ifindex: int, now: float) -> None:
        ll = self.link_local[ifindex]
        n = ll.rng.randrange(0xFE00)  # 169.254.1.0 .. 169.254.254.255 (§2.1)
        addr = bytes([169, 254, 1 + (n >> 8), n & 0xFF])

        def done(ok: bool, t: float) -> None:
            if ok:
                self.link_local.pop(ifindex, None)
                self.host.counters["arp.link_local.configured"] += 1
                self.host.trace(t, "arp", "link_local", addr=ip_str(addr))
                if ll.on_done is not None:
                    ll.on_done(ip_str(addr), t)
                return
            ll.conflicts += 1
            self.host.counters["arp.link_local.conflicts"] += 1
            if ll.conflicts >= MAX_CONFLICTS:  # §2.2.1: then one attempt a minute
                self.retry[ifindex] = t + RATE_LIMIT_INTERVAL
                self.host.request_wake()
            else:
                self._next_link_local(ifindex, t)
        self.claim(ifindex, f"{ip_str(addr)}/16", now, done)

    # -- what ARP tells us ------------------------------------------------------------------------
    def arp_seen(self, iface: Interface, op: int, sha: bytes, spa: bytes, tpa: bytes,
                 now: float) -> None:
        """Every received ARP packet (not our own): a conflict for a probe in progress?"""
        if not self.probes:
            return
        for key in ((iface.index, spa), (iface.index, tpa)):
            p = self.probes.get(key)
            if p is None:
                continue
            # §2.1.1: any ARP from the address, or another machine's probe for it
            if spa == p.addr or (op == ARP_REQUEST and spa == ZERO_IP and tpa == p.addr):
                del self.probes[key]
                self.host.counters["arp.acd.conflict"] += 1
                self.host.trace(now, "arp", "conflict", ip=ip_str(p.addr), mac=mac_str(sha))
                p.on_done(False, now)
                return

    def defend(self, iface: Interface, addr: bytes, now: float) -> None:
        """Another machine claims our ``addr``: announce ours, once per DEFEND_INTERVAL."""
        last = self._defended.get(addr)
        if last is not None and now - last < DEFEND_INTERVAL:
            return
        self._defended[addr] = now
        gratuitous_arp(self.host, iface, addr)
        self.host.counters["arp.defended"] += 1

    # -- timers -----------------------------------------------------------------------------------
    def get_timer(self) -> float | None:
        if not (self.probes or self.announces or self.retry):
            return None  # the usual case, asked after every frame
        times = [p.due for p in self.probes.values()]
        times += [t for t, _ in self.announces.values()]
        times += list(self.retry.values())
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        h = self.host
        for key, p in list(self.probes.items()):
            if p.due > now or self.probes.get(key) is not p:
                continue
            if p.left == 0:
                del self.probes[key]
                p.on_done(True, now)
                continue
            iface = h.interfaces[p.ifindex]
            frame = build_ethernet(BROADCAST_MAC, iface.mac, ETH_P_ARP,
                                   build_arp(ARP_REQUEST, iface.mac, ZERO_IP, ZERO_MAC, p.addr))
            h.send_frame(iface.index, pad_frame(frame))
            h.counters["arp.tx.probe"] += 1
            p.left -= 1
            p.due = now + (ANNOUNCE_WAIT if p.left == 0 else
                           h.rng.uniform(PROBE_MIN, PROBE_MAX))
        for key, (due, left) in list(self.announces.items()):
            if due > now:
                continue
            gratuitous_arp(h, h.interfaces[key[0]], key[1])
            if left > 1:
                self.announces[key] = (now + ANNOUNCE_INTERVAL, left - 1)
            else:
                del self.announces[key]
        for ifindex, t in list(self.retry.items()):
            if t <= now:
                del self.retry[ifindex]
                if ifindex in self.link_local:
                    self._next_link_local(ifindex, now)
