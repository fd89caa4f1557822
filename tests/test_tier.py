"""``stacklab.tier()`` and ``stacklab --version`` name the tier that runs: the pure-Python
checkout (the default, what CI tests) or the optional mypyc copy ``make compiled`` builds in
build/compiled/ (tools/build_compiled.py)."""

from __future__ import annotations

import importlib.util
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

import stacklab
import stacklab.stack.tcp.tcb as tcb
from stacklab.cli.main import main


def test_the_tier_is_the_one_whose_modules_run(capsys: pytest.CaptureFixture[str]) -> None:
    compiled = tcb.__file__ is not None and tcb.__file__.endswith(tuple(EXTENSION_SUFFIXES))
    name = stacklab.tier()
    assert name.startswith("compiled (mypyc, ") if compiled else name == "pure Python"
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"stacklab {stacklab.__version__} ({name})"


def test_a_copy_with_extension_modules_is_the_compiled_tier(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "stacklab"
    (pkg / "wire").mkdir(parents=True)
    (pkg / "__init__.py").touch()
    (pkg / "wire" / "checksum.py").touch()
    monkeypatch.setattr(stacklab, "__file__", str(pkg / "__init__.py"))
    assert stacklab.tier() == "pure Python"
    (pkg / "wire" / f"checksum{EXTENSION_SUFFIXES[0]}").touch()
    (pkg / "wire" / f"frame{EXTENSION_SUFFIXES[0]}").touch()
    assert stacklab.tier() == "compiled (mypyc, 2 modules)"


def test_the_compiled_builds_edits_each_match_the_sources_once(tmp_path: Path) -> None:
    """tools/build_compiled.py's text patches and class markers each match the sources exactly
    once (else the build stops): a source change that moved one is seen here, without mypyc."""
    path = Path(__file__).parent.parent / "tools" / "build_compiled.py"
    spec = importlib.util.spec_from_file_location("build_compiled", path)
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    build.copy_tree(tmp_path / "copy")
    for name, _, new in build.PATCHES:
        assert new in (tmp_path / "copy" / name).read_text()
    for name, line, attr in build.ATTRS:
        assert f"@mypyc_attr({attr})\n{line}\n" in (tmp_path / "copy" / name).read_text()
