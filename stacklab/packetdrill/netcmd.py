"""The network-configuration commands of a script's backticks that change the host under test:
``ip route add|change|replace DST ... METRICS`` (and ``ip -6 route ...``), ``ethtool -K DEV
gso off tso off`` and ``tc qdisc add|replace|delete dev DEV root ...``.

``ip route``: the route to DST (a host route unless a prefix length is written) with Linux's
metrics (:func:`stacklab.stack.route.parse_metrics`: ``advmss``, ``mtu [lock]``, ``initcwnd``,
``rto_min``), on the script's device. Its ``via`` is not used: packetdrill's tun device is
point-to-point, every packet reaches the script whatever the next hop, and the runner's host
knows no neighbour but the remote address.

``ethtool -K``: segmentation offload switched off. The runner then no longer joins the stack's
segments into the super-segments a script written for TSO expects (``offload`` False).

``tc qdisc``: a FIFO of ``limit 0`` takes nothing: the device drops every packet locally and
TCP sees local congestion (``Host.qdisc_drop``, ``stack/tcp/local_drop.py``); another queue or
``tc qdisc delete`` ends that. The queue's kind itself (``fq`` paces) is read by
:func:`.sysctl.commands_in` as ``net.core.default_qdisc``.
"""

from __future__ import annotations

from stacklab.stack.host import Host
from stacklab.stack.route import parse_metrics


def ip_route(host: Host, words: list[str]) -> str | None:
    """Apply ``ip [-6] route add|change|replace ...`` to ``host``; None when it is not such a
    command, else a note ("" when nothing was left out)."""
    if words[:1] != ["ip"]:
        return None
    rest = words[1:]
    v6 = bool(rest) and rest[0] == "-6"
    if v6 or rest[:1] == ["-4"]:
        rest = rest[1:]
    if rest[:1] != ["route"] or len(rest) < 3 or rest[1] not in ("add", "change", "replace"):
        return None
    dst = rest[2].lower()
    try:
        metrics, other = parse_metrics(rest[3:])
    except ValueError as e:
        return f"{' '.join(words)}: {e}"
    if dst != "default" and "/" not in dst:
        dst += "/128" if ":" in dst or v6 else "/32"
    elif dst == "default" and v6:
        dst = "::/0"
    host.add_route(dst, ifindex=0, metrics=metrics)
    skipped = []
    i = 0
    while i < len(other):  # "via GW" and "dev tun0" are the script's one device
        if other[i] in ("via", "dev") and i + 1 < len(other):
            i += 2
            continue
        skipped.append(other[i])
        i += 1
    return f"ip route: {' '.join(skipped)} not modelled" if skipped else ""


def offload_off(words: list[str]) -> bool | None:
    """``ethtool -K DEV ... gso off ... tso off``: True when it turns segmentation offload off;
    None when it is not an ``ethtool -K`` command."""
    if words[:2] != ["ethtool", "-K"]:
        return None
    pairs = dict(zip(words[3::2], words[4::2], strict=False))
    return any(pairs.get(k) == "off" for k in ("tso", "gso"))


_FIFOS = ("pfifo", "bfifo", "pfifo_head_drop")


def tc_qdisc(host: Host, words: list[str]) -> bool:
    """Apply ``tc qdisc add|replace|change|del|delete dev DEV root ...`` to ``host``; False
    when it is not such a command (or names no device of the host)."""
    if words[:2] != ["tc", "qdisc"] or len(words) < 3 or "dev" not in words[:-1]:
        return False
    name = words[words.index("dev") + 1]
    index = next((i.index for i in host.interfaces if i.name == name), None)
    if index is None:
        return False
    drops = False
    if words[2] in ("add", "replace", "change") and "root" in words[:-1]:
        kind = words[words.index("root") + 1]
        limit = words[words.index("limit") + 1] if "limit" in words[:-1] else None
        drops = kind in _FIFOS and limit == "0"
    elif words[2] not in ("del", "delete"):
        return False
    if drops:
        host.qdisc_drop.add(index)
    else:
        host.qdisc_drop.discard(index)
    return True
