"""The command line's help: parsers import nothing heavy (``cgclip --help`` stays fast), every command has a
description and an example, and every command that runs a model speaks ``--device`` (and ``--precision``)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from cgclip.cli import build_parser

#: Commands that run a model: (--device, --precision) expected.
RUNTIME_OPTIONS = {
    ("train",): True,
    ("evaluate",): True,
    ("extract",): True,
    ("pretrain-clip",): True,
    ("demo",): True,
    ("caption", "from-annotations"): True,
    ("caption", "mllm"): True,
    ("caption", "augment"): True,
    ("caption", "report"): False,
    ("caption", "attributes"): False,
}


def _subparsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every (command path, parser) under ``parser``, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _subparsers(sub, (*path, name))


def test_building_the_parser_imports_neither_torch_nor_transformers() -> None:
    code = (
        "import sys, cgclip.cli; cgclip.cli.build_parser(); "
        "print(','.join(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_every_command_has_a_description_and_an_example() -> None:
    parser = build_parser()
    commands = dict(_subparsers(parser))
    assert len(commands) >= 16 and ("caption", "mllm") in commands
    for path, sub in [((), parser), *commands.items()]:
        text = sub.format_help()
        assert sub.description, path
        assert "example" in text, path
        for line in (sub.epilog or "").splitlines()[1:]:
            assert line.strip().startswith("cgclip "), (path, line)


@pytest.mark.parametrize("path, with_precision", list(RUNTIME_OPTIONS.items()))
def test_model_commands_speak_device_and_precision(path: tuple[str, ...], with_precision: bool) -> None:
    sub = dict(_subparsers(build_parser()))[path]
    options = {s for a in sub._actions for s in a.option_strings}
    assert "--device" in options
    assert ("--precision" in options) is with_precision


def test_examples_parse() -> None:
    """Each example line is a spelling the parser accepts (files need not exist: nothing runs)."""
    import shlex

    parser = build_parser()
    for _, sub in [((), parser), *_subparsers(parser)]:
        for line in (sub.epilog or "").splitlines()[1:]:
            argv = shlex.split(line.strip())[1:]
            if "--help" in argv:
                continue
            args = parser.parse_args(argv)
            assert getattr(args, "func", None) is not None, line


def test_a_closed_pipe_stops_the_command_quietly(tmp_path):
    """`cgclip info DS | head`: the reader leaves; no 'unexpected error', the Unix exit status 141."""
    import subprocess
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fixtures_reid import write_ilidsvid

    write_ilidsvid(tmp_path / "ilids", persons=list(range(1, 5)), frames=2)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cgclip", "info", str(tmp_path / "ilids")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # nobody reads: the first write fails with EPIPE
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert "unexpected error" not in err and "Traceback" not in err
