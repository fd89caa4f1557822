"""pcap writer/reader: round trips, scapy interop, and tshark finds nothing malformed."""

from __future__ import annotations

import io
import subprocess

import pytest

from stacklab.device.pcap import (
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    PcapError,
    PcapReader,
    PcapWriter,
    read_pcap,
)
from stacklab.testing import require_tool


def need_tshark() -> str:
    return require_tool("tshark", package="tshark")


def corpus() -> list[bytes]:
    """A mixed frame corpus built with scapy (an independent encoder)."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import (
        ICMPv6EchoRequest,
        ICMPv6ND_NS,
        ICMPv6NDOptSrcLLAddr,
        ICMPv6PacketTooBig,
        IPv6,
        IPv6ExtHdrFragment,
    )
    from scapy.layers.l2 import ARP, Dot1Q, Ether

    e = Ether(src="02:00:00:00:01:00", dst="02:00:00:00:02:00")
    v4 = IP(src="10.0.1.1", dst="10.0.2.1")
    v6 = IPv6(src="fd00:0:0:1::1", dst="fd00:0:0:2::1")
    frames = [
        Ether(src="02:00:00:00:01:00", dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="10.0.1.1",
                                                                       pdst="10.0.1.2"),
        e / v4 / TCP(sport=40000, dport=80, flags="S", seq=1,
                     options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)),
                              ("NOP", None), ("WScale", 7)]),
        e / v4 / TCP(sport=40000, dport=80, flags="PA", seq=2, ack=99) / (b"GET / HTTP/1.1\r\n"),
        e / v4 / UDP(sport=5000, dport=5001) / bytes(range(64)),
        e / v4 / ICMP(type=8, id=1, seq=1) / b"ping",
        e / IP(src="10.0.2.254", dst="10.0.1.1") / ICMP(type=3, code=4, nexthopmtu=1280)
        / IP(src="10.0.1.1", dst="10.0.2.1") / TCP(sport=40000, dport=80),
        e / IP(src="10.0.1.1", dst="10.0.2.1", options=b"\x94\x04\x00\x00")  # router alert
        / UDP(sport=7, dport=9) / b"ra",
        e / v6 / TCP(sport=40001, dport=22, flags="SA", seq=5, ack=9),
        e / v6 / UDP(sport=1, dport=2) / bytes(300),
        e / v6 / ICMPv6EchoRequest(id=7, seq=3, data=b"hello"),
        e / v6 / ICMPv6PacketTooBig(mtu=1280) / bytes(v6 / UDP(sport=7, dport=9) / bytes(100)),
        Ether(src="02:00:00:00:01:00", dst="33:33:ff:00:00:02")
        / IPv6(src="fd00:0:0:1::1", dst="ff02::1:ff00:2", hlim=255)
        / ICMPv6ND_NS(tgt="fd00:0:0:1::2") / ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:01:00"),
        e / Dot1Q(vlan=10) / v4 / UDP(sport=7, dport=7) / b"vlan",
    ]
    out = [bytes(f) for f in frames]
    # IPv4 and IPv6 fragments of one UDP datagram
    big = v4 / UDP(sport=9, dport=9) / bytes(3000)
    from scapy.layers.inet import fragment
    out += [bytes(e / f) for f in fragment(big, fragsize=1400)]
    big6 = v6 / IPv6ExtHdrFragment(id=5) / UDP(sport=9, dport=9) / bytes(3000)
    from scapy.layers.inet6 import fragment6
    out += [bytes(e / f) for f in fragment6(big6, 1280)]
    return out


def write_corpus(path, frames, linktype=LINKTYPE_ETHERNET, nanosecond=True) -> list[float]:
    times = [1.0 + i * 0.001234567 for i in range(len(frames))]
    with PcapWriter(str(path), linktype, nanosecond=nanosecond) as w:
        for t, f in zip(times, frames, strict=True):
            w.write(f, t)
    return times


def tshark_check(path) -> str:
    tshark = need_tshark()
    out = subprocess.run(
        [tshark, "-r", str(path), "-n", "-V",
         "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
         "-o", "udp.check_checksum:TRUE"],
        capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


def problems(text: str) -> list[str]:
    bad = ("Malformed", "[Checksum Status: Bad]", "incorrect, should be", "Bad checksum",
           "Expert Info (Error", "Expert Info (Warning/Checksum")
    return [line.strip() for line in text.splitlines() if any(b in line for b in bad)]


def test_round_trip_nanosecond_and_microsecond(tmp_path):
    frames = corpus()
    for nano in (True, False):
        path = tmp_path / f"c{nano}.pcap"
        times = write_corpus(path, frames, nanosecond=nano)
        linktype, records = read_pcap(str(path))
        assert linktype == LINKTYPE_ETHERNET
        assert [r.data for r in records] == frames
        assert [r.orig_len for r in records] == [len(f) for f in frames]
        step = 1e-9 if nano else 1e-6
        assert [r.time for r in records] == pytest.approx(times, abs=step)
        assert records[1].time_ns == (1_001_234_567 if nano else 1_001_234_000)


def test_snaplen_truncates_but_keeps_orig_len():
    buf = io.BytesIO()
    w = PcapWriter(buf, snaplen=64)
    w.write(bytes(range(200)), 0.5)
    w.close()
    buf.seek(0)
    (rec,) = list(PcapReader(buf))
    assert rec.data == bytes(range(64)) and rec.orig_len == 200


def test_reader_rejects_garbage_and_truncation(tmp_path):
    with pytest.raises(PcapError, match="magic"):
        PcapReader(io.BytesIO(b"\x00" * 24))
    with pytest.raises(PcapError, match="pcapng"):
        PcapReader(io.BytesIO(b"\x0a\x0d\x0d\x0a" + bytes(20)))
    buf = io.BytesIO()
    PcapWriter(buf).write(bytes(100), 1.0)
    cut = io.BytesIO(buf.getvalue()[:-10])
    with pytest.raises(PcapError, match="cut short"):
        list(PcapReader(cut))


def test_reads_what_scapy_writes(tmp_path):
    from scapy.utils import PcapWriter as ScapyWriter

    frames = corpus()
    path = tmp_path / "scapy.pcap"
    sw = ScapyWriter(str(path), linktype=1, nano=True, sync=True)
    from scapy.layers.l2 import Ether

    for i, f in enumerate(frames):
        pkt = Ether(f)
        pkt.time = 100 + i / 8  # exact in binary
        sw.write(pkt)
    sw.close()
    linktype, records = read_pcap(str(path))
    assert linktype == LINKTYPE_ETHERNET
    assert [r.data for r in records] == frames
    assert [r.time for r in records] == [100 + i / 8 for i in range(len(frames))]


def test_scapy_reads_what_we_write(tmp_path):
    from scapy.utils import rdpcap

    frames = corpus()
    path = tmp_path / "ours.pcap"
    times = write_corpus(path, frames)
    pkts = rdpcap(str(path))
    assert [bytes(p) for p in pkts] == frames
    assert [float(p.time) for p in pkts] == pytest.approx(times, abs=1e-9)


def test_tshark_reads_our_corpus_clean(tmp_path):
    frames = corpus()
    path = tmp_path / "corpus.pcap"
    write_corpus(path, frames)
    text = tshark_check(path)
    assert problems(text) == []
    assert text.count("\nFrame ") + text.startswith("Frame ") == len(frames)
    for proto in ("Address Resolution Protocol", "Transmission Control Protocol",
                  "User Datagram Protocol", "Internet Control Message Protocol v6",
                  "802.1Q Virtual LAN", "Fragment Offset: 1400", "Reassembled IPv6"):
        assert proto in text
    # timestamps survive at nanosecond precision
    tshark = need_tshark()
    epoch = subprocess.run([tshark, "-r", str(path), "-T", "fields", "-e", "frame.time_epoch"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert epoch[1].startswith("1.001234567")


def test_tshark_flags_a_bad_checksum(tmp_path):
    """The check above can fail: a frame with a wrong TCP checksum is reported."""
    frames = corpus()
    bad = bytearray(frames[1])
    bad[14 + 20 + 16] ^= 0xFF  # TCP checksum high byte
    path = tmp_path / "bad.pcap"
    write_corpus(path, [bytes(bad)])
    assert problems(tshark_check(path))


def test_tshark_reads_raw_ip_linktype(tmp_path):
    frames = [f[14:] for f in corpus() if f[12:14] in (b"\x08\x00", b"\x86\xdd")]
    path = tmp_path / "raw.pcap"
    write_corpus(path, frames, linktype=LINKTYPE_RAW, nanosecond=False)
    linktype, records = read_pcap(str(path))
    assert linktype == LINKTYPE_RAW and [r.data for r in records] == frames
    text = tshark_check(path)
    assert problems(text) == []
    assert "Raw packet data" in text or "Encapsulation type: Raw IP" in text
