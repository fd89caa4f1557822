"""Runs one parsed packetdrill script against a stacklab host on virtual time.

The script plays the remote host. The runner builds a :class:`~stacklab.stack.host.Host` with one
interface (``tun0``) whose neighbour cache already knows the remote address (a permanent entry:
no ARP/NDP traffic disturbs the script), feeds it the script's inbound packets as Ethernet frames
with ``receive_frame``, drains ``frames_to_send`` and moves the host's timers on with
``get_timer``/``handle_timer``. Nothing waits on a real clock: a 60 s TIME-WAIT takes
milliseconds.

Semantics are packetdrill's: the script's sequence numbers are relative (the stack's ISN is
learned from its SYN or SYN-ACK, the remote ISN is ours), an outbound TS ecr is the script's
inbound TS val, an inbound TS ecr is mapped onto the stack's TS clock (learned from its first
timestamp); an expected outbound packet is compared field by field with the first one the stack
sent, and must come within the tolerance of its time (``--tolerance_usecs``, 4 ms by default).
Relative times count from the previous event as it happened (from the script time of the
previous packet between two inbound packets). A blocking call returns when the stack lets it;
its return time is checked against ``...end``. Inbound packets go to the connection under test:
the first SYN after a ``listen()`` opens a new one (from a new remote port), as in packetdrill.

packetdrill's tun device offers TSO, so the scripts expect Linux's super-segments
(``P. 1:10001(10000)``); stacklab has no TSO, and the stack's data segments that continue one
another at the same instant are joined before they are compared with such an expectation
(not after ``ethtool -K tun0 tso off`` nor with ``--strict_segments``). The other network
commands a script's backticks run (``ip route ... advmss 600 mtu lock 640``, ``tc qdisc ...
pfifo limit 0``) change the host as :mod:`.netcmd` says.

Bounds: a script stops (FAIL) after ``MAX_VIRTUAL_TIME`` virtual seconds or ``MAX_STEPS``
timer steps; an exception escaping the stack is a FAIL naming it, never a crash of the run.

Addresses: local 192.168.0.1 / fd3d:fa7b:d17d::1, remote 192.0.2.1 / 2001:db8::1 (``--local_ip``
and ``--remote_ip`` change them), port 8080 for ``bind``/``connect`` with ``...``.
The host configuration is Linux's as the upstream scripts assume it (see :mod:`.sysctl`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno as _errno
import io
import os
import random
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stacklab.device.pcap import PcapWriter
from stacklab.errors import StacklabError
from stacklab.stack.host import Host
from stacklab.wire.addr import ip_bytes
from stacklab.wire.errors import MalformedPacket
from stacklab.wire.ethernet import ETH_P_IPV4, ETH_P_IPV6, EthernetView, build_ethernet
from stacklab.wire.icmpv4 import build_icmpv4
from stacklab.wire.icmpv6 import build_icmpv6
from stacklab.wire.ipv4 import IPv4View, build_ipv4
from stacklab.wire.ipv6 import IPv6View, build_ipv6
from stacklab.wire.tcp import FastOpenOpt, TcpView, build_tcp
from stacklab.wire.udp import UdpView, build_udp

from . import netcmd, sysctl
from .lexer import ScriptError
from .sockets import (
    CA_CWR,
    CA_DISORDER,
    CA_LOSS,
    CA_OPEN,
    CA_RECOVERY,
    Stack,
    TcpSock,
)
from .syntax import (
    Code,
    Command,
    Ellipsis_,
    Event,
    IcmpPacket,
    Int,
    Packet,
    Script,
    Syscall,
    TcpOption,
    TcpPacket,
    UdpPacket,
)
from .syscalls import PORT, UNMODELLED, ArgError, Blocked, Outcome, Syscalls, Unsupported, value

LOCAL_MAC = bytes.fromhex("020000000001")
REMOTE_MAC = bytes.fromhex("020000000002")
REMOTE_ISN = 0  # the script's own sequence numbers are used as they are
REMOTE_PORT = 40000
MASK = 0xFFFFFFFF
DEFAULT_TOLERANCE = 0.004  # packetdrill's default --tolerance_usecs=4000
MAX_VIRTUAL_TIME = 3600.0  # a script may not run longer (virtual seconds)
MAX_STEPS = 200_000  # host timer steps per script
_FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, ".": 0x10, "U": 0x20, "E": 0x40,
              "W": 0x80, "C": 0x80, "A": 0x100, "N": 0x100}
_ECN = {"noecn": 0, "ect1": 1, "ect0": 2, "ce": 3}
_ICMP4 = {"unreachable": 3, "time_exceeded": 11, "echo_request": 8, "echo_reply": 0,
          "source_quench": 4, "redirect": 5, "parameter_problem": 12}
_ICMP4_CODES = {"net_unreachable": 0, "host_unreachable": 1, "protocol_unreachable": 2,
                "port_unreachable": 3, "frag_needed": 4, "source_route_failed": 5,
                "net_unknown": 6, "host_unknown": 7, "net_prohibited": 9, "host_prohibited": 10,
                "ttl_exceeded": 0, "frag_reassembly_time_exceeded": 1}
_ICMP6 = {"unreachable": 1, "packet_too_big": 2, "time_exceeded": 3, "parameter_problem": 4,
          "echo_request": 128, "echo_reply": 129}
_ICMP6_CODES = {"no_route": 0, "admin_prohibited": 1, "beyond_scope": 2, "address_unreachable": 3,
                "port_unreachable": 4, "ttl_exceeded": 0}


# constants %{ }% code may use: tcpi_options bits (include/uapi/linux/tcp.h) and the
# tcpi_ca_state values
CODE_CONSTANTS = {"TCPI_OPT_TIMESTAMPS": 1, "TCPI_OPT_SACK": 2, "TCPI_OPT_WSCALE": 4,
                  "TCPI_OPT_ECN": 8, "TCPI_OPT_ECN_SEEN": 16, "TCPI_OPT_SYN_DATA": 32,
                  "TCP_CA_Open": CA_OPEN, "TCP_CA_Disorder": CA_DISORDER, "TCP_CA_CWR": CA_CWR,
                  "TCP_CA_Recovery": CA_RECOVERY, "TCP_CA_Loss": CA_LOSS,
                  # Linux's state names (include/net/tcp_states.h)
                  "TCP_ESTABLISHED": 1, "TCP_SYN_SENT": 2, "TCP_SYN_RECV": 3,
                  "TCP_FIN_WAIT1": 4, "TCP_FIN_WAIT2": 5, "TCP_TIME_WAIT": 6, "TCP_CLOSE": 7,
                  "TCP_CLOSE_WAIT": 8, "TCP_LAST_ACK": 9, "TCP_LISTEN": 10, "TCP_CLOSING": 11}


class Failure(StacklabError):
    """The script failed at ``line``: ``message`` in packetdrill's words."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass
class Result:
    path: str
    status: str  # PASS | FAIL | UNSUPPORTED | ERROR (the script does not parse)
    message: str = ""
    line: int = 0
    virtual_time: float = 0.0
    events: int = 0
    trace: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"script": self.path, "status": self.status, "message": self.message,
                "line": self.line, "virtual_time": round(self.virtual_time, 6),
                "events": self.events, "notes": self.notes}


@dataclass
class _Flow:
    local_port: int
    remote_port: int
    passive: bool
    local_isn: int | None = None  # the stack's ISN
    ts_offset: int | None = None  # the stack's TSval minus the script's
    # as packetdrill: the script's SYN (or SYN-ACK) gives the peer's ISN as written; the
    # sequence numbers of its later segments, and the ACKs the stack sends them, are relative
    remote_isn: int = 0


@dataclass
class _Out:
    t: float
    frame: bytes
    ip: IPv4View | IPv6View
    proto: int
    l4: memoryview


@dataclass(frozen=True)
class _Seg:
    """The fields of an outbound TCP segment the script checks (maybe several joined)."""

    ports: tuple[int, int]
    flags: int
    seq: int
    ack: int
    window: int
    length: int
    options: list[Any]
    merged: int = 1
    urgent: int = 0

    @classmethod
    def of(cls, out: _Out) -> _Seg | None:
        if out.proto != 6:
            return None
        try:
            v = TcpView(out.l4)
            opts = v.options()
        except MalformedPacket:
            return None
        return cls((v.src_port, v.dst_port), v.flags, v.seq, v.ack, v.window, len(v.payload),
                   opts, urgent=v.urgent)


@dataclass
class _Pending:
    event: Event
    retry: Callable[[], Outcome | None]
    deadline: float | None
    expected_end: float


def fmt_errno(e: int) -> str:
    return f"{_errno.errorcode.get(e, str(e))} ({os.strerror(e)})"


class Runner:
    def __init__(self, script: Script, *, tolerance: float | None = None,
                 pcap: str | Path | None = None, seed: int = 1) -> None:
        self.script = script
        opts = script.options
        self.tolerance = tolerance if tolerance is not None else (
            int(opts["tolerance_usecs"]) / 1e6 if "tolerance_usecs" in opts
            else DEFAULT_TOLERANCE)
        # upstream's run_all.py runs a script whose name ends in "v6.pkt" over IPv6 only
        ipv = opts.get("ip_version", "ipv6" if str(script.path).endswith("v6.pkt") else "ipv4")
        if ipv not in ("ipv4", "ipv6", "ipv4-mapped-ipv6"):
            raise Unsupported(f"--ip_version={ipv}")
        self.v6_wire = ipv == "ipv6"
        self.v6_socket = ipv != "ipv4"
        self.local_ip = ip_bytes(opts.get("local_ip", "fd3d:fa7b:d17d::1" if self.v6_wire
                                          else "192.168.0.1"))
        self.remote_ip = ip_bytes(opts.get("remote_ip", "2001:db8::1" if self.v6_wire
                                           else "192.0.2.1"))
        if (len(self.local_ip) == 16) != self.v6_wire:
            raise Unsupported("--local_ip of the other IP version")
        self.mtu = int(opts.get("mtu", "1500"))
        # the tun device's segmentation offload: stack segments are joined as by TSO to match
        # a bigger expected one; off after `ethtool -K tun0 tso off` or with --strict_segments
        self.offload = "strict_segments" not in opts
        # --mss: packetdrill writes inbound TCP packets to its tun device with this gso_size
        # (a packet longer than it arrives as a GRO aggregate of segments that size)
        self.gso_size = int(opts.get("mss", "0"))
        self.now = 0.0
        self._line = 0  # the line of the event being run
        self.steps = 0
        self.out_q: deque[_Out] = deque()
        self.flows: dict[tuple[int, int], _Flow] = {}
        self.flow: _Flow | None = None  # the connection under test
        self._listen_seen = 0  # listen() calls already answered by a new passive flow
        self.pending: _Pending | None = None
        self.last_script_time = 0.0
        self.last_inbound = False
        # the -v trace; outbound packets are described at the end, once the ISNs are known
        self.trace: list[str | _Out] = []
        self.notes: list[str] = []
        # names the script's %{ }% blocks define, kept for the later blocks (packetdrill runs
        # all of a script's blocks in one Python namespace)
        self._code_vars: dict[str, Any] = {}
        self.pcap = PcapWriter(str(pcap)) if pcap is not None else None
        for name in opts:
            if name.startswith("wire") or name in ("tcp_ts_tick_usecs",
                                                   "tcp_ts_ecr_scaled", "non_fatal",
                                                   "dry_run", "verbose", "so_filename"):
                self.notes.append(f"option --{name} ignored")
        self.host = Host("stacklab", rng=random.Random(seed))
        self.host.add_interface("tun0", LOCAL_MAC, mtu=self.mtu)
        plen = 48 if self.v6_wire else 16
        self.host.add_address(0, f"{_ip_text(self.local_ip)}/{plen}")
        self.host.add_route("::/0" if self.v6_wire else "0.0.0.0/0", ifindex=0)
        iface = self.host.interfaces[0]
        cache = iface.nd if self.v6_wire else iface.arp
        cache.add_permanent(self.remote_ip, REMOTE_MAC, 0.0)
        if self.v6_wire:
            iface.mark_preferred(self.local_ip)  # no DAD wait: the script starts at once
        self.stack = Stack(self.host, lambda: self.now)
        for name, val in sysctl.LINUX_DEFAULTS:
            self.host.sysctl[name] = val
        self.sys = Syscalls(self.stack, self.local_ip, self.remote_ip, self.v6_socket,
                            lambda: self.now, self.tolerance)
        self._drain()
        self.out_q.clear()  # the host's own start-up traffic (gratuitous ARP, DAD, RS)

    # -- the clock and the host ------------------------------------------------------------------
    def _drain(self) -> None:
        self.stack.process_events()
        for _ifindex, frame in self.host.frames_to_send():
            frame = bytes(frame)
            if self.pcap is not None:
                self.pcap.write(frame, self.now)
            out = _parse_out(self.now, frame)
            if out is not None:
                self.out_q.append(out)
                self.trace.append(out)

    def _host_call(self, fn: Callable[[], Any]) -> Any:
        try:
            r = fn()
        except (Failure, Unsupported, ScriptError, ArgError, Blocked):
            raise
        except Exception as e:  # noqa: BLE001 - an exception escaping the stack is a finding
            last = traceback.format_exception_only(type(e), e)[-1].strip()
            raise Failure(self._line, f"stacklab raised {last}") from e
        self._drain()
        return r

    def _step(self, until: float) -> bool:
        """Run the host's next due timer if it is at or before ``until``; False when none."""
        t = self.host.get_timer()
        cands = [x for x in (t, self.pending.deadline if self.pending else None) if x is not None]
        if not cands:
            return False
        nxt = max(min(cands), self.now)
        if nxt > until:
            return False
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise Failure(self._line, f"more than {MAX_STEPS} timer steps: the script is "
                          "stopped (a timer loop?)")
        self.now = nxt
        if nxt > MAX_VIRTUAL_TIME:
            raise Failure(self._line, f"virtual time passed {MAX_VIRTUAL_TIME:.0f} s")
        if t is not None and t <= nxt:
            self._host_call(lambda: self.host.handle_timer(nxt))
        self._check_pending()
        return True

    def advance(self, until: float) -> None:
        while self._step(until):
            pass
        self.now = max(self.now, until)
        self._check_pending()

    def _check_pending(self) -> None:
        p = self.pending
        if p is None:
            return
        outcome = self._host_call(p.retry)
        if outcome is None:
            return
        self.pending = None
        self._finish_syscall(p.event, outcome, p.expected_end)

    # -- running ---------------------------------------------------------------------------------
    def run(self) -> Result:
        res = Result(self.script.path, "PASS")
        try:
            for ev in self.script.events:
                self._line = ev.line
                self._event(ev)
                res.events += 1
            if self.pending is not None:
                self._line = self.pending.event.line
                self._wait_pending()
        except Failure as f:
            res.status, res.line = "FAIL", f.line
            res.message = f"{self.script.path}:{f.line}: {f.message}"
        except Unsupported as u:
            res.status, res.line = "UNSUPPORTED", self._line
            res.message = f"{self.script.path}:{self._line}: unsupported: {u}"
        except ArgError as a:
            res.status, res.line = "FAIL", self._line
            res.message = f"{self.script.path}:{self._line}: {a}"
        finally:
            if self.pcap is not None:
                self.pcap.close()
        res.virtual_time = self.now
        res.trace = [t if isinstance(t, str) else f"{t.t:.6f} > {_describe(t, self)}"
                     for t in self.trace]
        res.notes = self.notes
        return res

    def _event_time(self, ev: Event) -> float:
        ts = ev.time
        inbound = isinstance(ev.action, Packet) and ev.action.direction == "<"
        if ts.kind in ("absolute", "absolute_range"):
            return ts.start
        base = self.last_script_time if (inbound and self.last_inbound) else self.now
        return base + ts.start

    def _event(self, ev: Event) -> None:
        act = ev.action
        t = self._event_time(ev)
        base = t - ev.time.start if ev.time.kind in ("relative", "relative_range") else 0.0
        if isinstance(act, Packet) and act.direction == ">":
            self._outbound(ev, act, t, base)
        else:
            if isinstance(act, Syscall) and self.pending is not None:
                self._wait_pending()
            self.advance(t)
            if isinstance(act, Packet):
                self._inbound(act)
            elif isinstance(act, Syscall):
                end = None
                if act.end is not None:
                    end = act.end + (base if ev.time.kind == "relative" else 0.0)
                self._syscall(ev, act, end)
            elif isinstance(act, Command):
                self._command(act)
            elif isinstance(act, Code):
                self._code(act)
        self.last_inbound = isinstance(act, Packet) and act.direction == "<"
        self.last_script_time = t

    def _wait_pending(self) -> None:
        while self.pending is not None:
            if not self._step(MAX_VIRTUAL_TIME):
                p = self.pending
                self.pending = None
                raise Failure(p.event.line, f"blocking system call {_call_name(p.event)} never "
                              "returned (the stack has nothing left to do)")

    # -- syscalls --------------------------------------------------------------------------------
    def _syscall(self, ev: Event, call: Syscall, end: float | None) -> None:
        if call.name in UNMODELLED:
            raise Unsupported(f"system call {call.name}()")
        try:
            want = call.result.value if isinstance(call.result, Int) else None
            outcome = self._host_call(lambda: self.sys.call(call.name, call.args, want))
        except Blocked as b:
            self.pending = _Pending(ev, b.retry, b.deadline, end if end is not None else self.now)
            self._check_pending()
            return
        self._finish_syscall(ev, outcome, end if end is not None else self.now, self.sys.missing)

    def _finish_syscall(self, ev: Event, outcome: Outcome, expected_end: float,
                        missing: str | None = None) -> None:
        """Check a call's result, errno and return time; ``missing``: the socket option
        stacklab lacks, when that is why the call failed."""
        lacks = f" (stacklab has no {missing})" if missing else ""
        call = ev.action
        assert isinstance(call, Syscall)
        ret, err = outcome
        name = call.name
        self.trace.append(f"{self.now:.6f}   {name}() = {ret}"
                          + (f" {_errno.errorcode.get(err, err)}" if ret == -1 and err else ""))
        if abs(self.now - expected_end) > self.tolerance + 1e-9:
            raise Failure(ev.line, f"timing error: expected system call return at "
                          f"{expected_end:.6f} sec but happened at {self.now:.6f} sec; "
                          f"tolerance {self.tolerance:.6f} sec")
        want = value(call.result) if not isinstance(call.result, Ellipsis_) else None
        if call.errno is not None:
            want_err = getattr(_errno, call.errno, None)
            if want_err is None:
                raise Failure(ev.line, f"unknown errno {call.errno}")
            if ret != -1 or err != want_err:
                got = f"{ret}" if ret != -1 else f"-1 with errno {fmt_errno(err)}"
                raise Failure(ev.line, f"runtime error in {name} call: Expected result -1 with "
                              f"errno {fmt_errno(want_err)} but got {got}{lacks}")
            return
        if want is None:
            return
        if ret != want:
            got = f"{ret}" if ret != -1 else f"-1 with errno {fmt_errno(err)}"
            raise Failure(ev.line, f"runtime error in {name} call: Expected result {want} but "
                          f"got {got}{lacks}")

    # -- commands and code -----------------------------------------------------------------------
    def _command(self, cmd: Command) -> None:
        base = Path(self.script.path).parent
        assigns, ignored = sysctl.commands_in(cmd.text, base)
        for name, val in assigns:
            why = sysctl.apply(self.host, name, val)
            if why is not None:
                self.notes.append(f"sysctl {why}")
        for part in ignored:
            if part.split()[:3] == ["ip", "tcp_metrics", "flush"]:
                self.host.tcp.tfo.cache.clear()  # the TCP metrics hold the TFO cookies
                continue
            if self.sys.files.command(part):
                continue  # a file made or removed in the runner's own file system (files.py)
            words = part.split()
            note = netcmd.ip_route(self.host, words)  # route metrics (netcmd.py)
            if note is not None:
                if note:
                    self.notes.append(note)
                continue
            if netcmd.tc_qdisc(self.host, words):
                continue
            off = netcmd.offload_off(words)
            if off is not None:
                self.offload = self.offload and not off
                continue
            self.notes.append(f"command ignored: {part}")

    def _code(self, code: Code) -> None:
        s = self.sys.current
        if s is None:
            raise Failure(self._line, "%{ }% code needs a TCP socket")
        info = s.info()
        env: dict[str, Any] = self._code_vars | dict(info) | CODE_CONSTANTS
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                # the script's own assertion code (packetdrill runs it with python3 too)
                exec(compile(_dedent(code.text), f"{self.script.path}:{self._line}", "exec"),
                     env)  # noqa: S102
        except AssertionError as e:
            raise Failure(self._line, f"assertion failed in %{{ }}% code: {e}") from None
        except NameError as e:
            raise Unsupported(f"%{{ }}% code uses {e.name}") from None
        except Exception as e:  # noqa: BLE001 - the script's code
            raise Failure(self._line, f"error in %{{ }}% code: {type(e).__name__}: {e}") from None
        finally:
            self.notes += [f"%{{ }}% printed: {ln}" for ln in printed.getvalue().splitlines()]
        self._code_vars.update((k, v) for k, v in env.items()
                               if k not in info and k not in CODE_CONSTANTS
                               and k != "__builtins__")

    # -- inbound packets -------------------------------------------------------------------------
    def _inbound(self, pkt: Packet) -> None:
        body = pkt.body
        if isinstance(body, TcpPacket):
            l4, proto = self._build_tcp(body), 6
        elif isinstance(body, UdpPacket):
            sport, dport = body.ports or (REMOTE_PORT, self.sys.udp_port())
            l4, proto = bytes(build_udp(self.remote_ip, self.local_ip, sport, dport,
                                        bytes(body.length))), 17
        else:
            l4, proto = self._build_icmp(body), (58 if self.v6_wire else 1)
        tos = pkt.tos if pkt.tos is not None else _ECN.get(pkt.ecn or "noecn", 0)
        ttl = pkt.ttl or 64
        if self.v6_wire:
            ip = build_ipv6(self.remote_ip, self.local_ip, proto, l4, hop_limit=ttl,
                            traffic_class=tos)
            ethertype = ETH_P_IPV6
        else:
            ip = build_ipv4(self.remote_ip, self.local_ip, proto, l4, ttl=ttl, tos=tos, df=True)
            ethertype = ETH_P_IPV4
        frame = bytes(build_ethernet(LOCAL_MAC, REMOTE_MAC, ethertype, ip))
        if self.pcap is not None:
            self.pcap.write(frame, self.now)
        self.trace.append(f"{self.now:.6f} < {_describe_script(pkt)}")
        # Linux takes a packet no longer than gso_size as an ordinary one (virtio_net_hdr_to_skb)
        gso = self.gso_size if isinstance(body, TcpPacket) and body.length > self.gso_size else 0
        self._host_call(lambda: self.host.receive_frame(0, frame, self.now, gso_size=gso))
        self._check_pending()

    def _inbound_flow(self, p: TcpPacket) -> _Flow:
        if p.ports is not None:  # written out: "< 40000>8080 S 0:0(0) ..."
            key = (p.ports[1], p.ports[0])
            named = self.flows.get(key) or _Flow(key[0], key[1], True)
            self.flows[key] = named
            self.flow = named
            return named
        # As packetdrill: the first inbound SYN after a listen() opens a new connection from a
        # new remote port; every other packet belongs to the connection under test.
        lp = self.sys.listening_port()
        syn_only = "S" in p.flags and "." not in p.flags
        if self.flow is None or (syn_only and lp is not None
                                 and self._listen_seen != self.sys.listens):
            self._listen_seen = self.sys.listens
            port = lp or PORT
            rp = REMOTE_PORT + sum(1 for f in self.flows.values() if f.passive)
            self.flow = self.flows[(port, rp)] = _Flow(port, rp, True)
        return self.flow

    def _local_seq(self, fl: _Flow | None, script_seq: int) -> int:
        isn = fl.local_isn if fl is not None and fl.local_isn is not None else 0
        return (script_seq + isn) & MASK

    def _build_tcp(self, p: TcpPacket) -> bytes:
        fl = self._inbound_flow(p)
        flags = 0
        for ch in p.flags:
            flags |= _FLAG_BITS.get(ch, 0)
        if p.ack is not None:
            flags |= 0x10
        # as packetdrill: the ack field of a segment with the ACK bit is mapped onto the stack's
        # ISN, also when the script gives none (`< . 1:1001(1000)` acknowledges script 0: ISN)
        ack = self._local_seq(fl, p.ack or 0) if flags & 0x10 else 0
        opts = b""
        for o in p.options or ():
            opts += self._encode_option(o, fl)
        window = p.window if p.window is not None else 65535
        if flags & 0x02:
            fl.remote_isn = p.seq
        seq = p.seq if flags & 0x02 else p.seq + fl.remote_isn
        return bytes(build_tcp(self.remote_ip, self.local_ip, fl.remote_port, fl.local_port,
                               (seq + REMOTE_ISN) & MASK, ack, flags, window,
                               bytes(p.length), opts, p.urgent))

    def _encode_option(self, o: TcpOption, fl: _Flow) -> bytes:
        k = o.kind
        if k == "nop":
            return b"\x01"
        if k == "eol":
            return b"\x00"
        if k == "mss":
            return bytes([2, 4]) + (o.value or 0).to_bytes(2, "big")
        if k == "wscale":
            return bytes([3, 3, o.value or 0])
        if k == "sackOK":
            return bytes([4, 2])
        if k == "sack":
            body = b"".join(self._local_seq(fl, a).to_bytes(4, "big")
                            + self._local_seq(fl, b).to_bytes(4, "big") for a, b in o.blocks)
            return bytes([5, 2 + len(body)]) + body
        if k == "TS":
            assert o.ts is not None
            val, ecr = o.ts
            if ecr and fl.ts_offset is not None:
                ecr = (ecr + fl.ts_offset) & MASK
            return bytes([8, 10]) + val.to_bytes(4, "big") + ecr.to_bytes(4, "big")
        if k in ("FO", "FOEXP"):
            # RFC 7413 §4.1.1, or the experimental kind 254 with magic 0xF989
            try:
                # TFO_COOKIE: packetdrill's name for the valid cookie of the stack's listener
                cookie = self._tfo_cookie() if o.cookie == "TFO_COOKIE" \
                    else bytes.fromhex(o.cookie or "")
            except ValueError:
                raise Unsupported(f"TCP Fast Open cookie {o.cookie!r} (not hex)") from None
            return FastOpenOpt(cookie, exp=k == "FOEXP").encode()
        if k == "md5":
            raise Unsupported("TCP MD5 signature option (RFC 2385)")
        raise Unsupported(f"TCP option {k}")

    def _tfo_cookie(self) -> bytes:
        """The cookie the stack's listener gives the script's address (TFO_COOKIE)."""
        for s in self.sys.fds.values():
            if isinstance(s, TcpSock) and s.listening_port() is not None:
                return s.fastopen_cookie(self.remote_ip, self.local_ip)
        return self.host.tcp.tfo.cookie(self.remote_ip, self.local_ip)

    def _build_icmp(self, p: IcmpPacket) -> bytes:
        fl = self.flow
        if p.quoted_proto == "udp" or p.quoted_proto is None and fl is None:
            n = p.quoted[2] if p.quoted else 0
            inner_l4 = bytes(build_udp(self.local_ip, self.remote_ip, self.sys.udp_port(),
                                       8080, bytes(n)))[:8]
            inner_proto = 17
        else:
            seq = self._local_seq(fl, p.quoted[0] if p.quoted else 0)
            lp, rp = (fl.local_port, fl.remote_port) if fl else (8080, REMOTE_PORT)
            inner_l4 = bytes(build_tcp(self.local_ip, self.remote_ip, lp, rp, seq, 0, 0x10, 0,
                                       bytes(p.quoted[2] if p.quoted else 0)))
            inner_proto = 6
        if self.v6_wire:
            inner = bytes(build_ipv6(self.local_ip, self.remote_ip, inner_proto, inner_l4))
            typ = _ICMP6.get(p.type)
            if p.type == "unreachable" and p.code == "frag_needed":
                typ, code = 2, 0  # packetdrill writes IPv6's Packet Too Big this way too
            else:
                code = self._icmp_code(p.code, _ICMP6_CODES)
            if typ is None:
                raise Unsupported(f"ICMPv6 type {p.type}")
            rest = (p.mtu or 0).to_bytes(4, "big")
            return bytes(build_icmpv6(self.remote_ip, self.local_ip, typ, code,
                                      rest + inner[:1232]))
        inner = bytes(build_ipv4(self.local_ip, self.remote_ip, inner_proto, inner_l4, df=True))
        typ = _ICMP4.get(p.type)
        if typ is None:
            raise Unsupported(f"ICMP type {p.type}")
        code = self._icmp_code(p.code, _ICMP4_CODES)
        rest = (p.mtu or 0).to_bytes(4, "big") if typ == 3 and code == 4 else bytes(4)
        return bytes(build_icmpv4(typ, code, rest, inner[:28 + max(0, len(inner_l4) - 8)]))

    def _icmp_code(self, name: str | None, codes: dict[str, int]) -> int:
        """An inbound ICMP message's code as packetdrill reads it: none is 0, ``code_N`` is N,
        else a name of the type's table; any other word is a bad code, that packetdrill
        rejects the script for (``CODE`` is the placeholder run_all.py's ``-D`` fills in for
        IPv4 only)."""
        if name is None:
            return 0
        if name == "CODE" and not self.v6_wire:
            name = "host_unreachable"  # run_all.py's IPv4 runs define -D CODE=host_unreachable
        if name.startswith("code_") and name[5:].isdigit() and int(name[5:]) <= 255:
            return int(name[5:])
        if name not in codes:
            raise Failure(self._line, f"bad ICMP code {name}")
        return codes[name]

    # -- outbound packets ------------------------------------------------------------------------
    def _outbound(self, ev: Event, pkt: Packet, t: float, base: float) -> None:
        ts = ev.time
        lo, hi = t - self.tolerance, t + self.tolerance
        if ts.kind == "any":
            lo, hi = 0.0, MAX_VIRTUAL_TIME
        elif ts.kind in ("absolute_range", "relative_range"):
            assert ts.end is not None
            end = ts.end + (base if ts.kind == "relative_range" else 0.0)
            lo, hi = t - self.tolerance, end + self.tolerance
        while True:
            while not self.out_q:
                if not self._step(MAX_VIRTUAL_TIME):
                    raise Failure(ev.line, f"timed out waiting for outbound packet: expected "
                                  f"{_describe_script(pkt)} at {t:.6f} sec; the stack sent "
                                  "nothing")
            out = self.out_q.popleft()
            self.now = max(self.now, out.t)
            seg = _Seg.of(out)
            if seg is None or not self._not_under_test(seg):
                break
        if seg is not None and isinstance(pkt.body, TcpPacket) and pkt.body.length > seg.length \
                and self.offload:
            seg = self._coalesce(seg, pkt.body.length, out.t)
        self._compare(ev.line, pkt, out, seg)
        if not lo - 1e-9 <= out.t <= hi + 1e-9:
            raise Failure(ev.line, f"timing error: expected outbound packet at {t:.6f} sec but "
                          f"happened at {out.t:.6f} sec; tolerance {self.tolerance:.6f} sec")

    def _not_under_test(self, seg: _Seg) -> bool:
        """A segment of a socket the script closed, or of an earlier client socket, while another
        one is under test: packetdrill sniffs only the socket under test's packets and drops the
        others."""
        fl = self.flows.get(seg.ports)
        if seg.ports not in self.sys.closed_ports and (fl is None or fl.passive):
            return False
        cur = self.sys.current
        tcb = cur.tcb if cur is not None else None
        return tcb is None or (tcb.local_port, tcb.remote_port) != seg.ports

    def _coalesce(self, seg: _Seg, want: int, t: float) -> _Seg:
        """The script expects one segment bigger than the stack's: packetdrill's tun device
        offers TSO, so Linux hands it super-segments. The stack's segments that continue
        ``seg`` at the same time are joined into one, as segmentation offload would have cut
        them from it (PSH from any of them, FIN only from the last)."""
        # only data continues data, and nothing follows a SYN, FIN or RST
        while 0 < seg.length < want and not seg.flags & 0x07:
            if not self.out_q and not self._step(t):
                break
            if not self.out_q:
                continue
            nxt = _Seg.of(self.out_q[0])
            if nxt is None or self.out_q[0].t > t + 1e-9 or nxt.ports != seg.ports \
                    or nxt.seq != (seg.seq + seg.length) & MASK or nxt.ack != seg.ack \
                    or nxt.flags & ~0x09 != seg.flags & ~0x08:
                break
            self.out_q.popleft()
            seg = dataclasses.replace(seg, flags=seg.flags & ~0x09 | nxt.flags,
                                      length=seg.length + nxt.length, window=nxt.window,
                                      merged=seg.merged + 1)
        return seg

    def _compare(self, line: int, pkt: Packet, out: _Out, seg: _Seg | None) -> None:
        def field_err(name: str, want: Any, got: Any) -> Failure:
            actual = _describe(out, self) if seg is None or seg.merged == 1 else \
                f"{self._describe_seg(seg)} ({seg.merged} segments joined as by TSO)"
            return Failure(line, f"error handling packet: live packet field {name}: expected: "
                           f"{want} vs actual: {got}\n  script packet: {_describe_script(pkt)}"
                           f"\n  actual packet: {actual}")
        body = pkt.body
        tos = out.ip.tos if isinstance(out.ip, IPv4View) else out.ip.traffic_class
        if pkt.tos is not None and pkt.tos != tos:
            raise field_err("ip_tos", f"{pkt.tos:#x}", f"{tos:#x}")
        if pkt.ecn is not None and pkt.ecn != "ecn":
            ecn = tos & 3
            ok = ecn in (1, 2) if pkt.ecn == "ect01" else ecn == _ECN[pkt.ecn]
            if not ok:
                raise field_err("ip_ecn", pkt.ecn, ecn)
        if isinstance(body, TcpPacket):
            if seg is None:
                raise field_err("protocol", 6, out.proto)
            self._compare_tcp(body, seg, field_err)
        elif isinstance(body, UdpPacket):
            if out.proto != 17:
                raise field_err("protocol", 17, out.proto)
            u = UdpView(out.l4)
            if len(u.payload) != body.length:
                raise field_err("udp_len", body.length, len(u.payload))
        else:
            want_proto = 58 if self.v6_wire else 1
            if out.proto != want_proto:
                raise field_err("protocol", want_proto, out.proto)
            table, codes = (_ICMP6, _ICMP6_CODES) if self.v6_wire else (_ICMP4, _ICMP4_CODES)
            typ = table.get(body.type)
            if typ is None:
                raise Unsupported(f"ICMP type {body.type}")
            if out.l4[0] != typ:
                raise field_err("icmp_type", typ, out.l4[0])
            if body.code is not None and out.l4[1] != codes.get(body.code, -1):
                raise field_err("icmp_code", codes.get(body.code), out.l4[1])

    def _describe_seg(self, s: _Seg) -> str:
        fl = self.flows.get(s.ports)
        isn = fl.local_isn if fl is not None and fl.local_isn is not None else 0
        seq = (s.seq - isn) & MASK
        text = f"{_flags_text(s.flags)} {seq}:{(seq + s.length) & MASK}({s.length})"
        if s.flags & 0x10:
            rel = fl.remote_isn if fl is not None and not s.flags & 0x02 else 0
            text += f" ack {(s.ack - REMOTE_ISN - rel) & MASK}"
        return text + f" win {s.window}"

    def _compare_tcp(self, p: TcpPacket, v: _Seg, err: Callable[[str, Any, Any], Failure]
                     ) -> None:
        key = v.ports
        fl = self.flows.get(key)
        want_flags = 0
        for ch in p.flags:
            want_flags |= _FLAG_BITS.get(ch, 0)
        if fl is None:
            fl = _Flow(key[0], key[1], False)
            self.flows[key] = fl
            self.flow = fl
        if v.flags & 0x02:
            # a SYN starts the stack's sequence space and TS clock (again): as packetdrill, the
            # seq written on it is the stack's ISN, whatever its value; the later ones are
            # relative to it
            if fl.local_isn != v.seq:
                fl.ts_offset = None
            fl.local_isn = v.seq
        if v.flags != want_flags:
            raise err("tcp_flags", p.flags or "-", _flags_text(v.flags))
        seq = (v.seq - (fl.local_isn or 0)) & MASK
        if seq != (0 if v.flags & 0x02 else p.seq) & MASK:
            raise err("tcp_seq", p.seq & MASK, seq)
        if v.length != p.length:
            raise err("tcp_payload_len", p.length, v.length)
        if p.ack is not None:
            ack = (v.ack - REMOTE_ISN - (0 if v.flags & 0x02 else fl.remote_isn)) & MASK
            if ack != p.ack & MASK:
                raise err("tcp_ack", p.ack & MASK, ack)
        if p.window is not None and v.window != p.window:
            raise err("tcp_window", p.window, v.window)
        if v.flags & 0x20 and v.urgent != p.urgent:  # URG: the urgent pointer too
            raise err("tcp_urg_ptr", p.urgent, v.urgent)
        if p.options is None:
            return
        actual = v.options
        want = list(p.options)
        if len(actual) != len(want):
            raise err("tcp_options", _opts_script(want), _opts_live(actual, fl))
        for w, a in zip(want, actual, strict=True):
            if not self._option_matches(w, a, fl):
                raise err("tcp_options", _opts_script(want), _opts_live(actual, fl))

    def _option_matches(self, w: TcpOption, a: Any, fl: _Flow) -> bool:
        name = type(a).__name__
        k = w.kind
        if k == "nop":
            return name == "NopOpt"
        if k == "eol":
            return name == "EolOpt"
        if k == "mss":
            return name == "MssOpt" and a.mss == w.value
        if k == "wscale":
            return name == "WscaleOpt" and a.shift == w.value
        if k == "sackOK":
            return name == "SackPermOpt"
        if k == "sack":
            base = REMOTE_ISN + fl.remote_isn
            return name == "SackOpt" and tuple(tuple(b) for b in a.blocks) == tuple(
                ((x + base) & MASK, (y + base) & MASK) for x, y in w.blocks)
        if k == "TS":
            if name != "TimestampOpt" or w.ts is None:
                return False
            if fl.ts_offset is None:
                fl.ts_offset = (a.tsval - w.ts[0]) & MASK
            return bool(a.tsecr == w.ts[1])
        if k in ("FO", "FOEXP"):
            if name != "FastOpenOpt" or a.exp != (k == "FOEXP"):
                return False
            return w.cookie in (None, "TFO_COOKIE") or a.cookie.hex() == w.cookie.lower()
        raise Unsupported(f"TCP option {k}")


# -- helpers -------------------------------------------------------------------------------------


def _ip_text(a: bytes) -> str:
    import ipaddress

    return str(ipaddress.ip_address(a))


def _call_name(ev: Event) -> str:
    return f"{ev.action.name}()" if isinstance(ev.action, Syscall) else "call"


def _dedent(text: str) -> str:
    """The code of a ``%{ }%`` block: its first line may follow ``%{`` while the others are
    indented as the script is."""
    import textwrap

    first, _, rest = text.strip("\n").partition("\n")
    code = first.strip() + "\n" + textwrap.dedent(rest) if first.strip() else textwrap.dedent(rest)
    # packetdrill runs the blocks in one file, one after another: a block's last line may end
    # in a backslash continued by the blank line that follows it
    return code + "\n\n"


def _parse_out(t: float, frame: bytes) -> _Out | None:
    """An outbound frame the script may be interested in (ARP and NDP are not)."""
    try:
        eth = EthernetView(frame)
        if eth.ethertype == ETH_P_IPV4:
            ip4 = IPv4View(eth.payload)
            return _Out(t, frame, ip4, ip4.proto, ip4.payload)
        if eth.ethertype == ETH_P_IPV6:
            ip6 = IPv6View(eth.payload)
            if ip6.next_header == 58 and ip6.payload and ip6.payload[0] in (
                    130, 131, 132, 133, 134, 135, 136, 137, 143):
                return None
            return _Out(t, frame, ip6, ip6.next_header, ip6.payload)
    except MalformedPacket:
        return None
    return None


def _flags_text(flags: int) -> str:
    s = "".join(ch for ch, bit in (("S", 0x02), ("F", 0x01), ("R", 0x04), ("P", 0x08),
                                    ("U", 0x20), ("E", 0x40), ("W", 0x80), ("A", 0x100))
                if flags & bit)  # A: AE (RFC 9768), as packetdrill prints it
    return s + "." if flags & 0x10 else (s or "-")


def _opts_script(opts: list[TcpOption]) -> str:
    parts = []
    for o in opts:
        if o.kind in ("mss", "wscale"):
            parts.append(f"{o.kind} {o.value}")
        elif o.kind == "TS" and o.ts:
            parts.append(f"TS val {o.ts[0]} ecr {o.ts[1]}")
        elif o.kind == "sack":
            parts.append("sack " + " ".join(f"{a}:{b}" for a, b in o.blocks))
        else:
            parts.append(o.kind)
    return "<" + ",".join(parts) + ">"


def _opts_live(opts: list[Any], fl: _Flow | None) -> str:
    parts = []
    for a in opts:
        n = type(a).__name__
        if n == "NopOpt":
            parts.append("nop")
        elif n == "EolOpt":
            parts.append("eol")
        elif n == "MssOpt":
            parts.append(f"mss {a.mss}")
        elif n == "WscaleOpt":
            parts.append(f"wscale {a.shift}")
        elif n == "SackPermOpt":
            parts.append("sackOK")
        elif n == "SackOpt":
            parts.append("sack " + " ".join(f"{(x - REMOTE_ISN) & MASK}:{(y - REMOTE_ISN) & MASK}"
                                            for x, y in a.blocks))
        elif n == "TimestampOpt":
            parts.append(f"TS val {a.tsval} ecr {a.tsecr}")
        else:
            parts.append(a.summary())
    return "<" + ",".join(parts) + ">"


def _describe_script(pkt: Packet) -> str:
    b = pkt.body
    if isinstance(b, TcpPacket):
        s = f"{b.flags or '-'} {b.seq}:{b.end_seq}({b.length})"
        if b.ack is not None:
            s += f" ack {b.ack}"
        if b.window is not None:
            s += f" win {b.window}"
        if b.options is None:
            s += " <...>"
        elif b.options:
            s += " " + _opts_script(list(b.options))
        return s
    if isinstance(b, UdpPacket):
        return f"udp ({b.length})"
    return f"icmp {b.type} {b.code or ''}".rstrip()


def _describe(out: _Out, runner: Runner | None = None) -> str:
    """An outbound packet in script terms (relative sequence numbers when the flow is known)."""
    if out.proto == 6:
        try:
            v = TcpView(out.l4)
        except MalformedPacket:
            return "malformed TCP"
        fl = runner.flows.get((v.src_port, v.dst_port)) if runner is not None else None
        isn = fl.local_isn if fl is not None and fl.local_isn is not None else 0
        seq = (v.seq - isn) & MASK
        s = f"{_flags_text(v.flags)} {seq}:{(seq + len(v.payload)) & MASK}({len(v.payload)})"
        if v.flags & 0x10:
            rel = fl.remote_isn if fl is not None and not v.flags & 0x02 else 0
            s += f" ack {(v.ack - REMOTE_ISN - rel) & MASK}"
        s += f" win {v.window}"
        try:
            opts = v.options()
        except MalformedPacket:
            opts = []
        if opts:
            s += " " + _opts_live(opts, fl)
        return s
    if out.proto == 17:
        return f"udp ({len(out.l4) - 8})"
    if out.proto in (1, 58) and len(out.l4) >= 2:
        return f"icmp type {out.l4[0]} code {out.l4[1]}"
    return f"IP protocol {out.proto}"


def run_script(path: str | Path, *, tolerance: float | None = None,
               pcap: str | Path | None = None) -> Result:
    """Parse and run one script: a :class:`Result` whatever happens (parse errors included)."""
    from .parser import parse_file

    try:
        script = parse_file(path)
    except ScriptError as e:
        return Result(str(path), "ERROR", str(e), e.line)
    try:
        runner = Runner(script, tolerance=tolerance, pcap=pcap)
    except Unsupported as u:
        return Result(str(path), "UNSUPPORTED", f"{path}: unsupported: {u}")
    except ValueError as e:  # a header option's value: --local_ip=nonsense
        return Result(str(path), "ERROR", f"{path}: bad option: {e}")
    try:
        return runner.run()
    except Exception as e:  # noqa: BLE001 - a runner bug must not stop the other scripts
        last = traceback.format_exception_only(type(e), e)[-1].strip()
        return Result(str(path), "ERROR", f"{path}:{runner._line}: internal error: {last}",
                      runner._line)
