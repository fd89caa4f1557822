"""ECN (RFC 3168) negotiated with the Linux kernel over TAP, both ways: Linux with
net.ipv4.tcp_ecn=1 (in the test's own namespace) connecting to stacklab (Linux's default mode 2:
accept), and stacklab with tcp_ecn=1 connecting to Linux. Checked in stacklab's capture: the SYN
with ECE|CWR, the SYN-ACK with ECE alone, ECT(0) on every data segment of both sides (Linux
marks its own only once it considers ECN negotiated), Not-ECT on pure ACKs. (``ss -ti`` of
this machine's iproute2 6.1 prints no option flags at all, not even ``ts``: not usable.)"""

from __future__ import annotations

import os
from pathlib import Path

from stacklab.cli.tap import ConnLog, tcp_service

from .linux import Netns, wait_for
from .stackhost import LINUX4, STACK4, StackOnTap

# tcp.flags.syn, .ack, .ece, .cwr, ip.dsfield.ecn, tcp.len, ip.src
FIELDS = ["tcp.flags.syn", "tcp.flags.ack", "tcp.flags.ece", "tcp.flags.cwr", "ip.dsfield.ecn",
          "tcp.len", "ip.src"]


def packets(h: StackOnTap, port: int) -> list[tuple[int, int, int, int, int, int, str]]:
    """The TCP segments of ``port`` in stacklab's capture so far, as FIELDS."""
    out = []
    for v in h.tcp_fields(port, FIELDS):
        flags = [1 if x in ("1", "True") else 0 for x in v[:4]]
        out.append((*flags, int(v[4] or 0, 0), int(v[5] or 0), v[6]))  # type: ignore[arg-type]
    return out


def assert_negotiated(segs: list[tuple[int, int, int, int, int, int, str]], client: str) -> None:
    syn = [s for s in segs if s[0] and not s[1]]
    synack = [s for s in segs if s[0] and s[1]]
    assert syn and syn[0][2:4] == (1, 1) and syn[0][6] == client, syn  # SEW
    assert synack and synack[0][2:4] == (1, 0), synack  # SE.
    data = [s for s in segs if not s[0] and s[5] > 0]
    acks = [s for s in segs if not s[0] and s[5] == 0]
    assert data and all(s[4] == 2 for s in data), data[:5]  # ECT(0) on every data segment
    assert acks and all(s[4] == 0 for s in acks), acks[:5]  # Not-ECT on pure ACKs


def ecn_conns(h: StackOnTap) -> list[dict[str, object]]:
    return [c for c in h.call(h.node.tcp_connections_summary) if "ecn" in c]


def test_linux_client_negotiates_ecn_with_stacklab(netns: Netns, host_on_tap: StackOnTap,
                                                   tmp_path: Path) -> None:
    netns.run("sysctl", "-qw", "net.ipv4.tcp_ecn=1")
    host_on_tap.run(host_on_tap.node.start_server(
        tcp_service("echo", 7, ConnLog(quiet=True)), port=7))
    src = tmp_path / "data"
    src.write_bytes(os.urandom(200_000))
    netns.run("socat", "-t", "5", "-T", "10", f"OPEN:{src}!!/dev/null", f"TCP4:{STACK4}:7",
              timeout=30)
    assert_negotiated(packets(host_on_tap, 7), LINUX4)
    assert ecn_conns(host_on_tap)


def test_stacklab_client_negotiates_ecn_with_linux(netns: Netns, host_on_tap: StackOnTap) -> None:
    netns.run("sysctl", "-qw", "net.ipv4.tcp_ecn=1")
    host_on_tap.call(host_on_tap.node.sysctl.__setitem__, "net.ipv4.tcp_ecn", "1")
    netns.popen("socat", f"TCP4-LISTEN:5004,bind={LINUX4},reuseaddr", "EXEC:cat")
    netns.wait_listening(5004)
    data = os.urandom(200_000)
    got = bytearray()
    with host_on_tap.net.create_connection((LINUX4, 5004), timeout=10) as s:
        s.sendall(data)
        while len(got) < len(data):  # Linux's echo: its data must come back ECT(0) too
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            got += chunk
    assert got == data
    assert_negotiated(packets(host_on_tap, 5004), STACK4)
    wait_for(lambda: ecn_conns(host_on_tap), 5, "stacklab's connection to report ECN")
