"""The sparq-sim command line: a thin layer over the Python API.

Subcommands live in ``sparq_sim.commands``, one module each, found by scanning the package.
Bad input of any kind ends in one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Protocol, runtime_checkable

from sparq_sim import __version__
from sparq_sim.errors import OneLineParser, UserError
from sparq_sim.registry import scan

PROG = "sparq-sim"


@runtime_checkable
class Command(Protocol):
    """A subcommand module: its name and help, its flags, and what it does (exit code or None).
    ``ORDER`` (optional, default 50) places it in the menu."""

    NAME: str
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int | None: ...


def _command_modules() -> list[Command]:
    """Every module of ``sparq_sim.commands`` that defines ``NAME``, in menu order."""
    modules = []
    for module, _ in scan("sparq_sim.commands", "NAME"):
        if not isinstance(module, Command):
            raise TypeError(f"{module.__name__} defines NAME but is not a Command (HELP, add_arguments, run)")
        modules.append(module)
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 50), m.NAME))


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `only`, the flags of that command alone (the others are
    listed but take no flags: what one run needs, without importing every command's modules)."""
    parser = OneLineParser(prog=PROG, description="Predict, simulate and measure SparQ Attention decoding speed.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for module in _command_modules():
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        if only is None or module.NAME == only:
            module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        argv = sys.argv[1:] if argv is None else argv
        parser = build_parser(only=next((a for a in argv if not a.startswith("-")), None))
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, or a usage error already reported
            return exc.code if isinstance(exc.code, int) else 2
        code = int(args._run(args) or 0)
        sys.stdout.flush()
        return code
    except UserError as exc:
        message = " ".join(str(exc).split())
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except OSError as exc:   # stdout on a full disk (> /dev/full) and the like
        _silence_stdout()
        where = f": {exc.filename}" if exc.filename else " (standard output)"
        print(f"{PROG}: error: cannot write{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush of what could not be written
    does not fail a second time with a traceback."""
    import os
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):   # io.UnsupportedOperation is both
        pass


if __name__ == "__main__":
    sys.exit(main())
