"""Backtick ``sysctl`` commands of a script, applied through the host's one sysctl table.

Scripts set sysctls in backtick commands (``sysctl -q net.ipv4.tcp_sack=0``, the
``/proc/sys/...=value`` arguments of a helper script, or the ``sysctl`` lines of a shell file
such as upstream's ``common/defaults.sh``). :func:`commands_in` finds the assignments in a
command's text; :func:`apply` writes each to ``host.sysctl``, whose table
(:data:`stacklab.stack.sysctl.TABLE`) maps Linux's names onto stacklab's knobs. A sysctl
stacklab has no knob for, or a value it does not take, is reported back, never fatal.

The host configuration the upstream scripts assume (Linux defaults and ``defaults.sh``) is set
through the same table by :data:`LINUX_DEFAULTS`: timestamps, SACK and window scaling on,
``tcp_rmem`` max 15 MB (Linux derives the window scale from it: wscale 8), Linux's ``tcp_wmem``,
5 SYN retries; stacklab's own defaults already give IW10, a 200 ms minimum RTO, a 1 s
initial RTO and CUBIC.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from stacklab.stack.host import Host
from stacklab.stack.sysctl import TABLE, SysctlError, normalize

LINUX_DEFAULTS: list[tuple[str, str]] = [
    ("net.ipv4.tcp_timestamps", "1"),
    ("net.ipv4.tcp_sack", "1"),
    ("net.ipv4.tcp_window_scaling", "1"),
    ("net.ipv4.tcp_rmem", "4096 540000 15728640"),
    ("net.ipv4.tcp_wmem", "4096 16384 4194304"),
    ("net.ipv4.tcp_syn_retries", "5"),
    ("net.ipv4.tcp_congestion_control", "cubic"),
]

_ASSIGN = re.compile(r"^(?:/proc/sys/)?([a-z0-9_./]+)=(.*)$")


def commands_in(text: str, base: Path | None = None, depth: int = 0) -> tuple[
        list[tuple[str, str]], list[str]]:
    """The sysctl assignments a backtick command makes, and the parts left to the caller (the
    ones it ignored, and the ``tc qdisc`` ones it read the queue's kind from). A command
    naming a shell file (relative to ``base``) contributes the assignments of that file."""
    found: list[tuple[str, str]] = []
    ignored: list[str] = []
    text = text.replace("\\\n", " ")  # a backslash-newline continues the shell line
    for part in re.split(r"[;\n]|&&", text):
        part = part.strip()
        if not part or part.startswith("#"):
            continue
        if "||" in part:  # `a || b`: b runs when a fails
            first, _, other = part.partition("||")
            part = (other if _unknown_sysctl(first) else first).strip()
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
        if words[:2] == ["tc", "qdisc"] and "root" in words[:-1] and words[2] in ("add",
                                                                             "replace"):
            # the script's device queue: fq paces (net.core.default_qdisc, pacing.py); the
            # caller sees the command too (a queue that takes nothing: netcmd.tc_qdisc)
            found.append(("net.core.default_qdisc", words[words.index("root") + 1]))
            ignored.append(part)
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


def _unknown_sysctl(part: str) -> bool:
    """A ``sysctl`` command every key of which is unknown (not in stacklab's table): it fails,
    as Linux's sysctl fails on a key its kernel lacks (upstream's nonblocking-sendto.pkt falls
    back from a vendor knob to ``ip tcp_metrics flush all`` this way)."""
    words = part.split()
    keys = [m[1] for w in words[1:] if (m := _ASSIGN.match(w))]
    return bool(words) and words[0] == "sysctl" and bool(keys) and all(
        normalize(k) not in TABLE for k in keys)


def apply(host: Host, name: str, value: str) -> str | None:
    """Write ``name`` in ``host.sysctl``; returns None, or why it was refused."""
    try:
        host.sysctl[name] = value
    except SysctlError as exc:
        return f"{name}={value}: {exc.message}"
    return None
