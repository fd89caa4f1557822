"""The scenario reference, generated from what the validator checks: ``docs/scenarios.md`` and
``stacklab run --list`` print :func:`reference` (a test fails when the file drifts from it).

Regenerate the page with ``python -m stacklab.scenario.reference > docs/scenarios.md``.

The link parameters and their defaults come from :class:`stacklab.net.link.LinkParams`, the
node options from :mod:`.node_options`, the sysctl names from :mod:`stacklab.stack.sysctl`, the
app kinds and their parameters from :mod:`.registry` (each kind's ``params`` schema); this module
adds only the words.
"""

from __future__ import annotations

from typing import Any

from stacklab.stack.pmtu import DEFAULT_EXPIRES

from .params import UNITS, Param

__all__ = ["EVENT_DOCS", "LINK_DOCS", "NODE_DOCS", "TOP_DOCS", "reference"]

TOP_DOCS = {
    "seed": Param("the seed of every random choice (loss, ISNs, ports): same seed, same run",
                  "integer", 1),
    "duration": Param("how long the scenario runs, in virtual time (at most 10 years)",
                      "duration", "10s"),
    "name": Param("a title for the summary", "text"),
    "description": Param("what the scenario shows", "text"),
    "autoconfigure": Param("give every interface an address (10.0.N.k/24 and fd00:0:0:N::k/64 "
                           "on L2 segment N) and every node shortest-path routes; false: only "
                           "the addresses and routes the file writes", "bool", True),
}

NODE_DOCS = {
    "name": Param("the node's name (links, apps and --diagram use it)", "text", required=True),
    "kind": Param("host | router | switch", "text", required=True),
    "aging": Param("switches: how long a learned MAC address stays", "duration", "300s"),
    "sysctl": Param("hosts and routers: Linux sysctl names and values, e.g. "
                    "`sysctl = { \"net.ipv4.tcp_sack\" = 0 }` (the table below)", "table"),
    "plpmtud": Param("TCP's RFC 4821 packetization-layer PMTU discovery: off | blackhole | "
                     "always (Linux's tcp_mtu_probing 0/1/2; default: the sysctl's value)",
                     "text"),
    "mss_clamp": Param("routers: rewrite the MSS of forwarded SYNs, \"pmtu\" or a number "
                       "(iptables -j TCPMSS)", "text"),
    "routes": Param("static routes, as ip route add: [{ to = \"10.9.0.0/16\", via = "
                    "\"10.0.1.2\" }, { to = \"default\", via = \"10.0.1.2\" }], with Linux's "
                    "route metrics if wanted: advmss (TCP's MSS option), mtu, mtu_lock (ICMP "
                    "cannot lower it), initcwnd (segments), rto_min (a duration)", "list"),
    "neighbors": Param("permanent neighbour entries, as ip neigh add ... nud permanent: "
                       "[{ address = \"10.0.1.2\", mac = \"02:00:00:02:00:00\" }] (on the "
                       "interface whose subnet holds the address)", "list"),
    "pmtu_expires": Param("how long a learned path MTU lives", "duration",
                          f"{DEFAULT_EXPIRES / 60:g}min"),
    "nat": Param("routers: masquerade out of an interface, `nat = \"eth1\"`, with port "
                 "forwards `nat = { outside = \"eth1\", forward = [{ proto = \"tcp\", port = "
                 "8080, to = \"srv:80\" }] }` (outside nodes then get no route inside)",
                 "text"),
    "multicast_querier": Param("be the IGMP and MLD querier of every link", "bool", False),
    "addressing": Param("hosts: \"dhcp\" takes IPv4 from DHCP on every interface instead of "
                        "the scenario's numbering (the lease is in the summary)", "text"),
    "dhcp6": Param("hosts: \"stateful\" (an address and DNS from DHCPv6) or \"stateless\" "
                   "(DNS only)", "text"),
    "dns": Param("hosts: resolver addresses, as resolv.conf's nameserver lines", "address"),
    "search": Param("hosts: search domains, as resolv.conf's search line", "text"),
}

EVENT_DOCS = {
    "at": Param("when it happens, in virtual time", "duration", required=True),
    "action": Param("partition | heal | crash | restart | link", "text", required=True),
    "groups": Param("partition: two or more lists of node names that can no longer reach one "
                    "another, e.g. [[\"a\"], [\"b\", \"c\"]]", "list"),
    "node": Param("crash, restart: the host or router (a crash loses every connection and "
                  "listener; peers learn it from RSTs or timeouts)", "node"),
    "link": Param("link: the link's name; with `down` and any link parameter (loss, delay, "
                  "rate...) to set from then on", "text"),
}

LINK_DOCS = {
    "ends": Param("the two node names it joins, e.g. [\"a\", \"r\"]", "list", required=True),
    "name": Param("the link's name (pcap file names; default \"a-b\", then \"a-b-2\"...)",
                  "text"),
    "down": Param("when the link is down: [[\"2s\", \"4s\"]] is down at 2 s, up at 4 s; "
                  "[\"10s\"] down for good at 10 s", "list"),
    "forward": Param("parameters for the a -> b direction only, e.g. { loss = 0.1 }", "table"),
    "reverse": Param("parameters for the b -> a direction only", "table"),
    "mtu": Param("the largest IP packet, 68..65535; longer frames are dropped (drop.mtu)",
                 "size"),
    "addresses": Param("addresses of each end's interface on this link: { a = \"10.9.0.1/24\", "
                       "r = [\"10.9.0.2/24\", \"2001:db8::2/64\"] } (beside the automatic ones)",
                       "table"),
    "if_mtu": Param("the MTU of an end's interface, as ip link set mtu: { a = 1400 } (default: "
                    "the link's mtu); the link's mtu stays the wire's limit", "table"),
    "delay": Param("propagation delay", "duration"),
    "jitter": Param("uniform +- jitter added to the delay (frames stay in order)", "duration"),
    "rate": Param("serialization rate; without one (the default) no serialization delay and "
                  "no queue", "rate"),
    "queue": Param("queue limit in frames (waiting + being sent); needs rate", "integer"),
    "aqm": Param("the queue discipline: droptail | red | codel | fq_codel; needs rate", "text",
                 "droptail"),
    "ecn": Param("an AQM marks ECN-capable packets Congestion Experienced instead of dropping",
                 "bool", False),
    "red_min_th": Param("RED: average queue (frames) where marking starts", "integer", 5),
    "red_max_th": Param("RED: average queue where the probability reaches red_max_p", "integer",
                        15),
    "red_max_p": Param("RED: the marking probability at red_max_th", "probability", 0.02),
    "red_w_q": Param("RED: the weight of the average queue", "probability", 0.002),
    "red_gentle": Param("RED: rise to 1 at 2 x red_max_th instead of jumping", "bool", False),
    "codel_target": Param("CoDel: the acceptable standing queue delay (RFC 8289)", "duration",
                          "5ms"),
    "codel_interval": Param("CoDel: the window the delay must stay above target", "duration",
                            "100ms"),
    "fq_quantum": Param("FQ-CoDel: bytes per flow per round (0: the MTU + 14)", "size", 0),
    "fq_flows": Param("FQ-CoDel: flow queues (RFC 8290)", "integer", 1024),
    "loss": Param("probability a frame is lost", "probability"),
    "duplicate": Param("probability a frame is delivered twice", "probability"),
    "reorder": Param("probability a frame is held back by reorder_delay (later ones pass it)",
                     "probability"),
    "reorder_delay": Param("how long a reordered frame is held back", "duration"),
    "corrupt": Param("probability one bit after the Ethernet header is flipped (checksums "
                     "must catch it)", "probability"),
    "icmp_blackhole": Param("drop ICMPv4 Frag Needed and ICMPv6 Packet Too Big (a PMTUD black "
                            "hole)", "bool"),
    "drop_nth": Param("deterministic loss: drop the Nth frames (1-based) that drop_count counts, "
                      "e.g. [3, 7]", "list"),
    "drop_count": Param("what drop_nth counts: \"all\" frames or \"tcp-data\" (TCP segments "
                        "with payload)", "text"),
}


def _toml(value: Any) -> str:
    """A default as it would be written in a scenario file."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _link_default(key: str, value: Any) -> Any:
    """LinkParams holds base units (seconds, bits/s): shown as a file would write them."""
    if key in ("delay", "jitter", "reorder_delay"):
        return f"{value * 1000:g}ms"
    if key == "rate":
        return None if value is None else f"{value:g}bit"
    return value


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(params: dict[str, Param], defaults: dict[str, Any] | None = None) -> list[str]:
    lines = ["| key | value | default | meaning |", "|---|---|---|---|"]
    for key, prm in params.items():
        default = defaults.get(key, prm.default) if defaults else prm.default
        shown = "**required**" if prm.required else (_toml(default) or "–")
        lines.append(f"| `{key}` | {prm.unit or '–'} | {_cell(shown)} | {_cell(prm.doc)} |")
    return lines


def reference(*, builtin: bool = False) -> str:
    """The whole scenario reference as Markdown (also readable as plain text): every app kind
    registered, or (``builtin``, the docs page) only stacklab's own."""
    from dataclasses import asdict

    # every key the validator accepts is documented here, and nothing else
    from stacklab.net.faults import _EVENT_KEYS
    from stacklab.net.link import LINK_PARAMS, LinkParams
    from stacklab.stack.host import Host

    from .node_options import NODE_OPTIONS
    from .registry import BUILTIN_KINDS, app_kinds
    from .runner import LINK_KEYS, NODE_KEYS, TOP_KEYS

    assert set(TOP_DOCS) == set(TOP_KEYS) - {"node", "link", "app", "event"}, TOP_KEYS
    event_keys = {"at", "action"} | {k for keys in _EVENT_KEYS.values() for k in keys}
    assert set(EVENT_DOCS) == event_keys - set(LINK_PARAMS) - {"down"}, event_keys
    assert set(NODE_DOCS) == set(NODE_KEYS) and set(NODE_OPTIONS) <= set(NODE_DOCS), NODE_KEYS
    assert set(LINK_DOCS) == set(LINK_KEYS), LINK_KEYS
    out = ["<!-- generated by `python -m stacklab.scenario.reference`: do not edit -->",
           "# Scenario files", "",
           "A scenario is a TOML file: top-level keys, then `[[node]]`, `[[link]]`, `[[app]]`",
           "and `[[event]]` tables. `stacklab run FILE.toml` runs it; `stacklab run --list`",
           "prints this page.",
           "Every key is checked before the run: a mistake names the file, the table and the",
           "key. Addresses and routes are configured automatically (one subnet per L2",
           "segment) unless `autoconfigure = false`; `addresses`, `if_mtu`, `routes` and",
           "`neighbors` set them by hand.", "",
           "## Values", ""]
    out += [f"* **{unit}**: {text}" for unit, text in UNITS.items()]
    out += ["* **list**, **table**: TOML arrays and inline tables, as the key says", "",
            "## Top level", "", *_table(TOP_DOCS), "",
            "## `[[node]]`", "", *_table(NODE_DOCS), "",
            "### `sysctl` names", "",
            "Linux's names; the value stacklab starts with (and Linux's default where it "
            "differs).", "",
            "| name | stacklab | Linux | meaning |", "|---|---|---|---|"]
    for row, value in Host("defaults").sysctl.rows():
        linux = "same" if row.linux == value else str(row.linux)
        out.append(f"| `{row.name}` | {value} | {linux} | {_cell(row.doc)} |")
    link_defaults = {k: _link_default(k, v) for k, v in asdict(LinkParams()).items()
                     if k in LINK_PARAMS}
    out += ["", "## `[[link]]`", "",
            "Link parameters apply to both directions unless `forward`/`reverse` override them.",
            "", *_table(LINK_DOCS, link_defaults), "",
            "## `[[app]]`", "",
            "Every app has `node` (**required**: the host or router it runs on) and `kind` "
            "(**required**: one of the kinds below). Clients report `ok`, `bytes`, `sha256`, "
            "`elapsed`; servers and sinks run until the scenario ends.", ""]
    for kind, spec in app_kinds().items():
        if builtin and kind not in BUILTIN_KINDS:
            continue
        doc = spec.doc.removeprefix(f"{kind}: ").replace("``", "`")  # reST to Markdown
        out += [f"### `{kind}`", "", doc, ""]
        undocumented = sorted(spec.params - set(spec.schema))
        if spec.schema:
            out += _table(spec.schema)
        if undocumented:
            out.append(f"Also: {', '.join(f'`{k}`' for k in undocumented)} (not documented).")
        out.append("")
    out += ["## `[[event]]`", "",
            "Faults at run time, in order of `at`: a partition and its healing, a crash and a "
            "restart, a link going down or changing its parameters.", "",
            *_table(EVENT_DOCS), ""]
    out += ["## Exit status", "",
            "`stacklab run` exits 0 when every app succeeded, 1 when one failed, 2 for a bad "
            "file or option (one line names it), 130 when interrupted; `stacklab --help` lists "
            "them all.", ""]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(reference(builtin=True), end="")
