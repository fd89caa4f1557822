"""The typed syntax tree of a packetdrill script (what :mod:`.parser` produces).

A script is a list of header options (``--tolerance_usecs=10000``) and a list of events; each
event has a time spec and one action: a packet (inbound ``<`` or expected outbound ``>``), a
system call, a backtick shell command or a ``%{ }%`` Python snippet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# -- expressions (system call arguments and results) -----------------------------------------


@dataclass(frozen=True, slots=True)
class Ellipsis_:
    """``...``: any value (an argument the runner fills in, or a result not checked)."""


@dataclass(frozen=True, slots=True)
class Int:
    value: int


@dataclass(frozen=True, slots=True)
class Sym:
    """A symbolic constant (``SOCK_STREAM``, ``O_NONBLOCK``) or a bare word."""

    name: str


@dataclass(frozen=True, slots=True)
class Str:
    value: str


@dataclass(frozen=True, slots=True)
class BitOr:
    """``A|B|C``."""

    terms: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Array:
    """``[a, b]``: a pointer to values (``[1]`` for an int option, ``[{fd=3, ...}]``)."""

    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Field:
    """``name=value`` or ``name(arg)=value`` inside a struct."""

    name: str
    value: Expr
    arg: Expr | None = None


@dataclass(frozen=True, slots=True)
class Struct:
    fields: tuple[Field, ...]

    def get(self, name: str) -> Expr | None:
        for f in self.fields:
            if f.name == name:
                return f.value
        return None


@dataclass(frozen=True, slots=True)
class Call:
    """``htons(8080)``, ``inet_addr("192.0.2.1")``."""

    name: str
    args: tuple[Expr, ...]


Expr = Ellipsis_ | Int | Sym | Str | BitOr | Array | Struct | Call

# -- time -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimeSpec:
    """``kind``: ``absolute`` (``0.1``), ``relative`` (``+0.1``), ``any`` (``*``),
    ``absolute_range`` (``0.1~0.2``) or ``relative_range`` (``+0.1~+0.2``). Seconds."""

    kind: str
    start: float = 0.0
    end: float | None = None


# -- packets ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TcpOption:
    """One option as written: ``kind`` in ``nop eol mss wscale sackOK sack TS FO FOEXP``."""

    kind: str
    value: int | None = None  # mss, wscale
    blocks: tuple[tuple[int, int], ...] = ()  # sack
    ts: tuple[int, int] | None = None  # TS val, ecr
    cookie: str | None = None  # FO / FOEXP hex (may be empty)


@dataclass(frozen=True, slots=True)
class TcpPacket:
    flags: str  # "S.", "P.", ".", "F.", "R", "SEW", "" (no flags)
    seq: int
    end_seq: int
    length: int
    ack: int | None = None
    window: int | None = None
    urgent: int = 0
    options: tuple[TcpOption, ...] | None = ()  # None: ``<...>``, not checked
    ports: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class UdpPacket:
    length: int
    ports: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class IcmpPacket:
    """``icmp unreachable frag_needed mtu 1200 [1:1461(1460)]``; ``quoted`` is the quoted TCP
    segment's ``(seq, end_seq, length)`` or a quoted UDP ``(0, 0, length)``."""

    type: str
    code: str | None = None
    mtu: int | None = None
    quoted_proto: str | None = None  # "tcp" | "udp" | None
    quoted: tuple[int, int, int] | None = None


@dataclass(frozen=True, slots=True)
class Packet:
    direction: str  # "<" inbound (the script sends it), ">" outbound (the stack must)
    body: TcpPacket | UdpPacket | IcmpPacket
    ecn: str | None = None  # "noecn" "ect0" "ect1" "ce" "ect01" as written in (..) or [..]
    ttl: int | None = None
    tos: int | None = None  # (tos 0x..): the whole TOS / traffic class byte


# -- the other actions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Syscall:
    name: str
    args: tuple[Expr, ...]
    result: Expr
    errno: str | None = None  # "EAGAIN": the call must fail with that errno
    note: str | None = None  # the errno's text in parentheses, as written
    end: float | None = None  # ``+0...0.5``: a blocking call that returns at ``end``


@dataclass(frozen=True, slots=True)
class Command:
    text: str


@dataclass(frozen=True, slots=True)
class Code:
    text: str


Action = Packet | Syscall | Command | Code


@dataclass(frozen=True, slots=True)
class Event:
    line: int
    column: int
    time: TimeSpec
    action: Action


@dataclass(slots=True)
class Script:
    path: str
    options: dict[str, str] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
