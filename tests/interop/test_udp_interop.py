"""UDP against the Linux kernel: both directions, a datagram that must be fragmented, and ICMP
port unreachable understood on both sides. The stacklab side uses the blocking socket facade."""

from __future__ import annotations

import hashlib
import threading

import pytest

from stacklab.api.sockets import SOCK_DGRAM

from .linux import Netns
from .stackhost import LINUX4, LINUX6, STACK4, STACK6, StackOnTap

# A Linux UDP receiver: one datagram, printed as "<length> <sha256> <source address>".
RECV_ONE = """
import hashlib, socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
s.settimeout(10)
d, a = s.recvfrom(65535)
print(len(d), hashlib.sha256(d).hexdigest(), a[0], flush=True)
"""


def payload(n: int) -> bytes:
    return bytes((i * 7 + 3) & 0xFF for i in range(n))


def udp_echo_server(h: StackOnTap, family: int, port: int) -> tuple[threading.Thread, list]:
    """One datagram echoed back by a stacklab socket, in a thread."""
    s = h.net.socket(family, SOCK_DGRAM)
    s.bind(("", port))
    seen: list = []

    def serve() -> None:
        with s:
            data, addr = s.recvfrom(65535)
            seen.append((len(data), addr))
            s.sendto(data, addr)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t, seen


@pytest.mark.parametrize(("family", "size"), [(4, 100), (4, 3000), (6, 100), (6, 3000)])
def test_linux_socat_to_stacklab_udp_echo(netns: Netns, host_on_tap: StackOnTap, family: int,
                                          size: int) -> None:
    import socket

    fam = socket.AF_INET if family == 4 else socket.AF_INET6
    t, seen = udp_echo_server(host_on_tap, fam, 7)
    dst = STACK4 if family == 4 else f"[{STACK6}]"
    data = payload(size)
    r = netns.run_bytes("socat", "-T", "1", "-b", "65536", "-", f"UDP{family}:{dst}:7",
                        input=data, timeout=10, check=False)
    t.join(5)
    assert seen and seen[0][0] == size
    assert seen[0][1][0] == (LINUX4 if family == 4 else LINUX6)
    assert r.stdout == data, (len(r.stdout), r.stderr)


@pytest.mark.parametrize(("family", "size"), [(4, 100), (4, 4000), (6, 100), (6, 4000)])
def test_stacklab_udp_to_linux(netns: Netns, host_on_tap: StackOnTap, family: int,
                               size: int) -> None:
    import socket

    linux = LINUX4 if family == 4 else LINUX6
    recv = netns.popen("python3", "-c", RECV_ONE, linux, "9000", text=True)
    assert recv.stdout.readline().strip() == "ready"
    fam = socket.AF_INET if family == 4 else socket.AF_INET6
    data = payload(size)
    with host_on_tap.net.socket(fam, SOCK_DGRAM) as s:
        s.sendto(data, (linux, 9000))
        out, err = recv.communicate(timeout=15)
    length, digest, src = out.split()
    assert int(length) == size and digest == hashlib.sha256(data).hexdigest(), err
    assert src == (STACK4 if family == 4 else STACK6)


@pytest.mark.parametrize("family", [4, 6])
def test_linux_nc_udp_gets_connection_refused(netns: Netns, host_on_tap: StackOnTap,
                                              family: int) -> None:
    dst = STACK4 if family == 4 else STACK6
    # Debian's nc quits silently on the socket error, so strace shows what the kernel told it:
    # the Port Unreachable from stacklab turns nc's next write into ECONNREFUSED.
    r = netns.run("strace", "-f", "-e", "trace=write", "nc", "-vzu", "-w", "2", dst, "9999",
                  timeout=15, check=False)
    assert "ECONNREFUSED" in r.stderr, (r.returncode, r.stderr[-2000:])
    assert r.returncode == 1
    want = "icmp.tx.3/3" if family == 4 else "icmpv6.tx.1/4"
    assert host_on_tap.node.counters[want] >= 1, dict(host_on_tap.node.counters)
    # Python's socket module on the Linux side says the same, without strace.
    probe = ("import socket,sys;f=socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET;"
             "s=socket.socket(f,socket.SOCK_DGRAM);s.settimeout(3);s.connect((sys.argv[1],9999));"
             "s.send(b'x')\ntry: s.recv(10)\nexcept ConnectionRefusedError: print('refused')")
    assert netns.run("python3", "-c", probe, dst, timeout=10).stdout.strip() == "refused"


@pytest.mark.parametrize("family", [4, 6])
def test_stacklab_udp_to_closed_linux_port_is_refused(host_on_tap: StackOnTap,
                                                      family: int) -> None:
    import socket

    linux = LINUX4 if family == 4 else LINUX6
    fam = socket.AF_INET if family == 4 else socket.AF_INET6
    with host_on_tap.net.socket(fam, SOCK_DGRAM) as s:
        s.settimeout(5)
        s.connect((linux, 9999))
        s.send(b"anyone there?")
        with pytest.raises(ConnectionRefusedError):
            s.recv(100)
