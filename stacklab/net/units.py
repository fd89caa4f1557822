"""Parsing of the human units used by the Python API and scenario files: "5ms", "1.5s", "100Mbit".

Every parser accepts a number (already in base units: seconds, bits per second, bytes) or a string
with a unit, and raises :class:`ParamError` naming the parameter and what was expected.
"""

from __future__ import annotations

import math
import re

from stacklab.errors import StacklabError

__all__ = ["ParamError", "parse_duration", "parse_rate", "parse_size", "parse_probability"]


class ParamError(StacklabError, ValueError):
    """A bad parameter value. ``key`` names the parameter (``"delay"``, ``"rate"``...)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


_NUMBER_UNIT = re.compile(r"^\s*(-?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-zµ/]*)\s*$")

_DURATION_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6,
                   "ns": 1e-9, "m": 60.0, "min": 60.0, "h": 3600.0}
_RATE_UNITS = {"bit": 1.0, "bps": 1.0, "kbit": 1e3, "kbps": 1e3, "mbit": 1e6, "mbps": 1e6,
               "gbit": 1e9, "gbps": 1e9, "tbit": 1e12}
_SIZE_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3,
               "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def _split(key: str, value: object, what: str, example: str) -> tuple[float, str]:
    if isinstance(value, bool):
        raise ParamError(key, f"expected {what} like {example!r}, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ParamError(key, f"expected {what} like {example!r}, got {value!r}")
        return float(value), ""
    if not isinstance(value, str):
        raise ParamError(key, f"expected {what} like {example!r}, got {value!r}")
    m = _NUMBER_UNIT.match(value)
    if not m:
        raise ParamError(key, f"expected {what} like {example!r}, got {value!r}")
    return float(m.group(1)), m.group(2)


def parse_duration(value: object, key: str = "duration") -> float:
    """Seconds from ``"5ms"``, ``"1.5s"``, ``"250us"``, ``"2min"`` or a number of seconds."""
    number, unit = _split(key, value, "a duration", "5ms")
    scale = _DURATION_UNITS.get(unit.replace("µ", "u").lower())
    if scale is None:
        raise ParamError(key, f"unknown duration unit {unit!r} in {value!r} "
                              "(use ns, us, ms, s, min, h)")
    seconds = number * scale
    if seconds < 0:
        raise ParamError(key, f"a duration cannot be negative: {value!r}")
    return seconds


def parse_rate(value: object, key: str = "rate") -> float:
    """Bits per second from ``"100Mbit"``, ``"1Gbit"``, ``"64kbit"``, ``"10Mbps"`` or a number."""
    number, unit = _split(key, value, "a rate", "100Mbit")
    scale: float | None
    if unit == "":
        if isinstance(value, str):
            raise ParamError(key, f"a rate needs a unit, e.g. '100Mbit' (got {value!r})")
        scale = 1.0
    else:
        scale = _RATE_UNITS.get(unit.lower().removesuffix("/s"))
        if scale is None:
            raise ParamError(key, f"unknown rate unit {unit!r} in {value!r} "
                                  "(use bit, kbit, Mbit, Gbit)")
    bps = number * scale
    if bps <= 0:
        raise ParamError(key, f"a rate must be positive: {value!r}")
    return bps


def parse_size(value: object, key: str = "size") -> int:
    """Bytes from ``1500``, ``"64KB"``, ``"1MiB"`` (KB = 1000, KiB = 1024)."""
    number, unit = _split(key, value, "a size in bytes", "64KB")
    scale = _SIZE_UNITS.get(unit.lower())
    if scale is None:
        raise ParamError(key, f"unknown size unit {unit!r} in {value!r} (use B, KB, MB, KiB, MiB)")
    size = number * scale
    if size < 0 or size != int(size):
        raise ParamError(key, f"a size must be a whole number of bytes >= 0: {value!r}")
    return int(size)


def parse_probability(value: object, key: str) -> float:
    """A probability in [0, 1]: ``0.01`` or ``"1%"``."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            p = float(value.strip()[:-1]) / 100.0
        except ValueError:
            raise ParamError(key, f"expected a probability like 0.01 or '1%', "
                                  f"got {value!r}") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        p = float(value)
    else:
        raise ParamError(key, f"expected a probability like 0.01 or '1%', got {value!r}")
    if not 0.0 <= p <= 1.0:
        raise ParamError(key, f"a probability must be between 0 and 1, got {value!r}")
    return p


def parse_bool(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise ParamError(key, f"expected true or false, got {value!r}")
    return value


def parse_int(value: object, key: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ParamError(key, f"expected an integer in {low}..{high}, got {value!r}")
    return value


def parse_family(value: object, key: str = "family") -> int:
    if value not in (4, 6):
        raise ParamError(key, f"expected 4 or 6, got {value!r}")
    return int(value)


def parse_text(value: object, key: str) -> str:
    """A required, non-empty string parameter (a node name, a path, a command...)."""
    if value is None:
        raise ParamError(key, "missing")
    if not isinstance(value, str) or not value:
        raise ParamError(key, f"expected a non-empty string, got {value!r}")
    return value
