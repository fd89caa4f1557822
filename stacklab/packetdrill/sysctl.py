"""The one table from Linux sysctls (``net.ipv4.tcp_*``, ``net.core.*``) to stacklab's knobs.

Scripts set sysctls in backtick commands (``sysctl -q net.ipv4.tcp_sack=0``, the
``/proc/sys/...=value`` arguments of a helper script, or the ``sysctl`` lines of a shell file
such as upstream's ``common/defaults.sh``). :func:`commands_in` finds the assignments in a
command's text; :func:`apply` maps each through :data:`TABLE` onto a :class:`Knobs`. A sysctl
stacklab has no knob for is reported back (``unmapped``), never fatal.

The host configuration the upstream scripts assume (Linux defaults and ``defaults.sh``) is set
through the same table by :data:`LINUX_DEFAULTS`: timestamps, SACK and window scaling on,
``tcp_rmem`` max 15 MB (Linux derives the window scale from it: wscale 8), ``tcp_wmem`` 256 KB,
5 SYN retries; stacklab's own defaults already give IW10, a 200 ms minimum RTO, a 1 s initial RTO
and CUBIC.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(slots=True)
class Knobs:
    """What a sysctl may change: TcpConfig fields (``tcp``) and host-wide TCP layer settings
    (``layer``: ``syncookies``, ``max_syn_backlog``, ``challenge_ack_limit``)."""

    tcp: dict[str, Any] = field(default_factory=dict)
    layer: dict[str, Any] = field(default_factory=dict)
    ttl: int | None = None


def _bool(v: str) -> bool:
    return int(v, 0) != 0


def _fields(v: str) -> list[int]:
    return [int(x) for x in v.split()]


def _set_tcp(name: str, conv: Callable[[str], Any]) -> Callable[[Knobs, str], None]:
    def setter(k: Knobs, v: str) -> None:
        k.tcp[name] = conv(v)
    return setter


def _set_layer(name: str, conv: Callable[[str], Any]) -> Callable[[Knobs, str], None]:
    def setter(k: Knobs, v: str) -> None:
        k.layer[name] = conv(v)
    return setter


def _rmem(k: Knobs, v: str) -> None:
    # Linux sizes the window scale from the maximum (tcp_rmem[2]): stacklab's receive buffer
    # does both, so the maximum is taken.
    k.tcp["recv_buffer"] = _fields(v)[-1]


def _wmem(k: Knobs, v: str) -> None:
    k.tcp["send_buffer"] = _fields(v)[1] if len(v.split()) > 1 else int(v)


def _mtu_probing(k: Knobs, v: str) -> None:
    k.tcp["mtu_probing"] = {0: "off", 1: "blackhole", 2: "always"}.get(int(v), "blackhole")


def _ttl(k: Knobs, v: str) -> None:
    k.ttl = int(v)


def _congestion(v: str) -> str:
    return v.strip()


TABLE: dict[str, Callable[[Knobs, str], None]] = {
    "net.ipv4.tcp_timestamps": _set_tcp("timestamps", _bool),
    "net.ipv4.tcp_sack": _set_tcp("sack", _bool),
    "net.ipv4.tcp_window_scaling": _set_tcp("window_scaling", _bool),
    "net.ipv4.tcp_rmem": _rmem,
    "net.ipv4.tcp_wmem": _wmem,
    "net.ipv4.tcp_syn_retries": _set_tcp("syn_retries", int),
    "net.ipv4.tcp_synack_retries": _set_tcp("synack_retries", int),
    "net.ipv4.tcp_retries2": _set_tcp("max_retries", int),
    "net.ipv4.tcp_fin_timeout": _set_tcp("fin_wait_2_timeout", float),
    "net.ipv4.tcp_keepalive_time": _set_tcp("keepidle", float),
    "net.ipv4.tcp_keepalive_intvl": _set_tcp("keepintvl", float),
    "net.ipv4.tcp_keepalive_probes": _set_tcp("keepcnt", int),
    "net.ipv4.tcp_congestion_control": _set_tcp("congestion", _congestion),
    "net.ipv4.tcp_slow_start_after_idle": _set_tcp("slow_start_after_idle", _bool),
    "net.ipv4.tcp_min_snd_mss": _set_tcp("min_snd_mss", int),
    "net.ipv4.tcp_mtu_probing": _mtu_probing,
    "net.ipv4.tcp_base_mss": _set_tcp("base_mss", int),
    "net.ipv4.tcp_syncookies": _set_layer("syncookies", _bool),
    "net.ipv4.tcp_max_syn_backlog": _set_layer("max_syn_backlog", int),
    "net.ipv4.tcp_challenge_ack_limit": _set_layer("challenge_ack_limit", int),
    "net.ipv4.ip_default_ttl": _ttl,
}

# Linux behaviour stacklab has built in (no knob): setting these to these values is a no-op, any
# other value is reported as unmapped.
BUILT_IN: dict[str, str] = {
    "net.ipv4.tcp_dsack": "1",
    "net.ipv4.tcp_reordering": "3",
    "net.ipv4.tcp_ecn": "0",
    "net.ipv4.tcp_fack": "0",
    "net.ipv4.tcp_fastopen": "0",
}

LINUX_DEFAULTS: list[tuple[str, str]] = [
    ("net.ipv4.tcp_timestamps", "1"),
    ("net.ipv4.tcp_sack", "1"),
    ("net.ipv4.tcp_window_scaling", "1"),
    ("net.ipv4.tcp_rmem", "4096 540000 15728640"),
    ("net.ipv4.tcp_wmem", "4096 262144 4194304"),
    ("net.ipv4.tcp_syn_retries", "5"),
    ("net.ipv4.tcp_congestion_control", "cubic"),
]

_ASSIGN = re.compile(r"^(?:/proc/sys/)?([a-z0-9_./]+)=(.*)$")


def normalize(name: str) -> str:
    """``/proc/sys/net/ipv4/tcp_sack`` or ``net/ipv4/tcp_sack`` -> ``net.ipv4.tcp_sack``."""
    return name.replace("/proc/sys/", "").replace("/", ".")


def commands_in(text: str, base: Path | None = None, depth: int = 0) -> tuple[
        list[tuple[str, str]], list[str]]:
    """The sysctl assignments a backtick command makes, and the parts it ignored. A command
    naming a shell file (relative to ``base``) contributes the assignments of that file."""
    found: list[tuple[str, str]] = []
    ignored: list[str] = []
    for part in re.split(r"[;\n]|&&", text):
        part = part.strip()
        if not part or part.startswith("#"):
            continue
        part = re.sub(r"\$\(\((\d+)\*(\d+)\*(\d+)\)\)",
                      lambda m: str(int(m[1]) * int(m[2]) * int(m[3])), part)
        part = re.sub(r"\$\(\((\d+)\*(\d+)\)\)", lambda m: str(int(m[1]) * int(m[2])), part)
        try:
            words = shlex.split(part, comments=False)
        except ValueError:
            ignored.append(part)
            continue
        words = [w for w in words if w not in (">", "2>&1", "/dev/null") and not w.startswith(">")]
        if not words:
            continue
        if words[0].endswith(".sh") and base is not None and depth < 3:
            p = (base / words[0]).resolve()
            if p.is_file():
                sub, ign = commands_in(p.read_text(errors="replace"), p.parent, depth + 1)
                found += sub
                ignored += ign
                continue
        assigns = [m for w in words if (m := _ASSIGN.match(w))]
        if words[0] == "sysctl" or words[0].endswith("set_sysctls.py") or (
                words[0] == "echo" and "/proc/sys/" in part):
            if words[0] == "echo":
                m = re.match(r"echo\s+(.*?)\s*>\s*(/proc/sys/\S+)", part)
                if m:
                    found.append((normalize(m[2]), m[1].strip("'\"")))
                    continue
            if assigns:
                found += [(normalize(m[1]), m[2]) for m in assigns]
                continue
        ignored.append(part)
    return found, ignored


def apply(knobs: Knobs, name: str, value: str) -> str | None:
    """Set ``name`` on ``knobs``; returns None, or why it was not mapped."""
    setter = TABLE.get(name)
    if setter is not None:
        try:
            setter(knobs, value)
        except ValueError:
            return f"{name}={value}: bad value"
        return None
    built = BUILT_IN.get(name)
    if built is not None and value.strip() in (built, str(int(built, 0))):
        return None
    return f"{name}={value}: no stacklab knob"
