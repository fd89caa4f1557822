"""The tour's runner: the steps in the seed's order, each run and printed.

The steps themselves are registered in :mod:`.registry` by the chapter modules ``steps_*``.
"""

from __future__ import annotations

import io

from . import (  # noqa: F401  (register the steps)
    steps_apps,
    steps_flows,
    steps_ip,
    steps_lan,
    steps_pmtu,
    steps_services,
    steps_tcp,
    steps_tls,
)
from .registry import STEPS, StepContext, StepResult
from .texts import ORDER, TEXTS
from .texts_ko import translate

__all__ = ["StepContext", "StepResult", "available", "explanation", "render_step", "run_step",
           "title"]


def available() -> list[str]:
    """Step names in the seed's order (only those that are implemented)."""
    return [name for name in ORDER if name in STEPS]


def title(name: str, lang: str = "en") -> str:
    return TEXTS[name][lang][0]


def explanation(name: str, lang: str = "en") -> str:
    return TEXTS[name][lang][1]


def run_step(name: str, ctx: StepContext) -> StepResult:
    if name not in STEPS:
        raise KeyError(name)
    return STEPS[name](ctx)


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
        console.print(translate(line, lang), markup=False, highlight=False)
    rows = result.table()
    if rows:
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        for label, text in rows:
            table.add_row(translate(label, lang), translate(text, lang))
        console.print(table)
    console.print()
    return buf.getvalue()
