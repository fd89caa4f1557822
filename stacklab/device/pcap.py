"""Classic pcap files (the libpcap format Wireshark, tcpdump and scapy read): writer and reader.

Time comes from the caller: ``write(frame, t)`` takes seconds as a float (the simulator passes its
virtual clock) or ``write_ns(frame, ns)`` an integer of nanoseconds. Files are written with
nanosecond resolution by default (magic ``0xa1b23c4d``) or microseconds (``0xa1b2c3d4``).
Link types: Ethernet (1) and raw IP (101, for TUN-like links).

The reader accepts both resolutions and both byte orders.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from stacklab.errors import StacklabError

__all__ = ["LINKTYPE_ETHERNET", "LINKTYPE_RAW", "PcapError", "PcapReader", "PcapRecord",
           "PcapWriter", "read_pcap"]

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101

MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D

_GLOBAL = struct.Struct("<IHHiIII")  # magic, major, minor, thiszone, sigfigs, snaplen, linktype
_RECORD = struct.Struct("<IIII")  # ts_sec, ts_frac, incl_len, orig_len


class PcapError(StacklabError, ValueError):
    """A file that is not a classic pcap file, or one cut short."""


@dataclass(slots=True)
class PcapRecord:
    time: float  # seconds (float; use ts_sec/ts_frac for exact values)
    data: bytes
    orig_len: int
    ts_sec: int
    ts_frac: int  # nanoseconds or microseconds, as the file says

    @property
    def time_ns(self) -> int:
        return self.ts_sec * 1_000_000_000 + self.ts_frac


class PcapWriter:
    """Writes records to ``dest`` (a path or a binary file object opened for writing)."""

    def __init__(self, dest: str | BinaryIO, linktype: int = LINKTYPE_ETHERNET,
                 snaplen: int = 262144, nanosecond: bool = True) -> None:
        if isinstance(dest, str | bytes) or hasattr(dest, "__fspath__"):
            self._fp: BinaryIO = open(dest, "wb")  # noqa: SIM115 - closed in close()
            self._own = True
        else:
            self._fp = dest
            self._own = False
        self.linktype = linktype
        self.snaplen = snaplen
        self.nanosecond = nanosecond
        self.count = 0
        magic = MAGIC_NSEC if nanosecond else MAGIC_USEC
        self._fp.write(_GLOBAL.pack(magic, 2, 4, 0, 0, snaplen, linktype))

    def write(self, frame: bytes | bytearray | memoryview, t: float) -> None:
        """One record stamped ``t`` seconds (float, e.g. the virtual clock)."""
        self.write_ns(frame, round(t * 1e9))

    def write_ns(self, frame: bytes | bytearray | memoryview, ns: int) -> None:
        if ns < 0:
            raise ValueError(f"pcap timestamps cannot be negative: {ns} ns")
        sec, frac = divmod(ns, 1_000_000_000)
        if not self.nanosecond:
            frac //= 1000
        orig = len(frame)
        incl = min(orig, self.snaplen)
        fp = self._fp
        fp.write(_RECORD.pack(sec, frac, incl, orig))
        fp.write(frame if incl == orig else bytes(frame[:incl]))
        self.count += 1

    def flush(self) -> None:
        self._fp.flush()

    def close(self) -> None:
        if self._own:
            self._fp.close()
        else:
            self._fp.flush()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PcapReader:
    """Iterates the records of a classic pcap file (path or binary file object)."""

    def __init__(self, src: str | BinaryIO) -> None:
        if isinstance(src, str | bytes) or hasattr(src, "__fspath__"):
            self._fp: BinaryIO = open(src, "rb")  # noqa: SIM115 - closed in close()
            self._own = True
        else:
            self._fp = src
            self._own = False
        head = self._fp.read(_GLOBAL.size)
        if len(head) < _GLOBAL.size:
            raise PcapError(f"not a pcap file: {len(head)} bytes, the header alone is 24")
        magic_le = struct.unpack_from("<I", head)[0]
        magic_be = struct.unpack_from(">I", head)[0]
        if magic_le in (MAGIC_USEC, MAGIC_NSEC):
            endian, magic = "<", magic_le
        elif magic_be in (MAGIC_USEC, MAGIC_NSEC):
            endian, magic = ">", magic_be
        elif head[:4] == b"\x0a\x0d\x0d\x0a":
            raise PcapError("this is a pcapng file; only classic pcap is read here")
        else:
            raise PcapError(f"not a pcap file: magic {head[:4].hex()}")
        self.nanosecond = magic == MAGIC_NSEC
        _, self.version_major, self.version_minor, _, _, self.snaplen, self.linktype = (
            struct.unpack(endian + "IHHiIII", head))
        self._record = struct.Struct(endian + "IIII")

    def __iter__(self) -> Iterator[PcapRecord]:
        rec = self._record
        fp = self._fp
        scale = 1e-9 if self.nanosecond else 1e-6
        while True:
            head = fp.read(rec.size)
            if not head:
                return
            if len(head) < rec.size:
                raise PcapError("pcap file cut short inside a record header")
            sec, frac, incl, orig = rec.unpack(head)
            data = fp.read(incl)
            if len(data) < incl:
                raise PcapError(f"pcap file cut short: record wants {incl} bytes, {len(data)} left")
            yield PcapRecord(sec + frac * scale, data, orig, sec,
                             frac if self.nanosecond else frac * 1000)

    def close(self) -> None:
        if self._own:
            self._fp.close()

    def __enter__(self) -> PcapReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_pcap(path: str) -> tuple[int, list[PcapRecord]]:
    """``(linktype, records)`` of a whole file."""
    with PcapReader(path) as reader:
        return reader.linktype, list(reader)
