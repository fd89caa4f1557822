"""The tour's frame: a registry of steps, and a runner that prints each one.

A step is a function ``run(ctx) -> StepResult`` registered with :func:`step` under a name from
:mod:`stacklab.tour.texts`. It builds a small simulated network, runs it, and returns the facts it
measured (the tests assert them), a sequence diagram and, where it applies, the captures.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .texts import ORDER, TEXTS


@dataclass
class StepContext:
    lang: str = "en"
    pcap_dir: Path | None = None
    seed: int = 1


@dataclass
class StepResult:
    facts: dict[str, Any] = field(default_factory=dict)  # label -> value, printed as a table
    diagram: str = ""  # terminal sequence diagram (<= 80 columns)
    svg: str = ""  # the same diagram as SVG, for --html
    notes: list[str] = field(default_factory=list)  # extra lines (ping output, ip route ...)
    data: dict[str, Any] = field(default_factory=dict)  # measured values, not printed (tests)


StepFn = Callable[[StepContext], StepResult]
STEPS: dict[str, StepFn] = {}


def step(name: str) -> Callable[[StepFn], StepFn]:
    if name not in TEXTS:
        raise KeyError(f"tour step {name!r} has no text in stacklab.tour.texts")

    def deco(fn: StepFn) -> StepFn:
        STEPS[name] = fn
        return fn

    return deco


def available() -> list[str]:
    """Step names in the seed's order (only those that are implemented)."""
    from . import steps  # noqa: F401  (registers the steps)

    return [name for name in ORDER if name in STEPS]


def title(name: str, lang: str = "en") -> str:
    return TEXTS[name][lang][0]


def explanation(name: str, lang: str = "en") -> str:
    return TEXTS[name][lang][1]


def run_step(name: str, ctx: StepContext) -> StepResult:
    available()
    if name not in STEPS:
        raise KeyError(name)
    return STEPS[name](ctx)


def _fact(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def render_step(name: str, result: StepResult, lang: str, index: int, total: int,
                width: int = 80) -> str:
    """The text the tour prints for one step (also used by tests)."""
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table

    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=False, color_system=None)
    text = " ".join(explanation(name, lang).split("\n"))
    console.print(Panel(text, title=f"[{index}/{total}] {title(name, lang)}",
                        title_align="left", width=width))
    if result.diagram:
        console.print(result.diagram, markup=False, highlight=False, soft_wrap=True)
    for line in result.notes:
        console.print(line, markup=False, highlight=False)
    if result.facts:
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        for k, v in result.facts.items():
            table.add_row(str(k), _fact(v))
        console.print(table)
    console.print()
    return buf.getvalue()
