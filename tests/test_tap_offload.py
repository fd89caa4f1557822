"""TAP offloads without a device: merging TCP segments into GSO super-frames, completing the
partial checksums the kernel hands over (virtio_net_hdr NEEDS_CSUM)."""

from __future__ import annotations

import random

from stacklab.device.tap import (
    VNET_F_NEEDS_CSUM,
    VNET_GSO_TCPV4,
    VNET_HDR,
    TapDevice,
    merge_tcp_segments,
)
from stacklab.wire.ethernet import ETH_P_IPV4, EthernetView, build_ethernet
from stacklab.wire.ipv4 import IPv4View, build_ipv4
from stacklab.wire.tcp import ACK, FIN, PSH, SYN, TcpView, build_tcp, encode_options

A, B = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
MA, MB = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
OPTS = encode_options(timestamps=(1000, 2000))


def seg(seq: int, payload: bytes, flags: int = ACK, sport: int = 40000, ident: int = 1,
        ack: int = 777, window: int = 500) -> bytes:
    t = build_tcp(A, B, sport, 80, seq, ack, flags, window, payload, OPTS)
    return bytes(build_ethernet(MB, MA, ETH_P_IPV4, build_ipv4(A, B, 6, t, ident=ident, df=True)))


def kernel_split(frame: bytes, hdr: bytes) -> list[tuple[int, int, bytes]]:
    """What the kernel does with a GSO frame: (seq, flags, payload) per gso_size piece, after
    checking the super-frame's headers."""
    flags, gso_type, hdr_len, gso_size, cs_start, cs_off = VNET_HDR.unpack(hdr)
    assert flags == VNET_F_NEEDS_CSUM and gso_type == VNET_GSO_TCPV4
    ip = IPv4View(EthernetView(frame).payload)
    assert ip.checksum_ok() and ip.total_length == len(frame) - 14
    assert (cs_start, cs_off) == (34, 16)
    t = TcpView(ip.payload)
    assert hdr_len == 34 + t.header_len
    # the checksum field holds the pseudo-header sum: completing it makes the segment valid
    buf = bytearray(ip.payload)
    total = int.from_bytes(buf, "big") << (8 * (len(buf) & 1))
    r = total % 0xFFFF
    buf[16:18] = (0xFFFF - r if r else 0xFFFF).to_bytes(2, "big")
    assert TcpView(buf).checksum_ok(A, B)
    data = bytes(t.payload)
    out = []
    for k in range(0, len(data), gso_size):
        last = k + gso_size >= len(data)
        out.append((t.seq + k, t.flags if last else t.flags & ~(PSH | FIN), data[k:k + gso_size]))
    return out


def test_a_run_of_segments_becomes_one_gso_frame_the_kernel_splits_back() -> None:
    rng = random.Random(5)
    payloads = [rng.randbytes(1448) for _ in range(6)] + [rng.randbytes(300)]
    frames, seq = [], 1000
    for i, p in enumerate(payloads):
        frames.append(seg(seq, p, ACK | PSH if i == len(payloads) - 1 else ACK, ident=i))
        seq += len(p)
    out = merge_tcp_segments(frames)
    assert len(out) == 1
    frame, info = out[0]
    assert info is not None and info[1] == 7
    pieces = kernel_split(frame, info[0])
    assert [p for _, _, p in pieces] == payloads
    assert [s for s, _, _ in pieces] == [TcpView(IPv4View(EthernetView(f).payload).payload).seq
                                         for f in frames]
    assert pieces[-1][1] == ACK | PSH and all(f == ACK for _, f, _ in pieces[:-1])


def test_frames_that_must_stay_alone() -> None:
    p = bytes(1000)
    syn = seg(1, b"", SYN)
    pure_ack = seg(5, b"")
    gap = [seg(100, p), seg(1200, p)]  # not contiguous
    other_flow = [seg(100, p), seg(1100, p, sport=40001)]
    push_first = [seg(100, p, ACK | PSH), seg(1100, p)]
    new_ack = [seg(100, p), seg(1100, p, ack=778)]
    longer_second = [seg(100, bytes(500)), seg(600, p)]
    for frames in ([syn, pure_ack], gap, other_flow, push_first, new_ack, longer_second):
        out = merge_tcp_segments(frames)
        assert [f for f, _ in out] == frames and all(i is None for _, i in out)


def test_runs_split_where_a_frame_does_not_fit() -> None:
    p = bytes(1000)
    frames = [seg(100, p), seg(1100, p), seg(5, b""), seg(2100, p), seg(3100, p, ACK | FIN),
              seg(4100, p)]
    out = merge_tcp_segments(frames)
    assert [i[1] if i else 1 for _, i in out] == [2, 1, 2, 1]
    assert out[1][0] == frames[2] and out[3][0] == frames[5]


def test_partial_checksum_from_the_kernel_is_completed() -> None:
    good = bytearray(seg(42, b"hello, offloads"))
    tcp_len = len(good) - 34
    pseudo = (int.from_bytes(A + B, "big") + 6 + tcp_len) % 0xFFFF
    partial = bytearray(good)
    partial[50:52] = pseudo.to_bytes(2, "big")
    dev = TapDevice(-1, "tapx", offload=True)
    hdr = VNET_HDR.pack(VNET_F_NEEDS_CSUM, 0, 0, 0, 34, 16)
    assert bytes(dev._from_vnet(hdr + bytes(partial))) == bytes(good)
    assert dev.counters["rx.csum_completed"] == 1
    # without NEEDS_CSUM the frame is passed as it is (a bad checksum stays bad)
    plain = VNET_HDR.pack(0, 0, 0, 0, 0, 0)
    assert bytes(dev._from_vnet(plain + bytes(partial))) == bytes(partial)


def test_the_attached_reader_hands_kernel_made_tcp_frames_over_unsummed() -> None:
    """What the stack gets from the device's reader: the frame after the virtio header without
    a copy and csum_valid, so nobody sums the kernel's segments (the partial sum stays)."""
    from stacklab.device.tap import VNET_F_DATA_VALID
    from stacklab.wire.ipv6 import build_ipv6

    good = seg(42, b"x" * 3000)
    partial = bytearray(good)
    pseudo = (int.from_bytes(A + B, "big") + 6 + len(good) - 34) % 0xFFFF
    partial[50:52] = pseudo.to_bytes(2, "big")
    dev = TapDevice(-1, "tapx", offload=True)
    needs = VNET_HDR.pack(VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, 66, 1448, 34, 16)
    frame, valid = dev._rx_frame(needs + bytes(partial))
    assert type(frame) is memoryview and bytes(frame) == bytes(partial) and valid
    assert dev.counters["rx.csum_trusted"] == 1 and dev.counters["rx.csum_completed"] == 0
    # DATA_VALID: the kernel checked it; neither flag: the stack must check it
    assert dev._rx_frame(VNET_HDR.pack(VNET_F_DATA_VALID, 0, 0, 0, 0, 0) + good)[1]
    assert not dev._rx_frame(bytes(VNET_HDR.size) + good)[1]
    # a partial checksum on a frame the stack's fused IPv4 TCP path does not take: completed
    a6, b6 = bytes(15) + b"\x01", bytes(15) + b"\x02"
    t6 = build_tcp(a6, b6, 1, 2, 3, 4, ACK, 5, b"v6 data")
    f6 = bytes(build_ethernet(MB, MA, 0x86DD, build_ipv6(a6, b6, 6, t6)))
    p6 = bytearray(f6)
    p6[14 + 40 + 16:14 + 40 + 18] = (
        (int.from_bytes(a6 + b6, "big") + 6 + len(t6)) % 0xFFFF).to_bytes(2, "big")
    frame, valid = dev._rx_frame(VNET_HDR.pack(VNET_F_NEEDS_CSUM, 0, 0, 0, 54, 16) + bytes(p6))
    assert bytes(frame) == f6 and valid and dev.counters["rx.csum_completed"] == 1


def test_tso_packets_from_the_stack_leave_with_their_gso_header_in_order() -> None:
    """A TSO packet handed over with its segment size (``send(frame, gso_size)``) leaves as it
    is, with NEEDS_CSUM and TCPV4 at that size, between the frames sent before and after it
    (which are merged as before)."""
    dev = TapDevice(-1, "tapx", offload=True)
    written: list[tuple[bytes, bytes]] = []
    dev.write_frame = lambda f, h=None: written.append((bytes(f), h)) or True  # type: ignore

    class Loop:
        def call_soon(self, fn):  # noqa: ANN001, ANN202
            self.fn = fn

    loop = Loop()
    dev._loop = loop  # type: ignore[assignment]
    before = [seg(1000 + 1448 * i, b"a" * 1448) for i in range(3)]
    tso = seg(1000 + 1448 * 3, b"b" * 1448 * 4, ACK | PSH)
    after = seg(1000 + 1448 * 7, b"c" * 100, ACK | PSH)
    for f in before:
        dev.send(f)
    dev.send(tso, 1448)
    dev.send(after)
    loop.fn()
    assert [w[0] for w in written[1:]] == [tso, after]
    assert VNET_HDR.unpack(written[0][1])[1:4] == (VNET_GSO_TCPV4, 66, 1448)  # the merged 3
    assert VNET_HDR.unpack(written[1][1]) == (VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, 66, 1448, 34, 16)
    assert written[2][1] is None
    assert dev.counters["tx.gso_frames"] == 2 and dev.counters["tx.gso_segments"] == 3 + 4
    assert dev.counters["tx.tso_frames"] == 1


def test_frames_held_for_the_merge_leave_when_the_device_is_detached() -> None:
    """With ``tx_merge`` a frame waits for the end of the loop iteration; a stack that stops in
    that iteration (its last ACK just queued) still sends it when it detaches the device."""
    dev = TapDevice(-1, "tapx", offload=True)
    written: list[bytes] = []
    dev.write_frame = lambda f, h=None: written.append(bytes(f)) or True  # type: ignore

    class Loop:
        def call_soon(self, fn):  # noqa: ANN001, ANN202
            self.fn = fn  # never runs: the loop stops first

    dev._loop = Loop()  # type: ignore[assignment]
    last_ack = seg(5000, b"", ACK)
    dev.send(last_ack)
    dev.detach()
    assert written == [last_ack]


def test_pure_acks_a_later_one_supersedes_are_filtered() -> None:
    """ACK filtering (RFC 3449 §5.2.2, sch_cake's ack-filter): of back-to-back pure ACKs of one
    flow only the one acknowledging most goes on; duplicate ACKs, SACK blocks the next ACK does
    not repeat, window updates, data, other flows and frames with a bad checksum all pass."""
    from stacklab.device.tap import filter_acks

    def ack(n: int, **kw: object) -> bytes:
        return seg(1, b"", ack=n, **kw)  # type: ignore[arg-type]

    t = build_tcp(A, B, 40000, 80, 1, 5000, ACK, 500, b"",
                  encode_options(timestamps=(1, 2), sack_blocks=[(6000, 7000)]))
    sack = bytes(build_ethernet(MB, MA, ETH_P_IPV4, build_ipv4(A, B, 6, t, ident=1, df=True)))
    bad = bytearray(ack(7000))
    bad[50] ^= 0xFF  # the TCP checksum
    frames = [ack(1000), ack(2000), ack(3000),  # the first two go: 3000 covers them
              ack(3000), ack(3000, window=900),  # a duplicate ACK, a window update: kept
              seg(9, b"data", ack=3000),  # data (the window update before it is kept)
              ack(4500, sport=1234), ack(5000),  # two flows: both kept
              sack, ack(6000),  # a SACK block above the next ACK: kept (the scoreboard's)
              bad, ack(8000)]  # a bad checksum nobody vouched for: 6000 before it stays
    batch = [(f, True, 0) for f in frames[:-2]] + [(bad, False, 0), (frames[-1], False, 0)]
    out = list(filter_acks(iter(batch)))
    # ack(5000): the SACK after it says that and more; the last one, checked here, goes on valid
    assert [f for f, _, _ in out] == frames[2:7] + frames[8:]
    assert [v for _, v, _ in out[-2:]] == [False, True]
    dev = TapDevice(-1, "tapx", offload=True)
    assert dev.ack_filter and not TapDevice(-1, "tapy").ack_filter


def sack_ack(n: int, blocks: list[tuple[int, int]], window: int = 500) -> bytes:
    t = build_tcp(A, B, 40000, 80, 1, n, ACK, window, b"",
                  encode_options(timestamps=(1, 2), sack_blocks=blocks))
    return bytes(build_ethernet(MB, MA, ETH_P_IPV4, build_ipv4(A, B, 6, t, ident=1, df=True)))


def test_sack_acks_a_later_one_repeats_are_filtered() -> None:
    """Under loss nearly every ACK carries SACK blocks: one whose ACK number and blocks the next
    ACK repeats (its blocks grown, or below the next ACK number) goes; one whose block the next
    no longer reports, a D-SACK, and exact duplicates stay (sch_cake's ack-filter rule)."""
    from stacklab.device.tap import filter_acks

    frames = [
        sack_ack(5000, [(6000, 7000)]),  # grown by the next: filtered
        sack_ack(5000, [(6000, 8000)]),  # repeated inside the next's second block: filtered
        sack_ack(5000, [(9000, 10000), (6000, 8000)]),  # its block below the next ACK: filtered
        sack_ack(8000, [(9000, 10000)]),  # kept: the next reports more, but not (9000, 10000)
        sack_ack(8000, [(12000, 13000), (11000, 11500), (10500, 10600)]),
        sack_ack(8000, [(12000, 13000), (11000, 11500), (10500, 10600)]),  # a duplicate: kept
        sack_ack(8000, [(12000, 13000), (11000, 11500), (10500, 10600)], window=900),  # kept
        sack_ack(14000, [(5000, 6000)]),  # a D-SACK (below its ACK): kept
        sack_ack(15000, [(16000, 17000), (15500, 18000)]),  # a D-SACK (inside the 2nd): kept
        sack_ack(19000, []),
    ]
    kept = [f for f, _, _ in filter_acks((f, True, 0) for f in frames)]
    assert kept == frames[3:]
    # the SACKed ranges the stack learns are the same with or without the filter
    assert _sacked(kept) == _sacked(frames)


def test_an_ack_whose_dropped_block_the_stack_already_got_is_filtered() -> None:
    """With timestamps a receiver reports three SACK blocks; under loss each new hole pushes the
    oldest out of the next ACK, which kept the ACK before it (its block unrepeated). When that
    block was in the last ACK of the flow that went on (the stack has it), the earlier ACK says
    nothing new and goes too, across read batches (the device keeps the flows' last ACKs); an
    ACK the filter remembers from a later point of the stream (a higher ACK number) does not
    count."""
    from stacklab.device.tap import filter_acks

    a1 = sack_ack(8000, [(10000, 11000), (9000, 9500)])
    a2 = sack_ack(8000, [(12000, 13000), (10000, 11000), (9000, 9500)])
    a3 = sack_ack(8000, [(14000, 15000), (12000, 13000), (10000, 11000)])  # (9000, 9500) out
    a4 = sack_ack(8000, [(14000, 16000), (12000, 13000), (10000, 11000)])
    known: dict = {}
    assert [f for f, _, _ in filter_acks([(a1, True, 0)], known)] == [a1]  # one batch
    batch = [(f, True, 0) for f in (a2, a3, a4)]
    kept = [f for f, _, _ in filter_acks(batch, known)]  # the next batch
    assert kept == [a4]
    assert _sacked([a1, *kept]) == _sacked([a1, a2, a3, a4])
    assert [f for f, _, _ in filter_acks(batch)] == [a2, a4]  # nothing known: a2 stays
    later = {}
    list(filter_acks([(sack_ack(8500, [(10000, 11000), (9000, 9500)]), True, 0)], later))
    assert [f for f, _, _ in filter_acks(batch, later)] == [a2, a4]


def _sacked(frames: list[bytes]) -> tuple[int, set[int]]:
    """The highest ACK number and the set of kilobyte marks SACKed above it."""
    top, marks = 0, set()
    for f in frames:
        t = TcpView(IPv4View(EthernetView(f).payload).payload)
        top = max(top, t.ack)
        for s, e in t.sack_blocks():
            marks |= set(range(s, e, 500))
    return top, {m for m in marks if m >= top}


def test_the_reader_hands_the_stack_only_the_acks_that_say_something() -> None:
    """Through the attached reader (a datagram socket pair standing in for the device): the
    superseded ACKs are counted, not delivered; the rest arrive in order with their flags."""
    import asyncio
    import socket

    from stacklab.device.tap import VNET_F_DATA_VALID

    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        a.setblocking(False)
        dev = TapDevice(a.fileno(), "tapx", offload=True)
        hdr = VNET_HDR.pack(VNET_F_DATA_VALID, 0, 0, 0, 0, 0)
        frames = [seg(1, b"", ack=n) for n in (100, 200, 300)] + [seg(5, b"x" * 100)]
        for f in frames:
            b.send(hdr + f)
        got: list[tuple[bytes, bool, int]] = []
        loop = asyncio.new_event_loop()
        try:
            dev.attach(loop, lambda f, valid, gso: got.append((bytes(f), valid, gso)))
            dev._readable()
            dev.detach()
        finally:
            loop.close()
        assert got == [(frames[2], True, 0), (frames[3], True, 0)]
        assert dev.counters["rx.acks_filtered"] == 2 and dev.counters["rx.frames"] == 4
    finally:
        a.close()
        b.close()
