"""``cgclip build-mot``: build a VReID dataset folder from MOT sequences (see :mod:`cgclip.data.vreid_builder`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cgclip.cli._options import add_deprecated_alias, command_help, in_range
from cgclip.config_sections import SEED_MAX
from cgclip.data.vreid import QUERY_GALLERY_RULE


def register(subparsers: Any) -> None:
    """Add the ``build-mot`` sub-command."""
    p = subparsers.add_parser(
        "build-mot",
        help="build a video ReID dataset (crops + manifest) from MOT sequences",
        **command_help(
            "Crop the tracks of MOT-format sequences (MOT/train/SEQ and MOT/val/SEQ with seqinfo.ini, "
            "img1/, gt/gt.txt) into tracklets, map tracks to identities, and write a dataset folder that "
            "`cgclip info` and training read. Re-running on the same --out resumes and replaces the "
            "build. A sequence may hold one video file (.mp4 .avi .mkv .mov .webm) instead of img1/, and "
            "gt/gt.txt may be a tracker's MOT output; a track no mapping names is its own identity."
            "\n\nQuery/gallery rule: " + QUERY_GALLERY_RULE,
            "cgclip build-mot --mot worlds/sports --out data/sports",
            "cgclip build-mot --mot SportsMOT --out data/sportsvreid --mot-splits train val --min-height 48",
        ),
    )
    p.add_argument("--mot", required=True, type=Path, help="MOT root holding the split folders")
    p.add_argument("--out", required=True, type=Path, help="dataset folder to write")
    p.add_argument("--identities", type=Path, help="identity table CSV (default: MOT/identities.csv if present)")
    p.add_argument("--mapping", type=Path, help="track mapping CSV (default: MOT/track_mapping.csv if present)")
    folders = p.add_argument(
        "--mot-splits",
        nargs="+",
        default=["train", "val"],
        metavar="FOLDER",
        help="the MOT split folders: train folder, then val folder (default: train val)",
    )
    add_deprecated_alias(p, "--splits", folders)
    p.add_argument(
        "--min-height", type=in_range(int, 1), default=32, help="smallest crop height in pixels (default 32)"
    )
    p.add_argument("--min-width", type=in_range(int, 1), default=12, help="smallest crop width in pixels (default 12)")
    p.add_argument(
        "--min-visibility", type=in_range(float, 0, 1), default=0.3, help="smallest gt visibility (default 0.3)"
    )
    p.add_argument("--max-len", type=in_range(int, 1), default=50, help="most frames per tracklet (default 50)")
    p.add_argument("--min-len", type=in_range(int, 1), default=2, help="fewest frames per tracklet (default 2)")
    p.add_argument("--seed", type=in_range(int, 0, SEED_MAX), default=0, help="seed of the query choice (default 0)")
    p.add_argument(
        "--jpeg-quality", type=in_range(int, 1, 100), default=95, help="JPEG quality of the crops (default 95)"
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--classes",
        type=int,
        nargs="+",
        default=[1],
        metavar="C",
        help="gt classes to use (default 1 = pedestrian); rows without a class are always used",
    )
    group.add_argument("--all-classes", action="store_true", help="use every gt class")
    p.add_argument("--keep-zero-conf", action="store_true", help="also use gt rows with conf 0 (ignored by default)")
    p.set_defaults(func=run)


def _default_csv(given: Path | None, mot: Path, name: str) -> Path | None:
    if given is not None:
        return given
    candidate = mot / name
    return candidate if candidate.is_file() else None


def run(args: argparse.Namespace) -> int:
    """Build the dataset and print a one-screen summary."""
    from cgclip.data.vreid_builder import build_vreid

    identities = _default_csv(args.identities, args.mot, "identities.csv")
    mapping = _default_csv(args.mapping, args.mot, "track_mapping.csv")
    s = build_vreid(
        args.mot,
        args.out,
        identities,
        mapping,
        splits=tuple(args.mot_splits),
        min_height=args.min_height,
        min_width=args.min_width,
        min_visibility=args.min_visibility,
        max_len=args.max_len,
        min_len=args.min_len,
        seed=args.seed,
        jpeg_quality=args.jpeg_quality,
        classes=None if args.all_classes else args.classes,
        keep_zero_conf=args.keep_zero_conf,
    )
    seqs = ", ".join(f"{split} {n}" for split, n in s.sequences.items())
    print(f"built VReID dataset in {s.out}")
    print(f"  sources:    {args.mot} (identities: {identities or 'none'}; mapping: {mapping or 'none'})")
    print(f"  sequences:  {seqs} ({s.cameras} cameras, one per sequence)")
    print(f"  train:      {s.tracklets['train']} tracklets, {s.identities['train']} identities")
    if len(s.sequences) > 1:
        print(f"  query:      {s.tracklets['query']} tracklets, {s.identities['query']} identities")
        print(
            f"  gallery:    {s.tracklets['gallery']} tracklets, {s.identities['val']} identities "
            f"({s.identities['distractor']} seen in one sequence only: distractors)"
        )
    print(f"  crops:      {s.crops_written} written, {s.crops_reused} reused from a previous run")
    dropped = ", ".join(f"{reason} {n}" for reason, n in s.dropped.items())
    print(f"  dropped:    {dropped} (crops); {s.ignored_rows} gt rows ignored by the conf/class filter")
    if s.corrupt_frames:
        shown = ", ".join(s.corrupt_frames[:3]) + (" ..." if len(s.corrupt_frames) > 3 else "")
        print(f"  warning:    {len(s.corrupt_frames)} source frames could not be decoded: {shown}")
    if s.unused_mapping_rows or s.unused_identities:
        print(
            f"  note:       {s.unused_mapping_rows} mapping rows and {s.unused_identities} table identities "
            "match no track"
        )
    print(f"next: cgclip info {args.out}")
    return 0
