"""Shared hypothesis strategies and helpers for the wire tests.

Test modules import them with ``from .conftest import ...`` (tests/wire is a package).
"""

from __future__ import annotations

from hypothesis import strategies as st

macs = st.binary(min_size=6, max_size=6)
ip4s = st.binary(min_size=4, max_size=4)
ip6s = st.binary(min_size=16, max_size=16)
payloads = st.binary(max_size=1500)
u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
# EtherTypes that are types (>= 0x0600) and not a VLAN tag.
ethertypes = st.integers(0x0600, 0xFFFF).filter(lambda t: t not in (0x8100,))


def h(text: str) -> bytes:
    """Bytes from hex written with spaces/newlines, as in RFC figures."""
    return bytes.fromhex("".join(text.split()))
