"""``cgclip synth sports|dance --out DIR --seed N``: render a synthetic MOT world (sequences, tables, contact sheet)."""

from __future__ import annotations

import argparse
import os

from cgclip.cli._options import command_help, in_range
from cgclip.config_sections import SEED_MAX

SIZE_OPTIONS = [
    "train_identities",
    "val_identities",
    "train_sequences",
    "val_sequences",
    "people_per_sequence",
    "frames",
    "width",
    "height",
]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synth`` subcommand."""
    parser = subparsers.add_parser(
        "synth",
        help="render a synthetic sports or dance world in MOT format",
        **command_help(
            "Render a synthetic sports (SportsMOT-style) or dance (DanceTrack-style) world: train/val "
            "MOT sequences, identities.csv, track_mapping.csv, contact_sheet.png and world.json. "
            "Deterministic by --seed.",
            "cgclip synth sports --out worlds/sports --seed 0",
            "cgclip synth dance --out worlds/dance-tiny --size tiny --frames 20",
        ),
    )
    parser.add_argument("kind", choices=["sports", "dance"], help="world kind")
    parser.add_argument("--out", required=True, help="output folder (created; written atomically)")
    parser.add_argument("--seed", type=in_range(int, 0, SEED_MAX), default=0, help="random seed (default 0)")
    parser.add_argument(
        "--size",
        default="default",
        choices=["default", "tiny"],
        help="size preset; the options below override it (default: default)",
    )
    for name in SIZE_OPTIONS:
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=in_range(int, 1),
            default=None,
            metavar="N",
            help=f"{name.replace('_', ' ')} (default: from --size)",
        )
    parser.add_argument(
        "--workers",
        type=in_range(int, 0),
        default=0,
        help="parallel processes rendering sequences (0 = one per CPU core, at most 4)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a different world already in --out")
    parser.add_argument("--no-contact-sheet", action="store_true", help="skip contact_sheet.png")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate the world and print a one-paragraph summary."""
    from cgclip.io_utils import check_parents
    from cgclip.synth import generate_world

    check_parents(args.out)
    workers = args.workers if args.workers > 0 else max(1, min(4, os.cpu_count() or 1))
    sizes = {name: getattr(args, name) for name in SIZE_OPTIONS}
    summary = generate_world(
        args.kind,
        args.out,
        args.seed,
        preset=args.size,
        workers=workers,
        overwrite=args.overwrite,
        contact_sheet=not args.no_contact_sheet,
        **sizes,
    )
    s = summary.sizes
    state = "already present, reused" if summary.reused else f"generated in {summary.seconds:.1f} s"
    print(f"{summary.kind} world (seed {summary.seed}) {state}: {summary.out}")
    print(
        f"  identities: train {summary.identities.get('train')}, val {summary.identities.get('val')}; "
        f"sequences: {len(summary.sequences)} ({s.frames} frames, {s.width}x{s.height}); "
        f"boxes: {summary.boxes} ({summary.occluded_boxes} partly occluded)"
    )
    if (summary.out / "contact_sheet.png").is_file():
        print(f"  contact sheet: {summary.out / 'contact_sheet.png'}")
    return 0
