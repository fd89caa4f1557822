"""Addresses on the wire are plain ``bytes``: MAC 6, IPv4 4, IPv6 16. These helpers convert."""

from __future__ import annotations

import ipaddress
import socket

from .errors import MalformedPacket

BROADCAST_MAC = b"\xff" * 6
ZERO_MAC = b"\x00" * 6


def mac_str(mac: bytes) -> str:
    return mac.hex(":")


def mac_bytes(text: str | bytes) -> bytes:
    if isinstance(text, bytes):
        if len(text) != 6:
            raise MalformedPacket("ethernet", "mac", f"expected 6 bytes, got {len(text)}")
        return text
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    return bytes(int(p, 16) for p in parts)


def ip4_str(addr: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET, addr)


def ip6_str(addr: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, addr)


def ip_str(addr: bytes) -> str:
    """Text form of a 4- or 16-byte address."""
    return socket.inet_ntop(socket.AF_INET if len(addr) == 4 else socket.AF_INET6, addr)


def ip_bytes(text: str | bytes | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bytes:
    """Packed form of an IPv4 or IPv6 address given as text, bytes or an ipaddress object."""
    if isinstance(text, bytes):
        if len(text) not in (4, 16):
            raise ValueError(f"an IP address is 4 or 16 bytes, got {len(text)}")
        return text
    if isinstance(text, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return text.packed
    return ipaddress.ip_address(text).packed


def ip4_bytes(text: str | bytes) -> bytes:
    b = ip_bytes(text)
    if len(b) != 4:
        raise ValueError(f"not an IPv4 address: {text!r}")
    return b


def is_link_local(a: bytes) -> bool:
    """Whether an IPv6 address is link-local unicast, fe80::/10 (RFC 4291 §2.5.6)."""
    return a[0] == 0xFE and (a[1] & 0xC0) == 0x80


def multicast_mac(a: bytes) -> bytes:
    """The Ethernet address a multicast address maps to: IPv6, 33:33 and its last 32 bits
    (RFC 2464 §7); IPv4, 01:00:5e and its low 23 bits (RFC 1112 §6.4)."""
    if len(a) == 4:
        return bytes((0x01, 0x00, 0x5E, a[1] & 0x7F, a[2], a[3]))
    return b"\x33\x33" + a[12:16]


_SOLICITED_NODE_PREFIX = bytes.fromhex("ff02" + "00" * 9 + "01ff")


def solicited_node(a: bytes) -> bytes:
    """The solicited-node multicast address of an IPv6 address, ff02::1:ffXX:XXXX with its last
    24 bits (RFC 4291 §2.7.1): where Neighbor Solicitations for it go (RFC 4861 §7.2.2)."""
    return _SOLICITED_NODE_PREFIX + a[13:16]


def ip6_bytes(text: str | bytes) -> bytes:
    b = ip_bytes(text)
    if len(b) != 16:
        raise ValueError(f"not an IPv6 address: {text!r}")
    return b
