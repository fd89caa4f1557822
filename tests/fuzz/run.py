"""Fuzz the bench's hosts with mutated frames: coverage-guided (atheris) or seeded (no extra).

One fuzz input is a control byte and a frame. The control byte says where the frame enters
(bits 0-1: A, R's L1 port, R's L2 port), whether its checksums are recomputed after the mutation
(bit 2: else most mutations stop at the first checksum), whether a TCP segment for a live
connection gets its SEQ/ACK rebased onto the connection's RCV.NXT/SND.UNA (bit 3: the low 16
bits of each field become a signed offset, so the mutation reaches the in-window processing of
RFC 9293 §3.10.7.4), and how much virtual time passes after it (bits 4-7, x 50 ms).

    python -m tests.fuzz.run --seconds 600             # seeded mutations (make fuzz)
    python -m tests.fuzz.run --atheris --seconds 600   # coverage-guided (pip install '.[fuzz]')
    python -m tests.fuzz.run --write-corpus            # rewrite tests/fuzz/corpus from frames.py

Every exception that escapes a host is a finding: the run stops on the first one and writes the
input to ``tests/fuzz/crashes/`` (``--keep-going`` records one input per crash site and goes on,
rebuilding the bench). Every ``--verify-every`` frames the live connections must still carry data.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import random
import resource
import struct
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from stacklab.wire.ethernet import ETH_P_IPV4, ETH_P_IPV6
from stacklab.wire.ipv6 import IPv6View, walk_ext_headers
from stacklab.wire.proto import PROTO_TCP

from .bench import TARGETS, Bench, Broken, Diverted
from .frames import fix_checksums, seeds

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
CRASHES = HERE / "crashes"
FIX, REBASE = 4, 8


def encode(target: str, frame: bytes, *, fix: bool = True, rebase: bool = False,
           steps: int = 0) -> bytes:
    return bytes([TARGETS.index(target) | (FIX if fix else 0) | (REBASE if rebase else 0)
                  | steps << 4]) + frame


def seed_inputs() -> dict[str, bytes]:
    """The seed corpus as fuzz inputs, from the bench's live 4-tuples."""
    b = Bench()
    http, ssh = b.conns[0].client.local_port, b.conns[1].client.local_port
    return {name: encode(t, f, rebase=name.startswith("tcp"))
            for name, (t, f) in seeds(http, ssh).items()}


def load_corpus() -> list[bytes]:
    return [p.read_bytes() for p in sorted(CORPUS.glob("*.bin"))]


def _tcp_at(frame: bytearray) -> tuple[int, bytes, bytes] | None:
    """Where an unfragmented TCP header starts in ``frame``, with the IP addresses."""
    if len(frame) < 34:
        return None
    et = (frame[12] << 8) | frame[13]
    if et == ETH_P_IPV4 and frame[14] >> 4 == 4 and frame[23] == PROTO_TCP:
        off = 14 + (frame[14] & 15) * 4
        return off, bytes(frame[26:30]), bytes(frame[30:34])
    if et == ETH_P_IPV6 and len(frame) >= 54:
        try:
            v = IPv6View(memoryview(frame)[14:])
            upper, off, fr, _ = walk_ext_headers(v)
            src, dst = v.src, v.dst
        except Exception:  # noqa: BLE001 - left for the host to refuse
            return None
        if upper == PROTO_TCP and fr is None:
            return 14 + off, src, dst
    return None


def _s16(x: int) -> int:
    return x - 0x10000 if x & 0x8000 else x


class Session:
    """A bench fed one fuzz input at a time; rebuilt when an on-link spoof moved its path."""

    def __init__(self, seed: int = 1, verify_every: int = 1000) -> None:
        self.seed = seed
        self.verify_every = verify_every
        self.bench = Bench(seed)
        self.rebuilds = 0
        self.count = 0
        self.recent: list[bytes] = []  # the inputs since the last verify: what broke it

    def feed(self, data: bytes) -> None:
        if len(data) < 2:
            return
        ctl = data[0]
        target = TARGETS[(ctl & 3) % 3]
        frame = bytearray(data[1:])
        b = self.bench
        if ctl & REBASE:
            self._rebase(frame)
        if ctl & (FIX | REBASE):
            fix_checksums(frame)
        self.count += 1
        self.recent.append(data)
        try:
            b.inject(target, bytes(frame), (ctl >> 4) * 0.05)
            if self.count % self.verify_every == 0:
                b.verify()
                self.recent.clear()
        except Diverted:
            self.rebuild()

    def rebuild(self) -> None:
        self.rebuilds += 1
        self.recent.clear()
        stats = self.bench.stats
        self.bench = Bench(self.seed + self.rebuilds)
        self.bench.stats.update(stats)

    def _rebase(self, frame: bytearray) -> None:
        at = _tcp_at(frame)
        if at is None or len(frame) < at[0] + 20:
            return
        off, src, dst = at
        sport, dport, seq, ack = struct.unpack_from("!HHII", frame, off)
        tcb = self.bench.a.tcp.conns.get((dst, dport, src, sport))
        if tcb is None:
            return
        struct.pack_into("!II", frame, off + 4, (tcb.rcv_nxt + _s16(seq & 0xFFFF)) & 0xFFFFFFFF,
                         (tcb.snd_una + _s16(ack & 0xFFFF)) & 0xFFFFFFFF)


# -- the seeded mutator -------------------------------------------------------------------------

_INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x40, 0x10, 0x20, 8, 6, 17, 58, 44, 43, 60, 0)


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    """A few of the usual byte-level mutations (libFuzzer's menu), the control byte included."""
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 5))):
        k = rng.randrange(9)
        n = len(out)
        if k <= 1 and n:  # flip a bit (favouring the headers)
            i = rng.randrange(min(n, 80)) if rng.random() < 0.7 else rng.randrange(n)
            out[i] ^= 1 << rng.randrange(8)
        elif k == 2 and n:
            out[rng.randrange(n)] = rng.choice(_INTERESTING)
        elif k == 3 and n:
            out[rng.randrange(n)] = rng.randrange(256)
        elif k == 4 and n > 2:  # a 16-bit field: lengths, ports, offsets
            i = rng.randrange(n - 1)
            out[i:i + 2] = (rng.choice((0, 1, 0xFFFF, 0x7FFF, 0x8000, n, n - 14, rng.randrange(
                0x10000))) & 0xFFFF).to_bytes(2, "big")
        elif k == 5 and n > 1:  # truncate
            del out[rng.randrange(1, n):]
        elif k == 6:  # insert bytes
            i = rng.randrange(n + 1)
            out[i:i] = rng.randbytes(rng.randrange(1, 16))
        elif k == 7 and n > 2:  # delete bytes
            i = rng.randrange(1, n)
            del out[i:i + rng.randrange(1, 16)]
        else:  # splice the tail of another input
            other = rng.choice(pool)
            i = rng.randrange(1, max(2, n))
            out[i:] = other[min(i, len(other)):]
    return bytes(out)


def crash_key(exc: BaseException) -> str:
    """Where in stacklab an exception was raised: its type, innermost stacklab function and
    line."""
    site = "?"
    for fs in traceback.extract_tb(exc.__traceback__):
        if "/stacklab/" in fs.filename:
            site = f"{fs.filename.rsplit('/stacklab/', 1)[1]}:{fs.name}:{fs.lineno}"
    return f"{type(exc).__name__}@{site}"


# Crashes found and reported, not yet fixed (issue 20 items): crash-site prefix -> item. The
# short runs tolerate these and only these; tests/fuzz/test_fuzz.py's strict xfail flips when
# the fix lands — then delete the entry.
KNOWN_CRASHES: dict[str, str] = {}  # none open: issue 20 item 1 (RA prefix length) is fixed


def known_crash(exc: BaseException) -> str | None:
    key = crash_key(exc)
    return next((item for site, item in KNOWN_CRASHES.items() if key.startswith(site)), None)


def save_crash(data: bytes, exc: BaseException, recent: list[bytes] | None = None) -> Path:
    """The input to ``CRASHES``; for a broken connection (found at a verify, caused by any of
    the inputs since the last one) also those inputs, for :func:`replay`."""
    CRASHES.mkdir(exist_ok=True)
    key = crash_key(exc)
    name = key.replace("/", "_").replace(":", "_").replace("@", "-").replace("?", "")
    path = CRASHES / f"{name}-{hashlib.sha1(data).hexdigest()[:10]}.bin"
    path.write_bytes(data)
    if recent and isinstance(exc, Broken):
        path.with_suffix(".window").write_bytes(b"".join(
            struct.pack("!H", len(d)) + d for d in recent))
    return path


def replay(path: Path) -> int | None:
    """Feed a saved window to a fresh bench, verifying after each input: the index of the
    first input after which a live connection is broken (None: not reproduced)."""
    raw = path.read_bytes()
    inputs = []
    while raw:
        (n,) = struct.unpack_from("!H", raw)
        inputs.append(raw[2:2 + n])
        raw = raw[2 + n:]
    s = Session(verify_every=10**9)
    for i, data in enumerate(inputs):
        try:
            s.feed(data)
            s.bench.verify()
        except Broken as e:
            print(f"input {i} of {len(inputs)} breaks it: {data.hex()}\n  {e}")
            return i
    return None


def run_seeded(frames: int | None, seconds: float | None, seed: int, keep_going: bool,
               verify_every: int, report_every: int = 100_000) -> dict[str, object]:
    rng = random.Random(seed)
    pool = load_corpus() or list(seed_inputs().values())
    session = Session(seed, verify_every)
    found: dict[str, str] = {}
    start = time.monotonic()
    n = 0
    while (frames is None or n < frames) and (seconds is None
                                              or time.monotonic() - start < seconds):
        data = mutate(rng, rng.choice(pool), pool)
        n += 1
        try:
            session.feed(data)
        except Exception as e:  # noqa: BLE001 - a finding: record it
            key = crash_key(e)
            if key not in found:
                found[key] = str(save_crash(data, e, session.recent))
                print(f"[{n}] {key}: {e!r} -> {found[key]}", flush=True)
            if not keep_going:
                break
            session.rebuild()
        if n % report_every == 0:
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
            print(f"{n} frames {time.monotonic() - start:.0f}s maxrss {rss} MB "
                  f"{dict(session.bench.stats)} {session.bench.footprint()}", flush=True)
    session.bench.verify()
    return {"frames": n, "seconds": round(time.monotonic() - start, 1), "crashes": found,
            "rebuilds": session.rebuilds, "stats": dict(session.bench.stats),
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}


def instrument_stacklab(atheris: Any) -> int:
    """Coverage of the stack only (``atheris.instrument_all`` takes ~25 s over every module
    loaded): each function and method defined in a ``stacklab`` module, patched in place."""
    done = 0
    for name, mod in list(sys.modules.items()):
        if not name.startswith("stacklab"):
            continue
        for obj in list(vars(mod).values()):
            if getattr(obj, "__module__", None) != name:
                continue
            members = [obj] if inspect.isfunction(obj) else (
                [m for v in vars(obj).values() for m in (v, getattr(v, "__func__", None),
                                                         getattr(v, "fget", None))]
                if inspect.isclass(obj) else [])
            for f in members:
                if inspect.isfunction(f) and f.__module__ == name:
                    atheris.instrument_func(f)
                    done += 1
    return done


def run_atheris(argv: list[str], seed: int, keep_going: bool, verify_every: int) -> None:
    import atheris  # the optional extra: pip install -e '.[fuzz]'

    session = Session(seed, verify_every)
    found: set[str] = set()

    def one_input(data: bytes) -> None:
        try:
            session.feed(data)
        except Exception as e:
            key = crash_key(e)
            if not keep_going:
                raise
            if key not in found:
                found.add(key)
                print(f"{key}: {e!r} -> {save_crash(data, e, session.recent)}", flush=True)
            session.rebuild()

    instrument_stacklab(atheris)
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--frames", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep-going", action="store_true")
    ap.add_argument("--verify-every", type=int, default=1000)
    ap.add_argument("--atheris", action="store_true")
    ap.add_argument("--write-corpus", action="store_true")
    ap.add_argument("--replay", type=Path, help="a .window file a broken connection saved")
    args, rest = ap.parse_known_args(argv)
    if args.replay:
        return 0 if replay(args.replay) is None else 1
    if args.write_corpus:
        CORPUS.mkdir(exist_ok=True)
        for old in CORPUS.glob("*.bin"):
            old.unlink()
        for name, data in seed_inputs().items():
            (CORPUS / f"{name}.bin").write_bytes(data)
        return 0
    if args.atheris:
        extra = [f"-max_total_time={int(args.seconds)}"] if args.seconds else []
        if args.frames:
            extra.append(f"-runs={args.frames}")
        # libFuzzer writes the inputs it finds to the first directory: not the repo's corpus
        work = Path(tempfile.gettempdir()) / "stacklab-fuzz-corpus"
        work.mkdir(exist_ok=True)
        run_atheris([sys.argv[0], *rest, *extra, str(work), str(CORPUS)], args.seed,
                    args.keep_going, args.verify_every)
        return 0
    result = run_seeded(args.frames, args.seconds, args.seed, args.keep_going,
                        args.verify_every)
    print(result)
    return 1 if result["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
