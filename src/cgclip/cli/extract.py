"""``cgclip extract``: feature files of a dataset's tracklets from a trained run, for ``cgclip search``."""

from __future__ import annotations

import argparse
from typing import Any

from cgclip.cli._options import add_runtime_options, add_splits_option, command_help, in_range
from cgclip.config import CHOICES


def register(subparsers: Any) -> None:
    """Add the ``extract`` sub-command."""
    p = subparsers.add_parser(
        "extract",
        help="write tracklet feature files from a trained run (for cgclip search)",
        **command_help(
            "Extract retrieval features (frames only) of a dataset's query / gallery / train tracklets "
            "with a trained run's model and write OUT/<split>.safetensors + OUT/<split>.json. "
            "Interrupted extraction resumes from its finished chunks.",
            "cgclip extract --run runs/sports-cgclip --dataset data/sports --out feats",
            "cgclip extract --run runs/sports-cgclip --out feats --splits query,gallery,train",
        ),
    )
    p.add_argument("--run", required=True, metavar="RUN", help="run folder written by cgclip train")
    p.add_argument("--dataset", metavar="DIR", help="dataset folder (default: the run's)")
    p.add_argument("--out", required=True, metavar="FEATS", help="output folder for the feature files")
    add_splits_option(p, ("query", "gallery"), "which tracklets to extract")
    p.add_argument("--checkpoint", choices=("best", "last", "final"), default="best", help="weights (default best)")
    p.add_argument("--test-sampling", choices=CHOICES["eval.sampling"], help="frame sampling (default: the run's)")
    add_runtime_options(p, inherit="the run's")
    p.add_argument("--batch-size", type=in_range(int, 1), help="clips per forward pass")
    p.add_argument("--num-workers", type=in_range(int, 0), help="data loader workers")
    p.set_defaults(func=run)


def _print_split(split: str, written: dict[str, Any]) -> None:
    if written.get("skipped"):
        print(f"{split}: no tracklets, skipped")
    else:
        print(f"{split}: {written['shape'][0]} × {written['shape'][1]} features -> {written['path']}")


def run(args: argparse.Namespace) -> int:
    """Extract and save the requested splits."""
    from cgclip.train.inference import extract_to_folder

    extract_to_folder(
        args.run,
        args.out,
        args.splits,
        dataset_root=args.dataset,
        checkpoint=args.checkpoint,
        sampling=args.test_sampling,
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        on_split=_print_split,
    )
    return 0
