"""The results of a sweep: one tidy table, a row per app and per TCP connection of every run.

Columns: ``run`` (its place in the sweep), ``seed``, one column per ``--set`` key, then
:data:`FIGURES`:

* ``entity``: ``app``, ``connection``, or ``run`` for a run that did not finish (``kind`` says
  why: ``error`` when the scenario or the simulation raised, ``lost`` when the engine lost it);
* ``node``, ``kind`` (the app kind), ``label`` (``tcp-send on client``, or the connection's
  ``node local -> remote``);
* ``ok``; ``goodput_bps`` (an app's ``throughput_bps``, else 8 x ``bytes`` / ``elapsed`` for an
  app that finished); ``retransmits``; ``rtt_ms`` (a ping's mean RTT, a connection's smoothed
  RTT); ``completion_s`` (an app's ``elapsed``, virtual seconds); ``bytes``; ``error``.

The table is kept as text (the CSV's cells), formatted one way, so that it is byte for byte the
same whatever ran it, and a ``--resume`` rewrites the old rows unchanged.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from .grid import Value, parse_value

__all__ = ["FIGURES", "Row", "error_row", "read_csv", "rows_of", "text", "write_csv",
           "write_parquet"]

Row = dict[str, Any]
FIGURES = ("entity", "node", "kind", "label", "ok", "goodput_bps", "retransmits", "rtt_ms",
           "completion_s", "bytes", "error")


def text(value: Any) -> str:
    """A cell: '' for None, true/false, integers as such, floats in their shortest exact form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    return str(value)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def error_row(kind: str, error: str) -> Row:
    return {"entity": "run", "kind": kind, "ok": False, "error": error.splitlines()[0][:500]}


def rows_of(summary: dict[str, Any]) -> list[Row]:
    """The rows of one finished run, from its JSON summary (:func:`run_scenario`)."""
    rows: list[Row] = []
    labels: dict[str, int] = {}
    for app in summary["apps"]:
        label = f"{app['kind']} on {app['node']}"
        labels[label] = labels.get(label, 0) + 1
        if labels[label] > 1:
            label += f" #{labels[label]}"
        elapsed = _number(app.get("elapsed"))
        nbytes = _number(app.get("bytes"))
        goodput = _number(app.get("throughput_bps"))
        if goodput is None and app.get("ok") and elapsed and nbytes is not None:
            goodput = round(8 * nbytes / elapsed)
        rtts = [r for r in app.get("rtts", []) if isinstance(r, int | float)]
        rows.append({
            "entity": "app", "node": app["node"], "kind": app["kind"], "label": label,
            "ok": bool(app.get("ok")), "goodput_bps": goodput,
            "retransmits": app.get("retransmits"),
            "rtt_ms": round(1000 * statistics.fmean(rtts), 6) if rtts else None,
            "completion_s": round(elapsed, 9) if elapsed is not None else None,
            "bytes": app.get("bytes"), "error": app.get("error")})
    for conn in summary["connections"]:
        srtt = conn.get("srtt")
        rows.append({
            "entity": "connection", "node": conn["node"], "kind": "tcp",
            "label": f"{conn['node']} {conn['local']} -> {conn['remote']}",
            "ok": "ESTABLISHED" in conn.get("states", []),
            "retransmits": conn.get("retransmits"),
            "rtt_ms": round(1000 * srtt, 6) if srtt is not None else None,
            "bytes": conn.get("bytes_sent")})
    if not rows:  # a scenario without apps still ran: say so in one row
        rows.append({"entity": "run", "kind": "empty", "ok": True})
    return rows


def columns(keys: Sequence[str]) -> list[str]:
    return ["run", "seed", *keys, *FIGURES]


def as_text(rows: Iterable[Row], keys: Sequence[str]) -> list[list[str]]:
    cols = columns(keys)
    return [[text(row.get(c)) for c in cols] for row in rows]


def write_csv(path: str, keys: Sequence[str], cells: Iterable[Sequence[str]]) -> None:
    """Write the table atomically (a crash leaves the old file or the new one)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns(keys))
    w.writerows(cells)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as fp:
        fp.write(buf.getvalue())
    os.replace(tmp, path)


def read_csv(path: str) -> tuple[list[str], list[list[str]]]:
    """The header and the complete rows of a table (a row cut short by a crash is left out)."""
    with open(path, encoding="utf-8", newline="") as fp:
        rows = list(csv.reader(fp))
    if not rows:
        return [], []
    header = rows[0]
    return header, [r for r in rows[1:] if len(r) == len(header)]


def typed(cell: str) -> Value | None:
    return None if cell == "" else parse_value(cell)


def write_parquet(path: str, header: Sequence[str], cells: Sequence[Sequence[str]]) -> bool:
    """The table as Parquet when pyarrow is importable (False when it is not): a column is
    boolean, integer or float when all its cells are, text otherwise."""
    if importlib.util.find_spec("pyarrow") is None:
        return False
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {}
    for i, name in enumerate(header):
        values = [typed(row[i]) for row in cells]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, bool) for v in present):
            arrays[name] = pa.array(values, pa.bool_())
        elif present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            arrays[name] = pa.array(values, pa.int64())
        elif present and all(isinstance(v, int | float) and not isinstance(v, bool)
                             for v in present):
            arrays[name] = pa.array([None if v is None else float(v) for v in values],
                                    pa.float64())
        else:
            arrays[name] = pa.array([row[i] for row in cells], pa.string())
    pq.write_table(pa.table(arrays), path)
    return True
