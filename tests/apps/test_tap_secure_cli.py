"""``stacklab tap --serve https:443,ftps:990,smtps:465``: the options (one clear line for each
mistake, before any device is opened), the lab CA's root written where the user is told, and
the three services on the simulator, each checked by a client trusting that root only."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from stacklab.apps.ftp.client import ftp_get
from stacklab.apps.http import http_get
from stacklab.apps.smtp import send_mail
from stacklab.apps.tlsca import TinyCa
from stacklab.cli.main import build_parser, main
from stacklab.cli.tap import ConnLog, parse_args, start_services, write_ca
from stacklab.net.network import Network

BASE = ["tap", "--dev", "tap0", "--ipv4", "10.0.0.2/24", "--ipv6", "fd00::2/64"]


def _config(*argv: str) -> Any:
    return parse_args(build_parser().parse_args([*BASE, *argv]))


def test_the_secure_services_parse_and_name_the_device_addresses(tmp_path: Path) -> None:
    cfg = _config("--serve", "https:443,ftps:990,smtps:465", "--ca-out", str(tmp_path / "ca"))
    assert [(s.kind, s.port) for s in cfg.services] == [("https", 443), ("ftps", 990),
                                                        ("smtps", 465)]
    assert cfg.apps.ca_out == str(tmp_path / "ca")
    assert cfg.apps.tls_ips == ["10.0.0.2", "fd00::2"]  # the certificate's subjectAltNames


@pytest.mark.parametrize(("argv", "message"), [
    (["--serve", "http:80", "--ca-out", "{tmp}/ca.pem"], "--ca-out is for the https"),
    (["--serve", "https:443", "--ca-out", "{tmp}/no/dir/ca.pem"], "bad --ca-out"),
    (["--serve", "https:443", "--ca-out", "{tmp}"], "bad --ca-out"),
    (["--serve", "https:443,ftps:443"], "TCP port 443 is already served"),
    (["--serve", "https"], "expected SERVICE:PORT"),
])
def test_bad_secure_options_are_one_clear_line(argv: list[str], message: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BASE, *(a.format(tmp=tmp_path) for a in argv)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stacklab tap: error: ") and message in err
    assert len(err.splitlines()) == 1


def test_the_root_goes_to_ca_out_or_a_new_temporary_file(tmp_path: Path) -> None:
    root = TinyCa("tap").cert_pem
    cfg = _config("--serve", "https:443", "--ca-out", str(tmp_path / "ca.pem"))
    assert write_ca(cfg.apps) == str(tmp_path / "ca.pem")
    assert (tmp_path / "ca.pem").read_bytes() == root
    path = write_ca(_config("--serve", "smtps:465").apps)
    try:
        assert Path(path).read_bytes() == root and Path(path).name.startswith("stacklab-tap-ca")
    finally:
        Path(path).unlink()


def test_https_ftps_smtps_answer_a_client_that_trusts_the_root_only() -> None:
    cfg = _config("--serve", "https:443,ftps:990,smtps:465")
    with Network(seed=8) as net:
        a, b = net.add_host("a"), net.add_host("b")
        net.connect(a, b, delay="1ms")
        net.autoconfigure()
        ip = b.addresses(4)[0]
        cfg.apps.tls_ips = [ip]
        trust = TinyCa("tap").client_context()

        async def run() -> tuple[Any, ...]:
            await start_services(b, cfg.services, ConnLog(quiet=True), cfg.apps)
            page = await http_get(a, ip, f"https://{ip}/", port=443, tls=trust)
            ftp = await ftp_get(a, ip, 990, "/file", tls=trust, tls_mode="implicit")
            mail = await send_mail(a, ip, 465, "a@lab", "b@lab", b"Subject: x\r\n\r\nhi\r\n",
                                   tls=trust, tls_mode="implicit")
            try:  # a client with the system's roots refuses the lab certificate
                await http_get(a, ip, f"https://{ip}/", port=443,
                               tls=ssl.create_default_context())
                refused = False
            except ConnectionError:
                refused = True
            return page, ftp, mail, refused

        page, ftp, mail, refused = net.run(run(), until=60)
    assert page.status == 200 and len(page.body) == 1024
    assert ftp.ok and ftp.bytes == 1024
    assert mail.ok and mail.code == 250
    assert refused
