"""The tour's secure-applications chapter (stacklab.tour.steps_tls): its facts are measured
from the run and the page fits 80 columns in both languages."""

from __future__ import annotations

import importlib

import pytest
from rich.cells import cell_len

from stacklab.tour import runner


@pytest.fixture(scope="module")
def result() -> runner.StepResult:
    importlib.import_module("stacklab.tour.steps_tls")  # (registers the step)
    res = runner.run_step("tls", runner.StepContext())
    for lang in ("en", "ko"):
        text = runner.render_step("tls", res, lang, 1, 1)
        assert not [ln for ln in text.splitlines() if cell_len(ln) > 80]
    return res


def test_the_handshake_is_named_in_order(result: runner.StepResult) -> None:
    assert result["TLS records, in order"][:2] == ["ClientHello", "ServerHello, CCS, AppData x4"]
    assert result["negotiated"] == "TLSv1.3 TLS_AES_256_GCM_SHA384"
    assert result["notes on"] == ["client", "server"]
    assert "ClientHello" in result.diagram and result.svg.startswith("<svg")


def test_the_body_is_hidden_and_the_wrong_name_refused(result: runner.StepResult) -> None:
    assert result["response"] == 200
    assert result["body readable on the wire"] is False
    assert result["wrong name"] == ("certificate verify failed: Hostname mismatch, "
                                    "certificate is not valid for 'www.example.org'.")


def test_the_certificate_is_the_tour_cas(result: runner.StepResult) -> None:
    assert result["certificate"] == ("server", "stacklab tour CA")
