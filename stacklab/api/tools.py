"""ping and traceroute on a Host, as coroutines (``await host.ping("b")``).

Both print lines like the Linux tools (``out=None`` to stay quiet) and return a result object
with the numbers. Times are the simulation's (or the real loop's) clock.
"""

from __future__ import annotations

import asyncio
import errno
import os
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stacklab.stack.icmp import PACKET_TOO_BIG, TIME_EXCEEDED, UNREACHABLE, IcmpReport
from stacklab.wire.addr import ip_bytes, ip_str

from .driver import DrivenHost

Out = Callable[[str], None] | None


def _printer(out: Out | str) -> Callable[[str], None]:
    if out is None:
        return lambda line: None
    if out == "stdout":
        return lambda line: print(line, file=sys.stdout)
    if isinstance(out, str):
        raise ValueError(f"out is a callable, None or 'stdout', not {out!r}")
    return out


def _resolve(host: DrivenHost, dst: str, family: int | None) -> tuple[str, bytes]:
    text = host.resolve(dst, family)
    return text, ip_bytes(text)


# -- ping ------------------------------------------------------------------------------------
@dataclass
class PingResult:
    destination: str
    address: str
    transmitted: int = 0
    received: int = 0
    rtts: list[float] = field(default_factory=list)  # seconds, in arrival order
    errors: list[str] = field(default_factory=list)  # e.g. "From 10.0.1.1 icmp_seq=1 ..."
    error_mtus: list[int] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def loss(self) -> float:
        return 1.0 - self.received / self.transmitted if self.transmitted else 1.0

    @property
    def ok(self) -> bool:
        return self.received > 0

    def summary(self) -> dict[str, Any]:
        return {"transmitted": self.transmitted, "received": self.received,
                "loss": round(self.loss, 4), "rtts": self.rtts, "errors": self.errors}


class _PingSession:
    def __init__(self, host: DrivenHost, result: PingResult,
                 emit: Callable[[str], None]) -> None:
        self.host = host
        self.result = result
        self.emit = emit
        self.sent: dict[int, float] = {}
        self.answered: set[int] = set()
        self.changed: asyncio.Event = asyncio.Event()

    def _line(self, text: str) -> None:
        self.result.lines.append(text)
        self.emit(text)

    def echo_reply(self, src: bytes, seq: int, nbytes: int, ttl: int, now: float) -> None:
        t0 = self.sent.get(seq)
        if t0 is None:
            return
        dup = seq in self.answered
        self.answered.add(seq)
        rtt = now - t0
        if not dup:
            self.result.received += 1
            self.result.rtts.append(rtt)
        label = "icmp_seq" if len(src) == 4 else "icmp_seq"
        self._line(f"{nbytes + 8} bytes from {ip_str(src)}: {label}={seq} ttl={ttl} "
                   f"time={rtt * 1000:.3g} ms{' (DUP!)' if dup else ''}")
        self.changed.set()

    def echo_error(self, e: IcmpReport, seq: int) -> None:
        if seq not in self.sent:
            return
        text = f"From {ip_str(e.sender)} icmp_seq={seq} {e.describe()}"
        self.result.errors.append(text)
        if e.kind == PACKET_TOO_BIG:
            self.result.error_mtus.append(e.mtu)
        self.answered.add(seq)
        self._line(text)
        self.changed.set()


async def ping(host: DrivenHost, dst: str, *, count: int = 4, size: int = 56,
               interval: float = 1.0, df: bool = False, family: int | None = None,
               ttl: int | None = None, timeout: float = 2.0,
               out: Out | str = "stdout") -> PingResult:
    """Send ``count`` echo requests of ``size`` data bytes, ``interval`` seconds apart, and wait
    up to ``timeout`` after the last for the replies."""
    emit = _printer(out)
    text, addr = _resolve(host, dst, family)
    result = PingResult(dst, text)
    sess = _PingSession(host, result, emit)
    icmp = host.icmp
    ident = host.rng.randrange(1, 0x10000)
    while ident in icmp.echo_listeners:
        ident = (ident % 0xFFFF) + 1
    icmp.echo_listeners[ident] = sess
    hdr = 28 if len(addr) == 4 else 48
    sess._line(f"PING {dst} ({text}) {size}({size + hdr}) bytes of data.")
    start = host.now()
    try:
        for seq in range(1, count + 1):
            now = host.now()
            data = (struct.pack("!d", now) + bytes(range(256)) * (size // 256 + 1))[:size]
            try:
                icmp.send_echo(addr, ident, seq, data, now, df=df, ttl=ttl)
                err = 0
            except OSError as exc:
                err = exc.errno or errno.EIO
            host.request_wake()
            result.transmitted += 1
            sess.sent[seq] = now
            if err:
                msg = f"ping: sendmsg: {os.strerror(err)}"
                if err == errno.EMSGSIZE:
                    msg += f" (mtu = {host.path_mtu(addr)})"
                result.errors.append(msg)
                sess._line(msg)
            if seq < count:
                await asyncio.sleep(interval)
        deadline = host.now() + timeout
        while len(sess.answered) < len(sess.sent):
            left = deadline - host.now()
            if left <= 0:
                break
            sess.changed.clear()
            try:
                await asyncio.wait_for(sess.changed.wait(), left)
            except TimeoutError:
                break
    finally:
        icmp.echo_listeners.pop(ident, None)
    result.elapsed = host.now() - start
    sess._line(f"--- {dst} ping statistics ---")
    sess._line(f"{result.transmitted} packets transmitted, {result.received} received, "
               + (f"+{len(result.errors)} errors, " if result.errors else "")
               + f"{result.loss * 100:.0f}% packet loss, time {result.elapsed * 1000:.0f}ms")
    if result.rtts:
        r = [x * 1000 for x in result.rtts]
        avg = sum(r) / len(r)
        mdev = (sum((x - avg) ** 2 for x in r) / len(r)) ** 0.5
        sess._line(f"rtt min/avg/max/mdev = {min(r):.3f}/{avg:.3f}/{max(r):.3f}/{mdev:.3f} ms")
    return result


# -- traceroute --------------------------------------------------------------------------------
@dataclass
class Hop:
    ttl: int
    address: str | None  # None: no answer ("*")
    rtts: list[float | None] = field(default_factory=list)
    note: str = ""  # "!H", "!N", "!P", "!F-576" as traceroute flags them


@dataclass
class TracerouteResult:
    destination: str
    address: str
    hops: list[Hop] = field(default_factory=list)
    reached: bool = False
    lines: list[str] = field(default_factory=list)

    @property
    def addresses(self) -> list[str | None]:
        return [h.address for h in self.hops]

    @property
    def ok(self) -> bool:
        return self.reached


def _flag(e: IcmpReport) -> str:
    if e.kind == PACKET_TOO_BIG:
        return f"!F-{e.mtu}"
    if e.kind != UNREACHABLE:
        return ""
    if e.family == 4:
        return {0: "!N", 1: "!H", 2: "!P", 3: "", 13: "!X"}.get(e.code, f"!<{e.code}>")
    return {0: "!N", 1: "!X", 3: "!H", 4: ""}.get(e.code, f"!<{e.code}>")


async def traceroute(host: DrivenHost, dst: str, *, max_hops: int = 30, probes: int = 3,
                     wait: float = 3.0, port: int = 33434, method: str = "udp",
                     size: int = 60, family: int | None = None,
                     out: Out | str = "stdout") -> TracerouteResult:
    """Probe with rising TTL (UDP to ``port``+n, or ICMP echo with ``method="icmp"``) and
    report who answers each hop; stop at the destination."""
    if method not in ("udp", "icmp"):
        raise ValueError(f"method is 'udp' or 'icmp', not {method!r}")
    emit = _printer(out)
    text, addr = _resolve(host, dst, family)
    result = TracerouteResult(dst, text)
    v4 = len(addr) == 4
    hdr = (20 if v4 else 40) + 8
    data = bytes(max(0, size - hdr))

    def line(s: str) -> None:
        result.lines.append(s)
        emit(s)

    line(f"traceroute to {dst} ({text}), {max_hops} hops max, {size} byte packets")
    pending: dict[tuple[int, int], asyncio.Future[tuple[str, float, str, bool]]] = {}

    def settle(key: tuple[int, int], who: bytes, flag: str, final: bool, now: float) -> None:
        fut = pending.get(key)
        if fut is not None and not fut.done():
            fut.set_result((ip_str(who), now, flag, final))

    pcb = None
    ident = 0
    icmp = host.icmp

    class _Echo:
        def echo_reply(self, src: bytes, seq: int, nbytes: int, ttl: int, now: float) -> None:
            settle((0, seq), src, "", True, now)

        def echo_error(self, e: IcmpReport, seq: int) -> None:
            settle((0, seq), e.sender, _flag(e), e.kind != TIME_EXCEEDED, e.now)

    def tap(e: IcmpReport) -> None:
        if e.quoted_proto != 17 or e.quoted_dst != addr or len(e.quoted_l4) < 4 or pcb is None:
            return
        sport, dport = struct.unpack_from("!HH", e.quoted_l4)
        if sport != pcb.local_port:
            return
        final = e.kind != TIME_EXCEEDED
        settle((1, dport), e.sender, _flag(e), final, e.now)

    if method == "udp":
        pcb = host.udp.socket(4 if v4 else 6)
        pcb.bind(None, 0)
        icmp.error_taps.append(tap)
    else:
        ident = host.rng.randrange(1, 0x10000)
        icmp.echo_listeners[ident] = _Echo()
    seq = 0
    try:
        for ttl in range(1, max_hops + 1):
            hop = Hop(ttl, None)
            parts: list[str] = []
            last_addr = None
            done = False
            for _ in range(probes):
                seq += 1
                now = host.now()
                fut: asyncio.Future[tuple[str, float, str, bool]] = host.loop.create_future()
                if method == "udp":
                    key = (1, port + seq - 1)
                    pending[key] = fut
                    assert pcb is not None  # opened above for method "udp"
                    pcb.ttl = ttl
                    try:
                        pcb.sendto(data, (addr, port + seq - 1), now)
                    except OSError as exc:
                        fut.set_result(("", now, f"!{exc.errno}", True))
                else:
                    key = (0, seq)
                    pending[key] = fut
                    try:
                        icmp.send_echo(addr, ident, seq, data, now, ttl=ttl)
                    except OSError as exc:
                        fut.set_result(("", now, f"!{exc.errno}", True))
                host.request_wake()
                try:
                    who, t, flag, final = await asyncio.wait_for(fut, wait)
                except TimeoutError:
                    hop.rtts.append(None)
                    parts.append("*")
                    continue
                finally:
                    pending.pop(key, None)
                rtt = t - now
                hop.rtts.append(rtt)
                if who and who != last_addr:
                    parts.append(f"{who}  {rtt * 1000:.3f} ms")
                    last_addr = who
                else:
                    parts.append(f"{rtt * 1000:.3f} ms")
                if flag:
                    parts[-1] += f" {flag}"
                    hop.note = flag
                if who:
                    hop.address = who
                done = done or final
            result.hops.append(hop)
            line(f"{ttl:2d}  " + "  ".join(parts))
            if done:
                result.reached = hop.address == text
                break
    finally:
        if pcb is not None:
            pcb.close()
            if tap in icmp.error_taps:
                icmp.error_taps.remove(tap)
        if ident:
            icmp.echo_listeners.pop(ident, None)
    return result
