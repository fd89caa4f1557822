"""RACK-TLP (RFC 8985) and PRR (RFC 6937) on virtual time. The packet-exact cases are our
packetdrill scripts (tests/packetdrill/scripts/rack-*.pkt, tlp-*.pkt); here: the simulator's
measure of issue 17's "a lost final segment is recovered in <= 3*SRTT (no RTO)", and PRR's
sending schedule."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacklab.scenario.runner import run_scenario
from stacklab.stack.tcp.prr import Prr
from stacklab.trace.events import Tracer

SCENARIO = """
name = "tail loss"
seed = 3
duration = "10s"

[[node]]
name = "client"
kind = "host"
{sysctl}

[[node]]
name = "server"
kind = "host"

[[link]]
ends = ["client", "server"]
delay = "20ms"
forward = {{ drop_nth = {drops}, drop_count = "tcp-data" }}

[[app]]
node = "server"
kind = "tcp-sink"
port = 5001

[[app]]
node = "client"
kind = "tcp-send"
to = "server"
port = 5001
bytes = 14480   # 10 segments of 1448 bytes, the initial window; the FIN rides on the last
start = "1s"
"""


def _tail(tmp_path: Path, drops: list[int], sysctl: str = "") -> tuple[dict, list]:
    path = tmp_path / "tail.toml"
    path.write_text(SCENARIO.format(drops=drops, sysctl=sysctl))
    tracer = Tracer()
    s = run_scenario(path, tracer=tracer)
    (send,) = [a for a in s["apps"] if a["kind"] == "tcp-send"]
    (sink,) = [a for a in s["apps"] if a["kind"] == "tcp-sink"]
    assert send["ok"] and sink["sha256"] == send["sha256"]
    client = [e for e in tracer.events if e.node == "client" and e.layer == "tcp"]
    return send, client


def test_lost_final_segment_recovered_within_three_srtt(tmp_path: Path) -> None:
    # the last two segments of the transfer are lost (the last one carries the FIN): the ACKs of
    # the first eight leave the connection idle with two segments unacknowledged
    send, ev = _tail(tmp_path, [9, 10])
    assert send["rto_expiries"] == 0
    (probe,) = [e for e in ev if e.event == "tlp"]
    last_ack = max(e.time for e in ev if e.event == "ack" and e.time < probe.time)
    srtt = [e.details["srtt"] for e in ev if e.event == "rtt" and e.time <= last_ack][-1]
    assert probe.time - last_ack == pytest.approx(2 * srtt + 0.002)  # PTO (RFC 8985 §7.2)
    # the ACK that shows the final segment delivered (SACKed, the segment before it now lost)
    final = 13033  # relative sequence number of the final segment
    seen = min(e.time for e in ev if e.event == "ack" and e.time > probe.time and (
        e.details["ack"] > final or any(lo <= final < hi for lo, hi in e.details["sack"])))
    assert seen - last_ack <= 3 * srtt
    # and RACK, told by that SACK, resends the segment before it at once (fast recovery)
    assert [e.details["why"] for e in ev if e.event == "retransmit"] == ["tlp", "sack"]
    assert send["fast_retransmits"] == 1 and send["retransmits"] == 2


def test_single_lost_final_segment_probe_replaces_the_rto(tmp_path: Path) -> None:
    # one segment in flight: PTO = 2*SRTT + the peer's delayed-ACK allowance (200 ms), never
    # later than the RTO, so the probe goes at the RTO's time instead of a timeout
    send, ev = _tail(tmp_path, [10])
    assert send["rto_expiries"] == 0 and send["retransmits"] == 1
    assert [e.details["why"] for e in ev if e.event == "retransmit"] == ["tlp"]


def test_without_loss_probes_the_rto_recovers_the_tail(tmp_path: Path) -> None:
    send, ev = _tail(tmp_path, [9, 10], sysctl='sysctl = { "net.ipv4.tcp_early_retrans" = 0 }')
    assert send["rto_expiries"] == 1
    assert not [e for e in ev if e.event == "tlp"]


def test_prr_proportional_part_sends_one_segment_per_two_delivered() -> None:
    # RFC 6937 §3 with Reno's ssthresh = RecoverFS / 2: while pipe > ssthresh the sender sends
    # CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out, one segment for every two delivered
    prr = Prr()
    prr.start(20)
    pipe, sent = 19, []
    for _ in range(8):  # each ACK delivers one segment
        pipe -= 1
        cwnd = prr.cwnd(10, pipe, 1, una_advanced=False, newly_lost=False)
        assert cwnd is not None
        n = cwnd - pipe
        sent.append(n)
        prr.out += n
        pipe += n
    assert sent == [1, 0, 1, 0, 1, 0, 1, 0]


def test_prr_slow_start_reduction_bound_once_pipe_is_below_ssthresh() -> None:
    # pipe far below ssthresh (a burst of losses): SSRB lets pipe grow back by at most
    # DeliveredData + 1 per ACK that advances SND.UNA, never beyond ssthresh
    prr = Prr()
    prr.start(10)
    prr.out = 1  # the fast retransmit went out
    pipe = 1
    assert prr.cwnd(5, pipe, 1, una_advanced=True, newly_lost=False) == pipe + 2
    assert prr.cwnd(5, 4, 3, una_advanced=True, newly_lost=False) == 5  # capped at ssthresh
    assert prr.cwnd(5, 3, 0, una_advanced=False, newly_lost=False) is None  # nothing delivered


def test_prr_conservative_bound_for_ecns_cwr_reduction() -> None:
    # ECN's CWR reduction (ecn.py) is this PRR with the Conservative Reduction Bound, as the
    # upstream cwnd-moderation-ecn-enter-cwr-no-moderation-700 shows: 3 in flight, ssthresh 7,
    # one segment delivered: cwnd 3 + 1 (SSRB would give 3 + 2)
    prr = Prr()
    prr.start(10)
    prr.out = 1
    assert prr.cwnd(7, 3, 1, una_advanced=True, newly_lost=False, crb=True) == 4
    assert prr.cwnd(7, 3, 1, una_advanced=True, newly_lost=False) == 5


def test_prr_first_ack_of_an_episode_lets_the_fast_retransmit_out() -> None:
    prr = Prr()
    prr.start(10)
    # pipe already at ssthresh: SSRB allows nothing, but the episode's first segment goes
    assert prr.cwnd(7, 7, 1, una_advanced=False, newly_lost=True) == 8
    prr.out = 1
    assert prr.cwnd(7, 7, 1, una_advanced=False, newly_lost=True) == 7
