"""Shared helpers for the benchmarks: the machine description, best-of-N timing, tables, profiles.

Every bench prints its table with a header naming the machine (CPU model and count from
``lscpu``, Python version) and the load average before and after the run, because the machine
may be shared: figures are the best of N repeats, interleaved where it matters.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import platform
import pstats
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def cpu_summary() -> str:
    """``AMD EPYC, 2 CPUs (KVM)``-like summary from ``lscpu`` (or ``platform`` without it)."""
    fields: dict[str, str] = {}
    if shutil.which("lscpu"):
        try:
            out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5,
                                 env={**os.environ, "LC_ALL": "C"}).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        for line in out.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    model = fields.get("Model name") or platform.processor() or platform.machine()
    ncpu = fields.get("CPU(s)") or str(os.cpu_count())
    extra = f", {fields['Hypervisor vendor']} guest" if "Hypervisor vendor" in fields else ""
    mhz = fields.get("CPU max MHz") or fields.get("CPU MHz")
    if mhz:
        extra += f", {float(mhz):.0f} MHz"
    return f"{model}, {ncpu} CPUs{extra}"


def loadavg() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def machine_line() -> str:
    import stacklab  # the copy on sys.path above (build/compiled/ under make bench-compiled)

    return (f"machine: {cpu_summary()}; {platform.system()} {platform.release()}; "
            f"python {platform.python_version()} ({platform.python_implementation()}); "
            f"stacklab {stacklab.tier()}")


def best_of(fn: Callable[[], float], repeats: int) -> tuple[float, list[float]]:
    """Run ``fn`` (returns a rate, higher is better) ``repeats`` times; (best, all)."""
    runs = [fn() for _ in range(max(1, repeats))]
    return max(runs), runs


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *,
          align: str | None = None) -> str:
    """A plain-text table; ``align`` is one character per column, ``<`` or ``>``."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    align = align or "<" + ">" * (len(headers) - 1)

    def line(vals: Sequence[str]) -> str:
        return "  ".join(f"{v:{a}{w}}" for v, a, w in zip(vals, align, widths, strict=True))

    head = line(list(headers))
    out = [head, "-" * len(head)]
    out += [line(r) for r in cells]
    return "\n".join(out)


class Profiler:
    """``with Profiler(enabled) as p: ...`` then ``p.top(n)``: the top entries by own time."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.prof = cProfile.Profile() if enabled else None

    def __enter__(self) -> Profiler:
        if self.prof is not None:
            self.prof.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.prof is not None:
            self.prof.disable()

    def top(self, n: int = 25, sort: str = "tottime") -> str:
        if self.prof is None:
            return ""
        buf = io.StringIO()
        stats = pstats.Stats(self.prof, stream=buf)
        stats.strip_dirs().sort_stats(sort).print_stats(n)
        lines = buf.getvalue().splitlines()
        # drop pstats' preamble up to the column header
        for i, ln in enumerate(lines):
            if ln.lstrip().startswith("ncalls"):
                return "\n".join(lines[i:]).rstrip()
        return buf.getvalue().rstrip()

    def layer_shares(self) -> str:
        """Own time summed by source area (stack/tcp, stack, wire, net, api, asyncio, other)."""
        if self.prof is None:
            return ""
        stats = pstats.Stats(self.prof)
        totals: dict[str, float] = {}
        all_time = 0.0
        for (filename, _line, _name), (_cc, _nc, tt, _ct, _callers) in \
                stats.stats.items():  # type: ignore[attr-defined]
            all_time += tt
            totals[_area(filename)] = totals.get(_area(filename), 0.0) + tt
        parts = sorted(totals.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{k} {100 * v / all_time:.0f}%" for k, v in parts if v / all_time
                         >= 0.005)


def _area(filename: str) -> str:
    f = filename.replace("\\", "/")
    for key in ("stacklab/stack/tcp/", "stacklab/stack/", "stacklab/wire/", "stacklab/net/",
                "stacklab/api/", "stacklab/device/"):
        if key in f:
            return key[len("stacklab/"):-1]
    if "/asyncio/" in f:
        return "asyncio"
    if f.startswith("~") or f.startswith("<"):
        return "builtins"
    return "other"


class Stopwatch:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


def mbps(nbytes: int, seconds: float) -> float:
    """Megabits per second."""
    return 8 * nbytes / seconds / 1e6 if seconds > 0 else 0.0


class Ns3Process:
    """A ``bench/ns3_*.py`` script running in ``python`` (a venv with the ``ns3`` package): one
    JSON request and one JSON answer per line; its first line says which ns-3 it is."""

    def __init__(self, python: str, script: str, *args: str) -> None:
        path = Path(__file__).resolve().parent / script
        self.proc = subprocess.Popen([python, str(path), *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        self.version = str(self._answer().get("version", "ns-3"))

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("ns-3 run failed (is the ns3 package installed in that venv? "
                             "see BENCHMARKS.md)")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def request(self, **req: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)
