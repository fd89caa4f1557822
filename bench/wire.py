#!/usr/bin/env python3
"""Wire-format throughput: stacklab vs dpkt vs scapy, in one run, on the same frames.

Workloads (each library does the same work with its own API):

stacklab parses with ``parse_ipv4_tcp_frame`` (one call: the three views and both checksum
verdicts); the lines under the table time the per-layer views one after the other, as the host's
receive path reads a frame today.

* ``parse SYN``: an Ethernet/IPv4/TCP SYN with Linux's options (mss, sackOK, TS, nop, wscale;
  74 bytes). Read everything a TCP stack reads: MACs, ethertype, IPv4 addresses/TTL/proto/
  fragment bits, ports, seq/ack, flags, window, every option, and verify the IPv4 header and TCP
  checksums.
* ``parse ACK``: the same on a pure ACK with nop,nop,TS (66 bytes), the commonest frame.
* ``parse data``: the same on a 1460-byte data segment with timestamps (1514-byte frame): the
  TCP checksum over the payload dominates.
* ``build data``: a 1460-byte payload segment with nop,nop,TS options, IPv4 header and TCP
  checksums, inside an Ethernet frame.

``struct`` rows are a floor: bare ``struct`` unpack/pack with the checksum tricks stacklab uses
(``int.from_bytes`` little-endian over slices of the bytes, two halves above 1 KiB), no
validation, no objects. Usage: ``python3 bench/wire.py [--quick]``.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stacklab.wire.ethernet import ETH_P_IPV4, EthernetView, build_ethernet  # noqa: E402
from stacklab.wire.frame import parse_ipv4_tcp_frame  # noqa: E402
from stacklab.wire.ipv4 import IPv4View, build_ipv4  # noqa: E402
from stacklab.wire.tcp import ACK, PSH, SYN, TcpView, build_tcp, encode_options  # noqa: E402

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
IP_A = bytes([10, 0, 0, 1])
IP_B = bytes([10, 0, 0, 2])
PAYLOAD = bytes(range(256)) * 5 + bytes(180)  # 1460 bytes
assert len(PAYLOAD) == 1460


def make_frames() -> tuple[bytes, bytes, bytes]:
    syn_opts = encode_options(mss=1460, sack_permitted=True, timestamps=(1000, 0), wscale=7)
    syn = build_ethernet(MAC_B, MAC_A, ETH_P_IPV4, build_ipv4(
        IP_A, IP_B, 6, build_tcp(IP_A, IP_B, 40000, 80, 12345, 0, SYN, 64240, b"", syn_opts),
        ident=1, df=True))
    data_opts = encode_options(timestamps=(1001, 2002))
    pure_ack = build_ethernet(MAC_B, MAC_A, ETH_P_IPV4, build_ipv4(
        IP_A, IP_B, 6, build_tcp(IP_A, IP_B, 40000, 80, 12346, 777, ACK, 502, b"", data_opts),
        ident=3, df=True))
    data = build_ethernet(MAC_B, MAC_A, ETH_P_IPV4, build_ipv4(
        IP_A, IP_B, 6, build_tcp(IP_A, IP_B, 40000, 80, 12346, 777, ACK | PSH, 502, PAYLOAD,
                                 data_opts), ident=2, df=True))
    return bytes(syn), bytes(pure_ack), bytes(data)


# -- stacklab -----------------------------------------------------------------------------------


def stacklab_parse(frame: bytes) -> tuple:
    """The receive fast path: three views and both checksum verdicts from one call."""
    r = parse_ipv4_tcp_frame(frame)
    if r is None:
        return ()
    eth, ip, t, ip_ok, tcp_ok = r
    if not (ip_ok and tcp_ok):
        return ()
    return (eth.dst, eth.src, ip.src, ip.dst, ip.ttl, t.src_port, t.dst_port, t.seq, t.ack,
            t.flags, t.window, t.mss(), t.wscale(), t.sack_permitted(), t.timestamps(),
            t.sack_blocks(), t.payload)


def stacklab_parse_views(frame: bytes) -> tuple:
    """The per-layer views one after the other, as the host's receive path reads a frame."""
    eth = EthernetView(frame)
    if eth.ethertype != ETH_P_IPV4:
        return ()
    ip = IPv4View(eth.payload)
    if not ip.checksum_ok() or ip.proto != 6 or ip.flags_frag & 0x3FFF:  # as the host reads it
        return ()
    t = TcpView(ip.payload)
    if not t.checksum_ok(ip.src, ip.dst):
        return ()
    return (eth.dst, eth.src, ip.src, ip.dst, ip.ttl, t.src_port, t.dst_port, t.seq, t.ack,
            t.flags, t.window, t.mss(), t.wscale(), t.sack_permitted(), t.timestamps(),
            t.sack_blocks(), t.payload)


def stacklab_build(seq: int) -> bytearray:
    opts = encode_options(timestamps=(seq, 2002))
    seg = build_tcp(IP_A, IP_B, 40000, 80, seq, 777, ACK | PSH, 502, PAYLOAD, opts)
    return build_ethernet(MAC_B, MAC_A, ETH_P_IPV4,
                          build_ipv4(IP_A, IP_B, 6, seg, ident=seq & 0xFFFF, df=True))


# -- bare struct floor --------------------------------------------------------------------------

_ETH = struct.Struct("!6s6sH")
_IP = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIHHHH")


def _le_sum(b: bytes) -> int:
    """Little-endian read of ``b`` (256 x its one's-complement sum mod 0xFFFF), in two halves of
    even length above 1 KiB: the checksum tricks of stacklab.wire.checksum, inlined."""
    n = len(b)
    if n <= 1024:
        return int.from_bytes(b, "little")
    m = (n >> 2) << 1
    return int.from_bytes(b[:m], "little") + int.from_bytes(b[m:], "little")


def struct_parse(frame: bytes) -> tuple:
    dst, src, et = _ETH.unpack_from(frame)
    vihl, tos, tlen, ident, ff, ttl, proto, csum, s, d = _IP.unpack_from(frame, 14)
    hl = (vihl & 15) * 4
    ok_ip = int.from_bytes(frame[14:14 + hl], "little") % 0xFFFF == 0
    start, end = 14 + hl, 14 + tlen
    sp, dp, seq, ack, offf, win, tsum, urg = _TCP.unpack_from(frame, start)
    n = end - start
    total = _le_sum(frame[start:end]) + int.from_bytes(s + d, "little") + ((6 + n) << 8)
    ok_tcp = total % 0xFFFF == 0
    opts = frame[start + 20:start + (offf >> 12) * 4]
    return (dst, src, s, d, ttl, sp, dp, seq, ack, offf & 0x1FF, win, ok_ip, ok_tcp, opts)


def struct_build(seq: int) -> bytearray:
    tcp = bytearray(_TCP.pack(40000, 80, seq, 777, (8 << 12) | 0x18, 502, 0, 0))
    tcp += b"\x01\x01\x08\x0a" + struct.pack("!II", seq, 2002)
    n = len(tcp) + len(PAYLOAD)
    total = int.from_bytes(tcp, "little") + _le_sum(PAYLOAD) + \
        int.from_bytes(IP_A + IP_B, "little") + ((6 + n) << 8)
    struct.pack_into("<H", tcp, 16, -total % 0xFFFF)
    tcp += PAYLOAD
    ip = bytearray(_IP.pack(0x45, 0, 20 + n, seq & 0xFFFF, 0x4000, 64, 6, 0, IP_A, IP_B))
    struct.pack_into("<H", ip, 10, -int.from_bytes(ip, "little") % 0xFFFF)
    out = bytearray(_ETH.pack(MAC_B, MAC_A, 0x0800))
    out += ip
    out += tcp
    return out


# -- dpkt ---------------------------------------------------------------------------------------


def dpkt_funcs() -> tuple[Callable, Callable, Callable] | None:
    try:
        import dpkt
    except ImportError:
        return None

    def parse(frame: bytes) -> tuple:
        e = dpkt.ethernet.Ethernet(frame)
        ip = e.data
        raw_ip = frame[14:14 + ip.hl * 4]
        if dpkt.in_cksum(raw_ip) != 0:
            return ()
        t = ip.data
        seg = frame[14 + ip.hl * 4:14 + ip.len]
        pseudo = ip.src + ip.dst + struct.pack("!HH", 6, len(seg))
        if dpkt.in_cksum(pseudo + seg) != 0:
            return ()
        opts = dpkt.tcp.parse_opts(t.opts)
        return (e.dst, e.src, ip.src, ip.dst, ip.ttl, t.sport, t.dport, t.seq, t.ack, t.flags,
                t.win, opts, t.data)

    def parse_nocheck(frame: bytes) -> tuple:
        e = dpkt.ethernet.Ethernet(frame)
        ip = e.data
        t = ip.data
        opts = dpkt.tcp.parse_opts(t.opts)
        return (e.dst, e.src, ip.src, ip.dst, ip.ttl, t.sport, t.dport, t.seq, t.ack, t.flags,
                t.win, opts, t.data)

    def build(seq: int) -> bytes:
        t = dpkt.tcp.TCP(sport=40000, dport=80, seq=seq, ack=777, flags=0x18, win=502,
                         opts=b"\x01\x01\x08\x0a" + struct.pack("!II", seq, 2002), data=PAYLOAD)
        t.off = 8
        ip = dpkt.ip.IP(src=IP_A, dst=IP_B, p=6, ttl=64, id=seq & 0xFFFF, df=1, data=t)
        ip.len = 20 + len(t)
        e = dpkt.ethernet.Ethernet(src=MAC_A, dst=MAC_B, type=0x0800, data=ip)
        return bytes(e)

    return parse, parse_nocheck, build


# -- scapy --------------------------------------------------------------------------------------


def scapy_funcs() -> tuple[Callable, Callable] | None:
    try:
        from scapy.layers.inet import IP, TCP, in4_chksum
        from scapy.layers.l2 import Ether
        from scapy.packet import Raw
        from scapy.utils import checksum
    except ImportError:
        return None

    def parse(frame: bytes) -> tuple:
        p = Ether(frame)
        ip = p[IP]
        if checksum(frame[14:14 + ip.ihl * 4]) != 0:
            return ()
        t = p[TCP]
        seg = frame[14 + ip.ihl * 4:14 + ip.len]
        if in4_chksum(socket.IPPROTO_TCP, ip, seg) != 0:
            return ()
        return (p.dst, p.src, ip.src, ip.dst, ip.ttl, t.sport, t.dport, t.seq, t.ack,
                int(t.flags), t.window, list(t.options), bytes(t.payload))

    def build(seq: int) -> bytes:
        pkt = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
               / IP(src="10.0.0.1", dst="10.0.0.2", id=seq & 0xFFFF, flags="DF")
               / TCP(sport=40000, dport=80, seq=seq, ack=777, flags="PA", window=502,
                     options=[("NOP", None), ("NOP", None), ("Timestamp", (seq, 2002))])
               / Raw(PAYLOAD))
        return bytes(pkt)

    return parse, build


# -- timing -------------------------------------------------------------------------------------


def rate(fn: Callable, arg_of: Callable[[int], object], seconds: float) -> float:
    """Calls per second over one run of about ``seconds``."""
    batch = 1
    while True:  # calibrate a batch that takes ~1/10 of the run
        t0 = time.perf_counter()
        for i in range(batch):
            fn(arg_of(i))
        dt = time.perf_counter() - t0
        if dt >= seconds / 10 or batch >= 1 << 20:
            break
        batch *= 2
    n = 0
    t0 = time.perf_counter()
    while True:
        for i in range(batch):
            fn(arg_of(i))
        n += batch
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return n / dt


def breakdown(seconds: float) -> None:
    """ns per frame of the pieces of ``stacklab_parse`` (best of 7 interleaved runs each)."""
    import stacklab.wire.frame as wframe
    from stacklab.wire.checksum import SPLIT_AT

    fb = int.from_bytes

    def checksums(f: bytes) -> tuple[bool, bool]:  # as parse_ipv4_tcp_frame does them
        end = len(f)
        if end - 34 <= SPLIT_AT:
            total = fb(f[26:], "little")
        else:
            m = 26 + (((end - 26) >> 2) << 1)
            total = fb(f[26:m], "little") + fb(f[m:], "little")
        total += (6 + end - 34) << 8
        return fb(f[14:34], "little") % 0xFFFF == 0, total % 0xFFFF == 0
    frames = dict(zip(("SYN", "ACK+TS", "data"), make_frames(), strict=True))
    # the struct parse_ipv4_tcp_frame unpacks for each frame (by its length)
    hdr = {f: wframe._ETH_IPV4_TCP_W5 if len(f) >= 74 else wframe._ETH_IPV4_TCP_W3
           if len(f) >= 66 else wframe._ETH_IPV4_TCP for f in frames.values()}
    print(f"{'ns per frame':<58}" + "".join(f"{k:>9}" for k in frames))
    pieces: list[tuple[str, Callable[[bytes], object]]] = [
        ("stacklab_parse (all below)", stacklab_parse),
        ("parse_ipv4_tcp_frame (views + checksum verdicts)", parse_ipv4_tcp_frame),
        ("  memoryview + the one unpack of the fixed headers",
         lambda f: hdr[f].unpack_from(memoryview(f))),
        ("  the two checksums alone (slices, from_bytes, remainders)", checksums),
    ]
    parsed = {f: parse_ipv4_tcp_frame(f) for f in frames.values()}

    def reads(r: tuple) -> tuple:
        eth, ip, t, _a, _b = r
        return (eth.dst, eth.src, ip.src, ip.dst, ip.ttl, t.src_port, t.dst_port, t.seq, t.ack,
                t.flags, t.window, t.mss(), t.wscale(), t.sack_permitted(), t.timestamps(),
                t.sack_blocks(), t.payload)

    pieces.append(("reads of parsed views (fields, 5 option getters, payload)", reads))
    pieces.append(("bare struct floor (struct_parse)", struct_parse))
    best: dict[tuple[str, str], float] = {}
    for _ in range(7):
        for name, fn in pieces:
            for k, f in frames.items():
                arg = parsed[f] if fn is reads else f
                r = rate(fn, lambda _i, a=arg: a, seconds / 7)
                best[name, k] = max(best.get((name, k), 0.0), r)
    for name, _fn in pieces:
        print(f"{name:<58}" + "".join(f"{1e9 / best[name, k]:>9.0f}" for k in frames))
    print("(each line includes the timing loop's call overhead, ~0.1 us)")


def fmt(r: float | None) -> str:
    if r is None:
        return "-"
    return f"{r / 1000:,.1f}k"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a tiny smoke run (~1 s)")
    ap.add_argument("--seconds", type=float, default=None, help="time per measurement")
    ap.add_argument("--repeats", type=int, default=None,
                    help="interleaved runs per cell, the best kept (default 5)")
    ap.add_argument("--breakdown", action="store_true",
                    help="where stacklab's parse time goes (ns per frame), then exit")
    args = ap.parse_args(argv)
    if args.breakdown:
        breakdown(args.seconds or 0.2)
        return 0
    seconds = args.seconds or (0.01 if args.quick else 0.25)
    repeats = args.repeats or (1 if args.quick else 5)

    syn, pure_ack, data = make_frames()
    dp = dpkt_funcs()
    sc = scapy_funcs()

    # Sanity: every implementation reads the same values from our frames and accepts its
    # checksums; and our builder's frame is what the others build.
    mine = stacklab_parse(syn)
    assert mine and mine[5:11] == (40000, 80, 12345, 0, SYN, 64240), mine
    assert mine[11:15] == (1460, 7, True, (1000, 0))
    for frame in (syn, pure_ack, data):
        assert stacklab_parse(frame) == stacklab_parse_views(frame)
    assert struct_parse(syn)[11:13] == (True, True)
    assert bytes(stacklab_build(5)) == bytes(struct_build(5))
    if dp:
        got = dp[0](syn)
        assert got and got[5:11] == (40000, 80, 12345, 0, SYN, 64240), got
        assert dp[0](data), "dpkt rejects our checksums"
        assert dp[2](5) == bytes(stacklab_build(5)), "dpkt builds a different frame"
    if sc:
        got = sc[0](syn)
        assert got and got[5:11] == (40000, 80, 12345, 0, SYN, 64240), got
        assert sc[1](5) == bytes(stacklab_build(5)), "scapy builds a different frame"

    def const(frame: bytes) -> Callable[[int], bytes]:
        return lambda _i: frame

    def ident(i: int) -> int:
        return i

    # (workload, implementation) -> (function, argument maker); scapy gets half the time.
    cells: dict[tuple[str, str], tuple[Callable, Callable[[int], object]]] = {}
    workloads = []
    for name, frame in (("parse SYN+options (74 B)", syn), ("parse ACK+TS (66 B)", pure_ack),
                        ("parse data+TS (1514 B)", data)):
        workloads.append(name)
        cells[name, "stacklab"] = (stacklab_parse, const(frame))
        cells[name, "views"] = (stacklab_parse_views, const(frame))
        cells[name, "struct"] = (struct_parse, const(frame))
        if dp:
            cells[name, "dpkt"] = (dp[0], const(frame))
        if sc:
            cells[name, "scapy"] = (sc[0], const(frame))
    name = "build data 1460 B + cksums"
    workloads.append(name)
    cells[name, "stacklab"] = (stacklab_build, ident)
    cells[name, "struct"] = (struct_build, ident)
    if dp:
        cells[name, "dpkt"] = (dp[2], ident)
        cells["dpkt parse SYN, no cksum", "dpkt"] = (dp[1], const(syn))
    if sc:
        cells[name, "scapy"] = (sc[1], ident)

    # Interleave the repeats so that a machine whose load changes during the run affects all
    # implementations alike; keep the best run of each cell.
    best: dict[tuple[str, str], float] = {}
    for _ in range(repeats):
        for key, (fn, arg) in cells.items():
            t = seconds / 2 if key[1] == "scapy" else seconds
            best[key] = max(best.get(key, 0.0), rate(fn, arg, t))

    rows = [(w, best[w, "stacklab"], best.get((w, "dpkt")), best.get((w, "scapy")),
             best[w, "struct"]) for w in workloads]
    nocheck = best.get(("dpkt parse SYN, no cksum", "dpkt"))

    head = (f"{'workload (frames/s)':<28} {'stacklab':>10} {'dpkt':>10} {'scapy':>10} "
            f"{'struct':>10} {'x dpkt':>7} {'x scapy':>8} {'% struct':>8}")
    print(head)
    print("-" * len(head))
    for name, s, d, c, f in rows:
        xd = f"{s / d:.1f}" if d else "-"
        xc = f"{s / c:.0f}" if c else "-"
        print(f"{name:<28} {fmt(s):>10} {fmt(d):>10} {fmt(c):>10} {fmt(f):>10} {xd:>7} "
              f"{xc:>8} {100 * s / f:>7.0f}%")
    print("-" * len(head))
    for name in workloads[:3]:
        v = best[name, "views"]
        d = best.get((name, "dpkt"))
        xd = f", {v / d:.1f}x dpkt" if d else ""
        print(f"  {name}, per-layer views (EthernetView, IPv4View, TcpView): {fmt(v)}/s{xd}")
    if nocheck:
        print(f"(dpkt parse SYN without checksum verification: {fmt(nocheck)}/s; "
              f"stacklab with it is {rows[0][1] / nocheck:.1f}x that)")
    print(f"python {sys.version.split()[0]}, {seconds}s x {repeats} per cell, best run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
