"""`stacklab tap --serve https:443,ftps:990,smtps:465` as a user runs it: curl, trusting only
the root the process wrote to ``--ca-out``, fetches a page over HTTPS (IPv4 and IPv6), a file
over implicit FTPS and sends a message over SMTPS; without that root curl refuses (exit 60)."""

from __future__ import annotations

from pathlib import Path

from stacklab.apps.common import pattern_bytes
from stacklab.apps.tlsca import TinyCa

from .linux import Netns
from .test_cli_interop import StacklabProcess

CURL = ("curl", "-sS", "--max-time", "15", "--noproxy", "*")
STACK4, STACK6 = "10.211.0.2", "fd00:5ac:0:1::2"


def test_curl_against_the_secure_services_of_the_cli(netns: Netns, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    mail = tmp_path / "mail.txt"
    mail.write_bytes(b"From: a@lab\r\nTo: b@lab\r\nSubject: hi\r\n\r\nover TLS\r\n")
    p = StacklabProcess(netns, "--dev", "tap0", "--ipv4", f"{STACK4}/24", "--ipv6",
                        f"{STACK6}/64", "--serve", "https:443,ftps:990,smtps:465",
                        "--ca-out", str(ca), "--up", "--seed", "1")
    p.wait_line(rf"CA certificate: {ca} \(curl --cacert")
    p.wait_line(r"ready")
    assert ca.read_bytes() == TinyCa("tap").cert_pem
    netns.run("ip", "addr", "add", "10.211.0.1/24", "dev", "tap0")
    netns.run("ip", "addr", "add", "fd00:5ac:0:1::1/64", "dev", "tap0", "nodad")

    def curl(*args: str) -> tuple[int, bytes, str]:
        r = netns.run_bytes(*CURL, *args, timeout=30, check=False)
        return r.returncode, r.stdout, r.stderr.decode(errors="replace")

    rc, body, err = curl("--cacert", str(ca), f"https://{STACK4}/x?bytes=5000")
    assert rc == 0 and body == pattern_bytes(0, 5000), err
    rc, body, err = curl("--cacert", str(ca), f"https://[{STACK6}]/y?bytes=10")
    assert rc == 0 and body == pattern_bytes(0, 10), err
    rc, body, err = curl("--cacert", str(ca), f"ftps://{STACK4}:990/file")
    assert rc == 0 and len(body) == 1024, err
    rc, _, err = curl("--cacert", str(ca), f"smtps://{STACK4}:465", "--mail-from", "a@lab",
                      "--mail-rcpt", "b@lab", "-T", str(mail))
    assert rc == 0, err
    p.wait_line(r"tcp smtps:465 10\.211\.0\.1:\d+ .*messages=1")
    rc, _, err = curl(f"https://{STACK4}/")  # the system's roots do not know the lab CA
    assert rc == 60, err
    assert p.terminate() == 0
