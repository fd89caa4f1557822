"""Ethernet II frames (IEEE 802.3 with an EtherType), with one optional 802.1Q VLAN tag.

Layout (no FCS: TAP devices and captures hand frames over without it)::

    dst(6) src(6) [0x8100 TCI(2)] ethertype(2) payload...

TCI = PCP(3) DEI(1) VID(12). Only one tag is read; a second tag (QinQ) is left as the inner
ethertype 0x8100 with its tag at the start of the payload. ``ethertype`` is always the inner type.
A value below 0x0600 is an 802.3 length, not a type: such frames are malformed for this stack.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .addr import mac_str
from .errors import MalformedPacket

ETH_P_IPV4 = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8

ETH_HEADER_LEN = 14
ETH_VLAN_HEADER_LEN = 18
ETH_MIN_FRAME = 60  # without the FCS; shorter frames are padded on the wire

_HDR = struct.Struct("!6s6sH")
_TCI_TYPE = struct.Struct("!HH")
_VLAN_HDR = struct.Struct("!6s6sHHH")

ETHERTYPE_NAMES = {ETH_P_IPV4: "IPv4", ETH_P_ARP: "ARP", ETH_P_IPV6: "IPv6",
                   ETH_P_8021Q: "802.1Q", ETH_P_8021AD: "802.1ad"}

Buffer = bytes | bytearray | memoryview


class EthernetView:
    """A validated view over an Ethernet II frame; ``payload`` is a memoryview into ``buf``."""

    __slots__ = ("buf", "dst", "src", "ethertype", "vlan", "tci", "header_len", "payload")
    buf: memoryview
    dst: bytes
    src: bytes
    ethertype: int
    vlan: int | None  # the VLAN ID of an 802.1Q tag
    tci: int
    header_len: int
    payload: memoryview

    def __init__(self, buf: Buffer) -> None:
        mv = buf if type(buf) is memoryview else memoryview(buf)
        if len(mv) < 14:
            raise MalformedPacket("ethernet", "length", f"frame of {len(mv)} bytes < 14")
        self.dst, self.src, etype = _HDR.unpack_from(mv)
        self.buf = mv
        if etype != 0x8100:
            if etype < 0x0600:
                raise MalformedPacket("ethernet", "ethertype",
                                      f"0x{etype:04x} is an 802.3 length, not an EtherType")
            self.ethertype = etype
            self.vlan = None
            self.tci = 0
            self.header_len = 14
            self.payload = mv[14:]
            return
        if len(mv) < 18:
            raise MalformedPacket("ethernet", "vlan", f"tagged frame of {len(mv)} bytes < 18")
        tci, etype = _TCI_TYPE.unpack_from(mv, 14)
        if etype < 0x0600:
            raise MalformedPacket("ethernet", "ethertype",
                                  f"0x{etype:04x} is an 802.3 length, not an EtherType")
        self.ethertype = etype
        self.vlan = tci & 0x0FFF
        self.tci = tci
        self.header_len = 18
        self.payload = mv[18:]

    @property
    def pcp(self) -> int:
        """802.1p priority code point of the tag (0 when untagged)."""
        return self.tci >> 13

    @property
    def dei(self) -> int:
        """Drop eligible indicator of the tag (0 when untagged)."""
        return (self.tci >> 12) & 1


@dataclass(slots=True)
class Ethernet:
    """An Ethernet II frame as a value. ``vlan`` is the 802.1Q VLAN id, or None for untagged."""

    dst: bytes
    src: bytes
    ethertype: int
    payload: bytes = b""
    vlan: int | None = None
    pcp: int = 0
    dei: int = 0

    @classmethod
    def parse(cls, buf: Buffer) -> Ethernet:
        v = EthernetView(buf)
        return cls(v.dst, v.src, v.ethertype, bytes(v.payload), v.vlan, v.pcp, v.dei)

    def build(self) -> bytearray:
        if len(self.dst) != 6 or len(self.src) != 6:
            raise ValueError("MAC addresses are 6 bytes")
        if self.vlan is None:
            out = bytearray(_HDR.pack(self.dst, self.src, self.ethertype))
        else:
            if not 0 <= self.vlan <= 0x0FFF or not 0 <= self.pcp <= 7 or self.dei not in (0, 1):
                raise ValueError(f"bad 802.1Q tag: vlan={self.vlan} pcp={self.pcp} dei={self.dei}")
            tci = (self.pcp << 13) | (self.dei << 12) | self.vlan
            out = bytearray(_VLAN_HDR.pack(self.dst, self.src, ETH_P_8021Q, tci, self.ethertype))
        out += self.payload
        return out

    def summary(self) -> str:
        name = ETHERTYPE_NAMES.get(self.ethertype, f"ethertype 0x{self.ethertype:04x}")
        tag = f" vlan {self.vlan} p {self.pcp}" if self.vlan is not None else ""
        return (f"{mac_str(self.src)} > {mac_str(self.dst)}{tag}, {name}, "
                f"length {len(self.payload) + (18 if self.vlan is not None else 14)}")


def build_ethernet(dst: bytes, src: bytes, ethertype: int, payload: Buffer) -> bytearray:
    """Fast path: an untagged Ethernet II frame (no padding to 60 bytes; the link may pad)."""
    out = bytearray(_HDR.pack(dst, src, ethertype))
    out += payload
    return out


def pad_frame(frame: bytearray) -> bytearray:
    """Pad ``frame`` in place with zeros to the 60-byte Ethernet minimum (without FCS)."""
    if len(frame) < ETH_MIN_FRAME:
        frame += bytes(ETH_MIN_FRAME - len(frame))
    return frame
