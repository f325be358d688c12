"""Choose CG-CLIP's feature balance on the validation split of a development world (never a test split).

CG-CLIP's retrieval feature concatenates the CLS mean and the TFE output; unbalanced, the CLS half dominates cosine
distance. Two levers: ``model.tfe_norm`` (a LayerNorm on the TFE output; changes training) and ``model.part_norm``
(each part L2-normalised in the retrieval feature; changes retrieval only, so one trained run is scored both ways).
For each world of a development seed this trains CG-CLIP with ``tfe_norm`` off and on (the demo's recipe otherwise)
and prints the **validation** mAP of the last checkpoint under both ``part_norm`` settings: the choice is the row with
the best mean validation mAP. The test split is not evaluated.

    python benchmarks/select_feature_balance.py --out .bench_out/dev-100 --seed 100
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from cgclip.demo import WORLDS
from cgclip.demo.pipeline import prepare_clip, prepare_world, train_and_evaluate, write_captions
from cgclip.demo.settings import demo_settings
from cgclip.eval.results import percent, write_results
from cgclip.train.datasets import open_dataset
from cgclip.train.inference import load_run_model
from cgclip.train.run_dir import RunDir
from cgclip.train.setup import validate
from cgclip.train.trainer import resolve_precision
from cgclip.train.validation import carve_validation

VARIANTS = {"none": ["model.tfe_norm=false"], "tfe_norm": ["model.tfe_norm=true"]}


def validation_maps(run_dir: Path) -> dict[bool, float]:
    """Validation mAP (a fraction) of the run's last checkpoint with ``part_norm`` off and on."""
    cfg = RunDir(run_dir).load_config()
    model, _ = load_run_model(run_dir, "final")
    split = carve_validation(
        open_dataset(cfg.data).train, cfg.data.val_identities, cfg.train.seed, cfg.data.val_selection
    )
    device = torch.device("cpu")
    out = {}
    for part_norm in (False, True):
        model.part_norm = part_norm
        out[part_norm] = validate(model, split, cfg, device, resolve_precision(cfg.train.precision, device))["mAP"]
    return out


def main() -> None:
    """Train the variants on the development worlds and print the validation table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(".bench_out/dev-100"))
    ap.add_argument("--seed", type=int, default=100, help="a development seed (never one the comparison reports)")
    ap.add_argument("--worlds", nargs="+", default=list(WORLDS))
    args = ap.parse_args()
    settings = demo_settings(False)
    clip = prepare_clip(None)
    rows = {}
    for kind in args.worlds:
        ds = prepare_world(kind, args.out, args.seed, settings, print)
        caps = write_captions(kind, ds, args.out, print)
        for name, overrides in VARIANTS.items():
            run = f"cgclip-{name}"
            train_and_evaluate(
                kind, "cgclip", ds, caps, clip, args.out, args.seed, settings, print, run_name=run, overrides=overrides
            )
            for part_norm, value in validation_maps(args.out / "runs" / kind / run).items():
                rows.setdefault(f"{name}, part_norm={part_norm}", {})[kind] = {"val_mAP": value}
    write_results(args.out / "feature_balance.json", rows)
    print("| variant | " + " | ".join(f"{k} val mAP" for k in args.worlds) + " | mean |")
    print("|---|" + "---:|" * (len(args.worlds) + 1))
    for label, per in rows.items():
        vals = [percent(per[k]["val_mAP"]) for k in args.worlds]
        print(f"| {label} | " + " | ".join(f"{v:.1f}" for v in vals) + f" | {sum(vals) / len(vals):.1f} |")


if __name__ == "__main__":
    main()
