"""The `stacklab` command. Each subcommand lives in its own module of this package, exposing
``register(subparsers)`` which adds a parser whose ``func(args) -> int`` runs it."""

from __future__ import annotations

import argparse
import importlib
import sys

from stacklab import __version__
from stacklab.errors import StacklabError

# Subcommand modules, in the order `stacklab --help` lists them.
# shell: also the one-shot ping, traceroute and ss verbs
SUBCOMMANDS = ["tour", "run", "sweep", "tap", "packetdrill", "shell"]


class CliError(StacklabError):
    """A bad argument or input file: printed as one line naming the problem, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stacklab", description="stacklab: a TCP/IP stack in Python")
    parser.add_argument("--version", action="version", version=f"stacklab {__version__}")
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"stacklab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
