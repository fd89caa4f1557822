"""The runner's in-memory pipes and files (stacklab/packetdrill/files.py)."""

from __future__ import annotations

import errno

import pytest

from stacklab.packetdrill.files import O_CREAT, O_WRONLY, PIPE_BUF_SIZE, FileSystem, Pipe
from stacklab.packetdrill.sockets import SockError


def test_dd_and_rm_make_and_remove_files_in_memory_only() -> None:
    fs = FileSystem()
    assert fs.command("/bin/dd bs=3 count=4 if=/dev/zero of=/tmp/f status=none")
    assert fs.open("/tmp/f", 0).read(100) == bytes(12)
    assert fs.command("/bin/rm -f /tmp/f")
    with pytest.raises(SockError) as e:
        fs.open("/tmp/f", 0)
    assert e.value.errno == errno.ENOENT
    assert not fs.command("dd if=/etc/passwd of=/tmp/g")  # only zeroes are modelled
    assert not fs.command("ls /tmp")
    assert fs.open("/tmp/new", O_WRONLY | O_CREAT).data == bytearray()


def test_a_pipe_fills_to_its_capacity_and_reports_its_ends_closing() -> None:
    p = Pipe()
    assert p.write_end.write(bytes(PIPE_BUF_SIZE + 10)) == PIPE_BUF_SIZE
    assert p.write_end.write(b"x") is None  # full: a blocking writer waits
    assert p.read_end.read(10) == bytes(10)
    p.write_end.close()
    assert p.read_end.read(PIPE_BUF_SIZE) == bytes(PIPE_BUF_SIZE - 10)
    assert p.read_end.read(1) == b""  # no writer left: end of file
    q = Pipe()
    q.read_end.close()
    with pytest.raises(SockError) as e:
        q.write_end.write(b"x")
    assert e.value.errno == errno.EPIPE
