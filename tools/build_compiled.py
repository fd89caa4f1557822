"""The optional compiled tier (issue #23 item 5): the hot modules built by mypyc, out of tree.

``make compiled`` runs this script. It copies ``stacklab/`` and ``bench/`` to ``build/compiled/``
(links the rest of the checkout: tests, examples, docs, pyproject.toml), and compiles the modules
of :data:`MODULES` there with mypyc, in place in the copy: Python imports an extension module
before the ``.py`` beside it, so a process whose ``sys.path`` starts at ``build/compiled/``
(``cd build/compiled``; ``make bench-compiled``, ``make test-compiled``) runs those modules
compiled and every other module interpreted, from the same sources. The checkout itself never
holds a ``.so``: the pure-Python path stays the default, the reference, and what CI tests.
``stacklab --version`` and ``bench/sim_tcp.py`` say which tier runs (:func:`stacklab.tier`).

mypyc compiles what mypy's types say. Where the sources rely on Python's freedom (a class
attribute in place of a slot, a name reused with two types, a narrowing that a call ends) the
module is left interpreted (:data:`MODULES` says why), or the copy is adjusted here by
:data:`PATCHES` and :data:`ATTRS`: each must match the sources exactly once, or the build stops
(a source change that moved one is then seen at once, not miscompiled). What is as good for the
pure path is in the sources instead (annotations that say what flows, a declared local, a
variable not reused with another type, the super() form of api/driver.py): a patch stays here
only where the source's form is the better one for the pure path.

Usage: ``python tools/build_compiled.py [--opt 3]`` (``--opt 0``: a faster build, a slower tier).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The modules of a bulk transfer's profile (bench/sim_tcp.py --profile). Left interpreted:
# wire/tcp.py, wire/ipv4.py, wire/ethernet.py
# (frame.py's fast views subclass their views with class attributes in place of slots);
# net/link.py (LinkParams' ClassVar without a value reaches the dataclass as a field);
# stack/tcp/congestion/ (subclasses override class attributes; a __dict__ slot);
# wire/checksum.py (its callers, tests among them, pass bytearrays where it says bytes: mypyc
# checks bytes and raises; its sums run in C already).
MODULES = [
    "stack/tcp/tcb.py", "stack/tcp/output.py", "stack/tcp/layer.py", "stack/tcp/tcbvars.py",
    "stack/tcp/seq.py", "stack/tcp/rate.py", "stack/tcp/buffers.py", "stack/tcp/sndbuf.py",
    "stack/tcp/rtt.py", "stack/tcp/timers.py", "stack/tcp/sent.py", "stack/tcp/segment.py",
    "stack/ipv4.py", "stack/host.py", "stack/node.py", "stack/ipid.py",
    "wire/frame.py", "net/stages.py", "stack/tcp/rack.py",
    "api/driver.py",
]

# (file, old text, new text) applied to the copy: the annotations mypyc needs
PATCHES = [
    # on_reo_timer: tcb.recover after the call that may set it, where mypy still narrows it to
    # None (it was None before the call): read untyped, or mypyc's check of None raises. Kept
    # here, not in the source: getattr is a slower read on the pure path
    ("stacklab/stack/tcp/rack.py", "        if tcb.recover is not None and tcb.rec.sack_mode:\n",
     "        if getattr(tcb, \"recover\") is not None and tcb.rec.sack_mode:\n"),
]

# A native class's __new__ runs __init__, so copy and pickle cannot make one empty: a serializable
# class's __new__ does not, and mypyc gives it __getstate__/__setstate__ (every attribute). In
# mypyc 2.4 a serializable class's tp_init then runs __init__ only if it also allows interpreted
# subclasses (else `Cls(...)` from interpreted code leaves every attribute undefined).
COPYABLE = "serializable=True, allow_interpreted_subclasses=True"

# (file, class line, mypyc_attr arguments): classes that stay Python classes (subclasses of
# builtins, of interpreted classes with slots), and compiled classes that interpreted code
# subclasses (stack/router.py, api/host.py, the stages of net/aqm.py, net/faults.py, tour/, tests)
ATTRS = [
    ("stacklab/wire/frame.py", "class _FastEthernetView(EthernetView):", "native_class=False"),
    ("stacklab/wire/frame.py", "class _FastIPv4View(IPv4View):", "native_class=False"),
    ("stacklab/wire/frame.py", "class _FastTcpView(TcpView):", "native_class=False"),
    ("stacklab/wire/frame.py", "class VerifiedFrame(bytes):", "native_class=False"),
    ("stacklab/wire/frame.py", "class PartialFrame(bytes):", "native_class=False"),
    ("stacklab/stack/node.py", "class GsoFrame(bytearray):", "native_class=False"),
    ("stacklab/stack/node.py", "class NodeCounters(Counter[str]):", "native_class=False"),
    # stack/router.py sets a router's ipv4.forward per instance (MSS clamping)
    ("stacklab/stack/ipv4.py", "class Ipv4:", "native_class=False"),
    ("stacklab/stack/node.py", "class Node:", "allow_interpreted_subclasses=True"),
    ("stacklab/stack/host.py", "class Host(Node):", "allow_interpreted_subclasses=True"),
    ("stacklab/api/driver.py", "class DrivenHost(Host):", "allow_interpreted_subclasses=True"),
    ("stacklab/net/stages.py", "class Stage:", "allow_interpreted_subclasses=True"),
    # and its compiled subclasses without an __init__ of their own: else (mypyc 2.4) one made
    # from interpreted code (net/link.py) runs Stage.__init__ twice and is never freed, and its
    # direction, link and nodes with it (tests/net/test_network_memory.py)
    ("stacklab/net/stages.py", "class Gate(Stage):", "allow_interpreted_subclasses=True"),
    ("stacklab/net/stages.py", "class IcmpBlackhole(Stage):", "allow_interpreted_subclasses=True"),
    ("stacklab/net/stages.py", "class TraceSent(Stage):", "allow_interpreted_subclasses=True"),
    ("stacklab/net/stages.py", "class TraceDelivered(Stage):",
     "allow_interpreted_subclasses=True"),
    ("stacklab/net/stages.py", "class Deliver(Stage):", "allow_interpreted_subclasses=True"),
    # copyable (copy, deepcopy, pickle): tests compare a TCB with its copy (test_fast_paths,
    # test_sndbuf_after_ack, test_units): the TCB (TcbVars, the base of TcbOutput and Tcb) and
    # the compiled objects it holds
    ("stacklab/stack/tcp/tcbvars.py", "class TcbVars:", COPYABLE),
    ("stacklab/stack/tcp/tcbvars.py", "class Urgent:", COPYABLE),
    ("stacklab/stack/tcp/buffers.py", "class SendBuffer:", COPYABLE),
    ("stacklab/stack/tcp/buffers.py", "class ReceiveBuffer:", COPYABLE),
    ("stacklab/stack/tcp/sent.py", "class Sent:", COPYABLE),
    ("stacklab/stack/tcp/sent.py", "class SentLog:", COPYABLE),
    ("stacklab/stack/tcp/rack.py", "class Rack:", COPYABLE),
    ("stacklab/stack/tcp/rate.py", "class DeliveryRate:", COPYABLE),
    ("stacklab/stack/tcp/rtt.py", "class RttEstimator:", COPYABLE),
    ("stacklab/stack/tcp/segment.py", "class Segment:", COPYABLE),
]
FUTURE = "from __future__ import annotations\n"


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if text.count(old) != 1:
        raise SystemExit(f"build_compiled: {path} no longer holds exactly one {old!r}")
    path.write_text(text.replace(old, new))


def copy_tree(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    skip = shutil.ignore_patterns("__pycache__", "*.so")
    for name in ("stacklab", "bench"):
        shutil.copytree(ROOT / name, out / name, ignore=skip)
    for name, old, new in PATCHES:
        replace_once(out / name, old, new)
    for name, line, attr in ATTRS:
        replace_once(out / name, line + "\n", f"@mypyc_attr({attr})\n{line}\n")
    for name in {name for name, _, _ in ATTRS}:
        replace_once(out / name, FUTURE, FUTURE + "from mypy_extensions import mypyc_attr\n")


def link_rest(out: Path) -> None:
    """The rest of the checkout as links: tests and their data, docs, examples, pyproject.toml
    (after the build: setuptools would read that pyproject.toml as the project to build)."""
    for entry in ROOT.iterdir():
        if entry.name not in ("stacklab", "bench", "build") and not entry.name.startswith(".") \
                and not entry.name.endswith(".egg-info"):
            (out / entry.name).symlink_to(entry)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--opt", default="3", help="the C compiler's optimisation level (-O)")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "compiled",
                    help="where the copy goes (default build/compiled/; replaced)")
    args = ap.parse_args()
    out = args.out.resolve()
    t0 = time.monotonic()
    copy_tree(out)
    from mypyc.build import mypycify  # the `compiled` extra (mypy); imported only to build
    from setuptools import setup

    os.chdir(out)
    sys.argv = ["setup.py", "-q", "build_ext", "--inplace", "-j2"]
    setup(name="stacklab-compiled", ext_modules=mypycify(
        ["stacklab/" + m for m in MODULES], opt_level=args.opt, multi_file=True,
        group_name="stacklab"))
    shutil.rmtree(out / "build")  # setuptools' objects: the extensions are in place now
    link_rest(out)
    print(f"build_compiled: {len(MODULES)} modules compiled in {out} in "
          f"{time.monotonic() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
