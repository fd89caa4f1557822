"""Byte buffers of a TCB: the send buffer and the receive buffer with out-of-order reassembly.

Both count in *stream offsets* (plain Python ints, byte 0 is the first data byte after the SYN), so
the modulo-2**32 arithmetic stays in the TCB. Bytes move with slice operations on ``bytearray`` and
``memoryview`` (done in C); nothing here loops over bytes.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

Buffer = bytes | bytearray | memoryview


class SendBuffer:
    """Unacked plus unsent bytes, from stream offset ``base`` (the first unacknowledged byte).

    ``data``: those bytes, a read-only view (``len``, slices, ``bytes()``); :meth:`write`
    appends, :meth:`ack` drops from the front. Underneath is one ``bytearray`` whose acknowledged
    front is cut off only once it is as long as what is left (one copy of the live bytes per as
    many acknowledged: amortised O(1) per byte). A ``bytearray`` cut at the front on every ACK
    and appended to at the back copies all of itself on most appends (CPython moves the data
    back to the start of its allocation whenever it grows): with a 4 MiB buffer over TAP that
    was a quarter of the sender's CPU time.
    ``capacity``: the send buffer's limit as Linux's sk_sndbuf, in bytes of true size (payload
    plus per-buffer overhead): how much a write takes is sndbuf.py's rule, not this class's.
    ``marks``: the stream offsets where a write ended (ascending), Linux's push marks: the segment
    that carries the last byte of a write carries PSH (tcp_push at the end of sendmsg).
    ``eors``: where a write with MSG_EOR ended: no segment carries bytes from both sides (Linux
    marks the skb TCP_SKB_CB(skb)->eor and never adds to it).
    ``pushed_to``: where the last push mark was set (Linux ``pushed_seq``; the marks below the
    base are dropped, this stays)."""

    __slots__ = ("capacity", "data", "base", "marks", "eors", "pushed_to", "_buf", "_head")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.data: memoryview = _NO_BYTES
        self._buf = bytearray()  # from _head on: data (before it: acknowledged, not cut off yet)
        self._head = 0
        self.base = 0
        # no write yet: two shared empty lists, never mutated (mark, the one way in, gives the
        # buffer lists of its own first): 0.1 KiB less per idle connection end (issue 23 item 4)
        self.marks: list[int] = _NO_MARKS
        self.eors: list[int] = _NO_EORS
        self.pushed_to = 0

    def __len__(self) -> int:
        return len(self.data)

    def __getstate__(self) -> tuple[int, bytes, int, list[int], list[int], int]:
        return self.capacity, bytes(self.data), self.base, self.marks, self.eors, self.pushed_to

    def __setstate__(self, state: tuple[int, bytes, int, list[int], list[int], int]) -> None:
        self.capacity, data, self.base, self.marks, self.eors, self.pushed_to = state
        self._buf = bytearray(data)
        self._head = 0
        self._view()

    def _view(self) -> None:
        buf, head = self._buf, self._head
        self.data = memoryview(buf)[head:] if len(buf) > head else _NO_BYTES

    @property
    def end(self) -> int:
        return self.base + len(self.data)

    def write(self, data: Buffer, push: bool = True, eor: bool = False) -> int:
        """Append ``data``; returns its length. ``push`` False: no push mark (MSG_MORE: Linux
        marks PSH only at the end of a write without it); ``eor``: MSG_EOR, a record ends
        here."""
        if not data:
            return 0
        self.data = _NO_BYTES  # the view held would stop the bytearray from growing
        buf = self._buf
        try:
            buf += data
        except BufferError:  # a view of the old bytes is still alive somewhere: leave them be
            buf = self._buf = bytearray(memoryview(buf)[self._head:])
            self._head = 0
            buf += data
        self.data = memoryview(buf)[self._head:]
        self.mark(push, eor)
        return len(data)

    def clear(self) -> None:
        """Drop the bytes held (a connection that failed sends nothing more)."""
        self.data = _NO_BYTES
        self._buf = bytearray()
        self._head = 0

    def mark(self, push: bool, eor: bool) -> None:
        """A write ends here: its push mark (``push``) and the end of a MSG_EOR record
        (``eor``)."""
        end = self.base + len(self.data)
        if push and (not self.marks or self.marks[-1] != end):
            if self.marks is _NO_MARKS:
                self.marks = []
            self.marks.append(end)
        if push:
            self.pushed_to = end
        if eor and (not self.eors or self.eors[-1] != end):
            if self.eors is _NO_EORS:
                self.eors = []
            self.eors.append(end)

    def eor_room(self, offset: int, n: int) -> int:
        """``n``, or fewer so that the bytes from ``offset`` (after ``base``) do not cross the
        end of a MSG_EOR record."""
        eors = self.eors
        pos = self.base + offset
        i = bisect_right(eors, pos)
        return min(n, eors[i] - pos) if i < len(eors) else n

    def pushed(self, offset: int, n: int) -> bool:
        """Whether the ``n`` bytes from ``offset`` (after ``base``) end a write: PSH."""
        marks = self.marks
        pos = self.base + offset
        i = bisect_right(marks, pos)
        return i < len(marks) and marks[i] <= pos + n

    def peek(self, offset: int, n: int) -> bytes:
        """``n`` bytes starting ``offset`` bytes after ``base`` (a copy: segments outlive acks)."""
        return bytes(self.data[offset:offset + n])

    def ack(self, n: int) -> None:
        """Drop ``n`` acknowledged bytes from the front (amortised O(1) per byte)."""
        if n > 0:
            self.data = _NO_BYTES
            buf = self._buf
            head = self._head + n
            live = len(buf) - head
            if live < 0:  # (max() written out: once per ACK)
                live = 0
            if head >= live:  # the acknowledged front is as long as the rest: cut it off
                # into a new bytearray (one copy), never in place: a view of the old bytes
                # still alive somewhere (one held by a reference cycle) keeps them unchanged, and
                # resizing an exported bytearray would raise BufferError
                buf = self._buf = bytearray(memoryview(buf)[head:]) if live else bytearray()
                head = 0
            self._head = head
            self.data = memoryview(buf)[head:] if live else _NO_BYTES
            self.base += n
            marks = self.marks
            if marks and marks[0] <= self.base:
                del marks[:bisect_right(marks, self.base)]
            eors = self.eors
            if eors and eors[0] <= self.base:
                del eors[:bisect_right(eors, self.base)]


# the marks of every send buffer that never had a write (two lists: a deep copy of a buffer
# must not find its two the same)
_NO_MARKS: list[int] = []
_NO_EORS: list[int] = []

_NO_BYTES = memoryview(b"")  # the data of every empty send buffer (shared: it holds nothing)

_NO_STARTS: list[int] = []  # the reassembly queue of every buffer that never had one
_NO_PIECES: list[bytearray] = []


class ReceiveBuffer:
    """In-order bytes ready for the application plus out-of-order pieces waiting for a hole to fill.

    ``nxt`` is the stream offset of the next byte expected (RCV.NXT). Out-of-order pieces are kept
    as sorted, non-overlapping ``[start, bytearray]`` pairs, at most ``max_pieces`` of them; the TCB
    trims every segment to the advertised window first, so the bytes held stay within the buffer's
    capacity. Overlapping and duplicate bytes are kept from the first copy received.
    """

    __slots__ = ("capacity", "ready", "nxt", "_starts", "_pieces", "max_pieces", "ooo_bytes")

    def __init__(self, capacity: int, max_pieces: int = 64) -> None:
        self.capacity = capacity
        self.ready = bytearray()
        self.nxt = 0
        # the reassembly queue, empty: two shared empty lists, never mutated (_insert_ooo, the
        # one way in, gives the buffer lists of its own first): 0.1 KiB less per idle
        # connection end (issue 23 item 4)
        self._starts: list[int] = _NO_STARTS
        self._pieces: list[bytearray] = _NO_PIECES
        self.max_pieces = max_pieces
        self.ooo_bytes = 0

    def __len__(self) -> int:
        return len(self.ready)

    @property
    def free(self) -> int:
        """Space the receive window may offer: the capacity minus what the app has not read."""
        return max(0, self.capacity - len(self.ready))

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n >= len(self.ready):
            out = bytes(self.ready)
            del self.ready[:]  # (clear(), without the call: a read per segment)
            return out
        out = bytes(self.ready[:n])
        del self.ready[:n]
        return out

    def ooo_ranges(self) -> list[tuple[int, int]]:
        """Out-of-order ``(start, end)`` stream ranges held (for SACK blocks)."""
        return [(s, s + len(p)) for s, p in zip(self._starts, self._pieces, strict=True)]

    def insert(self, offset: int, data: Buffer) -> int | None:
        """Store ``data`` found at stream ``offset``.

        Returns how many bytes became readable in order (0 for a duplicate or an out-of-order
        piece), or ``None`` when an out-of-order piece was dropped because too many are held.
        """
        end = offset + len(data)
        nxt = self.nxt
        if end <= nxt or not data:
            return 0
        if offset <= nxt:
            before = len(self.ready)
            self.ready += memoryview(data)[nxt - offset:]
            nxt = end
            starts, pieces = self._starts, self._pieces
            while starts and starts[0] <= nxt:
                s = starts.pop(0)
                p = pieces.pop(0)
                self.ooo_bytes -= len(p)
                pend = s + len(p)
                if pend > nxt:
                    self.ready += memoryview(p)[nxt - s:]
                    nxt = pend
            self.nxt = nxt
            return len(self.ready) - before
        return self._insert_ooo(offset, end, data)

    def _insert_ooo(self, start: int, end: int, data: Buffer) -> int | None:
        starts, pieces = self._starts, self._pieces
        if not starts:  # never the shared lists (or a deep copy's) from here
            self._starts = starts = []
            self._pieces = pieces = []
        i = bisect_left(starts, start)
        if i > 0 and starts[i - 1] + len(pieces[i - 1]) >= start:
            i -= 1
        j = i
        while j < len(starts) and starts[j] <= end:
            j += 1
        if i == j:  # no neighbour touches it: a new piece
            if len(starts) >= self.max_pieces:
                return None
            starts.insert(i, start)
            pieces.insert(i, bytearray(data))
            self.ooo_bytes += len(data)
            return 0
        ms = min(start, starts[i])
        me = max(end, starts[j - 1] + len(pieces[j - 1]))
        merged = bytearray(me - ms)
        merged[start - ms:end - ms] = data
        old = 0
        for k in range(i, j):
            s, p = starts[k], pieces[k]
            merged[s - ms:s - ms + len(p)] = p  # the first copy received wins
            old += len(p)
        starts[i:j] = [ms]
        pieces[i:j] = [merged]
        self.ooo_bytes += len(merged) - old
        return 0
