"""One interface of a host: its port (MAC, MTU), its addresses and its neighbour caches.

The host builds the neighbour caches (ARP for IPv4, NDP for IPv6: both
:class:`~stacklab.stack.neighbor.NeighborCache`) and hands them in, so this module needs neither
engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from stacklab.wire.addr import is_link_local

from .neighbor import NeighborCache
from .node import Port

__all__ = ["ALL_NODES", "ALL_ROUTERS", "LOOPBACK4", "LOOPBACK6", "LO_IFINDEX", "LO_MTU", "Addr6",
           "Interface"]

ALL_NODES = bytes.fromhex("ff020000000000000000000000000001")
ALL_ROUTERS = bytes.fromhex("ff020000000000000000000000000002")
# the loopback interface, Host.lo: not an index into Host.interfaces (it has no link), so the
# ``0 <= ifindex < len(interfaces)`` checks pass over it
LO_IFINDEX = -1
LO_MTU = 65536  # Linux's lo
LOOPBACK4 = bytes([127, 0, 0, 1])
LOOPBACK6 = bytes(15) + b"\x01"


@dataclass(slots=True)
class Addr6:
    addr: bytes
    plen: int
    # tentative (usable: optimistic DAD) | preferred | deprecated (RFC 4862 §5.5.4: preferred
    # lifetime over, kept for existing use, avoided as a source) | duplicate
    state: str = "tentative"
    # SLAAC lifetimes (RFC 4862 §5.5.3) as absolute times; None: infinite (configured addresses)
    valid_until: float | None = None
    preferred_until: float | None = None


class Interface:
    """One interface of a host: its port (MAC, MTU) plus addresses and neighbour caches."""

    def __init__(self, port: Port, arp: NeighborCache, nd: NeighborCache) -> None:
        self.port = port
        self.index = port.index
        self.name = port.name
        self.mac = port.mac
        self.v4: list[tuple[bytes, int]] = []
        self.v6: list[Addr6] = []
        self.bcast4: set[bytes] = set()
        self.groups6: set[bytes] = {ALL_NODES}
        self.groups4: set[bytes] = set()  # IPv4 multicast groups joined (IGMP), 224.0.0.1 aside
        self._ra_mtu: int | None = None
        self._dhcp_mtu: int | None = None
        self._mtu_cap: int | None = None  # the lower of the two, kept for the hot path
        self.link_local: bytes | None = None
        self.arp = arp  # IPv4 neighbours (ARP)
        self.nd = nd  # IPv6 neighbours (NDP)

    @property
    def mtu(self) -> int:
        m = self.port.mtu
        return min(m, self._mtu_cap) if self._mtu_cap else m

    @property
    def ra_mtu(self) -> int | None:
        """The MTU option of router advertisements (RFC 4861 §4.6.4)."""
        return self._ra_mtu

    @ra_mtu.setter
    def ra_mtu(self, value: int | None) -> None:
        self._ra_mtu = value
        self._cap()

    @property
    def dhcp_mtu(self) -> int | None:
        """DHCPv4 option 26, Interface MTU (RFC 2132 §5.1)."""
        return self._dhcp_mtu

    @dhcp_mtu.setter
    def dhcp_mtu(self, value: int | None) -> None:
        self._dhcp_mtu = value
        self._cap()

    def _cap(self) -> None:
        caps = [m for m in (self._ra_mtu, self._dhcp_mtu) if m]
        self._mtu_cap = min(caps) if caps else None

    def has_v4(self, a: bytes) -> bool:
        # a loop, not any() over a generator (two more calls): ARP asks for every request heard
        for addr, _ in self.v4:  # noqa: SIM110
            if addr == a:
                return True
        return False

    def v4_source_for(self, dst: bytes) -> bytes | None:
        """The address of this interface on ``dst``'s subnet, else the primary one."""
        if not self.v4:
            return None
        d = int.from_bytes(dst, "big")
        for addr, plen in self.v4:
            shift = 32 - plen
            if int.from_bytes(addr, "big") >> shift == d >> shift:
                return addr
        return self.v4[0][0]

    def has_v6(self, a: bytes) -> bool:
        return any(x.addr == a and x.state != "duplicate" for x in self.v6)

    def is_tentative(self, a: bytes) -> bool:
        return any(x.addr == a and x.state == "tentative" for x in self.v6)

    def has_global_v6(self) -> bool:
        return any(not is_link_local(x.addr) and x.state != "duplicate" for x in self.v6)

    def v6_source_for(self, dst: bytes) -> bytes | None:
        """RFC 6724, simplified: same scope (rule 2), not deprecated (rule 3), then longest
        matching prefix (rule 8)."""
        cands = [x for x in self.v6 if x.state != "duplicate"]
        if not cands:
            return None
        ll = is_link_local(dst) or (dst[0] == 0xFF and (dst[1] & 0x0F) <= 2)
        same = [x for x in cands if is_link_local(x.addr) == ll]
        pool = same or cands
        pool = [x for x in pool if x.state != "deprecated"] or pool
        d = int.from_bytes(dst, "big")
        return max(pool, key=lambda x: 128 - (int.from_bytes(x.addr, "big") ^ d).bit_length()
                   ).addr

    def mark_preferred(self, a: bytes) -> None:
        for x in self.v6:
            if x.addr == a and x.state == "tentative":
                x.state = "preferred"

    def mark_duplicate(self, a: bytes) -> None:
        """DAD failed for ``a`` (the host also stops treating it as local)."""
        for x in self.v6:
            if x.addr == a:
                x.state = "duplicate"
        if self.link_local == a:
            self.link_local = None
