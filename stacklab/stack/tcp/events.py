"""What a TCB tells its user, pulled with ``Tcb.next_event()`` (aioquic's ``next_event``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Connected:
    """The handshake completed (ESTABLISHED)."""


@dataclass(slots=True)
class DataReceived:
    """``n`` more bytes are readable with ``read``."""

    n: int


@dataclass(slots=True)
class EofReceived:
    """The peer's FIN arrived after all its data: reads return b"" once the buffer is empty."""


@dataclass(slots=True)
class SendSpace:
    """Acknowledged data left the send buffer and a write would take some of it now:
    ``free``, the buffer's limit minus what it holds (Linux sk_stream_wspace; a write may take
    more, the buffer it fills overshooting the limit, sndbuf.py). Whatever a write would take,
    also for the ACK that closed the connection and with zero-copy sends (their completion)."""

    free: int


@dataclass(slots=True)
class ConnectionLost:
    """The connection is over for the user. ``error`` is None after an orderly close, else a
    ConnectionRefusedError, ConnectionResetError or TimeoutError instance."""

    error: Exception | None


TcbEvent = Connected | DataReceived | EofReceived | SendSpace | ConnectionLost
