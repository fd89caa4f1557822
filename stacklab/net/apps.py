"""The registry of scenario app kinds (``[[app]] kind = "ping"`` in a scenario file).

An app kind is registered with a factory::

    register_app("ping", PingApp, params={"to", "count", "size", "df", "family"})

``factory(net, node, params) -> app`` is called with the :class:`~stacklab.net.network.Network`,
the node object the ``[[app]]`` table names, and the table's other keys (``node`` and ``kind``
removed; values as written in the file: parse units with :mod:`stacklab.net.units`). The keys
are checked against ``params`` before the factory is called, so an unknown key is an error that
names the file, the table and the key. ``params`` may instead be a ``params`` attribute of the
factory (a class attribute of an app class). A bad value: raise
:class:`~stacklab.net.units.ParamError` ``(key, message)`` from the factory.

The app object:

* ``app.run()`` returns a coroutine whose result is a dict for the JSON summary: ``ok`` (bool,
  default True), ``error`` (why not ok), and where they apply ``bytes``, ``sha256``, ``elapsed``
  (virtual seconds; filled by the runner when missing) and anything else useful. An exception
  from ``run()`` becomes ``{"ok": false, "error": "..."}``.
* ``app.daemon = True`` (optional) for servers and sinks: they run until the scenario ends, are
  then cancelled, and ``app.result()`` (a dict like the above) is reported. A non-daemon app
  still running at the end is reported ``ok: false``, with ``app.result()`` merged in when it
  has one.

Modules that register kinds are imported by :func:`load_app_modules` (the names in
``APP_MODULES``; a missing module is skipped), so ``stacklab run`` finds them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["APP_MODULES", "AppKind", "app_kinds", "get_app", "load_app_modules", "register_app"]

# Modules whose import registers app kinds (see module docstring). Add yours here.
APP_MODULES: tuple[str, ...] = ("stacklab.apps.scenario", "stacklab.api.tools", "stacklab.api.udp",
                               "stacklab.api.streams")


@dataclass(frozen=True)
class AppKind:
    kind: str
    factory: Callable[..., Any]
    params: frozenset[str]
    doc: str = ""


_REGISTRY: dict[str, AppKind] = {}


def register_app(kind: str, factory: Callable[..., Any], *,
                 params: Iterable[str] | None = None, doc: str | None = None) -> None:
    """Make ``kind`` usable in scenario files (see the module docstring)."""
    if params is None:
        params = getattr(factory, "params", None)
    if params is None:
        raise TypeError(f"app kind {kind!r}: declare its parameter names (params=...)")
    names = frozenset(params)
    bad = names & {"node", "kind"}
    if bad:
        raise ValueError(f"app kind {kind!r}: {sorted(bad)} are reserved keys")
    text = doc if doc is not None else (factory.__doc__ or "").strip().split("\n")[0]
    _REGISTRY[kind] = AppKind(kind, factory, names, text)


def get_app(kind: str) -> AppKind | None:
    return _REGISTRY.get(kind)


def app_kinds() -> dict[str, AppKind]:
    return dict(sorted(_REGISTRY.items()))


def load_app_modules(modules: Iterable[str] = APP_MODULES) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise  # the module exists but something it imports does not
