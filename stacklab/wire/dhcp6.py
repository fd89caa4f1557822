"""DHCPv6 messages (RFC 8415 §8, §21): parse and build.

A client/server message is a type byte, a 3-byte transaction id and options (code 2 bytes,
length 2 bytes, value). IA_NA (§21.4) and IA Address (§21.6) options carry options of their
own; they are parsed into :class:`IaNa` / :class:`IaAddr`. Bad input raises
:class:`~stacklab.wire.errors.MalformedPacket` (layer ``"dhcp6"``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .errors import MalformedPacket

__all__ = [
    "ADVERTISE", "ALL_DHCP_SERVERS", "CLIENT_PORT", "Dhcp6Message", "INFORMATION_REQUEST",
    "IaAddr", "IaNa", "MESSAGE_TYPE_NAMES", "OPT_CLIENTID", "OPT_DNS_SERVERS", "OPT_DOMAIN_LIST",
    "OPT_ELAPSED_TIME", "OPT_IA_NA", "OPT_ORO", "OPT_SERVERID", "OPT_STATUS_CODE", "REBIND",
    "RELEASE", "RENEW", "REPLY", "REQUEST", "SERVER_PORT", "SOLICIT", "decode_domains",
    "duid_ll", "encode_domains",
]

CLIENT_PORT, SERVER_PORT = 546, 547
# All_DHCP_Relay_Agents_and_Servers (§7.1)
ALL_DHCP_SERVERS = bytes.fromhex("ff020000000000000000000000010002")
# message types (§7.3)
SOLICIT, ADVERTISE, REQUEST, CONFIRM, RENEW, REBIND, REPLY, RELEASE, DECLINE = range(1, 10)
INFORMATION_REQUEST = 11
MESSAGE_TYPE_NAMES = {SOLICIT: "SOLICIT", ADVERTISE: "ADVERTISE", REQUEST: "REQUEST",
                      CONFIRM: "CONFIRM", RENEW: "RENEW", REBIND: "REBIND", REPLY: "REPLY",
                      RELEASE: "RELEASE", DECLINE: "DECLINE",
                      INFORMATION_REQUEST: "INFORMATION-REQUEST"}
# options (§21, RFC 3646 for DNS)
OPT_CLIENTID, OPT_SERVERID, OPT_IA_NA = 1, 2, 3
OPT_IAADDR = 5
OPT_ORO = 6
OPT_ELAPSED_TIME = 8
OPT_STATUS_CODE = 13
OPT_DNS_SERVERS, OPT_DOMAIN_LIST = 23, 24
STATUS_NO_ADDRS_AVAIL = 2  # §21.13

_OPT = struct.Struct("!HH")
_IA = struct.Struct("!III")
_IAADDR = struct.Struct("!16sII")


def duid_ll(mac: bytes) -> bytes:
    """DUID-LL (§11.4): type 3, hardware type 1 (Ethernet), the MAC."""
    return b"\x00\x03\x00\x01" + mac


def encode_domains(names: list[str]) -> bytes:
    """RFC 1035 §3.1 uncompressed names (the DNS search list option, RFC 3646 §4)."""
    out = b""
    for name in names:
        for label in name.strip(".").split("."):
            raw = label.encode("ascii")
            if not 0 < len(raw) < 64:
                raise ValueError(f"bad domain label in {name!r}")
            out += bytes((len(raw),)) + raw
        out += b"\0"
    return out


def decode_domains(buf: bytes) -> list[str]:
    out: list[str] = []
    labels: list[str] = []
    i = 0
    while i < len(buf):
        n = buf[i]
        if n == 0:
            out.append(".".join(labels))
            labels = []
            i += 1
            continue
        if n > 63 or i + 1 + n > len(buf):
            raise MalformedPacket("dhcp6", "domain", "bad label in the domain list")
        labels.append(buf[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    if labels:
        raise MalformedPacket("dhcp6", "domain", "domain list not ended by a root label")
    return out


def _options(b: bytes, layer_field: str) -> list[tuple[int, bytes]]:
    out, i = [], 0
    while i < len(b):
        if i + 4 > len(b):
            raise MalformedPacket("dhcp6", layer_field, "truncated option header")
        code, length = _OPT.unpack_from(b, i)
        if i + 4 + length > len(b):
            raise MalformedPacket("dhcp6", layer_field, f"option {code} runs past the end")
        out.append((code, b[i + 4:i + 4 + length]))
        i += 4 + length
    return out


def _encode(options: list[tuple[int, bytes]]) -> bytes:
    return b"".join(_OPT.pack(c, len(v)) + v for c, v in options)


@dataclass(slots=True)
class IaAddr:
    addr: bytes
    preferred: int
    valid: int

    def encode(self) -> bytes:
        return _IAADDR.pack(self.addr, self.preferred, self.valid)


@dataclass(slots=True)
class IaNa:
    iaid: int
    t1: int
    t2: int
    addrs: list[IaAddr] = field(default_factory=list)
    status: int | None = None  # a Status Code option inside the IA (§21.13)

    def encode(self) -> bytes:
        opts = [(OPT_IAADDR, a.encode()) for a in self.addrs]
        if self.status is not None:
            opts.append((OPT_STATUS_CODE, self.status.to_bytes(2, "big")))
        return _IA.pack(self.iaid, self.t1, self.t2) + _encode(opts)

    @classmethod
    def parse(cls, b: bytes) -> IaNa:
        if len(b) < 12:
            raise MalformedPacket("dhcp6", "ia_na", f"IA_NA of {len(b)} bytes, below 12")
        ia = cls(*_IA.unpack_from(b))
        for code, v in _options(b[12:], "ia_na"):
            if code == OPT_IAADDR:
                if len(v) < 24:
                    raise MalformedPacket("dhcp6", "iaaddr", f"IA Address of {len(v)} bytes")
                ia.addrs.append(IaAddr(*_IAADDR.unpack_from(v)))
            elif code == OPT_STATUS_CODE and len(v) >= 2:
                ia.status = int.from_bytes(v[:2], "big")
        return ia


@dataclass(slots=True)
class Dhcp6Message:
    msg_type: int
    xid: int
    options: list[tuple[int, bytes]] = field(default_factory=list)

    def get(self, code: int) -> bytes | None:
        for c, v in self.options:
            if c == code:
                return v
        return None

    def ia_na(self) -> list[IaNa]:
        return [IaNa.parse(v) for c, v in self.options if c == OPT_IA_NA]

    def dns_servers(self) -> list[bytes]:
        v = self.get(OPT_DNS_SERVERS) or b""
        if len(v) % 16:
            raise MalformedPacket("dhcp6", "dns_servers", f"{len(v)} bytes, not 16 per server")
        return [v[i:i + 16] for i in range(0, len(v), 16)]

    def domains(self) -> list[str]:
        return decode_domains(self.get(OPT_DOMAIN_LIST) or b"")

    def status(self) -> int | None:
        v = self.get(OPT_STATUS_CODE)
        return int.from_bytes(v[:2], "big") if v is not None and len(v) >= 2 else None

    def build(self) -> bytes:
        return bytes((self.msg_type,)) + self.xid.to_bytes(3, "big") + _encode(self.options)

    @classmethod
    def parse(cls, buf: bytes | bytearray | memoryview) -> Dhcp6Message:
        b = bytes(buf)
        if len(b) < 4:
            raise MalformedPacket("dhcp6", "length", f"{len(b)} bytes, below 4")
        if b[0] not in MESSAGE_TYPE_NAMES:
            raise MalformedPacket("dhcp6", "msg_type", f"message type {b[0]}")
        msg = cls(b[0], int.from_bytes(b[1:4], "big"), _options(b[4:], "option"))
        # the nested options are checked here, so a caller never meets a bad one later
        msg.ia_na()
        msg.dns_servers()
        msg.domains()
        return msg
