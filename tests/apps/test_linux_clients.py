"""Linux clients (curl, OpenSSH) against our servers over the real loopback (AsyncioNet).

The same servers run on stacklab's TCP in the simulator (test_sim.py); this checks that they
speak the protocols the way real clients expect. Skipped when the tool is missing.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from stacklab.apps.common import AsyncioNet, pattern_bytes, sha256_hex
from stacklab.apps.ftp import serve_ftp
from stacklab.apps.http import serve_http
from stacklab.apps.smtp import serve_smtp
from stacklab.apps.ssh import serve_ssh
from stacklab.testing import require_tool


@pytest.fixture
def needs_curl() -> None:
    require_tool("curl", package="curl")


async def sh(*args: str, stdin: bytes | None = None) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(stdin), 20)
    assert proc.returncode is not None
    return proc.returncode, out, err


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


@pytest.mark.usefixtures("needs_curl")
def test_curl_http() -> None:
    async def main() -> None:
        server = await serve_http(AsyncioNet(), 0, bytes=100_000)
        base = f"http://127.0.0.1:{server.port}"
        try:
            rc, out, _ = await sh("curl", "-s", f"{base}/a", f"{base}/b?chunked=1",
                                  "-o", "/dev/null", "-o", "/dev/null",
                                  "-w", "%{http_code} %{size_download} %{num_connects}\n")
            assert rc == 0
            assert out.decode().split("\n")[:2] == ["200 100000 1", "200 100000 0"]  # reused
            rc, body, _ = await sh("curl", "-s", f"{base}/x")
            assert sha256_hex(body) == sha256_hex(pattern_bytes(0, 100_000))
            rc, head, _ = await sh("curl", "-sI", f"{base}/x")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 100000" in head
            rc, posted, _ = await sh("curl", "-s", "--data-binary", "@-", f"{base}/p",
                                     stdin=b"hello")
            assert posted.split()[-1].decode() == sha256_hex(b"hello")
        finally:
            await server.close()
    run(main())


@pytest.mark.usefixtures("needs_curl")
def test_curl_smtp(tmp_path: Path) -> None:
    message = b"From: a@b\r\nTo: c@d\r\nSubject: x\r\n\r\nhello\r\n.a leading dot\r\n.\r\nend\r\n"

    async def main() -> None:
        server = await serve_smtp(AsyncioNet(), 0, root=tmp_path)
        try:
            rc, _, err = await sh("curl", "-s", "-S", f"smtp://127.0.0.1:{server.port}",
                                  "--mail-from", "a@b", "--mail-rcpt", "c@d", "-T", "-",
                                  stdin=message)
            assert rc == 0, err
        finally:
            await server.close()
    run(main())
    assert (tmp_path / "000001.eml").read_bytes() == message


@pytest.mark.usefixtures("needs_curl")
@pytest.mark.parametrize("active", [False, True])
def test_curl_ftp(tmp_path: Path, active: bool) -> None:
    data = os.urandom(200_000)
    (tmp_path / "f.bin").write_bytes(data)
    extra = ["--ftp-port", "127.0.0.1"] if active else []

    async def main() -> None:
        server = await serve_ftp(AsyncioNet(), 0, root=tmp_path)
        base = f"ftp://127.0.0.1:{server.port}"
        try:
            rc, out, err = await sh("curl", "-s", "-S", *extra, f"{base}/f.bin")
            assert rc == 0 and out == data, err
            rc, _, err = await sh("curl", "-s", "-S", *extra, "-T", "-", f"{base}/up.bin",
                                  stdin=b"u" * 70_000)
            assert rc == 0, err
            rc, out, err = await sh("curl", "-s", "-S", *extra, f"{base}/")
            assert rc == 0 and b" f.bin" in out and b" up.bin" in out
        finally:
            await server.close()
    run(main())
    assert (tmp_path / "up.bin").read_bytes() == b"u" * 70_000


def test_openssh_client(tmp_path: Path) -> None:
    require_tool("ssh", package="openssh-client")
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(tmp_path / "id"))
    (tmp_path / "id").chmod(0o600)

    async def main() -> None:
        server = await serve_ssh(AsyncioNet(), 0, password=None,
                                 authorized_keys=key.export_public_key().decode())
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{server.port} {server.host_public_key}\n")
        ssh = ["ssh", "-F", "/dev/null", "-i", str(tmp_path / "id"), "-p", str(server.port),
               "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
               "-o", "BatchMode=yes", "stacklab@127.0.0.1"]
        try:
            rc, out, err = await sh(*ssh, "echo hello from openssh")
            assert (rc, out) == (0, b"hello from openssh\n"), err
            rc, _, _ = await sh(*ssh, "exit 9")
            assert rc == 9
            rc, out, _ = await sh(*ssh, "sha256sum", stdin=b"abc")
            assert out.split()[0].decode() == sha256_hex(b"abc")
        finally:
            await server.close()
    run(main())
