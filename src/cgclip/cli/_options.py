"""The command line's shared vocabulary, declared once: ``--device`` / ``--precision``, ``--splits``, help with
examples, and old option spellings kept for one release with a deprecation warning.

Everything here is light (no torch): parsers are built for ``cgclip --help``, which must stay fast.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

from cgclip.data.tracklet import DATASET_SPLITS
from cgclip.errors import CgclipError
from cgclip.runtime import DEVICE_SPELLINGS, PRECISIONS, check_device, precision_name

#: Widest a help paragraph is wrapped (argparse's raw description formatter keeps our line breaks).
HELP_WIDTH = 100


def _argument_type(check: Callable[[str], str]) -> Callable[[str], str]:
    """An argparse ``type`` from a checker that raises CgclipError (argparse then reports the message)."""

    def convert(value: str) -> str:
        try:
            return check(value)
        except CgclipError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = check.__name__
    return convert


device_type = _argument_type(check_device)
precision_type = _argument_type(precision_name)


def in_range(
    kind: type, lo: float | None = None, hi: float | None = None, *, open_min: bool = False
) -> Callable[[str], Any]:
    """An argparse ``type`` for an ``int`` or ``float`` option that must lie in ``[lo, hi]`` (None = unbounded;
    ``open_min`` excludes ``lo``): NaN, infinity and values outside are refused with the accepted range, by the same
    check as configuration fields (:func:`cgclip.config.check_allowed`)."""

    def convert(text: str) -> Any:
        from cgclip.config import check_allowed

        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        try:
            check_allowed("value", value, {"bounds": (lo, hi), "open_min": open_min})
        except CgclipError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix("value: ")) from None
        return value

    convert.__name__ = kind.__name__  # argparse names the type in its "invalid int value" messages
    return convert


def command_help(description: str, *examples: str) -> dict[str, Any]:
    """``add_parser`` keywords for a description (paragraphs split on blank lines, wrapped) and example lines."""
    width = max(40, min(HELP_WIDTH, shutil.get_terminal_size().columns - 2))  # argparse's own width rule
    paragraphs = [textwrap.fill(" ".join(p.split()), width) for p in description.strip().split("\n\n")]
    label = "example:" if len(examples) == 1 else "examples:"
    return {
        "description": "\n\n".join(paragraphs),
        "epilog": "\n".join([label, *(f"  {e}" for e in examples)]),
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }


def add_runtime_options(
    parser: Any, *, precision: bool = True, inherit: str | None = None
) -> tuple[argparse.Action, argparse.Action | None]:
    """Add ``--device auto|cpu|cuda[:N]`` and (with ``precision``) ``--precision auto|bf16|fp16|fp32``; returns the
    two actions (None for a command without a precision choice).

    Left out they are ``auto``, or with ``inherit`` (e.g. ``"the run's"``) None: the caller takes them from there.
    Both are resolved by :mod:`cgclip.runtime`.
    """
    default = None if inherit else "auto"
    whence = f"default: {inherit}" if inherit else "default auto"
    device = parser.add_argument(
        "--device",
        type=device_type,
        default=default,
        metavar="DEVICE",
        help=f"{DEVICE_SPELLINGS}; auto = CUDA when available, else the CPU ({whence})",
    )
    if not precision:
        return device, None
    return device, parser.add_argument(
        "--precision",
        type=precision_type,
        choices=PRECISIONS,
        default=default,
        help=f"auto = bf16 on a GPU (fp16 without bf16) and on a CPU with native bf16, fp32 elsewhere; fp16 needs "
        f"CUDA ({whence})",
    )


class _DeprecatedAlias(argparse.Action):
    """An old option spelling: stores into the new option's destination and warns once per use on stderr."""

    def __init__(
        self, option_strings: Sequence[str], dest: str, target: argparse.Action | None = None, **kwargs: Any
    ) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.target = target
        self.new = next(s for s in target.option_strings if s.startswith("--")) if target is not None else ""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(
            f"cgclip: warning: {option_string} is deprecated and will be removed in the next release; use {self.new}",
            file=sys.stderr,
        )
        if self.target is not None:
            self.target(parser, namespace, values, self.new)


def add_deprecated_alias(parser: Any, old: str, target: argparse.Action) -> None:
    """Keep ``old`` working as a hidden spelling of ``target`` (the action ``add_argument`` returned)."""
    parser.add_argument(
        old,
        dest=target.dest,
        action=_DeprecatedAlias,
        target=target,
        nargs=target.nargs,
        type=target.type,
        choices=target.choices,
        metavar=target.metavar,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )


class _WordList(argparse.Action):
    """A list option given comma- or space-separated (``query,gallery`` or ``query gallery``), checked against
    ``allowed`` when given; stores the words in order, each once."""

    def __init__(
        self, option_strings: Sequence[str], dest: str, allowed: Sequence[str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(option_strings, dest, nargs="+", **kwargs)
        self.allowed = tuple(allowed) if allowed else None

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, self.parse(values))

    def parse(self, values: Sequence[str]) -> list[str]:
        """The words of ``values``, checked."""
        words = list(dict.fromkeys(w for v in values for w in re.split(r"[,\s]+", v) if w))
        bad = [w for w in words if self.allowed and w not in self.allowed]
        if bad or not words:
            raise argparse.ArgumentError(
                self, f"unknown {bad[0]!r}; use {', '.join(self.allowed or ())}" if bad else "give at least one name"
            )
        return words


def add_splits_option(
    parser: Any, default: Sequence[str], text: str, allowed: Sequence[str] = DATASET_SPLITS
) -> argparse.Action:
    """``--splits``: dataset partitions (train, query, gallery), comma- or space-separated."""
    return parser.add_argument(
        "--splits",
        action=_WordList,
        allowed=allowed,
        default=list(default),
        metavar="SPLIT",
        help=f"{text}: {', '.join(allowed)}, comma- or space-separated (default {' '.join(default)})",
    )


def add_word_list(parser: Any, option: str, default: Sequence[str] | None, text: str) -> argparse.Action:
    """A comma- or space-separated list option of free words (e.g. ``--identity-splits train val``)."""
    return parser.add_argument(
        option, action=_WordList, default=None if default is None else list(default), metavar="NAME", help=text
    )
