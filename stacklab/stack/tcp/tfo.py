"""TCP Fast Open (RFC 7413) as Linux implements it (net/ipv4/tcp_fastopen.c): data in the SYN.

Per host, :class:`FastOpen` (``TcpLayer.tfo``) holds ``net.ipv4.tcp_fastopen`` (Linux's bits,
below), the server's key (``net.ipv4.tcp_fastopen_key``; drawn from the host's seeded generator
the first time a cookie is made, never from the clock) and the client's cookie cache, one entry
per destination address (Linux keeps it in its TCP metrics): the cookie, whether it came in the
experimental option (kind 254), and the peer's MSS.

Per connection, a :class:`TfoConn` (``Tcb.tfo``, None for a connection that does not use TFO):

* client (``sendto(MSG_FASTOPEN)``, ``TCP_FASTOPEN_CONNECT``): the first SYN waits for the first
  write when a cookie is cached (or no cookie is needed) and then carries up to
  ``space`` bytes of it with the cookie; without a cookie it goes at once with a cookie request
  (an empty option) and no data. A retransmitted SYN carries neither data nor option (Linux
  resends its plain SYN); a SYN-ACK that does not acknowledge all the SYN's data sends the rest
  again right after the handshake. The SYN-ACK's cookie and MSS go into the cache.
* server (a listener with ``TCP_FASTOPEN`` queue length, or bit 0x400): a SYN with a valid cookie
  (or any SYN with bit 0x200 / ``TCP_FASTOPEN_NO_COOKIE``) makes a child whose SYN-ACK
  acknowledges the data; the child is handed to ``accept()`` at once, its data readable, and may
  send before the handshake's last ACK. A cookie request, or an invalid cookie, gets a normal
  three-way handshake whose SYN-ACK carries the valid cookie (the data of an invalid one is not
  acknowledged). The children still in SYN-RECEIVED count against the queue length.

Cookies are Linux's: SipHash-2-4 (keyed by the 16-byte key) of the client's then the server's
address, 8 bytes little-endian; a client accepts cookies of 4 to 16 bytes, even lengths
(RFC 7413 §4.1.1).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from typing import Any, Protocol

from stacklab.wire.tcp import FastOpenOpt

from .buffers import ReceiveBuffer, SendBuffer
from .config import TcpConfig, TcpStats
from .events import Connected, DataReceived, TcbEvent
from .fsm import SYN_RECEIVED, State
from .segment import FIN, SegmentLike

# net.ipv4.tcp_fastopen bits (Linux include/net/tcp.h)
TFO_CLIENT_ENABLE = 0x1
TFO_SERVER_ENABLE = 0x2
TFO_CLIENT_NO_COOKIE = 0x4  # data in SYN without a cookie
TFO_SERVER_COOKIE_NOT_REQD = 0x200  # accept data in SYN without a cookie
TFO_SERVER_WO_SOCKOPT1 = 0x400  # every listener is TFO, its queue the listen() backlog
DEFAULT_MODE = TFO_CLIENT_ENABLE  # Linux's default: 1
COOKIE_MIN, COOKIE_MAX = 4, 16  # RFC 7413 §4.1.1
KEY_LEN = 16
MAX_TCP_OPTION_SPACE = 40  # the SYN's data leaves room for every option (Linux)
CACHE_LIMIT = 1024  # destinations remembered, the oldest dropped first
NOT_DRAWN = "random, drawn at first use"  # net.ipv4.tcp_fastopen_key before then

_M64 = (1 << 64) - 1
_LE64X2 = struct.Struct("<QQ")
_LE64 = struct.Struct("<Q")


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _M64


def siphash24(key: bytes, data: bytes) -> int:
    """SipHash-2-4 (Aumasson and Bernstein, 2012) of ``data`` under a 16-byte ``key``."""
    k0, k1 = _LE64X2.unpack(key)
    v0, v1 = k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D
    v2, v3 = k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573

    def rounds(n: int) -> None:
        nonlocal v0, v1, v2, v3
        for _ in range(n):
            v0 = (v0 + v1) & _M64
            v1 = _rotl(v1, 13) ^ v0
            v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & _M64
            v3 = _rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & _M64
            v3 = _rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & _M64
            v1 = _rotl(v1, 17) ^ v2
            v2 = _rotl(v2, 32)

    n = len(data)
    end = n - n % 8
    for i in range(0, end, 8):
        (m,) = _LE64.unpack_from(data, i)
        v3 ^= m
        rounds(2)
        v0 ^= m
    last = (n & 0xFF) << 56
    for i, c in enumerate(data[end:]):
        last |= c << (8 * i)
    v3 ^= last
    rounds(2)
    v0 ^= last
    v2 ^= 0xFF
    rounds(4)
    out: int = v0 ^ v1 ^ v2 ^ v3
    return out


def parse_key(text: str) -> bytes:
    """``net.ipv4.tcp_fastopen_key`` as Linux writes it: four 32-bit hex words
    ``a0bf63f7-ed803d81-cd641d30-cebc4a90``, each stored little-endian (a backup key after a
    comma is accepted and not used). ValueError otherwise."""
    words = text.strip().split(",")[0].split("-")
    if len(words) != 4:
        raise ValueError("expected four hex words xxxxxxxx-xxxxxxxx-xxxxxxxx-xxxxxxxx")
    return b"".join(struct.pack("<I", int(w, 16) & 0xFFFFFFFF) for w in words)


def show_key(key: bytes) -> str:
    return "-".join(f"{w:08x}" for w in struct.unpack("<4I", key))


def valid_cookie_len(n: int) -> bool:
    return COOKIE_MIN <= n <= COOKIE_MAX and not n & 1


class Tcb(Protocol):
    """What Fast Open reads and sets of a TCB (``tcbvars.TcbVars`` is one; a protocol, so that
    this module imports none of the TCB's)."""

    state: State
    remote_ip: bytes
    snd_una: int
    snd_nxt: int
    snd_max: int
    rcv_nxt: int
    _rtt_seq: int | None
    sendbuf: SendBuffer
    recvbuf: ReceiveBuffer
    stats: TcpStats
    _events: list[TcbEvent]
    tfo: TfoConn | None


class Listener(Protocol):
    """What Fast Open reads of a listener (``listen.Listener``)."""

    config: TcpConfig
    backlog: int
    tfo_children: dict[Any, None]  # its TCBs (Any: dict's key type is invariant)


class CacheEntry:
    """What the client remembers of one destination (Linux tcp_fastopen_metrics)."""

    __slots__ = ("cookie", "exp", "mss", "try_exp")

    def __init__(self) -> None:
        self.cookie = b""
        self.exp = False
        self.mss: int | None = None
        self.try_exp = 0  # 1: the peer ignored kind 34, ask with 254 next; 2: back to 34


class TfoConn:
    """One connection's Fast Open state (``Tcb.tfo``)."""

    __slots__ = ("option", "space", "deferred", "syn_data", "child", "reported", "data_acked",
                 "requested", "asked", "asked_exp", "on_synack")

    def __init__(self, option: FastOpenOpt | None, space: int = 0, deferred: bool = False,
                 child: bool = False,
                 on_synack: Callable[[Tcb, SegmentLike], None] | None = None) -> None:
        self.option = option  # for our first SYN (SYN-ACK): the cookie, or a request
        self.space = space  # client: how much data the SYN may carry (0: none)
        self.deferred = deferred  # client: the SYN waits for the first write
        self.syn_data = 0  # client: data bytes the SYN carried
        self.child = child  # server: accepted with the SYN's data, before the last ACK
        self.reported = False  # server: Connected went out at once (not again when ESTABLISHED)
        self.data_acked = False  # TCPI_OPT_SYN_DATA: the SYN's data was acknowledged (accepted)
        self.requested = option is not None  # client: the SYN asked for / carried a cookie
        self.asked = option is not None  # client: ... in a Fast Open option (Linux syn_fastopen)
        self.asked_exp = option is not None and option.exp  # ... in the option of kind 254
        self.on_synack = on_synack  # client: the host's cache update

    def take_option(self) -> FastOpenOpt | None:
        """The option for the SYN (SYN-ACK) being sent: the first one only (Linux builds the
        retransmissions without it)."""
        opt, self.option = self.option, None
        return opt

    def syn_payload(self, tcb: Tcb) -> bytes:
        """Client: the data the first SYN carries (RFC 7413 §4.2.1), at most ``space``."""
        n = min(self.space, len(tcb.sendbuf))
        self.space = 0
        self.deferred = False
        if n <= 0:
            return b""
        self.syn_data = n
        return bytes(tcb.sendbuf.peek(0, n))

    def data_unreadable(self) -> None:
        """Client: the first write's data cannot be copied (a bad address): the SYN goes
        without data, a cookie request in place of the cached cookie (Linux
        tcp_send_syn_data's fallback)."""
        self.space = 0
        if self.option is not None and self.option.cookie:
            self.option = FastOpenOpt(b"", self.option.exp)

    def take_syn_data(self, tcb: Tcb, seg: SegmentLike) -> None:
        """Server, the child of a valid Fast Open SYN in SYN-RECEIVED, before its SYN-ACK: the
        SYN's data is received (RFC 7413 §4.2.2, the SYN-ACK acknowledges it) and the child is
        reported at once, for accept()."""
        payload = seg.payload
        n = len(payload)
        if n:
            rb = tcb.recvbuf
            rb.ready += payload
            rb.nxt += n
            tcb.rcv_nxt = (tcb.rcv_nxt + n) & 0xFFFFFFFF
            tcb.stats.bytes_received += n
            tcb._events.append(DataReceived(n))
        self.data_acked = n > 0
        self.reported = True
        tcb._events.append(Connected())

    def synack(self, tcb: Tcb, seg: SegmentLike) -> None:
        """Client, the SYN-ACK taken (SND.UNA moved past the SYN): the cache learns the cookie
        and MSS; data of the SYN not acknowledged goes again right after the handshake (Linux
        tcp_rcv_fastopen_synack)."""
        if self.on_synack is not None:
            self.on_synack(tcb, seg)
        if not self.syn_data:
            return
        if tcb.snd_una != tcb.snd_max:
            tcb.snd_nxt = tcb.snd_una  # output() resends from SND.UNA
            tcb._rtt_seq = None
        else:
            self.data_acked = True


class FastOpen:
    """A host's TCP Fast Open: the sysctl bits, the server key, the client cookie cache."""

    def __init__(self, rng: Callable[[], random.Random]) -> None:
        self.mode = DEFAULT_MODE  # net.ipv4.tcp_fastopen
        self._rng = rng
        self._key: bytes | None = None
        self.cache: dict[bytes, CacheEntry] = {}

    # -- the key and cookies ----------------------------------------------------------------------
    @property
    def key(self) -> bytes:
        """The server key; drawn from the host's generator when first needed (as Linux makes a
        random one on first use), so hosts that never serve TFO keep their random streams."""
        if self._key is None:
            self._key = self._rng().randbytes(KEY_LEN)
        return self._key

    @key.setter
    def key(self, key: bytes) -> None:
        if len(key) != KEY_LEN:
            raise ValueError(f"a TCP Fast Open key has {KEY_LEN} bytes")
        self._key = key

    @property
    def key_text(self) -> str:
        """The key as the sysctl shows it; reading it draws no key (a read must not move the
        host's random streams)."""
        return show_key(self._key) if self._key is not None else NOT_DRAWN

    @key_text.setter
    def key_text(self, text: str) -> None:
        """Four hex words; NOT_DRAWN (as read before any use) forgets the key."""
        if text.strip() == NOT_DRAWN:
            self._key = None
        else:
            self.key = parse_key(text)

    def cookie(self, client: bytes, server: bytes, key: bytes | None = None) -> bytes:
        """The cookie ``server`` gives ``client`` (Linux __tcp_fastopen_cookie_gen_cipher)."""
        return _LE64.pack(siphash24(key or self.key, client + server))

    # -- server -----------------------------------------------------------------------------------
    def passive(self, lst: Listener, src: bytes, dst: bytes, v: SegmentLike) -> TfoConn | None:
        """A SYN to ``lst`` (Linux tcp_try_fastopen): None for a normal handshake without the
        option, else what the child does: accept the data (``child``) and/or send a cookie."""
        fo = v.fastopen()
        cfg = lst.config
        syn_data = len(v.payload) > 0 or bool(v.flags & FIN)
        qlen = cfg.fastopen_qlen or (lst.backlog if self.mode & TFO_SERVER_WO_SOCKOPT1 else 0)
        if fo is not None and fo.cookie and not valid_cookie_len(len(fo.cookie)):
            fo = None  # a malformed cookie is no option at all (tcp_parse_fastopen_option)
        if not (self.mode & TFO_SERVER_ENABLE and (syn_data or fo is not None) and qlen):
            return None
        children = lst.tfo_children
        for t in [t for t in children if t.state is not SYN_RECEIVED]:
            del children[t]
        if len(children) >= qlen:  # tcp_fastopen_queue_check: the TFO queue is full
            return None
        exp = fo is not None and fo.exp
        if self.mode & TFO_SERVER_COOKIE_NOT_REQD or cfg.fastopen_no_cookie:
            return TfoConn(None, child=True)
        if fo is None:
            return None
        valid = self.cookie(src, dst, cfg.fastopen_key)
        if fo.cookie == valid:
            return TfoConn(None, child=True)
        return TfoConn(FastOpenOpt(valid, exp))  # a request, or an invalid cookie

    # -- client -----------------------------------------------------------------------------------
    def active(self, remote_ip: bytes, cfg: TcpConfig, adv_mss: int,
               path_mss: int) -> TfoConn | None:
        """A Fast Open connect to ``remote_ip`` (Linux tcp_send_syn_data and
        tcp_fastopen_defer_connect): with a cookie (or none needed) the SYN waits for the first
        write and carries data; otherwise it asks for a cookie. None: the client is off."""
        if not self.mode & TFO_CLIENT_ENABLE:
            return None
        entry = self.cache.get(remote_ip)
        no_cookie = bool(self.mode & TFO_CLIENT_NO_COOKIE) or cfg.fastopen_no_cookie
        if entry is not None and entry.cookie and not no_cookie:
            opt: FastOpenOpt | None = FastOpenOpt(entry.cookie, entry.exp)
        elif no_cookie:
            opt = None
        else:  # a cookie request, kind 254 after kind 34 went unanswered (try_exp)
            return TfoConn(FastOpenOpt(b"", entry is not None and entry.try_exp == 1),
                           on_synack=self._learn)
        # the SYN's data: the cached MSS (or ours) bounded by the path and TCP_MAXSEG, less the
        # whole option space (Linux __tcp_mtu_to_mss: reserved for middleboxes' options)
        mss = entry.mss if entry is not None and entry.mss else adv_mss
        mss = min(mss, path_mss, cfg.maxseg or 65535)
        conn = TfoConn(opt, space=max(mss - MAX_TCP_OPTION_SPACE, 0), deferred=True,
                       on_synack=self._learn)
        conn.requested = True
        return conn

    def _learn(self, tcb: Tcb, seg: SegmentLike) -> None:
        """The SYN-ACK of our Fast Open SYN: its MSS and cookie into the cache (Linux
        tcp_rcv_fastopen_synack + tcp_fastopen_cache_set)."""
        tfo = tcb.tfo
        if tfo is None or not tfo.requested:
            return  # an unsolicited cookie is ignored
        cache = self.cache
        entry = cache.pop(tcb.remote_ip, None) or CacheEntry()
        cache[tcb.remote_ip] = entry  # the most recent last
        if len(cache) > CACHE_LIMIT:
            del cache[next(iter(cache))]
        mss = seg.mss()
        if mss:
            entry.mss = mss
        fo = seg.fastopen()
        if fo is not None and valid_cookie_len(len(fo.cookie)) and tfo.asked:
            entry.cookie, entry.exp = fo.cookie, fo.exp
        elif tcb.stats.retransmits == 0 and not tfo.syn_data and not entry.cookie \
                and entry.try_exp < (2 if tfo.asked_exp else 1):
            entry.try_exp = 2 if tfo.asked_exp else 1
