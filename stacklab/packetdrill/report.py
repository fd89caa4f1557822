"""Result lines, the summary and the JSON form of a packetdrill run."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

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
