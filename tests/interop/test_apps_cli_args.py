"""`stacklab tap --serve http/smtp/ftp/ssh` options: every mistake is one clear line and exit
status 2, before any device is opened (so these run without root); good options reach the
servers as given."""

from __future__ import annotations

from pathlib import Path

import asyncssh
import pytest

from stacklab.cli.main import build_parser, main
from stacklab.cli.tap import parse_args

BASE = ["--dev", "tap0", "--ipv4", "10.0.0.2/24"]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    (tmp_path / "keys").write_bytes(key.export_public_key())
    (tmp_path / "garbage").write_text("ssh-ed25519 not-base64!!! x\n")
    (tmp_path / "empty").write_text("# nothing but a comment\n\n")
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00\x01" * 10)
    (tmp_path / "root").mkdir()
    (tmp_path / "afile").write_text("x")
    return {name: str(tmp_path / name) for name in
            ("keys", "garbage", "empty", "binary", "root", "afile")}


@pytest.mark.parametrize(("argv", "message"), [
    (["--serve", "smtp:x"], "port 'x' is not a number"),
    (["--serve", "ftp:21,http:21"], "TCP port 21 is already served"),
    (["--serve", "imap:143"], "unknown service 'imap'"),
    (["--serve", "http:80", "--root", "{tmp}/nope"], "not a directory"),
    (["--serve", "ftp:21", "--root", "{afile}"], "not a directory"),
    (["--serve", "echo:7", "--root", "{root}"], "--root is for the http, smtp and ftp"),
    (["--serve", "ssh:22"], "needs --ssh-password PASSWORD and/or --ssh-authorized-keys"),
    (["--serve", "ssh:22", "--ssh-password", ""], "bad --ssh-password: empty"),
    (["--serve", "ssh:22", "--ssh-authorized-keys", "{tmp}/nope"], "cannot read"),
    (["--serve", "ssh:22", "--ssh-authorized-keys", "{garbage}"], "bad --ssh-authorized-keys"),
    (["--serve", "ssh:22", "--ssh-authorized-keys", "{empty}"], "no key in it"),
    (["--serve", "ssh:22", "--ssh-authorized-keys", "{binary}"], "not a text file"),
    (["--serve", "ssh:22", "--ssh-password", "pw", "--ssh-user", "a b"], "bad --ssh-user"),
    (["--serve", "http:80", "--ssh-password", "pw"], "add ssh:PORT to --serve"),
    (["--serve", "http:80", "--ssh-authorized-keys", "{keys}"], "add ssh:PORT to --serve"),
])
def test_bad_app_options_are_one_clear_line(argv: list[str], message: str,
                                            files: dict[str, str], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.format(tmp=tmp_path, **files) for a in argv]
    assert main(["tap", *BASE, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stacklab tap: error: ")
    assert message in err
    assert len(err.splitlines()) == 1


def test_good_app_options_reach_the_config(files: dict[str, str]) -> None:
    args = build_parser().parse_args([
        "tap", *BASE, "--serve", "http:80,smtp:25,ftp:21,ssh:22,echo:7", "--root",
        files["root"], "--ssh-authorized-keys", files["keys"], "--ssh-password", "s3cret",
        "--ssh-user", "*"])
    cfg = parse_args(args)
    assert [(s.kind, s.port) for s in cfg.services] == [
        ("http", 80), ("smtp", 25), ("ftp", 21), ("ssh", 22), ("echo", 7)]
    assert cfg.apps.root == files["root"]
    assert cfg.apps.ssh_password == "s3cret"
    assert cfg.apps.ssh_user is None  # '*': any user name
    assert cfg.apps.ssh_authorized_keys == Path(files["keys"]).read_text()
    args = build_parser().parse_args(["tap", *BASE, "--serve", "http:8080,ftp:2121"])
    cfg = parse_args(args)
    assert cfg.apps.root is None  # HTTP and FTP serve generated bodies
