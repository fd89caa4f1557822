"""A router: a :class:`~stacklab.stack.host.Host` that forwards between its interfaces.

Forwarding itself lives in :mod:`stacklab.stack.ipv4` / :mod:`stacklab.stack.ipv6`
(``Ipv4.forward``, ``Ipv6.forward``): TTL/hop limit ⇒ Time Exceeded, no route ⇒ Destination
Unreachable, IPv4 too big ⇒ fragmented or (DF) Fragmentation Needed with the next-hop MTU,
IPv6 too big ⇒ Packet Too Big. A router joins ff02::2, sets the R flag in its Neighbor
Advertisements, ignores Router Advertisements and can announce prefixes with
``router.advertise(ifindex, "fd00:1::/64")``.
"""

from __future__ import annotations

import random

from stacklab.trace.events import Tracer

from .host import Host


class Router(Host):
    kind = "router"
    forwarding = True

    def __init__(self, name: str, *, rng: random.Random | None = None,
                 tracer: Tracer | None = None) -> None:
        super().__init__(name, rng=rng, tracer=tracer)
        self.ndp.accept_ra = False

    def advertise(self, ifindex: int, prefix: str | None = None, *,
                  autonomous: bool = True) -> None:
        """Send Router Advertisements on ``ifindex`` (prefix + this router as default)."""
        self.ndp.advertise(ifindex, prefix, autonomous=autonomous)
