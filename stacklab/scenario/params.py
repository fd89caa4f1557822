"""The ``[[app]]`` parameters many app kinds share: whom they talk to, on which port, when.

Values come as written in the scenario file; a bad one raises
:class:`~stacklab.net.units.ParamError` naming the key.
"""

from __future__ import annotations

from typing import Any

from stacklab.net.units import ParamError, parse_duration, parse_family, parse_int, parse_text

__all__ = ["family", "listen_family", "port", "start", "target"]


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
