"""Accurate ECN (RFC 9768, stacklab.stack.tcp.accecn) on virtual time.

End to end: an AccECN bulk flow through a CoDel bottleneck that marks CE (``ecn = true``) slows
down without a loss, and each side's counters agree with the other's (the CE marks the
receiver counted are those the sender inferred from the ACE field; the CE bytes the
receiver's option reported are the sender's); its capture decodes in tshark as in our own
parser (AE flag, ACE, the AccECN option's counters). The Data Sender's wrap rule with and
without the option is checked on one connection object. The packet-level rules (negotiation
tables, fallbacks, ACE per segment, one reduction per window, the conservative wrap rule) are
the tests/packetdrill/scripts/accecn-*.pkt scripts.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from stacklab.device.pcap import read_pcap
from stacklab.scenario.runner import run_scenario
from stacklab.stack.tcp.accecn import AccEcn, ace
from stacklab.stack.tcp.config import TcpConfig, TcpStats
from stacklab.stack.tcp.ecn import CE, ECT0
from stacklab.stack.tcp.rtt import RttEstimator
from stacklab.stack.tcp.segment import Segment
from stacklab.testing import require_tool
from stacklab.wire.ethernet import EthernetView
from stacklab.wire.ipv4 import IPv4View
from stacklab.wire.tcp import ACK, AE, CWR, ECE, SYN, AccEcnOpt, TcpView

SCENARIO = """
seed = 1
duration = "30s"

[[node]]
name = "a"
kind = "host"
sysctl = { "net.ipv4.tcp_ecn" = "3" }

[[node]]
name = "r"
kind = "router"

[[node]]
name = "b"
kind = "host"
sysctl = { "net.ipv4.tcp_ecn" = "3" }

[[link]]
ends = ["a", "r"]
delay = "1ms"
rate = "100Mbit"

[[link]]
ends = ["r", "b"]
delay = "9ms"
forward = { rate = "10Mbit", aqm = "codel", ecn = true }

[[app]]
node = "b"
kind = "tcp-sink"
port = 5001

[[app]]
node = "a"
kind = "tcp-send"
to = "b"
port = 5001
bytes = BYTES
"""


def bulk(tmp_path: Path, nbytes: int, pcap: str | None = None) -> dict[str, Any]:
    path = tmp_path / "accecn.toml"
    path.write_text(SCENARIO.replace("BYTES", str(nbytes)))
    s = run_scenario(str(path), pcap=pcap)
    assert all(app["ok"] for app in s["apps"]), s["apps"]
    return s


def test_codel_marks_and_both_sides_count_them_alike(tmp_path: Path) -> None:
    s = bulk(tmp_path, 4_000_000)
    send = next(app for app in s["apps"] if app["kind"] == "tcp-send")
    queue = s["queues"]["r-b"]["r>b"]
    rx = next(c for c in s["connections"] if c["node"] == "b")["ecn"]
    tx = next(c for c in s["connections"] if c["node"] == "a")["ecn"]
    assert rx["mode"] == tx["mode"] == "accecn" and rx["option_seen"] and tx["option_seen"]
    assert queue["marks_ce"] > 1 and queue["drops_aqm"] == queue["drops_overflow"] == 0
    assert send["retransmits"] == 0 and send["rto_expiries"] == 0
    # the receiver counted every mark; the sender learnt each from the ACE field
    assert rx["ce_in"] == queue["marks_ce"] == tx["ce_delivered"] == send["ecn"]["ce_delivered"]
    # the byte counters: what the receiver counted is what its options told the sender
    assert rx["bytes_in"] == tx["bytes_delivered"]
    assert rx["bytes_in"]["ceb"] == queue["marks_ce"] * send["mss"]
    assert rx["bytes_in"]["e0b"] + rx["bytes_in"]["ceb"] == 4_000_000
    # one response per window at most; the 12 bytes of the option come out of the MSS
    assert 0 < tx["reductions"] <= queue["marks_ce"]
    assert send["mss"] == 1460 - 12 - 12
    assert send["throughput_bps"] > 8_500_000 and queue["sojourn_p90_ms"] < 40


def _tshark_fields(pcap: Path, fields: list[str]) -> list[list[str]]:
    tshark = require_tool("tshark", package="tshark")
    argv = [tshark, "-n", "-r", str(pcap), "-Y", "tcp", "-T", "fields", "-E", "occurrence=f"]
    for f in fields:
        argv += ["-e", f]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return [line.split("\t") for line in r.stdout.splitlines()]


def test_the_capture_decodes_in_tshark_as_in_our_parser(tmp_path: Path) -> None:
    bulk(tmp_path, 400_000, pcap=str(tmp_path))
    pcap = next(p for p in sorted(tmp_path.glob("*.pcap")) if "r-b" in p.name)
    ours = []
    for rec in read_pcap(str(pcap))[1]:
        eth = EthernetView(rec.data)
        if eth.ethertype != 0x0800:
            continue  # ARP
        ip = IPv4View(eth.payload)
        v = TcpView(ip.payload)
        opt = next((o for o in v.options() if isinstance(o, AccEcnOpt)), None)
        c = opt.counters() if opt is not None else {}
        # the flags word, the ACE field outside the handshake (tshark decodes it as such once
        # it saw AccECN negotiated), the IP-ECN field, the option's counters
        ours.append([str(v.flags), "" if v.flags & SYN else str(ace(v.flags)), str(ip.ecn),
                     *(str(c[k]) if k in c else "" for k in ("e0b", "ceb", "e1b"))])
    theirs = [[str(int(f[0], 0)), f[1], str(int(f[2], 0)), *f[3:6]]
              for f in _tshark_fields(pcap, ["tcp.flags", "tcp.flags.ace", "ip.dsfield.ecn",
                                             "tcp.options.acc_ecn.ee0b",
                                             "tcp.options.acc_ecn.eceb",
                                             "tcp.options.acc_ecn.ee1b"])]
    assert ours == theirs
    assert any(row[3] for row in ours) and any(row[2] == str(CE) for row in ours)
    assert any(int(row[0]) & AE for row in ours)


class _Tcb:
    """The few TCB fields the AccECN receive path reads, for one ACK at a time."""

    def __init__(self) -> None:
        self.config = TcpConfig(ecn=3)
        self.stats = TcpStats()
        self.rtt = RttEstimator(1.0, 0.2, 120.0)
        self.snd_una, self.snd_max, self.snd_mss = 1, 10_001, 1000
        self._ack_now, self.quick_acks, self.pingpong, self.ato = False, 0, False, 0.04
        self.recover = self.rto_recover = None


def _sender_after_handshake() -> tuple[AccEcn, _Tcb]:
    acc = AccEcn(TcpConfig(ecn=3))
    acc.third_ack = False
    acc.opt_seen = True
    return acc, _Tcb()


def _ack(ack: int, ace_value: int, ceb: int | None) -> Segment:
    seg = Segment(1, ack, ACK | (ace_value << 6 & (AE | CWR | ECE)), 60000)
    if ceb is not None:
        seg._aco = AccEcnOpt(1, (1, ceb, 1))
    return seg


def test_an_ack_of_many_segments_is_read_with_the_options_counters() -> None:
    # 10 segments acknowledged, ACE unchanged (0b101): a wrap is possible; the option's CE
    # byte counter, unchanged too, says there was none
    acc, tcb = _sender_after_handshake()
    acc.on_segment(tcb, _ack(10_001, 5, 0), ECT0)  # type: ignore[arg-type]
    assert acc.s_cep == 0 and not acc.ece
    # without the option the same ACK counts as 8 marks (the conservative rule)
    acc, tcb = _sender_after_handshake()
    acc.on_segment(tcb, _ack(10_001, 5, None), ECT0)  # type: ignore[arg-type]
    assert acc.s_cep == 8 and acc.ece and tcb.stats.accecn_ce_delivered == 8
    # ACE + 1 with 9 segments' worth of CE bytes: the field wrapped once, 9 marks
    acc, tcb = _sender_after_handshake()
    acc.on_segment(tcb, _ack(10_001, 6, 9000), ECT0)  # type: ignore[arg-type]
    assert acc.s_cep == 9
    # ACE + 1 with one segment's worth: one mark
    acc, tcb = _sender_after_handshake()
    acc.on_segment(tcb, _ack(10_001, 6, 1000), ECT0)  # type: ignore[arg-type]
    assert acc.s_cep == 1


def test_the_options_24_bit_counters_wrap() -> None:
    acc, tcb = _sender_after_handshake()
    acc.s_bytes[CE] = 0xFFFFF0
    tcb.snd_max = 2001
    acc.on_segment(tcb, _ack(2001, 7, 0x000010), ECT0)  # type: ignore[arg-type]
    assert acc.s_bytes[CE] == 0x1000010 and acc.s_cep == 2


def test_the_example_runs_accecn_and_classic_ecn_side_by_side() -> None:
    """examples/accecn-codel.toml: what its comment promises."""
    s = run_scenario(Path(__file__).resolve().parents[3] / "examples" / "accecn-codel.toml")
    assert all(app["ok"] and not app.get("retransmits") for app in s["apps"])
    ecn = {(c["node"], c["ecn"].get("mode", "ecn")): c["ecn"] for c in s["connections"]}
    assert set(ecn) == {("accecn", "accecn"), ("classic", "ecn"), ("server", "accecn"),
                        ("server", "ecn")}
    assert ecn["server", "accecn"]["ce_in"] == ecn["accecn", "accecn"]["ce_delivered"] > 0
    assert ecn["server", "accecn"]["bytes_in"] == ecn["accecn", "accecn"]["bytes_delivered"]
    assert ecn["server", "ecn"]["ce_in"] > 0
    assert ecn["accecn", "accecn"]["reductions"] > 0 and ecn["classic", "ecn"]["reductions"] > 0
    marks = s["queues"]["bottleneck"]["r>server"]["marks_ce"]
    assert marks == ecn["server", "accecn"]["ce_in"] + ecn["server", "ecn"]["ce_in"]


def _emitted(acc: AccEcn, tcb: _Tcb, now: float) -> AccEcnOpt | None:
    seg = Segment(1, 1, ACK, 60000, ts=(1, 2))
    acc.on_emit(tcb, seg, now)  # type: ignore[arg-type]
    assert seg.ecn == ECT0 and ace(seg.flags) == acc.r_cep & 7
    return seg.accecn()


def test_when_the_option_goes() -> None:
    """net.ipv4.tcp_ecn_option: 2 on every segment, 1 on the two after a change and as a beacon
    (tcp_ecn_option_beacon per SRTT), 0 never; none before the peer sent one."""
    tcb = _Tcb()
    tcb.rtt.update(0.1)
    acc = AccEcn(TcpConfig(ecn=3, ecn_option=2))
    assert _emitted(acc, tcb, 0.0) is None  # the peer's option not seen yet
    acc.opt_seen = True
    assert _emitted(acc, tcb, 0.0) == AccEcnOpt(1, (1, 0, 1))  # EE1B, ECEB, EE0B from 1, 0, 1
    acc = AccEcn(TcpConfig(ecn=3, ecn_option=0))
    acc.opt_seen = True
    assert _emitted(acc, tcb, 0.0) is None and acc.opt_reserve == 0
    acc = AccEcn(TcpConfig(ecn=3, ecn_option=1, ecn_option_beacon=3))
    acc.opt_seen, acc.third_ack, acc.prev_ecn = True, False, ECT0
    assert _emitted(acc, tcb, 0.0) is not None  # a beacon: none sent yet this SRTT / 3
    assert _emitted(acc, tcb, 0.01) is None
    acc.on_segment(tcb, Segment(1, 1, ACK | AE | ECE, 60000, b"x" * 100), CE)  # type: ignore
    assert _emitted(acc, tcb, 0.02) == AccEcnOpt(1, (1, 100, 1))  # a change: two options
    assert _emitted(acc, tcb, 0.02) is not None and _emitted(acc, tcb, 0.02) is None
    assert _emitted(acc, tcb, 0.06) is not None  # the next beacon, SRTT / 3 later
