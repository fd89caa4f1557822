"""Packet formats: parse from bytes/memoryview, build into bytearray, checksums. No state, no I/O.

Each protocol module offers two levels (as smoltcp's ``Packet``/``Repr``):

* ``<Proto>View`` — a cheap, validating view over a buffer for the per-packet path;
* a dataclass value object with ``parse(buf)``, ``build(...) -> bytearray`` and ``summary()``.

Every malformed input raises :class:`MalformedPacket`, never IndexError or struct.error.
"""

from .checksum import checksum_ok, internet_checksum, pseudo_header
from .errors import MalformedPacket

__all__ = ["MalformedPacket", "checksum_ok", "internet_checksum", "pseudo_header"]
