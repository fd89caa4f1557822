"""Every tour step runs and shows what its text claims, measured from the run."""

from __future__ import annotations

import functools

import pytest
from rich.cells import cell_len

from stacklab.tour import runner
from stacklab.tour.texts import ORDER


@functools.cache
def result(name: str) -> runner.StepResult:
    return runner.run_step(name, runner.StepContext())


def test_every_step_of_the_seed_is_there_in_order():
    assert runner.available() == ORDER


@pytest.mark.parametrize("name", ORDER)
def test_step_output_fits_80_columns(name):
    res = result(name)
    assert res.diagram and res.svg.startswith("<svg") and res.facts
    for lang in ("en", "ko"):
        text = runner.render_step(name, res, lang, 1, len(ORDER))
        wide = [line for line in text.splitlines() if cell_len(line) > 80]
        assert not wide, wide


def test_korean_text():
    text = runner.render_step("tcp-handshake", result("tcp-handshake"), "ko", 1, 1)
    assert any("\uac00" <= ch <= "\ud7a3" for ch in text)
    text = runner.render_step("tcp-handshake", result("tcp-handshake"), "en", 1, 1)
    assert not any("\uac00" <= ch <= "\ud7a3" for ch in text)


def test_fragmentation_counts_and_reassembly():
    f = result("mtu-fragmentation").facts
    # 3008 bytes of UDP: a makes 1480+1480+48; r cuts each 1480 into 552+552+376 for MTU 576
    assert f["fragments a -> r"] == 3 and f["fragments r -> b"] == 7
    assert f["largest packet on r-b"] <= 576
    assert f["fragment offsets r -> b"] == [0, 552, 1104, 1480, 2032, 2584, 2960]
    assert f["reassembled by b"] == 1 and f["received intact"] is True


def test_df_frag_needed():
    f = result("df-frag-needed").facts
    assert f["ICMP back to a (type, code, mtu)"] == (3, 4, 1400)
    assert f["a's path MTU to b"] == "1500 -> 1400"
    assert f["router dropped (frag needed)"] == 1
    assert "too long" in f["same size again"]
    assert f["b received"] == "1372 bytes"


def test_ipv6_packet_too_big():
    f = result("ipv6-ptb").facts
    assert f["Packet Too Big MTU"] == 1280 and f["a's path MTU to b"] == 1280
    assert f["fragmented by the router"] == 0
    assert f["fragments made by a (after PTB)"] == f["fragments on r-b (all from a)"] == 2
    assert f["b received intact"] is True


def test_mss_values():
    d = result("mss").data
    assert d["syn_mss"] == {4: 1460, 6: 1440}
    assert d["biggest"][4] == 1460 - (d["hdr"][4] - 20)
    assert d["biggest"][6] == 1440 - (d["hdr"][6] - 20)
    assert d["udp"] == {1472: 1, 1473: 2}


def test_pmtud_mss_values():
    res = result("pmtud")
    assert res.data["syn_mss"] == 1460
    assert res.data["fn"][0] == 1400 and res.data["fn"][-1] == 1300
    assert res.data["mss"] == [1348, 1248]  # MTU - 40 - 12 bytes of timestamps
    assert res.facts["a's path MTU to b"] == 1300
    assert res.facts["b received intact"] is True


def test_pmtud_black_hole():
    d = result("pmtud-blackhole").data
    assert d["lost_icmp"] > 0
    assert not d["c1_done"] and d["got1"] < d["total"]
    assert d["c2_done"] and d["got2"] == d["total"] and d["intact"]
    assert d["mss2"] and all(m + 52 <= 1280 for m in d["mss2"][-1:])


def test_handshake_segments_and_states():
    d = result("tcp-handshake").data
    assert d["flags"] == ["S", "S.", "."]
    assert d["dirs"] == ["client>server", "server>client", "client>server"]
    assert d["synack"][1] == (d["syn"] + 1) & 0xFFFFFFFF
    assert d["ack"] == ((d["syn"] + 1) & 0xFFFFFFFF, (d["synack"][0] + 1) & 0xFFFFFFFF)
    assert d["client"] == ["CLOSED", "SYN-SENT", "ESTABLISHED"]
    assert d["server"] == ["LISTEN", "SYN-RECEIVED", "ESTABLISHED"]
    lines = result("tcp-handshake").diagram.splitlines()
    assert any("[S] seq 0" in ln and ln.rstrip().endswith(">|") for ln in lines)
    assert any("[S.] seq 0 ack 1" in ln and "|<" in ln for ln in lines)


def test_retransmission():
    d = result("tcp-retransmit").data
    assert d["dropped"] == 2 and d["fast"] == 1 and d["rto"] == 1
    assert d["why"] == ["fast retransmit", "rto"] and d["intact"]


def test_checksum():
    d = result("checksum").data
    assert d["corrupted"] == 2 and d["tcp_bad"] == 1 and d["udp_bad"] == 1
    assert d["retx"] >= 1 and d["intact"]
    assert d["udp_got"] == [b"datagram 0", b"datagram 2"]


def test_teardown_states():
    d = result("tcp-teardown").data
    assert [f for _, f in d["segs"]] == ["F.", ".", "F.", "."]
    assert [x for x, _ in d["segs"]] == ["client>server", "server>client", "server>client",
                                         "client>server"]
    assert d["client"] == ["ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT"]
    assert d["server"] == ["ESTABLISHED", "CLOSE-WAIT", "LAST-ACK", "CLOSED"]


def test_time_wait_is_2msl_of_virtual_time():
    d = result("time-wait").data
    assert d["closed"] - d["tw"] == pytest.approx(2 * d["msl"], abs=1e-6)
    assert d["msl"] == 30.0 and d["wall"] < 5.0


def test_udp():
    d = result("udp").data
    assert d["hdr"] == 8 and d["first_proto"] == 17 and d["tcp_frames"] == 0
    assert d["got"] == [b"first", b"third"]


def test_tcp_vs_udp():
    d = result("tcp-vs-udp").data
    assert d["tcp_ok"] and d["retx"] > 0
    assert len(d["udp"]) < d["n"] and d["late"] > 0


def test_routing_ttl():
    d = result("routing-ttl").data
    assert d["hops"] == [d["r1"][0], d["r2"][0], d["b"]]
    assert d["ttl_at_b"] and set(d["ttl_at_b"]) >= {62}
    assert d["te"] >= 2


def test_ping():
    d = result("ping").data
    assert d["tx"] == d["rx"] == 3
    assert all(rtt >= 0.030 - 1e-9 for rtt in d["rtts"])
    assert d["rtts"][-1] == pytest.approx(0.030, abs=0.002)


def test_arp():
    d = result("arp").data
    assert d["req"][0] == "ff:ff:ff:ff:ff:ff"
    assert d["rep"][1] == "02:00:00:02:00:00" and d["rep"][0] != "ff:ff:ff:ff:ff:ff"
    assert d["echo_t"] >= d["rep_t"]
    assert d["cache"][-1].endswith("REACHABLE")


def test_apps():
    http = result("http").data
    assert http["status"] == 200 and http["request"].startswith("GET /")
    assert http["body_on_wire"]
    ssh = result("ssh").data
    assert ssh["exit"] == 0 and b"swordfish" in ssh["stdout"] and not ssh["leak"]
    assert all(b.startswith("SSH-2.0-") for b in ssh["banners"])
    ftp = result("ftp").data
    assert ftp["conns"] == 2 and ftp["control"] and ftp["data_bytes"] == ftp["bytes"] == 5000
    assert {"USER", "PASS", "RETR"} <= set(ftp["verbs"])
    smtp = result("smtp").data
    assert smtp["cmds"] == ["EHLO", "MAIL FROM", "RCPT TO", "DATA", "QUIT"]
    assert smtp["codes"][0] == "220" and "354" in smtp["codes"] and smtp["stored_ok"]
