"""The scenario app kinds of issue 9 §6, run from a scenario file on the simulator."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from stacklab.apps.common import pattern_bytes, sha256_hex
from stacklab.apps.smtp import make_message
from stacklab.scenario.registry import get_app
from stacklab.scenario.runner import ScenarioError, run_scenario

KINDS = ["http-server", "smtp-server", "ftp-server", "ssh-server",
         "http-get", "smtp-send", "ftp-get", "ftp-put", "ssh-exec"]

SCENARIO = """
seed = 3
duration = "120s"

[[node]]
name = "srv"
kind = "host"

[[node]]
name = "cli"
kind = "host"

[[link]]
ends = ["srv", "cli"]
delay = "4ms"
mtu = 576
loss = 0.02

[[app]]
node = "srv"
kind = "http-server"
port = 80
bytes = 50000

[[app]]
node = "srv"
kind = "smtp-server"
port = 25
root = "{mail}"

[[app]]
node = "srv"
kind = "ftp-server"
port = 21
root = "{ftp}"

[[app]]
node = "srv"
kind = "ftp-server"
port = 2121
bytes = "30kB"

[[app]]
node = "srv"
kind = "ssh-server"
port = 22

[[app]]
node = "cli"
kind = "http-get"
to = "srv"
port = 80
path = "/some/file"
start = "10ms"

[[app]]
node = "cli"
kind = "smtp-send"
to = "srv"
port = 25
from = "me@cli"
rcpt = "you@srv"
bytes = 5000
start = "10ms"

[[app]]
node = "cli"
kind = "ftp-put"
to = "srv"
port = 21
path = "up.bin"
bytes = 40000
mode = "active"
start = "10ms"

[[app]]
node = "cli"
kind = "ftp-get"
to = "srv"
port = 2121
path = "whatever.bin"
mode = "passive"
start = "10ms"

[[app]]
node = "cli"
kind = "ssh-exec"
to = "srv"
port = 22
command = "pattern 20000"
start = "10ms"
"""


def test_kinds_registered() -> None:
    for kind in KINDS:
        assert get_app(kind) is not None, kind


def test_scenario_file_runs_every_app(tmp_path: Path) -> None:
    (tmp_path / "ftp").mkdir()
    path = tmp_path / "apps.toml"
    path.write_text(SCENARIO.format(mail=tmp_path / "mail", ftp=tmp_path / "ftp"))
    summary = run_scenario(path)
    apps = {(a["kind"], a.get("port")): a for a in summary["apps"]}
    by_kind = {a["kind"]: a for a in summary["apps"] if a["kind"] in KINDS[4:]}
    for kind, result in by_kind.items():
        assert result["ok"], (kind, result)

    http = by_kind["http-get"]
    assert (http["status"], http["bytes"]) == (200, 50_000)
    assert http["sha256"] == sha256_hex(pattern_bytes(0, 50_000))
    assert apps[("http-server", 80)]["sha256"] == http["sha256"]

    mail = by_kind["smtp-send"]
    assert mail["sha256"] == sha256_hex(make_message("me@cli", "you@srv", 5000))
    assert apps[("smtp-server", 25)]["sha256"] == mail["sha256"]
    assert apps[("smtp-server", 25)]["messages"] == 1
    stored = (tmp_path / "mail" / "000001.eml").read_bytes()
    assert hashlib.sha256(stored).hexdigest() == mail["sha256"]

    put = by_kind["ftp-put"]
    assert put["sha256"] == sha256_hex(pattern_bytes(0, 40_000))
    assert (tmp_path / "ftp" / "up.bin").read_bytes() == pattern_bytes(0, 40_000)
    assert apps[("ftp-server", 21)]["sha256"] == put["sha256"]

    get = by_kind["ftp-get"]
    assert (get["bytes"], get["sha256"]) == (30_000, sha256_hex(pattern_bytes(0, 30_000)))
    assert apps[("ftp-server", 2121)]["sha256"] == get["sha256"]

    ssh = by_kind["ssh-exec"]
    assert ssh["exit_status"] == 0
    assert ssh["sha256"] == sha256_hex(pattern_bytes(0, 20_000))
    assert apps[("ssh-server", 22)]["sha256"] == ssh["sha256"]
    for server in ("http-server", "smtp-server", "ftp-server", "ssh-server"):
        assert all(a["ok"] for a in summary["apps"] if a["kind"] == server)


@pytest.mark.parametrize("line,key", [('mode = "sideways"', "mode"), ("port = 70000", "port"),
                                      ('bytes = "lots"', "bytes")])
def test_bad_parameters_are_named(tmp_path: Path, line: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f"""
[[node]]
name = "a"
kind = "host"

[[node]]
name = "b"
kind = "host"

[[link]]
ends = ["a", "b"]

[[app]]
node = "b"
kind = "ftp-put"
to = "a"
path = "x"
{line}
""")
    with pytest.raises(ScenarioError, match=key):
        run_scenario(path)
