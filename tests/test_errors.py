"""One base exception: every exception class the package defines derives from StacklabError,
and keeps the standard base its callers catch."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import stacklab
from stacklab.errors import StacklabError


def exception_classes() -> list[type[BaseException]]:
    found = []
    for info in pkgutil.walk_packages(stacklab.__path__, "stacklab."):
        if info.name.endswith(".__main__"):  # runs the command line when imported
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found.append(obj)
    return found


def test_every_exception_derives_from_stacklab_error() -> None:
    classes = exception_classes()
    assert len(classes) >= 20  # the walk did find the modules
    stray = sorted(f"{c.__module__}.{c.__qualname__}" for c in classes
                   if not issubclass(c, StacklabError))
    assert not stray, "exceptions that do not derive from StacklabError: " + ", ".join(stray)


@pytest.mark.parametrize(("name", "standard"), [
    ("stacklab.wire.errors.MalformedPacket", ValueError),
    ("stacklab.device.tap.TapError", OSError),
    ("stacklab.net.network.SimulationTimeout", TimeoutError),
    ("stacklab.stack.udp.PacketTooBigError", OSError),
])
def test_the_standard_base_is_kept(name: str, standard: type[Exception]) -> None:
    module, _, cls = name.rpartition(".")
    assert issubclass(getattr(importlib.import_module(module), cls), standard)
