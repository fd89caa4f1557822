"""Sequence-number arithmetic modulo 2**32 (RFC 9293 §3.4).

Comparisons are valid for numbers less than 2**31 apart, which the window limits guarantee.
"""

from __future__ import annotations

MOD = 1 << 32
MASK = MOD - 1
HALF = 1 << 31


def seq_add(a: int, n: int) -> int:
    return (a + n) & MASK


def seq_sub(a: int, b: int) -> int:
    """Signed distance ``a - b`` in (-2**31, 2**31]."""
    d = (a - b) & MASK
    return d - MOD if d > HALF else d


def seq_lt(a: int, b: int) -> bool:
    return a != b and ((b - a) & MASK) < HALF


def seq_le(a: int, b: int) -> bool:
    return ((b - a) & MASK) < HALF


def seq_gt(a: int, b: int) -> bool:
    return a != b and ((a - b) & MASK) < HALF


def seq_ge(a: int, b: int) -> bool:
    return ((a - b) & MASK) < HALF


def seq_between(lo: int, x: int, hi: int) -> bool:
    """``lo <= x < hi`` on the circle (an empty range when lo == hi)."""
    return ((x - lo) & MASK) < ((hi - lo) & MASK)


def seq_max(a: int, b: int) -> int:
    return a if seq_ge(a, b) else b
