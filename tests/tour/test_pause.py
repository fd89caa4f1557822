"""`stacklab tour --pause` waits for Enter between steps on a terminal (audit D30)."""

from __future__ import annotations

import io
import sys

import pytest

from stacklab.cli.main import main


class _Keyboard(io.StringIO):
    """Stdin that says it is (or is not) a terminal and records when it was read."""

    def __init__(self, text: str, tty: bool, out: io.StringIO) -> None:
        super().__init__(text)
        self.tty = tty
        self.out = out
        self.reads: list[str] = []  # what stdout held at each read

    def isatty(self) -> bool:
        return self.tty

    def readline(self, size: int | None = -1) -> str:
        self.reads.append(self.out.getvalue())
        return super().readline(size)


def _tour(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tty: bool,
          text: str = "\n\n") -> tuple[_Keyboard, str, str]:
    out = io.StringIO()
    keys = _Keyboard(text, tty, out)
    monkeypatch.setattr(sys, "stdin", keys)
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["tour", "--pause", "udp", "arp", "ping"]) == 0
    return keys, out.getvalue(), capsys.readouterr().err


def test_pause_waits_for_enter_after_each_step_but_the_last(monkeypatch, capsys):
    keys, out, err = _tour(monkeypatch, capsys, tty=True)
    assert len(keys.reads) == 2
    assert "[1/3]" in keys.reads[0] and "[2/3]" not in keys.reads[0]
    assert "[2/3]" in keys.reads[1] and "[3/3]" not in keys.reads[1]
    assert "[3/3]" in out
    assert "Enter: step 2/3" in err and "Enter: step 3/3" in err


def test_pause_is_ignored_when_stdin_is_not_a_terminal(monkeypatch, capsys):
    keys, out, _ = _tour(monkeypatch, capsys, tty=False)
    assert keys.reads == [] and "[3/3]" in out


def test_pause_stops_waiting_at_the_end_of_input(monkeypatch, capsys):
    keys, out, _ = _tour(monkeypatch, capsys, tty=True, text="")
    assert len(keys.reads) == 1 and "[3/3]" in out
