"""DHCPv4 messages (RFC 2131 §2, options RFC 2132): parse and build.

A message is the BOOTP header (236 bytes), the magic cookie and options (code, length, value).
Options repeated in one message are concatenated (RFC 3396); PAD and END as RFC 2132 §3.1-2.
Bad input raises :class:`~stacklab.wire.errors.MalformedPacket` (layer ``"dhcp"``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .addr import ip4_str, mac_str
from .errors import MalformedPacket

__all__ = [
    "ACK", "CLIENT_PORT", "DECLINE", "DISCOVER", "DhcpMessage", "INFORM", "MESSAGE_TYPE_NAMES",
    "NAK", "OFFER", "OPT_DNS", "OPT_DOMAIN", "OPT_LEASE", "OPT_MESSAGE", "OPT_MSG_TYPE",
    "OPT_MTU", "OPT_PARAMS", "OPT_REQUESTED_IP", "OPT_ROUTER", "OPT_SERVER_ID", "OPT_SUBNET",
    "OPT_T1", "OPT_T2", "RELEASE", "REQUEST", "SERVER_PORT",
]

SERVER_PORT = 67
CLIENT_PORT = 68
BOOTREQUEST, BOOTREPLY = 1, 2
MAGIC = b"\x63\x82\x53\x63"
FLAG_BROADCAST = 0x8000
# DHCP message types (RFC 2132 §9.6)
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
MESSAGE_TYPE_NAMES = {DISCOVER: "DISCOVER", OFFER: "OFFER", REQUEST: "REQUEST",
                      DECLINE: "DECLINE", ACK: "ACK", NAK: "NAK", RELEASE: "RELEASE",
                      INFORM: "INFORM"}
# options (RFC 2132)
OPT_PAD, OPT_END = 0, 255
OPT_SUBNET = 1
OPT_ROUTER = 3
OPT_DNS = 6
OPT_DOMAIN = 15
OPT_MTU = 26
OPT_REQUESTED_IP = 50
OPT_LEASE = 51
OPT_MSG_TYPE = 53
OPT_SERVER_ID = 54
OPT_PARAMS = 55
OPT_MESSAGE = 56
OPT_T1 = 58
OPT_T2 = 59

_HEADER = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")  # 236 bytes
ZERO4 = bytes(4)


@dataclass(slots=True)
class DhcpMessage:
    op: int
    xid: int
    chaddr: bytes  # the client's MAC (6 bytes for Ethernet)
    options: dict[int, bytes] = field(default_factory=dict)
    secs: int = 0
    flags: int = 0
    ciaddr: bytes = ZERO4
    yiaddr: bytes = ZERO4
    siaddr: bytes = ZERO4
    giaddr: bytes = ZERO4
    hops: int = 0

    # -- options ---------------------------------------------------------------------------------
    @property
    def msg_type(self) -> int | None:
        v = self.options.get(OPT_MSG_TYPE)
        return v[0] if v and len(v) == 1 else None

    def ip(self, code: int) -> bytes | None:
        """A one-address option (server id, requested address, netmask)."""
        v = self.options.get(code)
        return v if v is not None and len(v) == 4 else None

    def ips(self, code: int) -> list[bytes]:
        """An address-list option (routers, DNS servers): empty when absent or malformed."""
        v = self.options.get(code, b"")
        if len(v) % 4:
            return []
        return [v[i:i + 4] for i in range(0, len(v), 4)]

    def u32(self, code: int) -> int | None:
        v = self.options.get(code)
        return int.from_bytes(v, "big") if v is not None and len(v) == 4 else None

    def u16(self, code: int) -> int | None:
        v = self.options.get(code)
        return int.from_bytes(v, "big") if v is not None and len(v) == 2 else None

    def text(self, code: int) -> str | None:
        v = self.options.get(code)
        return v.rstrip(b"\0").decode("ascii", "replace") if v is not None else None

    # -- wire ------------------------------------------------------------------------------------
    def build(self) -> bytes:
        out = [_HEADER.pack(self.op, 1, len(self.chaddr), self.hops, self.xid, self.secs,
                            self.flags, self.ciaddr, self.yiaddr, self.siaddr, self.giaddr,
                            self.chaddr, b"", b""), MAGIC]
        for code, value in self.options.items():
            # RFC 3396: a value longer than 255 bytes is split over consecutive options
            for i in range(0, max(len(value), 1), 255):
                chunk = value[i:i + 255]
                out.append(bytes((code, len(chunk))) + chunk)
        out.append(bytes((OPT_END,)))
        msg = b"".join(out)
        # RFC 2131 §2 / RFC 1542: BOOTP relays expect at least the 300-byte BOOTP size
        return msg + bytes(max(0, 300 - len(msg)))

    @classmethod
    def parse(cls, buf: bytes | bytearray | memoryview) -> DhcpMessage:
        b = bytes(buf)
        if len(b) < _HEADER.size + 4:
            raise MalformedPacket("dhcp", "length", f"{len(b)} bytes, below 240")
        (op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr,
         _sname, _file) = _HEADER.unpack_from(b)
        if op not in (BOOTREQUEST, BOOTREPLY):
            raise MalformedPacket("dhcp", "op", f"op {op}")
        if htype != 1 or hlen != 6:
            raise MalformedPacket("dhcp", "htype", f"hardware type {htype} length {hlen}")
        if b[_HEADER.size:_HEADER.size + 4] != MAGIC:
            raise MalformedPacket("dhcp", "cookie", "no DHCP magic cookie (BOOTP only)")
        options: dict[int, bytes] = {}
        i, n = _HEADER.size + 4, len(b)
        while i < n:
            code = b[i]
            if code == OPT_PAD:
                i += 1
                continue
            if code == OPT_END:
                break
            if i + 2 > n or i + 2 + b[i + 1] > n:
                raise MalformedPacket("dhcp", "option", f"option {code} runs past the end")
            length = b[i + 1]
            options[code] = options.get(code, b"") + b[i + 2:i + 2 + length]
            i += 2 + length
        else:
            raise MalformedPacket("dhcp", "option", "no END option")
        msg = cls(op, xid, chaddr[:6], options, secs, flags, ciaddr, yiaddr, siaddr, giaddr,
                  hops)
        if msg.msg_type not in MESSAGE_TYPE_NAMES:
            raise MalformedPacket("dhcp", "msg_type", "no or unknown DHCP message type")
        return msg

    def summary(self) -> str:
        name = MESSAGE_TYPE_NAMES.get(self.msg_type or 0, "?")
        parts = [f"DHCP {name}", f"xid 0x{self.xid:08x}", f"chaddr {mac_str(self.chaddr)}"]
        if self.yiaddr != ZERO4:
            parts.append(f"yiaddr {ip4_str(self.yiaddr)}")
        return " ".join(parts)
