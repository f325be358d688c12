"""``cgclip evaluate``: test a trained run on its dataset's query/gallery split and write RUN/results.json."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cgclip.cli._options import add_deprecated_alias, add_runtime_options, command_help, in_range
from cgclip.config import CHOICES


def register(subparsers: Any) -> None:
    """Add the ``evaluate`` sub-command."""
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a trained run (mAP, Rank-1/5/10/20, mINP) into RUN/results.json",
        **command_help(
            "Rebuild the run's model (frames only, no captions), extract query and gallery features "
            "with the test frame sampling and rank them (SPEC §4). Options left out take the run's "
            "config. On a folder written by `cgclip train --protocol-splits` every split is evaluated "
            "and mean ± std reported.",
            "cgclip evaluate --run runs/sports-cgclip --test-sampling dense",
            "cgclip evaluate --run runs/sports-cgclip --neck-feat after --out after.json",
            "cgclip evaluate --run runs/my-video --same-camera keep",
        ),
    )
    p.add_argument("--run", required=True, metavar="RUN", help="run folder written by cgclip train")
    p.add_argument("--dataset", metavar="DIR", help="dataset folder (default: the one the run was trained on)")
    p.add_argument(
        "--checkpoint",
        choices=("best", "last", "final"),
        default="best",
        help="weights: best by validation mAP (falls back to last without a validation split), the last "
        "checkpoint, or the final export model.safetensors (default best)",
    )
    p.add_argument(
        "--test-sampling",
        choices=CHOICES["eval.sampling"],
        help="rrs_first (first frame of each RRS chunk) or dense (all clips, features averaged)",
    )
    p.add_argument(
        "--gallery-mode",
        choices=CHOICES["eval.gallery_mode"],
        help="gallery (torchreid) or query+gallery (TF-CLIP / original MARS code)",
    )
    p.add_argument(
        "--same-camera",
        choices=CHOICES["eval.same_camera"],
        help="drop a query's matches seen by its own camera (torchreid) or keep them (footage without camera ids)",
    )
    p.add_argument("--metric", choices=CHOICES["eval.metric"], help="distance (default cosine)")
    p.add_argument("--rerank", action="store_true", default=None, help="k-reciprocal re-ranking")
    p.add_argument("--split", type=in_range(int, 0, 9), help="iLIDS-VID split to test (default: the run's)")
    add_runtime_options(p, inherit="the run's")
    p.add_argument("--batch-size", type=in_range(int, 1), help="clips per forward pass")
    p.add_argument("--num-workers", type=in_range(int, 0), help="data loader workers")
    p.add_argument(
        "--neck-feat",
        choices=CHOICES["model.neck_feat"],
        help="retrieval feature: before or after the BNNeck (default: the run's)",
    )
    out = p.add_argument("--out", metavar="JSON", help="results file (default RUN/results.json)")
    add_deprecated_alias(p, "--output", out)
    p.set_defaults(func=run)


def format_result(result: dict[str, Any]) -> str:
    """One line of headline numbers (percent)."""
    from cgclip.eval.results import METRICS, percent

    return "  ".join(f"{k}={percent(result[k]):.2f}" for k in METRICS if k in result)


def run(args: argparse.Namespace) -> int:
    """Evaluate the run (or every split of a protocol folder) and print the headline numbers."""
    from cgclip.io_utils import check_output_file
    from cgclip.train.protocol import is_protocol_dir

    options = dict(
        checkpoint=args.checkpoint,
        sampling=args.test_sampling,
        gallery_mode=args.gallery_mode,
        same_camera=args.same_camera,
        metric=args.metric,
        rerank=args.rerank,
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        neck_feat=args.neck_feat,
    )
    root = Path(args.run)
    out = Path(args.out) if args.out else root / "results.json"
    check_output_file(out, "--out")
    if is_protocol_dir(root):
        return _run_protocol(root, out, args.dataset, options)
    from cgclip.train.inference import evaluate_run

    result = evaluate_run(root, args.dataset, split=args.split, output=out, **options)
    proto = result["protocol"]
    print(
        f"{result['model']} on {proto.get('dataset')} ({proto['num_query']} queries, {proto['num_gallery']} gallery; "
        f"{proto['gallery_mode']}, same camera: {proto['same_camera']}, {proto['test_sampling']}, "
        f"{proto['checkpoint']} epoch {proto.get('epoch')})"
    )
    print(format_result(result))
    print(f"results: {out}")
    return 0


def _run_protocol(root: Path, out: Path, dataset: str | None, options: dict[str, Any]) -> int:
    """Evaluate every split of a protocol folder; print each split and the mean ± std."""
    from cgclip.eval.results import percent
    from cgclip.train.protocol import evaluate_protocol

    summary = evaluate_protocol(
        root, dataset, output=out, **options, on_split=lambda split, r: print(f"split {split}: {format_result(r)}")
    )
    print(
        "mean ± std: "
        + "  ".join(f"{k}={percent(v['mean']):.2f}±{percent(v['std']):.2f}" for k, v in summary["metrics"].items())
    )
    print(f"results: {out}")
    return 0
