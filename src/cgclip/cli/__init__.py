"""The ``cgclip`` command line: a thin layer over the library.

Each module in this package that defines ``register(subparsers)`` contributes one subcommand (or a group of them).
``register`` adds an :mod:`argparse` sub-parser and sets ``func`` to a callable ``(args) -> int``. Modules are
discovered automatically, so adding a command means adding a file here.

User errors (:class:`cgclip.errors.CgclipError`, and an :class:`OSError` about a named file: a name too long, a
full disk) are printed as one line on stderr with exit status 2. Anything else
that escapes a command (a bug, or bad input no check caught) is the last line of defence: one line naming the
exception, where its full traceback was written and how to see it on screen (``--debug``), exit status 3.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Sequence

from cgclip import __version__
from cgclip.errors import CgclipError


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every discovered subcommand."""
    from cgclip.cli._options import command_help

    parser = argparse.ArgumentParser(
        prog="cgclip",
        **command_help(
            "Video-based person re-identification with CG-CLIP (Caption-Guided CLIP). `cgclip COMMAND --help` "
            "describes a command, with examples.",
            "cgclip demo --quick --out demo_out",
            "cgclip train --help",
        ),
    )
    parser.add_argument("--version", action="version", version=f"cgclip {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of an unexpected error instead of the one-line summary",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cgclip`` console command; returns the process exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    empty = [i for i, a in enumerate(argv) if not a.strip()]
    if empty:  # an empty path would silently mean "the current folder" (or "no output") further down
        after = f" after {argv[empty[0] - 1]}" if empty[0] else ""
        parser.error(f"an empty argument{after}; give a value (quote paths that hold spaces)")
    args = parser.parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else (logging.INFO if args.verbose == 1 else logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 1
    try:
        return int(func(args) or 0)
    except CgclipError as exc:
        print(f"cgclip {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `cgclip ... | head`: the reader left; stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that flushing stdout at exit does not fail again
        return 141
    except OSError as exc:  # about a file the user named (name too long, disk full, ...): one line, not a bug
        if exc.filename is None or args.debug:
            return _unexpected(args, exc)
        print(f"cgclip {args.command}: error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cgclip {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence, see the module docstring
        return _unexpected(args, exc)


def _unexpected(args: argparse.Namespace, exc: Exception) -> int:
    """Report an error no check caught: one line, the traceback saved to a file (``--debug`` raises it)."""
    if args.debug:
        raise exc
    where = write_traceback(exc)
    saved = f"full traceback in {where}" if where else "the traceback could not be saved"
    print(
        f"cgclip {args.command}: unexpected error: {type(exc).__name__}: {_first_line(exc)} ({saved}; rerun "
        "with cgclip --debug to see it, and report it if the input was valid)",
        file=sys.stderr,
    )
    return 3


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def write_traceback(exc: BaseException) -> str | None:
    """Write ``exc``'s traceback to a new file in the temporary directory; returns its path (None if that failed)."""
    import tempfile
    import traceback

    try:
        fd, path = tempfile.mkstemp(prefix="cgclip-error-", suffix=".txt")
        with open(fd, "w", encoding="utf-8") as fh:
            fh.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        return path
    except OSError:
        return None
