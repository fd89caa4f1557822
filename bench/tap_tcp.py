#!/usr/bin/env python3
"""Bulk TCP between Linux and stacklab over a TAP device, against Linux <-> Linux over veth.

Needs root (network namespaces, TAP). Everything happens in namespaces this script creates and
deletes (``slb<pid>...``), with addresses from 10.214.0.0/16; nothing touches the host's own
interfaces. One run measures, with the *same* Linux sender and receiver (a small Python
program using ``sendall``/``recv_into`` of 256 KiB, run with ``ip netns exec``):

* Linux -> Linux over a veth pair between two namespaces: the reference;
* Linux -> stacklab over TAP: the Linux sender in a namespace holding the TAP device, stacklab
  (this process, :class:`~stacklab.api.realtime.RealtimeStack` on its own thread) runs a discard
  server (asyncio ``create_server``) that closes after the sender's FIN;
* stacklab -> Linux over TAP: stacklab connects to the Linux receiver, writes ``--size`` bytes in
  256 KiB writes, half-closes and waits for the receiver's close.

Each TAP row runs with offloads on (``IFF_VNET_HDR`` + TSO/GSO + checksum offload, outgoing
segments merged into GSO super-frames) and off (plain frames). Goodput is payload bits per
second from the sender's ``connect`` to the receiver's close (so the handshake, slow start and
the FIN exchange are in it). Best of ``--repeats``. Ratios are against the veth reference.

PyTCP 2.7.6 is measured only when it is importable by the Python named in ``$PYTCP_PYTHON``
(a side venv); it is not installed by this script.

Usage: ``sudo python3 bench/tap_tcp.py [--quick] [--size 32MiB] [--repeats 2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Profiler, loadavg, machine_line, table  # noqa: E402
from stacklab.net.units import parse_size  # noqa: E402

TARGET_MBIT = 4000.0  # issue 23: >= 4 Gbit/s Linux -> stacklab (issue 11's was 1)
TARGET_OUT_MBIT = 2000.0  # issue 23: >= 2 Gbit/s stacklab -> Linux
PORT = 5201
RCVBUF = 4 << 20  # stacklab's socket buffers in this bench (its default is 256 KiB)
LINUX4, STACK4 = "10.214.0.1", "10.214.0.2"
VETH_A, VETH_B = "10.214.1.1", "10.214.1.2"

# The Linux side: one small program for every peer, so that the sender is the same everywhere.
PEER = r"""
import json, socket, sys, time
mode = sys.argv[1]
buf = bytearray(256 * 1024)
if mode == "send":  # send HOST PORT BYTES [CONGESTION]
    host, port, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    data = memoryview(bytes(range(256)) * 1024)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if len(sys.argv) > 5:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, sys.argv[5].encode())
    s.settimeout(120)
    t0 = time.perf_counter()
    s.connect((host, port))
    left = n
    while left:
        k = min(left, len(data))
        s.sendall(data[:k])
        left -= k
    s.shutdown(socket.SHUT_WR)
    while s.recv_into(buf):
        pass
    t1 = time.perf_counter()
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    s.close()
    retrans = int.from_bytes(info[100:104], "little")  # tcpi_total_retrans
    print(json.dumps({"bytes": n, "seconds": t1 - t0, "retransmits": retrans}), flush=True)
elif mode == "sink":  # sink PORT: one connection, read to EOF, close
    port = int(sys.argv[2])
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(1)
    print("ready", flush=True)
    ls.settimeout(120)
    c, _ = ls.accept()
    c.settimeout(120)
    got = 0
    while True:
        k = c.recv_into(buf)
        if not k:
            break
        got += k
    c.close()
    print(json.dumps({"bytes": got}), flush=True)
"""


class Env:
    """The namespaces and links this run made; ``close()`` deletes them all."""

    def __init__(self) -> None:
        self.tag = f"slb{os.getpid()}"
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen[Any]] = []

    def ns(self, suffix: str) -> str:
        name = f"{self.tag}{suffix}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def peer(self, ns: str, *args: str) -> subprocess.Popen[str]:
        p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", PEER, *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        for name in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


async def send_all(writer: Any, chunk: memoryview, size: int) -> None:
    """Write ``size`` bytes as repeats of ``chunk`` (drain() after each), then the FIN."""
    left = size
    while left:
        k = min(left, len(chunk))
        writer.write(chunk[:k])
        await writer.drain()
        left -= k
    writer.write_eof()


def sh(*argv: str) -> str:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {r.stderr.strip()}")
    return r.stdout


def environment_problem() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces and TAP devices)"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    try:
        subprocess.run(["ip", "-V"], capture_output=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return "no iproute2 (ip)"
    return None


def finish(p: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise RuntimeError(f"Linux peer timed out: {err.strip()[-500:]}") from None
    if p.returncode != 0:
        raise RuntimeError(f"Linux peer failed ({p.returncode}): {err.strip()[-800:]}")
    return json.loads(out.strip().splitlines()[-1])


def wait_ready(p: subprocess.Popen[str]) -> None:
    assert p.stdout is not None
    line = p.stdout.readline()
    if line.strip() != "ready":
        raise RuntimeError(f"Linux receiver did not start: {line!r} {p.stderr.read()[-500:]}")


# -- Linux -> Linux over veth ---------------------------------------------------------------------


def veth_setup(env: Env) -> tuple[str, str]:
    a, b = env.ns("va"), env.ns("vb")
    sh("ip", "link", "add", "vetha", "netns", a, "type", "veth", "peer", "name", "vethb",
       "netns", b)
    sh("ip", "-n", a, "addr", "add", f"{VETH_A}/24", "dev", "vetha")
    sh("ip", "-n", b, "addr", "add", f"{VETH_B}/24", "dev", "vethb")
    sh("ip", "-n", a, "link", "set", "vetha", "up")
    sh("ip", "-n", b, "link", "set", "vethb", "up")
    return a, b


def veth_run(env: Env, a: str, b: str, size: int) -> float:
    sink = env.peer(b, "sink", str(PORT))
    wait_ready(sink)
    res = finish(env.peer(a, "send", VETH_B, str(PORT), str(size)), 120)
    got = finish(sink, 30)
    assert got["bytes"] == size, got
    return 8 * size / res["seconds"] / 1e6


# -- Linux <-> stacklab over TAP ------------------------------------------------------------------


class StackSide:
    """stacklab on a TAP device in namespace ``ns``, running on a background thread."""

    def __init__(self, ns: str, offload: bool) -> None:
        from stacklab.api.realtime import RealtimeStack
        from stacklab.cli.tap import DeviceSpec, TapConfig, build_node
        from stacklab.device.tap import TapDevice

        dev = "tap0"
        self.tap = TapDevice.open(dev, netns=ns, up=True, mtu=1500, offload=offload)
        cfg = TapConfig(router=False, devices=[DeviceSpec(dev, [f"{STACK4}/24"], 1500)],
                        gateways=[], services=[], mac=None, mtu=None)
        self.node = build_node(cfg, seed=11)
        self.stack = RealtimeStack(self.node, [self.tap]).start()
        from stacklab.stack.tcp.config import TcpConfig

        # Linux autotunes its buffers up to 6 MiB (tcp_rmem): give stacklab's sockets room too
        self.config = TcpConfig(recv_buffer=RCVBUF, send_buffer=RCVBUF, nodelay=True)

    def close(self) -> None:
        self.stack.stop()
        self.tap.close()

    def serve_discard(self) -> dict[str, int]:
        got = {"bytes": 0}

        class Discard(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def data_received(self, data: bytes) -> None:
                got["bytes"] += len(data)

            def eof_received(self) -> bool:
                return False  # close: our FIN tells the sender everything arrived

        async def start() -> None:
            await self.node.create_server(Discard, port=PORT, config=self.config)

        self.stack.submit(start(), timeout=10)
        return got

    def cpu(self) -> float:
        """CPU seconds the stack's loop thread has used (the load of the machine's other
        users does not count, unlike the wall clock)."""
        return self.stack.call(time.thread_time)

    def send(self, size: int) -> float:
        chunk = memoryview(bytes(range(256)) * 1024)

        async def run() -> float:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            reader, writer = await self.node.open_connection(LINUX4, PORT, config=self.config)
            await send_all(writer, chunk, size)
            await reader.read()
            t1 = loop.time()
            writer.close()
            return t1 - t0

        return self.stack.submit(run(), timeout=600)


def linux_to_stack(env: Env, offload: bool, size: int, repeats: int,
                   profiler: Profiler | None = None) -> tuple[float, dict]:
    ns = env.ns("t" + ("o" if offload else "p"))
    side = StackSide(ns, offload)
    try:
        sh("ip", "-n", ns, "addr", "add", f"{LINUX4}/24", "dev", "tap0")
        got = side.serve_discard()
        best = 0.0
        if profiler is not None:  # one more transfer, profiled on the stack's loop thread
            side.stack.call(profiler.__enter__)
            finish(env.peer(ns, "send", STACK4, str(PORT), str(size)), 600)
            side.stack.call(profiler.__exit__)
            got["bytes"] = 0
        for _ in range(repeats):
            before = got["bytes"]
            res = finish(env.peer(ns, "send", STACK4, str(PORT), str(size)), 600)
            assert got["bytes"] - before == size, (got, before, size)
            best = max(best, 8 * size / res["seconds"] / 1e6)
        return best, dict(side.tap.counters)
    finally:
        side.close()


def stack_to_linux(env: Env, offload: bool, size: int, repeats: int,
                   profiler: Profiler | None = None) -> tuple[float, dict]:
    """Best goodput (Mbit/s) and the device's counters; the counters also get ``cpu_ms``,
    the least CPU time the stack's thread spent on one transfer."""
    ns = env.ns("s" + ("o" if offload else "p"))
    side = StackSide(ns, offload)
    try:
        sh("ip", "-n", ns, "addr", "add", f"{LINUX4}/24", "dev", "tap0")
        best, cpu = 0.0, float("inf")
        for _ in range(repeats):
            sink = env.peer(ns, "sink", str(PORT))
            wait_ready(sink)
            c0 = side.cpu()
            seconds = side.send(size)
            cpu = min(cpu, side.cpu() - c0)
            got = finish(sink, 60)
            assert got["bytes"] == size, got
            best = max(best, 8 * size / seconds / 1e6)
        counters = dict(side.tap.counters)
        if profiler is not None:  # one more transfer, profiled on the stack's loop thread
            sink = env.peer(ns, "sink", str(PORT))
            wait_ready(sink)
            side.stack.call(profiler.__enter__)
            side.send(size)
            side.stack.call(profiler.__exit__)
            finish(sink, 60)
        return best, {**counters, "cpu_ms": round(1000 * cpu)}
    finally:
        side.close()


def pytcp_python() -> str | None:
    py = os.environ.get("PYTCP_PYTHON")
    if not py:
        return None
    r = subprocess.run([py, "-c", "import pytcp"], capture_output=True, timeout=20)
    return py if r.returncode == 0 else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="256 KiB per transfer, one run")
    ap.add_argument("--size", default=None, help="bytes per stacklab transfer (default 32MiB)")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--profile", action="store_true",
                    help="profile stacklab during one more transfer each way, offloads on")
    args = ap.parse_args(argv)
    problem = environment_problem()
    if problem:
        print(f"tap_tcp: skipped: {problem}")
        return 0
    size = parse_size(args.size, "size") if args.size else (256 << 10 if args.quick else 32 << 20)
    repeats = args.repeats or (1 if args.quick else 2)
    ref_size = max(size * 16, 64 << 20) if not args.quick else 4 << 20

    print(machine_line())
    load0 = loadavg()
    env = Env()
    rows = []
    notes = []
    prof = Profiler(True) if args.profile else None
    prof_out = Profiler(True) if args.profile else None
    try:
        a, b = veth_setup(env)
        ref = max(veth_run(env, a, b, ref_size) for _ in range(repeats))
        rows.append(("Linux -> Linux (veth)", "-", f"{ref:,.0f}", "1"))
        for offload in (True, False):
            label = "on" if offload else "off"
            rate, c = linux_to_stack(env, offload, size, repeats, prof if offload else None)
            rows.append(("Linux -> stacklab (TAP)", label, f"{rate:,.1f}", f"{rate / ref:.4f}"))
            if offload:
                notes.append(f"Linux -> stacklab, offloads on: {c['rx.frames']} frames read, "
                             f"{c['rx.gso_frames']} of them GSO super-frames, "
                             f"{c['rx.bytes'] // max(1, c['rx.frames'])} bytes per frame")
            rate, c = stack_to_linux(env, offload, size, repeats, prof_out if offload else None)
            rows.append(("stacklab -> Linux (TAP)", label, f"{rate:,.1f}", f"{rate / ref:.4f}"))
            if offload:
                notes.append(f"stacklab -> Linux, offloads on: {c['tx.frames']} writes, "
                             f"{c['tx.gso_frames']} GSO super-frames carrying "
                             f"{c['tx.gso_segments']} segments "
                             f"({c.get('tx.tso_frames', 0)} of them the TCB's TSO packets), "
                             f"{c['rx.frames']} ACKs read ({c['rx.acks_filtered']} "
                             f"of them filtered), in {repeats} transfers; the "
                             f"stack's thread used {c['cpu_ms']} ms of CPU for the cheapest "
                             f"({8 * size / c['cpu_ms'] / 1e3 if c['cpu_ms'] else 0:,.0f} "
                             "Mbit/s per CPU-second)")
    finally:
        env.close()
    py = pytcp_python()
    if py is None:
        notes.append("PyTCP 2.7.6: not measured (not installed; set PYTCP_PYTHON to the python "
                     "of a venv that has it)")
    else:
        notes.append(f"PyTCP found at {py}, but its runner is not written yet: not measured")
    print(f"bulk TCP goodput, {size / 2**20:g} MiB per stacklab transfer "
          f"({ref_size / 2**20:g} MiB for veth), MTU 1500, best of {repeats}")
    print(table(["path", "offloads", "Mbit/s", "x veth"], rows, align="<<>>"))
    best_in = max(float(r[2].replace(",", "")) for r in rows if r[0].startswith("Linux -> st"))
    print(f"target >= {TARGET_MBIT:,.0f} Mbit/s Linux -> stacklab: measured {best_in:,.1f} "
          f"({best_in / TARGET_MBIT:.2f}x of target)")
    best_out = max(float(r[2].replace(",", "")) for r in rows if r[0].startswith("stacklab"))
    print(f"target >= {TARGET_OUT_MBIT:,.0f} Mbit/s stacklab -> Linux: measured {best_out:,.1f} "
          f"({best_out / TARGET_OUT_MBIT:.2f}x of target)")
    for n in notes:
        print(n)
    print(f"load average before/after: {load0} / {loadavg()}")
    for p, way in ((prof, "Linux -> stacklab"), (prof_out, "stacklab -> Linux")):
        if p is not None:
            print(f"\nprofile of stacklab's loop thread, {way}, offloads on (own time by "
                  f"area: {p.layer_shares()})")
            print(p.top(25))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
