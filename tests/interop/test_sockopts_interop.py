"""Urgent data and SO_LINGER against the Linux kernel over TAP: a Linux socket's MSG_OOB byte
reaches a stacklab socket out of band (and stacklab's reaches Linux the same way: URG, the
pointer after the byte, as Linux expects); SO_LINGER {1, 0} resets the Linux peer."""

from __future__ import annotations

import json
import socket
import struct
import time

from .linux import Netns
from .stackhost import LINUX4, STACK4, StackOnTap

# the Linux side: plain stdlib sockets, run with the namespace's python3
_LINUX_SENDER = """
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(b"abc"); time.sleep(0.2)
s.send(b"!", socket.MSG_OOB); time.sleep(0.2)
s.sendall(b"def"); time.sleep(1.0)
s.close()
"""

_LINUX_RECEIVER = """
import fcntl, json, socket, struct, sys, time
srv = socket.create_server((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
c, _ = srv.accept()
c.settimeout(10)
time.sleep(1.0)  # everything has arrived
def atmark():
    return struct.unpack("i", fcntl.ioctl(c, 0x8905, b"\\0" * 4))[0]  # SIOCATMARK
out = {"first": c.recv(100).decode(), "atmark": atmark()}
out["oob"] = c.recv(1, socket.MSG_OOB).decode()
out["rest"] = c.recv(100).decode()
print(json.dumps(out), flush=True)
"""

_LINUX_READER = """
import socket, sys
srv = socket.create_server((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
c, _ = srv.accept()
c.settimeout(10)
try:
    while c.recv(100):
        pass
    print("eof", flush=True)
except ConnectionResetError:
    print("reset", flush=True)
"""


def test_linux_msg_oob_into_stacklab_is_read_out_of_band(netns: Netns,
                                                         host_on_tap: StackOnTap) -> None:
    srv = host_on_tap.net.create_server(("", 5101))
    p = netns.popen("python3", "-c", _LINUX_SENDER, STACK4, "5101")
    conn, _ = srv.accept()
    with conn:
        conn.settimeout(10)
        time.sleep(0.8)  # abc, the urgent !, def: all arrived
        first = conn.recv(100)  # stops at the mark
        atmark = conn.sockatmark()
        oob = conn.recv(1, socket.MSG_OOB)
        rest = conn.recv(100)
    srv.close()
    p.wait(10)
    assert (first, atmark, oob, rest) == (b"abc", True, b"!", b"def")


def test_stacklab_msg_oob_into_linux_is_read_out_of_band(netns: Netns,
                                                         host_on_tap: StackOnTap) -> None:
    p = netns.popen("python3", "-c", _LINUX_RECEIVER, LINUX4, "5102", text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "listening"
    with host_on_tap.net.create_connection((LINUX4, 5102), timeout=10) as s:
        s.sendall(b"abc")
        time.sleep(0.2)
        assert s.send(b"!", socket.MSG_OOB) == 1
        time.sleep(0.2)
        s.sendall(b"def")
        out, _ = p.communicate(timeout=15)
    assert json.loads(out) == {"first": "abc", "atmark": 1, "oob": "!", "rest": "def"}


def test_stacklab_so_linger_zero_resets_linux(netns: Netns, host_on_tap: StackOnTap) -> None:
    p = netns.popen("python3", "-c", _LINUX_READER, LINUX4, "5103", text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "listening"
    s = host_on_tap.net.create_connection((LINUX4, 5103), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.sendall(b"hello")
    time.sleep(0.2)
    s.close()
    out, _ = p.communicate(timeout=15)
    assert out.strip() == "reset"
