"""The parser: the language as upstream scripts write it, and broken scripts rejected with one
line naming the line and column."""

from __future__ import annotations

import pytest

from stacklab.packetdrill.lexer import ScriptError
from stacklab.packetdrill.parser import parse
from stacklab.packetdrill.syntax import (
    Array,
    BitOr,
    Command,
    Ellipsis_,
    IcmpPacket,
    Int,
    Packet,
    Struct,
    Sym,
    Syscall,
    TcpPacket,
    UdpPacket,
)

GOOD = """\
--tolerance_usecs=10000
`sysctl -q net.ipv4.tcp_sack=1`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
   +0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
   +0 > S 0:0(0) <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 8>
 +.01 < S. 0:0(0) ack 1 win 5792 <mss 1460,nop,nop,sackOK,nop,wscale 7>
   *  > . 1:1(0) ack 1 <...>
   +0 < [ect0] . 1:1001(1000) ack 1 win 257 <nop,nop,sack 2001:3001 4001:5001>
 0.2~0.3 > P. 1:11(10) ack 1001
   +0 < icmp unreachable frag_needed mtu 1200 [1:1001(1000)]
   +0 < udp (100)
 +0...0.5 poll([{fd=3, events=POLLIN, revents=POLLIN}], 1, 500) = 1
   +0 getsockopt(3, SOL_TCP, TCP_INFO, {tcpi_state=1, tcpi_rto=200000}, [104]) = 0
   +0 %{ assert tcpi_snd_cwnd == 10 }%
"""


def test_a_script_with_every_kind_of_event() -> None:
    sc = parse(GOOD, "good.pkt")
    assert sc.options == {"tolerance_usecs": "10000"}
    ev = sc.events
    assert isinstance(ev[0].action, Command) and "tcp_sack" in ev[0].action.text
    sock = ev[1].action
    assert isinstance(sock, Syscall) and sock.name == "socket"
    assert sock.args == (Ellipsis_(), Sym("SOCK_STREAM"), Sym("IPPROTO_TCP"))
    assert sock.result == Int(3)
    assert ev[2].action.args[2] == BitOr((Sym("O_RDWR"), Sym("O_NONBLOCK")))  # type: ignore
    conn = ev[3].action
    assert isinstance(conn, Syscall)
    assert (conn.result, conn.errno, conn.note) == (Int(-1), "EINPROGRESS",
                                                    "Operation now in progress")
    syn = ev[4].action
    assert isinstance(syn, Packet) and syn.direction == ">"
    assert isinstance(syn.body, TcpPacket) and syn.body.flags == "S"
    assert [o.kind for o in syn.body.options or ()] == ["mss", "sackOK", "TS", "nop", "wscale"]
    synack = ev[5].action
    assert ev[5].time.kind == "relative" and ev[5].time.start == pytest.approx(0.01)
    assert isinstance(synack, Packet) and isinstance(synack.body, TcpPacket)
    assert (synack.body.flags, synack.body.ack, synack.body.window) == ("S.", 1, 5792)
    assert ev[6].time.kind == "any"
    assert isinstance(ev[6].action, Packet) and ev[6].action.body.options is None  # type: ignore
    data = ev[7].action
    assert isinstance(data, Packet) and data.ecn == "ect0"
    assert isinstance(data.body, TcpPacket) and data.body.length == 1000
    assert data.body.options is not None and data.body.options[-1].blocks == (
        (2001, 3001), (4001, 5001))
    assert ev[8].time.kind == "absolute_range" and ev[8].time.end == pytest.approx(0.3)
    icmp = ev[9].action
    assert isinstance(icmp, Packet) and icmp.body == IcmpPacket(
        "unreachable", "frag_needed", 1200, "tcp", (1, 1001, 1000))
    assert isinstance(ev[10].action, Packet) and ev[10].action.body == UdpPacket(100)
    poll = ev[11].action
    assert isinstance(poll, Syscall) and poll.end == pytest.approx(0.5)
    arr = poll.args[0]
    assert isinstance(arr, Array) and isinstance(arr.items[0], Struct)
    assert arr.items[0].get("revents") == Sym("POLLIN")
    assert [e.line for e in ev[:3]] == [2, 3, 4]


@pytest.mark.parametrize("text, line, col, words", [
    ("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 > S 0:0 <mss 1460>\n", 2, 12,
     "expected '('"),
    ("0 < S. 0:10(5) ack 1 win 100\n", 1, 8, "inconsistent TCP sequence numbers"),
    ("0 write(3, ..., 10) 10\n", 1, 21, "expected '='"),
    ("0 < S 0:0(0) win 100 <mss 1460, bogus 3>\n", 1, 33, "unknown TCP option 'bogus'"),
    ("  +0 < . 1:1(0) ack 1 win 100\n  +x close(3) = 0\n", 2, 4, "expected a time"),
    ("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n* close(3) = 0\n", 2, 1,
     "can only be used with outbound packets"),
    ("0 < Q 0:0(0) win 1\n", 1, 5, "expected TCP flags"),
    ("0 %{ assert 1\n", 1, 3, "unterminated %{"),
    ("0 setsockopt(3, SOL_SOCKET, SO_LINGER, {l_onoff=1, 0, 4) = 0\n", 1, 56, "expected ','"),
    ("0.3~0.1 > . 1:1(0) ack 1\n", 1, 1, "time range is backwards"),
])
def test_broken_scripts_name_line_and_column(text: str, line: int, col: int,
                                              words: str) -> None:
    with pytest.raises(ScriptError) as ei:
        parse(text, "broken.pkt")
    e = ei.value
    assert (e.line, e.column) == (line, col), str(e)
    assert words in e.message
    msg = str(e)
    assert msg.startswith(f"broken.pkt:{line}:{col}: ") and "\n" not in msg


def test_mangled_scripts_give_script_errors_only() -> None:
    """Random cuts and insertions in our own scripts: the parser either accepts the result or
    raises ScriptError (never IndexError, ValueError, ...)."""
    import random
    from pathlib import Path

    rng = random.Random(15)
    texts = [p.read_text() for p in sorted((Path(__file__).parent / "scripts").glob("*.pkt"))]
    junk = ["(", ")", "<", ">", ":", ",", "[", "]", "{", "}", "...", "%{", "`", '"', "-",
            "0x", ".", "~", "+", "*", "=", "ack", "S.", "999999999999"]
    for _ in range(400):
        text = rng.choice(texts)
        i = rng.randrange(len(text))
        j = min(len(text), i + rng.randrange(8))
        mangled = text[:i] + rng.choice(junk + [""]) + text[j:]
        try:
            parse(mangled, "m.pkt")
        except ScriptError as e:
            assert "\n" not in str(e) and str(e).startswith("m.pkt:")
