"""The one exception type the wire layer raises for bad input."""

from __future__ import annotations

from stacklab.errors import StacklabError


class MalformedPacket(StacklabError, ValueError):
    """A packet that cannot be parsed: truncated, bad length, bad version, bad option...

    ``layer`` names the protocol ("ipv4", "tcp", ...) and ``field`` the field that is wrong, so a
    drop counter can say ``drop.ipv4.total_length``.
    """

    def __init__(self, layer: str, field: str, message: str) -> None:
        super().__init__(f"{layer}: {field}: {message}")
        self.layer = layer
        self.field = field
        self.message = message
