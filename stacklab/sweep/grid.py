"""The parameters of a sweep: ``--set KEY=V1,V2,...`` keys, their values, the grid of runs.

A key addresses one field of the scenario file:

* ``link.A-B.PARAM``: the link between nodes A and B (either order) or the link named ``A-B``;
  PARAM is a link parameter (``loss``, ``delay``...) or ``forward.PARAM`` / ``reverse.PARAM``;
* ``node.NAME.KEY``: a ``[[node]]`` option (``plpmtud``, ``mss_clamp``, ``pmtu_expires``,
  ``aging``) or ``sysctl.NAME`` (``node.a.sysctl.net.ipv4.tcp_ecn``);
* ``app.NODE.KEY`` (``app.NODE:KIND.KEY`` when NODE runs several apps): an ``[[app]]``
  parameter of the app's kind;
* ``duration``.

Values: ``0,0.01,0.05`` (numbers become numbers, ``true``/``false`` booleans, the rest text
such as ``5ms``) or a range ``START:STOP:STEP`` with STOP included (``0:0.1:0.01``; a common
unit is allowed: ``10ms:50ms:10ms``).
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stacklab.errors import StacklabError
from stacklab.net.link import LINK_PARAMS
from stacklab.scenario.node_options import NODE_OPTIONS
from stacklab.scenario.registry import get_app
from stacklab.scenario.runner import ScenarioError, check_scenario

__all__ = ["Param", "Point", "SweepError", "apply", "grid", "parse_set", "parse_value"]

Value = int | float | bool | str
Point = tuple[Value, ...]  # one value per parameter, in the order of the --set options

MAX_RANGE = 100_000


class SweepError(StacklabError):
    """A bad ``--set`` option or sweep set-up; the message is one line naming the key."""


@dataclass(frozen=True)
class Param:
    key: str
    values: tuple[Value, ...]


def parse_value(text: str) -> Value:
    """``"3"`` -> 3, ``"0.5"`` -> 0.5, ``"true"`` -> True, anything else stays text."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for conv in (int, float):
        try:
            number = conv(text)
        except ValueError:
            continue
        if isinstance(number, float) and not math.isfinite(number):
            break
        return number
    return text


_NUMBER = re.compile(r"^(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)([A-Za-z/]*)$")


def _range(key: str, text: str) -> list[Value]:
    parts = [p.strip() for p in text.split(":")]
    matches = [_NUMBER.match(p) for p in parts]
    if len(parts) != 3 or not all(matches):
        raise SweepError(f"--set {key}: a range is START:STOP:STEP, e.g. 0:0.1:0.01 "
                         f"(got {text!r})")
    nums = [float(m.group(1)) for m in matches if m]
    units = {m.group(2) for m in matches if m}
    if len(units) != 1:
        raise SweepError(f"--set {key}: START, STOP and STEP of {text!r} need the same unit")
    unit = units.pop()
    start, stop, step = nums
    if step <= 0 or stop < start:
        raise SweepError(f"--set {key}: {text!r} needs STEP > 0 and STOP >= START")
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > MAX_RANGE:
        raise SweepError(f"--set {key}: {text!r} has {count} values (at most {MAX_RANGE})")
    integral = all(m is not None and re.fullmatch(r"-?\d+", m.group(1)) for m in matches)
    out: list[Value] = []
    for i in range(count):
        v = start + i * step
        # integers stay integers; floats are rounded so that 0.1 * 3 reads 0.3, not 0.30000000004
        number: int | float = int(round(v)) if integral else round(v, 12)
        out.append(f"{number:g}{unit}" if unit else number)
    return out


def parse_set(option: str) -> Param:
    """One ``--set KEY=V1,V2,...`` (or ``KEY=START:STOP:STEP``) option."""
    key, sep, text = option.partition("=")
    key = key.strip()
    if not sep or not key or not text.strip():
        raise SweepError(f"--set {option!r}: write KEY=V1,V2,... e.g. link.a-r.loss=0,0.01")
    if ":" in text and "," not in text and _NUMBER.match(text.split(":")[0].strip()):
        values: list[Value] = _range(key, text)
    else:
        values = [parse_value(v.strip()) for v in text.split(",")]
        if any(v == "" for v in values):
            raise SweepError(f"--set {key}: an empty value in {text!r}")
    if len(set(map(repr, values))) != len(values):
        raise SweepError(f"--set {key}: a value is given twice in {text!r}")
    return Param(key, tuple(values))


def grid(params: Sequence[Param], *, zipped: bool = False) -> list[Point]:
    """The points of the sweep: the cartesian product (the last key varies fastest), or with
    ``zipped`` the i-th values of every key together (lists of one length)."""
    keys = [p.key for p in params]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise SweepError(f"--set {dup}: the key is set twice")
    if not params:
        return [()]
    if zipped:
        lengths = {len(p.values) for p in params}
        if len(lengths) != 1:
            sizes = ", ".join(f"{p.key} has {len(p.values)}" for p in params)
            raise SweepError(f"--zip pairs lists of one length: {sizes}")
        return list(zip(*(p.values for p in params), strict=True))
    return list(itertools.product(*(p.values for p in params)))


# -- addressing the scenario's fields ---------------------------------------------------------
def _link(data: dict[str, Any], key: str, sel: str) -> dict[str, Any]:
    links: list[dict[str, Any]] = data.get("link", [])
    named = [ln for ln in links if ln.get("name") == sel]
    if named:
        return named[0]
    found: list[dict[str, Any]] = []
    for i in range(1, len(sel)):  # node names may contain '-': try every split
        if sel[i] != "-":
            continue
        pair = {sel[:i], sel[i + 1:]}
        found += [ln for ln in links if isinstance(ln.get("ends"), list)
                  and set(ln["ends"]) == pair]
    if not found:
        have = ", ".join(ln.get("name") or "-".join(ln.get("ends", [])) for ln in links)
        raise SweepError(f"--set {key}: no link {sel!r} (links: {have or 'none'})")
    if len(found) > 1:
        raise SweepError(f"--set {key}: several links join {sel!r}: name them (name = ...)")
    return found[0]


def _app(data: dict[str, Any], key: str, sel: str) -> dict[str, Any]:
    node, _, kind = sel.partition(":")
    apps: list[dict[str, Any]] = [a for a in data.get("app", []) if a.get("node") == node
            and (not kind or a.get("kind") == kind)]
    if not apps:
        have = ", ".join(f"{a.get('node')}:{a.get('kind')}" for a in data.get("app", []))
        raise SweepError(f"--set {key}: no app {sel!r} (apps: {have or 'none'})")
    if len(apps) > 1:
        kinds = ", ".join(f"{node}:{a.get('kind')}" for a in apps)
        raise SweepError(f"--set {key}: {node!r} runs several apps: say which ({kinds})")
    return apps[0]


def _target(data: dict[str, Any], key: str) -> tuple[dict[str, Any], str]:
    """The table and the name within it that ``key`` addresses in the scenario dict ``data``."""
    if key == "duration":
        return data, key
    what, _, rest = key.partition(".")
    sel, _, field = rest.partition(".")
    if what not in ("link", "node", "app") or not sel or not field:
        raise SweepError(f"--set {key}: keys are link.A-B.PARAM, node.NAME.KEY, "
                         "app.NODE.KEY or duration")
    if what == "link":
        table = _link(data, key, sel)
        side, dot, name = field.partition(".")
        if dot and side in ("forward", "reverse"):
            own: dict[str, Any] = table.setdefault(side, {})
            table = own
            field = name
        if field not in LINK_PARAMS:
            raise SweepError(f"--set {key}: {field!r} is not a link parameter "
                             f"(known: {', '.join(LINK_PARAMS)})")
        return table, field
    if what == "node":
        nodes = [n for n in data.get("node", []) if n.get("name") == sel]
        if not nodes:
            have = ", ".join(str(n.get("name")) for n in data.get("node", []))
            raise SweepError(f"--set {key}: no node {sel!r} (nodes: {have})")
        table = nodes[0]
        if field.startswith("sysctl."):
            sysctl: dict[str, Any] = table.setdefault("sysctl", {})
            return sysctl, field.removeprefix("sysctl.")
        known = (*NODE_OPTIONS, "aging")
        if field not in known or field == "sysctl":
            raise SweepError(f"--set {key}: {field!r} is not a node option (known: "
                             f"{', '.join(k for k in known if k != 'sysctl')}, sysctl.NAME)")
        return table, field
    table = _app(data, key, sel)
    kind = get_app(str(table.get("kind")))
    if kind is not None and field not in kind.params:
        raise SweepError(f"--set {key}: {field!r} is not a parameter of a {kind.kind!r} app "
                         f"(known: {', '.join(sorted(kind.params))})")
    return table, field


def apply(data: dict[str, Any], keys: Sequence[str], point: Point) -> dict[str, Any]:
    """A copy of the scenario dict ``data`` with the point's values written at the keys."""
    out = copy.deepcopy(data)
    for key, value in zip(keys, point, strict=True):
        table, field = _target(out, key)
        table[field] = value
    return out


def check(data: dict[str, Any], path: str, params: Sequence[Param]) -> None:
    """Check every key, and every value alone on the file's scenario, before any run: a bad one
    is a :class:`SweepError` naming the key (the values of app parameters are checked by the
    apps when they start, and a bad one is a failed run)."""
    for p in params:
        for value in p.values:
            edited = apply(data, [p.key], (value,))
            try:
                check_scenario(edited, path)
            except ScenarioError as exc:
                raise SweepError(f"--set {p.key}={value}: {exc}") from None
