"""Helpers for the interop tests: network namespaces the test creates, commands run inside them.

Every namespace is named ``slt<pid>x<n>`` and deleted by the fixture that made it; every command
has a timeout; every background process is killed at clean-up. Addresses come from
10.211.0.0/16 and fd00:5ac::/32, used only inside these namespaces.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

from stacklab.device.tap import TapDevice

_counter = itertools.count()

TOOLS = ["ip", "ping", "socat", "nc", "tshark", "ss", "strace"]


def environment_problem() -> str | None:
    """Why this machine cannot run the interop tests, or None."""
    if os.geteuid() != 0:
        return "not root: creating network namespaces and TAP devices needs root (CAP_NET_ADMIN)"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun (modprobe tun, or pass --device /dev/net/tun to the container)"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"missing Linux tools: {', '.join(missing)} (make sysdeps installs them)"
    probe = f"sltprobe{os.getpid()}"
    try:
        r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True,
                           timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run `ip netns add`: {exc}"
    if r.returncode != 0:
        return f"cannot create a network namespace: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10)
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR)
        os.close(fd)
    except OSError as exc:
        return f"cannot open /dev/net/tun: {exc.strerror}"
    return None


def tool_versions() -> dict[str, str]:
    """The first line of each Linux tool's version output (for the test report)."""
    cmds = {"kernel": ["uname", "-sr"], "iproute2": ["ip", "-V"], "ping": ["ping", "-V"],
            "socat": ["socat", "-V"], "nc": ["dpkg-query", "-W", "netcat-openbsd"],
            "tshark": ["tshark", "--version"], "strace": ["strace", "-V"]}
    out = {}
    for name, cmd in cmds.items():
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            out[name] = "missing"
            continue
        lines = [ln.strip() for ln in (r.stdout + "\n" + r.stderr).splitlines()
                 if ln.strip() and not ln.startswith("Running as user")]
        if name == "socat":
            lines = [ln for ln in lines if ln.startswith("socat version")] or lines
        out[name] = lines[0] if lines else "?"
    return out


class CommandError(AssertionError):
    pass


class Netns:
    """A network namespace owned by one test."""

    def __init__(self) -> None:
        self.name = f"slt{os.getpid()}x{next(_counter)}"
        self._procs: list[subprocess.Popen[Any]] = []
        self._cleanups: list[Callable[[], None]] = []
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True,
                       timeout=10)
        self.run("ip", "link", "set", "lo", "up")

    def cmd(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, *argv: str, timeout: float = 10.0, check: bool = True,
            input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command in the namespace; stdout/stderr as text (see :meth:`run_bytes`)."""
        r = self.run_bytes(*argv, timeout=timeout, check=check, input=input)
        return subprocess.CompletedProcess(r.args, r.returncode,
                                           r.stdout.decode(errors="replace"),
                                           r.stderr.decode(errors="replace"))

    def run_bytes(self, *argv: str, timeout: float = 10.0, check: bool = True,
                  input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        try:
            r = subprocess.run(self.cmd(*argv), capture_output=True, timeout=timeout,
                               input=input)
        except subprocess.TimeoutExpired as exc:
            raise CommandError(f"[{self.name}] {' '.join(argv)}: timed out after {timeout} s"
                               ) from exc
        if check and r.returncode != 0:
            raise CommandError(f"[{self.name}] {' '.join(argv)} -> exit {r.returncode}\n"
                               f"stdout: {r.stdout[:2000]!r}\nstderr: {r.stderr[:2000]!r}")
        return r

    def popen(self, *argv: str, **kw: Any) -> subprocess.Popen[Any]:
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        p = subprocess.Popen(self.cmd(*argv), start_new_session=True, **kw)
        self._procs.append(p)
        return p

    def on_cleanup(self, fn: Callable[[], None]) -> None:
        self._cleanups.append(fn)

    def close(self) -> None:
        for fn in reversed(self._cleanups):
            try:
                fn()
            except Exception:
                pass
        for p in self._procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)

    # -- conveniences --------------------------------------------------------------------------
    def neigh(self, addr: str) -> str:
        return self.run("ip", "neigh", "show", addr).stdout.strip()

    def wait_listening(self, port: int, proto: str = "t", timeout: float = 5.0) -> None:
        wait_for(lambda: f":{port} " in self.run("ss", f"-{proto}ln").stdout,
                 timeout, f"a Linux listener on port {port}")


def wait_for(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def open_tap(ns: Netns, dev: str = "tap0", *, ipv4: str | None = "10.211.0.1/24",
             ipv6: str | None = "fd00:5ac:0:1::1/64", mtu: int = 1500) -> TapDevice:
    """A TAP device inside ``ns``, up, with the Linux side's addresses; closed at clean-up."""
    tap = TapDevice.open(dev, netns=ns.name, up=True, mtu=mtu)
    ns.on_cleanup(tap.close)
    if ipv4:
        ns.run("ip", "addr", "add", ipv4, "dev", dev)
    if ipv6:
        ns.run("ip", "addr", "add", ipv6, "dev", dev, "nodad")
    return tap


def tshark_problems(pcap: str, timeout: float = 30.0) -> list[str]:
    """Lines tshark flags in ``pcap``: malformed packets and bad checksums (checks enabled)."""
    prefs = []
    for proto in ("ip", "tcp", "udp"):  # ICMP checksums are always verified
        prefs += ["-o", f"{proto}.check_checksum:TRUE"]
    # Frames are what is checked here, not streams: with TCP reassembly on, tshark reports a
    # "reassembly error" (as malformed) when Linux resends a range cut differently after a Packet
    # Too Big, although every frame is well formed and the receiver's sha256 matches.
    prefs += ["-o", "tcp.desegment_tcp_streams:FALSE"]
    # An ICMP error quotes a truncated datagram: the quoted TCP/UDP checksum cannot be checked
    # (it covers bytes that were cut), so transport checksums count only outside ICMP.
    # Linux's software checksum fallback (skb_checksum_help) writes a computed 0 as 0xFFFF
    # (CSUM_MANGLED_0), which Wireshark calls an illegal TCP checksum although it verifies in
    # one's complement; it shows up about once per 65,536 segments Linux sends. Our encoder
    # writes 0x0000 (tests/wire/test_tcp.py), so a 0xFFFF TCP checksum here is the kernel's.
    checks = ("ip.checksum.status == 0 || icmp.checksum.status == 0 || "
              "icmpv6.checksum.status == 0 || "
              "((udp.checksum.status == 0 || (tcp.checksum.status == 0 && "
              "tcp.checksum != 0xffff)) && !(icmp || icmpv6))")
    r = subprocess.run(["tshark", "-n", "-r", pcap, *prefs, "-Y", f"_ws.malformed || {checks}"],
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"tshark could not read {pcap}: {r.stderr.strip()}")
    return [ln for ln in r.stdout.splitlines() if ln.strip()]


def tshark_lines(pcap: str, display_filter: str = "", timeout: float = 30.0) -> list[str]:
    argv = ["tshark", "-n", "-r", pcap]
    if display_filter:
        argv += ["-Y", display_filter]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"tshark could not read {pcap}: {r.stderr.strip()}")
    return [ln for ln in r.stdout.splitlines() if ln.strip()]
