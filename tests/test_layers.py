"""The layer rule of docs/DESIGN.md, read from the AST of every module (imports inside functions
and under ``if TYPE_CHECKING`` included):

    wire  <-  stack  <-  api  <-  net  <-  scenario  <-  sweep  <-  cli, tour

Leaves anyone may import: ``errors`` (the package's base exception), ``trace.events`` and the
device package (TAP, pcap). ``trace`` (diagrams, stats, labels) reads wire formats and events and
is used from ``net`` up; so is ``report`` (SVG and HTML rendering of trace data). ``apps`` talks
to the network only through its own ``apps.common.Net`` seam. No module import cycle anywhere.

``ALLOWED_VIOLATIONS`` lists today's exceptions: it may only shrink (an entry that no longer
occurs fails the test too), and the redesign ends with it empty.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "stacklab"

# area -> the areas it may import (besides itself and the leaves)
LEAVES = {"errors", "trace.events", "dev", "testing"}
_BELOW = {
    "stack": {"wire"},
    "api": {"stack", "wire"},
    "trace": {"wire"},
    "report": {"trace", "wire"},  # rendering (SVG, HTML) of trace data; used from net up
    "apps": set(),
    "net": {"api", "stack", "wire", "trace", "report"},
    "scenario": {"net", "api", "stack", "wire", "trace", "report", "apps"},
    "packetdrill": {"api", "stack", "wire", "trace"},
    "tour": {"root", "scenario", "net", "api", "stack", "wire", "trace", "report", "apps"},
    "sweep": {"scenario", "net", "api", "stack", "wire", "trace", "report", "apps"},
    "cli": {"root", "tour", "sweep", "packetdrill", "scenario", "net", "api", "stack", "wire",
            "trace", "report", "apps"},
    "pytest": {"scenario", "net", "api", "stack", "wire", "trace"},  # the pytest plugin
    "root": {"cli", "tour", "sweep", "packetdrill", "scenario", "net", "api", "stack", "wire",
             "trace", "report", "apps"},
}
ALLOWED: dict[str, set[str]] = {a: below | LEAVES for a, below in _BELOW.items()}
ALLOWED.update({"wire": {"errors"}, "errors": set(), "trace.events": set(), "testing": set(),
                "dev": {"wire", "errors"}})
DEVICE_PACKAGES = {"device"}  # the device package (TAP, pcap)

# (importer, imported) module pairs that break the rule today; shrinks to empty.
ALLOWED_VIOLATIONS: set[tuple[str, str]] = set()
# import cycles (as sorted tuples of module names) that exist today; shrinks to empty.
ALLOWED_CYCLES: set[tuple[str, ...]] = set()


def modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the stacklab modules it imports (resolved to modules where possible)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    if node.level > 1:
                        base = base[:-(node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in mods else module
                           for a in node.names]
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target.startswith("stacklab") and target != name:
                    edges[name].add(target)
    return edges


def area(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__main__",):
        return "root"
    if parts[1] == "errors":
        return "errors"
    if parts[1] == "trace" and len(parts) > 2 and parts[2] == "events":
        return "trace.events"
    if parts[1] in DEVICE_PACKAGES:
        return "dev"
    return parts[1]


def violations() -> set[tuple[str, str]]:
    mods = modules()
    out = set()
    for importer, targets in imports(mods).items():
        a = area(importer)
        for target in targets:
            b = area(target)
            if a == b:
                continue
            if b == "apps" and target == "stacklab.apps":
                continue
            if b not in ALLOWED.get(a, set()):
                out.add((importer, target))
    return out


def cycles() -> set[tuple[str, ...]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    graph = imports(modules())
    nodes = sorted(set(graph) | {t for ts in graph.values() for t in ts})
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found = set()
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.add(tuple(sorted(component)))
    return found


def test_no_upward_imports() -> None:
    found = violations()
    new = sorted(found - ALLOWED_VIOLATIONS)
    assert not new, "imports against the layer order:\n  " + "\n  ".join(
        f"{a} -> {b}  ({area(a)} may not import {area(b)})" for a, b in new)
    stale = sorted(ALLOWED_VIOLATIONS - found)
    assert not stale, "allow-list entries that no longer occur (delete them):\n  " + "\n  ".join(
        f"{a} -> {b}" for a, b in stale)


def test_no_import_cycles() -> None:
    found = cycles()
    new = sorted(found - ALLOWED_CYCLES)
    assert not new, "import cycles:\n  " + "\n  ".join(" <-> ".join(c) for c in new)
    stale = sorted(ALLOWED_CYCLES - found)
    assert not stale, "allowed cycles that no longer occur (delete them):\n  " + "\n  ".join(
        " <-> ".join(c) for c in stale)


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: a stack module importing the asyncio API is reported."""
    fake = tmp_path / "stacklab"
    (fake / "stack").mkdir(parents=True)
    (fake / "api").mkdir()
    for pkg in (fake, fake / "stack", fake / "api"):
        (pkg / "__init__.py").write_text("")
    (fake / "api" / "streams.py").write_text("from stacklab.stack import host\n")
    (fake / "stack" / "host.py").write_text(
        "def f():\n    from stacklab.api.streams import x\n")
    globals()["ROOT"] = fake
    try:
        assert ("stacklab.stack.host", "stacklab.api.streams") in violations()
        assert ("stacklab.api.streams", "stacklab.stack.host") in cycles()
    finally:
        globals()["ROOT"] = Path(__file__).resolve().parents[1] / "stacklab"
