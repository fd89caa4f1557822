"""Helpers for stacklab's test suite (and for users' tests of code built on stacklab)."""

from __future__ import annotations

import os
import shutil


def require_tool(*names: str, package: str) -> str:
    """The path of the first of ``names`` on PATH.

    Missing: the test fails when the environment variable ``CI`` is set (CI installs every tool
    the tests need: see the Makefile's DEB_PACKAGES) and is skipped with a loud reason otherwise.
    """
    import pytest

    for name in names:
        path = shutil.which(name)
        if path:
            return path
    msg = (f"{names[0]} is not installed (Debian package {package}; `make test` installs it "
           "when run as root)")
    if os.environ.get("CI"):
        pytest.fail(f"{msg}: CI must have it")
    pytest.skip(f"SKIPPED LOUDLY: {msg}")
