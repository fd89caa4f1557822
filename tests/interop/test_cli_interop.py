"""`stacklab tap` as a separate process, as a user runs it: host mode with services, router
mode, SIGTERM shutdown, the connection log, the pcap, and its errors on a real machine."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .linux import Netns, tshark_lines, tshark_problems, wait_for

REPO = Path(__file__).resolve().parents[2]


class StacklabProcess:
    def __init__(self, ns: Netns, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        self.proc = ns.popen(sys.executable, "-m", "stacklab", "tap", "--netns", ns.name, *args,
                             env=env, cwd=str(REPO), text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, pattern: str, timeout: float = 10.0) -> str:
        def find() -> str | None:
            for ln in self.lines:
                if re.search(pattern, ln):
                    return ln
            if self.proc.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"stacklab exited {self.proc.returncode}: {self.lines}")
            return None
        return wait_for(find, timeout, f"a log line matching {pattern!r} in {self.lines}")

    def terminate(self, timeout: float = 10.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        return rc


def test_cli_host_serves_linux_and_stops_on_sigterm(netns: Netns, tmp_path: Path) -> None:
    pcap = tmp_path / "cli.pcap"
    p = StacklabProcess(netns, "--dev", "tap0", "--ipv4", "10.211.0.2/24", "--ipv6",
                        "fd00:5ac:0:1::2/64", "--serve", "echo:7,discard:9,udp-echo:7",
                        "--pcap", str(pcap), "--up", "--seed", "1")
    p.wait_line(r"ready")
    netns.run("ip", "addr", "add", "10.211.0.1/24", "dev", "tap0")
    netns.run("ip", "addr", "add", "fd00:5ac:0:1::1/64", "dev", "tap0", "nodad")
    r = netns.run("ping", "-c", "2", "-i", "0.2", "-W", "2", "10.211.0.2", check=False)
    assert " 0% packet loss" in r.stdout, r.stdout
    data = os.urandom(1 << 20)
    r = netns.run_bytes("socat", "-t", "10", "-T", "10", "-", "TCP6:[fd00:5ac:0:1::2]:7",
                        input=data, timeout=30)
    assert hashlib.sha256(r.stdout).digest() == hashlib.sha256(data).digest()
    r = netns.run_bytes("socat", "-T", "1", "-", "UDP4:10.211.0.2:7", input=b"hi udp",
                        timeout=10)
    assert r.stdout == b"hi udp"
    line = p.wait_line(r"tcp echo:7 \[fd00:5ac:0:1::1\]:\d+ closed")
    assert f"rx={len(data)} tx={len(data)}" in line
    p.wait_line(r"udp udp-echo:7 10\.211\.0\.1:\d+ datagram of 6 bytes")
    assert p.terminate() == 0
    assert p.lines[-1].endswith("stopped")
    assert not tshark_problems(str(pcap))
    assert tshark_lines(str(pcap), "tcp.flags.syn == 1 && tcp.flags.ack == 1")
    assert "tap0" not in netns.run("ip", "link").stdout  # the device went with the process


def test_cli_router_forwards_between_two_linux_namespaces(make_netns: Callable[[], Netns],
                                                         tmp_path: Path) -> None:
    s, a, b = make_netns(), make_netns(), make_netns()
    p = StacklabProcess(s, "--router", "--dev", "tapa=10.211.10.2/24,fd00:5ac:10::2/64",
                        "--dev", "tapb=10.211.20.2/24,fd00:5ac:20::2/64,mtu=1280",
                        "--pcap", str(tmp_path / "router.pcap"))
    p.wait_line(r"ready")
    # The devices were created in namespace s; hand each to its Linux namespace.
    for ns, dev, net in ((a, "tapa", "10"), (b, "tapb", "20")):
        s.run("ip", "link", "set", dev, "netns", ns.name)
        ns.run("ip", "link", "set", dev, "up")
        ns.run("ip", "addr", "add", f"10.211.{net}.1/24", "dev", dev)
        ns.run("ip", "addr", "add", f"fd00:5ac:{net}::1/64", "dev", dev, "nodad")
        ns.run("ip", "route", "add", "default", "via", f"10.211.{net}.2")
        ns.run("ip", "-6", "route", "add", "default", "via", f"fd00:5ac:{net}::2")
    r = a.run("ping", "-c", "2", "-i", "0.2", "-W", "2", "10.211.20.1", check=False)
    assert " 0% packet loss" in r.stdout and "ttl=63" in r.stdout, r.stdout
    r = a.run("ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "fd00:5ac:20::1", check=False)
    assert " 0% packet loss" in r.stdout and "ttl=63" in r.stdout, r.stdout
    # A DF ping too big for the 1280 hop: Linux reports the MTU stacklab told it.
    r = a.run("ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1400", "10.211.20.1",
              check=False)
    assert "mtu = 1280" in (r.stdout + r.stderr) or "mtu=1280" in (r.stdout + r.stderr), r
    time.sleep(0.1)
    assert p.terminate() == 0
    assert not tshark_problems(str(tmp_path / "router.pcap"))


def test_cli_reports_busy_device_and_missing_namespace(netns: Netns) -> None:
    from .linux import open_tap

    open_tap(netns, "tapbusy", ipv4=None, ipv6=None)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    base = [sys.executable, "-m", "stacklab", "tap", "--ipv4", "10.211.0.2/24"]
    r = subprocess.run([*base, "--dev", "tapbusy", "--netns", netns.name], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.strip() == ("stacklab tap: error: TAP device 'tapbusy' is busy: another "
                                "process has it open")
    r = subprocess.run([*base, "--dev", "tap9", "--netns", "stacklab-no-such-ns"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "no network namespace 'stacklab-no-such-ns'" in r.stderr
