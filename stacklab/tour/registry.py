"""The tour's registry: what a step is given, what it returns, and the steps by name.

A step is a function ``run(ctx) -> StepResult`` registered with :func:`step` under a name from
:mod:`stacklab.tour.texts`. It builds a small simulated network, runs it, and returns the facts
it measured, a sequence diagram and, where it applies, the captures. The printed table and the
tests read the same facts: a fact is measured once and shown (or just kept) from there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .texts import TEXTS


@dataclass
class StepContext:
    lang: str = "en"
    pcap_dir: Path | None = None
    seed: int = 1


@dataclass(frozen=True)
class Fact:
    """One measured value. ``label`` is its row in the printed table (None: not printed, only the
    tests read it) and ``text`` how the row reads when that is more than the value itself."""

    value: Any
    label: str | None = None
    text: str | None = None

    def shown(self) -> str:
        if self.text is not None:
            return self.text
        v = self.value
        if isinstance(v, list | tuple):
            return ", ".join(str(x) for x in v)
        if isinstance(v, bool):
            return "yes" if v else "NO"
        if isinstance(v, float):
            return f"{v:.6g}"
        return str(v)


@dataclass
class StepResult:
    facts: dict[str, Fact] = field(default_factory=dict)  # by key, printed rows in table order
    diagram: str = ""  # terminal sequence diagram (<= 80 columns)
    svg: str = ""  # the same diagram as SVG, for --html
    notes: list[str] = field(default_factory=list)  # extra lines (ping output, ip route ...)

    def show(self, label: str, value: Any, text: str | None = None, *,
             key: str | None = None) -> None:
        """A row of the table: ``label`` and ``text`` (the value formatted when None). The tests
        find ``value`` under ``key``, or under the label when there is no key."""
        self._add(key or label, Fact(value, label, text))

    def keep(self, key: str, value: Any) -> None:
        """A measured value the tests check that the table does not print."""
        self._add(key, Fact(value))

    def _add(self, key: str, fact: Fact) -> None:
        if key in self.facts:
            raise KeyError(f"fact {key!r} measured twice")
        self.facts[key] = fact

    def __getitem__(self, key: str) -> Any:
        return self.facts[key].value

    def table(self) -> list[tuple[str, str]]:
        """The printed rows: (label, text)."""
        return [(f.label, f.shown()) for f in self.facts.values() if f.label is not None]


StepFn = Callable[[StepContext], StepResult]
STEPS: dict[str, StepFn] = {}


def step(name: str) -> Callable[[StepFn], StepFn]:
    if name not in TEXTS:
        raise KeyError(f"tour step {name!r} has no text in stacklab.tour.texts")

    def deco(fn: StepFn) -> StepFn:
        STEPS[name] = fn
        return fn

    return deco
