"""The one place the packetdrill runner touches stacklab's transport layers.

Every call into TCP (listen, connect, accept, send, read, close, shutdown, socket options,
``tcp_info``, connection events) and UDP goes through this module, using their public methods
only, so that a change of the TCP layer's API is ported here and nowhere else. The runner sees
BSD-socket-like objects: :class:`TcpSock` and :class:`UdpSock`, which raise :class:`SockError`
with an errno, and return None where a blocking call would wait.

The TCP layer queues its events (``layer.events``: ``(tcb, event)``, oldest first) and never calls
us: :meth:`Stack.process_events` pulls them after every host call, as the asyncio API's drain hook
does, and runs the output of what the sockets kicked (``layer.poll``). A socket only records them
(connected, the error that ended the connection).
"""

from __future__ import annotations

import errno
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stacklab.errors import StacklabError
from stacklab.stack.tcp import sndbuf, tstamp, urgent
from stacklab.stack.tcp.config import TcpConfig, initial_recv_buffer, unconnected_send_buffer
from stacklab.stack.tcp.congestion import create_congestion
from stacklab.stack.tcp.errqueue import ErrQueue, ExtendedErr
from stacklab.stack.tcp.events import (
    Connected,
    ConnectionLost,
    DataReceived,
    EofReceived,
    SendSpace,
    TcbEvent,
)
from stacklab.stack.tcp.fsm import State
from stacklab.stack.tcp.listen import Listener
from stacklab.stack.tcp.tcb import Tcb
from stacklab.stack.tcp.tfo import TFO_CLIENT_ENABLE
from stacklab.stack.tcp.zerocopy import ZeroCopy

if TYPE_CHECKING:
    from stacklab.stack.host import Host
    from stacklab.stack.udp import UdpPcb

# Linux's TCP_* state numbers (include/net/tcp_states.h), as tcpi_state reports them
LINUX_STATE = {
    State.ESTABLISHED: 1, State.SYN_SENT: 2, State.SYN_RECEIVED: 3, State.FIN_WAIT_1: 4,
    State.FIN_WAIT_2: 5, State.TIME_WAIT: 6, State.CLOSED: 7, State.CLOSE_WAIT: 8,
    State.LAST_ACK: 9, State.LISTEN: 10, State.CLOSING: 11,
}
POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLRDHUP = 0x1, 0x2, 0x4, 0x8, 0x10, 0x2000
POLLRDNORM, POLLWRNORM = 0x40, 0x100
# the event keys of the wakeups a socket sends its waiters (epoll.py: Linux's sk_data_ready,
# sk_stream_write_space, sk_error_report; 0 for sk_state_change: every waiter)
WAKE_IN, WAKE_OUT, WAKE_ERR, WAKE_ALL = 0x1 | 0x2 | 0x40 | 0x80, 0x4 | 0x100 | 0x200, 0x8, 0


TCPI_FIELDS = (
    "tcpi_state", "tcpi_ca_state", "tcpi_retransmits", "tcpi_probes", "tcpi_backoff",
    "tcpi_options", "tcpi_snd_wscale", "tcpi_rcv_wscale", "tcpi_rto", "tcpi_snd_mss",
    "tcpi_rcv_mss", "tcpi_unacked", "tcpi_lost", "tcpi_retrans", "tcpi_rtt", "tcpi_rttvar",
    "tcpi_snd_ssthresh", "tcpi_snd_cwnd", "tcpi_advmss", "tcpi_reordering", "tcpi_total_retrans",
    "tcpi_bytes_acked", "tcpi_bytes_received", "tcpi_bytes_sent", "tcpi_bytes_retrans",
    "tcpi_segs_out", "tcpi_segs_in", "tcpi_snd_wnd", "tcpi_rcv_wnd", "tcpi_notsent_bytes",
    "tcpi_dsack_dups", "tcpi_sacked", "tcpi_delivered", "tcpi_reord_seen",
    "tcpi_last_data_recv", "tcpi_last_data_sent", "tcpi_busy_time", "tcpi_rwnd_limited",
    "tcpi_sndbuf_limited", "tcpi_received_ce", "tcpi_delivered_ce")
# tcpi_ca_state values (include/net/tcp.h: TCP_CA_Open ... TCP_CA_Loss)
CA_OPEN, CA_DISORDER, CA_CWR, CA_RECOVERY, CA_LOSS = range(5)


class SockError(StacklabError):
    def __init__(self, err: int, what: str = "") -> None:
        super().__init__(errno.errorcode.get(err, str(err)) + (f": {what}" if what else ""))
        self.errno = err


def _errno_of(exc: Exception | None) -> int:
    if exc is None:
        return 0
    if isinstance(exc, ConnectionRefusedError):
        return errno.ECONNREFUSED
    if isinstance(exc, ConnectionResetError):
        return errno.ECONNRESET
    if isinstance(exc, TimeoutError):
        return errno.ETIMEDOUT
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    return errno.EIO


class Stack:
    """The host's TCP and UDP as a socket table; ``clock()`` is the runner's virtual time."""

    def __init__(self, host: Host, clock: Callable[[], float]) -> None:
        self.host = host
        self.clock = clock
        self.acked: list[TcpSock] = []  # zero-copy sockets whose data an ACK freed
        self.nospace: list[TcpSock] = []  # sockets with a writer waiting for room (sndbuf.py)

    @property
    def tcp_config(self) -> TcpConfig:
        return self.host.tcp.config

    @staticmethod
    def check_congestion(name: str) -> str:
        """``name`` if stacklab has that congestion control, else ValueError."""
        create_congestion(name, 1000)
        return name

    def tcp_socket(self, v6: bool) -> TcpSock:
        return TcpSock(self, v6)

    def process_events(self) -> None:
        """Hand the TCP layer's queued events to their sockets (a new passive connection to
        its listener's accept queue), then run the output of what the sockets kicked, until
        neither is left."""
        layer = self.host.tcp
        events, now = layer.events, self.clock()
        while events or layer.kicked:
            while events:
                tcb, ev = events.popleft()
                user = tcb.user
                if isinstance(user, TcpSock):
                    user.tcp_event(ev)
                elif isinstance(ev, Connected) and (lst := layer.listener_of(tcb)) is not None:
                    lst.on_established(tcb)
            layer.poll(now)
        # after the output what arrived allowed (Linux tcp_data_snd_check: the push, then
        # tcp_check_space for a socket with SOCK_NOSPACE set)
        acked, self.acked = self.acked, []
        for s in acked:
            s.zerocopy_done()
        waiting, self.nospace = self.nospace, []
        for s in waiting:
            s.check_space()

    def udp_socket(self, v6: bool) -> UdpSock:
        return UdpSock(self, v6)


class TcpSock:
    def __init__(self, stack: Stack, v6: bool) -> None:
        self.stack = stack
        self.v6 = v6
        self.config = stack.tcp_config
        self.bound: tuple[bytes | None, int] | None = None
        self.listener: Listener | None = None
        self.accept_q: deque[Tcb] = deque()
        self.tcb: Tcb | None = None
        self.connected = False
        self.error = 0  # SO_ERROR, pending
        self.ended = False  # ConnectionLost seen
        self.shut_rd = False
        self.shut_wr = False
        self.closed = False
        self.inq = False  # TCP_INQ: recvmsg() reports the bytes left (TCP_CM_INQ)
        self.zerocopy = False  # SO_ZEROCOPY: MSG_ZEROCOPY sends notify (stack/tcp/zerocopy.py)
        self.zc_new_call = False  # the next zero-copy bytes queued start a send call
        self.tsflags = 0  # SO_TIMESTAMPING's flags (stack/tcp/tstamp.py)
        self.errq = ErrQueue()  # the error queue: zero-copy completions, TX timestamps
        self.zc_completed = 0  # zero-copy calls completed so far (a new one wakes EPOLLERR)
        self.waiters: list[Callable[[int], None]] = []  # epoll items watching (epoll.py)

    def wake(self, key: int) -> None:
        """Wake the socket's waiters with an event key (WAKE_*)."""
        for w in list(self.waiters):
            w(key)

    # -- the TCP layer's events, pulled by Stack.process_events -----------------------------------
    def tcp_event(self, ev: TcbEvent) -> None:
        if isinstance(ev, Connected):
            self.connected = True
            self.wake(WAKE_ALL)  # tcp_finish_connect: sk_state_change
        elif isinstance(ev, ConnectionLost):
            self.ended = True
            self.error = _errno_of(ev.error) or self.error
            self.wake(WAKE_ALL)  # tcp_done / tcp_reset: sk_state_change, sk_error_report
        elif isinstance(ev, DataReceived):
            self.wake(WAKE_IN)  # sk_data_ready
        elif isinstance(ev, EofReceived):
            self.wake(WAKE_ALL)  # tcp_fin: sk_state_change
        elif isinstance(ev, SendSpace) and self.zerocopy and self not in self.stack.acked:
            self.stack.acked.append(self)

    def _nospace(self, tcb: Tcb) -> None:
        """SOCK_NOSPACE: a write stopped at a full buffer, or a poll found the socket not
        writeable; the ACK that makes it writeable clears the flag (sndbuf.check_space)."""
        tcb.snd_nospace = True
        if self not in self.stack.nospace:
            self.stack.nospace.append(self)

    def check_space(self) -> None:
        """Wake a writer that found the buffer full once an ACK made the socket writeable
        (the flag sndbuf.check_space cleared: Linux sk_stream_write_space)."""
        tcb = self.tcb
        if tcb is None or self.closed:
            return
        if tcb.snd_nospace:
            self.stack.nospace.append(self)
        else:
            self.wake(WAKE_OUT)

    def zerocopy_done(self) -> None:
        """Zero-copy calls an ACK completed are on the error queue: sk_error_report."""
        zc = self.tcb.zerocopy if self.tcb is not None else None
        if zc is not None:
            done = (zc.next_id - len(zc.pending)) & 0xFFFFFFFF
            if done != self.zc_completed:
                self.zc_completed = done
                self.wake(WAKE_ERR)

    def _adopt(self, tcb: Tcb) -> None:
        self.tcb = tcb
        tcb.user = self
        self._errqueue_sync()
        self.connected = tcb.state not in (State.SYN_SENT, State.SYN_RECEIVED) or (
            tcb.tfo is not None and tcb.tfo.child)  # a TFO child is accepted at its SYN

    def _flush(self) -> None:
        """Send what a user call queued (a FIN) and let the layer forget a CLOSED TCB."""
        if self.tcb is not None:
            self.stack.host.tcp.flush(self.tcb, self.stack.clock())

    def _kick(self) -> None:
        if self.tcb is not None:
            self.stack.host.tcp.kick(self.tcb)

    # -- calls -----------------------------------------------------------------------------------
    def bind(self, addr: bytes | None, port: int) -> None:
        if self.bound is not None:
            raise SockError(errno.EINVAL, "already bound")
        self.bound = (addr, port)

    def listen(self, backlog: int) -> None:
        if self.tcb is not None:
            raise SockError(errno.EINVAL)
        if self.listener is not None:
            self.listener.backlog = max(backlog, 1)
            return
        addr, port = self.bound or (None, 0)

        def established(tcb: Tcb) -> None:
            tcb.user = None  # events until accept() are the listener's business
            self.accept_q.append(tcb)
            self.wake(WAKE_IN)  # the listener's sk_data_ready

        try:
            self.listener = self.stack.host.tcp.listen(
                port, established, local_ip=addr, config=self.config, backlog=max(backlog, 1),
                family=None if self.v6 else 4)  # AF_INET6 sockets take IPv4 too (no V6ONLY)
        except OSError as e:
            raise SockError(e.errno or errno.EADDRINUSE) from None
        self.bound = (addr, self.listener.port)

    def connect(self, addr: bytes, port: int, fastopen: bool = False) -> None:
        """``fastopen``: sendto(MSG_FASTOPEN), TCP Fast Open (TCP_FASTOPEN_CONNECT is in the
        config)."""
        if self.tcb is not None:
            raise SockError(errno.EISCONN if self.connected else errno.EALREADY)
        local_ip, local_port = self.bound or (None, 0)
        try:
            tcb = self.stack.host.tcp.connect(addr, port, self.stack.clock(), local_ip=local_ip,
                                              local_port=local_port, config=self.config,
                                              user=self, fastopen=fastopen)
        except OSError as e:
            raise SockError(e.errno or errno.ENETUNREACH) from None
        self.tcb = tcb
        self._errqueue_sync()
        if tcb.state is State.CLOSED:
            self.ended = True

    @property
    def opened(self) -> bool:
        """connect() was called (or the socket came from accept())."""
        return self.tcb is not None

    # -- TCP Fast Open (stack/tcp/tfo.py) ----------------------------------------------------------
    @property
    def fastopen_client(self) -> bool:
        """``net.ipv4.tcp_fastopen`` has the client bit (MSG_FASTOPEN, TCP_FASTOPEN_CONNECT)."""
        return bool(self.stack.host.tcp.tfo.mode & TFO_CLIENT_ENABLE)

    @property
    def fastopen_deferred(self) -> bool:
        """A TFO connect whose SYN waits for data (the next write goes into the SYN)."""
        tfo = self.tcb.tfo if self.tcb is not None else None
        return tfo is not None and tfo.deferred

    def fastopen_space(self) -> int:
        """How many bytes the deferred SYN takes (0: it asks for a cookie, no data)."""
        tfo = self.tcb.tfo if self.tcb is not None else None
        return tfo.space if tfo is not None and tfo.deferred else 0

    def fastopen_unreadable(self) -> None:
        """The write meant for the deferred SYN has data the kernel cannot copy (EFAULT)."""
        tfo = self.tcb.tfo if self.tcb is not None else None
        if tfo is not None and tfo.deferred:
            tfo.data_unreadable()

    def fastopen_go(self) -> None:
        """Send the deferred SYN now, with what was queued (a write of 0 bytes sends it too)."""
        tcb = self.tcb
        if tcb is not None and tcb.tfo is not None and tcb.tfo.deferred:
            if not tcb.sendbuf.data:
                tcb.tfo.deferred = False
            self._kick()

    def fastopen_cookie(self, client: bytes, server: bytes) -> bytes:
        """The cookie this host's listener hands ``client`` (packetdrill's TFO_COOKIE)."""
        key = self.listener.config.fastopen_key if self.listener is not None else None
        return self.stack.host.tcp.tfo.cookie(client, server, key)

    def listening_port(self) -> int | None:
        if self.listener is None or self.listener.closed:
            return None
        return int(self.listener.port)

    def send_queue(self) -> int:
        """Bytes written and not yet acknowledged (SIOCOUTQ)."""
        return len(self.tcb.sendbuf) if self.tcb is not None else 0

    def connect_done(self) -> int | None:
        """A connect in progress: None while the handshake runs, else 0 or the errno (0 at
        once for a TCP Fast Open connect whose SYN waits for the first write)."""
        if self.connected or self.fastopen_deferred:
            return 0
        if self.ended:
            err, self.error = self.error, 0
            return err or errno.ECONNREFUSED
        return None

    def accept(self) -> TcpSock | None:
        if self.listener is None:
            raise SockError(errno.EINVAL, "not listening")
        if not self.accept_q:
            return None
        # a connection reset before accept() is still handed out, its error pending (as Linux)
        tcb = self.accept_q.popleft()
        child = TcpSock(self.stack, self.v6)
        child.config = tcb.config
        child.inq = self.inq  # inherited from the listener, as Linux's socket flags
        child.zerocopy = self.zerocopy
        child.tsflags = self.tsflags  # as Linux's sk_clone
        child._adopt(tcb)
        if tcb.state is State.CLOSED:
            child.ended = True
            child.error = _errno_of(tcb.error)
        return child

    def send(self, data: bytes, oob: bool = False, more: bool = False,
             eor: bool = False, zerocopy: bool = False) -> int | None:
        """Bytes queued; None when the send buffer is full (a blocking write waits). ``oob``:
        MSG_OOB, ``more``: MSG_MORE, ``eor``: MSG_EOR, ``zerocopy``: MSG_ZEROCOPY (a
        notification once acknowledged, with SO_ZEROCOPY on; see zerocopy_call)."""
        tcb = self.tcb
        if tcb is None:
            raise SockError(errno.EPIPE if self.listener is None else errno.ENOTCONN)
        if self.error and self.ended:
            err, self.error = self.error, 0
            raise SockError(err)
        if self.shut_wr or self.ended or tcb.state not in (
                State.ESTABLISHED, State.CLOSE_WAIT, State.SYN_SENT, State.SYN_RECEIVED):
            raise SockError(errno.EPIPE)
        if not data:
            return 0
        try:
            n = tcb.send(data, oob=oob, more=more, eor=eor, now=self.stack.clock())
        except ConnectionError:
            raise SockError(errno.EPIPE) from None
        if n < len(data):
            self._nospace(tcb)  # the write stopped at a full buffer
        if n == 0:
            return None
        if zerocopy and tcb.zerocopy is not None:
            tcb.zerocopy.queued(tcb.sendbuf.end, self.zc_new_call)
            self.zc_new_call = False
        self._kick()
        return n

    def writable(self) -> bool:
        """A writer blocked on a full send buffer would be woken now (sndbuf.writeable: a
        third of the buffer free, TCP_NOTSENT_LOWAT's test); no connection: nothing holds it."""
        return self.tcb is None or sndbuf.writeable(self.tcb)

    # -- the error queue: SO_ZEROCOPY (zerocopy.py), SO_TIMESTAMPING (tstamp.py) -----------------
    def set_zerocopy(self, on: bool) -> None:
        self.zerocopy = on
        self._errqueue_sync()

    def _errqueue_sync(self) -> None:
        """The connection keeps completion bookkeeping only while SO_ZEROCOPY is on (what is
        pending stays: Linux notifies sends already made zero-copy), and timestamp marks once
        SO_TIMESTAMPING flags were set; both report to this socket's error queue."""
        tcb = self.tcb
        if tcb is None:
            return
        if self.zerocopy and tcb.zerocopy is None:
            tcb.zerocopy = ZeroCopy(self.errq)
        if self.tsflags and tcb.tstamp is None:
            tcb.tstamp = tstamp.TxTimestamps(self.errq)
        if tcb.tstamp is not None:
            tcb.tstamp.set_flags(self.tsflags, tcb._abs(tcb.snd_una), tcb.sendbuf.end)

    def set_timestamping(self, flags: int) -> None:
        """setsockopt(SO_TIMESTAMPING), with Linux's errors (tstamp.check_flags): OPT_ID is
        only switched on over a connection (not CLOSED or LISTEN)."""
        tcb = self.tcb
        err = tstamp.check_flags(flags, self.tsflags,
                                 tcb is not None and tcb.state is not State.CLOSED)
        if err:
            raise SockError(err)
        self.tsflags = flags
        self._errqueue_sync()

    def sendmsg_done(self) -> None:
        """A send call that queued bytes returns: its last byte is marked for TX timestamps
        (Linux tcp_tx_timestamp)."""
        tcb = self.tcb
        if tcb is not None and tcb.tstamp is not None:
            tcb.tstamp.sendmsg(tcb.sendbuf.end)

    def zerocopy_call(self) -> None:
        """A send(MSG_ZEROCOPY) call starts: its first queued bytes take the next id (a call
        that queues nothing takes none, as Linux's aborted uarg)."""
        self.zc_new_call = True

    def errqueue(self) -> ExtendedErr | None:
        """recvmsg(MSG_ERRQUEUE): the oldest entry of the error queue, or None (EAGAIN)."""
        return self.errq.take()

    def recv(self, n: int, peek: bool = False) -> bytes | None:
        """Up to ``n`` bytes; b"" at end of stream; None when nothing is readable yet."""
        tcb = self.tcb
        if tcb is None:
            raise SockError(errno.ENOTCONN)
        if tcb.readable:
            if peek:
                return bytes(tcb.recvbuf.ready[:n])
            data = tcb.read(n)
            self.stack.host.tcp.kick(tcb)  # the window may have opened: maybe a window update
            return data
        if self.error:
            err, self.error = self.error, 0
            raise SockError(err)
        if tcb.at_eof or self.shut_rd or self.ended:
            return b""
        return None

    def readable(self) -> int:
        return self.tcb.readable if self.tcb is not None else 0

    def queue_held(self) -> bool:
        """Nothing is readable yet the receive queue holds bytes (the out-of-band byte at the
        urgent mark): tcp_splice_read returns 0 instead of waiting."""
        tcb = self.tcb
        return tcb is not None and not tcb.readable and len(tcb.recvbuf) > 0

    def inq_hint(self) -> int | None:
        """TCP_CM_INQ (Linux tcp_inq_hint): the bytes left to read, 1 when only the peer's FIN
        is; None without TCP_INQ."""
        if not self.inq:
            return None
        tcb = self.tcb
        left = tcb.readable if tcb is not None else 0
        return 1 if left == 0 and tcb is not None and tcb.fin_received else left

    def recv_oob(self, peek: bool) -> bytes:
        """recv(MSG_OOB): the urgent byte (stack/tcp/urgent.py), errors as Linux's."""
        if self.tcb is None:
            raise SockError(errno.EINVAL)
        try:
            data = urgent.recv_oob(self.tcb, peek)
        except OSError as e:
            raise SockError(e.errno or errno.EINVAL) from None
        self._kick()
        return data

    def at_mark(self) -> bool:
        """SIOCATMARK."""
        return self.tcb is not None and urgent.at_mark(self.tcb)

    def shutdown(self, rd: bool, wr: bool) -> None:
        tcb = self.tcb
        if tcb is None:
            if self.listener is not None:
                return
            raise SockError(errno.ENOTCONN)
        if rd:
            self.shut_rd = True
            tcb.shutdown_read()
        if wr and not self.shut_wr:
            self.shut_wr = True
            tcb.close(self.stack.clock())
            self._flush()
        self.wake(WAKE_ALL)  # inet_shutdown: sk_state_change

    def close(self) -> None:
        self.closed = True
        now = self.stack.clock()
        if self.listener is not None:
            self.listener.close()
            for child in [*self.accept_q, *self.listener.pending]:  # RFC 9293 §3.10.4
                child.abort(now)
                self.stack.host.tcp.flush(child, now)
            self.accept_q.clear()
        tcb = self.tcb
        if tcb is None or tcb.state is State.CLOSED:
            return
        if tcb.readable:
            # unread data at close: RST instead of FIN (RFC 9293 §3.10.4 / RFC 2525 §2.17)
            tcb.abort(now)
            self.stack.host.tcp.flush(tcb, now)
            return
        tcb.close(now, full=True)
        self._flush()

    def abort(self) -> None:
        """SO_LINGER with a zero timeout, then close: RST."""
        tcb = self.tcb
        self.closed = True
        if tcb is not None and tcb.state is not State.CLOSED:
            now = self.stack.clock()
            tcb.abort(now)
            self.stack.host.tcp.flush(tcb, now)

    def poll(self) -> int:
        ev = 0
        if self.listener is not None:
            return POLLIN | POLLRDNORM if self.accept_q else 0
        tcb = self.tcb
        if tcb is None:
            return POLLOUT | POLLHUP
        if tcb.readable or tcb.at_eof or self.ended:
            ev |= POLLIN | POLLRDNORM
        if tcb.urg is not None and urgent.has_oob(tcb):
            ev |= POLLPRI
        if tcb.fin_received:  # RCV_SHUTDOWN, unread data or not (Linux tcp_poll)
            ev |= POLLRDHUP
        if (self.connected or self.fastopen_deferred) and not self.shut_wr \
                and not self.ended:  # a deferred TFO SYN waits for a write
            if sndbuf.writeable(tcb):
                ev |= POLLOUT | POLLWRNORM
            else:
                self._nospace(tcb)  # tcp_poll: the next write-space wakeup is wanted
        if self.ended:
            # a dead connection is shut down both ways: POLLOUT (Linux tcp_poll)
            ev |= POLLOUT | POLLWRNORM
        if self.error or self.errq:
            ev |= POLLERR  # a pending error, or an error queue with notifications (tcp_poll)
        if self.ended or (self.shut_wr and tcb.at_eof):
            ev |= POLLHUP
        return ev

    # -- options ---------------------------------------------------------------------------------
    def set_config(self, **kw: Any) -> None:
        """TCP_NODELAY, TCP_MAXSEG, SO_RCVBUF, ...: on the connection if there is one, else for
        the connections this socket will make or accept."""
        self.config = self.config.replace(**kw)
        tcb = self.tcb
        if tcb is not None:
            tcb.set_config(tcb.config.replace(**kw), self.stack.clock(), tuple(kw))
            self._kick()
        if self.listener is not None:
            self.listener.config = self.config

    def set_quickack(self, on: bool) -> None:
        """TCP_QUICKACK (Tcb.set_quickack); before a connection exists there is nothing to do."""
        if self.tcb is not None:
            self.tcb.set_quickack(on)
            self._kick()

    def buffer_sizes(self) -> tuple[int, int]:
        """SO_SNDBUF, SO_RCVBUF: the buffers as they are now (autotuning moves them)."""
        if self.tcb is not None:
            return self.tcb.sendbuf.capacity, self.tcb.recvbuf.capacity
        cfg = self.config
        return unconnected_send_buffer(cfg), initial_recv_buffer(cfg)

    def get_config(self, name: str) -> Any:
        cfg = self.tcb.config if self.tcb is not None else self.config
        return getattr(cfg, name)

    def mss(self) -> int:
        if self.tcb is None:
            return self.config.maxseg or 536
        return self.tcb.snd_mss

    def take_error(self) -> int:
        err, self.error = self.error, 0
        return err

    def info(self) -> dict[str, int]:
        """``struct tcp_info`` fields as Linux names them (times in microseconds, windows in
        segments). ``tcpi_ca_state`` is Linux's congestion state told from the TCB: Loss after
        a timeout without progress, Recovery during fast recovery, Disorder with duplicate ACKs
        or SACKed data, else Open."""
        tcb = self.tcb
        if tcb is None:  # no connection: Linux reports zeros besides the state
            return dict.fromkeys(TCPI_FIELDS, 0) | {
                "tcpi_state": 10 if self.listener is not None else 7}
        i = tcb.tcp_info()
        mss = max(1, i["snd_mss"])
        opts = (1 if i["timestamps"] else 0) | (2 if i["sack"] else 0) | (
            4 if tcb.wscale_ok else 0) | (
            32 if tcb.tfo is not None and tcb.tfo.data_acked else 0)  # TCPI_OPT_SYN_DATA
        ecn = tcb.ecn
        if ecn is not None:  # TCPI_OPT_ECN, TCPI_OPT_ECN_SEEN
            opts |= 8 | (16 if ecn.seen else 0)
        sacked = tcb.rec.sacked.total
        if tcb.retries:
            ca_state = CA_LOSS
        elif tcb.recover is not None:
            ca_state = CA_RECOVERY
        elif ecn is not None and ecn.cwr_high is not None:
            ca_state = CA_CWR  # reducing for an ECE (ecn.py)
        elif tcb.dupacks or sacked:
            ca_state = CA_DISORDER
        else:
            ca_state = CA_OPEN
        now = self.stack.clock()
        busy, rwnd_limited, sndbuf_limited = tcb.chrono.usecs(now)  # stack/tcp/chrono.py
        # when data last arrived / left (ms); the connection's start before any (Linux sets
        # lrcvtime when the handshake completes)
        last_rcv = tcb.lrcvtime if tcb.lrcvtime is not None else next(
            (t for t, _old, new, _why in reversed(tcb.transitions) if new is State.ESTABLISHED),
            tcb.created)
        last_snd = tcb.lsndtime if tcb.lsndtime is not None else tcb.created
        return {
            "tcpi_state": LINUX_STATE.get(tcb.state, 7),
            "tcpi_ca_state": ca_state,
            "tcpi_sacked": -(-sacked // mss),
            "tcpi_retransmits": i["retries"],
            "tcpi_probes": tcb.probes_out,
            "tcpi_backoff": i["retries"],
            "tcpi_options": opts,
            "tcpi_snd_wscale": i["snd_wscale"],
            "tcpi_rcv_wscale": i["rcv_wscale"],
            "tcpi_rto": round(i["rto"] * 1e6),
            "tcpi_snd_mss": i["snd_mss"],
            "tcpi_rcv_mss": i["rcv_mss"],
            "tcpi_unacked": -(-i["unacked"] // mss),
            "tcpi_lost": -(-tcb.rec.lost_bytes() // mss),
            # Linux retrans_out: resent segments neither delivered nor deemed lost again,
            # whatever resent them (recovery, a timeout, Fast Open's SYN data)
            "tcpi_retrans": sum(1 for r in tcb.sent.records
                                if r.retrans and not r.sacked and not r.lost),
            "tcpi_rtt": round((i["srtt"] or 0) * 1e6),
            "tcpi_rttvar": round((i["rttvar"] or 0) * 1e6),
            # "arbitrarily high" (1 << 30 bytes) is Linux's TCP_INFINITE_SSTHRESH
            "tcpi_snd_ssthresh": 0x7FFFFFFF if i["ssthresh"] >= 1 << 30
            else i["ssthresh"] // mss,
            "tcpi_snd_cwnd": i["cwnd"] // mss,
            "tcpi_advmss": tcb.adv_mss,
            "tcpi_reordering": tcb.rack.reordering,
            "tcpi_reord_seen": tcb.rack.reord_seen,
            "tcpi_total_retrans": i["retransmits"],
            "tcpi_bytes_acked": i["bytes_acked"],
            "tcpi_bytes_received": i["bytes_received"],
            "tcpi_bytes_sent": i["bytes_sent"],
            "tcpi_bytes_retrans": i["bytes_retrans"],
            "tcpi_segs_out": i["segs_out"],
            "tcpi_segs_in": i["segs_in"],
            "tcpi_snd_wnd": i["snd_wnd"],
            "tcpi_rcv_wnd": i["rcv_wnd"],
            "tcpi_notsent_bytes": max(0, i["send_queue"] - i["unacked"]),
            "tcpi_dsack_dups": i["dsacks_in"],
            "tcpi_delivered": self._delivered(tcb, mss),
            "tcpi_last_data_recv": int((now - last_rcv) * 1000),
            "tcpi_last_data_sent": int((now - last_snd) * 1000),
            "tcpi_busy_time": busy,
            "tcpi_rwnd_limited": rwnd_limited,
            "tcpi_sndbuf_limited": sndbuf_limited,
            # CE-marked segments received; with AccECN those the peer reported (its ACE field,
            # accecn.py: Linux delivered_ce)
            "tcpi_received_ce": i["ecn_ce_in"],
            "tcpi_delivered_ce": i["accecn_ce_delivered"],
        }

    @staticmethod
    def _delivered(tcb: Tcb, mss: int) -> int:
        """Linux's tcpi_delivered, approximately: the SYN once acknowledged (with the data a TCP
        Fast Open SYN carried, one packet), then the data acknowledged in segments of the MSS
        (stacklab keeps no per-packet count)."""
        if tcb.snd_una == tcb.iss:
            return 0
        syn_data = tcb.tfo.syn_data if tcb.tfo is not None and tcb.tfo.data_acked else 0
        return 1 + -(-max(0, tcb.stats.bytes_acked - syn_data) // mss)


class UdpSock:
    def __init__(self, stack: Stack, v6: bool) -> None:
        self.stack = stack
        self.pcb: UdpPcb = stack.host.udp.socket(6 if v6 else 4)
        self.pcb.listener = self
        self.queue: deque[tuple[bytes, tuple[bytes, int]]] = deque()
        self.error = 0
        self.waiters: list[Callable[[int], None]] = []  # epoll items watching (epoll.py)

    def wake(self, key: int) -> None:
        for w in list(self.waiters):
            w(key)

    @property
    def local_port(self) -> int | None:
        return self.pcb.local_port

    @property
    def is_connected(self) -> bool:
        return self.pcb.remote is not None

    def datagram_received(self, data: bytes, addr: tuple[bytes, int], now: float) -> None:
        self.queue.append((bytes(data), addr))
        self.wake(WAKE_IN)

    def error_received(self, exc: Exception, now: float) -> None:
        self.error = _errno_of(exc)
        self.wake(WAKE_ERR)

    def bind(self, addr: bytes | None, port: int) -> None:
        try:
            self.pcb.bind(addr, port)
        except OSError as e:
            raise SockError(e.errno or errno.EINVAL) from None

    def connect(self, addr: bytes, port: int) -> None:
        try:
            self.pcb.connect(addr, port)
        except OSError as e:
            raise SockError(e.errno or errno.EINVAL) from None

    def sendto(self, data: bytes, addr: tuple[bytes, int] | None) -> int:
        try:
            self.pcb.sendto(data, addr, self.stack.clock())
        except OSError as e:
            raise SockError(e.errno or errno.EIO) from None
        return len(data)

    def recv(self, n: int, peek: bool = False) -> bytes | None:
        if self.error:
            err, self.error = self.error, 0
            raise SockError(err)
        if not self.queue:
            return None
        data = self.queue[0][0] if peek else self.queue.popleft()[0]
        return data[:n]

    def readable(self) -> int:
        return len(self.queue[0][0]) if self.queue else 0

    def poll(self) -> int:
        return (POLLIN if self.queue else 0) | POLLOUT | (POLLERR if self.error else 0)

    def close(self) -> None:
        self.pcb.close()

    def take_error(self) -> int:
        err, self.error = self.error, 0
        return err
