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


def test_facts_are_what_the_table_prints():
    res = result("df-frag-needed")
    text = runner.render_step("df-frag-needed", res, "en", 1, 1)
    assert res["a's path MTU to b"] == (1500, 1400)
    assert any("a's path MTU to b" in ln and "1500 -> 1400" in ln for ln in text.splitlines())
    assert "TCP header of the largest" not in runner.render_step("mss", result("mss"), "en", 1, 1)


def test_fragmentation_counts_and_reassembly():
    f = result("mtu-fragmentation")
    # 3008 bytes of UDP: a makes 1480+1480+48; r cuts each 1480 into 552+552+376 for MTU 576
    assert f["UDP datagram"] == 3008
    assert f["fragments a -> r"] == 3 and f["fragments r -> b"] == 7
    assert f["largest packet on r-b"] <= 576
    assert f["fragment offsets r -> b"] == [0, 552, 1104, 1480, 2032, 2584, 2960]
    assert f["reassembled by b"] == 1 and f["received intact"] is True


def test_df_frag_needed():
    f = result("df-frag-needed")
    assert f["first datagram"] == 1500
    assert f["ICMP back to a (type, code, mtu)"] == (3, 4, 1400)
    assert f["a's path MTU to b"] == (1500, 1400)
    assert f["router dropped (frag needed)"] == 1
    assert "too long" in f["same size again"]
    assert f["resent with"] == f["b received"] == 1372


def test_ipv6_packet_too_big():
    f = result("ipv6-ptb")
    assert f["Packet Too Big MTU"] == 1280 and f["a's path MTU to b"] == 1280
    assert f["fragmented by the router"] == 0
    assert f["fragments made by a (after PTB)"] == f["fragments on r-b (all from a)"] == 2
    assert f["b received intact"] is True


def test_mss_values():
    d = result("mss")
    assert d["SYN MSS, IPv4"] == 1460 and d["SYN MSS, IPv6"] == 1440
    hdr = d["TCP header of the largest"]
    assert d["largest TCP payload, IPv4"] == 1460 - (hdr[4] - 20)
    assert d["largest TCP payload, IPv6"] == 1440 - (hdr[6] - 20)
    assert d["bytes delivered v4 / v6"] == (20000, 20000)
    assert d["UDP 1472 bytes (= 1500 - 28)"] == 1 and d["UDP 1473 bytes"] == 2


def test_pmtud_mss_values():
    res = result("pmtud")
    assert res["MSS in a's SYN"] == 1460
    fn = res["Frag Needed heard by a (MTU)"]
    assert fn[0] == 1400 and fn[-1] == 1300
    assert res["a's MSS after each"] == [1348, 1248]  # MTU - 40 - 12 bytes of timestamps
    assert res["a's path MTU to b"] == 1300
    assert res["b received intact"] is True


def test_d30_the_pmtud_diagram_follows_the_data_to_b():
    """Audit D30: the diagram stopped at a, r1, r2, before any data reached b."""
    res = result("pmtud")
    head, *body = res.diagram.splitlines()
    assert head.split() == ["a", "r1", "r2", "r3", "b"]
    b_col = head.rindex("b")
    into_b = [line for line in body if line[b_col - 1:b_col + 1] == ">|"]
    assert into_b and "seq 1249" in "".join(into_b)  # the MSS 1248 segments arrive
    assert "<svg" in res.svg and ">b</text>" in res.svg


def test_pmtud_black_hole():
    d = result("pmtud-blackhole")
    assert d["lost_icmp"] > 0
    assert not d["c1_done"] and d["c1_got"] < d["bytes sent"]
    assert d["c2_took"] is not None and d["c2_got"] == d["bytes sent"] and d["c2_intact"]
    assert d["mss2"] and all(m + 52 <= 1280 for m in d["mss2"][-1:])


def test_handshake_segments_and_states():
    d = result("tcp-handshake")
    assert d["segments"] == [("S", "client>server"), ("S.", "server>client"),
                             (".", "client>server")]
    syn = d["client ISN (SYN seq)"]
    synack_seq, synack_ack = d["SYN+ACK (seq, ack)"]
    assert synack_seq == d["server ISN (SYN+ACK seq)"]
    assert synack_ack == (syn + 1) & 0xFFFFFFFF
    assert d["ACK (seq, ack)"] == ((syn + 1) & 0xFFFFFFFF, (synack_seq + 1) & 0xFFFFFFFF)
    assert d["SYN+ACK ack = client ISN + 1"] is True and d["ACK ack = server ISN + 1"] is True
    assert d["client states"] == ["CLOSED", "SYN-SENT", "ESTABLISHED"]
    assert d["server states"] == ["LISTEN", "SYN-RECEIVED", "ESTABLISHED"]
    lines = result("tcp-handshake").diagram.splitlines()
    assert any("[S] seq 0" in ln and ln.rstrip().endswith(">|") for ln in lines)
    assert any("[S.] seq 0 ack 1" in ln and "|<" in ln for ln in lines)


def test_retransmission():
    d = result("tcp-retransmit")
    assert d["dropped on the link"] == 2
    # RACK (RFC 8985) marks the first loss by time and PRR resends it; the lost tail (the FIN's
    # segment) goes again within the same recovery, before any timeout
    assert d["fast retransmits"] == 1 and d["RTO expiries"] == 0
    assert d["retransmissions (why)"] == ["sack", "sack"]
    assert d["server got every byte, in order"]


def test_checksum():
    d = result("checksum")
    assert d["frames with a flipped bit"] == 2
    assert d["TCP segments dropped (bad checksum)"] == 1
    assert d["UDP datagrams dropped (bad checksum)"] == 1
    assert d["TCP retransmissions"] >= 1 and d["TCP data intact"]
    assert d["UDP datagrams received"] == ["datagram 0", "datagram 2"]


def test_teardown_states():
    d = result("tcp-teardown")
    assert d["segments after close()"] == [
        ("F.", "client>server"), (".", "server>client"), ("F.", "server>client"),
        (".", "client>server")]
    assert d["client (closes first)"] == ["ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2",
                                          "TIME-WAIT"]
    assert d["server"] == ["ESTABLISHED", "CLOSE-WAIT", "LAST-ACK", "CLOSED"]


def test_time_wait_is_2msl_of_virtual_time():
    d = result("time-wait")
    assert d["CLOSED at"] - d["client ACKs the resent FIN at"] == pytest.approx(2 * d["MSL"],
                                                                               abs=1e-6)
    assert d["server FINs (the first one's ACK lost)"] == 2
    assert d["MSL"] == 30.0 and d["wall time for the whole run"] < 5.0


def test_d30_time_wait_draws_what_teardown_does_not():
    """Audit D30: the two steps drew the same diagram; time-wait now starts at the server's FIN
    and shows the lost last ACK, the resent FIN TIME-WAIT answers, and the CLOSED 2 MSL later."""
    tw, td = result("time-wait"), result("tcp-teardown")
    assert tw.diagram.splitlines()[2:] != td.diagram.splitlines()[2:]
    body = tw.diagram.splitlines()[2:]
    assert "[F.]" in body[1] and "[TIME-WAIT]" in "".join(body)
    assert not any("[F.]" in line and ">" in line for line in body)  # the client's FIN: before
    assert sum("X" in line for line in body) == 1  # the lost ACK
    assert sum("<" in line and "[F.]" in line for line in body) == 2
    assert body[-1].startswith(" 61.") and "[CLOSED]" in body[-1]


def test_udp():
    d = result("udp")
    assert d["UDP header"] == 8 and d["first IP packet a sent"] == 17 and d["TCP frames"] == 0
    assert d["lost on the link"] == 1
    assert d["b received"] == ["first", "third"]


def test_tcp_vs_udp():
    d = result("tcp-vs-udp")
    assert d["TCP: bytes delivered"] and d["TCP: retransmissions"] > 0
    assert d["UDP: datagrams delivered"] < d["UDP: datagrams sent"]
    assert d["UDP: arrived out of order"] > 0


def test_routing_ttl():
    d = result("routing-ttl")
    assert d["traceroute a -> b (hops)"] == [*d["routers' addresses"], d["b's address"]]
    assert d["TTL a sends / TTL arriving at b"] == 62
    assert d["Time Exceeded sent by r1"] >= 2


def test_ping():
    d = result("ping")
    assert d["echo requests / replies"] == (3, 3)
    rtts = d["round-trip times (ms)"]
    assert all(rtt >= 30 - 1e-6 for rtt in rtts)
    assert rtts[-1] == pytest.approx(30, abs=2)


def test_arp():
    d = result("arp")
    assert d["who-has sent to"] == "ff:ff:ff:ff:ff:ff"
    assert d["b's MAC in the reply"] == "02:00:00:02:00:00"
    assert d["reply sent to"] != "ff:ff:ff:ff:ff:ff"
    assert d["echo request waited until"] >= d["reply sent at"]
    assert d["a's cache entry for b"][-1].endswith("REACHABLE")


def test_apps():
    http = result("http")
    assert http["status"] == 200 and http["request line"].startswith("GET /")
    assert http["status line"].startswith("HTTP/1.1 200")
    assert http["body readable on the wire"]
    ssh = result("ssh")
    assert ssh["exit status"] == 0 and "swordfish" in ssh["command's output"]
    assert not ssh["output visible on the wire"]
    assert ssh["client banner (clear text)"].startswith("SSH-2.0-")
    assert ssh["server banner (clear text)"].startswith("SSH-2.0-")
    ftp = result("ftp")
    assert ftp["connections"] == 2 and ftp["control"]
    assert ftp["bytes on the data connection"] == ftp["file"] == 5000
    assert {"USER", "PASS", "RETR"} <= set(ftp["commands sent"])
    smtp = result("smtp")
    assert smtp["client commands"] == ["EHLO", "MAIL FROM", "RCPT TO", "DATA", "QUIT"]
    replies = smtp["server replies"]
    assert replies[0] == "220" and "354" in replies and smtp["stored intact"]


def test_a_fact_is_measured_once():
    res = runner.StepResult()
    res.show("segments", 3)
    res.keep("hidden", 1)
    with pytest.raises(KeyError):
        res.show("other label", 4, key="segments")
    assert res.table() == [("segments", "3")] and res["hidden"] == 1
