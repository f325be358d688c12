"""The paired comparison: TAP, TF-CLIP and CG-CLIP trained on the same data over N seeds, with confidence intervals.

A seed is one pair of synthetic worlds (sports and dance, generated from that seed) on which the three models train
with the demo's recipe (the ``tiny`` preset, the shipped tiny CLIP) and the same training seed. Each model's setting
is the one of the table it reproduces: captions only on these worlds (the annotation captions of the paper's
SportsVReID / DanceVReID results, Table S.6), TF-CLIP as released (SIE on the CLS token with the unseen-camera rule,
per-frame erasing), retrieval before the BNNeck.

Incremental: every (seed, world, model) result is appended to ``--results`` (JSON lines) as soon as it finishes,
keyed by :func:`cgclip.train.results_key.results_key` (resolved configuration, world, seed, CLIP, results version);
a rerun skips results whose key is there and ignores rows whose key no longer matches, so a stale result is never
reused. Run folders go to ``--out`` (an interrupted training resumes there). ``--report`` only prints the tables
from what is done so far.

Printed: per world and model, mAP and Rank-1 mean ± sample std over the seeds; the paired differences CG-CLIP −
TF-CLIP, CG-CLIP − TAP and TF-CLIP − TAP with two-sided 95 % paired-t confidence intervals and one verdict line per
claim; the Spearman rank correlation between each run's best validation mAP and its test mAP.

    python benchmarks/bench_compare.py --seeds 0 1 2 3 4 5 6 7          # resumable; about 10-18 min per seed
    python benchmarks/bench_compare.py --seeds 0 1 2 3 4 5 6 7 --report # the tables so far
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from cgclip.demo import MODELS, WORLDS
from cgclip.demo.pipeline import prepare_clip, prepare_world, run_config, train_and_evaluate, write_captions
from cgclip.demo.settings import DemoSettings, demo_settings
from cgclip.eval.paired import mean_std, paired_difference, spearman, verdict
from cgclip.eval.results import read_results, read_results_lines, stamp, to_percent
from cgclip.io_utils import atomic_write_text
from cgclip.registry import MODELS as REGISTERED
from cgclip.train.results_key import RESULTS_VERSION
from cgclip.train.run_dir import RunDir

LABELS = {m: REGISTERED.meta(m, "label") for m in REGISTERED.names()}
METRIC_NAMES = {"mAP": "mAP", "rank1": "Rank-1"}
DEFAULT_RESULTS = Path(__file__).resolve().parent / "results" / "compare.jsonl"
#: (model claimed better, model claimed worse)
CLAIMS = (("cgclip", "tfclip"), ("cgclip", "tap"), ("tfclip", "tap"))


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The result rows written so far, metrics in the results unit (none when the file does not exist; rows from
    before the results schema were in percent)."""
    return read_results_lines(path, legacy_unit="percent")


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one result row (metrics in the results unit), with the schema fields, and flush it to disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(stamp(row), sort_keys=True) + "\n")
        f.flush()


def expected_keys(
    seeds: list[int], worlds: list[str], out: Path, settings: DemoSettings, clip: Path
) -> dict[tuple[int, str, str], str]:
    """(seed, world, model) → the results key today's code and recipe give it."""
    keys = {}
    for seed in seeds:
        for kind in worlds:
            folder = out / f"seed-{seed}"
            for model in MODELS:
                _, keys[(seed, kind, model)] = run_config(
                    kind, model, folder / "datasets" / kind, folder / "captions" / f"{kind}.jsonl", clip, seed, settings
                )
    return keys


def run_one(seed: int, kind: str, model: str, key: str, out: Path, settings: DemoSettings, clip: Path) -> dict:
    """Train and evaluate one (seed, world, model) and return its result row."""
    folder = out / f"seed-{seed}"
    say = lambda line: print(f"[seed {seed}] {line}", flush=True)  # noqa: E731
    ds = prepare_world(kind, folder, seed, settings, say)
    caps = write_captions(kind, ds, folder, say)
    start = time.perf_counter()
    res = train_and_evaluate(kind, model, ds, caps, clip, folder, seed, settings, say)
    if res.get("results_key") != key:
        raise SystemExit(f"{folder}: the run's key {res.get('results_key')} is not the expected {key}")
    run = read_results(folder / "runs" / kind / model / "run.json")
    last = last_checkpoint_map(folder / "runs" / kind / model)
    cfg = RunDir(folder / "runs" / kind / model).load_config()
    setting = {
        "identity_mode": cfg.model.identity_mode if model == "cgclip" else None,
        "sie": cfg.model.sie,
        "erase_mode": cfg.data.erase_mode,
        "part_norm": cfg.model.part_norm,
        "tfe_norm": cfg.model.tfe_norm,
        "val_identities": cfg.data.val_identities,
        "val_selection": cfg.data.val_selection,
    }
    return {
        **setting,
        "seed": seed,
        "world": kind,
        "model": model,
        "key": key,
        "results_version": RESULTS_VERSION,
        "mAP": res["mAP"],
        "rank1": res["rank1"],
        "rank5": res.get("rank5", float("nan")),
        "mINP": res["mINP"],
        "val_mAP": run["best_val_mAP"] if run.get("best_val_mAP") else None,
        "best_epoch": run.get("best_epoch"),
        "mAP_last": last,
        "train_s": res.get("timing", {}).get("train_s"),
        "wall_s": round(time.perf_counter() - start, 1),
    }


def last_checkpoint_map(run_dir: Path) -> float:
    """Test mAP (a fraction) of the run's last epoch, beside the best-validation checkpoint the result row reports: what
    model selection on the validation split changed (written to ``results_last.json``)."""
    from cgclip.train.inference import evaluate_run

    return evaluate_run(run_dir, checkpoint="final", output=run_dir / "results_last.json")["mAP"]


def selection_lines(rows: dict[tuple[int, str, str], dict], worlds: list[str]) -> list[str]:
    """What selecting the best validation epoch did to test mAP, against keeping the last epoch."""
    lines = []
    for kind in worlds:
        got = [r for r in rows.values() if r["world"] == kind and r.get("mAP_last") is not None]
        if len(got) >= 2:
            d = paired_difference([r["mAP"] for r in got], [r["mAP_last"] for r in got])
            epochs = sorted(r["best_epoch"] for r in got if r.get("best_epoch") is not None)
            lines.append(
                f"model selection ({kind}, {d.n} runs): best-validation minus last-epoch test mAP "
                f"{d.mean:+.1f} [{d.ci_low:+.1f}, {d.ci_high:+.1f}], better in {d.wins}, worse in "
                f"{d.losses}; selected epochs {epochs[0]}–{epochs[-1]} (median {epochs[len(epochs) // 2]})"
            )
    return lines


def per_model_table(rows: dict[tuple[int, str, str], dict], worlds: list[str]) -> list[str]:
    """Markdown rows: mean ± std of mAP and Rank-1, seeds, and the worst seed's mAP."""
    lines = ["| world | model | mAP | Rank-1 | mINP | worst seed mAP | seeds |", "|---|---|---:|---:|---:|---:|---:|"]
    for kind in worlds:
        for model in MODELS:
            got = [r for (s, w, m), r in sorted(rows.items()) if w == kind and m == model]
            if not got:
                continue
            cells = [mean_std([r[k] for r in got]) for k in ("mAP", "rank1", "mINP")]
            worst = min(got, key=lambda r: r["mAP"])
            lines.append(
                f"| {kind} | {LABELS[model]} | "
                + " | ".join(f"{m:.1f} ± {s:.1f}" for m, s in cells)
                + f" | {worst['mAP']:.1f} (seed {worst['seed']}) | {len(got)} |"
            )
    return lines


def paired_lines(rows: dict[tuple[int, str, str], dict], worlds: list[str], metric: str = "mAP") -> list[str]:
    """Paired differences and one verdict line per claim and world (seeds where both models finished)."""
    lines = [
        f"| world | difference ({METRIC_NAMES[metric]}) | mean | 95 % CI (paired t) | wins | seeds |",
        "|---|---|---:|---|---:|---:|",
    ]
    verdicts = []
    for kind in worlds:
        for a, b in CLAIMS:
            seeds = sorted(
                {s for (s, w, m) in rows if w == kind and m == a} & {s for (s, w, m) in rows if w == kind and m == b}
            )
            if not seeds:
                continue
            d = paired_difference(
                [rows[(s, kind, a)][metric] for s in seeds], [rows[(s, kind, b)][metric] for s in seeds]
            )
            la, lb = LABELS[a], LABELS[b]
            ci = f"[{d.ci_low:+.1f}, {d.ci_high:+.1f}]" if d.n >= 2 else "– (one seed)"
            lines.append(f"| {kind} | {la} − {lb} | {d.mean:+.1f} | {ci} | {d.wins} of {d.n} | {d.n} |")
            verdicts.append(verdict(f"{la} > {lb} ({kind})", d, unit=METRIC_NAMES[metric]))
    return lines + [""] + verdicts


def correlation_lines(rows: dict[tuple[int, str, str], dict], worlds: list[str]) -> list[str]:
    """Spearman correlation of best validation mAP and test mAP: over the runs (per world and all; seeds differ in
    difficulty, so this mixes seeds and models) and within each world-seed over its three models (what choosing a
    model or preset on validation needs), with how often validation's best model is the test's best."""
    lines = []
    for kind in worlds:
        within, same_best = [], 0
        for seed in sorted({s for (s, w, _) in rows if w == kind}):
            got = [rows[(seed, kind, m)] for m in MODELS if (seed, kind, m) in rows]
            if len(got) == len(MODELS) and all(r.get("val_mAP") is not None for r in got):
                within.append(spearman([r["val_mAP"] for r in got], [r["mAP"] for r in got]))
                same_best += max(got, key=lambda r: r["val_mAP"])["model"] == max(got, key=lambda r: r["mAP"])["model"]
        if within:
            lines.append(
                f"validation–test agreement within a world-seed ({kind}, {len(within)} seeds, 3 models "
                f"each): mean Spearman {np.nanmean(within):+.2f}; validation's best model is the test's "
                f"best on {same_best} of {len(within)}"
            )
    for label, subset in [
        *((k, [r for r in rows.values() if r["world"] == k]) for k in worlds),
        ("all", list(rows.values())),
    ]:
        pairs = [(r["val_mAP"], r["mAP"]) for r in subset if r.get("val_mAP") is not None]
        if len(pairs) >= 3:
            rho = spearman([p[0] for p in pairs], [p[1] for p in pairs])
            lines.append(
                f"validation–test rank correlation ({label}, {len(pairs)} runs): Spearman {rho:+.2f}; "
                f"mean validation mAP {np.mean([p[0] for p in pairs]):.1f}, "
                f"mean test mAP {np.mean([p[1] for p in pairs]):.1f}"
            )
    return lines


def report(rows: dict[tuple[int, str, str], dict], worlds: list[str]) -> str:
    """Every printed table, as Markdown text, from rows with metrics in percent (:func:`to_percent`)."""
    if not rows:
        return "no results yet for these seeds and today's results key"
    return "\n".join(
        [
            *per_model_table(rows, worlds),
            "",
            *paired_lines(rows, worlds, "mAP"),
            "",
            *paired_lines(rows, worlds, "rank1"),
            "",
            *correlation_lines(rows, worlds),
            *selection_lines(rows, worlds),
        ]
    )


def backfill_last(path: Path, done: dict[str, dict], keys: dict[tuple[int, str, str], str], out: Path) -> None:
    """Add ``mAP_last`` to finished rows that lack it while their run folder is still there (rewrites ``path``)."""
    changed = False
    for (seed, kind, model), key in keys.items():
        row = done.get(key)
        run_dir = out / f"seed-{seed}" / "runs" / kind / model
        if row is not None and row.get("mAP_last") is None and (run_dir / "model.json").is_file():
            row["mAP_last"] = last_checkpoint_map(run_dir)
            changed = True
    if changed:
        atomic_write_text(path, "".join(json.dumps(stamp(r), sort_keys=True) + "\n" for r in done.values()))


def main() -> None:
    """Run what is missing (unless ``--report``) and print the tables."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    ap.add_argument("--worlds", nargs="+", choices=WORLDS, default=list(WORLDS))
    ap.add_argument("--out", type=Path, default=Path(".bench_out/compare"), help="run folders (resumable)")
    ap.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="result rows, JSON lines (committed)")
    ap.add_argument("--report", action="store_true", help="print the tables from what is done; train nothing")
    ap.add_argument("--max-runs", type=int, default=0, help="stop after this many new runs (0 = no limit)")
    args = ap.parse_args()
    settings = demo_settings(False)
    clip = prepare_clip(None)
    keys = expected_keys(args.seeds, args.worlds, args.out, settings, clip)
    done = {r["key"]: r for r in read_rows(args.results)}
    if not args.report:
        backfill_last(args.results, done, keys, args.out)
    new = 0
    for (seed, kind, model), key in keys.items():
        if args.report or key in done or (args.max_runs and new >= args.max_runs):
            continue
        done[key] = run_one(seed, kind, model, key, args.out, settings, clip)
        append_row(args.results, done[key])
        new += 1
    rows = {k: to_percent(done[key]) for k, key in keys.items() if key in done}
    print(report(rows, args.worlds))
    print(
        f"\n{len(rows)} of {len(keys)} runs done (results version {RESULTS_VERSION}); metrics in percent; test "
        "protocol: gallery convention, cosine distance, first frame of each RRS chunk"
    )


if __name__ == "__main__":
    main()
