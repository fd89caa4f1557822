from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6PacketTooBig, IPv6
from scapy.layers.l2 import ARP, Ether

from stacklab.trace.label import Labeler


def _b(pkt) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / pkt)


def test_tcp_labels_are_relative_to_each_isn():
    lab = Labeler()
    syn = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=5000, dport=80, flags="S", seq=1000,
                                                  window=65535, options=[("MSS", 1460)])
    synack = IP(src="10.0.0.2", dst="10.0.0.1") / TCP(sport=80, dport=5000, flags="SA", seq=7000,
                                                     ack=1001, window=64000)
    data = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=5000, dport=80, flags="PA", seq=1001,
                                                   ack=7001) / (b"x" * 100)
    assert lab.label(_b(syn)) == "[S] seq 0 win 65535 mss 1460"
    assert lab.label(_b(synack)) == "[S.] seq 0 ack 1 win 64000"
    assert lab.label(_b(data)) == "[P.] seq 1 ack 1 len 100"


def test_other_protocols_and_garbage():
    lab = Labeler()
    fn = IP(src="10.0.1.1", dst="10.0.0.1") / ICMP(type=3, code=4, nexthopmtu=1400) / bytes(
        IP(src="10.0.0.1", dst="10.0.3.2", flags="DF") / UDP(sport=1, dport=2) / (b"x" * 1472))[:28]
    assert lab.label(_b(fn)) == "ICMP frag needed mtu 1400"
    ptb = IPv6(src="fd00::1", dst="fd00::2") / ICMPv6PacketTooBig(mtu=1280) / bytes(
        IPv6(src="fd00::2", dst="fd00::9") / UDP(sport=1, dport=2) / (b"x" * 1400))[:1232]
    assert lab.label(_b(ptb)) == "ICMPv6 packet too big mtu 1280"
    assert lab.label(_b(ARP(op=1, psrc="10.0.0.1", pdst="10.0.0.2"))) == "ARP who-has 10.0.0.2"
    u = IP(src="10.0.0.1", dst="10.0.0.2", flags="DF") / UDP(sport=1, dport=2) / b"abc"
    assert lab.label(_b(u)) == "UDP 1 > 2 len 3 DF"
    assert lab.label(b"\x00" * 5).startswith("malformed ethernet")
