"""stacklab's application clients against Linux servers in a namespace of the test, over TAP:
Python's ``http.server``, an aiosmtpd mail server, pyftpdlib (passive and active), OpenSSH
``sshd``. The stack runs in a thread of the test (``host_on_tap``), which checks its capture
with tshark at the end."""

from __future__ import annotations

import hashlib
import os
import sys
import textwrap
from pathlib import Path

import asyncssh
import pytest

from stacklab.apps.ftp import FtpClient, ftp_get, ftp_put
from stacklab.apps.http import HttpClient, http_get
from stacklab.apps.smtp import make_message, normalize_message, send_mail
from stacklab.apps.ssh import ssh_exec

from .linux import Netns, tshark_lines, wait_for
from .stackhost import LINUX4, STACK4, StackOnTap

PY = sys.executable  # the test's interpreter: it has pyftpdlib and aiosmtpd (the test extra)


def syns_from_stack(h: StackOnTap, port: int) -> list[str]:
    """The connections stacklab opened to Linux ``port`` so far, read from the capture."""
    h.call(h.pcap.flush)
    return tshark_lines(h.pcap_path, f"tcp.flags.syn == 1 && tcp.flags.ack == 0 && "
                                     f"ip.src == {STACK4} && tcp.dstport == {port}")


# -- HTTP --------------------------------------------------------------------------------------
def test_http_client_against_python_http_server(netns: Netns, host_on_tap: StackOnTap,
                                                tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    big = os.urandom(500_000)
    (www / "big.bin").write_bytes(big)
    (www / "a.txt").write_bytes(b"first\n")
    netns.popen(PY, "-m", "http.server", "80", "--bind", LINUX4, "--directory", str(www),
                "--protocol", "HTTP/1.1")
    netns.wait_listening(80)
    h = host_on_tap

    result = h.run(http_get(h.node, LINUX4, "/big.bin", 80, timeout=10))
    assert result.status == 200 and result.body == big
    assert result.sha256 == hashlib.sha256(big).hexdigest()
    assert ("Content-Length", str(len(big))) in [(k.title(), v) for k, v in result.headers]

    async def two_on_one_connection() -> tuple[int, bytes, int, bytes, int]:
        async with HttpClient(h.node, LINUX4, 80, timeout=10) as client:
            r1 = await client.get("/a.txt")
            b1 = await r1.read()
            r2 = await client.get("/missing")
            b2 = await r2.read()
            return r1.status, b1, r2.status, b2, client.connections_opened

    s1, b1, s2, b2, opened = h.run(two_on_one_connection())
    assert (s1, b1) == (200, b"first\n")
    assert s2 == 404 and b"404" in b2
    assert opened == 1  # HTTP/1.1 keep-alive: the second request reused the connection
    syns = syns_from_stack(h, 80)
    assert len(syns) == 2, syns  # one for http_get, one for both HttpClient requests


# -- SMTP --------------------------------------------------------------------------------------
AIOSMTPD_SERVER = textwrap.dedent('''
    """An aiosmtpd server storing each message's bytes as received (after dot-unstuffing)."""
    import asyncio
    import pathlib
    import sys

    from aiosmtpd.smtp import SMTP

    class Store:
        def __init__(self, out):
            self.out = out
            self.count = 0

        async def handle_DATA(self, server, session, envelope):
            self.count += 1
            base = self.out / str(self.count)
            envelope_text = "\\n".join([envelope.mail_from, *envelope.rcpt_tos])
            base.with_suffix(".env").write_text(envelope_text)
            base.with_suffix(".eml").write_bytes(envelope.original_content)
            return "250 2.0.0 stored as %d" % self.count

    async def main():
        host, port, out = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3])
        store = Store(out)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(store, hostname="linux.test", data_size_limit=1 << 24), host, port)
        await server.serve_forever()

    asyncio.run(main())
''')


def test_smtp_client_against_aiosmtpd(netns: Netns, host_on_tap: StackOnTap,
                                      tmp_path: Path) -> None:
    pytest.importorskip("aiosmtpd", reason="aiosmtpd is in the test extra: pip install .[test]")
    script = tmp_path / "smtpd.py"
    script.write_text(AIOSMTPD_SERVER)
    out = tmp_path / "mail"
    out.mkdir()
    server = netns.popen(PY, str(script), LINUX4, "25", str(out))
    netns.wait_listening(25)
    h = host_on_tap
    message = make_message("stack@stacklab.test", "linux@linux.test", 80_000)
    message += b".leading dot line\r\n.\r\n..\r\nlast line\r\n"
    assert b"\r\n.\r\n" in message  # a line that is a lone dot: must be stuffed on the wire
    result = h.run(send_mail(h.node, LINUX4, 25, "stack@stacklab.test",
                             ["linux@linux.test", "other@linux.test"], message, timeout=10))
    assert result.ok and result.code == 250 and "stored as 1" in result.reply, result
    assert server.poll() is None
    stored = (out / "1.eml").read_bytes()
    assert stored == normalize_message(message) == message
    assert result.sha256 == hashlib.sha256(stored).hexdigest()
    assert (out / "1.env").read_text().splitlines() == [
        "stack@stacklab.test", "linux@linux.test", "other@linux.test"]


# -- FTP ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["passive", "active"])
def test_ftp_client_against_pyftpdlib(netns: Netns, host_on_tap: StackOnTap, tmp_path: Path,
                                      mode: str) -> None:
    pytest.importorskip("pyftpdlib", reason="pyftpdlib is in the test extra: pip install .[test]")
    root = tmp_path / "ftp"
    root.mkdir()
    down = os.urandom(600_000)
    (root / "down.bin").write_bytes(down)
    netns.popen(PY, "-m", "pyftpdlib", "-i", LINUX4, "-p", "21", "-d", str(root), "-w")
    netns.wait_listening(21)
    h = host_on_tap

    got = h.run(ftp_get(h.node, LINUX4, 21, "down.bin", mode=mode, timeout=10))
    assert got.data == down and got.sha256 == hashlib.sha256(down).hexdigest()
    up = os.urandom(300_000)
    h.run(ftp_put(h.node, LINUX4, 21, "up.bin", up, mode=mode, timeout=10))
    wait_for(lambda: (root / "up.bin").exists() and (root / "up.bin").stat().st_size == len(up),
             5, "the upload on disk")
    assert (root / "up.bin").read_bytes() == up

    async def session() -> tuple[list[str], int, list[str], list[str]]:
        async with FtpClient(h.node, LINUX4, 21, mode=mode, timeout=10) as client:
            await client.login()
            await client.mkd("made")
            names = sorted(await client.nlst())
            size = await client.size("down.bin")
            listing = await client.list()
            return names, size, listing, client.log
    names, size, listing, log = h.run(session())
    assert names == ["down.bin", "made", "up.bin"]
    assert size == len(down)
    assert (root / "made").is_dir()
    lines = [ln for ln in listing if ln.endswith(" down.bin")]
    assert len(lines) == 1 and " 600000 " in lines[0], listing
    # the data connections went the way the mode says
    verbs = [line.split()[0] for line in log]
    wanted, unwanted = (("EPSV", "EPRT") if mode == "passive" else ("EPRT", "EPSV"))
    assert verbs.count(wanted) == 2 and unwanted not in verbs, log


# -- SSH ---------------------------------------------------------------------------------------
SSHD_CONFIG = """\
Port 22
ListenAddress {addr}
HostKey {host_key}
AuthorizedKeysFile {authorized_keys}
PidFile none
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
PrintMotd no
LogLevel VERBOSE
"""


def test_ssh_client_against_openssh_sshd(netns: Netns, host_on_tap: StackOnTap,
                                         tmp_path: Path) -> None:
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    host_key = tmp_path / "host_ed25519"
    netns.run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key))
    host_pub = host_key.with_suffix(".pub").read_text().strip()
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    other_key = asyncssh.generate_private_key("ssh-ed25519")
    auth = tmp_path / "authorized_keys"
    auth.write_bytes(client_key.export_public_key())
    config = tmp_path / "sshd_config"
    config.write_text(SSHD_CONFIG.format(addr=LINUX4, host_key=host_key,
                                         authorized_keys=auth))
    netns.run("/usr/sbin/sshd", "-t", "-f", str(config))
    sshd = netns.popen("/usr/sbin/sshd", "-D", "-e", "-f", str(config))
    netns.wait_listening(22)
    h = host_on_tap

    def run(command: str, key: asyncssh.SSHKey = client_key, stdin: bytes | None = None,
            pinned: str = host_pub) -> object:
        return h.run(ssh_exec(h.node, LINUX4, 22, command, username="root", password=None,
                              client_keys=[key], host_key=pinned, stdin=stdin, timeout=10),
                     timeout=20)

    r = run("echo hello from $(uname -s); exit 3")
    assert (r.exit_status, r.stdout, r.stderr) == (3, b"hello from Linux\n", b"")
    data = os.urandom(300_000)
    r = run("sha256sum", stdin=data)
    assert (r.exit_status, r.stdout) == (0, f"{hashlib.sha256(data).hexdigest()}  -\n".encode())
    with pytest.raises(asyncssh.PermissionDenied):
        run("true", key=other_key)
    wrong_host = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        run("true", pinned=wrong_host)
    assert sshd.poll() is None
