"""TCP Fast Open (RFC 7413) with Linux as the client: ``curl --tcp-fastopen`` against stacklab's
HTTP service on TAP. The first request asks for a cookie, the second carries it with the request
in the SYN; stacklab accepts the data at once (its SYN-ACK acknowledges it). The SYNs are read
back from stacklab's capture with tshark."""

from __future__ import annotations

from stacklab.cli.tap import ConnLog, tcp_service

from .linux import Netns, tshark_lines
from .stackhost import STACK4, StackOnTap


def test_linux_curl_tcp_fastopen_puts_the_second_request_in_the_syn(
        netns: Netns, host_on_tap: StackOnTap) -> None:
    h = host_on_tap
    h.call(h.node.sysctl.__setitem__, "net.ipv4.tcp_fastopen", "3")
    h.run(h.node.start_server(tcp_service("http", 8080, ConnLog(quiet=True)), port=8080,
                              fastopen=16))
    netns.run("sysctl", "-q", "-w", "net.ipv4.tcp_fastopen=1")  # the namespace's own
    for _ in range(2):
        r = netns.run("curl", "-sS", "--tcp-fastopen", "-m", "10", "-o", "/dev/null", "-w",
                      "%{http_code}", f"http://{STACK4}:8080/", timeout=20, check=False)
        assert r.stdout == "200", (r.stdout, r.stderr)
    h.call(h.pcap.flush)
    syns = tshark_lines(h.pcap_path, "tcp.flags.syn == 1 && tcp.flags.ack == 0 && "
                        "tcp.dstport == 8080")
    assert len(syns) == 2, syns
    # the first SYN asks for a cookie without data, the second carries the GET with the cookie
    data_syns = tshark_lines(h.pcap_path, "tcp.flags.syn == 1 && tcp.flags.ack == 0 && "
                             "tcp.len > 0 && tcp.option_kind == 34")
    assert len(data_syns) == 1, syns
    # stacklab's SYN-ACKs: the first gives a cookie, the second acknowledges the data
    synacks = tshark_lines(h.pcap_path, "tcp.flags.syn == 1 && tcp.flags.ack == 1 && "
                           "tcp.srcport == 8080 && tcp.ack > 1")
    assert len(synacks) == 1, synacks
