"""Ethernet II + IPv4 + TCP in one go: the receive path's fused parse of a TCP frame, and the
send path's fused build.

:func:`parse_ipv4_tcp_frame` gives what the three per-layer views (``EthernetView``,
``IPv4View``, ``TcpView``) and their checksum checks give, from one ``struct`` unpack of the
common frame (4.0 vs 7.3 us per frame when it was measured, BENCHMARKS.md §1); any other frame
takes the per-layer views. ``tests/wire/test_frame_fast_path.py`` checks the two paths agree on
valid, unusual and broken frames. :class:`TcpFrameTemplate` builds the frames the TCP layer's
common segments become (``build_tcp``, then ``build_ipv4``, then the Ethernet header) with one
``struct`` pack and one copy of the payload, from what it prepared once per flow
(``tests/wire/test_frame_fast_path.py`` compares the two). It lives here so that
``wire/tcp.py`` knows only TCP.
"""

from __future__ import annotations

import struct

from .checksum import (
    SPLIT_AT,
    ipv4_header_ok,
    ipv4_tcp_ok,
    ipv4_tcp_partial_complete,
    ipv4_tcp_partial_store,
    ipv4_words,
    le_sum_at,
)
from .ethernet import ETH_P_IPV4, EthernetView
from .ipv4 import FLAG_DF, IPv4View
from .proto import PROTO_TCP
from .tcp import _NO_OPTIONS, _NOPNOP_TS_BYTES, _NOPNOP_TS_WORD, FLAG_MASK, TcpView, _Options

__all__ = ["PartialFrame", "TcpFrameTemplate", "VerifiedFrame", "build_ipv4_tcp_tso_frame",
           "complete_checksum", "parse_ipv4_tcp_frame", "parse_ipv4_tcp_segment"]

Buffer = bytes | bytearray | memoryview

# from the Ethernet type on: type | ver/ihl tos len (ident) flags/frag (ttl) proto (csum src dst)
# | sport dport seq ack off/flags window (csum urgent): an untagged frame without IP options;
# the fields in brackets are read by parse_ipv4_tcp_frame alone, or on demand by the views
_SEG = struct.Struct("!HBBH2xH1xB10xHHIIHH")
# the same and the first 12 or 20 bytes of options as 32-bit words (when the frame has them)
_SEG_W3 = struct.Struct("!HBBH2xH1xB10xHHIIHH4xIII")
_SEG_W5 = struct.Struct("!HBBH2xH1xB10xHHIIHH4xIIIII")
# the rest of the common frame's Ethernet and IPv4 headers: dst src (type ver/ihl tos) len ident
# flags/frag ttl (proto csum) src dst
_ETH_IPV4_REST = struct.Struct("!6s6s4xHHHB3x4s4s")


# The views the fast path returns are instances of these subclasses: the same slots and methods,
# with object's no-op __init__, so that one is built by a plain type call, cheaper than
# object.__new__(cls) (about 40 ns a view, 5 % of a parsed ACK), and filled in below. The fields
# that are the same in every frame this path takes (IPv4, untagged, no IP options, TCP) are class
# attributes instead of slots to fill (about 70 ns a frame).
class _FastEthernetView(EthernetView):
    __slots__ = ()
    __init__ = object.__init__
    ethertype = ETH_P_IPV4
    vlan = None
    tci = 0
    header_len = 14


class _FastIPv4View(IPv4View):
    __slots__ = ()
    __init__ = object.__init__
    header_len = 20
    proto = PROTO_TCP


class _FastTcpView(TcpView):
    __slots__ = ()
    __init__ = object.__init__


# what TcpFrameTemplate.build packed, as parse_ipv4_tcp_segment reads it: the frame's length,
# TOS, IPv4 total length, ports, seq, ack, flags, window, TCP header length, options (a TcpView's
# _opts)
Packed = tuple[int, int, int, int, int, int, int, int, int, int, _Options]


class VerifiedFrame(bytes):
    """The bytes :meth:`TcpFrameTemplate.build` made: both checksums are right by construction,
    and ``bytes`` cannot change, so the parse of this very object needs not verify them
    (Linux's CHECKSUM_UNNECESSARY, from the one place that can vouch for it). A frame a link
    corrupts, a router rewrites or a test builds is a new, plain ``bytes``: verified as any.

    ``packed``: the header fields :meth:`TcpFrameTemplate.build` packed into these bytes (an
    immutable tuple, :data:`Packed`), which :func:`parse_ipv4_tcp_segment` takes in place of
    its unpack and checks (an skb's metadata that crosses a veth pair with it): exactly what
    they would give (``tests/wire/test_frame_fast_path.py``). None (the class's) on a frame
    made otherwise (:func:`complete_checksum` keeps them: it changes the TCP checksum alone).
    No ``__slots__``: a ``bytes`` subclass can have none but an instance dict."""

    packed: Packed | None = None


class PartialFrame(bytes):
    """The bytes :meth:`TcpFrameTemplate.build` made for a port with checksum offload
    (``Port.csum_offload``, a simulated link, as Linux's veth with NETIF_F_HW_CSUM): the IPv4
    header's checksum is right, the TCP field holds the pseudo-header's partial sum (Linux's
    CHECKSUM_PARTIAL), the payload unsummed. The link hands it to its peer, which trusts it as a
    :class:`VerifiedFrame` (veth's peer takes a partial skb as verified). Whatever reads or
    rewrites the bytes completes it first (:func:`complete_checksum`, Linux's
    ``skb_checksum_help``): a changed or copied frame is plain ``bytes``, verified as any, so a
    partial sum that escaped would count as a bad checksum, never pass as a good one.
    ``packed``: as :class:`VerifiedFrame`'s."""

    packed: Packed | None = None


# the frames whose parse needs no checksum verified: built here, unchanged since (bytes)
_TRUSTED = (VerifiedFrame, PartialFrame)


def complete_checksum(frame: bytes) -> bytes:
    """``frame`` with real checksums: a :class:`PartialFrame` becomes the
    :class:`VerifiedFrame` :meth:`TcpFrameTemplate.build` would have built without offload (the
    same bytes); any other frame is returned as it is."""
    if type(frame) is not PartialFrame:
        return frame
    buf = bytearray(frame)
    ipv4_tcp_partial_complete(buf, 14, (buf[16] << 8) | buf[17])
    out = VerifiedFrame(buf)
    if frame.packed is not None:  # (the same fields: the TCP checksum is none of them)
        out.packed = frame.packed
    return out


def parse_ipv4_tcp_segment(frame: Buffer, tcp_valid: bool = False, length: int = -1) \
        -> tuple[TcpView, int, bool, bool] | None:
    """The TCP view of the common Ethernet II / IPv4 / TCP frame, its IPv4 TOS and both
    checksum verdicts: what :func:`parse_ipv4_tcp_frame` gives of such a frame, without the
    Ethernet and IPv4 views. The common frame: untagged, IPv4 without options (IHL 5),
    unfragmented, lengths consistent, so that its bytes 26..38 are the flow's source and
    destination addresses and ports (the receive path's early demux looks the flow up by them
    before anything else, ``Ipv4.receive_tcp_frame``). None for any other frame (never an
    exception): :func:`parse_ipv4_tcp_frame` takes it with the per-layer views.

    The frame is read with one ``unpack``; the TCP checksum is read from the IPv4 addresses on
    (they are the pseudo-header's sum); options in the common layouts (none; ``nop,nop,TS``;
    Linux's SYN ``mss,sackOK,TS,nop,wscale``) are read with the header. A frame
    :meth:`TcpFrameTemplate.build` made is not read at all: its ``packed`` fields are what the
    unpack and the checks give of its bytes. ``tcp_valid`` and ``length`` as
    :func:`parse_ipv4_tcp_frame`'s."""
    opts: _Options | None
    if (type(frame) is PartialFrame or type(frame) is VerifiedFrame) \
            and (p := frame.packed) is not None and (length < 0 or length == p[0]):
        # what TcpFrameTemplate.build packed into these very bytes: what the unpack and the
        # checks below give of them, without either
        _, tos, tlen, sport, dport, seq, ack, flags, window, hl, opts = p
        mv = memoryview(frame)
        trusted = True
    else:
        mv = frame if type(frame) is memoryview else memoryview(frame)
        n = len(mv) if length < 0 else length
        if n < 54:
            return None
        # The first 20 (or 12) bytes after the TCP header's fixed part are read as 32-bit words
        # in the same unpack when the frame has them: the option layouts below need no second
        # struct call.
        if n >= 74:
            (etype, vihl, tos, tlen, ff, proto, sport, dport, seq, ack, off_flags, window,
             w0, w1, w2, w3, w4) = _SEG_W5.unpack_from(mv, 12)
        elif n >= 66:
            (etype, vihl, tos, tlen, ff, proto, sport, dport, seq, ack, off_flags, window,
             w0, w1, w2) = _SEG_W3.unpack_from(mv, 12)
            w3 = w4 = 0
        else:
            (etype, vihl, tos, tlen, ff, proto, sport, dport, seq, ack, off_flags,
             window) = _SEG.unpack_from(mv, 12)
            w0 = w1 = w2 = w3 = w4 = 0
        hl = (off_flags >> 10) & 0x3C
        if etype != ETH_P_IPV4 or vihl != 0x45 or proto != PROTO_TCP or ff & 0x3FFF \
                or not 40 <= tlen <= n - 14 or not 20 <= hl <= tlen - 20:
            return None
        flags = off_flags & FLAG_MASK
        if hl == 20:
            opts = _NO_OPTIONS
        elif hl == 32 and w0 == _NOPNOP_TS_WORD:  # hl == 32 implies n >= 66
            opts = (None, None, False, (), (w1, w2))  # 01 01 08 0a | tsval | tsecr
        elif hl == 40 and w0 >> 16 == 0x0204 and w1 == 0x0402080A and w4 >> 8 == 0x010303:
            # Linux's SYN (n >= 74): 02 04 mss | 04 02 08 0a | tsval | tsecr | 01 03 03 shift
            opts = (w0 & 0xFFFF, w4 & 0xFF, True, (), (w2, w3))
        else:
            opts = None  # scanned by the first option getter
        trusted = type(frame) in _TRUSTED  # built by TcpFrameTemplate.build, unchanged since
    t = _FastTcpView()
    t.buf = mv[34:14 + tlen]
    t.src_port = sport
    t.dst_port = dport
    t.seq = seq
    t.ack = ack
    t.flags = flags
    t.window = window
    t.header_len = hl
    t.payload = mv[34 + hl:14 + tlen]
    t._opts = opts
    if trusted:
        return t, tos, True, True
    # the sums over slices of the frame itself when it is bytes (int.from_bytes copies a
    # memoryview first)
    if tcp_valid:
        return t, tos, ipv4_header_ok(mv[14:34]), True
    ip_ok, tcp_ok = ipv4_tcp_ok(frame if type(frame) is bytes else mv, 14, tlen)
    return t, tos, ip_ok, tcp_ok


def parse_ipv4_tcp_frame(frame: Buffer, tcp_valid: bool = False, length: int = -1) \
        -> tuple[EthernetView, IPv4View, TcpView, bool, bool] | None:
    """The three views of an Ethernet II / IPv4 / TCP frame and both checksum verdicts.

    Returns ``(eth, ip, tcp, ip_checksum_ok, tcp_checksum_ok)``: the views (instances of the
    view classes, same attribute values) that ``EthernetView(frame)``, ``IPv4View(eth.payload)``
    and ``TcpView(ip.payload)`` give, and the verdicts of ``ip.checksum_ok()`` and
    ``tcp.checksum_ok(ip.src, ip.dst)``; or None when the frame is valid but not one
    unfragmented IPv4 TCP segment (ARP, IPv6, UDP, a fragment...: use the per-layer views).
    Raises :class:`MalformedPacket` exactly where those views would. ``tcp_valid``: the TCP
    checksum is known good (verified by a device, Linux's ``CHECKSUM_UNNECESSARY``): it is not
    summed and its verdict is True; the IPv4 header's is checked all the same.

    The common frame (untagged, no IP options, lengths consistent) is
    :func:`parse_ipv4_tcp_segment`'s, and the rest of its Ethernet and IPv4 headers one more
    ``unpack``. Any other frame takes the per-layer path. ``length``: the frame's length when
    the caller has it (the receive path: ``Node.receive_frame``).
    """
    mv = frame if type(frame) is memoryview else memoryview(frame)
    r = parse_ipv4_tcp_segment(frame, tcp_valid, length)
    if r is not None:
        t, tos, ip_ok, tcp_ok = r
        dst, src, tlen, ident, ff, ttl, saddr, daddr = _ETH_IPV4_REST.unpack_from(mv)
        eth = _FastEthernetView()
        eth.buf = mv
        eth.dst = dst
        eth.src = src
        eth.payload = ipbuf = mv[14:]
        ip = _FastIPv4View()
        ip.buf = ipbuf
        ip.tos = tos
        ip.total_length = tlen
        ip.ident = ident
        ip.flags_frag = ff
        ip.ttl = ttl
        ip.src = saddr
        ip.dst = daddr
        ip.payload = t.buf
        return eth, ip, t, ip_ok, tcp_ok
    eth = EthernetView(mv)
    if eth.ethertype != ETH_P_IPV4:
        return None
    ip = IPv4View(eth.payload)
    if ip.proto != PROTO_TCP or ip.flags_frag & 0x3FFF:
        return None
    t = TcpView(ip.payload)
    return eth, ip, t, ip.checksum_ok(), tcp_valid or t.checksum_ok(ip.src, ip.dst)


# the headers build_ipv4_tcp_tso_frame packs: Ethernet, IPv4 without options, TCP without options
# or with nop,nop,TS
_BUILD = struct.Struct("!6s6s2sBBHHHBBH4s4sHHIIHHHH")
_BUILD_TS = struct.Struct("!6s6s2sBBHHHBBH4s4sHHIIHHHH4sII")
# the same as a TcpFrameTemplate packs them: the fields a flow's frames share as its prepared
# byte strings (MACs, type, version/IHL | flags/fragment, TTL, protocol | addresses, ports | the
# option's fixed bytes), a segment's own fields between them: TOS, length, ID | IPv4 checksum |
# seq, ack, offset/flags, window, TCP checksum, urgent | tsval, tsecr
_FLOW = struct.Struct("!15sBHH4sH12sIIHHHH")
_FLOW_TS = struct.Struct("!15sBHH4sH12sIIHHHH4sII")
_ETH_TYPE_IPV4 = ETH_P_IPV4.to_bytes(2, "big")
_NOPNOP_TS_WORDS = 0x0101 + 0x080A  # the sum of the option's two fixed words
_fb = int.from_bytes


class TcpFrameTemplate:
    """One flow's frames, prepared once: the untagged Ethernet II frame of an IPv4 packet (no
    IP options, unfragmented) holding a TCP segment without options or with the timestamps
    option alone, between two MACs and two addresses and ports, with one TTL and DF; what stays
    the same in all of them (those fields as packed bytes, and their part of both checksums'
    sums) is computed here, and :meth:`build` packs a segment's own fields (length, IP ID, TOS,
    sequence and acknowledgment numbers, flags, window, urgent pointer, timestamps) with both
    checksums between them in one ``struct`` pack, summing no header byte. The send path keeps
    one per flow in its destination cache (``Ipv4.tcp_path``). ``partial``: the port offloads
    checksums, the frames are :class:`PartialFrame`, else :class:`VerifiedFrame`."""

    __slots__ = ("dst_mac", "src_mac", "src", "dst", "ff", "ttl", "src_port", "dst_port",
                 "partial", "_ip_words", "_pseudo", "_tcp_words", "_tcp_words_ts", "_eth",
                 "_ip_mid", "_ends", "_cls")

    def __init__(self, dst_mac: bytes, src_mac: bytes, src: bytes, dst: bytes, ttl: int,
                 df: bool, src_port: int, dst_port: int, psum: int,
                 partial: bool = False) -> None:
        self.dst_mac = dst_mac
        self.src_mac = src_mac
        self.src = src
        self.dst = dst
        self.ff = ff = FLAG_DF if df else 0
        self.ttl = ttl
        self.src_port = src_port
        self.dst_port = dst_port
        self.partial = partial
        self._ip_words = ipv4_words(src, dst, ttl, ff, PROTO_TCP)
        self._pseudo = psum  # pseudo_header(src, dst, PROTO_TCP, 0)
        # the TCP sum's part that is the same in every segment: the ports and the pseudo-header
        # (its length is the IPv4 total length - 20), with the option's fixed words
        self._tcp_words = src_port + dst_port + psum - 20
        self._tcp_words_ts = self._tcp_words + _NOPNOP_TS_WORDS
        self._eth = bytes(dst_mac) + bytes(src_mac) + _ETH_TYPE_IPV4 + b"\x45"
        self._ip_mid = bytes((ff >> 8, ff & 0xFF, ttl, PROTO_TCP))
        self._ends = bytes(src) + bytes(dst) + src_port.to_bytes(2, "big") \
            + dst_port.to_bytes(2, "big")
        self._cls = PartialFrame if partial else VerifiedFrame

    def build(self, ident: int, seq: int, ack: int, flags: int, window: int, payload: Buffer,
              timestamps: tuple[int, int] | None, tos: int = 0, urgent: int = 0) -> bytes:
        """The frame of one segment: the bytes of ``build_tcp(..., urgent, psum=psum,
        timestamps=timestamps)`` inside ``build_ipv4(..., tos=tos)`` behind the Ethernet
        header, both checksums filled in (with ``partial``, the TCP one partial): the sums as
        ``checksum.ipv4_tcp_fields`` makes them, without its call."""
        n = len(payload)
        flags &= FLAG_MASK
        if timestamps is None:
            tlen = 40 + n
            off_flags = 0x5000 | flags
            words = self._tcp_words
        else:
            tlen = 52 + n
            off_flags = 0x8000 | flags
            tsval, tsecr = timestamps
            words = self._tcp_words_ts + tsval + tsecr
        if self.partial:  # fold(pseudo): not zero (the protocol is not); the words unsummed
            tcp_csum = (self._pseudo + tlen - 20) % 0xFFFF or 0xFFFF
        else:
            words += tlen + seq + ack + off_flags + window + urgent
            if n:
                # a big-endian sum is the little-endian one byte-swapped (x 256); le_sum's two
                # cases without its call (int.from_bytes copies anything but bytes: a
                # bytearray is summed through a view)
                words += (_fb(payload, "little") if n <= SPLIT_AT else le_sum_at(
                    memoryview(payload) if isinstance(payload, bytearray) else payload, 0,
                    n)) << 8
            tcp_csum = -words % 0xFFFF
        if timestamps is None:
            hdr = _FLOW.pack(self._eth, tos, tlen, ident, self._ip_mid,
                             -(self._ip_words + tos + tlen + ident) % 0xFFFF, self._ends, seq,
                             ack, off_flags, window, tcp_csum, urgent)
            opts: _Options = _NO_OPTIONS
            hlen = 20
        else:
            hdr = _FLOW_TS.pack(self._eth, tos, tlen, ident, self._ip_mid,
                                -(self._ip_words + tos + tlen + ident) % 0xFFFF, self._ends,
                                seq, ack, off_flags, window, tcp_csum, urgent, _NOPNOP_TS_BYTES,
                                tsval, tsecr)
            opts = (None, None, False, (), timestamps)
            hlen = 32
        if n:
            hdr += payload
        frame = self._cls(hdr)
        # what parse_ipv4_tcp_segment reads of these bytes (the pack above took every value as
        # it is, or raised): the receiver takes it in place of the unpack and the checks
        frame.packed = (tlen + 14, tos, tlen, self.src_port, self.dst_port, seq, ack,
                        flags, window, hlen, opts)
        return frame


def build_ipv4_tcp_tso_frame(out: bytearray, dst_mac: bytes, src_mac: bytes, src: bytes,
                             dst: bytes, ident: int, ttl: int, df: bool, src_port: int,
                             dst_port: int, seq: int, ack: int, flags: int, window: int,
                             payload: Buffer, psum: int, timestamps: tuple[int, int] | None,
                             tos: int = 0) -> None:
    """:meth:`TcpFrameTemplate.build` of a TSO packet for a device that segments (GSO), appended
    to ``out`` (empty; a bytearray subclass may carry what the device needs): the same headers
    for the whole payload (any length up to the IPv4 maximum), the TCP checksum field holding
    the pseudo-header's partial sum, which the device completes per segment; the payload copied
    once."""
    ff = FLAG_DF if df else 0
    if timestamps is None:
        hdr = bytearray(_BUILD.pack(dst_mac, src_mac, _ETH_TYPE_IPV4, 0x45, tos, 40 + len(payload),
                                    ident, ff, ttl, PROTO_TCP, 0, src, dst, src_port, dst_port,
                                    seq, ack, 0x5000 | (flags & FLAG_MASK), window, 0, 0))
    else:
        hdr = bytearray(_BUILD_TS.pack(dst_mac, src_mac, _ETH_TYPE_IPV4, 0x45, tos,
                                       52 + len(payload), ident, ff, ttl, PROTO_TCP, 0, src, dst,
                                       src_port, dst_port, seq, ack,
                                       0x8000 | (flags & FLAG_MASK), window, 0, 0,
                                       _NOPNOP_TS_BYTES, timestamps[0], timestamps[1]))
    ipv4_tcp_partial_store(hdr, len(payload), psum)
    out += hdr
    out += payload
