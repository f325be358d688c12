"""``cgclip demo``: synthetic worlds → datasets → captions → tiny CLIP → TAP / TF-CLIP / CG-CLIP → results."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from cgclip.cli._options import add_runtime_options, command_help, in_range
from cgclip.config_sections import SEED_MAX


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    p = subparsers.add_parser(
        "demo",
        help="run the whole product end to end on the embedded default (no data or weights needed)",
        **command_help(
            "Generate the synthetic sports and dance worlds, build their VReID datasets, write captions "
            "from their identity tables, load the embedded tiny CLIP shipped with cgclip, train and "
            "evaluate TAP, TF-CLIP and CG-CLIP, and write results.json, results.md and pictures. Rerun the "
            "same command to resume an interrupted demo.",
            "cgclip demo --quick --out demo_out",
            "cgclip demo --worlds sports --models tap,cgclip --device cuda --out demo_gpu",
        ),
    )
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default: demo_out)")
    p.add_argument("--quick", action="store_true", help="a short first look (under 5 minutes)")
    p.add_argument("--seed", type=in_range(int, 0, SEED_MAX), default=0)
    p.add_argument("--worlds", default="sports,dance", help="comma-separated: sports,dance")
    p.add_argument("--models", default="tap,tfclip,cgclip", help="comma-separated: tap,tfclip,cgclip")
    p.add_argument("--clip", type=Path, default=None, help="a CLIP checkpoint directory instead of the tiny CLIP")
    p.add_argument("--no-pictures", action="store_true", help="skip the pictures")
    add_runtime_options(p, inherit="the demo's, auto")
    p.set_defaults(func=run)


def _settings(args: argparse.Namespace) -> Any:
    """The demo's settings with --device / --precision as training overrides (None: the demo's own)."""
    import dataclasses

    from cgclip.demo.settings import demo_settings

    extra = [
        f"train.{key}={value}"
        for key, value in (("device", args.device), ("precision", args.precision))
        if value is not None
    ]
    if not extra:
        return None
    settings = demo_settings(args.quick)
    return dataclasses.replace(settings, train_overrides=[*settings.train_overrides, *extra])


def run(args: argparse.Namespace) -> int:
    """Run the demo and print the results table."""
    from cgclip.demo import run_demo
    from cgclip.demo.report import markdown_table

    start = time.perf_counter()

    def say(line: str) -> None:
        print(f"[{time.perf_counter() - start:6.0f}s] {line}", flush=True)

    summary = run_demo(
        args.out,
        quick=args.quick,
        seed=args.seed,
        worlds=[w.strip() for w in args.worlds.split(",") if w.strip()],
        models=[m.strip() for m in args.models.split(",") if m.strip()],
        clip_dir=args.clip,
        pictures=not args.no_pictures,
        say=say,
        settings=_settings(args),
    )
    print()
    print(markdown_table(summary["results"]), end="")
    print(f"\nresults: {args.out / 'results.json'} and {args.out / 'results.md'}; pictures in {args.out / 'pictures'}")
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0
