"""DNS messages (RFC 1035) through dnspython, for the stub resolver: parse with every failure as
MalformedPacket, and TCP's framing (a 2-byte length before each message, RFC 1035 §4.2.2).

dnspython (a well-kept, widely used library) owns the message format: names, compression,
every record type, EDNS. This module is the one place that turns its exceptions into ours so
a bad datagram is a counted drop (``drop.dns.<field>``), never a crash.
"""

from __future__ import annotations

import dns.exception
import dns.message
import dns.name
import dns.rdatatype

from .errors import MalformedPacket

__all__ = ["parse_message", "tcp_frame"]


def parse_message(buf: bytes | bytearray | memoryview) -> dns.message.Message:
    try:
        return dns.message.from_wire(bytes(buf))
    except dns.message.ShortHeader:
        raise MalformedPacket("dns", "length", f"{len(buf)} bytes: shorter than a header"
                              ) from None
    except dns.message.TrailingJunk:
        raise MalformedPacket("dns", "trailing", "bytes after the message") from None
    except dns.name.BadLabelType:
        raise MalformedPacket("dns", "name", "bad label type") from None
    except dns.exception.FormError as e:
        raise MalformedPacket("dns", "format", str(e) or "malformed message") from None
    except (dns.exception.DNSException, ValueError, IndexError) as e:
        # dnspython raises a few kinds for other damage (a bad rdata length...)
        raise MalformedPacket("dns", "rdata", f"{type(e).__name__}: {e}") from None


def tcp_frame(wire: bytes) -> bytes:
    return len(wire).to_bytes(2, "big") + wire
