"""TCP against the Linux kernel: bulk transfers both ways with sha256 checks, both sides as
client and server, graceful close with TIME-WAIT on the side that closed first, RST for closed
ports both ways."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from pathlib import Path

import pytest

from stacklab.cli.tap import ConnLog, tcp_service

from .linux import Netns, wait_for
from .stackhost import LINUX4, LINUX6, STACK4, STACK6, StackOnTap

MB = 1 << 20
BULK = 10 * MB


def bulk_file(tmp_path: Path, size: int) -> tuple[Path, str]:
    path = tmp_path / f"bulk-{size}"
    data = os.urandom(size)  # the payload only: nothing in the stack depends on it
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def serve(h: StackOnTap, kind: str, port: int) -> None:
    h.run(h.node.start_server(tcp_service(kind, port, ConnLog(quiet=True)), port=port))


def tcp_states(h: StackOnTap) -> list[list[str]]:
    return [c["states"] for c in h.call(h.node.tcp_connections_summary)]


def sh(netns: Netns, script: str, timeout: float) -> str:
    r = netns.run("bash", "-c", "set -o pipefail; " + script, timeout=timeout, check=False)
    assert r.returncode == 0, f"{script}\n-> exit {r.returncode}\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.mark.parametrize("family", [4, 6])
def test_linux_socat_bulk_into_stacklab_echo(netns: Netns, host_on_tap: StackOnTap,
                                             tmp_path: Path, family: int) -> None:
    src, digest = bulk_file(tmp_path, BULK)
    serve(host_on_tap, "echo", 7)
    dst = STACK4 if family == 4 else f"[{STACK6}]"
    out = sh(netns, f"socat -t 30 -T 30 TCP{family}:{dst}:7 - < {src} | sha256sum", 120)
    assert out.split()[0] == digest


def test_linux_socat_bulk_into_stacklab_discard(netns: Netns, host_on_tap: StackOnTap,
                                                tmp_path: Path) -> None:
    src, _ = bulk_file(tmp_path, BULK)
    serve(host_on_tap, "discard", 9)
    sh(netns, f"socat -u -T 30 OPEN:{src} TCP4:{STACK4}:9", 120)
    wait_for(lambda: any(c["bytes_received"] == BULK for c in
                         host_on_tap.call(host_on_tap.node.tcp_connections_summary)),
             10, "the discard server to count every byte")


@pytest.mark.parametrize("family", [4, 6])
def test_stacklab_client_to_linux_echo_server(netns: Netns, host_on_tap: StackOnTap,
                                              family: int) -> None:
    linux = LINUX4 if family == 4 else LINUX6
    bind = linux if family == 4 else f"[{linux}]"
    # EXEC:cat, not PIPE: socat writing 8 KiB into its own full pipe can block itself forever.
    netns.popen("socat", f"TCP{family}-LISTEN:5001,bind={bind},reuseaddr", "EXEC:cat")
    netns.wait_listening(5001)
    data = os.urandom(BULK)
    got = bytearray()
    with host_on_tap.net.create_connection((linux, 5001), timeout=30) as s:
        t = threading.Thread(target=s.sendall, args=(data,))  # write and read at once
        t.start()
        while len(got) < len(data):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            got += chunk
        t.join(30)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()


def test_stacklab_client_uploads_to_linux(netns: Netns, host_on_tap: StackOnTap,
                                          tmp_path: Path) -> None:
    out = tmp_path / "received"
    netns.popen("socat", "-u", f"TCP4-LISTEN:5002,bind={LINUX4},reuseaddr",
                f"CREATE:{out}")
    netns.wait_listening(5002)
    data = os.urandom(BULK)
    with host_on_tap.net.create_connection((LINUX4, 5002), timeout=30) as s:
        s.sendall(data)
    wait_for(lambda: out.exists() and out.stat().st_size == len(data), 30,
             "Linux to receive every byte")
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_linux_closes_first_linux_has_time_wait(netns: Netns, host_on_tap: StackOnTap) -> None:
    serve(host_on_tap, "discard", 9)
    # socat sends, shuts down its write side, sees our FIN after the discard server closes.
    sh(netns, f"echo hello | socat -t 5 - TCP4:{STACK4}:9", 15)
    ss = netns.run("ss", "-tan").stdout
    assert any("TIME-WAIT" in ln and f"{STACK4}:9" in ln for ln in ss.splitlines()), ss
    states = tcp_states(host_on_tap)
    assert states and "CLOSE-WAIT" in states[-1] and "TIME-WAIT" not in states[-1], states


def test_stacklab_closes_first_stacklab_has_time_wait(netns: Netns,
                                                      host_on_tap: StackOnTap) -> None:
    netns.popen("socat", "-u", f"TCP4-LISTEN:5003,bind={LINUX4},reuseaddr", "OPEN:/dev/null")
    netns.wait_listening(5003)
    with host_on_tap.net.create_connection((LINUX4, 5003), timeout=10) as s:
        s.sendall(b"bye")
    wait_for(lambda: any("TIME-WAIT" in st for st in tcp_states(host_on_tap)), 5,
             "stacklab's connection to enter TIME-WAIT")
    states = tcp_states(host_on_tap)[-1]
    assert "FIN-WAIT-1" in states and "TIME-WAIT" in states, states
    ss = netns.run("ss", "-tan").stdout
    assert not any("TIME-WAIT" in ln for ln in ss.splitlines()), ss


@pytest.mark.parametrize("family", [4, 6])
def test_linux_connect_to_closed_stacklab_port_is_refused(netns: Netns,
                                                          host_on_tap: StackOnTap,
                                                          family: int) -> None:
    dst = STACK4 if family == 4 else f"[{STACK6}]"
    r = netns.run("socat", "-T", "3", "-", f"TCP{family}:{dst}:4444", timeout=10,
                  check=False, input=b"")
    assert r.returncode != 0 and "Connection refused" in r.stderr, r.stderr


@pytest.mark.parametrize("family", [4, 6])
def test_stacklab_connect_to_closed_linux_port_is_refused(host_on_tap: StackOnTap,
                                                          family: int) -> None:
    linux = LINUX4 if family == 4 else LINUX6
    with pytest.raises(ConnectionRefusedError):
        host_on_tap.net.create_connection((linux, 4444), timeout=5)
    s = host_on_tap.net.socket(socket.AF_INET if family == 4 else socket.AF_INET6)
    assert s.connect_ex((linux, 4444)) != 0
    s.close()


def test_stdlib_http_client_over_facade_to_linux_http_server(netns: Netns,
                                                             host_on_tap: StackOnTap,
                                                             tmp_path: Path) -> None:
    import http.client

    body = os.urandom(MB)
    (tmp_path / "blob").write_bytes(body)
    netns.popen("python3", "-m", "http.server", "--bind", LINUX4, "--directory", str(tmp_path),
                "8080")
    netns.wait_listening(8080)
    net = host_on_tap.net

    class StackHTTPConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = net.create_connection((self.host, self.port), self.timeout)

    conn = StackHTTPConnection(LINUX4, 8080, timeout=20)
    conn.request("GET", "/blob")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.read() == body
    conn.close()


def test_linux_curl_to_stacklab_http_service(netns: Netns, host_on_tap: StackOnTap) -> None:
    serve(host_on_tap, "http", 8080)
    r = netns.run("curl", "-sS", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}",
                  f"http://{STACK4}:8080/", timeout=20, check=False)
    assert r.stdout == "200", (r.stdout, r.stderr)
    r = netns.run("curl", "-sS", "-m", "10", "-g", "-o", "/dev/null", "-w", "%{http_code}",
                  f"http://[{STACK6}]:8080/", timeout=20, check=False)
    assert r.stdout == "200", (r.stdout, r.stderr)
