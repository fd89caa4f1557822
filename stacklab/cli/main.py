"""The `stacklab` command. Each subcommand lives in its own module of this package, exposing
``register(subparsers)`` which adds a parser whose ``func(args) -> int`` runs it.

Whatever goes wrong ends in one line on stderr naming the problem, never a traceback, and one of
the exit statuses of :data:`EXIT_STATUSES` (the ``--help`` epilog lists them too).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from types import FrameType

from stacklab import __version__, tier
from stacklab.errors import StacklabError

# Subcommand modules, in the order `stacklab --help` lists them.
# shell: also the one-shot ping, traceroute and ss verbs
SUBCOMMANDS = ["tour", "run", "sweep", "tap", "packetdrill", "shell"]


# What every command's exit status means (`run`: 1 when an app of the scenario failed).
EXIT_STATUSES = {
    0: "success (also when the reader of stdout went away, as `| head` does)",
    1: "the command ran but failed: an app of the scenario did not succeed, a test failed",
    2: "bad usage or input: an unknown option, a scenario file or output path that cannot be "
       "used (one line says which)",
    3: "internal error in the simulation (a bug: the traceback is printed to report it)",
    130: "interrupted (Ctrl-C)",
}


class CliError(StacklabError):
    """A bad argument or input file: printed as one line naming the problem, exit status 2."""


def _epilog() -> str:
    return "exit status:\n" + "\n".join(f"  {code:<4} {text}"
                                         for code, text in EXIT_STATUSES.items())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stacklab", description="stacklab: a TCP/IP stack in Python", epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version",
                        version=f"stacklab {__version__} ({tier()})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            mod = importlib.import_module(f"stacklab.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"stacklab.cli.{name}":
                raise
            continue
        mod.register(sub)
    return parser


def _silence_stdout() -> None:
    """The reader of stdout left (`stacklab ... | head`): drop the rest of the output quietly,
    including what the interpreter flushes at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file descriptor (tests capture it)
        pass


# After Ctrl-C, how long the run may take to wind down (close captures, cancel tasks) before
# the process ends anyway: an interrupt that lands where Python swallows it (a finalizer) must
# not leave the simulation running.
INTERRUPT_GRACE = 10.0
_watchdog: threading.Timer | None = None


def _give_up() -> None:
    sys.stderr.write("stacklab: interrupted\n")
    sys.stderr.flush()
    os._exit(130)


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    # Ctrl-C: the tasks the interrupted simulation leaves behind hold this KeyboardInterrupt;
    # asyncio would log each as "Unhandled exception in client_connected_cb" while the network
    # closes. The interrupt itself is reported once, by main().
    global _watchdog
    logging.getLogger("asyncio").disabled = True
    if _watchdog is None:
        _watchdog = threading.Timer(INTERRUPT_GRACE, _give_up)
        _watchdog.daemon = True
        _watchdog.start()
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # `stacklab run x.toml --bogus`: the usage of `run`, not of stacklab
        commands = next(a.choices for a in parser._actions
                        if isinstance(a, argparse._SubParsersAction))
        (commands.get(args.command) or parser).error(
            f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread():
        previous = None  # signal handlers belong to the main thread
    if previous is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"stacklab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except OSError as exc:  # a file that went away or filled up mid-run: say which, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"stacklab {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"stacklab {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        _stop_watchdog()
        if previous is signal.default_int_handler:  # main() called in-process (tests)
            signal.signal(signal.SIGINT, previous)


def _stop_watchdog() -> None:
    global _watchdog
    logging.getLogger("asyncio").disabled = False
    if _watchdog is not None:
        _watchdog.cancel()
        _watchdog = None
