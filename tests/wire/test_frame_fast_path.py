"""parse_ipv4_tcp_frame (the one-unpack Ethernet/IPv4/TCP path) reads what the per-layer views
read, on valid frames, on frames it must hand to the per-layer path (VLAN, IP options,
fragments, other protocols) and on broken ones: same values, same checksum verdicts, same
MalformedPacket (layer and field)."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from stacklab.wire import MalformedPacket
from stacklab.wire.checksum import pseudo_header
from stacklab.wire.ethernet import ETH_P_IPV4, EthernetView, build_ethernet
from stacklab.wire.frame import (
    PartialFrame,
    TcpFrameTemplate,
    VerifiedFrame,
    complete_checksum,
    parse_ipv4_tcp_frame,
    parse_ipv4_tcp_segment,
)
from stacklab.wire.ipv4 import IPv4View, build_ipv4
from stacklab.wire.tcp import ACK, PSH, TcpView, build_tcp, encode_options

from .conftest import ip4s, macs, u16, u32


def build_frame(dst_mac: bytes, src_mac: bytes, src: bytes, dst: bytes, ident: int, ttl: int,
                df: bool, sp: int, dp: int, seq: int, ack: int, flags: int, window: int,
                payload: bytes, psum: int, ts: tuple[int, int] | None, tos: int = 0,
                urgent: int = 0, partial: bool = False) -> bytes:
    """One frame, from a template of its own."""
    return TcpFrameTemplate(dst_mac, src_mac, src, dst, ttl, df, sp, dp, psum,
                            partial).build(ident, seq, ack, flags, window, payload, ts, tos, urgent)


_GETTERS = ("mss", "wscale", "sack_permitted", "sack_blocks", "timestamps")


def _view_fields(eth: EthernetView, ip: IPv4View, t: TcpView) -> tuple:
    opts = []
    for name in _GETTERS:
        try:
            opts.append(getattr(t, name)())
        except MalformedPacket as e:
            opts.append(("malformed", e.layer, e.field))
    return (
        bytes(eth.buf), eth.dst, eth.src, eth.ethertype, eth.vlan, eth.tci, eth.header_len,
        bytes(eth.payload),
        bytes(ip.buf), ip.header_len, ip.tos, ip.total_length, ip.ident, ip.flags_frag, ip.ttl,
        ip.proto, ip.checksum, ip.src, ip.dst, bytes(ip.payload), bytes(ip.options),
        bytes(t.buf), t.src_port, t.dst_port, t.seq, t.ack, t.flags, t.window, t.checksum,
        t.urgent, t.header_len, bytes(t.payload), tuple(opts),
    )


def per_layer(frame: bytes) -> tuple | None:
    """What a caller gets from the three views one after the other."""
    try:
        eth = EthernetView(frame)
        if eth.ethertype != ETH_P_IPV4:
            return None
        ip = IPv4View(eth.payload)
        if ip.proto != 6 or ip.flags_frag & 0x3FFF:
            return None
        t = TcpView(ip.payload)
        return _view_fields(eth, ip, t) + (ip.checksum_ok(), t.checksum_ok(ip.src, ip.dst))
    except MalformedPacket as e:
        return ("malformed", e.layer, e.field)


def fast(frame: bytes | memoryview, with_length: bool = False) -> tuple | None:
    """The fused parse (``with_length``: told the frame's length, as the receive path does)."""
    try:
        r = parse_ipv4_tcp_frame(frame, length=len(frame) if with_length else -1)
    except MalformedPacket as e:
        return ("malformed", e.layer, e.field)
    n = len(frame) if with_length else -1
    seg = parse_ipv4_tcp_segment(frame, length=n)  # never raises
    if r is None:
        assert seg is None
        return None
    eth, ip, t, ip_ok, tcp_ok = r
    if seg is not None:  # the early demux's parse: the same TCP view, TOS and verdicts
        st_, tos, s_ip_ok, s_tcp_ok = seg
        assert _view_fields(eth, ip, st_)[21:] == _view_fields(eth, ip, t)[21:]
        assert (tos, s_ip_ok, s_tcp_ok) == (ip.tos, ip_ok, tcp_ok)
        # only a frame whose bytes 26..38 are the flow's addresses and ports
        assert eth.header_len == 14 and ip.header_len == 20
        assert bytes(frame[26:38]) == ip.src + ip.dst + bytes(t.buf[:4])
    else:  # any other frame is the per-layer path's
        assert type(ip) is IPv4View
    return _view_fields(eth, ip, t) + (ip_ok, tcp_ok)


MAC_A, MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
IP_A, IP_B = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])


def frame(seg_opts: bytes = b"", payload: bytes = b"", flags: int = ACK, **ip_kw) -> bytes:
    seg = build_tcp(IP_A, IP_B, 40000, 80, 1000, 2000, flags, 502, payload, seg_opts)
    return bytes(build_ethernet(MAC_B, MAC_A, ETH_P_IPV4, build_ipv4(IP_A, IP_B, 6, seg,
                                                                     **ip_kw)))


def test_ack_with_timestamps_fields_and_checksums() -> None:
    f = frame(encode_options(timestamps=(7, 9)), b"hello", ACK | PSH, ident=5, df=True)
    eth, ip, t, ip_ok, tcp_ok = parse_ipv4_tcp_frame(f)
    assert isinstance(eth, EthernetView) and isinstance(ip, IPv4View) and isinstance(t, TcpView)
    assert (eth.dst, eth.src, ip.src, ip.dst, ip.ident, ip.df) == (MAC_B, MAC_A, IP_A, IP_B, 5,
                                                                    True)
    assert (t.src_port, t.dst_port, t.seq, t.ack, t.flags, t.window) == \
        (40000, 80, 1000, 2000, ACK | PSH, 502)
    assert t.timestamps() == (7, 9) and t.mss() is None and bytes(t.payload) == b"hello"
    assert ip_ok and tcp_ok
    assert fast(f) == per_layer(f)


def test_bad_checksums_are_reported_not_raised() -> None:
    f = bytearray(frame(encode_options(timestamps=(7, 9)), b"x" * 1200))
    f[30] ^= 1  # destination address: breaks the IPv4 header and the TCP pseudo-header
    assert parse_ipv4_tcp_frame(bytes(f))[3:] == (False, False)
    g = bytearray(frame(b"", b"y" * 1201))
    g[-1] ^= 0x10  # payload byte: only TCP
    assert parse_ipv4_tcp_frame(bytes(g))[3:] == (True, False)
    assert fast(bytes(f)) == per_layer(bytes(f)) and fast(bytes(g)) == per_layer(bytes(g))


def test_other_frames_take_the_per_layer_path() -> None:
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    tagged = bytes(e / Dot1Q(vlan=5) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(dport=80))
    ip_opts = bytes(e / IP(src="10.0.0.1", dst="10.0.0.2", options=b"\x94\x04\x00\x00")
                    / TCP(dport=80, options=[("MSS", 1400), ("WScale", 2)]) / Raw(b"z" * 9))
    r = parse_ipv4_tcp_frame(tagged)
    assert r is not None and r[0].vlan == 5 and r[2].dst_port == 80 and r[3:] == (True, True)
    r = parse_ipv4_tcp_frame(ip_opts)
    assert r is not None and r[1].header_len == 24 and r[2].mss() == 1400 and r[3:] == (True,
                                                                                       True)
    udp = bytes(e / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(dport=53) / Raw(b"q" * 40))
    first_fragment = frame(b"", b"a" * 64, mf=True)
    assert parse_ipv4_tcp_frame(udp) is None and parse_ipv4_tcp_frame(first_fragment) is None
    # IPv4 options whose frame read as if the header were 20 bytes would look like a valid one
    # (its TCP header's fixed part 4 bytes on: the ACK number's first half a data offset 5)
    ip_opts_2 = bytes(e / IP(src="10.0.0.1", dst="10.0.0.2", options=b"\x01\x01\x01\x00")
                      / TCP(dport=80, ack=0x5010_0000, flags="A") / Raw(b"w" * 30))
    for f in (tagged, ip_opts, ip_opts_2, udp, first_fragment):
        assert fast(f) == per_layer(f)
        assert parse_ipv4_tcp_segment(f) is None  # not the early demux's frame


def test_truncated_and_inconsistent_lengths_raise_like_the_views() -> None:
    f = frame(encode_options(timestamps=(1, 2)), b"p" * 30)
    for cut in range(len(f)):
        assert fast(f[:cut]) == per_layer(f[:cut])
    for offset_byte in (0xF0, 0x40):  # 60 bytes > the 37-byte segment; 16 bytes < 20
        bad_offset = bytearray(frame(encode_options(timestamps=(1, 2)), b"p" * 5))
        bad_offset[14 + 20 + 12] = offset_byte
        assert fast(bytes(bad_offset)) == per_layer(bytes(bad_offset)) == \
            ("malformed", "tcp", "data_offset")
    long_ip = bytearray(f)
    struct.pack_into("!H", long_ip, 16, len(f))  # total length past the frame
    assert fast(bytes(long_ip)) == ("malformed", "ipv4", "total_length")


def test_ethernet_padding_is_not_part_of_the_segment() -> None:
    f = frame() + b"\xAA" * 6  # 54-byte frame padded to 60 with non-zero bytes
    eth, ip, t, ip_ok, tcp_ok = parse_ipv4_tcp_frame(f)
    assert len(t.buf) == 20 and ip_ok and tcp_ok and fast(f) == per_layer(f)


options = st.sampled_from([
    b"", encode_options(timestamps=(1, 2)),
    encode_options(mss=1460, sack_permitted=True, timestamps=(3, 4), wscale=7),
    encode_options(timestamps=(5, 6), sack_blocks=[(10, 20), (30, 40)]),
    encode_options(mss=536), b"\x01\x01\x08\x0a" + bytes(8), b"\x01\x01\x08\x09" + bytes(8),
    b"\x08\x0a" + bytes(10), b"\x02\x04\x05", b"\xfe\x03\x00\x00",
])


@settings(max_examples=300, deadline=None)
@given(dst=macs, src=macs, saddr=ip4s, daddr=ip4s, ports=st.tuples(u16, u16), seq=u32,
       ack=u32, flags=st.integers(0, 0x1FF), opts=options, payload=st.binary(max_size=1600),
       ident=u16, frag=st.sampled_from([(False, 0), (True, 0), (False, 8)]),
       pad=st.binary(max_size=8),
       mutation=st.one_of(st.none(), st.tuples(st.integers(0, 2000), st.integers(1, 255))),
       cut=st.one_of(st.none(), st.integers(0, 2000)), as_view=st.booleans(),
       with_length=st.booleans())
def test_fast_path_agrees_with_the_views(dst, src, saddr, daddr, ports, seq, ack, flags, opts,
                                         payload, ident, frag, pad, mutation, cut,
                                         as_view, with_length) -> None:
    seg = build_tcp(saddr, daddr, ports[0], ports[1], seq, ack, flags, 1000, payload, opts)
    f = bytearray(build_ethernet(dst, src, ETH_P_IPV4,
                                 build_ipv4(saddr, daddr, 6, seg, ident=ident, mf=frag[0],
                                            frag_offset=frag[1]))) + pad
    if mutation is not None and mutation[0] < len(f):
        f[mutation[0]] ^= mutation[1]
    if cut is not None:
        del f[cut:]
    data = bytes(f)
    expected = per_layer(data)
    assert fast(memoryview(data) if as_view else data, with_length) == expected
    if mutation is None and cut is None and not any(frag):
        assert expected is not None and expected[-2:] == (True, True)
        assert expected[22:28] == (ports[0], ports[1], seq, ack, flags, 1000)
        assert expected[31] == payload


@settings(max_examples=300, deadline=None)
@given(dst=macs, src=macs, saddr=ip4s, daddr=ip4s, ports=st.tuples(u16, u16), seq=u32,
       ack=u32, flags=st.integers(0, 0x1FF), window=u16, ts=st.one_of(st.none(),
                                                                      st.tuples(u32, u32)),
       payload=st.binary(max_size=9000), ident=u16, ttl=st.integers(1, 255),
       df=st.booleans(), tos=st.integers(0, 255), urgent=u16)
def test_built_frame_is_build_tcp_in_build_ipv4_in_ethernet(dst, src, saddr, daddr, ports, seq,
                                                             ack, flags, window, ts, payload,
                                                             ident, ttl, df, tos, urgent) -> None:
    psum = pseudo_header(saddr, daddr, 6, 0)
    seg = build_tcp(b"", b"", ports[0], ports[1], seq, ack, flags, window, payload,
                    urgent=urgent, psum=psum, timestamps=ts)
    expected = bytes(build_ethernet(dst, src, ETH_P_IPV4,
                                    build_ipv4(saddr, daddr, 6, seg, ttl, ident, df, tos=tos)))
    got = build_frame(dst, src, saddr, daddr, ident, ttl, df, ports[0], ports[1], seq,
                               ack, flags, window, payload, psum, ts, tos, urgent)
    assert type(got) is VerifiedFrame and isinstance(got, bytes) and got == expected
    r = parse_ipv4_tcp_frame(got)
    assert r is not None and r[3:] == (True, True)
    # the verdicts the parse takes on trust are those it computes for the same bytes
    plain = parse_ipv4_tcp_frame(bytes(got))
    assert plain is not None and plain[3:] == (True, True)
    assert fields(r) == fields(plain)


@settings(max_examples=300, deadline=None)
@given(saddr=ip4s, daddr=ip4s, ports=st.tuples(u16, u16), seq=u32, ack=u32,
       flags=st.integers(0, 0x1FF), window=u16, ts=st.one_of(st.none(), st.tuples(u32, u32)),
       payload=st.binary(max_size=9000), ident=u16, tos=st.integers(0, 255), urgent=u16)
def test_a_partial_frame_completed_is_the_verified_frame(saddr, daddr, ports, seq, ack, flags,
                                                         window, ts, payload, ident, tos,
                                                         urgent) -> None:
    """Checksum offload: the frame built with its TCP checksum partial, once completed (as
    whatever reads it does), is byte for byte the frame built without; the partial field is the
    folded pseudo-header sum a device (or Linux's skb_checksum_help) completes."""
    psum = pseudo_header(saddr, daddr, 6, 0)
    args = (b"\x02" * 6, b"\x04" * 6, saddr, daddr, ident, 64, True, ports[0], ports[1], seq,
            ack, flags, window, payload, psum, ts, tos, urgent)
    full = build_frame(*args)
    part = build_frame(*args, partial=True)
    assert type(part) is PartialFrame and part[:50] == full[:50] and part[52:] == full[52:]
    seg_len = len(full) - 34
    partial_sum = (psum + seg_len) % 0xFFFF or 0xFFFF
    assert int.from_bytes(part[50:52], "big") == partial_sum
    done = complete_checksum(part)
    assert type(done) is VerifiedFrame and done == full
    assert complete_checksum(full) is full
    r = parse_ipv4_tcp_frame(part)
    plain = parse_ipv4_tcp_frame(full)
    assert r is not None and plain is not None and r[3:] == (True, True)
    assert fields(r) == fields(plain)


_segments = st.lists(st.tuples(u16, u32, u32, st.integers(0, 0x1FF), u16,
                               st.binary(max_size=3000),
                               st.one_of(st.none(), st.tuples(u32, u32)),
                               st.integers(0, 255), u16), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(dst=macs, src=macs, saddr=ip4s, daddr=ip4s, ports=st.tuples(u16, u16),
       ttl=st.integers(1, 255), df=st.booleans(), partial=st.booleans(), segments=_segments)
def test_one_template_builds_each_segment_of_its_flow_as_build_tcp(dst, src, saddr, daddr,
                                                                   ports, ttl, df, partial,
                                                                   segments) -> None:
    """A flow's template, reused segment after segment (what the send path does), gives for
    each the bytes of the spec: build_tcp inside build_ipv4 behind the Ethernet header."""
    psum = pseudo_header(saddr, daddr, 6, 0)
    t = TcpFrameTemplate(dst, src, saddr, daddr, ttl, df, ports[0], ports[1], psum, partial)
    for ident, seq, ack, flags, window, payload, ts, tos, urgent in segments:
        seg = build_tcp(b"", b"", ports[0], ports[1], seq, ack, flags, window, payload,
                        urgent=urgent, psum=psum, timestamps=ts)
        expected = bytes(build_ethernet(dst, src, ETH_P_IPV4,
                                        build_ipv4(saddr, daddr, 6, seg, ttl, ident, df,
                                                   tos=tos)))
        got = t.build(ident, seq, ack, flags, window, payload, ts, tos, urgent)
        assert type(got) is (PartialFrame if partial else VerifiedFrame)
        assert complete_checksum(got) == expected


def test_a_copy_of_a_partial_frame_is_not_trusted() -> None:
    """Only the builder's own object is trusted: its bytes copied (by anything that forgot to
    complete it first) fail the TCP check instead of passing as good."""
    psum = pseudo_header(b"\x0a\0\0\1", b"\x0a\0\0\2", 6, 0)
    part = build_frame(b"\x02" * 6, b"\x04" * 6, b"\x0a\0\0\1", b"\x0a\0\0\2", 1, 64,
                                True, 1000, 80, 1, 2, 0x10, 100, b"payload!" * 100, psum, (5, 6),
                                partial=True)
    r = parse_ipv4_tcp_frame(bytes(part))
    assert r is not None and r[3:] == (True, False)


def fields(r: tuple) -> tuple:
    eth, ip, tcp = r[:3]
    return (bytes(eth.dst), bytes(eth.src), ip.src, ip.dst, ip.ident, ip.ttl, ip.tos,
            tcp.src_port, tcp.dst_port, tcp.seq, tcp.ack, tcp.flags, tcp.window,
            bytes(tcp.payload), tcp.timestamps())


def test_a_changed_copy_of_a_verified_frame_is_verified_again() -> None:
    """Only the builder's own object skips the checksum check: a copy with a flipped bit (what
    a corrupting link delivers) is plain bytes, and its bad checksum is seen."""
    psum = pseudo_header(b"\x0a\0\0\1", b"\x0a\0\0\2", 6, 0)
    got = build_frame(b"\x02" * 6, b"\x04" * 6, b"\x0a\0\0\1", b"\x0a\0\0\2", 1, 64,
                               True, 1000, 80, 1, 2, 0x10, 100, b"payload!" * 100, psum, (5, 6))
    damaged = bytearray(got)
    damaged[100] ^= 0x10
    r = parse_ipv4_tcp_frame(bytes(damaged))
    assert r is not None and r[3:] == (True, False)


def _segment_fields(r: tuple | None) -> tuple | None:
    """All parse_ipv4_tcp_segment gives: every slot of the TCP view (its options' raw scan
    result included), the TOS and both verdicts."""
    if r is None:
        return None
    t, tos, ip_ok, tcp_ok = r
    return (type(t), bytes(t.buf), t.src_port, t.dst_port, t.seq, t.ack, t.flags, t.window,
            t.header_len, bytes(t.payload), type(t.payload), t._opts, tos, ip_ok, tcp_ok)


@settings(max_examples=200, deadline=None)
@given(dst=macs, src=macs, saddr=ip4s, daddr=ip4s, ports=st.tuples(u16, u16),
       ttl=st.integers(1, 255), df=st.booleans(), partial=st.booleans(), segments=_segments,
       cut=st.integers(-3, -1))
def test_the_packed_fields_of_a_built_frame_are_what_its_parse_gives(dst, src, saddr, daddr,
                                                                     ports, ttl, df, partial,
                                                                     segments, cut) -> None:
    """The receiver takes what TcpFrameTemplate.build packed in place of the unpack and the
    checks: for every segment of a flow (with and without timestamps, any flags, TOS and
    payload), what parse_ipv4_tcp_segment gives of the built frame (told its length, or a wrong
    shorter one) is exactly what it gives of the same bytes without them."""
    psum = pseudo_header(saddr, daddr, 6, 0)
    t = TcpFrameTemplate(dst, src, saddr, daddr, ttl, df, ports[0], ports[1], psum, partial)
    for ident, seq, ack, flags, window, payload, ts, tos, urgent in segments:
        got = t.build(ident, seq, ack, flags, window, payload, ts, tos, urgent)
        assert got.packed is not None
        # the same bytes as an object of the same type without them: the unpack and the checks
        # (of a frame that is trusted all the same)
        same = type(got)(got)
        assert same.packed is None
        for length in (-1, len(got), len(got) + cut):
            r = parse_ipv4_tcp_segment(got, False, length)
            assert _segment_fields(r) == _segment_fields(parse_ipv4_tcp_segment(same, False,
                                                                                length))
        # the verdicts it takes on trust are those of the bytes completed and verified
        plain = bytes(complete_checksum(got))
        done = complete_checksum(got)  # the completed frame keeps them (the same fields)
        assert done.packed == got.packed
        assert _segment_fields(parse_ipv4_tcp_segment(done)) == _segment_fields(
            parse_ipv4_tcp_segment(plain))
        # and the fused parse's Ethernet and IPv4 views are those of the general path
        full, ref = parse_ipv4_tcp_frame(got), parse_ipv4_tcp_frame(same)
        assert full is not None and ref is not None
        assert _view_fields(*full[:3]) == _view_fields(*ref[:3]) and full[3:] == ref[3:]


def test_two_receivers_of_one_built_frame_share_no_mutable_state() -> None:
    """A frame delivered twice (a switch's flood, a duplicating link): each parse makes its own
    view; what one receiver does to its view is not seen by the other; the packed fields are
    an immutable tuple."""
    psum = pseudo_header(IP_A, IP_B, 6, 0)
    f = build_frame(MAC_B, MAC_A, IP_A, IP_B, 1, 64, True, 40000, 80, 1000, 2000, ACK, 502,
                    b"data" * 100, psum, (7, 8))
    r1 = parse_ipv4_tcp_segment(f)
    r2 = parse_ipv4_tcp_segment(f)
    assert r1 is not None and r2 is not None
    v1, v2 = r1[0], r2[0]
    assert v1 is not v2 and v1.payload is not v2.payload and v1.buf is not v2.buf
    before = _segment_fields(r2)
    v1.seq = 0
    v1.flags = 0
    v1._opts = None
    v1.payload = memoryview(b"")
    assert _segment_fields(r2) == before
    assert _segment_fields(parse_ipv4_tcp_segment(f)) == before
    assert type(f.packed) is tuple and hash(f.packed) is not None  # (all of it immutable)


def test_a_changed_frame_has_no_packed_fields() -> None:
    """A frame a stage changes (Corrupt, mark_ce, a router's TTL) is a new object: plain bytes,
    or a built type without packed fields, parsed as any."""
    psum = pseudo_header(IP_A, IP_B, 6, 0)
    args = (MAC_B, MAC_A, IP_A, IP_B, 1, 64, True, 40000, 80, 1000, 2000, ACK, 502,
            b"data" * 100, psum, (7, 8))
    for partial in (False, True):
        f = build_frame(*args, partial=partial)
        buf = bytearray(complete_checksum(f))
        buf[15] |= 3  # CE
        for changed in (bytes(buf), type(f)(buf)):
            assert getattr(changed, "packed", None) is None
            r = parse_ipv4_tcp_segment(changed)
            assert r is not None and r[1] == 3 and r[2] is (type(changed) is not bytes)
