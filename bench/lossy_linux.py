#!/usr/bin/env python3
"""Bulk TCP through one lossy path: stacklab -> Linux against Linux -> Linux (issue 17).

Needs root (network namespaces, veth, TAP) and says so otherwise. The path is 5 % random loss
each way and 10 ms of delay each way (20 ms RTT); this kernel has no ``netem``, so the
impairment is a relay written here: a Python process in its own namespace that copies frames
between two interfaces through AF_PACKET sockets, dropping each IPv4 frame with probability
``--loss`` (a seeded ``random.Random`` per direction, so every run, Linux's and stacklab's alike,
sees the same loss pattern: the n-th IPv4 frame each way is lost or not the same for both)
and holding each for ``--delay``. ARP frames pass untouched (a lost ARP would only add a
retransmitted SYN, not measure TCP).

Everything lives in namespaces this script creates and deletes (``sll<pid>...``), with
addresses from 10.215.0.0/24, nothing on the host's interfaces:

* ``...a``: the Linux sender (veth ``a0``, 10.215.0.1), ``...b``: the Linux receiver (veth
  ``b0``, 10.215.0.2), ``...r``: the relay between ``ra`` (peer of ``a0``) or ``rs`` and ``rb``
  (peer of ``b0``); ``...s``: stacklab's TAP device ``tap0`` (stacklab, 10.215.0.3) in a bridge
  with ``sv``, the peer of ``rs``. Segmentation and checksum offloads are off on the veth ends
  (``SIOCETHTOOL``: ``ethtool`` is not installed), so each frame the relay sees is one
  wire-sized segment and its loss hits one segment.
* stacklab's TAP device has its offloads on (TSO, checksum offload, ACK filtering: as Linux's
  sender has its NIC's; ``--no-offload``: plain frames): the kernel cuts its GSO frames into
  segments where the bridge sends them out of ``sv`` (which has no TSO/GSO), before the relay,
  as it cuts the Linux sender's (its TCP builds segment-sized packets for ``a0``).
* Linux -> Linux: a Python sender (``sendall`` of 256 KiB, ``TCP_CONGESTION`` set per socket)
  in ``a`` to a receiver in ``b``; stacklab -> Linux: stacklab on the TAP device
  (:class:`~stacklab.api.realtime.RealtimeStack`, plain frames, its default buffers and
  autotuning) with ``congestion`` set on the connection, to the same receiver.

Goodput is payload bytes per second from ``connect`` to the receiver's close, ``--size`` bytes
(16 MiB). Each congestion control runs with CUBIC, and with BBR where it is available: Linux's
``tcp_bbr`` (listed in ``tcp_available_congestion_control``; there is no ``modprobe`` here)
and stacklab's (:func:`~stacklab.stack.tcp.congestion.available_congestion`). The relay's own
ceiling is measured too: the same transfers with no loss, 20 ms RTT; the relay's counters say
how many frames it lost on purpose and how many the kernel dropped because it read too slowly,
and how long each frame waited in its socket before the relay read it (the kernel's receive
timestamp, ``SO_TIMESTAMPNS``, against the read: the mean and the worst, each way), so a relay
slower for one sender than for the other would show. For stacklab's rows, the CPU time of its
loop thread during the transfer and the time it was runnable but waited for a CPU
(``/proc/thread-self/schedstat``): Linux's sender runs in the kernel, stacklab's is one Python
thread among the machine's other processes. ``--repeats N``: each cell the best of N runs,
the runs interleaved. ``--nice N`` runs everything the bench starts at that niceness, the same
for every sender: the relay, the Linux peers (whose TCP works in the kernel, much of it in
softirq, ahead of any process) and stacklab's loop thread (which otherwise competes with every
other load on the machine for its CPU); with the scheduler's autogroups (each session a group,
niceness counting only inside it) their groups get that niceness too (``/proc/PID/autogroup``).
``--trace FILE``: each sender of the lossy BBR cells samples itself every 5 ms (Linux's through
``TCP_INFO`` and ``TCP_CC_INFO`` in a thread of the sending process, stacklab's in a task of its
loop), the samples go to FILE as JSON, and the bench prints, per cell, the data delivered at each
tenth of a second of its best run, where one sender falls behind the other, and for stacklab
its loop's stalls (a 5 ms sleep that came back 20 ms or more late, with the loop's CPU time in
between: the loop was busy, not waiting).

Usage: ``sudo python3 bench/lossy_linux.py [--quick] [--size 16MiB] [--loss 0.05] [--delay 10ms]
[--repeats 1] [--nice 0] [--no-offload] [--trace FILE]`` (with ``--nice``, under ``setsid`` when
started from a shell).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# the Linux ends are tap_tcp's PEER: a sender (with a congestion control), a receiver to EOF
from bench.common import loadavg, machine_line, table  # noqa: E402
from bench.tap_tcp import (  # noqa: E402
    PEER,
    Env,
    environment_problem,
    finish,
    send_all,
    sh,
    wait_ready,
)
from stacklab.net.units import parse_duration, parse_size  # noqa: E402
from stacklab.stack.tcp.seq import seq_sub  # noqa: E402
from stacklab.wire.addr import ip_bytes  # noqa: E402

PORT = 5301
NET = "10.215.0"
LINUX_A, LINUX_B, STACK = f"{NET}.1", f"{NET}.2", f"{NET}.3"
RELAY_LIMIT = 900  # seconds: the relay exits by itself after that, whatever happens
TRANSFER_TIMEOUT = 300  # seconds per transfer

# Run in each namespace: IPv6 off (no router solicitations or DAD through the relay), and TSO,
# GSO, GRO and checksum offload off on the given devices (legacy ETHTOOL_S* ioctls).
PREP = r"""
import ctypes, fcntl, socket, struct, sys
for conf in ("all", "default"):
    with open(f"/proc/sys/net/ipv6/conf/{conf}/disable_ipv6", "w") as fp:
        fp.write("1")
SIOCETHTOOL = 0x8946
STSO, SGSO, SGRO, STXCSUM = 0x1F, 0x24, 0x2C, 0x17
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for dev in sys.argv[1:]:
    for cmd in (STSO, SGSO, SGRO, STXCSUM):
        value = ctypes.create_string_buffer(struct.pack("II", cmd, 0), 8)
        ifr = bytearray(40)
        ifr[:len(dev)] = dev.encode()
        struct.pack_into("P", ifr, 16, ctypes.addressof(value))
        fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifr)
"""

# The impairment relay: frames between two interfaces, each IPv4 frame lost with probability
# `loss` (seeded, per direction) and delayed `delay` seconds. It prints "ready", and its
# counters as JSON 200 ms plus `delay` after its stdin closes (or after `limit` seconds), with the
# read lag: how long frames waited between the kernel's receive timestamp and the relay's read
# (ms, mean and max). Until then it forwards what comes: the last ACK of a connection, which
# the receiver needs to leave LAST-ACK (else it holds the connection's ports and answers the
# next SYN that reuses them with an ACK: a reset and a SYN retransmitted after 1 s).
RELAY = r"""
import collections, json, os, random, select, socket, struct, sys, time
left, right = sys.argv[1], sys.argv[2]
loss, delay, seed, limit = float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], float(sys.argv[6])
ETH_P_ALL, PACKET_OUTGOING, SOL_PACKET, PACKET_STATISTICS = 3, 4, 263, 6
SO_RCVBUFFORCE, SO_SNDBUFFORCE, SO_TIMESTAMPNS = 33, 32, 35
def bound(dev):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    s.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 16 << 20)
    s.bind((dev, ETH_P_ALL))  # (Python puts the protocol in network order itself)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)  # each frame's arrival, for the lag
    s.setblocking(False)
    return s
L, R = bound(left), bound(right)
# seeded by direction, not by interface: the Linux sender's relay ("ra") and stacklab's ("rs")
# drop the same frames of the same positions in each direction (one loss process for both)
ways = {L.fileno(): (L, R, random.Random(f"{seed}/fwd"), collections.deque(), "lr"),
        R.fileno(): (R, L, random.Random(f"{seed}/back"), collections.deque(), "rl")}
n = {f"{w}.{k}": 0 for w in ("lr", "rl") for k in ("frames", "lost", "tx_fail", "oversize")}
lag = {"lr": [0.0, 0.0], "rl": [0.0, 0.0]}  # seconds: sum, max
stdin = sys.stdin.fileno()
print("ready", flush=True)
end = time.monotonic() + limit
inputs = [L, R, stdin]
while time.monotonic() < end:
    now = time.monotonic()
    due = [q[0][0] for _, _, _, q, _ in ways.values() if q]
    timeout = max(0.0, min(due) - now) if due else 0.2
    ready, _, _ = select.select(inputs, [], [], timeout)
    now = time.monotonic()
    for r in ready:
        if r == stdin:
            if not os.read(stdin, 64):  # told to stop: the last frames still get through
                inputs.remove(stdin)
                end = min(end, now + delay + 0.2)
            continue
        src, dst, rng, q, w = ways[r.fileno()]
        for _ in range(256):
            try:
                frame, anc, _, addr = src.recvmsg(65536, 64)
            except BlockingIOError:
                break
            if addr[2] == PACKET_OUTGOING:
                continue
            n[w + ".frames"] += 1
            if anc:
                sec, nsec = struct.unpack_from("qq", anc[0][2])
                late = time.time() - sec - nsec * 1e-9
                lag[w][0] += late
                lag[w][1] = max(lag[w][1], late)
            if len(frame) > 1514:
                n[w + ".oversize"] += 1
            if frame[12:14] == b"\x08\x00" and rng.random() < loss:
                n[w + ".lost"] += 1
                continue
            q.append((now + delay, frame))
    for src, dst, rng, q, w in ways.values():
        while q and q[0][0] <= now:
            try:
                dst.send(q.popleft()[1])
            except OSError:
                n[w + ".tx_fail"] += 1
for name, s in (("lr", L), ("rl", R)):
    st = s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
    n[name + ".kernel_drops"] = struct.unpack("II", st)[1]
    n[name + ".lag_mean_ms"] = 1e3 * lag[name][0] / max(1, n[name + ".frames"])
    n[name + ".lag_max_ms"] = 1e3 * lag[name][1]
print(json.dumps(n), flush=True)
"""

# A Linux sender (tap_tcp's PEER "send") that samples its own connection every 5 ms from a
# thread: (seconds, bytes acked, cwnd segments, srtt ms, pacing rate, BBR's bandwidth estimate
# (TCP_CC_INFO: struct tcp_bbr_info, 0 for CUBIC), BBR's pacing gain x 256).
TRACED_SENDER = r"""
import json, socket, struct, sys, threading, time
host, port, n, cc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
TCP_CC_INFO = 26
data = memoryview(bytes(range(256)) * 1024)
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())
s.settimeout(120)
samples, done = [], threading.Event()
def sample(t0):
    for _ in range(60000):  # 5 minutes at most
        if done.wait(0.005):
            return
        i = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
        bw = gain = 0
        if cc == "bbr":
            lo, hi, _, gain, _ = struct.unpack("5I", s.getsockopt(socket.IPPROTO_TCP,
                                                                  TCP_CC_INFO, 20))
            bw = hi << 32 | lo
        samples.append((time.perf_counter() - t0, struct.unpack_from("Q", i, 120)[0],
                        struct.unpack_from("I", i, 80)[0], struct.unpack_from("I", i, 68)[0] / 1e3,
                        struct.unpack_from("Q", i, 104)[0], bw, gain,
                        # the last rate sample app-limited, segments in flight (unacked -
                        # sacked - lost + retrans), bytes unsent, the peer's window
                        i[7] & 1, (lambda u, sk, lo, rx: u - sk - lo + rx)(
                            *struct.unpack_from("4I", i, 24)),
                        struct.unpack_from("I", i, 144)[0], struct.unpack_from("I", i, 228)[0]))
t0 = time.perf_counter()
threading.Thread(target=sample, args=(t0,), daemon=True).start()
s.connect((host, port))
left = n
while left:
    k = min(left, len(data))
    s.sendall(data[:k])
    left -= k
s.shutdown(socket.SHUT_WR)
buf = bytearray(65536)
while s.recv_into(buf):
    pass
t1 = time.perf_counter()
done.set()
info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
s.close()
print(json.dumps({"bytes": n, "seconds": t1 - t0, "samples": samples,
                  "retransmits": int.from_bytes(info[100:104], "little")}), flush=True)
"""


class Lossy:
    """The three namespaces, the veth pairs and the relay runs."""

    def __init__(self, env: Env, nice: int = 0, offload: bool = True) -> None:
        env.tag = f"sll{env.tag[3:]}"  # sll<pid>: this bench's own names
        self.env = env
        self.offload = offload  # stacklab's TAP device with TSO/checksum offload (the bridge cuts)
        self.runs = 0  # stacklab transfers so far
        self.nice = nice  # of every process and thread that moves the transfers
        self.a, self.b, self.r = env.ns("a"), env.ns("b"), env.ns("r")
        self.s = env.ns("s")  # stacklab's TAP device, bridged to the relay's "rs"
        sh("ip", "link", "add", "a0", "netns", self.a, "type", "veth", "peer", "name", "ra",
           "netns", self.r)
        sh("ip", "link", "add", "b0", "netns", self.b, "type", "veth", "peer", "name", "rb",
           "netns", self.r)
        sh("ip", "link", "add", "sv", "netns", self.s, "type", "veth", "peer", "name", "rs",
           "netns", self.r)
        sh("ip", "-n", self.a, "addr", "add", f"{LINUX_A}/24", "dev", "a0")
        sh("ip", "-n", self.b, "addr", "add", f"{LINUX_B}/24", "dev", "b0")
        sh("ip", "-n", self.s, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.s, "link", "set", "sv", "master", "br0")
        for ns, devs in ((self.a, ["a0"]), (self.b, ["b0"]), (self.r, ["ra", "rb", "rs"]),
                         (self.s, ["sv"])):
            self.run_in(ns, PREP, *devs)
            for dev in devs:
                sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", self.s, "link", "set", "br0", "up")

    def run_in(self, ns: str, program: str, *args: str) -> None:
        sh("ip", "netns", "exec", ns, sys.executable, "-c", program, *args)

    def spawn(self, ns: str, program: str, *args: str, stdin: bool = False
              ) -> subprocess.Popen[str]:
        nice = ["nice", "-n", str(self.nice)] if self.nice else []
        p = subprocess.Popen(["ip", "netns", "exec", ns, *nice, sys.executable, "-c", program,
                              *args],
                             stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        self.env.procs.append(p)
        if self.nice:
            autogroup_nice(p.pid, self.nice)  # its own session: its own group
        return p

    def relay(self, left: str, loss: float, delay: float, seed: int) -> subprocess.Popen[str]:
        p = self.spawn(self.r, RELAY, left, "rb", str(loss), str(delay), str(seed),
                       str(RELAY_LIMIT), stdin=True)
        wait_ready(p)
        return p

    @staticmethod
    def relay_counters(p: subprocess.Popen[str]) -> dict[str, int]:
        out = finish(p, 30)  # (communicate closes the relay's stdin: it stops and reports)
        if out["lr.oversize"] or out["rl.oversize"]:
            raise RuntimeError(f"frames above the MTU reached the relay (offloads on?): {out}")
        return out

    def linux(self, cc: str, size: int, loss: float, delay: float, seed: int,
              trace: bool = False) -> dict[str, Any]:
        relay = self.relay("ra", loss, delay, seed)
        sink = self.spawn(self.b, PEER, "sink", str(PORT))
        wait_ready(sink)
        args = (TRACED_SENDER,) if trace else (PEER, "send")
        sent = finish(self.spawn(self.a, *args, LINUX_B, str(PORT), str(size), cc),
                      TRANSFER_TIMEOUT)
        got = finish(sink, 30)
        assert got["bytes"] == size, got
        return {"seconds": sent["seconds"], "retransmits": sent["retransmits"],
                "relay": self.relay_counters(relay), "trace": sent.get("samples")}

    def stacklab(self, cc: str, size: int, loss: float, delay: float, seed: int,
                 trace: bool = False) -> dict[str, Any]:
        from stacklab.api.realtime import RealtimeStack
        from stacklab.cli.tap import DeviceSpec, TapConfig, build_node
        from stacklab.device.tap import TapDevice

        tap = TapDevice.open("tap0", netns=self.s, up=True, mtu=1500, offload=self.offload)
        try:
            sh("ip", "-n", self.s, "link", "set", "tap0", "master", "br0")
            cfg = TapConfig(router=False, devices=[DeviceSpec("tap0", [f"{STACK}/24"], 1500)],
                            gateways=[], services=[], mac=None, mtu=None)
            # each transfer's node its own seed: its own ephemeral port and ISN, as each Linux
            # sender's (one connection's ports reused by the next meet its remains)
            self.runs += 1
            node = build_node(cfg, seed=seed * 1000 + self.runs)
            stack = RealtimeStack(node, [tap]).start()
            try:
                relay = self.relay("rs", loss, delay, seed)
                sink = self.spawn(self.b, PEER, "sink", str(PORT))
                wait_ready(sink)
                samples: list[tuple[Any, ...]] | None = [] if trace else None
                seconds, retransmits, cpu = stack.submit(
                    _send(node, cc, size, self.nice, samples), timeout=TRANSFER_TIMEOUT)
                got = finish(sink, 30)
                assert got["bytes"] == size, got
                return {"seconds": seconds, "retransmits": retransmits, "cpu": cpu,
                        "relay": self.relay_counters(relay), "trace": samples}
            finally:
                stack.stop()
        finally:
            tap.close()


def autogroup_nice(pid: int | str, nice: int) -> None:
    """Give the scheduler autogroup of process ``pid`` (its session) niceness ``nice``; nothing
    where the kernel has no autogroups. A child started in a new session is waited for (100 ms
    at most) until it is its session's leader, so the group is its own, not ours."""
    try:
        if pid != "self":
            for _ in range(100):
                with open(f"/proc/{pid}/stat") as fp:
                    if int(fp.read().rsplit(")", 1)[1].split()[3]) == pid:  # the session id
                        break
                time.sleep(0.001)
        with open(f"/proc/{pid}/autogroup", "w") as fp:
            fp.write(str(nice))
    except (OSError, ValueError):
        pass


def _schedstat() -> tuple[float, float]:
    """This thread's CPU time and its time runnable but waiting for a CPU (seconds)."""
    with open("/proc/thread-self/schedstat") as fp:
        run, wait = fp.read().split()[:2]
    return int(run) / 1e9, int(wait) / 1e9


async def _sample(tcb: Any, samples: list[tuple[Any, ...]], done: asyncio.Event) -> None:
    """Every 5 ms until ``done``: (seconds, bytes acked, cwnd segments, srtt ms, pacing rate,
    BBR's bandwidth estimate, its mode or the controller's name, the loop thread's CPU
    seconds): the columns of TRACED_SENDER's, and the loop's own time."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for _ in range(60000):  # 5 minutes at most
        cc = tcb.cc
        samples.append((loop.time() - t0, tcb.stats.bytes_acked, cc.cwnd // tcb.snd_mss,
                        (tcb.rtt.srtt or 0.0) * 1e3, cc.pacing_rate or 0.0,
                        getattr(cc, "max_bw", 0.0), getattr(cc, "mode", cc.name),
                        time.thread_time(),
                        # TRACED_SENDER's last four: the app-limited mark (rate.py) on,
                        # segments in flight, bytes unsent, the peer's window
                        int(bool(tcb.rate is not None and tcb.rate.app_limited)),
                        tcb._in_flight() // tcb.snd_mss,
                        len(tcb.sendbuf.data) - seq_sub(tcb.snd_nxt, tcb.snd_data_una),
                        tcb.snd_wnd))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 0.005)
        if done.is_set():
            return


async def resolve_arp(node: Any, addr: str, ifname: str = "tap0", timeout: float = 3.0) -> float:
    """Resolve ``addr``'s MAC before the clock starts (an ARP exchange alone: no IPv4 frame, so
    the relay's loss pattern is untouched): each stacklab run is a new node with an empty
    neighbour cache, while the Linux sender's namespace keeps its entry from run to run (the
    20 ms the exchange takes through the relay would count only against stacklab). Returns the
    seconds it took."""
    ip = ip_bytes(addr)
    iface = next(i for i in node.interfaces if i.name == ifname)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    iface.arp.resolve(ip, None, node.now())  # (no packet queued: the request alone)
    node.driving().kick()  # the request goes out at the driver's flush
    for _ in range(int(timeout / 0.001)):
        if iface.arp.usable(ip, node.now()) is not None:
            return loop.time() - t0
        await asyncio.sleep(0.001)
    raise RuntimeError(f"no ARP reply from {addr} in {timeout} s")


async def _send(node: Any, cc: str, size: int, nice: int = 0,
                samples: list[tuple[Any, ...]] | None = None
                ) -> tuple[float, int, tuple[float, float]]:
    """stacklab's sender: ``size`` bytes in 256 KiB writes, half-close, wait for the close;
    the seconds, the retransmissions, and the loop thread's CPU and CPU-wait seconds. ``nice``:
    the loop thread's niceness (its own: a new stack thread per transfer). ``samples``: a list
    for the connection's samples (:func:`_sample`), None for none."""
    if nice:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    chunk = memoryview(bytes(range(256)) * 1024)
    loop = asyncio.get_running_loop()
    await resolve_arp(node, LINUX_B)
    t0 = loop.time()
    run0, wait0 = _schedstat()
    config = node.tcp.config.replace(congestion=cc, nodelay=True)
    reader, writer = await node.open_connection(LINUX_B, PORT, config=config)
    done = asyncio.Event()
    sampler = None if samples is None else \
        asyncio.ensure_future(_sample(writer.get_extra_info("tcb"), samples, done))
    await send_all(writer, chunk, size)
    await reader.read()
    seconds = loop.time() - t0
    run1, wait1 = _schedstat()
    if sampler is not None:
        done.set()
        await sampler
    retransmits = int(writer.get_extra_info("tcp_info")["retransmits"])
    writer.close()
    return seconds, retransmits, (run1 - run0, wait1 - wait0)


def linux_algorithms() -> list[str]:
    with open("/proc/sys/net/ipv4/tcp_available_congestion_control") as fp:
        return fp.read().split()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="512 KiB per transfer (a smoke run)")
    ap.add_argument("--size", default=None, help="bytes per transfer (default 16MiB)")
    ap.add_argument("--loss", type=float, default=0.05, help="random loss each way (0.05)")
    ap.add_argument("--delay", default="10ms", help="delay each way (10ms: a 20 ms RTT)")
    ap.add_argument("--seed", type=int, default=1, help="the relay's loss pattern")
    ap.add_argument("--repeats", type=int, default=1, help="each cell the best of N runs")
    ap.add_argument("--no-offload", action="store_true",
                    help="stacklab's TAP device without offloads (plain frames)")
    ap.add_argument("--nice", type=int, default=0,
                    help="niceness of the relay, the peers and stacklab's thread (0)")
    ap.add_argument("--trace", metavar="FILE", default=None,
                    help="sample the lossy BBR cells' senders every 5 ms, samples to FILE (JSON)")
    args = ap.parse_args(argv)
    problem = environment_problem()
    if problem:
        print(f"lossy_linux: skipped: {problem}")
        return 0
    from stacklab.stack.tcp.congestion import available_congestion

    size = parse_size(args.size or ("512KiB" if args.quick else "16MiB"), "size")
    delay = parse_duration(args.delay, "delay")
    ours, theirs = available_congestion(), linux_algorithms()
    print(machine_line())
    load0 = loadavg()
    notes: list[str] = []
    best: dict[tuple[str, str, float], dict[str, Any]] = {}
    runs: dict[tuple[str, str, float], list[float]] = {}  # every run's MB/s, in order
    cells = []
    for loss in (0.0, args.loss):
        for cc in ("cubic", "bbr"):
            for who, known in (("Linux", cc in theirs), ("stacklab", cc in ours)):
                if known:
                    cells.append((who, cc, loss))
                elif loss == 0.0:
                    notes.append(f"{who} -> Linux, {cc}: not measured ({cc} not available)")
    env = Env()
    try:
        if args.nice:  # stacklab's thread runs in this process: its group, not the caller's
            if os.getsid(0) != os.getpid():
                try:
                    os.setsid()
                except OSError:  # a process group leader (a shell's job): use setsid(1)
                    print("lossy_linux: --nice applies to the caller's session too (setsid)")
            autogroup_nice("self", args.nice)
        path = Lossy(env, args.nice, offload=not args.no_offload)
        for _ in range(args.repeats):  # interleaved: each round measures every cell once
            for who, cc, loss in cells:
                run = path.linux if who == "Linux" else path.stacklab
                traced = bool(args.trace) and loss > 0 and cc == "bbr"
                r = run(cc, size, loss, delay, args.seed, trace=traced)
                key = (who, cc, loss)
                runs.setdefault(key, []).append(size / r["seconds"] / 1e6)
                if key not in best or r["seconds"] < best[key]["seconds"]:
                    best[key] = r
    finally:
        env.close()
    rows: list[tuple[str, ...]] = []
    goodput: dict[tuple[str, str, float], float] = {}
    for key in cells:
        who, cc, loss = key
        r = best[key]
        mbs = goodput[key] = size / r["seconds"] / 1e6
        c = r["relay"]
        cpu = "-" if "cpu" not in r else f"{r['cpu'][0]:.2f}/{r['cpu'][1]:.2f}"
        rows.append((f"{who} -> Linux, {cc}", f"{loss:.0%}", f"{mbs:.2f}", str(r["retransmits"]),
                     f"{c['lr.lost']}/{c['lr.frames']}", f"{c['rl.lost']}/{c['rl.frames']}",
                     str(c["lr.kernel_drops"] + c["rl.kernel_drops"]
                         + c["lr.tx_fail"] + c["rl.tx_fail"]),
                     f"{c['lr.lag_mean_ms']:.1f}/{c['lr.lag_max_ms']:.0f}",
                     f"{c['rl.lag_mean_ms']:.1f}/{c['rl.lag_max_ms']:.0f}", cpu))
    print(f"bulk TCP goodput through the relay: {size / 2**20:g} MiB, RTT {2 * delay * 1e3:g} ms, "
          f"loss {args.loss:.0%} each way (seed {args.seed}), MTU 1500, best of {args.repeats}, "
          f"nice {args.nice}, stacklab's TAP offloads {'off' if args.no_offload else 'on'}")
    print(table(["sender -> receiver, cc", "loss", "MB/s", "retransmits", "lost/frames fwd",
                 "lost/frames back", "relay overruns", "relay lag fwd ms", "relay lag back ms",
                 "sender cpu/wait s"], rows, align="<>>>>>>>>>"))
    print("relay lag: mean/max wait of a frame in the relay's socket; sender cpu/wait: "
          "stacklab's loop thread, seconds on a CPU / runnable but waiting for one")
    if args.repeats > 1:  # the spread the best hides (Linux's BBR moves between runs)
        for key in cells:
            who, cc, loss = key
            print(f"every run, {who} -> Linux, {cc}, {loss:.0%}: "
                  + " ".join(f"{v:.2f}" for v in runs[key]) + " MB/s")
    for cc in ("cubic", "bbr"):
        ref, got = goodput.get(("Linux", cc, args.loss)), goodput.get(("stacklab", cc, args.loss))
        if ref and got:
            print(f"{cc}: stacklab / Linux = {got / ref:.2f} under loss "
                  f"(target >= 1: {'met' if got >= ref else 'NOT met'})")
    ceiling = max((v for (_, _, loss), v in goodput.items() if loss == 0.0), default=0.0)
    print(f"the relay's clean-path ceiling (best with no loss): {ceiling:.2f} MB/s")
    for n in notes:
        print(n)
    if args.trace:
        traced = {key: r["trace"] for key, r in best.items() if r.get("trace")}
        for line in trace_summary(traced):
            print(line)
        with open(args.trace, "w") as fp:
            json.dump([{"sender": who, "cc": cc, "loss": loss, "samples": samples}
                       for (who, cc, loss), samples in traced.items()], fp)
        print(f"samples (best run of each traced cell) in {args.trace}")
    print(f"load average before/after: {load0} / {loadavg()}")
    return 0


STALL = 0.020  # seconds: a 5 ms sample that came this late found the loop busy or descheduled


def trace_summary(traced: dict[tuple[str, str, float], list[Any]]) -> list[str]:
    """Lines for ``--trace``: each traced cell's MB delivered at each tenth of a second, and
    for stacklab's the loop's stalls (samples 20 ms or more apart: how many, their total, and
    the loop thread's CPU time in them: near the total means busy, not waiting)."""
    lines = []
    for (who, cc, _), samples in traced.items():
        marks, i = [], 0
        for k in range(1, int(samples[-1][0] * 10) + 2):
            while i + 1 < len(samples) and samples[i + 1][0] <= k / 10:
                i += 1
            marks.append(f"{samples[i][1] / 1e6:.1f}")
        lines.append(f"trace, {who} -> Linux, {cc}: MB acked at each 0.1 s: {' '.join(marks)}")
        tail = 7 if who == "Linux" else 8  # where the last four columns start
        mid = [sorted(x[c] for x in samples)[len(samples) // 2]
               for c in (tail + 1, tail + 2, tail + 3, 2)]
        lines.append(f"trace, {who} -> Linux, {cc}: app-limited in "
                     f"{sum(x[tail] for x in samples) / len(samples):.0%} of the samples; "
                     f"median in flight {mid[0]} segments, unsent {mid[1]} B, "
                     f"peer's window {mid[2]} B, cwnd {mid[3]}")
        if who == "stacklab":
            gaps = [(b[0] - a[0], b[7] - a[7]) for a, b in zip(samples, samples[1:], strict=False)
                    if b[0] - a[0] >= STALL]
            lines.append(f"trace, stacklab -> Linux, {cc}: {len(gaps)} loop stalls >= "
                         f"{STALL * 1e3:g} ms, {sum(g for g, _ in gaps) * 1e3:.0f} ms in all, "
                         f"{sum(c for _, c in gaps) * 1e3:.0f} ms of it on the CPU; "
                         f"srtt max {max(x[3] for x in samples):.0f} ms")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
