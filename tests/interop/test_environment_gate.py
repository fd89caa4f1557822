"""Without the rights to make namespaces and TAP devices, the suite says so: a clear failure in
CI, a loud skip elsewhere; and `stacklab tap` says what permission it lacks. Checked by running
as an unprivileged user (a user namespace: same files, no CAP_NET_ADMIN on the host)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MSG = "INTEROP TESTS CANNOT RUN ON THIS MACHINE: not root"


def unprivileged(*argv: str, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "1"
    return subprocess.run(["unshare", "--user", *argv], capture_output=True, text=True,
                          timeout=60, cwd=str(REPO), env=env)


@pytest.fixture
def can_unshare(interop_env: None) -> None:
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is missing")


TEST = "tests/interop/test_tap_device.py::test_clear_errors"


def test_ci_fails_with_a_clear_message(can_unshare: None) -> None:
    r = unprivileged(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", TEST,
                     ci=True)
    assert r.returncode != 0
    assert MSG in r.stdout and "1 error" in r.stdout, r.stdout[-2000:]


def test_outside_ci_skips_loudly(can_unshare: None) -> None:
    r = unprivileged(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs",
                     TEST, ci=False)
    assert r.returncode == 0
    assert "1 skipped" in r.stdout and MSG in r.stdout, r.stdout[-2000:]


def test_cli_names_the_missing_permission(can_unshare: None) -> None:
    r = unprivileged(sys.executable, "-m", "stacklab", "tap", "--dev", "tapx", "--ipv4",
                     "10.211.0.2/24", ci=False)
    assert r.returncode == 2
    assert r.stderr.startswith("stacklab tap: error: no permission to create or attach TAP "
                               "device 'tapx': need root or CAP_NET_ADMIN"), r.stderr
