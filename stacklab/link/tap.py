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

TODO(benchmarks, issue 11): ``IFF_VNET_HDR`` + ``TUNSETOFFLOAD`` (TSO/GSO/checksum offload) would
let the kernel hand over 64 KiB super-frames; every frame would then carry a ``virtio_net_hdr``
and the stack would need to segment/checksum. Off by default: plain Ethernet frames, <= MTU + 14.
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
from collections.abc import Callable

TUN_PATH = "/dev/net/tun"

# <linux/if_tun.h>
TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
IFF_TUN = 0x0001
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000  # see the TODO above; not used yet
# <linux/sockios.h>, <linux/if.h>
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCGIFMTU = 0x8921
SIOCSIFMTU = 0x8922
SIOCGIFHWADDR = 0x8927
IFF_UP = 0x1
CLONE_NEWNET = 0x40000000

IFNAMSIZ = 16
_IFREQ_FLAGS = struct.Struct("16sH22x")
_IFREQ_INT = struct.Struct("16si20x")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,15}$")

READ_SIZE = 65536 + 64  # bigger than any frame the device can hand over without offloads
MAX_QUEUED_FRAMES = 4096  # beyond this, frames are dropped (a real NIC drops on a full ring too)


class TapError(OSError):
    """Opening or using a TAP device failed; the message says why and what to do."""

    def __str__(self) -> str:
        return str(self.strerror)


def check_ifname(name: str) -> None:
    """Raise TapError unless ``name`` is a valid Linux interface name."""
    if not _NAME_RE.match(name) or name in (".", ".."):
        raise TapError(errno.EINVAL,
                       f"bad device name {name!r}: 1 to {IFNAMSIZ - 1} characters "
                       "from letters, digits, '_', '-', '.'")


def _open_tun(name: str) -> int:
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
    ifr = _IFREQ_FLAGS.pack(name.encode(), IFF_TAP | IFF_NO_PI)
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
    return fd


def _in_netns(netns: str, fn: Callable[[], object]) -> object:
    """Run ``fn`` in a helper thread that entered network namespace ``netns`` (by name or path)."""
    import ctypes

    path = netns if "/" in netns else f"/run/netns/{netns}"
    result: list[object] = []
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

    def __init__(self, fd: int, name: str, netns: str | None = None) -> None:
        self.fd = fd
        self.name = name
        self.netns = netns
        self.counters = {"rx.frames": 0, "rx.bytes": 0, "tx.frames": 0, "tx.bytes": 0,
                         "tx.queued": 0, "tx.dropped": 0, "tx.errors": 0}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._txq: deque[bytes] = deque()
        self._on_frame: Callable[[bytes], None] | None = None
        self._on_batch_end: Callable[[], None] | None = None
        self.batch_limit = 256  # frames per reader callback before yielding to the loop

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, name: str, *, netns: str | None = None, up: bool = False,
             mtu: int | None = None) -> TapDevice:
        """Create (or attach to) TAP device ``name``; optionally in namespace ``netns``, set
        its MTU and bring it up. Raises :class:`TapError` with a message naming the problem."""
        check_ifname(name)

        def do_open() -> int:
            fd = _open_tun(name)
            try:
                if mtu is not None:
                    _set_mtu(name, mtu)
                if up:
                    _set_up(name)
            except BaseException:
                os.close(fd)
                raise
            return fd

        fd = do_open() if netns is None else _in_netns(netns, do_open)
        assert isinstance(fd, int)
        return cls(fd, name, netns)

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
        return self._ns_call(lambda: _ioctl_ifreq(self.name, SIOCGIFHWADDR)[18:24])  # type: ignore[return-value]

    def kernel_mtu(self) -> int:
        return self._ns_call(lambda: _IFREQ_INT.unpack(  # type: ignore[return-value]
            _ioctl_ifreq(self.name, SIOCGIFMTU))[1])

    def set_up(self) -> None:
        self._ns_call(lambda: _set_up(self.name))

    def _ns_call(self, fn: Callable[[], object]) -> object:
        return fn() if self.netns is None else _in_netns(self.netns, fn)

    # -- plain non-blocking I/O ----------------------------------------------------------------
    def read_frame(self) -> bytes | None:
        """One frame, or None when none is waiting (EAGAIN)."""
        try:
            frame = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return None
        self.counters["rx.frames"] += 1
        self.counters["rx.bytes"] += len(frame)
        return frame

    def read_batch(self, limit: int = 256) -> list[bytes]:
        """Up to ``limit`` frames, stopping at EAGAIN."""
        out: list[bytes] = []
        while len(out) < limit:
            frame = self.read_frame()
            if frame is None:
                break
            out.append(frame)
        return out

    def write_frame(self, frame: bytes) -> bool:
        """Write one frame now. False when the kernel would block (the caller keeps it)."""
        try:
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
    def attach(self, loop: asyncio.AbstractEventLoop, on_frame: Callable[[bytes], None],
               on_batch_end: Callable[[], None] | None = None) -> None:
        """Call ``on_frame(frame)`` from ``loop`` for each frame the kernel sends, then
        ``on_batch_end()`` once per batch (a good moment to flush the stack's output)."""
        self._loop = loop
        self._on_frame = on_frame
        self._on_batch_end = on_batch_end
        loop.add_reader(self.fd, self._readable)

    def detach(self) -> None:
        loop = self._loop
        if loop is not None and self.fd >= 0 and not loop.is_closed():
            loop.remove_reader(self.fd)
            loop.remove_writer(self.fd)
        self._loop = None

    def _readable(self) -> None:
        on_frame = self._on_frame
        assert on_frame is not None
        for frame in self.read_batch(self.batch_limit):
            on_frame(frame)
        if self._on_batch_end is not None:
            self._on_batch_end()

    def send(self, frame: bytes) -> None:
        """Write ``frame``, or queue it until the device is writable again (from the loop)."""
        if self._txq:
            self._enqueue(frame)
            return
        if not self.write_frame(frame):
            self._enqueue(frame)
            if self._loop is not None:
                self._loop.add_writer(self.fd, self._writable)

    def _enqueue(self, frame: bytes) -> None:
        if len(self._txq) >= MAX_QUEUED_FRAMES:
            self.counters["tx.dropped"] += 1
            return
        self.counters["tx.queued"] += 1
        self._txq.append(bytes(frame))

    def _writable(self) -> None:
        q = self._txq
        while q:
            if not self.write_frame(q[0]):
                return
            q.popleft()
        if self._loop is not None:
            self._loop.remove_writer(self.fd)


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
