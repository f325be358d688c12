"""The demo's results: ``results.json`` (per world and model: mAP, Rank-1, Rank-5, mINP as fractions in the schema
of :mod:`cgclip.eval.results`, seed, protocol) and ``results.md`` (the same as a Markdown table, in percent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cgclip.demo.settings import DemoSettings
from cgclip.eval.results import percent, write_results
from cgclip.io_utils import atomic_write_text
from cgclip.registry import MODELS

MODEL_LABELS = {name: MODELS.meta(name, "long_label", name) for name in MODELS.names()}


def summarise(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Keep, per world and model, the headline metrics (fractions, 4 decimals), seed, protocol, timing and run
    folder."""
    table: dict[str, dict[str, Any]] = {}
    for kind, per_model in results.items():
        for model, res in per_model.items():
            table.setdefault(kind, {})[model] = {
                **{k: round(res[k], 4) for k in ("mAP", "rank1", "rank5", "mINP")},
                "seed": res.get("seed"),
                "protocol": res.get("protocol", {}),
                "train_s": res.get("timing", {}).get("train_s"),
                "dataset": res.get("dataset", {}).get("query"),
            }
    return table


def markdown_table(table: dict[str, dict[str, Any]]) -> str:
    """A Markdown table with one row per (world, model), metrics in percent."""
    lines = ["| world | model | mAP | Rank-1 | Rank-5 | mINP | train time (s) |", "|---|---|---:|---:|---:|---:|---:|"]
    for kind, per_model in table.items():
        for model, r in per_model.items():
            t = f"{r['train_s']:.0f}" if r.get("train_s") is not None else "–"
            lines.append(
                f"| {kind} | {MODEL_LABELS.get(model, model)} | {percent(r['mAP']):.1f} | "
                f"{percent(r['rank1']):.1f} | {percent(r['rank5']):.1f} | {percent(r['mINP']):.1f} | {t} |"
            )
    return "\n".join(lines) + "\n"


def write_report(
    out: Path,
    results: dict[str, dict[str, Any]],
    *,
    settings: DemoSettings,
    seed: int,
    quick: bool,
    clip: Path,
    elapsed_s: float,
) -> dict[str, Any]:
    """Write ``out/results.json`` and ``out/results.md``; returns the JSON summary."""
    table = summarise(results)
    any_res = next(iter(next(iter(results.values())).values())) if results else {}
    protocol = dict(any_res.get("protocol", {}))
    summary = {
        "results": table,
        "seed": seed,
        "quick": quick,
        "clip": str(clip),
        "settings": settings.to_dict(),
        "protocol": protocol,
        "elapsed_s": round(elapsed_s, 1),
        "runs": {k: {m: str(out / "runs" / k / m) for m in v} for k, v in results.items()},
        "note": "metrics as fractions in [0, 1] (results.md: x 100); synthetic worlds, embedded tiny CLIP, CPU — not "
        "comparable with the paper's real-data numbers",
    }
    summary = write_results(out / "results.json", summary)
    header = (
        f"# cgclip demo results\n\nSynthetic sports/dance worlds, embedded tiny CLIP, seed {seed}"
        f"{', --quick' if quick else ''}. Test protocol: gallery convention "
        f"`{protocol.get('gallery_mode', 'gallery')}`, "
        f"{protocol.get('metric', 'cosine')} distance, {protocol.get('test_sampling', 'rrs_first')} test "
        f"frames. Metrics in percent.\n\n"
    )
    atomic_write_text(out / "results.md", header + markdown_table(table))
    return summary
