"""Accuracy benchmark: TAP, TF-CLIP and CG-CLIP on both synthetic worlds over several seeds (mean ± std).

Each seed runs the demo pipeline (:func:`cgclip.demo.run_demo`: its own worlds, datasets, captions and training
seed) into ``OUT/seed-N``, all with the shipped embedded tiny CLIP. Rerunning resumes finished seeds and models, so
``OUT/seed-0`` may be a folder ``cgclip demo --out OUT/seed-0`` wrote.

    python benchmarks/bench_accuracy.py --out .bench_out/accuracy --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from cgclip.demo import MODELS, WORLDS, run_demo
from cgclip.demo.report import MODEL_LABELS
from cgclip.eval.results import percent, read_results, write_results


def aggregate(per_seed: dict[int, dict]) -> dict[str, dict[str, dict]]:
    """``{"mean", "std"}`` (sample std, ddof=1 when there are 2+ seeds; fractions) of mAP, Rank-1 and mINP, and the
    number of seeds, per world and model of the demo summaries ``per_seed``."""
    summaries = [read_results(s)["results"] for s in per_seed.values()]
    out: dict[str, dict[str, dict]] = {}
    for world in WORLDS:
        for model in MODELS:
            rows = [s[world][model] for s in summaries if model in s.get(world, {})]
            if not rows:
                continue
            stats: dict = {}
            for key in ("mAP", "rank1", "mINP"):
                vals = np.array([r[key] for r in rows], dtype=float)
                stats[key] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0}
            stats["seeds"] = len(rows)
            out.setdefault(world, {})[model] = stats
    return out


def table(agg: dict[str, dict[str, dict]]) -> str:
    """Markdown table of the aggregate, in percent."""
    lines = ["| world | model | mAP | Rank-1 | mINP | seeds |", "|---|---|---|---|---|---|"]
    for world, per_model in agg.items():
        for model, s in per_model.items():
            cells = [f"{percent(s[k]['mean']):.1f} ± {percent(s[k]['std']):.1f}" for k in ("mAP", "rank1", "mINP")]
            lines.append(f"| {world} | {MODEL_LABELS.get(model, model)} | " + " | ".join(cells) + f" | {s['seeds']} |")
    return "\n".join(lines)


def main() -> None:
    """Run every seed (resuming finished ones) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(".bench_out/accuracy"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="the demo's --quick sizes")
    args = parser.parse_args()
    start = time.perf_counter()
    per_seed = {}
    for seed in args.seeds:
        per_seed[seed] = run_demo(
            args.out / f"seed-{seed}",
            quick=args.quick,
            seed=seed,
            pictures=False,
            say=lambda line, s=seed: print(f"[seed {s}] {line}", flush=True),
        )
    agg = aggregate(per_seed)
    write_results(args.out / "accuracy.json", {"seeds": args.seeds, "quick": args.quick, "aggregate": agg})
    print(table(agg))
    print(f"\n{len(args.seeds)} seeds in {time.perf_counter() - start:.0f} s; metrics in percent, mean ± std")


if __name__ == "__main__":
    main()
