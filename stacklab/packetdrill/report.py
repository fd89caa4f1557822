"""Result lines, the summary and the JSON form of a packetdrill run."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from .runner import Result

STATUSES = ("PASS", "FAIL", "UNSUPPORTED", "ERROR")


def line(r: Result) -> str:
    """``PASS  path`` or ``FAIL  path:23: ...`` (the first line of the message)."""
    if r.status == "PASS":
        return f"PASS        {r.path} ({r.events} events, {r.virtual_time:.3f} s virtual)"
    first = r.message.splitlines()[0] if r.message else ""
    return f"{r.status:<11} {first}"


def summary(results: Sequence[Result]) -> str:
    c = Counter(r.status for r in results)
    parts = [f"{c[s]} {s.lower()}" for s in STATUSES if c[s]]
    return f"{len(results)} scripts: " + ", ".join(parts or ["none"])


def as_json(results: Sequence[Result]) -> str:
    c = Counter(r.status for r in results)
    return json.dumps({"results": [r.as_dict() for r in results],
                       "summary": {s.lower(): c[s] for s in STATUSES} | {"total": len(results)}},
                      indent=2)


def _rel(path: str, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path


def _why(r: Result) -> str:
    """The first line of the message without the script's path (``17: ...``), and the packet
    the stack actually sent when that is what differed."""
    lines = r.message.splitlines() or [""]
    first = lines[0]
    for prefix in (r.path, str(Path(r.path).resolve())):
        if first.startswith(prefix):
            first = first[len(prefix):]
    sent = [ln.strip()[len("actual packet: "):] for ln in lines[1:]
            if ln.strip().startswith("actual packet: ")]
    if sent:
        first += f" (sent: {sent[0]})"
    return first.lstrip(":").replace("|", "\\|")


def markdown(results: Sequence[Result], root: Path) -> str:
    """The conformance tables of CONFORMANCE.md: counts by directory (relative to ``root``),
    then each script with its verdict and first mismatch or missing feature."""
    by_dir: dict[str, Counter[str]] = {}
    for r in results:
        d = str(Path(_rel(r.path, root)).parent)
        by_dir.setdefault(d, Counter())[r.status] += 1
    rows = ["| directory | scripts | pass | fail | unsupported | error |",
            "|---|---:|---:|---:|---:|---:|"]
    total: Counter[str] = Counter()
    for d in sorted(by_dir):
        c = by_dir[d]
        total += c
        rows.append(f"| {d} | {sum(c.values())} | " + " | ".join(
            str(c[s]) for s in STATUSES) + " |")
    rows.append(f"| **all** | **{sum(total.values())}** | " + " | ".join(
        f"**{total[s]}**" for s in STATUSES) + " |")
    rows += ["", "| script | verdict | line: first mismatch, or the missing feature |",
             "|---|---|---|"]
    for r in sorted(results, key=lambda r: _rel(r.path, root)):
        rows.append(f"| {_rel(r.path, root)} | {r.status} | {_why(r)} |")
    return "\n".join(rows)
