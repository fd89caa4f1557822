"""The secure app kinds (stacklab.scenario.tls_kinds) from scenario files: the example runs
green but for its deliberately misnamed client; an untrusted CA, SFTP and bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacklab.apps.common import pattern_bytes, sha256_hex
from stacklab.scenario.runner import ScenarioError, run_scenario

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "secure-apps.toml"

HEAD = """
seed = 2
duration = "20s"

[[node]]
name = "a"
kind = "host"

[[node]]
name = "b"
kind = "host"

[[link]]
ends = ["a", "b"]
delay = "2ms"
"""


def test_the_example() -> None:
    apps = run_scenario(EXAMPLE)["apps"]
    by_kind: dict[str, list[dict[str, object]]] = {}
    for app in apps:
        by_kind.setdefault(str(app["kind"]), []).append(app)
    get, misnamed = by_kind["https-get"]
    assert get["ok"] and get["bytes"] == 200_000
    assert get["sha256"] == sha256_hex(pattern_bytes(0, 200_000))
    assert misnamed["ok"] is False
    assert "Hostname mismatch, certificate is not valid for 'www.example.org'" in str(
        misnamed["error"])
    (ftps_get,), (ftps_put,) = by_kind["ftps-get"], by_kind["ftps-put"]
    assert ftps_get["ok"] and ftps_get["sha256"] == sha256_hex(pattern_bytes(0, 150_000))
    implicit = next(s for s in by_kind["ftps-server"] if s["port"] == 990)
    assert ftps_put["ok"] and implicit["sha256"] == ftps_put["sha256"]
    (smtp,), (mailer,) = by_kind["smtps-server"], by_kind["smtps-send"]
    assert mailer["ok"] and smtp["messages"] == 1 and smtp["sha256"] == mailer["sha256"]
    assert all(s["ok"] for s in apps if str(s["kind"]).endswith("-server"))


def test_a_server_of_another_ca_is_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(HEAD + """
[[app]]
node = "b"
kind = "https-server"
ca = "other"

[[app]]
node = "a"
kind = "https-get"
to = "b"
start = "1s"
""")
    _, client = run_scenario(path)["apps"]
    assert client["ok"] is False
    assert "unable to get local issuer certificate" in client["error"]


def test_sftp_put_then_get(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    path = tmp_path / "s.toml"
    path.write_text(HEAD + f"""
[[app]]
node = "b"
kind = "ssh-server"
root = "{root}"

[[app]]
node = "a"
kind = "sftp-put"
to = "b"
path = "/up.bin"
bytes = 50000
start = "1s"

[[app]]
node = "a"
kind = "sftp-get"
to = "b"
path = "/up.bin"
start = "5s"
""")
    _, put, get = run_scenario(path)["apps"]
    assert put["ok"] and get["ok"] and put["sha256"] == get["sha256"]
    assert (root / "up.bin").read_bytes() == pattern_bytes(0, 50_000)


def test_a_bad_tls_mode_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(HEAD + """
[[app]]
node = "b"
kind = "ftps-server"
tls = "starttls"
""")
    with pytest.raises(ScenarioError, match="tls"):
        run_scenario(path)


def test_ssh_forward_carries_http_through_the_ssh_server(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(HEAD + """
[[app]]
node = "b"
kind = "ssh-server"

[[app]]
node = "b"
kind = "http-server"
port = 8080
bytes = 40000

[[app]]
node = "a"
kind = "ssh-forward"
to = "b"
listen = 9000
dest_port = 8080

[[app]]
node = "a"
kind = "http-get"
to = "a"
port = 9000
start = "2s"
""")
    _, web, forward, get = run_scenario(path)["apps"]
    assert get["ok"] and get["sha256"] == sha256_hex(pattern_bytes(0, 40_000))
    assert forward["ok"] and forward["connections"] == 1 and forward["dest"] == "b:8080"
    assert web["requests"] == 1
