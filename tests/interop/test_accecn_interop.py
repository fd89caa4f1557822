"""Accurate ECN (RFC 9768) with the Linux kernel over TAP, both ways, through a path that
CE-marks every fourth ECT(0) packet in each direction (nftables in the test's own namespace:
``ip ecn set ce`` on tap0, before Linux's TCP on the way in, after it on the way out).

AccECN both ways (the last two tests) needs a kernel whose net.ipv4.tcp_ecn takes 3: this
machine's 6.18 refuses it (its AccECN code, tcp_ecn_option and the tcp_info fields are in; the
modes are not), and they skip saying so. They check, in stacklab's capture (tshark's decoding),
the handshake of §3.1 (SYN AE|CWR|ECE; SYN-ACK 0|1|0 for a Not-ECT SYN, with the AccECN option;
the last ACK's ACE 0b010 for a Not-ECT SYN-ACK), ECT(0) on every later segment of ours (pure
ACKs too) and options both ways; in Linux's TCP_INFO (read by a helper in the namespace: this
machine's ``ss``, iproute2 6.1, prints none of the AccECN fields) our option seen and no
failure; and the counts: the marks made towards Linux = Linux's received_ce = what stacklab's
sender inferred from the ACE field, the CE segments in stacklab's capture = stacklab's received
CE = Linux's delivered_ce, and the CE byte counters of each side = the other's option.

What 6.18 can be is the classic-ECN peer of an AccECN end, in both roles: the fallback of
§3.1.2 table 2 (a SYN-ACK with ECE alone), through the same CE-marking path (the first two)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from stacklab.cli.tap import ConnLog, tcp_service

from .linux import Netns, wait_for
from .stackhost import LINUX4, STACK4, StackOnTap

# A helper run by the namespace's python3: one connection as client or server, an echo, then
# the AccECN fields of Linux's struct tcp_info (include/uapi/linux/tcp.h, Linux 6.18) as JSON.
HELPER = r'''
import json, socket, struct, sys, time

def info(s):
    b = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 512)
    u32 = lambda off: struct.unpack_from("=I", b, off)[0]
    u16 = lambda off: struct.unpack_from("=H", b, off)[0]
    return {"len": len(b), "options": b[5], "unacked": u32(24), "delivered_ce": u32(196),
            "received_ce": u32(248), "delivered_ce_bytes": u32(260),
            "received_e0_bytes": u32(268), "received_ce_bytes": u32(272),
            "fail_mode": u16(276), "opt_seen": u16(278)}

def settle(s):
    for _ in range(250):  # at most 5 s for our last bytes to be acknowledged
        if info(s)["unacked"] == 0:
            break
        time.sleep(0.02)
    return info(s)

role, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if role == "server":
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(1)
    c, _ = ls.accept()
    c.settimeout(20)
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    print(json.dumps(settle(c)), flush=True)
    c.close()
else:
    data = open(sys.argv[4], "rb").read()
    c = socket.create_connection((host, port), timeout=20)
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
    got = 0
    while True:
        d = c.recv(65536)
        if not d:
            break
        got += len(d)
    assert got == len(data), (got, len(data))
    print(json.dumps(settle(c)), flush=True)
    c.close()
'''

FIELDS = ["tcp.flags.syn", "tcp.flags.ack", "tcp.flags.ae", "tcp.flags.cwr", "tcp.flags.ece",
          "ip.dsfield.ecn", "tcp.len", "ip.src", "tcp.options.acc_ecn.eceb"]


def packets(h: StackOnTap, port: int) -> list[dict[str, Any]]:
    """The TCP segments of ``port`` in stacklab's capture, decoded by tshark."""
    out = []
    for v in h.tcp_fields(port, FIELDS):
        syn, ack, ae, cwr, ece = (1 if x in ("1", "True") else 0 for x in v[:5])
        out.append({"syn": syn, "ack": ack, "ace": ae << 2 | cwr << 1 | ece,
                    "ecn": int(v[5] or 0, 0), "len": int(v[6] or 0), "src": v[7],
                    "opt": v[8] != ""})
    return out


def ce_path(ns: Netns) -> None:
    """Every fourth ECT(0) packet CE-marked, towards Linux (prerouting, before its TCP) and
    towards stacklab (postrouting, after Linux's TCP), each rule with a counter."""
    ns.run("nft", "add", "table", "ip", "accecn")
    ns.run("nft", "add chain ip accecn pre { type filter hook prerouting priority -300 ; }")
    ns.run("nft", 'add rule ip accecn pre iifname "tap0" ip ecn ect0 numgen inc mod 4 0 '
           "counter ip ecn set ce")
    ns.run("nft", "add chain ip accecn post { type filter hook postrouting priority 300 ; }")
    ns.run("nft", 'add rule ip accecn post oifname "tap0" ip ecn ect0 numgen inc mod 4 0 '
           "counter ip ecn set ce")


def marks(ns: Netns) -> dict[str, int]:
    """The packets nftables CE-marked: ``to_linux``, ``to_stack``."""
    out = {}
    for chain, key in (("pre", "to_linux"), ("post", "to_stack")):
        text = ns.run("nft", "list", "chain", "ip", "accecn", chain).stdout
        m = re.search(r"counter packets (\d+)", text)
        assert m, text
        out[key] = int(m.group(1))
    return out


def helper(tmp_path: Path) -> Path:
    p = tmp_path / "accecn_helper.py"
    p.write_text(HELPER)
    return p


def accecn_conn(h: StackOnTap, port: int) -> dict[str, Any]:
    conns = [c for c in h.call(h.node.tcp_connections_summary)
             if str(port) in (c["local"] + c["remote"]) and c.get("ecn")]
    assert conns, h.call(h.node.tcp_connections_summary)
    ecn: dict[str, Any] = conns[-1]["ecn"]
    return ecn


def check(segs: list[dict[str, Any]], client: str, server: str, stack: str,
          linux: dict[str, Any], ours: dict[str, Any], m: dict[str, int]) -> None:
    syn = [s for s in segs if s["syn"] and not s["ack"]]
    synack = [s for s in segs if s["syn"] and s["ack"]]
    assert syn and syn[0]["ace"] == 0b111 and syn[0]["src"] == client and syn[0]["ecn"] == 0
    # table 2: the SYN arrived Not-ECT -> 0|1|0, with the AccECN option
    assert synack and synack[0]["ace"] == 0b010 and synack[0]["src"] == server, synack
    assert synack[0]["opt"] and synack[0]["ecn"] == 0
    rest = [s for s in segs if not s["syn"]]
    # table 4: the client's first segment echoes the Not-ECT SYN-ACK as 0b010
    assert rest[0]["src"] == client and rest[0]["ace"] == 0b010, rest[:3]
    # every later segment of ours is ECT(0) (pure ACKs too); the peer's ECT(0) or CE (marked)
    mine = [s for s in rest if s["src"] == stack]
    assert mine and all(s["ecn"] == 2 for s in mine), [s for s in mine if s["ecn"] != 2][:3]
    theirs = [s for s in rest if s["src"] != stack]
    assert all(s["ecn"] in (2, 3) for s in theirs)
    ce_in = sum(s["ecn"] == 3 for s in theirs)  # (nftables marks Linux's GSO packets whole)
    assert m["to_stack"] > 0 and ce_in >= m["to_stack"]
    # options both ways after the handshake
    assert any(s["opt"] for s in mine) and any(s["opt"] for s in theirs)
    # Linux: ECN on, our options seen with counters (TCP_ACCECN_OPT_COUNTER_SEEN), no failure
    assert linux["len"] >= 280 and linux["options"] & 8  # TCPI_OPT_ECN
    assert (linux["opt_seen"], linux["fail_mode"]) == (2, 0), linux
    # the counts, each side's receiver against the other's sender
    assert ours["mode"] == "accecn" and not ours["ace_fail"] and ours["option_seen"]
    assert linux["received_ce"] == m["to_linux"] == ours["ce_delivered"] > 0, (linux, ours, m)
    assert ours["ce_in"] == ce_in == linux["delivered_ce"], (linux, ours, m)
    assert ours["bytes_delivered"]["ceb"] == linux["received_ce_bytes"] > 0
    assert ours["bytes_in"]["ceb"] == linux["delivered_ce_bytes"] > 0
    assert ours["reductions"] > 0  # the sender answered the marks


def accecn_kernel(ns: Netns) -> None:
    """Skip unless Linux takes net.ipv4.tcp_ecn=3 (6.18 has AccECN's code, tcp_ecn_option and the
    tcp_info fields, but its tcp_ecn still stops at 2: the modes come with a later kernel)."""
    r = ns.run("sysctl", "-qw", "net.ipv4.tcp_ecn=3", check=False)
    if r.returncode:
        pytest.skip(f"this kernel ({os.uname().release}) refuses net.ipv4.tcp_ecn=3: "
                    f"{r.stderr.strip()}")


def linux_client(ns: Netns, h: StackOnTap, tmp_path: Path, port: int) -> dict[str, Any]:
    """Linux's helper connects to stacklab's echo service on ``port``: its TCP_INFO."""
    h.run(h.node.start_server(tcp_service("echo", port, ConnLog(quiet=True)), port=port))
    src = tmp_path / "data"
    src.write_bytes(os.urandom(300_000))
    r = ns.run("/usr/bin/python3", str(helper(tmp_path)), "client", STACK4, str(port), str(src),
               timeout=40)
    info: dict[str, Any] = json.loads(r.stdout)
    return info


def stack_client(ns: Netns, h: StackOnTap, tmp_path: Path, port: int) -> dict[str, Any]:
    """stacklab connects to Linux's helper (an echo server) on ``port``: Linux's TCP_INFO."""
    server = ns.popen("/usr/bin/python3", str(helper(tmp_path)), "server", LINUX4, str(port),
                      text=True)
    ns.wait_listening(port)
    data = os.urandom(300_000)
    got = bytearray()
    with h.net.create_connection((LINUX4, port), timeout=10) as s:
        s.sendall(data)
        s.shutdown(1)  # SHUT_WR: the helper echoes until EOF
        for _ in range(10_000):  # bounded: the echo comes back, then EOF
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            got += chunk
    assert got == data
    out, err = server.communicate(timeout=20)
    assert server.returncode == 0, err
    info: dict[str, Any] = json.loads(out)
    return info


def check_classic(segs: list[dict[str, Any]], client: str, stack: str, syn_ace: int,
                  linux: dict[str, Any], ours: dict[str, Any], m: dict[str, int]) -> None:
    """An AccECN end and a classic-ECN end settle on classic ECN (RFC 9768 §3.1.2 table 2:
    a SYN-ACK with ECE alone, 0|0|1), and it works: ECT(0) on our new data only, CE echoed."""
    syn = [s for s in segs if s["syn"] and not s["ack"]]
    synack = [s for s in segs if s["syn"] and s["ack"]]
    assert syn and syn[0]["ace"] == syn_ace and syn[0]["src"] == client, syn
    assert synack and synack[0]["ace"] == 0b001 and not synack[0]["opt"], synack
    mine = [s for s in segs if not s["syn"] and s["src"] == stack]
    assert all(s["ecn"] == (2 if s["len"] else 0) for s in mine), mine[:5]
    assert not any(s["opt"] for s in segs)
    theirs = [s for s in segs if not s["syn"] and s["src"] != stack]
    ce_in = sum(s["ecn"] == 3 for s in theirs)  # (nftables marks Linux's GSO packets whole)
    assert m["to_stack"] > 0 and ce_in >= m["to_stack"]
    assert linux["options"] & 8 and linux["opt_seen"] == 0, linux  # TCPI_OPT_ECN, no option
    assert "mode" not in ours and ours["ce_in"] == ce_in, (ours, m)
    # Linux got CE marks and echoed them with ECE: we reduced (its received_ce and byte counters
    # are not kept in classic mode: its fast path skips them)
    assert m["to_linux"] > 0 and ours["reductions"] > 0, (linux, m)


def test_stacklab_accecn_client_falls_back_to_classic_ecn_with_linux(
        netns: Netns, host_on_tap: StackOnTap, tmp_path: Path) -> None:
    ce_path(netns)  # Linux keeps its default, tcp_ecn=2: classic ECN when asked
    host_on_tap.call(host_on_tap.node.sysctl.__setitem__, "net.ipv4.tcp_ecn", "3")
    linux = stack_client(netns, host_on_tap, tmp_path, 5005)
    ours = wait_for(lambda: accecn_conn(host_on_tap, 5005), 5, "stacklab's ECN connection")
    check_classic(packets(host_on_tap, 5005), STACK4, STACK4, 0b111, linux, ours, marks(netns))


def test_linux_classic_client_with_stacklab_accecn_listener(
        netns: Netns, host_on_tap: StackOnTap, tmp_path: Path) -> None:
    netns.run("sysctl", "-qw", "net.ipv4.tcp_ecn=1")
    ce_path(netns)
    host_on_tap.call(host_on_tap.node.sysctl.__setitem__, "net.ipv4.tcp_ecn", "3")
    linux = linux_client(netns, host_on_tap, tmp_path, 7)
    ours = wait_for(lambda: accecn_conn(host_on_tap, 7), 5, "stacklab's ECN connection")
    check_classic(packets(host_on_tap, 7), LINUX4, STACK4, 0b011, linux, ours, marks(netns))


def test_linux_accecn_client_with_stacklab(netns: Netns, host_on_tap: StackOnTap,
                                           tmp_path: Path) -> None:
    accecn_kernel(netns)
    ce_path(netns)
    host_on_tap.call(host_on_tap.node.sysctl.__setitem__, "net.ipv4.tcp_ecn", "3")
    linux = linux_client(netns, host_on_tap, tmp_path, 7)
    ours = wait_for(lambda: accecn_conn(host_on_tap, 7), 5, "stacklab's AccECN connection")
    check(packets(host_on_tap, 7), LINUX4, STACK4, STACK4, linux, ours, marks(netns))


def test_stacklab_accecn_client_with_linux(netns: Netns, host_on_tap: StackOnTap,
                                           tmp_path: Path) -> None:
    accecn_kernel(netns)
    ce_path(netns)
    host_on_tap.call(host_on_tap.node.sysctl.__setitem__, "net.ipv4.tcp_ecn", "3")
    linux = stack_client(netns, host_on_tap, tmp_path, 5005)
    ours = wait_for(lambda: accecn_conn(host_on_tap, 5005), 5, "stacklab's AccECN connection")
    check(packets(host_on_tap, 5005), STACK4, LINUX4, STACK4, linux, ours, marks(netns))
