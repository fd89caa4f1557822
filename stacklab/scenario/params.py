"""The ``[[app]]`` parameters many app kinds share: whom they talk to, on which port, when.

Values come as written in the scenario file; a bad one raises
:class:`~stacklab.net.units.ParamError` naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stacklab.net.units import ParamError, parse_duration, parse_family, parse_int, parse_text

__all__ = ["UNITS", "Param", "family", "listen_family", "port", "start", "target"]


def target(params: dict[str, Any]) -> str:
    """``to``: the node name or address a client sends to (required)."""
    if "to" not in params:
        raise ParamError("to", "missing: the node name or address to send to")
    return parse_text(params["to"], "to")


def port(params: dict[str, Any], default: int) -> int:
    """``port``: a TCP or UDP port, 1..65535."""
    return parse_int(params.get("port", default), "port", 1, 65535)


def family(params: dict[str, Any]) -> int:
    """``family``: 4 (the default) or 6."""
    return parse_family(params.get("family", 4))


def listen_family(params: dict[str, Any]) -> int | None:
    """``family`` of a server: 4 or 6 for that family alone; absent, both (None), as a Linux
    socket on ``::`` without IPV6_V6ONLY."""
    return parse_family(params["family"]) if "family" in params else None


def start(params: dict[str, Any]) -> float:
    """``start``: how long a client waits before it begins, in virtual seconds (default 0)."""
    return parse_duration(params.get("start", 0), "start")


@dataclass(frozen=True)
class Param:
    """The reference entry of one scenario key (``docs/scenarios.md`` and ``run --list`` are
    generated from these): what it is, its kind of value (``unit``: a key of :data:`UNITS` or
    free text), its default as written in a file (None: no default), and whether it is required.
    """

    doc: str
    unit: str = ""
    default: object = None
    required: bool = False


def port_param(default: int) -> Param:
    return Param("the TCP/UDP port", "port", default)


TO = Param("the node to talk to: its name, or one of its addresses", "node", required=True)
START = Param("how long to wait before starting", "duration", "0s")
FAMILY = Param("IPv4 or IPv6 (with a node name as `to`: which of its addresses)", "family", 4)
LISTEN_FAMILY = Param("listen on IPv4 only or IPv6 only (default: both, as a Linux socket on "
                      "`::`)", "family")


# How each kind of value is written in a scenario file.
UNITS = {
    "duration": "a duration: \"5ms\", \"1.5s\", \"250us\", \"2min\", \"1h\" (ns, us, ms, s, min, "
                "h); a bare number is seconds",
    "rate": "a rate: \"100Mbit\", \"64kbit\", \"1Gbit\" (bit, kbit, Mbit, Gbit, Tbit; also "
            "...bps); a bare number is bits per second",
    "size": "a size in bytes: 1500, \"64KB\", \"1MiB\" (KB = 1000, KiB = 1024)",
    "probability": "a probability: 0.01 or \"1%\"",
    "bool": "true or false",
    "text": "a string",
    "node": "a node name, or an IPv4/IPv6 address",
    "port": "a TCP/UDP port, 1..65535",
    "family": "4 or 6",
    "integer": "a whole number",
}
