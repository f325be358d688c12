"""The paper's ablations on the synthetic worlds: CG-CLIP with one option switched at a time, over several seeds.

Tables (paper numbers beside them in ``docs/RESULTS.md``): fusion encoder (a)/(b)/(c) (S.3), CMR blocks 1-4 (S.4),
identity strategy caption / + ID text / + ID emb (S.5), caption source annotation vs CLIP attribute captioner
(S.6), memory momentum and a static memory, TFE queries N^Q and output mode; and, beyond the paper, ``sampler``:
scene-aware P×K batches for all three models (only when asked for). Each seed reuses the worlds, datasets,
captions and default CG-CLIP run of the accuracy benchmark in ``OUT/seed-N`` (created when missing) and adds its
variants under ``OUT/seed-N/runs/<world>/ablation-<name>``; rerunning resumes finished runs.

    python benchmarks/bench_ablations.py --out .bench_out/accuracy --seeds 0 1 2 --tables sampler

    python benchmarks/bench_ablations.py --out .bench_out/accuracy --seeds 0 1 2
    python benchmarks/bench_ablations.py --out .bench_out/accuracy --seeds 0 --worlds sports --tables fusion
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from cgclip.demo import WORLDS
from cgclip.demo.pipeline import prepare_clip, prepare_world, train_and_evaluate, write_captions
from cgclip.demo.settings import demo_settings
from cgclip.eval.results import percent, write_results
from cgclip.registry import MODELS as REGISTERED

#: table -> [(row label, model, run name or None for the model's default run, overrides)]
TABLES: dict[str, list[tuple[str, str, str | None, list[str]]]] = {
    "fusion": [
        ("(a) self-attention over [memory, image]", "cgclip", "fusion-a", ["model.cmr_fusion=a"]),
        ("(b) self-attention → cross-attention", "cgclip", "fusion-b", ["model.cmr_fusion=b"]),
        ("(c) cross-attention → self-attention (default)", "cgclip", None, []),
    ],
    "cmr_blocks": [
        ("1", "cgclip", "blocks-1", ["model.cmr_blocks=1"]),
        ("2 (default)", "cgclip", None, []),
        ("3", "cgclip", "blocks-3", ["model.cmr_blocks=3"]),
        ("4", "cgclip", "blocks-4", ["model.cmr_blocks=4"]),
    ],
    "identity": [
        ("caption (default on sports / dance)", "cgclip", None, []),
        ("caption + ID text", "cgclip", "id-idtext", ["model.identity_mode=caption_idtext"]),
        ("caption + ID emb", "cgclip", "id-idemb", ["model.identity_mode=caption_idemb"]),
    ],
    "caption_source": [
        ("identity-table annotation (default)", "cgclip", None, []),
        ("CLIP attribute captioner", "cgclip", "captions-attributes", ["@attribute_captions"]),
    ],
    "memory": [
        ("momentum m = 0.2 (default)", "cgclip", None, []),
        ("momentum m = 0.9", "cgclip", "momentum-0.9", ["model.memory_momentum=0.9"]),
        ("static memory (no update)", "cgclip", "static-memory", ["model.static_memory=true"]),
    ],
    "tfe": [
        ("N^Q = 5", "cgclip", "tfe-q5", ["model.tfe_queries=5"]),
        ("N^Q = 15 (default)", "cgclip", None, []),
        ("N^Q = 30", "cgclip", "tfe-q30", ["model.tfe_queries=30"]),
        ("CLS mean only (no TFE)", "cgclip", "tfe-cls-mean", ["model.tfe_output=cls_mean"]),
        ("TFE feature only", "cgclip", "tfe-only", ["model.tfe_output=tfe"]),
        ("TFE output without its LayerNorm (tfe_norm off)", "cgclip", "tfe-no-norm", ["model.tfe_norm=false"]),
        ("parts L2-normalised in the retrieval feature (part_norm)", "cgclip", "part-norm", ["model.part_norm=true"]),
    ],
    # not a paper ablation: scene-aware P×K batches (4 of the 8 identities from one sequence, positives spread over
    # sequences) for all three models, to test whether the scene is what the models learn (docs/RESULTS.md)
    "sampler": [
        (
            f"{label}, {sampler}",
            model,
            None if sampler == "random P" else f"{model}-scene-batches",
            [] if sampler == "random P" else ["data.same_camera_identities=4", "data.spread_cameras=true"],
        )
        for model, label in ((m, REGISTERED.meta(m, "label")) for m in REGISTERED.names())
        for sampler in ("random P", "scene-aware P×K")
    ],
}


#: the paper's figures quoted in SPEC §5 (mAP / Rank-1; the dataset they were measured on)
PAPER = {
    "fusion": ["76.9 / 87.1 (SportsVReID)", "77.2 / 88.2 (SportsVReID)", "77.7 / 90.4 (SportsVReID)"],
    "cmr_blocks": ["89.5 / 91.9 (MARS)", "89.8 / 92.5 (MARS)", "89.6 / 91.9 (MARS)", "89.6 / 92.4 (MARS)"],
}


def attribute_captions(ds_dir: Path, clip: Path, out: Path, kind: str) -> Path:
    """Captions of the train identities by the CLIP attribute captioner (``cgclip caption attributes``), cached."""
    from cgclip.captions.attribute_captioner import caption_attributes, load_attribute_captioner
    from cgclip.captions.mllm import select_frames
    from cgclip.captions.store import CaptionStore
    from cgclip.clip.features import ClipFeatures
    from cgclip.data import load_dataset

    path = out / "captions" / f"{kind}-attributes.jsonl"
    dataset = load_dataset("vreid", ds_dir)
    items = select_frames(dataset.train, 4, root=ds_dir)
    caption_attributes(items, load_attribute_captioner(ClipFeatures(clip)), CaptionStore(path), model_name=clip.name)
    return path


def run_seed(out: Path, seed: int, tables: list[str], worlds: list[str], say=print) -> dict[str, dict[str, dict]]:
    """Every variant of ``tables`` on ``worlds`` for one seed; returns ``{world: {run name: results}}``."""
    settings = demo_settings(quick=False)
    clip = prepare_clip(None, say)
    found: dict[str, dict[str, dict]] = {}
    for kind in worlds:
        ds_dir = prepare_world(kind, out, seed, settings, say)
        captions = write_captions(kind, ds_dir, out, say)
        for table in tables:
            for _, model, name, overrides in TABLES[table]:
                if "@attribute_captions" in overrides:
                    overrides = [f"data.captions={attribute_captions(ds_dir, clip, out, kind)}"]
                run = f"ablation-{name}" if name else model
                found.setdefault(kind, {})[run] = train_and_evaluate(
                    kind, model, ds_dir, captions, clip, out, seed, settings, say, run_name=run, overrides=overrides
                )
    return found


def table_markdown(table: str, per_seed: dict[int, dict[str, dict[str, dict]]], worlds: list[str]) -> str:
    """One Markdown table: a row per variant, mAP and Rank-1 per world (mean ± std over the seeds every row of the
    table has, so rows compare like with like), the per-seed mAP and the paper's figure where SPEC §5 gives one."""
    runs = [f"ablation-{name}" if name else model for _, model, name, _ in TABLES[table]]
    common = {w: sorted(s for s, found in per_seed.items() if all(r in found.get(w, {}) for r in runs)) for w in worlds}
    paper = PAPER.get(table)
    head = "| variant | " + " | ".join(f"{w} mAP | {w} Rank-1" for w in worlds) + " | seeds | per-seed mAP |"
    lines = [
        head + (" paper mAP / Rank-1 |" if paper else ""),
        "|---|" + "---|---|" * len(worlds) + "---|---|" + ("---|" if paper else ""),
    ]
    for i, (label, run) in enumerate(zip([row[0] for row in TABLES[table]], runs)):
        cells, per = [], []
        for world in worlds:
            rows = [per_seed[s][world][run] for s in common[world]]
            for key in ("mAP", "rank1"):
                vals = np.array([percent(r[key]) for r in rows], dtype=float)
                cells.append(
                    "–"
                    if not len(vals)
                    else f"{vals.mean():.1f}"
                    if len(vals) == 1
                    else f"{vals.mean():.1f} ± {vals.std(ddof=1):.1f}"
                )
            per.append(", ".join(f"{percent(r['mAP']):.1f}" for r in rows))
        n = max(len(c) for c in common.values())
        lines.append(
            f"| {label} | " + " | ".join(cells) + f" | {n} | {'; '.join(per)} |" + (f" {paper[i]} |" if paper else "")
        )
    return "\n".join(lines)


def main() -> None:
    """Run the chosen tables for every seed (resuming finished runs) and print them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(".bench_out/accuracy"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tables", nargs="+", choices=sorted(TABLES), default=[t for t in TABLES if t != "sampler"])
    parser.add_argument("--worlds", nargs="+", choices=WORLDS, default=list(WORLDS))
    args = parser.parse_args()
    start = time.perf_counter()
    per_seed = {seed: run_seed(args.out / f"seed-{seed}", seed, args.tables, args.worlds) for seed in args.seeds}
    elapsed = time.perf_counter() - start
    report = {
        "seeds": args.seeds,
        "tables": args.tables,
        "worlds": args.worlds,
        "elapsed_s": round(elapsed, 1),
        "results": {
            str(s): {
                w: {r: {k: v[k] for k in ("mAP", "rank1", "mINP")} for r, v in runs.items()}
                for w, runs in worlds.items()
            }
            for s, worlds in per_seed.items()
        },
    }
    name = "paper" if args.tables == [t for t in TABLES if t != "sampler"] else "-".join(args.tables)
    write_results(args.out / f"ablations-{name}.json", report)
    for table in args.tables:
        print(f"\n### {table}\n")
        print(table_markdown(table, per_seed, args.worlds))
    print(f"\n{elapsed:.0f} s for seeds {args.seeds}")


if __name__ == "__main__":
    main()
