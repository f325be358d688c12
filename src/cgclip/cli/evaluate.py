"""``cgclip evaluate``: test a trained run on its dataset's query/gallery split and write RUN/results.json."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cgclip.config import CHOICES


def register(subparsers: Any) -> None:
    """Add the ``evaluate`` sub-command."""
    p = subparsers.add_parser(
        "evaluate", help="evaluate a trained run (mAP, Rank-1/5/10/20, mINP) into RUN/results.json",
        description="Rebuild the run's model (frames only, no captions), extract query and gallery features with "
                    "the test frame sampling and rank them (SPEC §4). Options left out take the run's config. "
                    "On a folder written by `cgclip train --splits` every split is evaluated and mean ± std "
                    "reported.",
        epilog="example: cgclip evaluate --run runs/sports-cgclip --test-sampling dense")
    p.add_argument("--run", required=True, metavar="RUN", help="run folder written by cgclip train")
    p.add_argument("--dataset", metavar="DIR", help="dataset folder (default: the one the run was trained on)")
    p.add_argument("--checkpoint", choices=("best", "last", "final"), default="best",
                   help="weights: best by validation mAP (falls back to last without a validation split), the last "
                        "checkpoint, or the final export model.safetensors (default best)")
    p.add_argument("--test-sampling", choices=CHOICES["eval.sampling"],
                   help="rrs_first (first frame of each RRS chunk) or dense (all clips, features averaged)")
    p.add_argument("--gallery-mode", choices=CHOICES["eval.gallery_mode"],
                   help="gallery (torchreid) or query+gallery (TF-CLIP / original MARS code)")
    p.add_argument("--metric", choices=CHOICES["eval.metric"], help="distance (default cosine)")
    p.add_argument("--rerank", action="store_true", default=None, help="k-reciprocal re-ranking")
    p.add_argument("--split", type=int, help="iLIDS-VID split to test (default: the run's)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the run's)")
    p.add_argument("--precision", choices=CHOICES["train.precision"], help="inference precision (default: the run's)")
    p.add_argument("--batch-size", type=int, help="clips per forward pass")
    p.add_argument("--num-workers", type=int, help="data loader workers")
    p.add_argument("--neck-feat", choices=CHOICES["model.neck_feat"],
                   help="retrieval feature: before or after the BNNeck (default: the run's)")
    p.add_argument("--output", metavar="JSON", help="results file (default RUN/results.json)")
    p.set_defaults(func=run)


def format_result(result: dict[str, Any]) -> str:
    """One line of headline numbers (percent)."""
    from cgclip.eval.results import METRICS, percent

    return "  ".join(f"{k}={percent(result[k]):.2f}" for k in METRICS if k in result)


def run(args: argparse.Namespace) -> int:
    """Evaluate the run (or every split of a protocol folder) and print the headline numbers."""
    options = dict(checkpoint=args.checkpoint, sampling=args.test_sampling, gallery_mode=args.gallery_mode,
                   metric=args.metric, rerank=args.rerank, device=args.device, precision=args.precision,
                   batch_size=args.batch_size, num_workers=args.num_workers, neck_feat=args.neck_feat)
    from cgclip.io_utils import check_output_file

    root = Path(args.run)
    if (root / "protocol.json").is_file() and not (root / "config.yaml").is_file():
        from cgclip.eval.results import percent, read_results, write_results
        from cgclip.io_utils import read_json
        from cgclip.train.inference import evaluate_run
        from cgclip.train.protocol import METRICS, aggregate

        check_output_file(args.output or root / "results.json")

        splits = read_json(root / "protocol.json")["splits"]
        per_split = {}
        for split in splits:
            per_split[split] = evaluate_run(root / f"split-{split}", args.dataset, **options)
            print(f"split {split}: {format_result(per_split[split])}")
        summary = read_results(root / "results.json") if (root / "results.json").is_file() else {}
        summary.update(metrics=aggregate(per_split),
                       splits={str(s): {k: r[k] for k in METRICS} for s, r in per_split.items()})
        first = per_split[splits[0]]
        summary["protocol"] = {**{k: v for k, v in first["protocol"].items() if k not in ("split", "epoch")},
                               "splits": splits, "aggregate": "mean and std (ddof=1) over splits"}
        out = Path(args.output) if args.output else root / "results.json"
        summary = write_results(out, summary)
        print("mean ± std: " + "  ".join(f"{k}={percent(v['mean']):.2f}±{percent(v['std']):.2f}"
                                         for k, v in summary["metrics"].items()))
        print(f"results: {out}")
        return 0
    from cgclip.train.inference import evaluate_run

    check_output_file(args.output or root / "results.json")
    result = evaluate_run(root, args.dataset, split=args.split, output=args.output, **options)
    proto = result["protocol"]
    print(f"{result['model']} on {proto.get('dataset')} ({proto['num_query']} queries, {proto['num_gallery']} gallery; "
          f"{proto['gallery_mode']}, {proto['test_sampling']}, {proto['checkpoint']} epoch {proto.get('epoch')})")
    print(format_result(result))
    print(f"results: {args.output or root / 'results.json'}")
    return 0
