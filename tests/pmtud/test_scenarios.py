"""The PMTU example scenarios, each checked from its pcaps by tshark (issue 7 "Tests").

Captures at ``tx`` give the time a frame was sent: a data packet sent by the client after the
ICMP signal reached it (ICMP send time + link delay) must fit the path MTU the signal taught.
"""

from __future__ import annotations

import pytest

from .conftest import apps_by, need_tshark, run_example, rx, tshark, tx


def _ok_transfer(s, sender, sink, nbytes=1_000_000):
    (send,) = apps_by(s, "tcp-send", sender)
    (recv,) = apps_by(s, "tcp-sink", sink)
    assert send["ok"], send
    conns = [c for c in recv["conns"] if c.get("eof")]
    assert any(c["bytes"] == nbytes and c["sha256"] == send["sha256"] for c in conns), recv
    return send


def _after_signal_sizes(tx_pcap, src_filter, icmp_rows, delay, family=4):
    """Sizes of the data packets the client sent after each ICMP signal reached it."""
    len_field = "ip.len" if family == 4 else "ipv6.plen"
    rows = tshark(tx_pcap, ["frame.time_relative", len_field], f"{src_filter} && tcp.len > 0")
    checks = []
    for sig in icmp_rows:
        arrived = float(sig["frame.time_relative"]) + delay + 0.0005
        mtu = int(sig["mtu"])
        sizes = [int(r[len_field]) + (0 if family == 4 else 40) for r in rows
                 if float(r["frame.time_relative"]) > arrived]
        checks.append((mtu, sizes))
    return rows, checks


def test_pmtud_v4(tmp_path, monkeypatch):
    need_tshark()
    s = run_example("pmtud-v4", tmp_path, monkeypatch)
    send = _ok_transfer(s, "a", "b")
    assert send["mss"] == 1260 - 12  # MSS 1260, timestamps take 12
    txp = tx(tmp_path, "a-r1")
    icmp = tshark(txp, ["frame.time_relative", "ip.src", "icmp.type", "icmp.code", "icmp.mtu",
                       "ip.checksum.status"], "icmp")
    assert icmp and {(r["icmp.type"], r["icmp.code"]) for r in icmp} == {("3", "4")}
    senders = {}
    for r in icmp:
        senders.setdefault(r["icmp.mtu"], set()).add(r["ip.src"].split(",")[0])
    assert senders == {"1400": {"10.0.1.2"}, "1300": {"10.0.2.2"}}  # r1, then r2
    # DF on every TCP segment a sends (and b)
    df = tshark(txp, ["ip.flags.df"], "tcp && !icmp && ip.src == 10.0.1.1")
    assert df and all(r["ip.flags.df"] == "1" for r in df)
    # SYN announces 1460; the data: 1448 (1500), then 1348 (1400), then 1248 (1300) bytes
    syn = tshark(txp, ["tcp.options.mss_val"], "tcp.flags.syn == 1")
    assert {r["tcp.options.mss_val"] for r in syn} == {"1460"}
    lens = [int(r["tcp.len"])
            for r in tshark(txp, ["tcp.len"], "ip.src == 10.0.1.1 && tcp.len > 0")]
    assert {1448, 1348, 1248} <= set(lens) and max(lens) == 1448
    first = {m: min(float(r["frame.time_relative"]) for r in icmp if r["icmp.mtu"] == m)
             for m in ("1400", "1300")}
    first_rows = [{"frame.time_relative": t, "mtu": m} for m, t in first.items()]
    rows, checks = _after_signal_sizes(txp, "ip.src == 10.0.1.1", first_rows, 0.002)
    for mtu, sizes in checks:
        assert sizes and max(sizes) <= mtu, (mtu, max(sizes))
    # the too-big segments were resent at once, not after an RTO (>= 200 ms)
    t_sig = float(first["1400"]) + 0.002
    resent = [float(r["frame.time_relative"]) for r in rows
              if float(r["frame.time_relative"]) > t_sig]
    assert resent[0] - t_sig < 0.005
    # nothing on the narrow links exceeds their MTU; checksums good end to end
    for link, mtu in (("r1-r2", 1400), ("r2-r3", 1300)):
        sizes = tshark(rx(tmp_path, link), ["ip.len", "tcp.checksum.status"], "tcp && !icmp")
        assert max(int(r["ip.len"]) for r in sizes) <= mtu
        assert all(r["tcp.checksum.status"] == "1" for r in sizes)  # 1 = Good
    (conn,) = [c for c in s["connections"] if c["node"] == "a"]
    assert conn["pmtu"] == 1300 and conn["mss"] == 1248


def test_pmtud_v6_packet_too_big_down_to_1280(tmp_path, monkeypatch):
    need_tshark()
    s = run_example("pmtud-v6", tmp_path, monkeypatch)
    send = _ok_transfer(s, "a", "b")
    assert send["mss"] == 1220 - 12
    txp = tx(tmp_path, "a-r1")
    ptb = tshark(txp, ["frame.time_relative", "ipv6.src", "icmpv6.type", "icmpv6.code",
                      "icmpv6.mtu", "icmpv6.checksum.status"], "icmpv6.type == 2")
    assert {r["icmpv6.mtu"] for r in ptb} == {"1400", "1280"}
    assert all(r["icmpv6.code"] == "0" and r["icmpv6.checksum.status"] == "1" for r in ptb)
    syn = tshark(txp, ["tcp.options.mss_val"], "tcp.flags.syn == 1")
    assert {r["tcp.options.mss_val"] for r in syn} == {"1440"}
    first = [{"frame.time_relative": min(float(r["frame.time_relative"]) for r in ptb
                                         if r["icmpv6.mtu"] == m), "mtu": m}
             for m in ("1400", "1280")]
    _, checks = _after_signal_sizes(txp, "ipv6.src == fd00:0:0:1::1", first, 0.002, family=6)
    for mtu, sizes in checks:
        assert sizes and max(sizes) <= int(mtu)
    # routers never fragment IPv6: no Fragment header on any link, and none were needed
    for link in ("a-r1", "r1-r2", "r2-r3", "r3-b"):
        assert tshark(rx(tmp_path, link), ["frame.number"], "ipv6.fraghdr") == []
    for link, mtu in (("r1-r2", 1400), ("r2-r3", 1280)):
        rows = tshark(rx(tmp_path, link), ["ipv6.plen"], "ipv6 && !icmpv6")
        assert max(int(r["ipv6.plen"]) + 40 for r in rows) <= mtu


def test_fragmentation_v4(tmp_path, monkeypatch):
    need_tshark()
    s = run_example("fragmentation-v4", tmp_path, monkeypatch)
    (send,) = apps_by(s, "udp-send", "a")
    (sink,) = apps_by(s, "udp-sink", "b")
    assert send["ok"] and sink["datagrams"] == 4 and sink["sha256"] == send["sha256"]
    fields = ["ip.id", "ip.flags.df", "ip.flags.mf", "ip.frag_offset", "ip.len",
              "ip.checksum.status"]
    first_hop = tshark(rx(tmp_path, "a-r"), fields, "ip.src == 10.0.1.1")
    narrow = tshark(rx(tmp_path, "r-b"), fields, "ip.src == 10.0.1.1")
    # a fragments 3028 bytes of IP payload for its 1500 link: 1480 + 1480 + 28 (3 per datagram)
    assert len(first_hop) == 4 * 3
    # (tshark shows the offset field in its 8-byte units)
    assert sorted({int(r["ip.frag_offset"]) * 8 for r in first_hop}) == [0, 1480, 2960]
    # r fragments again for 576: every fragment fits, offsets are multiples of 8, no DF
    assert all(int(r["ip.len"]) <= 576 for r in narrow)
    assert all(r["ip.flags.df"] == "0" for r in narrow)
    assert all(r["ip.checksum.status"] == "1" for r in narrow)
    ids = {r["ip.id"] for r in narrow}
    assert len(ids) == 4 and len(narrow) > len(first_hop)
    for ident in ids:
        frs = sorted((int(r["ip.frag_offset"]) * 8, int(r["ip.len"]) - 20, r["ip.flags.mf"])
                     for r in narrow if r["ip.id"] == ident)
        assert frs[0][0] == 0 and frs[-1][2] == "0"
        assert all(f[2] == "1" for f in frs[:-1])
        pos = 0
        for off, n, _ in frs:  # contiguous, no holes, no overlaps
            assert off == pos
            pos += n
        assert pos == 3008  # 8 UDP header + 3000
    routers = s["nodes"]["r"]["counters"]
    assert routers["ipv4.fragmented"] == 4 * 2  # the two 1480-byte fragments of each datagram
    assert s["nodes"]["b"]["counters"]["ipv4.reassembled"] == 4


def test_pmtud_blackhole_classic_stalls_plpmtud_recovers(tmp_path, monkeypatch):
    need_tshark()
    s = run_example("pmtud-blackhole", tmp_path, monkeypatch)
    (c1,) = apps_by(s, "tcp-send", "c1")
    (c2,) = apps_by(s, "tcp-send", "c2")
    assert not c1["ok"] and "still running" in c1["error"]  # classic PMTUD: stuck
    send = _ok_transfer(s, "c2", "srv")
    assert send["elapsed"] < 10.0  # bounded virtual time (it took ~5 s)
    assert s["links"]["c2-r1"]["r1>c2"]["drop.icmp_blackhole"] > 0
    assert s["links"]["c1-r1"]["r1>c1"]["drop.icmp_blackhole"] > 0
    # c2 never received an ICMP error; c1 too
    for link in ("c1-r1", "c2-r1"):
        assert tshark(rx(tmp_path, link), ["frame.number"], "icmp") == []
    c1_sizes = [int(r["ip.len"]) for r in tshark(rx(tmp_path, "c1-r1"), ["ip.len"],
                                                  "ip.src == 10.0.1.1 && tcp.len > 0")]
    assert c1_sizes and set(c1_sizes) == {1500}  # the same full-size segments, again and again
    sizes = [int(r["ip.len"]) for r in tshark(rx(tmp_path, "c2-r1"), ["ip.len"],
                                               "ip.src == 10.0.2.1 && tcp.len > 0")]
    assert sizes[0] == 1500
    assert 1064 in sizes  # the black-hole fallback: base MSS 1024 + 40
    assert any(1064 < n <= 1280 for n in sizes)  # probes that got through
    steady = max(sizes[-50:])
    assert 1280 - 8 <= steady <= 1280  # converged within the probe threshold of the path MTU
    # the 1280 link never carried more than 1280 and nothing bigger got past r1
    rows = tshark(rx(tmp_path, "r1-r2"), ["ip.len"], "ip")
    assert max(int(r["ip.len"]) for r in rows) <= 1280


def test_mss_clamp(tmp_path, monkeypatch):
    need_tshark()
    s = run_example("mss-clamp", tmp_path, monkeypatch)
    send = _ok_transfer(s, "c", "srv")
    assert send["retransmits"] == 0 and send["mss"] == 1360 - 12
    fields = ["ip.src", "tcp.flags.ack", "tcp.options.mss_val", "tcp.checksum.status"]
    client_side = tshark(rx(tmp_path, "c-r1"), fields, "tcp.flags.syn == 1")
    narrow_side = tshark(rx(tmp_path, "r1-r2"), fields, "tcp.flags.syn == 1")
    mss = {(r["ip.src"], r["tcp.flags.ack"]): r["tcp.options.mss_val"] for r in client_side}
    assert mss == {("10.0.1.1", "0"): "1460", ("10.0.3.2", "1"): "1360"}  # SYN out, SYN,ACK in
    mss = {(r["ip.src"], r["tcp.flags.ack"]): r["tcp.options.mss_val"] for r in narrow_side}
    assert mss == {("10.0.1.1", "0"): "1360", ("10.0.3.2", "1"): "1460"}
    # the rewritten SYNs carry correct checksums (tshark: 1 = good)
    assert all(r["tcp.checksum.status"] == "1" for r in client_side + narrow_side)
    assert s["nodes"]["r1"]["counters"]["tcp.mss_clamped"] == 2
    # no ICMP needed anywhere, and nothing over the 1400 link MTU
    for link in ("c-r1", "r1-r2", "r2-srv"):
        assert tshark(tx(tmp_path, link), ["frame.number"], "icmp") == []
    rows = tshark(rx(tmp_path, "c-r1"), ["ip.len"], "ip.src == 10.0.1.1")
    assert max(int(r["ip.len"]) for r in rows) == 1400


@pytest.mark.parametrize("name", ["pmtud-v4", "pmtud-v6", "fragmentation-v4", "mss-clamp"])
def test_examples_exit_zero_from_the_cli(name, capsys):
    from stacklab.cli.main import main

    from .conftest import EXAMPLES

    assert main(["run", str(EXAMPLES / f"{name}.toml")]) == 0
    assert "FAIL" not in capsys.readouterr().out
