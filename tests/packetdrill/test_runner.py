"""The runner's verdicts and messages: packetdrill's wording, the line at fault, bounded runs,
stack crashes reported as FAIL, the sysctl table."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import stacklab
from stacklab.packetdrill import sysctl
from stacklab.packetdrill.runner import Result, run_script
from stacklab.stack.host import Host

SERVER = """\
`sysctl -q net.ipv4.tcp_rmem="4096 65535 65535" net.ipv4.tcp_timestamps=0`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 65535 <mss 1000>
   +0 > S. 0:0(0) ack 1 <mss 1460>
+0.01 < . 1:1(0) ack 1 win 65535
   +0 accept(3, ..., ...) = 4
"""


def run_text(tmp_path: Path, text: str, name: str = "t.pkt") -> Result:
    p = tmp_path / name
    p.write_text(text)
    return run_script(p)


def test_a_wrong_field_fails_at_its_line_with_packetdrills_message(tmp_path: Path) -> None:
    r = run_text(tmp_path, SERVER + "+0.1 < P. 1:1001(1000) ack 1 win 65535\n"
                 "+0.04 > . 1:1(0) ack 1000\n")
    assert r.status == "FAIL"
    assert r.line == 10
    first = r.message.splitlines()[0]
    assert first == (f"{tmp_path / 't.pkt'}:10: error handling packet: live packet field "
                     "tcp_ack: expected: 1000 vs actual: 1001")


def test_a_late_packet_is_a_timing_error(tmp_path: Path) -> None:
    # the retransmission leaves one RTO (10 ms SRTT + 200 ms) after the data, not 150 ms
    r = run_text(tmp_path, SERVER + "+0.1 write(4, ..., 1000) = 1000\n+0 > P. 1:1001(1000) ack 1\n"
                 "+0.15 > P. 1:1001(1000) ack 1\n")
    assert r.status == "FAIL" and r.line == 11
    assert "timing error: expected outbound packet at 0.260000 sec but happened at 0.320000 " \
           "sec; tolerance 0.004000 sec" in r.message


def test_the_tolerance_option_widens_the_window(tmp_path: Path) -> None:
    r = run_text(tmp_path, "--tolerance_usecs=50000\n" + SERVER
                 + "+0.1 < P. 1:1001(1000) ack 1 win 65535\n+0.01 > . 1:1(0) ack 1001\n")
    assert r.status == "PASS", r.message


def test_segments_sent_together_match_one_tso_sized_expectation(tmp_path: Path) -> None:
    r = run_text(tmp_path, SERVER + "+0 write(4, ..., 3000) = 3000\n+0 > P. 1:3001(3000) ack 1\n"
                 "+0 < . 1:1(0) ack 3001 win 65535\n")
    assert r.status == "PASS", r.message
    # ... but only as far as the stack actually sent them together
    r = run_text(tmp_path, SERVER + "+0 write(4, ..., 3000) = 3000\n+0 > P. 1:4001(4000) ack 1\n")
    assert r.status == "FAIL"
    assert "live packet field tcp_payload_len: expected: 4000 vs actual: 3000" in r.message
    assert "(3 segments joined as by TSO)" in r.message


def test_a_missing_packet_times_out(tmp_path: Path) -> None:
    r = run_text(tmp_path, SERVER + "+0.1 > P. 1:11(10) ack 1\n")
    assert r.status == "FAIL" and r.line == 9
    assert "timed out waiting for outbound packet" in r.message


def test_a_wrong_syscall_result(tmp_path: Path) -> None:
    r = run_text(tmp_path, SERVER + "+0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n"
                 "+0 read(4, ..., 10) = 10\n")
    assert r.status == "FAIL" and r.line == 10
    assert r.message.endswith("runtime error in read call: Expected result 10 but got -1 with "
                              "errno EAGAIN (Resource temporarily unavailable)")


def test_a_blocking_call_that_never_returns(tmp_path: Path) -> None:
    r = run_text(tmp_path, SERVER + "+0 read(4, ..., 10) = 10\n")
    assert r.status == "FAIL" and r.line == 9
    assert "blocking system call read() never returned" in r.message


def test_python_assertions_run_over_tcp_info(tmp_path: Path) -> None:
    ok = run_text(tmp_path, SERVER + "+0 %{ assert tcpi_state == 1 and tcpi_snd_mss == 1000 }%\n")
    assert ok.status == "PASS", ok.message
    bad = run_text(tmp_path, SERVER + "+0 %{ assert tcpi_snd_cwnd == 3, tcpi_snd_cwnd }%\n")
    assert bad.status == "FAIL" and bad.line == 9
    assert "assertion failed in %{ }% code: 10" in bad.message


def test_unsupported_names_the_feature(tmp_path: Path) -> None:
    r = run_text(tmp_path, "0 socketpair(AF_UNIX, SOCK_STREAM, 0, [3, 4]) = 0\n")
    assert r.status == "UNSUPPORTED"
    assert "system call socketpair()" in r.message


def test_an_option_stacklab_lacks_fails_like_a_kernel_without_it(tmp_path: Path) -> None:
    r = run_text(tmp_path, "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
                 "+0 setsockopt(3, SOL_TCP, TCP_DEFER_ACCEPT, [1], 4) = 0\n")
    assert r.status == "FAIL"
    assert r.message.endswith("errno ENOPROTOOPT (Protocol not available) (stacklab has no "
                              "TCP_DEFER_ACCEPT)")


def test_a_parse_error_is_one_line(tmp_path: Path) -> None:
    r = run_text(tmp_path, "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 > S 0:0(1)\n")
    assert r.status == "ERROR"
    assert r.message == (f"{tmp_path / 't.pkt'}:2:8: inconsistent TCP sequence numbers: 0:0 is "
                         "0 bytes, not 1")


@pytest.mark.skipif(stacklab.tier() != "pure Python", reason="replaces TcpLayer.receive_view: "
                    "the compiled tier's callers do not look it up")
def test_an_exception_escaping_the_stack_is_a_fail_not_a_crash(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stacklab.stack.tcp import layer

    def boom(*args: object, **kw: object) -> None:
        raise RuntimeError("boom")
    monkeypatch.setattr(layer.TcpLayer, "receive_view", boom)
    r = run_text(tmp_path, SERVER)
    assert r.status == "FAIL" and r.line == 5
    assert r.message.endswith("stacklab raised RuntimeError: boom")


def test_sixty_seconds_of_time_wait_take_no_real_time(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    r = run_text(tmp_path, SERVER + "+0 close(4) = 0\n+0 > F. 1:1(0) ack 1\n"
                 "+0 < F. 1:1(0) ack 2 win 65535\n+0 > . 2:2(0) ack 2\n"
                 "+61 < . 2:2(0) ack 2 win 65535\n+0 > R 2:2(0)\n")
    assert r.status == "PASS", r.message
    assert r.virtual_time == pytest.approx(61.01)
    assert time.perf_counter() - t0 < 2.0


def test_sysctl_commands_map_through_the_table(tmp_path: Path) -> None:
    sh = tmp_path / "defaults.sh"
    sh.write_text("#!/bin/sh\nsysctl -q net.ipv4.tcp_rmem=\"4096 87380 $((6*1024*1024))\"\n"
                  "ip tcp_metrics flush all > /dev/null 2>&1\n")
    found, ignored = sysctl.commands_in(
        "sysctl -q net.ipv4.tcp_sack=0 net.core.somaxconn=10; ./defaults.sh; "
        "../x/set_sysctls.py /proc/sys/net/ipv4/tcp_timestamps=0", tmp_path)
    assert found == [("net.ipv4.tcp_sack", "0"), ("net.core.somaxconn", "10"),
                     ("net.ipv4.tcp_rmem", "4096 87380 6291456"),
                     ("net.ipv4.tcp_timestamps", "0")]
    assert ignored == ["ip tcp_metrics flush all > /dev/null 2>&1"]
    h = Host("h")
    assert [sysctl.apply(h, n, v) for n, v in found] == [
        None, "net.core.somaxconn=10: no stacklab knob for it (not in stacklab's sysctl table; "
        "`stacklab run --list` lists them)", None, None]
    assert (h.tcp.config.sack, h.tcp.config.rmem, h.tcp.config.timestamps) == (
        False, (4096, 87380, 6291456), False)
    assert h.sysctl["net.ipv4.tcp_rmem"] == "4096 87380 6291456"
    assert sysctl.apply(h, "net.ipv4.tcp_sack", "2") == \
        "net.ipv4.tcp_sack=2: bad value '2': expected 0 or 1"


def test_sysctl_command_continued_over_lines() -> None:
    # a backslash-newline continues the shell line: every assignment of set_sysctls.py counts
    # (the second one used to be dropped as a command of its own)
    found, ignored = sysctl.commands_in(
        "../common/set_sysctls.py /proc/sys/net/ipv4/tcp_slow_start_after_idle=1 \\\n"
        "\t\t\t /proc/sys/net/ipv4/tcp_min_tso_segs=10")
    assert found == [("net.ipv4.tcp_slow_start_after_idle", "1"),
                     ("net.ipv4.tcp_min_tso_segs", "10")]
    assert ignored == []


def test_a_failing_sysctl_falls_back_to_the_other_side_of_or() -> None:
    # `a || b` runs b when a fails: a sysctl of a key no kernel table has fails as Linux's does
    # (upstream fastopen/client/nonblocking-sendto.pkt flushes its cookie cache this way)
    found, ignored = sysctl.commands_in(
        "sysctl -q net.ipv4.tcp_vendor_knob=0 &> /dev/null ||\\\n ip tcp_metrics flush all")
    assert (found, ignored) == ([], ["ip tcp_metrics flush all"])
    found, ignored = sysctl.commands_in("sysctl -q net.ipv4.tcp_sack=0 || ip tcp_metrics flush")
    assert (found, ignored) == ([("net.ipv4.tcp_sack", "0")], [])


def test_a_backtick_sysctl_reaches_the_wire(tmp_path: Path) -> None:
    # tcp_syn_retries=1 (the scripts' default is 5): one SYN retransmission, then ETIMEDOUT
    # at 1 + 2 s, as Linux
    script = ("`sysctl -q net.ipv4.tcp_syn_retries=1 net.ipv4.tcp_sack=0 "
              "net.ipv4.tcp_timestamps=0`\n"
              "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
              "+0...3 connect(3, ..., ...) = -1 ETIMEDOUT (Connection timed out)\n"
              "+0 > S 0:0(0) <mss 1460,nop,wscale 8>\n"
              "+1 > S 0:0(0) <mss 1460,nop,wscale 8>\n")
    r = run_text(tmp_path, script)
    assert r.status == "PASS", r.message
    assert r.virtual_time == pytest.approx(3.0)
    r = run_text(tmp_path, script.replace("tcp_syn_retries=1", "tcp_syn_retries=2"))
    assert r.status == "FAIL"  # a third SYN where the script expects the timeout


def test_unknown_commands_are_notes_not_failures(tmp_path: Path) -> None:
    r = run_text(tmp_path, "`nstat -n`\n"
                 "`sysctl -q net.ipv4.tcp_thin_linear_timeouts=1`\n"
                 "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    assert r.status == "PASS"
    assert "command ignored: nstat -n" in r.notes
    want = "sysctl net.ipv4.tcp_thin_linear_timeouts=1: no stacklab knob"
    assert any(n.startswith(want) for n in r.notes)


def test_a_bad_header_option_is_an_error_not_a_crash(tmp_path: Path) -> None:
    r = run_text(tmp_path, "--local_ip=nonsense\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    assert r.status == "ERROR" and "bad option" in r.message
    r = run_text(tmp_path, "--ip_version=ipv5\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n")
    assert r.status == "UNSUPPORTED" and "--ip_version=ipv5" in r.message


@pytest.mark.parametrize("spec, status", [
    ("+0.18~+0.22", "PASS"),  # the retransmission leaves one RTO (200 ms) after the data
    ("0.3~0.32", "PASS"),  # absolute: the data left at 0.11
    ("*", "PASS"),
    ("+0~+0.1", "FAIL"),
])
def test_time_ranges_and_any_time(tmp_path: Path, spec: str, status: str) -> None:
    r = run_text(tmp_path, SERVER + "+0.1 write(4, ..., 1000) = 1000\n+0 > P. 1:1001(1000) ack 1\n"
                 f"{spec} > P. 1:1001(1000) ack 1\n")
    assert r.status == status, r.message


def test_code_blocks_share_one_namespace_and_ssthresh_starts_infinite(tmp_path: Path) -> None:
    # packetdrill runs a script's %{ }% blocks in one Python namespace; a fresh connection's
    # ssthresh is Linux's TCP_INFINITE_SSTHRESH
    r = run_text(tmp_path, SERVER + "+0 %{ INF = 0x7fffffff }%\n"
                 "+0 %{ assert tcpi_snd_ssthresh == INF, tcpi_snd_ssthresh }%\n")
    assert r.status == "PASS", r.message


@pytest.mark.parametrize("code, status", [("CODE", "PASS"), ("code_1", "PASS"),
                                          ("host_unreachable", "PASS"), ("HOST", "FAIL")])
def test_an_unknown_icmp_code_is_refused_as_packetdrill_does(
        tmp_path: Path, code: str, status: str) -> None:
    # packetdrill reads code_N and its table's names, and rejects the script for any other
    # word; CODE is what upstream's run_all.py defines (-D CODE=host_unreachable) for IPv4
    r = run_text(tmp_path, "`sysctl -q net.ipv4.tcp_timestamps=0`\n"
                 "    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
                 "   +0...0.010 connect(3, ..., ...) = -1 EHOSTUNREACH (No route to host)\n"
                 "   +0 > S 0:0(0) <...>\n"
                 f"+0.01 < icmp unreachable {code} [0:0(0)]\n")
    assert r.status == status, r.message
    if status == "FAIL":
        assert r.line == 5 and r.message.endswith(f":5: bad ICMP code {code}")


def test_an_epoll_event_mismatch_names_the_event_and_the_field(tmp_path: Path) -> None:
    r = run_text(tmp_path, SERVER + "+0 epoll_create(1) = 5\n"
                 "+0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLIN|EPOLLOUT, fd=4}) = 0\n"
                 "+0 epoll_wait(5, {events=EPOLLIN|EPOLLOUT, fd=4}, 1, 0) = 1\n")
    assert r.status == "FAIL" and r.line == 11
    assert r.message.endswith("epoll_wait(): event 0: events: expected 0x5 vs actual 0x4")
    r = run_text(tmp_path, SERVER + "+0 epoll_create(1) = 5\n"
                 "+0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLOUT, fd=4}) = 0\n"
                 "+0 epoll_wait(5, {events=EPOLLOUT, fd=3}, 1, 0) = 1\n")
    assert r.status == "FAIL"
    assert r.message.endswith("epoll_wait(): event 0: data: expected 3 vs actual 4")


def test_files_made_by_the_script_stay_in_memory(tmp_path: Path) -> None:
    target = tmp_path / "made-by-dd"
    r = run_text(tmp_path, f"`dd bs=1 count=5 if=/dev/zero of={target}`\n" + SERVER
                 + f'+0 open("{target}", O_RDONLY) = 5\n'
                 "+0 sendfile(4, 5, [0], 10) = 5\n"
                 "+0 > P. 1:6(5) ack 1\n")
    assert r.status == "PASS", r.message
    assert not target.exists()
    assert not any("command ignored" in n for n in r.notes)


def test_a_script_named_v6_runs_over_ipv6_as_upstreams_run_all(tmp_path: Path) -> None:
    """upstream's run_all.py runs ``*v6.pkt`` over IPv6 only: the SYN's MSS is then 1500 - 60,
    and the same script under another name (IPv4 by default) fails at that line"""
    text = ("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
            "+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n"
            "+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)\n"
            "+0 > S 0:0(0) <mss 1440,sackOK,TS val 100 ecr 0,nop,wscale 8>\n")
    v6 = run_text(tmp_path, text, name="syn-mss-ipv6.pkt")
    v4 = run_text(tmp_path, text, name="syn-mss.pkt")
    assert v6.status == "PASS", v6.message
    assert v4.status == "FAIL" and "mss 1460" in v4.message
