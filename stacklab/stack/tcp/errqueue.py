"""A socket's error queue (Linux ``sk_error_queue``): what ``recvmsg(MSG_ERRQUEUE)`` reads,
oldest first, never blocking. Two producers share it, interleaved as things happened:
MSG_ZEROCOPY completions (zerocopy.py) and SO_TIMESTAMPING transmit timestamps (tstamp.py).

Each entry is a ``struct sock_extended_err`` (linux/errqueue.h), which the reader gets as an
IP_RECVERR / IPV6_RECVERR control message, plus what comes along with it: the software
timestamp of an SCM_TIMESTAMPING control message, and whether the entry carries a copy of
the packet (recvmsg's payload; a zero-length buffer then reads MSG_TRUNC).
"""

from __future__ import annotations

from collections import deque


class ExtendedErr:
    __slots__ = ("ee_errno", "ee_origin", "ee_type", "ee_code", "ee_info", "ee_data", "tstamp",
                 "has_data")

    def __init__(self, ee_errno: int, ee_origin: int, ee_code: int, ee_info: int, ee_data: int,
                 tstamp: float | None = None, has_data: bool = False) -> None:
        self.ee_errno = ee_errno
        self.ee_origin = ee_origin
        self.ee_type = 0
        self.ee_code = ee_code
        self.ee_info = ee_info
        self.ee_data = ee_data
        self.tstamp = tstamp  # SCM_TIMESTAMPING's ts[0] (seconds); None: no such cmsg
        self.has_data = has_data  # a copy of the packet comes with it (no OPT_TSONLY)

    def fields(self) -> dict[str, int]:
        """The sock_extended_err fields by name (as packetdrill scripts write them)."""
        return {"ee_errno": self.ee_errno, "ee_origin": self.ee_origin, "ee_type": self.ee_type,
                "ee_code": self.ee_code, "ee_info": self.ee_info, "ee_data": self.ee_data}


class ErrQueue(deque[ExtendedErr]):
    """The entries, oldest first (``popleft`` reads one)."""

    def take(self) -> ExtendedErr | None:
        """recvmsg(MSG_ERRQUEUE): the oldest entry, or None (EAGAIN)."""
        return self.popleft() if self else None
