"""``cgclip train``: train a video ReID model (cgclip, tfclip or tap) from a preset plus overrides into a run folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cgclip.cli._options import add_deprecated_alias, add_runtime_options, command_help
from cgclip.config import DATASET_KINDS, MODEL_NAMES


def register(subparsers: Any) -> None:
    """Add the ``train`` sub-command."""
    p = subparsers.add_parser(
        "train",
        help="train a video ReID model into a run folder",
        **command_help(
            "Train CG-CLIP or a baseline on a tracklet dataset. The configuration is a preset (Table "
            "S.7 recipes: mars, ilidsvid, sports, dance; lsvid from MARS's; tiny for CPU) and/or a YAML file "
            "(with _base_), "
            "then --set overrides. Writes the resolved config, dataset statistics, metrics.jsonl per "
            "epoch and checkpoints every epoch into --out. Under torchrun it trains with "
            "DistributedDataParallel.",
            "cgclip train --preset tiny --dataset data/sports --model cgclip --out runs/sports-cgclip",
            "cgclip train --preset ilidsvid --dataset data/ilidsvid --model tap --out runs/ilids-tap "
            "--protocol-splits 0-9",
        ),
    )
    p.add_argument("--preset", help="built-in preset: mars, lsvid, ilidsvid, sports, dance or tiny")
    p.add_argument("--config", metavar="YAML", help="YAML configuration file (may name a preset with _base_)")
    p.add_argument("--dataset", metavar="DIR", help="dataset folder (any format of --dataset-kind)")
    p.add_argument("--dataset-kind", choices=DATASET_KINDS, help="dataset format (default: from the config / detected)")
    p.add_argument("--model", choices=MODEL_NAMES, help="model to train (default: from the config, cgclip)")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder to write")
    p.add_argument(
        "--captions",
        metavar="SRC",
        help="cgclip only: caption store (.jsonl), identities.csv or dataset folder "
        "(default: the dataset folder's identities.csv)",
    )
    p.add_argument("--clip", metavar="DIR", help="Hugging Face CLIP directory (default: the embedded tiny CLIP)")
    p.add_argument(
        "--init",
        metavar="RUN",
        help="fine-tune from a trained run of the same model and CLIP layout (its best weights; classifiers, "
        "memories and the camera table start afresh); writes RUN_OUT/init.json",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set optim.lr=1e-5 --set model.cmr_fusion=b (repeatable)",
    )
    p.add_argument("--epochs", type=int, help="shortcut for --set train.epochs=N")
    p.add_argument("--seed", type=int, help="shortcut for --set train.seed=N")
    add_runtime_options(p, inherit="the config's train.device / train.precision, auto")
    protocol = p.add_argument(
        "--protocol-splits",
        metavar="SPEC",
        help="iLIDS-VID protocol: train and test each split (e.g. 0-9 or 0,3) into RUN/split-K "
        "and report mean ± std in RUN/results.json",
    )
    add_deprecated_alias(p, "--splits", protocol)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> Any:
    """The resolved configuration of the command line (preset ← YAML ← shortcuts ← --set)."""
    from cgclip.config import load_config

    overrides: list[str] = []
    if args.dataset:
        overrides.append(f"data.root={args.dataset}")
    if args.dataset_kind:
        overrides.append(f"data.kind={args.dataset_kind}")
    if args.model:
        overrides.append(f"model.name={args.model}")
    if args.clip:
        overrides.append(f"model.clip_path={args.clip}")
    if args.init:
        overrides.append(f"train.init={args.init}")
    if args.captions:
        overrides.append(f"data.captions={args.captions}")
    for key, value in (
        ("train.epochs", args.epochs),
        ("train.seed", args.seed),
        ("train.device", args.device),
        ("train.precision", args.precision),
    ):
        if value is not None:
            overrides.append(f"{key}={value}")
    if args.resume and not args.preset and not args.config:
        from cgclip.config import apply_overrides
        from cgclip.train.run_dir import RunDir

        run_dir = RunDir(args.out)
        if run_dir.exists():  # `cgclip train --out RUN --resume`: the run's own configuration
            return apply_overrides(run_dir.load_config(), overrides + list(args.overrides))
    return load_config(args.preset, overrides + list(args.overrides), yaml_path=args.config)


def _print_epoch(record: dict[str, Any]) -> None:
    losses = " ".join(f"{k}={v:.4f}" for k, v in record["losses"].items())
    line = (
        f"epoch {record['epoch']:3d}  loss={record['loss']:.4f} {losses}  lr={record['lr']:.2e}  "
        f"{record['tracklets_per_s']:.1f} tracklets/s  {record['frames_per_s']:.0f} frames/s  "
        f"{record['time_s']:.1f}s  peak {record['peak_memory_mb']:.0f} MB"
    )
    if record.get("val"):
        line += f"  val mAP={record['val']['mAP']:.4f} R1={record['val']['rank1']:.4f}"
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    """Train (or run the multi-split protocol) and print a per-epoch summary."""
    import os

    cfg = build_config(args)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    on_epoch = _print_epoch if rank0 else None
    if args.protocol_splits:
        from cgclip.eval.results import percent
        from cgclip.train.protocol import parse_splits, run_split_protocol

        splits = parse_splits(args.protocol_splits)

        def on_split(split: int, result: dict[str, Any]) -> None:
            if rank0:
                print(
                    f"split {split}: mAP={result['mAP']:.4f} R1={result['rank1']:.4f} R5={result['rank5']:.4f}",
                    flush=True,
                )

        summary = run_split_protocol(cfg, args.out, splits, on_epoch=on_epoch, on_split=on_split, command=sys.argv)
        if rank0:
            m = summary["metrics"]
            print(
                "mean ± std over splits "
                + ", ".join(str(s) for s in summary["protocol"]["splits"])
                + ": "
                + "  ".join(f"{k}={percent(v['mean']):.1f}±{percent(v['std']):.1f}" for k, v in m.items())
            )
            print(f"results: {args.out}/results.json")
        return 0
    from cgclip.train.trainer import train

    result = train(cfg, args.out, resume=args.resume, on_epoch=on_epoch, command=sys.argv)
    if rank0:
        best = (
            f"; best val mAP {result.best_metric:.4f} at epoch {result.best_epoch}"
            if result.best_metric is not None
            else ""
        )
        print(f"trained {cfg.model.name} for {result.epochs} epochs into {result.run_dir}{best}")
        init = Path(result.run_dir) / "init.json"
        if cfg.train.init and init.is_file():
            r = json.loads(init.read_text())
            print(
                f"started from {r['run']} ({r['checkpoint']}): {len(r['loaded'])} tensors loaded, "
                f"{len(r['reinitialised'])} re-initialised, {len(r['kept'])} kept as built, "
                f"{len(r['skipped'])} skipped (list: {init})"
            )
        print(f"next: cgclip evaluate --run {result.run_dir}")
    return 0
