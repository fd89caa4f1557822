from __future__ import annotations

import struct

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, in4_chksum
from scapy.layers.inet6 import IPv6, in6_chksum

from stacklab.wire import MalformedPacket
from stacklab.wire.tcp import (
    ACK,
    AE,
    CWR,
    ECE,
    FIN,
    NS,
    PSH,
    RST,
    SYN,
    URG,
    AccEcnOpt,
    EolOpt,
    MssOpt,
    NopOpt,
    SackOpt,
    SackPermOpt,
    TcpSegment,
    TcpView,
    TimestampOpt,
    UnknownOpt,
    WscaleOpt,
    build_tcp,
    encode_options,
    flags_str,
    pack_options,
)

from .conftest import h, ip4s, ip6s, u8, u16, u32

SRC = bytes([10, 0, 0, 1])
DST = bytes([10, 0, 0, 2])
SRC6 = bytes.fromhex("20010db8000000000000000000000001")
DST6 = bytes.fromhex("20010db8000000000000000000000002")


def ref_checksum(src: bytes, dst: bytes, segment: bytes) -> int:
    """RFC 1071 word by word over the pseudo-header and the segment, independent of stacklab."""
    if len(src) == 4:
        pseudo = src + dst + struct.pack("!BBH", 0, 6, len(segment))
    else:
        pseudo = src + dst + struct.pack("!IxxxB", len(segment), 6)
    data = pseudo + segment + (b"\x00" if len(segment) % 2 else b"")
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


# Hand-written from the RFC 9293 §3.1 layout. Checksums were computed with ref_checksum (and agree
# with scapy's); each test below re-checks them.
# SYN-ACK 10.0.0.1.5000 > 10.0.0.2.80, seq 1 ack 2, offset 10, win 65535, options as Linux sends
# them: mss 1460, sackOK, TS val 1 ecr 0, nop, wscale 7.
SYNACK = h("""
    1388 0050 00000001 00000002 a012 ffff 2012 0000
    020405b4 0402 080a 00000001 00000000 01 030307
""")
SYNACK_CSUM_V6 = 0xD89F  # same bytes between 2001:db8::1 and 2001:db8::2
# PSH+ACK with nop, nop, TS val 123456 ecr 5678 and 5 bytes "hello".
DATA = h("""
    1388 0050 000003e8 000007d0 8018 01f5 04e7 0000
    0101 080a 0001e240 0000162e 68656c6c6f
""")
# ACK with nop, nop, sack of 3 blocks {100:200}{300:400}{500:600}.
SACK3 = h("""
    c350 1f90 11223344 55667788 c010 1000 1931 0000
    0101 051a 00000064 000000c8 0000012c 00000190 000001f4 00000258
""")
# SYN with an unknown option kind 253 (experimental) carrying abcd, then EOL and padding.
UNKNOWN = h("0400 0401 00000000 00000000 7002 0200 c904 0000 fd04 abcd 00 000000")
# Every control bit (NS/AE included), urgent pointer 7, no options.
ALLFLAGS = h("ffff 0001 ffffffff 80000000 51ff 0000 19db 0007")


def test_flag_values() -> None:
    assert (FIN, SYN, RST, PSH, ACK, URG, ECE, CWR, NS) == (1, 2, 4, 8, 16, 32, 64, 128, 256)
    assert AE == NS
    assert flags_str(SYN | ACK) == "S."
    assert flags_str(FIN | SYN | RST | PSH | ACK | URG | ECE | CWR) == "FSRP.UEW"
    assert flags_str(0) == "none"


@pytest.mark.parametrize("seg", [SYNACK, DATA, SACK3, UNKNOWN, ALLFLAGS])
def test_vector_checksums_are_right(seg: bytes) -> None:
    stored = struct.unpack_from("!H", seg, 16)[0]
    zeroed = seg[:16] + b"\x00\x00" + seg[18:]
    assert ref_checksum(SRC, DST, zeroed) == stored
    assert TcpView(seg).checksum_ok(SRC, DST)
    assert not TcpView(seg).checksum_ok(SRC, bytes([10, 0, 0, 3]))


def test_synack_vector_view() -> None:
    v = TcpView(SYNACK)
    assert (v.src_port, v.dst_port, v.seq, v.ack) == (5000, 80, 1, 2)
    assert (v.flags, v.window, v.checksum, v.urgent) == (SYN | ACK, 65535, 0x2012, 0)
    assert (v.header_len, v.data_offset, v.payload_len) == (40, 10, 0)
    assert v.mss() == 1460 and v.wscale() == 7 and v.sack_permitted()
    assert v.timestamps() == (1, 0) and v.sack_blocks() == ()
    assert v.options() == [MssOpt(1460), SackPermOpt(), TimestampOpt(1, 0), NopOpt(),
                           WscaleOpt(7)]
    assert isinstance(v.payload, memoryview) and len(v.payload) == 0


def test_synack_vector_value_object_and_summary() -> None:
    seg = TcpSegment.parse(SYNACK, SRC, DST)
    assert seg.checksum_valid is True and seg.checksum == 0x2012
    assert seg == TcpSegment(5000, 80, 1, 2, SYN | ACK, 65535, b"", 0,
                             [MssOpt(1460), SackPermOpt(), TimestampOpt(1, 0), NopOpt(),
                              WscaleOpt(7)])
    assert seg.summary() == ("Flags [S.], seq 1, ack 2, win 65535, options [mss 1460,sackOK,"
                             "TS val 1 ecr 0,nop,wscale 7], length 0")
    assert seg.summary_with_addresses(SRC, DST).startswith("10.0.0.1.5000 > 10.0.0.2.80: Flags")
    assert bytes(seg.build(SRC, DST)) == SYNACK


def test_synack_build_paths_byte_exact() -> None:
    opts = encode_options(mss=1460, sack_permitted=True, timestamps=(1, 0), wscale=7)
    assert opts == SYNACK[20:40]
    assert bytes(build_tcp(SRC, DST, 5000, 80, 1, 2, SYN | ACK, 65535, b"", opts)) == SYNACK
    v6 = build_tcp(SRC6, DST6, 5000, 80, 1, 2, SYN | ACK, 65535, b"", opts)
    assert struct.unpack_from("!H", v6, 16)[0] == SYNACK_CSUM_V6
    assert v6[:16] == SYNACK[:16] and v6[18:] == SYNACK[18:]
    assert TcpView(v6).checksum_ok(SRC6, DST6) and not TcpView(v6).checksum_ok(SRC, DST)


def test_data_vector() -> None:
    v = TcpView(DATA)
    assert (v.seq, v.ack, v.flags, v.window, v.header_len) == (1000, 2000, PSH | ACK, 501, 32)
    assert v.timestamps() == (123456, 5678) and v.mss() is None and not v.sack_permitted()
    assert bytes(v.payload) == b"hello"
    assert v.options() == [NopOpt(), NopOpt(), TimestampOpt(123456, 5678)]
    seg = TcpSegment.parse(DATA, SRC, DST)
    assert seg.summary() == ("Flags [P.], seq 1000:1005, ack 2000, win 501, "
                             "options [nop,nop,TS val 123456 ecr 5678], length 5")
    assert bytes(seg.build(SRC, DST)) == DATA
    opts = encode_options(timestamps=(123456, 5678))
    assert bytes(build_tcp(SRC, DST, 5000, 80, 1000, 2000, PSH | ACK, 501, b"hello", opts)) == DATA


def test_sack_vector() -> None:
    v = TcpView(SACK3)
    blocks = ((100, 200), (300, 400), (500, 600))
    assert v.sack_blocks() == blocks and v.timestamps() is None
    assert v.options() == [NopOpt(), NopOpt(), SackOpt(blocks)]
    seg = TcpSegment.parse(SACK3, SRC, DST)
    assert seg.checksum_valid
    assert "options [nop,nop,sack 3 {100:200}{300:400}{500:600}]" in seg.summary()
    assert seg.summary().startswith("Flags [.], ack 1432778632, win 4096")  # no seq: no data
    assert bytes(seg.build(SRC, DST)) == SACK3
    assert encode_options(sack_blocks=blocks) == SACK3[20:48]


def test_unknown_option_vector_kept() -> None:
    v = TcpView(UNKNOWN)
    assert v.options() == [UnknownOpt(253, b"\xab\xcd"), EolOpt()]
    assert v.mss() is None and v.wscale() is None
    seg = TcpSegment.parse(UNKNOWN, SRC, DST)
    assert seg.checksum_valid and "options [unknown-253 0xabcd,eol]" in seg.summary()
    assert bytes(seg.build(SRC, DST)) == UNKNOWN


def test_all_flags_vector() -> None:
    v = TcpView(ALLFLAGS)
    assert v.flags == 0x1FF and v.urgent == 7 and v.seq == 0xFFFFFFFF and v.ack == 1 << 31
    seg = TcpSegment.parse(ALLFLAGS, SRC, DST)
    assert seg.summary() == ("Flags [FSRP.UEWe], seq 4294967295, ack 2147483648, win 0, urg 7, "
                             "length 0")
    assert bytes(seg.build(SRC, DST)) == ALLFLAGS


def test_accecn_option_vector() -> None:
    # RFC 9768 §3.2.3: kind 174 (order 1) with EE1B, ECEB, EE0B as 24-bit counters
    raw = bytes.fromhex("ae0b 000001 0005a0 0186a1")
    opt = TcpView(_with_options(raw + b"\x01")).options()[0]
    assert opt == AccEcnOpt(1, (1, 1440, 100001))
    assert opt.counters() == {"e1b": 1, "ceb": 1440, "e0b": 100001}
    assert opt.summary() == "accecn1 e1b 1 ceb 1440 e0b 100001" and opt.encode() == raw
    assert AccEcnOpt(0, (7,)).counters() == {"e0b": 7}  # kind 172: EE0B first
    assert AccEcnOpt(0, ()).encode() == b"\xac\x02"
    # fields that are not whole 24-bit counters: not interpreted (Linux ignores them)
    assert TcpView(_with_options(b"\xae\x04\x00\x00")).options() == [
        UnknownOpt(174, b"\x00\x00")]
    # the engine's layout: nop,nop,TS then nop,accecn1 (a word); 2 fields need no nop
    assert encode_options(timestamps=(1, 2), accecn=AccEcnOpt(1, (1, 0, 1))) == \
        b"\x01\x01\x08\x0a" + struct.pack("!II", 1, 2) + b"\x01" + bytes.fromhex(
            "ae0b 000001 000000 000001")
    assert encode_options(accecn=AccEcnOpt(1, (1, 0))) == bytes.fromhex("ae08 000001 000000")
    v = TcpView(_with_options(encode_options(accecn=AccEcnOpt(1, (5,)))))
    assert v.accecn() == AccEcnOpt(1, (5,)) and TcpView(_with_options(b"")).accecn() is None


def _with_options(opts: bytes) -> bytes:
    return bytes(build_tcp(SRC, DST, 1, 2, 3, 4, ACK, 100, b"", opts))


def test_option_padding_and_limits() -> None:
    assert pack_options([WscaleOpt(3)]) == b"\x03\x03\x03\x00"
    assert pack_options([MssOpt(536), NopOpt()]) == b"\x02\x04\x02\x18\x01\x00\x00\x00"
    with pytest.raises(ValueError):
        pack_options([SackOpt(((1, 2),) * 4), TimestampOpt(1, 2)])  # 34 + 10 > 40
    with pytest.raises(ValueError):
        SackOpt(()).encode()
    # SACK blocks beyond the room left after TS are dropped, never overflow the header.
    opts = encode_options(timestamps=(1, 2), sack_blocks=[(i, i + 1) for i in range(4)])
    assert len(opts) <= 40 and len(opts) % 4 == 0
    assert TcpView(build_tcp(SRC, DST, 1, 2, 0, 0, ACK, 0, b"", opts)).sack_blocks() == (
        (0, 1), (1, 2), (2, 3))
    # Unpadded option bytes handed to the fast builder are padded.
    seg = build_tcp(SRC, DST, 1, 2, 0, 0, SYN, 0, b"", b"\x03\x03\x07")
    assert len(seg) == 24 and TcpView(seg).wscale() == 7


@pytest.mark.parametrize(
    ("segment", "field"),
    [
        (SYNACK[:19], "length"),
        (b"", "length"),
        (SYNACK[:12] + b"\x40" + SYNACK[13:], "data_offset"),  # offset 4 < 5
        (SYNACK[:36], "data_offset"),  # offset 10 but 36 bytes
        (ALLFLAGS[:12] + b"\xf0" + ALLFLAGS[13:], "data_offset"),  # 60 > 20
    ],
)
def test_malformed_header(segment: bytes, field: str) -> None:
    with pytest.raises(MalformedPacket) as e:
        TcpView(segment)
    assert e.value.layer == "tcp" and e.value.field == field


def _with_options(opts: bytes) -> bytes:
    assert len(opts) % 4 == 0
    hl = 20 + len(opts)
    return struct.pack("!HHIIHHHH", 1, 2, 3, 4, (hl << 10) | SYN, 5, 0, 0) + opts


@pytest.mark.parametrize(
    "opts",
    [
        b"\x02\x00\x00\x00",  # length 0
        b"\x02\x01\x00\x00",  # length 1
        b"\x01\x01\x01\x02",  # MSS kind in the last byte: no length byte
        b"\x02\x03\x05\x00",  # MSS of length 3
        b"\x03\x04\x07\x00",  # window scale of length 4
        b"\x04\x03\x00\x00",  # SACK-permitted of length 3
        b"\x08\x08" + b"\x00" * 6,  # timestamps of length 8
        b"\x05\x0b" + b"\x00" * 10,  # SACK of length 11
        b"\x05\x02\x00\x00",  # SACK with no block
        b"\x01\x01\x01\xfd",  # kind 253 in the last byte: no length byte
        b"\xfd\x08\x00\x00",  # length 8 runs past the 4-byte option area
    ],
)
def test_bad_option_length_is_malformed(opts: bytes) -> None:
    v = TcpView(_with_options(opts))  # the header itself is fine; options are read lazily
    for getter in (v.options, v.mss, v.wscale, v.sack_permitted, v.sack_blocks, v.timestamps):
        with pytest.raises(MalformedPacket) as e:
            getter()
        assert e.value.field == "option_length"
    with pytest.raises(MalformedPacket):
        TcpSegment.parse(_with_options(opts))


def test_options_after_eol_are_padding() -> None:
    v = TcpView(_with_options(b"\x00\x02\x00\x00"))  # garbage after EOL is not parsed
    assert v.options() == [EolOpt()] and v.mss() is None


# -- checksum corruption ------------------------------------------------------------------------


@settings(max_examples=150)
@given(payload=st.binary(max_size=200), bit=st.integers(0, 10_000), v6=st.booleans())
def test_any_bit_flip_breaks_the_checksum(payload: bytes, bit: int, v6: bool) -> None:
    src, dst = (SRC6, DST6) if v6 else (SRC, DST)
    seg = build_tcp(src, dst, 5000, 80, 7, 9, ACK, 100, payload, encode_options(timestamps=(1, 2)))
    assert TcpView(seg).checksum_ok(src, dst)
    bit %= len(seg) * 8
    seg[bit // 8] ^= 1 << (bit % 8)
    if bit // 8 == 12 and bit % 8 >= 4:
        # A flipped data offset may already fail the length check; if not, the sum must.
        try:
            TcpView(seg)
        except MalformedPacket:
            return
    assert not TcpView(seg).checksum_ok(src, dst)


# -- scapy cross-checks -------------------------------------------------------------------------

# Kinds scapy does not interpret, so both sides keep them as (kind, data).
_UNKNOWN_KINDS = st.integers(6, 250).filter(lambda k: k not in (8, 14, 15, 19, 25, 28, 29, 34))

option = st.one_of(
    st.builds(MssOpt, u16),
    st.builds(WscaleOpt, u8),
    st.just(SackPermOpt()),
    st.builds(SackOpt, st.lists(st.tuples(u32, u32), min_size=1, max_size=4).map(tuple)),
    st.builds(TimestampOpt, u32, u32),
    st.just(NopOpt()),
    st.builds(UnknownOpt, _UNKNOWN_KINDS.filter(lambda k: k not in (172, 174)),
              st.binary(max_size=6)),
    st.builds(AccEcnOpt, st.integers(0, 1),
              st.lists(st.integers(0, 0xFFFFFF), max_size=3).map(tuple)),
)


def _fits(opts: list) -> bool:
    n = sum(len(o.encode()) for o in opts)
    return n + (-n & 3) <= 40


options = st.lists(option, max_size=6).filter(_fits)


def to_scapy(opt: object) -> tuple:
    match opt:
        case MssOpt(mss=m):
            return ("MSS", m)
        case WscaleOpt(shift=s):
            return ("WScale", s)
        case SackPermOpt():
            return ("SAckOK", b"")
        case SackOpt(blocks=b):
            return ("SAck", tuple(x for blk in b for x in blk))
        case TimestampOpt(tsval=a, tsecr=b):
            return ("Timestamp", (a, b))
        case NopOpt():
            return ("NOP", None)
        case EolOpt():
            return ("EOL", None)
        case UnknownOpt(kind=k, data=d):
            return (k, d)
        case AccEcnOpt():  # scapy does not interpret kinds 172 and 174
            return (opt.kind, opt.encode()[2:])
    raise AssertionError(opt)


def ip_layer(src: bytes, dst: bytes) -> IP | IPv6:
    from stacklab.wire.addr import ip_str

    return (IP if len(src) == 4 else IPv6)(src=ip_str(src), dst=ip_str(dst))


def scapy_checksum(src: bytes, dst: bytes, segment: bytes) -> int:
    zeroed = segment[:16] + b"\x00\x00" + segment[18:]
    if len(src) == 4:
        return in4_chksum(6, ip_layer(src, dst), zeroed)
    return in6_chksum(6, ip_layer(src, dst), zeroed)


addresses = st.one_of(st.tuples(ip4s, ip4s), st.tuples(ip6s, ip6s))


@settings(max_examples=200, deadline=None)
@given(addrs=addresses, sport=u16, dport=u16, seq=u32, ack=u32, flags=st.integers(0, 0x1FF),
       window=u16, urgent=u16, opts=options, payload=st.binary(max_size=1460))
@example(addrs=(bytes(4), bytes(4)), sport=1, dport=135, seq=0, ack=0, flags=0x18, window=1,
         urgent=0, opts=[], payload=bytes.fromhex("050000012d8787db93d0e6533ecfa6cf"))
def test_we_build_scapy_parses(addrs: tuple[bytes, bytes], sport: int, dport: int, seq: int,
                               ack: int, flags: int, window: int, urgent: int, opts: list,
                               payload: bytes) -> None:
    src, dst = addrs
    ours = bytes(TcpSegment(sport, dport, seq, ack, flags, window, payload, urgent,
                            opts).build(src, dst))
    theirs = TCP(ours)
    assert (theirs.sport, theirs.dport, theirs.seq, theirs.ack) == (sport, dport, seq, ack)
    assert (int(theirs.flags), theirs.window, theirs.urgptr) == (flags, window, urgent)
    assert theirs.dataofs * 4 == 20 + len(pack_options(opts))
    expected = [to_scapy(o) for o in opts]
    if len(pack_options(opts)) > sum(len(o.encode()) for o in opts):
        expected.append(("EOL", None))  # our zero padding reads as EOL on both sides
    assert theirs.options == expected
    # the bytes scapy dissected the payload from: on some ports (135: DCE/RPC) its payload layer
    # writes what it parsed back differently
    assert (theirs.payload.original if payload else bytes(theirs.payload)) == payload
    assert theirs.chksum == scapy_checksum(src, dst, ours)
    assert [to_scapy(o) for o in TcpView(ours).options()] == expected


@settings(max_examples=200, deadline=None)
@given(addrs=addresses, sport=u16, dport=u16, seq=u32, ack=u32, flags=st.integers(0, 0x1FF),
       window=u16, urgent=u16, opts=options, payload=st.binary(max_size=1460))
def test_scapy_builds_we_parse(addrs: tuple[bytes, bytes], sport: int, dport: int, seq: int,
                               ack: int, flags: int, window: int, urgent: int, opts: list,
                               payload: bytes) -> None:
    src, dst = addrs
    pkt = ip_layer(src, dst) / TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags,
                                   window=window, urgptr=urgent,
                                   options=[to_scapy(o) for o in opts]) / payload
    wire = bytes(pkt)[20 if len(src) == 4 else 40:]
    v = TcpView(wire)
    assert (v.src_port, v.dst_port, v.seq, v.ack) == (sport, dport, seq, ack)
    assert (v.flags, v.window, v.urgent) == (flags, window, urgent)
    assert v.checksum_ok(src, dst)
    assert bytes(v.payload) == payload
    parsed = [to_scapy(o) for o in v.options()]
    assert parsed == TCP(wire).options
    seg = TcpSegment.parse(wire, src, dst)
    assert seg.checksum_valid
    # The engine's getters agree with the full option list (last one of a kind wins).
    kinds = {type(o): o for o in v.options()}
    assert v.mss() == (kinds[MssOpt].mss if MssOpt in kinds else None)
    assert v.wscale() == (kinds[WscaleOpt].shift if WscaleOpt in kinds else None)
    assert v.sack_permitted() == (SackPermOpt in kinds)
    ts = kinds.get(TimestampOpt)
    assert v.timestamps() == ((ts.tsval, ts.tsecr) if ts else None)
    assert v.sack_blocks() == (kinds[SackOpt].blocks if SackOpt in kinds else ())
    # Rebuilding our parse gives scapy's bytes back.
    assume(len(v.options_bytes) == len(pack_options(v.options())))
    assert bytes(seg.build(src, dst)) == wire


# -- garbage and truncation ---------------------------------------------------------------------


def _read_everything(buf: bytes) -> None:
    try:
        v = TcpView(buf)
        v.options(), v.mss(), v.wscale(), v.sack_permitted(), v.sack_blocks(), v.timestamps()
        bytes(v.payload)
        v.checksum_ok(SRC, DST)
        TcpSegment.parse(buf, SRC, DST).summary()
    except MalformedPacket:
        pass


@settings(max_examples=300)
@given(st.binary(max_size=80))
def test_garbage_raises_only_malformed(buf: bytes) -> None:
    _read_everything(buf)


@settings(max_examples=100)
@given(opts=st.binary(max_size=40), data=st.binary(max_size=20))
def test_garbage_options_raise_only_malformed(opts: bytes, data: bytes) -> None:
    opts += b"\x00" * (-len(opts) & 3)
    _read_everything(_with_options(opts) + data)


@pytest.mark.parametrize("vector", [SYNACK, DATA, SACK3, UNKNOWN, ALLFLAGS])
def test_every_truncation_raises_only_malformed(vector: bytes) -> None:
    for n in range(len(vector)):
        _read_everything(vector[:n])
    for n in range(20):
        with pytest.raises(MalformedPacket):
            TcpView(vector[:n])


@settings(max_examples=300)
@given(opts=st.lists(st.one_of(option, st.just(EolOpt())), max_size=6).filter(_fits),
       junk=st.binary(max_size=8))
def test_getters_agree_with_full_parse(opts: list, junk: bytes) -> None:
    """The engine's one-pass getters and options() see the same options, or both refuse."""
    raw = (pack_options(opts) + junk)[:40]
    raw += b"\x00" * (-len(raw) & 3)
    v = TcpView(_with_options(raw))
    try:
        full = v.options()
    except MalformedPacket:
        with pytest.raises(MalformedPacket):
            TcpView(_with_options(raw)).timestamps()
        return
    last = {type(o): o for o in full}
    assert v.mss() == (last[MssOpt].mss if MssOpt in last else None)
    assert v.wscale() == (last[WscaleOpt].shift if WscaleOpt in last else None)
    assert v.sack_permitted() == (SackPermOpt in last)
    ts = last.get(TimestampOpt)
    assert v.timestamps() == ((ts.tsval, ts.tsecr) if ts else None)
    assert v.sack_blocks() == (last[SackOpt].blocks if SackOpt in last else ())
    # the one-call getter, scanning a fresh view itself, gives the five getters' values
    assert TcpView(_with_options(raw)).engine_options() == (
        v.mss(), v.wscale(), v.sack_permitted(), v.sack_blocks(), v.timestamps())


def test_a_zero_checksum_is_written_0x0000_never_0xffff():
    """RFC 1624: ~sum cannot be 0xFFFF for non-zero data, and Wireshark calls a TCP checksum of
    0xFFFF illegal (Linux's CSUM_MANGLED_0 fallback writes one; we never do)."""
    a, b = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    seg = build_tcp(a, b, 1, 2, 3, 4, ACK, 100, b"\x00\x00")
    fill = seg[16:18]  # this word in the payload makes the data sum to 0xFFFF: checksum 0
    seg = build_tcp(a, b, 1, 2, 3, 4, ACK, 100, bytes(fill))
    assert seg[16:18] == b"\x00\x00"
    assert TcpView(seg).checksum_ok(a, b)
