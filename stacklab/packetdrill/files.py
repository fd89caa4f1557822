"""Pipes and regular files for the packetdrill runner: in memory, never the real file system.

``pipe()`` makes a :class:`Pipe` (Linux's default capacity, 16 pages) with a read end and a
write end; ``open()`` opens a :class:`RegFile` of the runner's own :class:`FileSystem`, a
dictionary of paths, which the script's shell commands fill the way the upstream scripts do it
(``dd if=/dev/zero of=PATH bs=N count=M`` writes N*M zero bytes, ``rm -f PATH`` removes it;
packetdrill's payloads are zeroes). ``splice()`` and ``sendfile()`` move bytes between these
and the sockets (syscalls.py).
"""

from __future__ import annotations

import errno
import shlex
from collections.abc import Callable

from .sockets import SockError

PIPE_BUF_SIZE = 16 * 4096  # pipe(7): 16 pages
O_ACCMODE, O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND = 3, 1, 2, 0o100, 0o1000, 0o2000
POLLIN, POLLOUT, POLLERR, POLLHUP, POLLRDNORM, POLLWRNORM = 0x1, 0x4, 0x8, 0x10, 0x40, 0x100
WAKE_IN, WAKE_OUT = 0x1 | 0x40, 0x4 | 0x100


class Pipe:
    """The buffer both ends share."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.readers = 1
        self.writers = 1
        self.read_end = PipeEnd(self, False)
        self.write_end = PipeEnd(self, True)


class PipeEnd:
    def __init__(self, pipe: Pipe, writing: bool) -> None:
        self.pipe = pipe
        self.writing = writing
        self.waiters: list[Callable[[int], None]] = []

    def _other(self) -> PipeEnd:
        p = self.pipe
        return p.read_end if self.writing else p.write_end

    def free(self) -> int:
        return PIPE_BUF_SIZE - len(self.pipe.data)

    def write(self, data: bytes) -> int | None:
        """Bytes taken; None when full (a blocking writer waits); EPIPE with no reader."""
        if not self.writing:
            raise SockError(errno.EBADF)
        p = self.pipe
        if not p.readers:
            raise SockError(errno.EPIPE)
        if data and not self.free():
            return None
        n = min(len(data), self.free())
        p.data += data[:n]
        if n:
            for w in list(p.read_end.waiters):
                w(WAKE_IN)
        return n

    def read(self, n: int) -> bytes | None:
        """Up to ``n`` bytes; b"" once the writers are gone; None while it is empty."""
        if self.writing:
            raise SockError(errno.EBADF)
        p = self.pipe
        if not p.data:
            return b"" if not p.writers else None
        out = bytes(p.data[:n])
        del p.data[:n]
        for w in list(p.write_end.waiters):
            w(WAKE_OUT)
        return out

    def poll(self) -> int:
        p = self.pipe
        if self.writing:
            return (POLLOUT | POLLWRNORM if self.free() else 0) | (0 if p.readers else POLLERR)
        return (POLLIN | POLLRDNORM if p.data else 0) | (0 if p.writers else POLLHUP)

    def close(self) -> None:
        p = self.pipe
        if self.writing:
            p.writers -= 1
        else:
            p.readers -= 1
        for w in list(self._other().waiters):
            w(0)


class RegFile:
    """An open regular file: its bytes (shared with the file system) and the file offset."""

    def __init__(self, data: bytearray, flags: int) -> None:
        self.data = data
        self.flags = flags
        self.pos = len(data) if flags & O_APPEND else 0
        self.waiters: list[Callable[[int], None]] = []

    def read_at(self, pos: int, n: int) -> bytes:
        if self.flags & O_ACCMODE == O_WRONLY:
            raise SockError(errno.EBADF)
        return bytes(self.data[pos:pos + n])

    def read(self, n: int) -> bytes:
        out = self.read_at(self.pos, n)
        self.pos += len(out)
        return out

    def poll(self) -> int:
        return POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM  # a regular file is always ready

    def close(self) -> None:
        pass


class FileSystem:
    """The runner's files by path (nothing is read from or written to the host's disk)."""

    def __init__(self) -> None:
        self.files: dict[str, bytearray] = {}

    def open(self, path: str, flags: int) -> RegFile:
        data = self.files.get(path)
        if data is None:
            if not flags & O_CREAT:
                raise SockError(errno.ENOENT)
            data = self.files[path] = bytearray()
        elif flags & O_TRUNC and flags & O_ACCMODE:
            del data[:]
        return RegFile(data, flags)

    def command(self, line: str) -> bool:
        """Run a shell command that makes or removes a file (``dd`` from /dev/zero, ``rm``);
        False for any other command."""
        try:
            words = shlex.split(line)
        except ValueError:
            return False
        if not words:
            return False
        prog = words[0].rsplit("/", 1)[-1]
        if prog == "rm":
            for w in words[1:]:
                if not w.startswith("-"):
                    self.files.pop(w, None)
            return True
        if prog == "dd":
            args = dict(w.split("=", 1) for w in words[1:] if "=" in w)
            if args.get("if") != "/dev/zero" or "of" not in args:
                return False
            try:
                size = int(args.get("bs", "512")) * int(args.get("count", "0"))
            except ValueError:
                return False
            self.files[args["of"]] = bytearray(size)
            return True
        return False
