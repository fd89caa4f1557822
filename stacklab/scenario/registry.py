"""The registry of scenario app kinds (``[[app]] kind = "ping"`` in a scenario file).

The built-in kinds are the stack's tools (:mod:`stacklab.scenario.net_kinds`: tcp-send, ping...)
and the applications (:mod:`stacklab.scenario.app_kinds`: http-get, ssh-server...; their
secure forms in :mod:`stacklab.scenario.tls_kinds`: https-get, ftps-server...), imported
here by name. More can be added with a factory::

    register_app("probe", ProbeApp, params={"to", "count"})

``params`` may be a set of names or, for the reference (``docs/scenarios.md``, ``run --list``),
a dict of name -> :class:`~stacklab.scenario.params.Param` (what it is, unit, default, required).

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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .app_kinds import APP_KINDS
from .net_kinds import NET_KINDS
from .params import Param
from .tls_kinds import TLS_APP_KINDS

__all__ = ["BUILTIN_KINDS", "AppKind", "app_kinds", "get_app", "register_app"]


@dataclass(frozen=True)
class AppKind:
    kind: str
    factory: Callable[..., Any]
    params: frozenset[str]
    doc: str = ""
    schema: dict[str, Param] = field(default_factory=dict)  # documented parameters


def _app_kind(kind: str, factory: Callable[..., Any], params: Iterable[str] | None,
              doc: str | None) -> AppKind:
    if params is None:
        params = getattr(factory, "params", None)
    if params is None:
        raise TypeError(f"app kind {kind!r}: declare its parameter names (params=...)")
    names = frozenset(params)
    bad = names & {"node", "kind"}
    if bad:
        raise ValueError(f"app kind {kind!r}: {sorted(bad)} are reserved keys")
    if doc is None:  # the docstring's first paragraph, on one line
        doc = " ".join((factory.__doc__ or "").strip().split("\n\n")[0].split())
    schema = {k: v for k, v in params.items() if isinstance(v, Param)} \
        if isinstance(params, dict) else {}
    return AppKind(kind, factory, names, doc, schema)


_REGISTRY: dict[str, AppKind] = {
    kind: _app_kind(kind, cls, None, None)
    for kind, cls in {**NET_KINDS, **APP_KINDS, **TLS_APP_KINDS}.items()}
BUILTIN_KINDS = frozenset(_REGISTRY)  # stacklab's own (the docs page lists these)


def register_app(kind: str, factory: Callable[..., Any], *,
                 params: Iterable[str] | None = None, doc: str | None = None) -> None:
    """Make ``kind`` usable in scenario files (see the module docstring)."""
    _REGISTRY[kind] = _app_kind(kind, factory, params, doc)


def get_app(kind: str) -> AppKind | None:
    return _REGISTRY.get(kind)


def app_kinds() -> dict[str, AppKind]:
    return dict(sorted(_REGISTRY.items()))
