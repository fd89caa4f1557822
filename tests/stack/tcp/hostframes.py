"""A Host with one TCP listener (port 80) fed hand-made frames from a peer 10.0.0.2: the frames
it sends back are read as IPv4 headers and TCP segments."""

from __future__ import annotations

import random

from stacklab.stack.host import Host
from stacklab.stack.tcp.config import TcpConfig
from stacklab.stack.tcp.tcb import Tcb
from stacklab.wire.addr import ip_bytes
from stacklab.wire.ethernet import ETH_P_IPV4, build_ethernet
from stacklab.wire.icmpv4 import build_icmpv4
from stacklab.wire.ipv4 import IPv4View, build_ipv4
from stacklab.wire.tcp import TcpView, build_tcp

MAC_H, MAC_P = bytes.fromhex("020000000001"), bytes.fromhex("020000000099")
H4, P4 = ip_bytes("10.0.0.1"), ip_bytes("10.0.0.2")
ISN = 1000
SYN, ACK = 0x02, 0x10


def frame(seq: int, ack: int, flags: int, payload: bytes = b"", opts: bytes = b"",
          *, as_bytearray: bool = False, sport: int = 40000,
          dport: int = 80) -> bytes | bytearray:
    """A segment from the peer's port 40000 to port 80 (bytes: the host's fused-frame path;
    bytearray: its per-layer path)."""
    seg = build_tcp(P4, H4, sport, dport, seq, ack, flags, 65535, payload, opts)
    f = build_ethernet(MAC_H, MAC_P, ETH_P_IPV4, build_ipv4(P4, H4, 6, seg, df=True))
    return bytearray(f) if as_bytearray else bytes(f)


def frag_needed(mtu: int, quoted: bytes) -> bytes:
    """ICMP Fragmentation Needed from a router on the path, quoting an IPv4 packet we sent."""
    icmp = build_icmpv4(3, 4, mtu.to_bytes(4, "big"), quoted[:28])
    return bytes(build_ethernet(MAC_H, MAC_P, ETH_P_IPV4,
                                build_ipv4(ip_bytes("10.0.0.254"), H4, 1, icmp)))


def sent(h: Host) -> list[tuple[IPv4View, TcpView]]:
    """The TCP segments the host sent, with their IPv4 headers."""
    out = []
    for _, f in h.frames_to_send():
        ip = IPv4View(memoryview(bytes(f))[14:])
        if ip.proto == 6:
            out.append((ip, TcpView(ip.payload)))
    return out


def established(config: TcpConfig | None = None) -> tuple[Host, Tcb, int]:
    """The host, its accepted connection (peer MSS 1460) and our first data sequence number."""
    h = Host("h", rng=random.Random(1))
    h.add_interface("eth0", MAC_H)
    h.add_address(0, "10.0.0.1/24")
    h.interfaces[0].arp.add_permanent(P4, MAC_P, 0.0)
    h.frames_to_send()
    h.tcp.listen(80, lambda tcb: None, config=config)
    h.receive_frame(0, frame(ISN, 0, SYN, opts=bytes([2, 4, 5, 0xB4])), 0.0)  # MSS 1460
    _, synack = sent(h)[-1]
    h.receive_frame(0, frame(ISN + 1, synack.seq + 1, ACK), 0.01)
    (tcb,) = h.tcp.conns.values()
    return h, tcb, synack.seq + 1
