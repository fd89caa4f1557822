"""ARP (RFC 826) for Ethernet and IPv4 only: htype 1, ptype 0x0800, hlen 6, plen 4.

Layout (28 bytes)::

    htype(2) ptype(2) hlen(1) plen(1) op(2) sha(6) spa(4) tha(6) tpa(4)

Any other hardware/protocol type or address length is malformed for this stack. Bytes after the
28-byte packet (Ethernet padding) are ignored.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .addr import ZERO_MAC, ip4_str, mac_str
from .errors import MalformedPacket

ARP_REQUEST = 1
ARP_REPLY = 2
ARP_LEN = 28

_ARP = struct.Struct("!HHBBH6s4s6s4s")

Buffer = bytes | bytearray | memoryview


class ArpView:
    """A validated view over an Ethernet/IPv4 ARP packet."""

    __slots__ = ("buf", "op", "sha", "spa", "tha", "tpa")

    def __init__(self, buf: Buffer) -> None:
        if len(buf) < ARP_LEN:
            raise MalformedPacket("arp", "length", f"{len(buf)} bytes < 28")
        htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _ARP.unpack_from(buf)
        if htype != 1:
            raise MalformedPacket("arp", "htype", f"hardware type {htype} is not Ethernet (1)")
        if ptype != 0x0800:
            raise MalformedPacket("arp", "ptype", f"protocol type 0x{ptype:04x} is not IPv4")
        if hlen != 6 or plen != 4:
            raise MalformedPacket("arp", "hlen/plen", f"address lengths {hlen}/{plen}, not 6/4")
        self.buf = buf
        self.op: int = op
        self.sha: bytes = sha
        self.spa: bytes = spa
        self.tha: bytes = tha
        self.tpa: bytes = tpa


@dataclass(slots=True)
class Arp:
    """An ARP packet as a value. ``op`` is ARP_REQUEST (1) or ARP_REPLY (2) (others are kept)."""

    op: int
    sha: bytes
    spa: bytes
    tha: bytes = ZERO_MAC
    tpa: bytes = b"\x00\x00\x00\x00"

    @classmethod
    def parse(cls, buf: Buffer) -> Arp:
        v = ArpView(buf)
        return cls(v.op, v.sha, v.spa, v.tha, v.tpa)

    def build(self) -> bytearray:
        if len(self.sha) != 6 or len(self.tha) != 6 or len(self.spa) != 4 or len(self.tpa) != 4:
            raise ValueError("ARP addresses are MAC 6 bytes and IPv4 4 bytes")
        return build_arp(self.op, self.sha, self.spa, self.tha, self.tpa)

    def summary(self) -> str:
        if self.op == ARP_REQUEST:
            return f"ARP, Request who-has {ip4_str(self.tpa)} tell {ip4_str(self.spa)}, length 28"
        if self.op == ARP_REPLY:
            return f"ARP, Reply {ip4_str(self.spa)} is-at {mac_str(self.sha)}, length 28"
        return (f"ARP, op {self.op} {ip4_str(self.spa)} ({mac_str(self.sha)}) > "
                f"{ip4_str(self.tpa)} ({mac_str(self.tha)}), length 28")


def build_arp(op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes) -> bytearray:
    """Fast path: a 28-byte Ethernet/IPv4 ARP packet."""
    return bytearray(_ARP.pack(1, 0x0800, 6, 4, op, sha, spa, tha, tpa))
