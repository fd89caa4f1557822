"""TSO in the TCB (stack/tcp/gso.py): on a port whose device segments (``Port.gso_max``), the
send fast path hands over TSO packets; cut by an independent software GSO (scapy, as the
kernel's ``tcp_gso_segment`` cuts them: sequence numbers, PSH/FIN on the last piece only, IPv4
IDs counting up, checksums completed) they are exactly the frames the TCB sends segment by
segment on a port without it, in the same order at the same times."""

from __future__ import annotations

import random

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from stacklab.net.network import Network
from stacklab.stack.node import GsoFrame
from stacklab.stack.tcp.config import TcpConfig
from stacklab.wire.checksum import internet_checksum

GSO_MAX = 65535 - 120  # what a TAP device with offloads takes (device/tap.py GSO_MAX)


def software_gso(frame: GsoFrame) -> list[bytes]:
    """The kernel's cut of a TSO packet, by scapy: after checking that the TCP checksum field
    holds the pseudo-header's partial sum (completing it over the segment verifies)."""
    pkt = Ether(bytes(frame))
    ip, tcp = pkt[IP], pkt[TCP]
    assert ip.len == len(frame) - 14
    seg = bytearray(bytes(ip)[20:])
    # CHECKSUM_PARTIAL: the field holds the pseudo-header's folded sum; the data's sum added to
    # it is the checksum (what the kernel stores in each piece)
    field = int.from_bytes(seg[16:18], "big")
    seg[16:18] = b"\x00\x00"
    pseudo = (int.from_bytes(bytes(ip)[12:20], "big") + 6 + len(seg)) % 0xFFFF
    assert field % 0xFFFF == pseudo % 0xFFFF
    seg[16:18] = internet_checksum(seg, pseudo).to_bytes(2, "big")
    data = bytes(tcp.payload)
    size = frame.gso_size
    assert len(data) > size
    out = []
    for i, k in enumerate(range(0, len(data), size)):
        last = k + size >= len(data)
        p = pkt.copy()
        p[IP].id = (ip.id + i) & 0xFFFF
        p[IP].len = None
        p[IP].chksum = None
        p[TCP].seq = (tcp.seq + k) & 0xFFFFFFFF
        p[TCP].flags = int(tcp.flags) if last else int(tcp.flags) & ~0x09  # PSH, FIN
        p[TCP].chksum = None
        p[TCP].remove_payload()
        out.append(bytes(p / Raw(data[k:k + size])))
    return out


def run(tso: bool, loss: float, seed: int = 7, tail: int = 0, config: TcpConfig | None = None) \
        -> tuple[list[tuple[float, str, bytes]], int, int]:
    """The frames on the wire (time, sender, frame), how many were TSO packets and how many of
    those left while the sender's FIN was queued; ``tail``: a last write of that many bytes
    right before the FIN, without waiting for room."""
    net = Network(seed=seed)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="2ms", rate="200Mbit", loss=loss)
    net.autoconfigure()
    wire: list[tuple[float, str, bytes]] = []
    packets = [0, 0]
    for h in (a, b):
        h.interfaces[0].port.csum_offload = False  # the tap below copies frames, as a TAP does
        real = h.frames_to_send

        def tap(h=h, real=real):  # noqa: ANN001, ANN202
            out = []
            for ifindex, f in real():
                frames = [bytes(f)]
                if type(f) is GsoFrame:
                    packets[0] += 1
                    packets[1] += any(t.fin_seq is not None for t in h.tcp.conns.values())
                    frames = software_gso(f)
                for g in frames:
                    wire.append((round(net.now, 9), h.name, g))
                    out.append((ifindex, g))
            return out

        h.frames_to_send = tap
    if tso:
        a.interfaces[0].port.gso_max = GSO_MAX
    rng = random.Random(seed)
    # writes of many sizes: the ends of writes (PSH) fall inside and at the ends of packets
    chunks = [rng.randbytes(rng.choice((1000, 1448, 5000, 65536, 200_000))) for _ in range(40)]
    if tail:
        chunks.append(rng.randbytes(tail))
    got = bytearray()

    async def handle(r, w):  # noqa: ANN001, ANN202
        while x := await r.read(1 << 20):
            got.extend(x)
        w.close()

    async def main():  # noqa: ANN202
        await b.start_server(handle, port=9)
        r, w = await a.open_connection("b", 9, config=config)
        for c in chunks[:-1] if tail else chunks:
            w.write(c)
            await w.drain()
        if tail:
            w.write(chunks[-1])  # queued whole: the FIN waits behind it
        w.write_eof()
        await r.read()
        w.close()

    net.run(main(), until=120)
    net.close()
    assert bytes(got) == b"".join(chunks)
    return wire, packets[0], packets[1]


@pytest.mark.parametrize("loss", [0.0, 0.01], ids=["clean", "loss-1pc"])
def test_tso_packets_cut_by_software_gso_are_the_segments_sent_one_by_one(loss: float) -> None:
    plain, none, _ = run(False, loss)
    cut, packets, _ = run(True, loss)
    assert none == 0 and packets > 20  # TSO was used, and only with the port's offload
    assert len(cut) == len(plain)
    for i, (x, y) in enumerate(zip(plain, cut, strict=True)):
        assert x == y, f"frame {i} differs: {x[:2]} {y[:2]}"


def test_data_queued_before_the_fin_leaves_in_tso_packets() -> None:
    """The FIN queued behind 1 MB: everything but its own segment still goes as TSO packets
    (the fast path leaves only the FIN's segment to the general one), and the wire is the same
    as segment by segment."""
    cfg = TcpConfig(send_buffer=4 << 20)  # the whole tail fits: the FIN is queued behind it
    plain, _, _ = run(False, 0.0, tail=1 << 20, config=cfg)
    cut, _, with_fin = run(True, 0.0, tail=1 << 20, config=cfg)
    assert [f for _, _, f in plain] == [f for _, _, f in cut]
    assert with_fin > (1 << 20) // GSO_MAX // 2  # most of the tail went in TSO packets


def test_cut_splits_a_tso_packet_as_the_device_would() -> None:
    """A packet built for a device that no longer segments (the path changed before the
    flush) is cut by the layer: sequence numbers, PSH/FIN on the last piece, the same ACK,
    window, timestamps and ECN field on each."""
    from stacklab.stack.tcp.gso import cut
    from stacklab.stack.tcp.segment import ACK, FIN, PSH, Segment

    payload = bytes(range(256)) * 20  # 5120 bytes: 3 full segments of 1448 and 776
    seg = Segment(0xFFFFF000, 77, ACK | PSH | FIN, 500, payload, ts=(1, 2))
    seg.ecn = 2
    small = Segment(5, 77, ACK, 500, b"x" * 100, ts=(1, 2))
    out = cut([small, seg], 1448)
    assert out[0] is small
    pieces = out[1:]
    assert [p.seq for p in pieces] == [(0xFFFFF000 + k) & 0xFFFFFFFF for k in (0, 1448, 2896,
                                                                                4344)]
    assert b"".join(bytes(p.payload) for p in pieces) == payload
    assert [p.flags for p in pieces] == [ACK, ACK, ACK, ACK | PSH | FIN]
    assert all((p.ack, p.window, p.timestamps(), p.ecn) == (77, 500, (1, 2), 2) for p in pieces)


@pytest.mark.parametrize("loss", [0.0, 0.01], ids=["clean", "loss-1pc"])
def test_paced_packets_leave_as_tso_packets_that_cut_are_the_paced_segments(loss: float) -> None:
    """A paced connection (BBR) sends from the general path, in and out of loss recovery: each
    packet the pacer lets leave at once goes to the device as one TSO packet, and cut, the wire
    is the same as segment by segment, frame for frame, at the same times."""
    cfg = TcpConfig(congestion="bbr")
    plain, none, _ = run(False, loss, config=cfg)
    cut, packets, _ = run(True, loss, config=cfg)
    assert none == 0 and packets > 100
    assert len(cut) == len(plain)
    for i, (x, y) in enumerate(zip(plain, cut, strict=True)):
        assert x == y, f"frame {i} differs: {x[:2]} {y[:2]}"
