"""Linux programs against stacklab's application servers, run as a user runs them:
``stacklab tap --serve http:80,smtp:25,ftp:21,ssh:22 --root DIR`` in a namespace of the test,
curl (HTTP, SMTP, FTP passive and active) and OpenSSH ``ssh`` as the clients. Standard ports, so
tshark dissects each protocol in the capture (which must hold no malformed packet)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .linux import Netns, tshark_lines, tshark_problems, wait_for
from .stackhost import LINUX4, LINUX6, STACK4, STACK6
from .test_cli_interop import StacklabProcess

CURL = ("curl", "-sS", "--max-time", "10", "--noproxy", "*")


class ServingStack:
    """A ``stacklab tap`` process in the namespace, Linux at .1/::1, stacklab at .2/::2."""

    def __init__(self, ns: Netns, pcap: Path, *args: str) -> None:
        self.ns = ns
        self.pcap = pcap
        self.proc = StacklabProcess(ns, "--dev", "tap0", "--ipv4", f"{STACK4}/24", "--ipv6",
                                    f"{STACK6}/64", "--up", "--seed", "1", "--pcap", str(pcap),
                                    *args)
        self.proc.wait_line(r"ready", timeout=15)
        ns.run("ip", "addr", "add", f"{LINUX4}/24", "dev", "tap0")
        ns.run("ip", "addr", "add", f"{LINUX6}/64", "dev", "tap0", "nodad")
        self.stopped = False

    def log_lines(self, pattern: str) -> list[str]:
        return [ln for ln in self.proc.lines if re.search(pattern, ln)]

    def wait_log_count(self, pattern: str, count: int, timeout: float = 5.0) -> list[str]:
        wait_for(lambda: len(self.log_lines(pattern)) >= count, timeout,
                 f"{count} log lines matching {pattern!r}: {self.proc.lines}")
        return self.log_lines(pattern)

    def stop(self) -> list[str]:
        """SIGTERM, exit status 0, then the problems tshark finds in the capture."""
        if not self.stopped:
            self.stopped = True
            assert self.proc.terminate() == 0, self.proc.lines
        return tshark_problems(str(self.pcap))


@pytest.fixture
def serve(netns: Netns, tmp_path: Path) -> Iterator[Callable[..., ServingStack]]:
    started: list[ServingStack] = []

    def start(*args: str) -> ServingStack:
        s = ServingStack(netns, tmp_path / f"serve{len(started)}.pcap", *args)
        started.append(s)
        return s

    yield start
    for s in started:
        problems = s.stop()
        assert not problems, "tshark flags packets in the capture:\n" + "\n".join(problems)


def curl(ns: Netns, *args: str, input: bytes | None = None) -> bytes:
    r = ns.run_bytes(*CURL, *args, timeout=20, check=False, input=input)
    assert r.returncode == 0, f"curl {' '.join(args)} -> {r.returncode}: {r.stderr!r}"
    return r.stdout


def random_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


# -- HTTP --------------------------------------------------------------------------------------
def test_curl_against_http_server(serve: Callable[..., ServingStack], netns: Netns,
                                  tmp_path: Path) -> None:
    root = tmp_path / "www"
    root.mkdir()
    big = random_file(root / "big.bin", 300_000)
    small = b"<html><body>stacklab over TAP</body></html>\n"
    (root / "index.html").write_bytes(small)
    s = serve("--root", str(root), "--serve", "http:80")
    url = f"http://{STACK4}"

    # GET: the file's bytes, whole
    assert curl(netns, f"{url}/big.bin") == big
    # HEAD: the GET's headers (length of the file), no body
    out = curl(netns, "-I", "-w", "size=%{size_download}", f"{url}/big.bin").decode()
    assert out.startswith("HTTP/1.1 200"), out
    assert re.search(r"(?im)^content-length: 300000\r$", out), out
    assert out.endswith("size=0"), out
    # POST: the server reads the whole body and says what it got
    body = os.urandom(100_000)
    out = curl(netns, "--data-binary", "@-", "-H", "Content-Type: application/octet-stream",
               f"{url}/upload", input=body).decode()
    assert out == f"received {len(body)} bytes sha256 {hashlib.sha256(body).hexdigest()}\n"
    # a missing file is a 404
    assert curl(netns, "-o", "/dev/null", "-w", "%{http_code}", f"{url}/nope") == b"404"
    # keep-alive: two URLs in one curl run share one connection
    out = curl(netns, "-o", "/dev/null", "-o", "/dev/null",
               "-w", "%{http_code} connects=%{num_connects}\n", f"{url}/", f"{url}/big.bin")
    assert out.decode().splitlines() == ["200 connects=1", "200 connects=0"]
    # IPv6
    assert curl(netns, "-g", f"http://[{STACK6}]/index.html") == small

    # the server logged one connection per curl run: 6, the keep-alive run being one of them
    lines = s.wait_log_count(r"tcp http:80 ", 6)
    assert len(lines) == 6, lines
    assert sum(f"[{LINUX6}]" in ln for ln in lines) == 1
    assert s.stop() == []
    requests = tshark_lines(str(s.pcap), "http.request")
    assert len(requests) == 7, requests
    assert len(tshark_lines(str(s.pcap), "tcp.flags.syn == 1 && tcp.flags.ack == 0")) == 6


# -- SMTP --------------------------------------------------------------------------------------
def test_curl_sends_mail_to_smtp_server(serve: Callable[..., ServingStack], netns: Netns,
                                        tmp_path: Path) -> None:
    root = tmp_path / "srv"
    root.mkdir()
    s = serve("--root", str(root), "--serve", "smtp:25")
    lines = [b"From: Alice <alice@linux.test>", b"To: Bob <bob@stacklab.test>",
             b"Subject: over TAP", b""]
    lines += [b"line %05d " % i + os.urandom(24).hex().encode() for i in range(1500)]
    lines += [b".a line that starts with a dot", b".", b"..two dots", b"the end"]
    message = b"".join(line + b"\r\n" for line in lines)  # ~90 KB
    curl(netns, f"smtp://{STACK4}", "--mail-from", "alice@linux.test",
         "--mail-rcpt", "bob@stacklab.test", "--mail-rcpt", "carol@stacklab.test",
         "-T", "-", input=message)
    stored = root / "mail" / "000001.eml"
    wait_for(stored.exists, 5, f"{stored}")
    assert stored.read_bytes() == message  # dot-stuffing undone, bytes intact
    line = s.wait_log_count(r"tcp smtp:25 ", 1)[0]
    assert f"{LINUX4}:" in line and f"messages=1 last={stored}" in line
    assert s.stop() == []
    assert tshark_lines(str(s.pcap), 'smtp.req.command == "RCPT"')


# -- FTP ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["passive", "active"])
def test_curl_against_ftp_server(serve: Callable[..., ServingStack], netns: Netns,
                                 tmp_path: Path, mode: str) -> None:
    root = tmp_path / "ftp"
    root.mkdir()
    down = random_file(root / "down.bin", 400_000)
    (root / "sub").mkdir()
    s = serve("--root", str(root), "--serve", "ftp:21")
    url = f"ftp://{STACK4}"
    # active: curl listens, stacklab connects to it (EPRT; PORT with --disable-eprt)
    # passive: stacklab listens, curl connects (EPSV; PASV with --disable-epsv)
    opts = ["--ftp-port", LINUX4] if mode == "active" else []
    older = "--disable-eprt" if mode == "active" else "--disable-epsv"

    listing = curl(netns, *opts, f"{url}/").decode()
    names = {ln.split()[-1]: ln for ln in listing.splitlines()}
    assert set(names) == {"down.bin", "sub"}, listing
    assert names["down.bin"].startswith("-") and " 400000 " in names["down.bin"]
    assert names["sub"].startswith("d")
    assert curl(netns, *opts, f"{url}/down.bin") == down
    assert curl(netns, *opts, older, f"{url}/down.bin") == down
    up = os.urandom(250_000)
    curl(netns, *opts, "-T", "-", f"{url}/sub/up.bin", input=up)
    assert (root / "sub" / "up.bin").read_bytes() == up
    assert curl(netns, *opts, "-l", f"{url}/sub/") == b"up.bin\n"  # NLST, ASCII: CRLF -> LF

    assert s.stop() == []
    commands = [ln.split("Request: ")[1].split()[0] for ln in
                tshark_lines(str(s.pcap), "ftp.request && tcp.dstport == 21")]
    if mode == "active":
        assert commands.count("EPRT") == 4 and commands.count("PORT") == 1, commands
        assert "EPSV" not in commands and "PASV" not in commands
        # the data connections were opened by stacklab towards curl
        syns = tshark_lines(str(s.pcap), f"tcp.flags.syn == 1 && tcp.flags.ack == 0 && "
                                         f"ip.src == {STACK4}")
        assert len(syns) == 5, syns
    else:
        assert commands.count("EPSV") == 4 and commands.count("PASV") == 1, commands
        assert "EPRT" not in commands and "PORT" not in commands
        syns = tshark_lines(str(s.pcap), f"tcp.flags.syn == 1 && tcp.flags.ack == 0 && "
                                         f"ip.src == {LINUX4}")
        assert len(syns) == 10, syns  # 5 control + 5 data connections, all from curl


# -- SSH ---------------------------------------------------------------------------------------
def keygen(ns: Netns, path: Path) -> str:
    ns.run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path))
    return path.with_suffix(".pub").read_text()


def test_openssh_against_ssh_server(serve: Callable[..., ServingStack], netns: Netns,
                                    tmp_path: Path) -> None:
    keygen(netns, tmp_path / "id")
    keygen(netns, tmp_path / "other")
    s = serve("--serve", "ssh:22", "--ssh-authorized-keys", str(tmp_path / "id.pub"),
              "--ssh-password", "lab pass 1")

    def ssh(key: str, command: str, host: str = STACK4,
            input: bytes | None = None) -> tuple[int, bytes, bytes]:
        r = netns.run_bytes(
            "ssh", "-F", "/dev/null", "-i", str(tmp_path / key), "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
            "-o", "LogLevel=ERROR", f"stacklab@{host}", command,
            timeout=20, check=False, input=input)
        return r.returncode, r.stdout, r.stderr

    assert ssh("id", "echo hello from linux") == (0, b"hello from linux\n", b"")
    assert ssh("id", "exit 3")[0] == 3
    assert ssh("id", "false")[0] == 1
    rc, out, err = ssh("id", "no-such-command")
    assert (rc, err) == (127, b"sh: no-such-command: command not found\n")
    data = os.urandom(200_000)
    rc, out, _ = ssh("id", "sha256sum", input=data)
    assert (rc, out) == (0, f"{hashlib.sha256(data).hexdigest()}  -\n".encode())
    assert ssh("id", "whoami", host=STACK6) == (0, b"stacklab\n", b"")
    rc, out, err = ssh("other", "echo should not run")
    assert rc == 255 and out == b"" and b"Permission denied" in err


    # password login, no sshpass: OpenSSH asks an askpass program for it
    def ssh_password(password: str, command: str) -> tuple[int, bytes, bytes]:
        askpass = tmp_path / "askpass"
        askpass.write_text(f"#!/bin/sh\nprintf '%s\\n' '{password}'\n")
        askpass.chmod(0o700)
        r = netns.run_bytes(
            "env", f"SSH_ASKPASS={askpass}", "SSH_ASKPASS_REQUIRE=force", "DISPLAY=none",
            "ssh", "-F", "/dev/null", "-o", "PubkeyAuthentication=no",
            "-o", "PreferredAuthentications=password", "-o", "NumberOfPasswordPrompts=1",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", f"stacklab@{STACK4}", command,
            timeout=20, check=False, input=b"")
        return r.returncode, r.stdout, r.stderr

    assert ssh_password("lab pass 1", "echo by password") == (0, b"by password\n", b"")
    rc, out, err = ssh_password("wrong", "echo should not run")
    assert rc == 255 and out == b"" and b"Permission denied" in err

    # the connection log: one line per ssh run, the refused ones without a login
    lines = s.wait_log_count(r"tcp ssh:22 ", 9)
    assert sum("closed user=stacklab" in ln for ln in lines) == 7, lines
    assert sum("no login (tried stacklab)" in ln for ln in lines) == 2, lines
    assert sum(f"[{STACK6}]" in ln or f"[{LINUX6}]" in ln for ln in lines) == 1, lines
    assert s.stop() == []
    banners = tshark_lines(str(s.pcap), "ssh.protocol")
    assert any("SSH-2.0-OpenSSH" in ln for ln in banners), banners
    assert any("SSH-2.0-AsyncSSH" in ln for ln in banners), banners
