"""The system calls of packetdrill scripts, on the sockets of :mod:`.sockets`.

A call returns ``(result, errno)``; a call that would block raises :class:`Blocked` carrying a
``retry()`` the runner calls as virtual time goes on (it returns the outcome, or None while the
call still waits). Arguments written ``...`` take packetdrill's defaults: ``bind`` to port 8080,
``connect``/``sendto`` to the remote address, port 8080.
"""

from __future__ import annotations

import errno
import inspect
import socket as _socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from stacklab.errors import StacklabError
from stacklab.stack.pmtudisc import (
    IP_PMTUDISC_DO,
    IP_PMTUDISC_DONT,
    IP_PMTUDISC_INTERFACE,
    IP_PMTUDISC_OMIT,
    IP_PMTUDISC_PROBE,
    IP_PMTUDISC_WANT,
    check_mode,
)
from stacklab.stack.tcp import tstamp
from stacklab.stack.tcp.config import so_rcvbuf, so_sndbuf
from stacklab.stack.tcp.errqueue import ExtendedErr
from stacklab.stack.tcp.tfo import KEY_LEN
from stacklab.stack.tcp.zerocopy import (
    SO_EE_CODE_ZEROCOPY_COPIED,
    SO_EE_ORIGIN_ZEROCOPY,
    frag_ends,
)

from . import epoll
from .epoll import Epoll
from .files import FileSystem, Pipe, PipeEnd, RegFile
from .sockets import (
    POLLERR,
    POLLHUP,
    POLLIN,
    POLLOUT,
    POLLPRI,
    POLLRDHUP,
    SockError,
    Stack,
    TcpSock,
    UdpSock,
)
from .syntax import Array, BitOr, Call, Ellipsis_, Expr, Int, Str, Struct, Sym

Outcome = tuple[int, int]  # (result, errno): errno 0 on success
PORT = 8080

# Symbolic constants, Linux values (taken from the running Python where it has them).
_EXTRA = {
    "SOCK_STREAM": 1, "SOCK_DGRAM": 2, "SOCK_NONBLOCK": 0o4000, "SOCK_CLOEXEC": 0o2000000,
    "AF_INET": 2, "AF_INET6": 10, "PF_INET": 2, "PF_INET6": 10,
    "IPPROTO_TCP": 6, "IPPROTO_UDP": 17, "IPPROTO_IP": 0, "IPPROTO_IPV6": 41,
    "SOL_SOCKET": 1, "SOL_TCP": 6, "SOL_IP": 0, "SOL_IPV6": 41, "SOL_UDP": 17,
    "F_GETFL": 3, "F_SETFL": 4, "O_RDWR": 2, "O_RDONLY": 0, "O_WRONLY": 1, "O_NONBLOCK": 0o4000,
    "SHUT_RD": 0, "SHUT_WR": 1, "SHUT_RDWR": 2,
    "MSG_PEEK": 2, "MSG_DONTWAIT": 0x40, "MSG_NOSIGNAL": 0x4000, "MSG_MORE": 0x8000,
    "MSG_WAITALL": 0x100, "MSG_TRUNC": 0x20, "MSG_EOR": 0x80, "MSG_ERRQUEUE": 0x2000,
    "MSG_FASTOPEN": 0x20000000, "MSG_ZEROCOPY": 0x4000000, "MSG_OOB": 1,
    "POLLIN": POLLIN, "POLLPRI": POLLPRI, "POLLOUT": POLLOUT, "POLLERR": POLLERR,
    "POLLHUP": POLLHUP, "POLLRDHUP": POLLRDHUP, "POLLNVAL": 0x20, "POLLRDNORM": 0x40,
    "POLLWRNORM": 0x100,
    "SIOCINQ": 0x541B, "FIONREAD": 0x541B, "SIOCOUTQ": 0x5411, "SIOCOUTQNSD": 0x894B,
    "SIOCATMARK": 0x8905, "SO_OOBINLINE": 10,
    "TCP_NODELAY": 1, "TCP_MAXSEG": 2, "TCP_CORK": 3, "TCP_KEEPIDLE": 4, "TCP_KEEPINTVL": 5,
    "TCP_KEEPCNT": 6, "TCP_SYNCNT": 7, "TCP_LINGER2": 8, "TCP_DEFER_ACCEPT": 9,
    "TCP_WINDOW_CLAMP": 10, "TCP_INFO": 11, "TCP_QUICKACK": 12, "TCP_CONGESTION": 13,
    "TCP_USER_TIMEOUT": 18, "TCP_FASTOPEN": 23, "TCP_NOTSENT_LOWAT": 25,
    "TCP_FASTOPEN_CONNECT": 30, "TCP_INQ": 36, "TCP_CM_INQ": 36, "TCP_FASTOPEN_KEY": 33,
    "TCP_FASTOPEN_NO_COOKIE": 34,
    "SO_REUSEADDR": 2, "SO_REUSEPORT": 15, "SO_KEEPALIVE": 9, "SO_LINGER": 13, "SO_ERROR": 4,
    "SO_SNDBUF": 7, "SO_RCVBUF": 8, "SO_RCVLOWAT": 18, "SO_SNDLOWAT": 19, "SO_MARK": 36,
    "SO_ZEROCOPY": 60, "SO_TIMESTAMPING": 37, "SO_TYPE": 3, "SO_MAX_PACING_RATE": 47,
    "IP_TOS": 1, "IP_TTL": 2, "IP_MTU_DISCOVER": 10, "IP_PMTUDISC_DONT": IP_PMTUDISC_DONT,
    "IP_PMTUDISC_DO": IP_PMTUDISC_DO, "IP_PMTUDISC_WANT": IP_PMTUDISC_WANT,
    "IP_PMTUDISC_PROBE": IP_PMTUDISC_PROBE, "IP_PMTUDISC_INTERFACE": IP_PMTUDISC_INTERFACE,
    "IP_PMTUDISC_OMIT": IP_PMTUDISC_OMIT, "IP_FREEBIND": 15, "IPV6_TCLASS": 67,
    "IP_RECVERR": 11, "IPV6_RECVERR": 25,
    "SO_EE_ORIGIN_ZEROCOPY": SO_EE_ORIGIN_ZEROCOPY,
    "SO_EE_CODE_ZEROCOPY_COPIED": SO_EE_CODE_ZEROCOPY_COPIED,
    "SO_EE_ORIGIN_TIMESTAMPING": tstamp.SO_EE_ORIGIN_TIMESTAMPING,
    "SCM_TIMESTAMPING": tstamp.SCM_TIMESTAMPING, "SCM_TSTAMP_SND": tstamp.SCM_TSTAMP_SND,
    "SCM_TSTAMP_SCHED": tstamp.SCM_TSTAMP_SCHED, "SCM_TSTAMP_ACK": tstamp.SCM_TSTAMP_ACK,
    **tstamp.FLAG_NAMES,
    **epoll.SYMBOLS,
}
# syscalls of upstream scripts the runner does not model
UNMODELLED = {"socketpair", "select"}


def symbol(name: str) -> int | None:
    v = _EXTRA.get(name)
    if v is None:
        v = getattr(_socket, name, None)
        if not isinstance(v, int):
            v = getattr(errno, name, None)
    return v if isinstance(v, int) else None


class Unsupported(StacklabError):
    """The script uses something the runner or stacklab does not have: named in the message."""


class ArgError(StacklabError):
    """A mismatch in a call's arguments or outputs (a value the script expected)."""


@dataclass
class Blocked(StacklabError):
    retry: Callable[[], Outcome | None]
    deadline: float | None = None  # poll's timeout: retry() also runs then


def value(e: Expr | None) -> int | None:
    """An integer argument (``...`` -> None)."""
    if e is None or isinstance(e, Ellipsis_):
        return None
    if isinstance(e, Int):
        return e.value
    if isinstance(e, Sym):
        v = symbol(e.name)
        if v is None:
            raise Unsupported(f"symbol {e.name}")
        return v
    if isinstance(e, BitOr):
        out = 0
        for t in e.terms:
            out |= value(t) or 0
        return out
    if isinstance(e, Array) and len(e.items) == 1:
        return value(e.items[0])
    if isinstance(e, Call) and e.name in ("htons", "_htons_", "htonl", "ntohs") and e.args:
        return value(e.args[0])
    if isinstance(e, Str):
        return None
    raise Unsupported(f"argument {type(e).__name__}")


def names(e: Expr | None) -> set[str]:
    if isinstance(e, Sym):
        return {e.name}
    if isinstance(e, BitOr):
        return set().union(*(names(t) for t in e.terms))
    return set()


Sock = TcpSock | UdpSock
Other = Epoll | PipeEnd | RegFile  # the descriptors that are not sockets


class Syscalls:
    def __init__(self, stack: Stack, local_ip: bytes, remote_ip: bytes, v6: bool,
                 clock: Callable[[], float], tolerance: float = 0.0) -> None:
        self.stack = stack
        self.tolerance = tolerance  # of an expected SCM_TIMESTAMPING time (seconds)
        self.local_ip = local_ip
        self.remote_ip = remote_ip
        self.v6 = v6
        self.clock = clock
        self.fds: dict[int, Sock] = {}
        self.others: dict[int, Other] = {}  # descriptors that are not sockets
        self.files = FileSystem()  # open()'s files, in memory (files.py)
        self.nonblock: dict[int, bool] = {}
        self.linger0: set[int] = set()
        self.connect_reported: set[int] = set()
        self.current: TcpSock | None = None  # the socket %{ }% snippets look at
        self.expected_fd: int | None = None
        self.listens = 0  # listen() calls so far (the runner's cue for a new connection)
        self.missing: str | None = None  # the socket option the last call lacked
        # (local port, remote port) of the TCP sockets the script closed: once another socket
        # is under test, packetdrill no longer looks at their segments
        self.closed_ports: set[tuple[int, int]] = set()

    def _no_option(self, opt: str) -> NoReturn:
        """A socket option stacklab does not have: ENOPROTOOPT, as from a kernel without it."""
        self.missing = opt or "that option"
        raise SockError(errno.ENOPROTOOPT)

    def listening_port(self) -> int | None:
        """The port of an open listening socket (where the script's SYNs go)."""
        for s in self.fds.values():
            if isinstance(s, TcpSock) and (port := s.listening_port()) is not None:
                return port
        return None

    def udp_port(self) -> int:
        """The local port of the script's UDP socket (where its datagrams go)."""
        for s in self.fds.values():
            if isinstance(s, UdpSock) and s.local_port:
                return s.local_port
        return PORT

    def _fd(self, e: Expr) -> tuple[int, Sock]:
        fd = value(e)
        if fd is not None and fd in self.others:
            raise SockError(errno.ENOTSOCK)
        if fd is None or fd not in self.fds:
            raise SockError(errno.EBADF)
        return fd, self.fds[fd]

    def _other(self, e: Expr) -> Other | None:
        n = value(e)
        return self.others.get(n) if n is not None else None

    def _taken(self, fd: int) -> bool:
        return fd in self.fds or fd in self.others

    def _new_other(self, f: Other, want: int | None = None) -> int:
        """A descriptor for a file that is not a socket: the script's number when free, else
        the lowest free one from 3."""
        want = self.expected_fd if want is None else want
        fd = want if want is not None and want >= 0 and not self._taken(want) else 3
        while self._taken(fd):
            fd += 1
        self.others[fd] = f
        return fd

    def _new_fd(self, s: Sock, want: int | None, shadow: bool = False) -> int:
        # packetdrill maps the script's descriptor numbers onto live ones: the number the
        # script expects (``want``) is taken when it is free, else the lowest free one from 3;
        # ``shadow``: an accepted socket takes ``want`` even when the script left a socket open
        # under that number (packetdrill's accept() checks no duplicate: the newer socket's
        # entry comes first and hides the older one, which stays open)
        if want is not None and want >= 0 and (shadow or not self._taken(want)):
            fd = want
        else:
            fd = 3
            while self._taken(fd):
                fd += 1
        self.fds[fd] = s
        if isinstance(s, TcpSock):
            self.current = s
        return fd

    def call(self, name: str, args: tuple[Expr, ...], expected: int | None = None) -> Outcome:
        """Run ``name(args)``; ``expected`` is the script's result (a new descriptor's
        number for socket() and accept())."""
        self.expected_fd = expected
        self.missing = None
        fn = getattr(self, "sys_" + name, None)
        if fn is None:
            raise Unsupported(f"system call {name}()")
        try:
            inspect.signature(fn).bind(*args)
        except TypeError:
            raise ArgError(f"{name}() does not take {len(args)} arguments") from None
        try:
            return int(fn(*args)), 0
        except SockError as e:
            return -1, e.errno

    def _wrap(self, fn: Callable[[], int | None]) -> Callable[[], Outcome | None]:
        def retry() -> Outcome | None:
            try:
                r = fn()
            except SockError as e:
                return -1, e.errno
            return None if r is None else (r, 0)
        return retry

    def _maybe_block(self, fd: int, fn: Callable[[], int | None], eagain: int = errno.EAGAIN,
                     deadline: float | None = None) -> int:
        r = fn()
        if r is not None:
            return r
        if self.nonblock.get(fd):
            raise SockError(eagain)
        raise Blocked(self._wrap(fn), deadline)

    # -- sockets ---------------------------------------------------------------------------------
    def sys_socket(self, domain: Expr, typ: Expr, proto: Expr) -> int:
        t = value(typ) or 1
        base = t & 0xF
        dom = value(domain)
        v6 = self.v6 if dom is None else dom == 10
        s: Sock = self.stack.tcp_socket(v6) if base == 1 else self.stack.udp_socket(v6)
        if base not in (1, 2):
            raise Unsupported(f"socket type {base}")
        fd = self._new_fd(s, self.expected_fd)
        self.nonblock[fd] = bool(t & 0o4000)
        return fd

    def _addr(self, e: Expr, local: bool) -> tuple[bytes | None, int]:
        default = (None if local else self.remote_ip, PORT)
        if isinstance(e, Struct):
            port = value(e.get("sin_port") or e.get("sin6_port")) or PORT
            return default[0], port
        return default

    def sys_bind(self, fd_e: Expr, addr: Expr, _len: Expr) -> int:
        _, s = self._fd(fd_e)
        a, port = self._addr(addr, True)
        s.bind(a, port)
        return 0

    def sys_listen(self, fd_e: Expr, backlog: Expr) -> int:
        _, s = self._fd(fd_e)
        if not isinstance(s, TcpSock):
            raise SockError(errno.EOPNOTSUPP)
        s.listen(value(backlog) or 1)
        self.listens += 1
        return 0

    def sys_accept(self, fd_e: Expr, _addr: Expr = Ellipsis_(), _len: Expr = Ellipsis_()) -> int:
        fd, s = self._fd(fd_e)
        if not isinstance(s, TcpSock):
            raise SockError(errno.EOPNOTSUPP)

        want = self.expected_fd  # a blocked accept() returns after other calls ran

        def attempt() -> int | None:
            child = s.accept()
            return None if child is None else self._new_fd(child, want, shadow=True)
        return self._maybe_block(fd, attempt)

    def sys_accept4(self, fd_e: Expr, a: Expr, ln: Expr, _flags: Expr) -> int:
        return self.sys_accept(fd_e, a, ln)

    def sys_connect(self, fd_e: Expr, addr: Expr, _len: Expr) -> int:
        fd, s = self._fd(fd_e)
        a, port = self._addr(addr, False)
        assert a is not None
        if isinstance(s, UdpSock):
            s.connect(a, port)
            return 0
        self.current = s
        if s.opened:
            done = s.connect_done()
            if done is None:
                raise SockError(errno.EALREADY)
            if done:
                raise SockError(done)
            if fd in self.connect_reported:
                raise SockError(errno.EISCONN)
            self.connect_reported.add(fd)
            return 0
        s.connect(a, port)

        def attempt() -> int | None:
            done = s.connect_done()
            if done is None:
                return None
            self.connect_reported.add(fd)
            if done:
                raise SockError(done)
            return 0
        return self._maybe_block(fd, attempt, errno.EINPROGRESS)

    def sys_close(self, fd_e: Expr) -> int:
        n = value(fd_e)
        if n is not None and n in self.others:
            f = self.others.pop(n)
            f.close()
            for ep in self._epolls():
                ep.forget(f)
            return 0
        fd, s = self._fd(fd_e)
        del self.fds[fd]
        for ep in self._epolls():
            ep.forget(s)
        if isinstance(s, TcpSock) and s.tcb is not None:
            self.closed_ports.add((s.tcb.local_port, s.tcb.remote_port))
        if fd in self.linger0 and isinstance(s, TcpSock):
            s.abort()
        else:
            s.close()
        return 0

    def sys_shutdown(self, fd_e: Expr, how: Expr) -> int:
        _, s = self._fd(fd_e)
        h = value(how)
        if not isinstance(s, TcpSock):
            raise SockError(errno.ENOTCONN)
        s.shutdown(h in (0, 2), h in (1, 2))
        return 0

    # -- data ------------------------------------------------------------------------------------
    def _write(self, fd_e: Expr, n: int, flags: int = 0, addr: Expr | None = None,
               buf: Expr | None = None, iov: list[int] | None = None) -> int:
        """``iov``: sendmsg()'s element lengths (a zero-copy write fills an skb per
        MAX_SKB_FRAGS elements, stack/tcp/zerocopy.py)."""
        if (f := self._other(fd_e)) is not None:
            return self._write_other(value(fd_e) or 0, f, n)
        fd, s = self._fd(fd_e)
        zc = bool(flags & 0x4000000)  # MSG_ZEROCOPY: without SO_ZEROCOPY an ordinary send
        ends: list[int] = []  # where this write fills an skb: no segment crosses (as MSG_EOR)
        if zc and isinstance(s, TcpSock):
            s.zerocopy_call()
            ends = frag_ends(iov or ()) if s.zerocopy else []
        if isinstance(s, TcpSock) and (s.fastopen_deferred or (
                flags & 0x20000000 and not s.connected)):  # MSG_FASTOPEN, ignored once connected
            return self._fastopen_write(fd, s, n, flags, addr, buf)
        if isinstance(s, UdpSock):
            dst = None if addr is None or (isinstance(addr, Ellipsis_) and s.is_connected) else (
                self.remote_ip, self._addr(addr, False)[1])
            return s.sendto(bytes(n), dst)
        self.current = s
        nonblock = self.nonblock.get(fd) or bool(flags & 0x40)
        if nonblock and s.opened and not s.connected and not s.ended:
            raise SockError(errno.EAGAIN)  # the handshake is running (sk_stream_wait_connect)
        sent = 0
        if n and _is_null(buf):
            raise SockError(errno.EFAULT)  # the kernel cannot copy from a NULL buffer

        asleep = False  # blocked: only a writable buffer wakes the writer (sndbuf.py)

        def attempt() -> int | None:
            r = queue()
            if r and isinstance(s, TcpSock):
                s.sendmsg_done()  # the call returns: SO_TIMESTAMPING marks its last byte
            return r

        def queue() -> int | None:
            nonlocal sent, asleep
            while sent < n and not (asleep and not s.writable()):
                asleep = False
                stop = next((e for e in ends if e > sent), n)
                k = s.send(bytes(stop - sent), oob=bool(flags & 1),  # MSG_OOB
                           more=bool(flags & 0x8000),  # MSG_MORE
                           eor=bool(flags & 0x80) or stop in ends,  # MSG_EOR, a full skb
                           zerocopy=zc)
                if k is None:
                    break
                sent += k
            if sent == n or (nonblock and sent):
                return sent
            if s.ended or s.shut_wr:
                if sent:
                    return sent
                raise SockError(errno.EPIPE)
            asleep = True
            return None
        if n == 0:
            return s.send(b"") or 0
        r = attempt()
        if r is not None:
            return r
        if nonblock:
            raise SockError(errno.EAGAIN)
        raise Blocked(self._wrap(attempt))

    def _fastopen_write(self, fd: int, s: TcpSock, n: int, flags: int,
                        addr: Expr | None, buf: Expr | None = None) -> int:
        """sendto(MSG_FASTOPEN), or a write after connect() with TCP_FASTOPEN_CONNECT (Linux
        tcp_sendmsg_fastopen): the data goes into the SYN (up to the room a cached cookie
        leaves); a non-blocking call returns what the SYN took, or EINPROGRESS when it took
        nothing (a cookie request); a blocking one waits for the handshake and sends it all.
        A NULL buffer: the SYN goes without data and the blocking call, once connected,
        fails with EFAULT (tcp_sendmsg_locked's copy)."""
        self.current = s
        if not s.fastopen_deferred:
            if not s.fastopen_client or "AF_UNSPEC" in names(addr) or (
                    isinstance(addr, Struct) and value(
                        addr.get("sin_family") or addr.get("sin6_family")) == 0):
                raise SockError(errno.EOPNOTSUPP)  # client bit off, or AF_UNSPEC
            if s.opened:
                raise SockError(errno.EISCONN if s.connect_done() == 0 else errno.EALREADY)
            s.connect(self.remote_ip, self._addr(addr, False)[1] if addr is not None else PORT,
                      fastopen=True)
        nonblock = self.nonblock.get(fd) or bool(flags & 0x40)
        # non-blocking: only what the SYN takes; blocking: everything queued now, so that the
        # handshake's ACK rides on the rest of the data (Linux delays it for a waiting writer)
        bad = bool(n) and _is_null(buf)
        if bad:
            s.fastopen_unreadable()
        take = 0 if bad else s.fastopen_space() if nonblock else n
        sent = 0
        if take and n:
            sent = s.send(bytes(min(n, take)), zerocopy=bool(flags & 0x4000000)) or 0
        s.fastopen_go()
        if nonblock:
            if sent:
                return sent
            raise SockError(errno.EINPROGRESS)

        def attempt() -> int | None:
            nonlocal sent
            done = s.connect_done()
            if done is None or s.fastopen_deferred:
                return None
            if done:
                raise SockError(done)
            if bad:
                raise SockError(errno.EFAULT)
            while sent < n:
                k = s.send(bytes(n - sent), zerocopy=bool(flags & 0x4000000))
                if k is None:
                    return None
                sent += k
            return sent
        r = attempt()
        if r is not None:
            return r
        raise Blocked(self._wrap(attempt))

    def sys_write(self, fd_e: Expr, buf: Expr, n: Expr) -> int:
        return self._write(fd_e, value(n) or 0, buf=buf)

    def sys_send(self, fd_e: Expr, buf: Expr, n: Expr, flags: Expr) -> int:
        return self._write(fd_e, value(n) or 0, value(flags) or 0, buf=buf)

    def sys_sendto(self, fd_e: Expr, buf: Expr, n: Expr, flags: Expr, addr: Expr,
                   _len: Expr) -> int:
        return self._write(fd_e, value(n) or 0, value(flags) or 0, addr, buf)

    @staticmethod
    def _iov_lens(iov: Expr | None) -> list[int]:
        lens = []
        if isinstance(iov, Array):
            for item in iov.items:
                if isinstance(item, Struct):
                    ln = item.get("iov_len")
                    if ln is None and item.fields:
                        ln = item.fields[-1].value
                    lens.append(value(ln) or 0)
        return lens

    @classmethod
    def _iov_len(cls, iov: Expr | None) -> int:
        return sum(cls._iov_lens(iov))

    def sys_writev(self, fd_e: Expr, iov: Expr, _cnt: Expr) -> int:
        return self._write(fd_e, self._iov_len(iov))

    def sys_sendmsg(self, fd_e: Expr, msg: Expr, flags: Expr) -> int:
        if not isinstance(msg, Struct):
            raise ArgError("sendmsg() needs a struct msghdr")
        if msg.get("msg_control") is not None:
            raise Unsupported("sendmsg() ancillary data (msg_control)")
        lens = self._iov_lens(msg.get("msg_iov"))
        return self._write(fd_e, sum(lens), value(flags) or 0, iov=lens)

    def _read(self, fd_e: Expr, n: int, flags: int = 0,
              after: Callable[[Sock], None] | None = None, buf: Expr | None = None) -> int:
        """``after``: a check of the socket once the read returned (recvmsg's cmsgs)."""
        if (f := self._other(fd_e)) is not None:
            return self._read_other(value(fd_e) or 0, f, n)
        fd, s = self._fd(fd_e)
        if flags & 0x2000:
            raise Unsupported("MSG_ERRQUEUE (socket error queue)")  # recvmsg() has it
        if isinstance(s, TcpSock):
            self.current = s
        peek = bool(flags & 2)
        if flags & 1 and isinstance(s, TcpSock):  # MSG_OOB: never blocks (tcp_recv_urg)
            return len(s.recv_oob(peek)[:n])

        def attempt() -> int | None:
            if n and _is_null(buf) and s.readable():
                # data to copy, nowhere to copy it: EFAULT, the data stays queued (Linux)
                raise SockError(errno.EFAULT)
            data = s.recv(n, peek)
            if data is not None and after is not None:
                after(s)
            return None if data is None else len(data)
        if flags & 0x40:
            r = attempt()
            if r is None:
                raise SockError(errno.EAGAIN)
            return r
        return self._maybe_block(fd, attempt)

    def sys_read(self, fd_e: Expr, buf: Expr, n: Expr) -> int:
        return self._read(fd_e, value(n) or 0, buf=buf)

    def sys_recv(self, fd_e: Expr, buf: Expr, n: Expr, flags: Expr) -> int:
        return self._read(fd_e, value(n) or 0, value(flags) or 0, buf=buf)

    def sys_recvfrom(self, fd_e: Expr, buf: Expr, n: Expr, flags: Expr, _a: Expr,
                     _l: Expr) -> int:
        return self._read(fd_e, value(n) or 0, value(flags) or 0, buf=buf)

    def sys_recvmsg(self, fd_e: Expr, msg: Expr, flags: Expr) -> int:
        if not isinstance(msg, Struct):
            raise ArgError("recvmsg() needs a struct msghdr")
        f = value(flags) or 0
        if "MSG_ERRQUEUE" in names(msg.get("msg_flags")):
            f |= 0x2000
        if f & 0x2000:
            return self._recv_errqueue(fd_e, msg)
        ctrl = msg.get("msg_control")
        return self._read(fd_e, self._iov_len(msg.get("msg_iov")), f,
                          None if ctrl is None else self._recv_cmsgs(ctrl))

    def _recv_errqueue(self, fd_e: Expr, msg: Struct) -> int:
        """recvmsg(MSG_ERRQUEUE): never blocks (EAGAIN when empty, Linux sock_recv_errqueue);
        reads the oldest entry of the socket's error queue (stack/tcp/errqueue.py): a control
        message SCM_TIMESTAMPING when the entry has a timestamp (ts[0] the virtual time, checked
        within the script's tolerance; an expected 0 is not checked, as packetdrill), then
        IP_RECVERR (IPV6_RECVERR on an AF_INET6 socket) carrying struct sock_extended_err. A
        zero-copy completion and an OPT_TSONLY timestamp have no payload; any other timestamp
        carries the packet, so a zero-length buffer returns 0 with MSG_TRUNC."""
        _, s = self._fd(fd_e)
        if not isinstance(s, TcpSock) or (got := s.errqueue()) is None:
            raise SockError(errno.EAGAIN)
        if got.ee_origin == tstamp.SO_EE_ORIGIN_TIMESTAMPING and s.tsflags & tstamp.OPT_STATS:
            raise Unsupported("SOF_TIMESTAMPING_OPT_STATS (SCM_TIMESTAMPING_OPT_STATS)")
        if got.has_data and self._iov_len(msg.get("msg_iov")):
            raise Unsupported("reading the packet copy of a TX timestamp (no OPT_TSONLY)")
        flags = 0x2000 | (0x20 if got.has_data else 0)  # MSG_ERRQUEUE | MSG_TRUNC
        want_flags = msg.get("msg_flags")
        if want_flags is not None and (want := value(want_flags)) is not None and want != flags:
            raise ArgError(f"recvmsg(MSG_ERRQUEUE): msg_flags: expected {want:#x} vs actual "
                           f"{flags:#x}")
        ctrl = msg.get("msg_control")
        level, typ = _recverr_cmsg(s.v6)
        actual: list[tuple[int, int, ExtendedErr]] = [(level, typ, got)]
        if got.tstamp is not None:
            actual.insert(0, (1, tstamp.SCM_TIMESTAMPING, got))  # SOL_SOCKET
        items = ctrl.items if isinstance(ctrl, Array) else ()
        if isinstance(ctrl, Array) and len(items) != len(actual):
            raise ArgError(f"recvmsg(MSG_ERRQUEUE): expected {len(items)} control messages vs "
                           f"actual {len(actual)}")
        for item, (a_level, a_type, e) in zip(items, actual, strict=False):
            if not isinstance(item, Struct):
                raise ArgError("recvmsg(): msg_control needs struct cmsghdr")
            for field, have in (("cmsg_level", a_level), ("cmsg_type", a_type)):
                want = _cmsg_value(item.get(field), s.v6)
                if want is not None and want != have:
                    raise ArgError(f"recvmsg(MSG_ERRQUEUE): {field}: expected {want} vs actual "
                                   f"{have}")
            data = item.get("cmsg_data")
            if a_type == tstamp.SCM_TIMESTAMPING and a_level == 1:
                self._check_scm_timestamping(data, e.tstamp or 0.0)
                continue
            fields = e.fields()
            for f in data.fields if isinstance(data, Struct) else ():
                if f.name not in fields:
                    raise Unsupported(f"sock_extended_err field {f.name}")
                v = value(f.value)
                if v is not None and v != fields[f.name]:
                    raise ArgError(f"recvmsg(MSG_ERRQUEUE): {f.name}: expected {v} vs actual "
                                   f"{fields[f.name]}")
        return 0

    def _check_scm_timestamping(self, data: Expr | None, actual: float) -> None:
        """struct scm_timestamping's ts[0] written ``{scm_sec=S,scm_nsec=N}``: script time."""
        if not isinstance(data, Struct):
            return
        sec, nsec = value(data.get("scm_sec")) or 0, value(data.get("scm_nsec")) or 0
        if not sec and not nsec:
            return
        want = sec + nsec / 1e9
        if abs(want - actual) > self.tolerance + 1e-9:
            raise ArgError(f"recvmsg(MSG_ERRQUEUE): SCM_TIMESTAMPING: expected {want:.6f} vs "
                           f"actual {actual:.6f}")

    @staticmethod
    def _recv_cmsgs(ctrl: Expr) -> Callable[[Sock], None]:
        """recvmsg()'s expected control messages: TCP_CM_INQ alone (Linux TCP_INQ: the bytes
        left to read after this read, 1 once only the FIN is left)."""
        items = ctrl.items if isinstance(ctrl, Array) else ()
        wants = []
        for item in items:
            if not (isinstance(item, Struct) and value(item.get("cmsg_level")) == 6
                    and value(item.get("cmsg_type")) == 36):
                raise Unsupported("recvmsg() ancillary data other than TCP_CM_INQ")
            wants.append(value(item.get("cmsg_data")))

        def check(s: Sock) -> None:
            got = s.inq_hint() if isinstance(s, TcpSock) else None
            if got is None:
                raise ArgError("recvmsg(): no TCP_CM_INQ control message (TCP_INQ is off)")
            for want in wants:
                if want is not None and want != got:
                    raise ArgError(f"recvmsg(): TCP_CM_INQ: expected {want} vs actual {got}")
        return check

    # -- control ---------------------------------------------------------------------------------
    def sys_fcntl(self, fd_e: Expr, cmd: Expr, arg: Expr = Ellipsis_()) -> int:
        fd = value(fd_e)
        if fd is None or not self._taken(fd):
            raise SockError(errno.EBADF)
        c = value(cmd)
        if c == 3:  # F_GETFL
            return 2 | (0o4000 if self.nonblock.get(fd) else 0)
        if c == 4:  # F_SETFL
            self.nonblock[fd] = bool((value(arg) or 0) & 0o4000)
            return 0
        raise Unsupported(f"fcntl command {cmd}")

    def sys_ioctl(self, fd_e: Expr, req: Expr, out: Expr) -> int:
        _, s = self._fd(fd_e)
        r = value(req)
        if r == 0x541B:  # SIOCINQ / FIONREAD
            got = s.readable()
        elif r == 0x5411 and isinstance(s, TcpSock):  # SIOCOUTQ
            got = s.send_queue()
        elif r == 0x894B and isinstance(s, TcpSock):  # SIOCOUTQNSD
            got = s.info()["tcpi_notsent_bytes"]
        elif r == 0x8905 and isinstance(s, TcpSock):  # SIOCATMARK
            got = int(s.at_mark())
        else:
            raise Unsupported(f"ioctl {req}")
        want = value(out)
        if want is not None and want != got:
            raise ArgError(f"ioctl(): expected {want} bytes but got {got}")
        return 0

    def sys_setsockopt(self, fd_e: Expr, level: Expr, name: Expr, val: Expr,
                       _len: Expr) -> int:
        fd, s = self._fd(fd_e)
        opt = next(iter(names(name)), "")
        try:
            v = value(val) if not isinstance(val, Struct | Str) else None
        except Unsupported:
            v = None  # a flag stacklab does not know: the option is not there either
        if opt in ("IP_TOS", "IPV6_TCLASS") and isinstance(s, TcpSock) and v is not None:
            s.set_config(tos=v & 0xFC)  # a stream socket keeps its ECN bits (Linux)
            return 0
        if opt in ("SO_REUSEADDR", "SO_REUSEPORT", "IP_TOS", "IPV6_TCLASS", "SO_MARK",
                   "IP_FREEBIND"):
            return 0
        if opt == "SO_LINGER" and isinstance(val, Struct):
            if value(val.get("l_onoff") or val.get("onoff")) and not value(
                    val.get("l_linger") or val.get("linger")):
                self.linger0.add(fd)
            return 0
        if opt == "IP_MTU_DISCOVER" and isinstance(s, TcpSock):
            try:
                s.set_config(pmtudisc=check_mode(v if v is not None else -1))  # pmtudisc.py
            except OSError as e:
                raise SockError(e.errno or errno.EINVAL) from None
            return 0
        if opt == "IP_MTU_DISCOVER":
            if v in (IP_PMTUDISC_DO, IP_PMTUDISC_WANT):
                return 0  # stacklab's UDP always sets DF and does path MTU discovery
            self._no_option("IP_MTU_DISCOVER for UDP without path MTU discovery")
        if not isinstance(s, TcpSock):
            self._no_option(opt)
        tcp_opts: dict[str, Callable[[int], dict[str, Any]]] = {
            "TCP_NODELAY": lambda x: {"nodelay": bool(x)},
            "TCP_CORK": lambda x: {"cork": bool(x)},
            "TCP_NOTSENT_LOWAT": lambda x: {"notsent_lowat": x},
            "TCP_MAXSEG": lambda x: {"maxseg": x},
            "TCP_USER_TIMEOUT": lambda x: {"user_timeout": x / 1000 if x else None},
            "TCP_KEEPIDLE": lambda x: {"keepidle": float(x)},
            "TCP_KEEPINTVL": lambda x: {"keepintvl": float(x)},
            "TCP_KEEPCNT": lambda x: {"keepcnt": x},
            "TCP_SYNCNT": lambda x: {"syn_retries": x},
            "SO_KEEPALIVE": lambda x: {"keepalive": bool(x)},
            "SO_OOBINLINE": lambda x: {"oobinline": bool(x)},
            # Linux doubles the value for its bookkeeping overhead (socket(7)), with a floor
            "SO_SNDBUF": lambda x: {"send_buffer": so_sndbuf(x)},
            "SO_RCVBUF": lambda x: {"recv_buffer": so_rcvbuf(x)},
            # bytes/s, ~0 no cap; setting it turns pacing on (Linux sock_setsockopt)
            "SO_MAX_PACING_RATE": lambda x: {
                "max_pacing_rate": None if x in (0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF) else x},
        }
        if opt == "TCP_INQ" and isinstance(s, TcpSock) and v is not None:
            s.inq = bool(v)
            return 0
        if opt == "SO_ZEROCOPY":
            if v not in (0, 1):
                raise SockError(errno.EINVAL)  # Linux sock_setsockopt: a boolean
            s.set_zerocopy(bool(v))
            return 0
        if opt == "TCP_QUICKACK" and v is not None:
            s.set_quickack(bool(v))
            return 0
        if opt == "SO_TIMESTAMPING":  # an int of flags (struct so_timestamping: BIND_PHC)
            if v is None:
                raise SockError(errno.EINVAL)
            s.set_timestamping(v)
            return 0
        if opt.startswith("TCP_FASTOPEN"):
            return self._fastopen_sockopt(s, opt, v, val, value(_len))
        if opt == "TCP_CONGESTION" and isinstance(val, Str):
            try:
                s.set_config(congestion=self.stack.check_congestion(val.value))
            except ValueError:
                raise SockError(errno.ENOENT) from None
            return 0
        conv = tcp_opts.get(opt)
        if conv is None or v is None:
            self._no_option(opt)
        s.set_config(**conv(v))
        return 0

    @staticmethod
    def _fastopen_sockopt(s: TcpSock, opt: str, v: int | None, val: Expr,
                          length: int | None) -> int:
        """TCP_FASTOPEN (a listener's TFO queue), TCP_FASTOPEN_CONNECT, TCP_FASTOPEN_NO_COOKIE,
        TCP_FASTOPEN_KEY (a listener's own 16-byte key), with Linux's errnos."""
        if opt == "TCP_FASTOPEN_KEY":
            key = val.value.encode("latin-1") if isinstance(val, Str) else b""
            if length not in (KEY_LEN, 2 * KEY_LEN) or len(key) < length:
                raise SockError(errno.EINVAL)
            s.set_config(fastopen_key=key[:KEY_LEN])  # a backup key is accepted, not used
            return 0
        if v is None:
            raise SockError(errno.EINVAL)
        if opt == "TCP_FASTOPEN":
            if s.opened:
                raise SockError(errno.EINVAL)  # only CLOSED or LISTEN sockets
            s.set_config(fastopen_qlen=v)
        elif opt == "TCP_FASTOPEN_CONNECT":
            if v not in (0, 1):
                raise SockError(errno.EINVAL)
            if not s.fastopen_client:
                raise SockError(errno.EOPNOTSUPP)
            if s.opened:
                raise SockError(errno.EINVAL)
            s.set_config(fastopen_connect=bool(v))
        elif opt == "TCP_FASTOPEN_NO_COOKIE":
            if v not in (0, 1):
                raise SockError(errno.EINVAL)
            s.set_config(fastopen_no_cookie=bool(v))
        else:
            raise SockError(errno.ENOPROTOOPT)
        return 0

    def sys_getsockopt(self, fd_e: Expr, level: Expr, name: Expr, out: Expr,
                       _len: Expr = Ellipsis_()) -> int:
        _, s = self._fd(fd_e)
        opt = next(iter(names(name)), "")
        if opt == "TCP_INFO":
            if not isinstance(s, TcpSock) or not isinstance(out, Struct):
                raise SockError(errno.EINVAL)
            info = s.info()
            for f in out.fields:
                want = value(f.value)
                if want is None:
                    continue
                if f.name not in info:
                    raise Unsupported(f"tcp_info field {f.name}")
                if info[f.name] != want:
                    raise ArgError(f"getsockopt(TCP_INFO): {f.name}: expected {want} vs "
                                   f"actual {info[f.name]}")
            return 0
        if opt == "SO_ERROR":
            got: int | str = s.take_error()
        elif opt == "TCP_CONGESTION" and isinstance(s, TcpSock):
            got = str(s.get_config("congestion"))
        elif isinstance(s, TcpSock):
            table: dict[str, Callable[[], int]] = {
                "TCP_MAXSEG": s.mss,
                "TCP_NODELAY": lambda: int(s.get_config("nodelay")),
                "TCP_CORK": lambda: int(s.get_config("cork")),
                "TCP_NOTSENT_LOWAT": lambda: int(s.get_config("notsent_lowat")),
                "TCP_QUICKACK": lambda: int(s.tcb is None or s.tcb.quickack),
                "TCP_INQ": lambda: int(s.inq),
                "SO_ZEROCOPY": lambda: int(s.zerocopy),
                "SO_TIMESTAMPING": lambda: s.tsflags,
                "IP_MTU_DISCOVER": lambda: int(s.get_config("pmtudisc")),
                "IP_TOS": lambda: int(s.get_config("tos")),
                "IPV6_TCLASS": lambda: int(s.get_config("tos")),
                "SO_SNDBUF": lambda: s.buffer_sizes()[0],
                "SO_RCVBUF": lambda: s.buffer_sizes()[1],
                "SO_KEEPALIVE": lambda: int(s.get_config("keepalive")),
                "SO_OOBINLINE": lambda: int(s.get_config("oobinline")),
                "TCP_USER_TIMEOUT": lambda: round((s.get_config("user_timeout") or 0) * 1000),
                "SO_TYPE": lambda: 1,
            }
            fn = table.get(opt)
            if fn is None:
                self._no_option(opt)
            got = fn()
        else:
            self._no_option(opt)
        if isinstance(out, Array) and out.items and isinstance(out.items[0], Str):
            want_s = out.items[0].value
            if want_s != got:
                raise ArgError(f"getsockopt({opt}): expected {want_s!r} vs actual {got!r}")
            return 0
        want = value(out)
        if want is not None and want != got:
            raise ArgError(f"getsockopt({opt}): expected {want} vs actual {got}")
        return 0

    def sys_poll(self, fds: Expr, _nfds: Expr, timeout: Expr) -> int:
        if not isinstance(fds, Array):
            raise ArgError("poll() needs an array of struct pollfd")
        entries = []
        for item in fds.items:
            if not isinstance(item, Struct):
                raise ArgError("poll() needs an array of struct pollfd")
            entries.append((value(item.get("fd")), value(item.get("events")) or 0,
                            value(item.get("revents"))))
        t = value(timeout)
        start = self.clock()

        def revents() -> list[int]:
            out = []
            for fd, events, _ in entries:
                n = fd if fd is not None else -1
                s = self.fds.get(n) or self.others.get(n)
                got = 0x20 if s is None else s.poll()
                out.append(got & (events | POLLERR | POLLHUP | 0x20))
            return out

        def check(rev: list[int]) -> int:
            for (fd, _, want), got in zip(entries, rev, strict=True):
                if want is not None and want != got:
                    raise ArgError(f"poll(): fd {fd} revents: expected {want:#x} vs actual "
                                   f"{got:#x}")
            return sum(1 for r in rev if r)

        def attempt() -> int | None:
            rev = revents()
            if any(rev) or t == 0 or (t is not None and t > 0 and
                                      self.clock() >= start + t / 1000 - 1e-9):
                return check(rev)
            return None
        r = attempt()
        if r is not None:
            return r
        raise Blocked(self._wrap(attempt), None if t is None or t < 0 else start + t / 1000)


    # -- epoll (epoll.py) ----------------------------------------------------------------------
    def sys_epoll_create(self, size: Expr) -> int:
        if (value(size) or 0) <= 0:
            raise SockError(errno.EINVAL)  # the size is ignored but must be positive
        return self._new_other(Epoll())

    def sys_epoll_create1(self, flags: Expr) -> int:
        if (value(flags) or 0) & ~epoll.EPOLL_CLOEXEC:
            raise SockError(errno.EINVAL)
        return self._new_other(Epoll())

    def _epoll(self, e: Expr) -> Epoll:
        fd = value(e)
        if fd is not None and fd in self.fds:
            raise SockError(errno.EINVAL)  # not an epoll descriptor
        ep = self.others.get(fd if fd is not None else -1)
        if ep is None:
            raise SockError(errno.EBADF)
        if not isinstance(ep, Epoll):
            raise SockError(errno.EINVAL)
        return ep

    def _epolls(self) -> list[Epoll]:
        return [f for f in self.others.values() if isinstance(f, Epoll)]

    def sys_epoll_ctl(self, epfd: Expr, op: Expr, fd_e: Expr, event: Expr) -> int:
        ep = self._epoll(epfd)
        fd = value(fd_e)
        n = fd if fd is not None else -1
        target = self.fds.get(n) or self.others.get(n)
        if isinstance(target, RegFile):
            raise SockError(errno.EPERM)  # regular files cannot be polled by epoll
        events, data = _epoll_event(event)
        ep.ctl(value(op) or 0, n, target, events or 0, data or 0)
        return 0

    def sys_epoll_wait(self, epfd: Expr, events: Expr, maxevents: Expr, timeout: Expr) -> int:
        """epoll_wait(): blocks on virtual time up to ``timeout`` ms (-1: for ever) until an
        event is ready; the script's ``{events=..., fd=...}`` (one struct or an array) are the
        events expected, in order."""
        ep = self._epoll(epfd)
        maxn = value(maxevents) or 0
        want = [e for e in (events.items if isinstance(events, Array) else (events,))
                if isinstance(e, Struct)]
        t = value(timeout)
        start = self.clock()

        def check(got: list[tuple[int, int]]) -> int:
            for k, ((rev, data), w) in enumerate(zip(got, want, strict=False)):
                w_events, w_data = _epoll_event(w)
                if w_events is not None and w_events != rev:
                    raise ArgError(f"epoll_wait(): event {k}: events: expected {w_events:#x} "
                                   f"vs actual {rev:#x}")
                if w_data is not None and w_data != data:
                    raise ArgError(f"epoll_wait(): event {k}: data: expected {w_data} vs "
                                   f"actual {data}")
            return len(got)

        def attempt() -> int | None:
            got = ep.wait(maxn)
            if got or t == 0 or (t is not None and t > 0 and
                                 self.clock() >= start + t / 1000 - 1e-9):
                return check(got)
            return None
        r = attempt()
        if r is not None:
            return r
        raise Blocked(self._wrap(attempt), None if t is None or t < 0 else start + t / 1000)


    # -- pipes, files, splice, sendfile (files.py) ----------------------------------------------
    def sys_pipe(self, fds: Expr) -> int:
        """pipe([r, w]): the script's numbers for the read and the write end."""
        want = [value(x) for x in fds.items] if isinstance(fds, Array) else []
        p = Pipe()
        for k, end in enumerate((p.read_end, p.write_end)):
            w = want[k] if k < len(want) else None
            self._new_other(end, -1 if w is None else w)
        return 0

    def sys_pipe2(self, fds: Expr, flags: Expr) -> int:
        before = set(self.others)
        self.sys_pipe(fds)
        if (value(flags) or 0) & 0o4000:  # O_NONBLOCK
            for fd in set(self.others) - before:
                self.nonblock[fd] = True
        return 0

    def sys_open(self, path: Expr, flags: Expr, _mode: Expr = Ellipsis_()) -> int:
        if not isinstance(path, Str):
            raise ArgError("open() needs a path string")
        f = value(flags) or 0
        fd = self._new_other(self.files.open(path.value, f))
        self.nonblock[fd] = bool(f & 0o4000)
        return fd

    def _read_other(self, fd: int, f: Other, n: int) -> int:
        if isinstance(f, RegFile):
            return len(f.read(n))
        if isinstance(f, Epoll):
            raise SockError(errno.EINVAL)  # no read() on an epoll descriptor

        def attempt() -> int | None:
            data = f.read(n)
            return None if data is None else len(data)
        return self._maybe_block(fd, attempt)

    def _write_other(self, fd: int, f: Other, n: int) -> int:
        if not isinstance(f, PipeEnd):
            raise SockError(errno.EINVAL if isinstance(f, Epoll) else errno.EBADF)
        sent = 0

        def attempt() -> int | None:
            nonlocal sent
            k = f.write(bytes(n - sent))
            if k is not None:
                sent += k
            return sent if sent == n or (sent and self.nonblock.get(fd)) else None
        return self._maybe_block(fd, attempt) if n else 0

    def sys_splice(self, fd_in: Expr, off_in: Expr, fd_out: Expr, off_out: Expr, n_e: Expr,
                   flags: Expr) -> int:
        """splice() between a pipe and a socket (Linux tcp_splice_read, splice_to_socket):
        a socket read that finds nothing readable while its receive queue holds the urgent
        byte returns 0 rather than waiting."""
        src, dst = self._other(fd_in), self._other(fd_out)
        n = value(n_e) or 0
        nonblock_flag = bool((value(flags) or 0) & 2)  # SPLICE_F_NONBLOCK
        if isinstance(dst, PipeEnd) and dst.writing and src is None:
            if not _is_null(off_in) and not isinstance(off_in, Ellipsis_):
                raise SockError(errno.ESPIPE)
            fd, s = self._fd(fd_in)

            def pull() -> int | None:
                room = min(n, dst.free())
                if not room:
                    return None
                data = s.recv(room)
                if data is None:
                    if isinstance(s, TcpSock) and s.queue_held():
                        return 0
                    return None
                dst.write(data)
                return len(data)
            if nonblock_flag:
                if (r := pull()) is None:
                    raise SockError(errno.EAGAIN)
                return r
            return self._maybe_block(fd, pull)
        if isinstance(src, PipeEnd) and not src.writing and dst is None:
            fd, s = self._fd(fd_out)
            if not isinstance(s, TcpSock):
                raise SockError(errno.EINVAL)

            def push() -> int | None:
                held = len(src.pipe.data)
                if not held:
                    return 0 if not src.pipe.writers else None
                k = s.send(bytes(min(n, held)))
                if k is None:
                    return None
                src.read(k)
                return k
            r = push()
            if r is not None:
                return r
            if nonblock_flag or self.nonblock.get(fd):
                raise SockError(errno.EAGAIN)
            raise Blocked(self._wrap(push))
        raise SockError(errno.EINVAL)  # one end must be a pipe, the other a socket here

    def sys_sendfile(self, out_e: Expr, in_e: Expr, offset: Expr, count: Expr) -> int:
        """sendfile(socket, file, [offset] or NULL, count): the file's bytes from the offset
        (which moves on) or from the file position, sent as write() would."""
        f = self._other(in_e)
        if not isinstance(f, RegFile):
            raise SockError(errno.EINVAL if f is not None else errno.EBADF)
        pos = value(offset) if isinstance(offset, Array) else None
        data = f.read_at(f.pos if pos is None else pos, value(count) or 0)
        sent = self._write(out_e, len(data)) if data else 0
        if pos is None:
            f.pos += sent
        return sent


def _epoll_event(e: Expr | None) -> tuple[int | None, int | None]:
    """A struct epoll_event ``{events=..., fd=4}`` (or ``ptr``, ``u32``, ``u64``: the data
    union): (events, data), None where the script wrote ``...`` or nothing."""
    if isinstance(e, Array) and len(e.items) == 1:
        e = e.items[0]
    if not isinstance(e, Struct):
        return None, None
    data = None
    for name in ("fd", "ptr", "u32", "u64"):
        if (d := e.get(name)) is not None:
            data = value(d)
    return value(e.get("events")), data


def _is_null(buf: Expr | None) -> bool:
    """A buffer argument written ``NULL``: a bad address for the kernel's copy."""
    return isinstance(buf, Sym) and buf.name == "NULL"


def _recverr_cmsg(v6: bool) -> tuple[int, int]:
    """The (level, type) of an error queue's cmsg: SOL_IPV6/IPV6_RECVERR on an AF_INET6 socket,
    else SOL_IP/IP_RECVERR."""
    return (41, 25) if v6 else (0, 11)


def _cmsg_value(e: Expr | None, v6: bool) -> int | None:
    """A cmsg level or type; CMSG_LEVEL_IP and CMSG_TYPE_RECVERR are the names packetdrill's
    run_all.py defines per IP version (the socket's family here)."""
    n = names(e)
    if "CMSG_LEVEL_IP" in n:
        return _recverr_cmsg(v6)[0]
    if "CMSG_TYPE_RECVERR" in n:
        return _recverr_cmsg(v6)[1]
    return value(e)
