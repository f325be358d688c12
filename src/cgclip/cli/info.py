"""``cgclip info``: per-split statistics of a dataset folder (any registered format)."""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path
from typing import Any

from cgclip.cli._options import add_deprecated_alias, command_help, in_range
from cgclip.data import DATASETS

COLUMNS = ("split", "identities", "tracklets", "cameras", "sequences", "frames", "len min", "len mean", "len max")


def register(subparsers: Any) -> None:
    """Add the ``info`` sub-command."""
    p = subparsers.add_parser(
        "info",
        help="print a dataset's statistics per split",
        **command_help(
            "Print identities, tracklets, cameras, sequences and frames per "
            "tracklet for the train, query and gallery splits of a dataset folder.",
            "cgclip info data/sports",
            "cgclip info data/ilidsvid --dataset-kind ilidsvid --split 3 --json",
        ),
    )
    p.add_argument("dir", type=Path, help="dataset folder")
    kind = p.add_argument("--dataset-kind", choices=DATASETS, help="dataset format (default: detected from the folder)")
    add_deprecated_alias(p, "--kind", kind)
    p.add_argument("--split", type=in_range(int, 0, 9), default=0, help="iLIDS-VID split index 0-9 (default 0)")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.set_defaults(func=run)


def format_table(stats: dict[str, Any]) -> str:
    """The per-split statistics of :meth:`TrackletDataset.statistics` as a plain-text table."""
    rows = [COLUMNS]
    for split in ("train", "query", "gallery"):
        s = stats[split]
        f = s["frames_per_tracklet"]
        rows.append(
            (
                split,
                s["identities"],
                s["tracklets"],
                s["cameras"],
                s["sequences"],
                s["frames"],
                f["min"],
                f"{f['mean']:.1f}",
                f["max"],
            )
        )
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in cells
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Load the dataset and print its statistics."""
    from cgclip.data import detect_dataset, load_dataset

    kind = args.dataset_kind or detect_dataset(args.dir)
    options = {"split": args.split} if kind == "ilidsvid" else {}
    dataset = load_dataset(kind, args.dir, **options)
    stats = dataset.statistics()
    stats["kind"] = kind
    if args.json:
        print(json.dumps(stats, indent=2, default=str))
        return 0
    print(f"{kind} dataset at {dataset.root}")
    print(format_table(stats))
    print(f"cameras in all splits: {dataset.num_cameras}; train classes: {dataset.num_train_pids}")
    for key, value in dataset.info.items():
        text = value if isinstance(value, (str, int, float, bool)) else json.dumps(value, default=str)
        if isinstance(value, (str, int, float, bool)) or len(text) <= 200:
            print(textwrap.fill(f"{key}: {text}", width=110, subsequent_indent="    "))
    return 0
