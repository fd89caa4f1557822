"""IP_MTU_DISCOVER: a socket's path MTU discovery mode (Linux ip(7), include/net/ip.h).

* ``IP_PMTUDISC_DONT`` (0) — never DF; what the peer's path says of its MTU is ignored (the
  packets are fragmented on the way instead).
* ``IP_PMTUDISC_WANT`` (1, Linux's default) — DF, unless the route's MTU is locked (stacklab: a
  path at or below the PMTU floor, ``net.ipv4.route.min_pmtu``, where RFC 1191 §3 leaves the
  packets fragmentable); Fragmentation Needed lowers the MSS.
* ``IP_PMTUDISC_DO`` (2) — always DF; Fragmentation Needed lowers the MSS.
* ``IP_PMTUDISC_PROBE`` (3) — meant to probe with DF set while ignoring the path MTU, but TCP's
  output (ip_queue_xmit) sets DF only for DO and WANT: TCP segments leave without DF; PMTU
  reports still lower the MSS.
* ``IP_PMTUDISC_INTERFACE`` (4), ``IP_PMTUDISC_OMIT`` (5) — no DF, path MTU reports ignored
  (ip_sk_accept_pmtu).

Other values are EINVAL. The option is IPv4's: IPv6 packets are never fragmented on the way,
and a Packet Too Big always lowers the MSS (IPV6_MTU_DISCOVER, IPv6's own option, is not
modelled).
"""

from __future__ import annotations

import errno

IP_MTU_DISCOVER = 10  # the option (SOL_IP); Python's socket module has no name for it
IP_PMTUDISC_DONT, IP_PMTUDISC_WANT, IP_PMTUDISC_DO, IP_PMTUDISC_PROBE = 0, 1, 2, 3
IP_PMTUDISC_INTERFACE, IP_PMTUDISC_OMIT = 4, 5
MODES = range(IP_PMTUDISC_DONT, IP_PMTUDISC_OMIT + 1)


def check_mode(value: int) -> int:
    """An IP_MTU_DISCOVER value, or OSError EINVAL past OMIT (Linux do_ip_setsockopt)."""
    if value not in MODES:
        raise OSError(errno.EINVAL, f"IP_MTU_DISCOVER {value}: not a mode (0..5)")
    return value


def dont_fragment(mode: int, mtu_locked: bool) -> bool:
    """DF on a TCP segment over IPv4 (Linux ip_dont_fragment)."""
    return mode == IP_PMTUDISC_DO or (mode == IP_PMTUDISC_WANT and not mtu_locked)


def accepts_pmtu(mode: int) -> bool:
    """A validated Fragmentation Needed / Packet Too Big lowers the connection's MSS (Linux
    tcp_v4_mtu_reduced: not with DONT, nor where ip_sk_accept_pmtu refuses)."""
    return mode not in (IP_PMTUDISC_DONT, IP_PMTUDISC_INTERFACE, IP_PMTUDISC_OMIT)
