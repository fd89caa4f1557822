"""IP protocol numbers (IANA "Assigned Internet Protocol Numbers"), defined once.

IPv4's Protocol field (RFC 791) and IPv6's Next Header field (RFC 8200 §4) share the registry, so
the same names serve both; the IPv6 extension headers are in it too.
"""

from __future__ import annotations

PROTO_HOPOPTS = 0  # IPv6 Hop-by-Hop Options (RFC 8200 §4.3)
PROTO_ICMP = 1
PROTO_IGMP = 2
PROTO_IPIP = 4  # IPv4 in IP
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_IPV6 = 41  # IPv6 in IP
PROTO_ROUTING = 43  # IPv6 Routing header (§4.4)
PROTO_FRAGMENT = 44  # IPv6 Fragment header (§4.5)
PROTO_GRE = 47
PROTO_ESP = 50
PROTO_AH = 51
PROTO_ICMPV6 = 58
PROTO_NONE = 59  # IPv6 No Next Header (§4.7)
PROTO_DSTOPTS = 60  # IPv6 Destination Options (§4.6)
PROTO_SCTP = 132
