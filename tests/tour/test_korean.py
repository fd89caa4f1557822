"""`stacklab tour --lang ko` translates the whole step, the facts table included (audit D17)."""

from __future__ import annotations

from stacklab.tour import runner
from stacklab.tour.texts_ko import KO


def test_every_table_label_has_its_korean():
    missing = []
    for name in runner.available():
        result = runner.run_step(name, runner.StepContext(lang="ko"))
        missing += [(name, label) for label, _ in result.table() if label not in KO]
        text = runner.render_step(name, result, "ko", 1, 1)
        for label, value in result.table():
            assert KO[label] in text if label in KO else True
            if value in ("yes", "NO"):
                assert KO[value] in text
    assert missing == []


def test_the_korean_udp_step_reads_korean():
    result = runner.run_step("udp", runner.StepContext(lang="ko"))
    text = runner.render_step("udp", result, "ko", 1, 1)
    assert "b가 받은 것" in text and "첫째, 셋째" in text
    assert "b received" not in text and "first, third" not in text
