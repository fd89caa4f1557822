"""The FTP server's file systems: :class:`DiskFs` (a directory, confined to its root) and
:class:`VirtualFs` (deterministic bodies of any name, uploads kept in memory)."""

from __future__ import annotations

import os
import posixpath
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacklab.apps.common import iter_pattern
from stacklab.errors import StacklabError

from .channel import CHUNK


class FsError(StacklabError):
    """A file operation failed; the message goes into a 550 reply."""


def vjoin(cwd: str, arg: str) -> str:
    """The absolute virtual path for ``arg`` seen from ``cwd``; never above "/"."""
    path = posixpath.normpath(posixpath.join(cwd, arg))
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    return path


@dataclass
class Entry:
    name: str
    is_dir: bool
    size: int
    mtime: float


class DiskFs:
    """Files under ``root``; virtual paths are absolute ("/a/b") and map below root only."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise NotADirectoryError(str(self.root))

    def _real(self, vpath: str) -> Path:
        rel = vpath.lstrip("/")
        real = (self.root / rel).resolve() if rel else self.root
        if real != self.root and not real.is_relative_to(self.root):
            raise FsError("permission denied")
        return real

    def is_dir(self, vpath: str) -> bool:
        return self._real(vpath).is_dir()

    def size(self, vpath: str) -> int:
        real = self._real(vpath)
        if not real.is_file():
            raise FsError("not a plain file")
        return real.stat().st_size

    def listdir(self, vpath: str) -> list[Entry]:
        real = self._real(vpath)
        if real.is_file():
            st = real.stat()
            return [Entry(real.name, False, st.st_size, st.st_mtime)]
        if not real.is_dir():
            raise FsError("no such file or directory")
        out = []
        for child in sorted(real.iterdir(), key=lambda p: p.name):
            try:
                st = child.stat()
            except OSError:
                continue
            out.append(Entry(child.name, child.is_dir(), st.st_size, st.st_mtime))
        return out

    def read(self, vpath: str) -> tuple[int, Iterator[bytes]]:
        real = self._real(vpath)
        if not real.is_file():
            raise FsError("no such file")
        try:
            handle = real.open("rb")
        except OSError as exc:
            raise FsError(exc.strerror or "cannot open") from None

        def chunks() -> Iterator[bytes]:
            with handle:
                while chunk := handle.read(CHUNK):
                    yield chunk
        return real.stat().st_size, chunks()

    def open_write(self, vpath: str) -> Any:
        real = self._real(vpath)
        if real.is_dir() or not real.parent.is_dir():
            raise FsError("cannot create file there")
        try:
            return _DiskWriter(real)
        except OSError as exc:
            raise FsError(exc.strerror or "cannot create") from None

    def delete(self, vpath: str) -> None:
        real = self._real(vpath)
        if not real.is_file():
            raise FsError("no such file")
        real.unlink()

    def mkdir(self, vpath: str) -> None:
        real = self._real(vpath)
        try:
            real.mkdir()
        except OSError as exc:
            raise FsError(exc.strerror or "cannot create directory") from None

    def rmdir(self, vpath: str) -> None:
        real = self._real(vpath)
        if real == self.root:
            raise FsError("permission denied")
        try:
            real.rmdir()
        except OSError as exc:
            raise FsError(exc.strerror or "cannot remove directory") from None


class _DiskWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = path.open("wb")

    def write(self, data: bytes) -> None:
        self.handle.write(data)

    def commit(self) -> None:
        self.handle.close()

    def abort(self) -> None:
        self.handle.close()
        self.path.unlink(missing_ok=True)


VIRTUAL_NAME = "pattern.bin"
VIRTUAL_MTIME = 946684800.0  # 2000-01-01, fixed so listings are deterministic


class VirtualFs:
    """No disk: any file name reads as the deterministic body of ``size`` bytes; uploads and
    new directories live in memory (at most ``max_files`` files)."""

    def __init__(self, size: int, max_files: int = 100) -> None:
        self.body_size = size
        self.max_files = max_files
        self.files: dict[str, bytes] = {}
        self.dirs: set[str] = {"/"}

    def is_dir(self, vpath: str) -> bool:
        return vpath in self.dirs

    def size(self, vpath: str) -> int:
        if vpath in self.dirs:
            raise FsError("not a plain file")
        return len(self.files[vpath]) if vpath in self.files else self.body_size

    def listdir(self, vpath: str) -> list[Entry]:
        if vpath not in self.dirs:
            return [Entry(posixpath.basename(vpath), False, self.size(vpath), VIRTUAL_MTIME)]
        out = [Entry(VIRTUAL_NAME, False, self.body_size, VIRTUAL_MTIME)]
        for d in sorted(self.dirs):
            if d != "/" and posixpath.dirname(d) == vpath:
                out.append(Entry(posixpath.basename(d), True, 0, VIRTUAL_MTIME))
        for f, data in sorted(self.files.items()):
            if posixpath.dirname(f) == vpath and posixpath.basename(f) != VIRTUAL_NAME:
                out.append(Entry(posixpath.basename(f), False, len(data), VIRTUAL_MTIME))
        return out

    def read(self, vpath: str) -> tuple[int, Iterator[bytes]]:
        if vpath in self.dirs:
            raise FsError("is a directory")
        if vpath in self.files:
            data = self.files[vpath]
            return len(data), iter([data])
        return self.body_size, iter_pattern(self.body_size, CHUNK)

    def open_write(self, vpath: str) -> Any:
        if vpath in self.dirs or posixpath.dirname(vpath) not in self.dirs:
            raise FsError("cannot create file there")
        if vpath not in self.files and len(self.files) >= self.max_files:
            raise FsError("too many files")
        return _MemoryWriter(self, vpath)

    def delete(self, vpath: str) -> None:
        if vpath not in self.files:
            raise FsError("no such file")
        del self.files[vpath]

    def mkdir(self, vpath: str) -> None:
        if vpath in self.dirs or vpath in self.files or posixpath.dirname(vpath) not in self.dirs:
            raise FsError("cannot create directory")
        if len(self.dirs) > self.max_files:
            raise FsError("too many directories")
        self.dirs.add(vpath)

    def rmdir(self, vpath: str) -> None:
        if vpath == "/" or vpath not in self.dirs:
            raise FsError("no such directory")
        if any(posixpath.dirname(p) == vpath for p in (*self.dirs, *self.files)):
            raise FsError("directory not empty")
        self.dirs.discard(vpath)


class _MemoryWriter:
    def __init__(self, fs: VirtualFs, vpath: str) -> None:
        self.fs = fs
        self.vpath = vpath
        self.buf = bytearray()

    def write(self, data: bytes) -> None:
        self.buf += data

    def commit(self) -> None:
        self.fs.files[self.vpath] = bytes(self.buf)

    def abort(self) -> None:
        self.buf = bytearray()


def list_line(entry: Entry) -> str:
    mode = "drwxr-xr-x" if entry.is_dir else "-rw-r--r--"
    stamp = time.strftime("%b %d  %Y", time.gmtime(entry.mtime))
    return f"{mode} 1 ftp ftp {entry.size:>12} {stamp} {entry.name}"

