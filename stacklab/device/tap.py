"""A Linux TAP device: Ethernet frames in and out of the kernel through ``/dev/net/tun``.

The kernel side of a TAP device is an ordinary Ethernet interface (``ip addr add``, ``ip link set
up``, ``ping``...). Our side is a file descriptor: each ``read`` returns one frame the kernel sent
out of that interface, each ``write`` injects one frame as if it had arrived on the wire. The
stack is "the other host on the cable", so it uses its *own* MAC address, not the device's.

Opening (``TUNSETIFF``) creates the device when it does not exist and attaches to it when it does
(a persistent device made with ``ip tuntap add``). The device lives in the network namespace of the
process at open time; ``TapDevice.open(name, netns="ns1")`` enters a named namespace
(``/run/netns/ns1``, as ``ip netns add`` makes) in a helper thread just for the open, so the rest of
the process stays where it is. The file descriptor keeps working wherever the device is moved.

Frames are read and written without blocking, driven by an asyncio loop: :meth:`TapDevice.attach`
registers a reader that drains the device in batches until ``EAGAIN``; :meth:`TapDevice.send`
writes directly and queues (with a writer callback) only when the kernel pushes back.

Offloads (``TapDevice.open(..., offload=True)``, off by default): the device is opened with
``IFF_VNET_HDR`` and ``TUNSETOFFLOAD(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)``, so the kernel may
hand over TCP super-frames of up to 64 KiB (TSO/GSO: one IPv4/IPv6 + TCP header, the total length
of the whole, ``gso_size`` = the MSS) and frames whose transport checksum is only the
pseudo-header part (``VIRTIO_NET_HDR_F_NEEDS_CSUM``). Every frame then carries a 10-byte
``virtio_net_hdr`` in front. The attached reader hands the stack the frame after it (a view of
the read, no copy) with ``csum_valid`` (Linux's ``CHECKSUM_UNNECESSARY``): one TCP segment of up
to 64 KiB, as Linux's GRO would deliver it, instead of ~45 MSS-sized ones (the per-packet Python
cost is paid once), whose checksum nobody sums (the kernel made it; the stack skips the check).
``read_frame`` completes partial checksums instead: it returns ordinary, valid frames.
On transmit, each frame gets a header of zeros (no GSO, checksum already complete); with
``tx_merge`` (default on with offloads), the back-to-back TCP data segments of one flow that the
stack sends in one loop iteration, same headers but for the sequence number, are merged into one
GSO super-frame (``gso_size`` = the segment size) that the kernel splits again: one ``write`` for
up to 64 KiB. The stack's own TSO packets (``send(frame, gso_size)``: its TCB hands over whole
packets when the port's ``gso_max`` says the device segments, ``stack/tcp/gso.py``) leave as
they are with a GSO header. ``offload=False`` is plain Ethernet frames, <= MTU + 14, both ways.

ACK filtering (``ack_filter``, default on with offloads; RFC 3449 §5.2.2, what Linux's
``sch_cake`` does with ``ack-filter``): of the pure ACKs of one flow that a read batch holds back
to back, only the last reaches the stack when it acknowledges more than the one before it and
repeats what that one said: its ACK number is no lower and each SACK block of the earlier one
lies below it or inside one of its own (a receiver's SACK blocks grow as data arrives, RFC 2018
§4: the first block is the one the latest segment extended), or inside one of the last ACK of
the flow that reached the stack, which knows it already (a receiver reports at most three
blocks with timestamps: under loss each new hole pushes the oldest block out of the next ACK,
which would otherwise keep the one before it). The earlier one tells nothing the stack will not
have (a cumulative ACK, SACKed ranges, the newer window and timestamp); what every ACK
of a stream costs is the stack's per-ACK work (under loss, the scoreboard, RACK and an output
per ACK), and the output that each would trigger cuts the next packets small. Duplicate ACKs
and window updates (same ACK number and blocks), D-SACKs, data, other flags and other TCP
options pass untouched, and so does any ACK whose checksum is bad (one the device does not
vouch for, a plain frame the kernel forwarded, has its checksums checked by the filter).
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import re
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from stacklab.errors import StacklabError
from stacklab.wire.checksum import (
    fold,
    internet_checksum,
    ipv4_header_store,
    ipv4_tcp_ok,
    pseudo_header,
)
from stacklab.wire.proto import PROTO_TCP

T = TypeVar("T")

TUN_PATH = "/dev/net/tun"

# <linux/if_tun.h>
TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
IFF_TUN = 0x0001
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
# <linux/virtio_net.h>: struct virtio_net_hdr, native (little) endian on a TAP device
VNET_HDR = struct.Struct("<BBHHHH")  # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
# the SACK blocks of a pure ACK in Linux's option layout (NOP, NOP, timestamps, NOP, NOP, SACK):
# one unpack per ACK for 1 to 3 blocks (_pure_ack reads every ACK a batch brings, at 5 % loss
# thousands a second)
_SACK_WORDS = {n: struct.Struct(f">{2 * n}I") for n in (1, 2, 3)}
VNET_HDR_LEN = VNET_HDR.size  # 10
VNET_F_NEEDS_CSUM = 1
VNET_F_DATA_VALID = 2
VNET_GSO_NONE = 0
VNET_GSO_TCPV4 = 1
VNET_GSO_TCPV6 = 4
VNET_GSO_ECN = 0x80
_ZERO_VNET_HDR = bytes(VNET_HDR_LEN)
GSO_MAX = 65535 - 60 - 60  # payload bytes a merged super-frame may carry (IPv4 total length)
# <linux/sockios.h>, <linux/if.h>
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCGIFMTU = 0x8921
SIOCSIFMTU = 0x8922
SIOCGIFTXQLEN = 0x8942
SIOCSIFTXQLEN = 0x8943
SIOCGIFHWADDR = 0x8927
IFF_UP = 0x1
CLONE_NEWNET = 0x40000000

IFNAMSIZ = 16
_IFREQ_FLAGS = struct.Struct("16sH22x")
_IFREQ_INT = struct.Struct("16si20x")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,15}$")

READ_SIZE = 65536 + 64  # bigger than any frame the device can hand over (64 KiB GSO + headers)
MAX_QUEUED_FRAMES = 4096  # beyond this, frames are dropped (a real NIC drops on a full ring too)
# Frames the kernel holds for the stack to read (the device's txqueuelen: the tun driver drops
# what comes beyond it, counted as the device's TX drops): the stack's receive ring. The kernel's
# 1000 is less than the ACKs a bulk sender gets while its Python loop works through one
# recovery-sized burst of them (through the lossy bench 300 of 6,000 were dropped, their SACK
# blocks lost, and RACK resent what they reported: 900 resends for 600 losses); 4096 as the
# other direction's queue, and as a NIC's largest usual ring
RX_QUEUE_FRAMES = 4096


class TapError(StacklabError, OSError):
    """Opening or using a TAP device failed; the message says why and what to do."""

    def __str__(self) -> str:
        return str(self.strerror)


def check_ifname(name: str) -> None:
    """Raise TapError unless ``name`` is a valid Linux interface name."""
    if not _NAME_RE.match(name) or name in (".", ".."):
        raise TapError(errno.EINVAL,
                       f"bad device name {name!r}: 1 to {IFNAMSIZ - 1} characters "
                       "from letters, digits, '_', '-', '.'")


def _open_tun(name: str, offload: bool = False) -> int:
    try:
        fd = os.open(TUN_PATH, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise TapError(errno.ENOENT,
                       f"no {TUN_PATH}: load the tun module (modprobe tun) or, in a container, "
                       f"pass the device in (docker run --device {TUN_PATH} --cap-add NET_ADMIN)"
                       ) from None
    except PermissionError:
        raise TapError(errno.EACCES,
                       f"permission denied opening {TUN_PATH}: run as root or with CAP_NET_ADMIN"
                       ) from None
    except OSError as exc:
        raise TapError(exc.errno, f"cannot open {TUN_PATH}: {exc.strerror}") from None
    flags = IFF_TAP | IFF_NO_PI | (IFF_VNET_HDR if offload else 0)
    ifr = _IFREQ_FLAGS.pack(name.encode(), flags)
    try:
        fcntl.ioctl(fd, TUNSETIFF, ifr)
    except OSError as exc:
        os.close(fd)
        if exc.errno == errno.EPERM:
            msg = (f"no permission to create or attach TAP device {name!r}: need root or "
                   "CAP_NET_ADMIN (or a persistent device owned by this user: "
                   f"ip tuntap add dev {name} mode tap user $USER)")
        elif exc.errno == errno.EBUSY:
            msg = f"TAP device {name!r} is busy: another process has it open"
        elif exc.errno == errno.EINVAL:
            msg = (f"cannot use {name!r} as a TAP device: an interface of that name exists and "
                   "is not a TAP device (or the name is invalid)")
        else:
            msg = f"TUNSETIFF on {name!r} failed: {exc.strerror}"
        raise TapError(exc.errno, msg) from None
    if offload:
        try:
            fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", VNET_HDR_LEN))
            fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
        except OSError as exc:
            os.close(fd)
            raise TapError(exc.errno, f"cannot turn on offloads (TUNSETOFFLOAD) on {name!r}: "
                                      f"{exc.strerror}; open it with offload=False") from None
    return fd


def _in_netns(netns: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a helper thread that entered network namespace ``netns`` (by name or path)."""
    import ctypes

    path = netns if "/" in netns else f"/run/netns/{netns}"
    result: list[T] = []
    error: list[BaseException] = []

    def worker() -> None:
        try:
            try:
                nsfd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise TapError(errno.ENOENT, f"no network namespace {netns!r} ({path})") from None
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(nsfd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise TapError(err, f"cannot enter network namespace {netns!r}: "
                                        f"{os.strerror(err)}")
            finally:
                os.close(nsfd)
            result.append(fn())
        except BaseException as exc:  # handed to the caller's thread
            error.append(exc)

    # The thread ends right after: its namespace switch never leaks into the rest of the process.
    t = threading.Thread(target=worker, name=f"netns-{netns}", daemon=True)
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0]


class TapDevice:
    """One open TAP device. ``fileno()`` is non-blocking; frames are ``bytes`` without FCS."""

    def __init__(self, fd: int, name: str, netns: str | None = None, *,
                 offload: bool = False, tx_merge: bool | None = None,
                 ack_filter: bool | None = None) -> None:
        self.fd = fd
        self.name = name
        self.netns = netns
        self.offload = offload  # frames carry a virtio_net_hdr (the fd was opened with it)
        self.tx_merge = offload if tx_merge is None else (tx_merge and offload)
        self.ack_filter = offload if ack_filter is None else (ack_filter and offload)
        # per flow, the last pure ACK the filter let through (filter_acks: what the stack knows)
        self.acks_known: dict[bytes, tuple[bytes, int, tuple[tuple[int, int], ...]]] = {}
        self.counters = {"rx.frames": 0, "rx.bytes": 0, "tx.frames": 0, "tx.bytes": 0,
                         "tx.queued": 0, "tx.dropped": 0, "tx.errors": 0,
                         "rx.gso_frames": 0, "rx.csum_completed": 0, "rx.csum_trusted": 0,
                         "tx.gso_frames": 0, "tx.tso_frames": 0, "tx.gso_segments": 0,
                         "rx.acks_filtered": 0}
        self._batch: list[bytes | bytearray] = []  # tx_merge: frames sent in this iteration
        self._batch_gso: dict[int, int] = {}  # index in _batch -> gso_size of a TSO packet
        # TSO: payload bytes of the TCP super-frames the stack may hand over (send's gso_size)
        self.gso_max = GSO_MAX if offload else 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._txq: deque[tuple[bytes, bytes | None]] = deque()
        self._on_frame: Callable[[bytes | memoryview, bool, int], None] | None = None
        self._on_batch_end: Callable[[], None] | None = None
        self.batch_limit = 256  # frames per reader callback before yielding to the loop

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, name: str, *, netns: str | None = None, up: bool = False,
             mtu: int | None = None, offload: bool = False,
             tx_merge: bool | None = None, ack_filter: bool | None = None,
             rx_queue: int | None = RX_QUEUE_FRAMES) -> TapDevice:
        """Create (or attach to) TAP device ``name``; optionally in namespace ``netns``, set
        its MTU and bring it up. ``offload=True`` turns on TSO/GSO and checksum offload (see
        the module docstring); ``tx_merge`` (default: as ``offload``) merges outgoing TCP
        segments into GSO super-frames, ``ack_filter`` (the same default) drops the pure ACKs
        a later one of the same read batch supersedes (the module docstring). ``rx_queue``:
        how many frames the kernel holds for the stack to read (:data:`RX_QUEUE_FRAMES`; None
        leaves the device's). Raises :class:`TapError` naming the problem."""
        check_ifname(name)

        def do_open() -> int:
            fd = _open_tun(name, offload)
            try:
                if mtu is not None:
                    _set_mtu(name, mtu)
                if rx_queue is not None:
                    _ioctl_ifreq(name, SIOCSIFTXQLEN, _IFREQ_INT.pack(name.encode(), rx_queue))
                if up:
                    _set_up(name)
            except BaseException:
                os.close(fd)
                raise
            return fd

        fd = do_open() if netns is None else _in_netns(netns, do_open)
        assert isinstance(fd, int)
        return cls(fd, name, netns, offload=offload, tx_merge=tx_merge, ack_filter=ack_filter)

    def fileno(self) -> int:
        return self.fd

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def close(self) -> None:
        self.detach()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> TapDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f" netns={self.netns}" if self.netns else ""
        return f"<TapDevice {self.name} fd={self.fd}{where}>"

    # -- kernel-side settings (run in the device's namespace) ----------------------------------
    def kernel_mac(self) -> bytes:
        """The MAC address of the kernel's side of the device (not the stack's)."""
        return self._ns_call(lambda: _ioctl_ifreq(self.name, SIOCGIFHWADDR)[18:24])

    def kernel_mtu(self) -> int:
        mtu: int = self._ns_call(lambda: _IFREQ_INT.unpack(_ioctl_ifreq(self.name, SIOCGIFMTU))[1])
        return mtu

    def rx_queue(self) -> int:
        """How many frames the kernel holds for us to read (the device's txqueuelen)."""
        n: int = self._ns_call(
            lambda: _IFREQ_INT.unpack(_ioctl_ifreq(self.name, SIOCGIFTXQLEN))[1])
        return n

    def set_up(self) -> None:
        self._ns_call(lambda: _set_up(self.name))

    def _ns_call(self, fn: Callable[[], T]) -> T:
        return fn() if self.netns is None else _in_netns(self.netns, fn)

    # -- plain non-blocking I/O ----------------------------------------------------------------
    def read_frame(self) -> bytes | None:
        """One frame, or None when none is waiting (EAGAIN). With offloads, an ordinary frame
        (its checksum completed: see :meth:`_from_vnet`)."""
        try:
            data = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return None
        frame = self._from_vnet(data) if self.offload else data
        self.counters["rx.frames"] += 1
        self.counters["rx.bytes"] += len(frame)
        return frame

    def _rx_frame(self, data: bytes) -> tuple[bytes | memoryview, bool]:
        """What the attached reader hands the stack for one read with offloads: the frame after
        the virtio_net_hdr, as a view of the read's bytes (no copy), and whether the device
        vouches for its transport checksum (``csum_valid`` of ``Node.receive_frame``):
        ``DATA_VALID`` (the kernel verified it), or ``NEEDS_CSUM`` (the kernel made the segment
        and left the checksum partial; Linux's ``CHECKSUM_PARTIAL`` means the data is good) on
        an IPv4 TCP frame, which the stack's fused path takes without summing it, so the partial
        sum is not completed. Other ``NEEDS_CSUM`` frames (IPv6, UDP, IP options) are completed
        as :meth:`_from_vnet` does: the stack's other paths sum them."""
        if len(data) < VNET_HDR_LEN:
            return b"", False
        flags, gso_type = data[0], data[1]
        if gso_type != VNET_GSO_NONE:
            self.counters["rx.gso_frames"] += 1
        if flags & VNET_F_DATA_VALID:
            return memoryview(data)[VNET_HDR_LEN:], True
        if not flags & VNET_F_NEEDS_CSUM:
            return memoryview(data)[VNET_HDR_LEN:], False
        # Ethernet type IPv4, version 4 with IHL 5, TCP, not a fragment (offsets past the header)
        if len(data) >= VNET_HDR_LEN + 54 and data[22] == 8 and data[23] == 0 \
                and data[24] == 0x45 and data[33] == PROTO_TCP and not data[30] & 0x3F \
                and not data[31]:
            self.counters["rx.csum_trusted"] += 1
            return memoryview(data)[VNET_HDR_LEN:], True
        return self._from_vnet(data), True

    def _from_vnet(self, data: bytes) -> bytes:
        """Strip the virtio_net_hdr; complete a partial transport checksum (NEEDS_CSUM)."""
        if len(data) < VNET_HDR_LEN:
            return b""
        flags, gso_type, _hl, _gso_size, cs_start, cs_off = VNET_HDR.unpack_from(data)
        if gso_type != VNET_GSO_NONE:
            self.counters["rx.gso_frames"] += 1
        if not flags & VNET_F_NEEDS_CSUM:
            return data[VNET_HDR_LEN:]
        frame = bytearray(memoryview(data)[VNET_HDR_LEN:])
        pos = cs_start + cs_off
        if pos + 2 > len(frame) or cs_start >= len(frame):
            return bytes(frame)  # nonsense offsets: let the stack find the checksum bad
        # The field holds the folded pseudo-header sum: summing it with the data is the sum
        # a checksum must complement (RFC 1071).
        frame[pos:pos + 2] = internet_checksum(memoryview(frame)[cs_start:]).to_bytes(2, "big")
        self.counters["rx.csum_completed"] += 1
        return bytes(frame)  # frames enter the stack as bytes (its fast path takes only bytes)

    def read_batch(self, limit: int = 256) -> list[bytes]:
        """Up to ``limit`` frames, stopping at EAGAIN."""
        out: list[bytes] = []
        while len(out) < limit:
            frame = self.read_frame()
            if frame is None:
                break
            out.append(frame)
        return out

    def write_frame(self, frame: bytes | bytearray, vnet_hdr: bytes | None = None) -> bool:
        """Write one frame now. False when the kernel would block (the caller keeps it).
        With offloads, ``vnet_hdr`` goes in front (zeros by default: nothing to offload)."""
        try:
            if self.offload:
                n = os.writev(self.fd, (vnet_hdr or _ZERO_VNET_HDR, frame)) - VNET_HDR_LEN
            else:
                n = os.write(self.fd, frame)
        except BlockingIOError:
            return False
        except OSError as exc:
            # EIO while the kernel side is down, EINVAL for a frame it refuses: a lost frame, as on
            # a real cable, not a crash of the stack.
            if exc.errno in (errno.EIO, errno.EINVAL, errno.EMSGSIZE, errno.ENOBUFS):
                self.counters["tx.errors"] += 1
                return True
            raise
        self.counters["tx.frames"] += 1
        self.counters["tx.bytes"] += n
        return True

    # -- asyncio ---------------------------------------------------------------------------------
    def attach(self, loop: asyncio.AbstractEventLoop,
               on_frame: Callable[[bytes | memoryview, bool, int], None],
               on_batch_end: Callable[[], None] | None = None) -> None:
        """Call ``on_frame(frame, csum_valid, gso_size)`` from ``loop`` for each frame the
        kernel sends, then ``on_batch_end()`` once per batch (a good moment to flush the stack's
        output). ``csum_valid``: the device vouches for the frame's transport checksum, which
        then may be the kernel's partial sum (see :meth:`_rx_frame`); ``gso_size``: a GSO
        super-frame's segment size (the virtio_net_hdr's, what Linux's GRO reports as
        ``gso_size``: ``Host.receive_frame``), 0 for an ordinary frame (both always False/0
        without offloads)."""
        self._loop = loop
        self._on_frame = on_frame
        self._on_batch_end = on_batch_end
        loop.add_reader(self.fd, self._readable)

    def detach(self) -> None:
        """Stop reading; the frames ``send`` still holds for this loop iteration's merge leave
        first (a stack that stops right after its last ACK or FIN still sends it)."""
        if self._batch:
            self._flush_batch()
        loop = self._loop
        if loop is not None and self.fd >= 0 and not loop.is_closed():
            loop.remove_reader(self.fd)
            loop.remove_writer(self.fd)
        self._loop = None

    def _readable(self) -> None:
        on_frame = self._on_frame
        assert on_frame is not None
        if not self.offload:
            for plain in self.read_batch(self.batch_limit):
                on_frame(plain, False, 0)
        else:
            c = self.counters
            read = c["rx.frames"]
            delivered = 0
            # each frame goes to the stack as soon as it is read (a 64 KiB one is still in the
            # cache), a pure ACK once the next frame shows whether it is superseded
            frames = self._reads()
            for frame, valid, gso_size in filter_acks(frames, self.acks_known) \
                    if self.ack_filter else frames:
                on_frame(frame, valid, gso_size)
                delivered += 1
            c["rx.acks_filtered"] += c["rx.frames"] - read - delivered
        if self._on_batch_end is not None:
            self._on_batch_end()

    def _reads(self) -> Iterator[tuple[bytes | memoryview, bool, int]]:
        """Up to ``batch_limit`` reads with offloads, until EAGAIN: (frame, csum_valid,
        gso_size) of each (:meth:`_rx_frame`; a super-frame's segment size, virtio_net_hdr
        bytes 4-5, little-endian, when its gso_type is set)."""
        c = self.counters
        fd = self.fd
        for _ in range(self.batch_limit):
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                return
            frame, valid = self._rx_frame(data)
            c["rx.frames"] += 1
            c["rx.bytes"] += len(frame)
            yield frame, valid, data[4] | data[5] << 8 if len(data) >= VNET_HDR_LEN and data[1] \
                else 0

    def send(self, frame: bytes | bytearray, gso_size: int = 0) -> None:
        """Write ``frame``, or queue it until the device is writable again (from the loop).
        With ``tx_merge`` and a loop, frames wait until the end of this loop iteration so that
        back-to-back TCP segments can leave as one GSO super-frame. ``gso_size`` (offloads on,
        at most ``gso_max`` bytes of payload): ``frame`` is a TSO packet already (one IPv4 and
        TCP header, the TCP checksum field the pseudo-header's partial sum), which the kernel
        cuts into segments of ``gso_size`` bytes."""
        if self.tx_merge and self._loop is not None:
            if not self._batch:
                self._loop.call_soon(self._flush_batch)
            if gso_size:
                self._batch_gso[len(self._batch)] = gso_size
            self._batch.append(frame)
            return
        if gso_size:
            self.counters["tx.tso_frames"] += 1
            self._send_one(frame, _tso_header(frame, gso_size))
        else:
            self._send_one(frame)

    def _flush_batch(self) -> None:
        batch, self._batch = self._batch, []
        tso, self._batch_gso = self._batch_gso, {}
        start = 0
        for i, gso_size in tso.items():  # in order: the runs between TSO packets are merged
            self._send_merged(batch[start:i])
            frame = batch[i]
            self.counters["tx.gso_frames"] += 1
            self.counters["tx.tso_frames"] += 1  # of them the stack's own TSO packets
            self.counters["tx.gso_segments"] += -(-(len(frame) - _tso_hdr_len(frame)) // gso_size)
            self._send_one(frame, _tso_header(frame, gso_size))
            start = i + 1
        self._send_merged(batch[start:] if start else batch)

    def _send_merged(self, batch: list[bytes | bytearray]) -> None:
        for frame, hdr in merge_tcp_segments(batch):
            if hdr is not None:
                self.counters["tx.gso_frames"] += 1
                self.counters["tx.gso_segments"] += hdr[1]
                self._send_one(frame, hdr[0])
            else:
                self._send_one(frame)

    def _send_one(self, frame: bytes | bytearray, vnet_hdr: bytes | None = None) -> None:
        if self._txq:
            self._enqueue(frame, vnet_hdr)
            return
        if not self.write_frame(frame, vnet_hdr):
            self._enqueue(frame, vnet_hdr)
            if self._loop is not None:
                self._loop.add_writer(self.fd, self._writable)

    def _enqueue(self, frame: bytes | bytearray, vnet_hdr: bytes | None = None) -> None:
        if len(self._txq) >= MAX_QUEUED_FRAMES:
            self.counters["tx.dropped"] += 1
            return
        self.counters["tx.queued"] += 1
        self._txq.append((bytes(frame), vnet_hdr))

    def _writable(self) -> None:
        q = self._txq
        while q:
            if not self.write_frame(*q[0]):
                return
            q.popleft()
        if self._loop is not None:
            self._loop.remove_writer(self.fd)


def _pure_ack(f: bytes | memoryview) -> tuple[bytes, int, tuple[tuple[int, int], ...]] | None:
    """(flow, ACK number, SACK blocks) of a pure ACK: Ethernet + IPv4 (no options, not a
    fragment) + TCP with only ACK set, no payload, and no options but NOP, EOL, timestamps and
    SACK; None otherwise, and for an ACK carrying a D-SACK (RFC 2883 §4: its first block lies
    below the ACK or inside the second), which reports a duplicate no later ACK repeats."""
    if len(f) < 54 or f[12] != 0x08 or f[13] != 0 or f[14] != 0x45 or f[23] != 6 \
            or f[20] & 0x3F or f[21] or f[47] != 0x10:
        return None
    thl = (f[46] >> 4) * 4
    end = 34 + thl
    if ((f[16] << 8) | f[17]) != 20 + thl or len(f) < end:
        return None
    ack = int.from_bytes(f[42:46], "big")
    if thl == 20:
        return bytes(f[26:38]), ack, ()
    if thl == 32 and f[54] == 1 and f[55] == 1 and f[56] == 8:  # NOP, NOP, TS: the common one
        return bytes(f[26:38]), ack, ()
    blocks: list[tuple[int, int]] = []
    i = 54
    words = _SACK_WORDS.get((thl - 36) >> 3) if thl & 7 == 4 else None
    if words is not None and f[54] == 1 and f[55] == 1 and f[56] == 8 and f[57] == 10 \
            and f[66] == 1 and f[67] == 1 and f[68] == 5 and f[69] == thl - 34:
        # NOP, NOP, TS, NOP, NOP, SACK (Linux's, under loss): the blocks at once
        w = words.unpack_from(f, 70)
        blocks = list(zip(w[::2], w[1::2], strict=True))
        i = end
    while i < end:
        kind = f[i]
        if kind == 1:  # NOP
            i += 1
            continue
        if kind == 0:  # EOL
            break
        if i + 1 >= end or f[i + 1] < 2 or i + f[i + 1] > end:
            return None  # malformed: the stack judges it
        size = f[i + 1]
        if kind == 5 and (size - 2) % 8 == 0:  # SACK
            for k in range(i + 2, i + size, 8):
                blocks.append((int.from_bytes(f[k:k + 4], "big"),
                               int.from_bytes(f[k + 4:k + 8], "big")))
        elif kind != 8 or size != 10:  # anything but timestamps: not filtered
            return None
        i += size
    if blocks:
        s0, e0 = blocks[0]
        if _seq_le(e0, ack) or (len(blocks) > 1 and _within(s0, e0, *blocks[1])):
            return None  # a D-SACK
    return bytes(f[26:38]), ack, tuple(blocks)


def _seq_le(a: int, b: int) -> bool:
    """a <= b in sequence space (RFC 9293 §3.4)."""
    return (b - a) & 0xFFFFFFFF < 1 << 31


def _within(start: int, end: int, lo: int, hi: int) -> bool:
    """[start, end) lies inside [lo, hi) in sequence space."""
    return _seq_le(lo, start) and _seq_le(end, hi)


def _supersedes(new: tuple[bytes, int, tuple[tuple[int, int], ...]],
                old: tuple[bytes, int, tuple[tuple[int, int], ...]],
                known: tuple[bytes, int, tuple[tuple[int, int], ...]] | None = None) -> bool:
    """Does pure ACK ``new`` of the same flow tell everything ``old`` told, and more (sch_cake's
    ack-filter rule): its ACK number is no lower, each SACK block of ``old`` lies below it or
    inside one of its blocks, or inside one of ``known``'s (an ACK of the flow the stack got
    before ``old``: its ACK number no higher), and it acknowledges more (a higher ACK, or a
    block ``old`` does not cover). A duplicate ACK or a window update with the same blocks is
    not superseded."""
    ack, blocks = new[1], new[2]
    old_ack, old_blocks = old[1], old[2]
    if not _seq_le(old_ack, ack):
        return False
    if blocks and old_blocks and blocks[1:] == old_blocks[1:] \
            and _within(old_blocks[0][0], old_blocks[0][1], *blocks[0]):
        pass  # the receiver grew its first block and repeats the others (the usual case)
    else:
        told = known[2] if known is not None and _seq_le(known[1], old_ack) else ()
        for s, e in old_blocks:
            if not _seq_le(e, ack) and not any(_within(s, e, lo, hi) for lo, hi in blocks) \
                    and not any(_within(s, e, lo, hi) for lo, hi in told):
                return False
    if ack != old_ack:
        return True
    return any(not any(_within(lo, hi, s, e) for s, e in old_blocks) for lo, hi in blocks)


KNOWN_FLOWS = 64  # flows whose last ACK the filter remembers (then it starts again)


def filter_acks(frames: Iterable[tuple[bytes | memoryview, bool, int]],
                known: dict[bytes, tuple[bytes, int, tuple[tuple[int, int], ...]]] | None = None
                ) -> Iterator[tuple[bytes | memoryview, bool, int]]:
    """``frames`` (frame, csum_valid, gso_size) without each pure ACK that the next frame, a
    pure ACK of the same flow with valid checksums, supersedes (RFC 3449 §5.2.2 ACK filtering:
    the module docstring, :func:`_supersedes`); a pure ACK is held until the next frame. A pure
    ACK the device did not vouch for has its checksums checked here (and goes on with
    ``csum_valid`` when they are good). ``known``: per flow, the last pure ACK that went on,
    kept up to date here (from one batch to the next: the device's), whose blocks the stack
    has already."""
    if known is None:
        known = {}
    held: tuple[bytes | memoryview, bool, int] | None = None
    held_key: tuple[bytes, int, tuple[tuple[int, int], ...]] = (b"", 0, ())
    for item in frames:
        f = item[0]
        key = _pure_ack(f)
        if key is not None and not item[1]:  # nobody vouched: its checksums are checked here
            if ipv4_tcp_ok(f, 14, (f[16] << 8) | f[17]) == (True, True):
                item = (f, True, item[2])  # (the stack need not check them again)
            else:
                key = None  # a bad one: the stack drops it, the one before stays
        if held is not None:
            if key is None or key[0] != held_key[0] \
                    or not _supersedes(key, held_key, known.get(held_key[0])):
                _went_on(known, held_key)
                yield held  # else superseded: it says nothing the next one does not
            held = None
        if key is None:
            yield item
        else:
            held, held_key = item, key
    if held is not None:
        _went_on(known, held_key)
        yield held


def _went_on(known: dict[bytes, tuple[bytes, int, tuple[tuple[int, int], ...]]],
             key: tuple[bytes, int, tuple[tuple[int, int], ...]]) -> None:
    """Remember ``key`` as its flow's last pure ACK that reached the stack (bounded)."""
    if len(known) >= KNOWN_FLOWS and key[0] not in known:
        known.clear()
    known[key[0]] = key


def _tso_hdr_len(frame: bytes | bytearray) -> int:
    """The Ethernet + IPv4 + TCP header length of an IPv4 TCP frame."""
    return 14 + (frame[14] & 15) * 4 + (frame[26 + (frame[14] & 15) * 4] >> 4) * 4


def _tso_header(frame: bytes | bytearray, gso_size: int) -> bytes:
    """The virtio_net_hdr of an IPv4 TSO packet: cut at ``gso_size``, the checksum partial
    from the TCP header on (NEEDS_CSUM, csum_start at the TCP header, its field at 16)."""
    return VNET_HDR.pack(VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, _tso_hdr_len(frame), gso_size,
                         14 + (frame[14] & 15) * 4, 16)


def _tcp4_data(f: bytes | bytearray) -> tuple[int, int] | None:
    """(TCP header length, payload length) of an Ethernet + IPv4 (no options, not a fragment)
    + TCP frame carrying data with only ACK (and PSH/FIN) set; None for anything else."""
    if len(f) < 54 or f[12] != 0x08 or f[13] != 0 or f[14] != 0x45 or f[23] != 6 \
            or f[20] & 0x3F or f[21] or f[47] & ~0x19 or not f[47] & 0x10:
        return None
    thl = (f[46] >> 4) * 4
    plen = ((f[16] << 8) | f[17]) - 20 - thl
    if thl < 20 or plen <= 0 or len(f) < 34 + thl + plen:
        return None
    return thl, plen


def merge_tcp_segments(frames: Sequence[bytes | bytearray]) \
        -> list[tuple[bytes | bytearray, tuple[bytes, int] | None]]:
    """Group runs of back-to-back IPv4 TCP data segments of one flow into GSO super-frames.

    A run is frames with the same Ethernet, IPv4 (no options, not fragmented, same TOS/TTL) and
    TCP header except the sequence number (contiguous) and the flags (ACK on all but the last,
    which may add PSH/FIN), the same options bytes, every payload but the last of the first's
    size. Returns ``(frame, None)`` for a frame left alone and ``(super_frame, (vnet_hdr,
    segments))`` for a run: one header, the payloads end to end, the IPv4 total length and
    header checksum of the whole, the TCP checksum field holding the pseudo-header sum with
    ``NEEDS_CSUM`` (the kernel completes it per segment when it splits at ``gso_size``)."""
    out: list[tuple[bytes | bytearray, tuple[bytes, int] | None]] = []
    n = len(frames)
    i = 0
    while i < n:
        f = frames[i]
        info = _tcp4_data(f)
        if info is None or f[47] != 0x10:  # PSH/FIN end a run: nothing to merge after them
            out.append((f, None))
            i += 1
            continue
        thl, seg = info
        hl = 34 + thl
        same = (f[0:16], f[22:24], f[26:38], f[42:47], f[48:50], f[52:hl])
        nxt = (int.from_bytes(f[38:42], "big") + seg) & 0xFFFFFFFF
        total = seg
        last_flags = 0x10
        j = i + 1
        while j < n and last_flags == 0x10:
            g = frames[j]
            ginfo = _tcp4_data(g)
            if ginfo is None or ginfo[0] != thl or ginfo[1] > seg \
                    or total + ginfo[1] > GSO_MAX \
                    or int.from_bytes(g[38:42], "big") != nxt \
                    or (g[0:16], g[22:24], g[26:38], g[42:47], g[48:50], g[52:hl]) != same:
                break
            gplen = ginfo[1]
            total += gplen
            nxt = (nxt + gplen) & 0xFFFFFFFF
            last_flags = g[47]
            j += 1
            if gplen < seg:
                break  # a short segment ends a run
        if j - i < 2:
            out.append((f, None))
            i += 1
            continue
        sup = bytearray(f[:hl])
        for k in range(i, j):
            g = frames[k]
            sup += memoryview(g)[hl:14 + ((g[16] << 8) | g[17])]
        sup[16:18] = (20 + thl + total).to_bytes(2, "big")
        ip_header = sup[14:34]
        ip_header[10:12] = b"\x00\x00"
        ipv4_header_store(ip_header)
        sup[24:26] = ip_header[10:12]
        sup[47] = last_flags
        # CHECKSUM_PARTIAL: the folded, uncomplemented pseudo-header sum of the whole segment
        ps = fold(pseudo_header(bytes(sup[26:30]), bytes(sup[30:34]), PROTO_TCP, thl + total))
        sup[50:52] = ps.to_bytes(2, "big")
        vh = VNET_HDR.pack(VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, hl, seg, 34, 16)
        out.append((bytes(sup), (vh, j - i)))
        i = j
    return out


def _ioctl_ifreq(name: str, request: int, ifr: bytes | None = None) -> bytes:
    if ifr is None:
        ifr = struct.pack("16s24x", name.encode())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            return fcntl.ioctl(s.fileno(), request, ifr)
        except OSError as exc:
            raise TapError(exc.errno, f"ioctl on {name!r} failed: {exc.strerror}") from None


def _set_up(name: str) -> None:
    flags = _IFREQ_FLAGS.unpack(_ioctl_ifreq(name, SIOCGIFFLAGS))[1]
    _ioctl_ifreq(name, SIOCSIFFLAGS, _IFREQ_FLAGS.pack(name.encode(), flags | IFF_UP))


def _set_mtu(name: str, mtu: int) -> None:
    _ioctl_ifreq(name, SIOCSIFMTU, _IFREQ_INT.pack(name.encode(), mtu))
