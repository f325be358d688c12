"""``cgclip extract``: feature files of a dataset's tracklets from a trained run, for ``cgclip search``."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from cgclip.config import CHOICES

SPLITS = ("query", "gallery", "train")


def register(subparsers: Any) -> None:
    """Add the ``extract`` sub-command."""
    p = subparsers.add_parser(
        "extract", help="write tracklet feature files from a trained run (for cgclip search)",
        description="Extract retrieval features (frames only) of a dataset's query / gallery / train tracklets with "
                    "a trained run's model and write OUT/<split>.safetensors + OUT/<split>.json. Interrupted "
                    "extraction resumes from its finished chunks.",
        epilog="example: cgclip extract --run runs/sports-cgclip --dataset data/sports --out feats && "
               "cgclip search --gallery feats/gallery --query feats/query --topk 10")
    p.add_argument("--run", required=True, metavar="RUN", help="run folder written by cgclip train")
    p.add_argument("--dataset", metavar="DIR", help="dataset folder (default: the run's)")
    p.add_argument("--out", required=True, metavar="FEATS", help="output folder for the feature files")
    p.add_argument("--splits", nargs="+", choices=SPLITS, default=["query", "gallery"],
                   help="which tracklets to extract (default: query gallery)")
    p.add_argument("--checkpoint", choices=("best", "last", "final"), default="best", help="weights (default best)")
    p.add_argument("--test-sampling", choices=CHOICES["eval.sampling"], help="frame sampling (default: the run's)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the run's)")
    p.add_argument("--precision", choices=CHOICES["train.precision"], help="inference precision (default: the run's)")
    p.add_argument("--batch-size", type=int, help="clips per forward pass")
    p.add_argument("--num-workers", type=int, help="data loader workers")
    p.set_defaults(func=run)


#: Marks a folder as written by ``cgclip extract`` (so a rerun may add to it).
FEATURES_MARKER = ".cgclip-features"


def run(args: argparse.Namespace) -> int:
    """Extract and save the requested splits."""
    from cgclip.eval.features_io import save_features
    from cgclip.io_utils import atomic_write_text, check_output_dir
    from cgclip.train.datasets import open_dataset
    from cgclip.train.distributed import resolve_device
    from cgclip.train.inference import extract_run_features, load_run_model
    from cgclip.train.run_dir import RunDir
    from cgclip.train.trainer import resolve_precision

    out = Path(args.out)
    check_output_dir(out, (out / FEATURES_MARKER).is_file(),
                     fix="choose a new --out (extract writes only into a new or empty folder, or one it wrote)")
    run_dir = RunDir(args.run)
    cfg = run_dir.load_config()
    if args.test_sampling:
        cfg.eval.sampling = args.test_sampling
    device = resolve_device(args.device or cfg.train.device)
    precision = resolve_precision(args.precision or cfg.train.precision, device)
    dataset = open_dataset(cfg.data, args.dataset)
    model, info = load_run_model(run_dir.root, args.checkpoint, device)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / FEATURES_MARKER).exists():
        atomic_write_text(out / FEATURES_MARKER, "written by cgclip extract\n")
    cache = out / ".cache"
    for split in args.splits:
        tracklets = getattr(dataset, split)
        if not tracklets:
            print(f"{split}: no tracklets, skipped")
            continue
        feats = extract_run_features(model, info, tracklets, cfg=cfg, device=device, precision=precision,
                                     cache_dir=cache, batch_size=args.batch_size, num_workers=args.num_workers,
                                     desc=split)
        extra = {"run": str(run_dir.root.resolve()), "checkpoint": info["checkpoint"], "epoch": info.get("epoch"),
                 "model": info["model"]["name"], "split": split, "test_sampling": cfg.eval.sampling,
                 "dataset": dataset.name, "root": dataset.root}
        st_path, _ = save_features(out / split, feats, tracklets, extra=extra)
        print(f"{split}: {feats.shape[0]} × {feats.shape[1]} features -> {st_path}")
    shutil.rmtree(cache, ignore_errors=True)
    return 0
