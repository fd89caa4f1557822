"""docs/scenarios.md is generated from the validator's schema and `run --list` prints it (D13)."""

from __future__ import annotations

from pathlib import Path

from stacklab.cli.main import main
from stacklab.scenario.reference import reference
from stacklab.scenario.registry import BUILTIN_KINDS, app_kinds

DOC = Path(__file__).resolve().parents[2] / "docs" / "scenarios.md"


def test_the_page_is_what_the_schema_generates():
    assert DOC.read_text(encoding="utf-8") == reference(builtin=True), (
        "docs/scenarios.md drifted: python -m stacklab.scenario.reference > docs/scenarios.md")


def test_run_list_prints_the_same(capsys):
    assert main(["run", "--list"]) == 0
    assert capsys.readouterr().out == reference()


def test_every_app_parameter_is_documented_with_its_unit():
    text = reference(builtin=True)
    for kind, spec in app_kinds().items():
        if kind not in BUILTIN_KINDS:
            continue
        assert f"### `{kind}`" in text
        assert set(spec.schema) == spec.params, kind
        for name, prm in spec.schema.items():
            assert prm.unit, (kind, name)
    for needed in ("plpmtud", "mss_clamp", "pmtu_expires", "a bare number is seconds"):
        assert needed in text
    assert "``" not in text and "None" not in text  # no reST, no Python reprs
    ssh = text[text.index("### `ssh-exec`"):]
    assert "| `command` | text | **required** |" in ssh
