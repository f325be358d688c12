"""The comparison benchmark's bookkeeping and report on result rows the test makes (no training)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_compare", ROOT / "benchmarks" / "bench_compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(gap: float) -> dict:
    rows = {}
    for seed in range(4):
        for model, base in (("tap", 50.0), ("tfclip", 48.0), ("cgclip", 50.0 + gap)):
            m = base + seed + (0.3 if seed % 2 and model == "cgclip" else 0.0)
            rows[(seed, "sports", model)] = {
                "seed": seed,
                "world": "sports",
                "model": model,
                "mAP": m,
                "rank1": m - 5,
                "mINP": m - 10,
                "val_mAP": m + 20,
            }
    return rows


def test_report_gives_intervals_verdicts_and_correlation(bench):
    text = bench.report(_rows(gap=3.0), ["sports"])
    assert "| sports | CG-CLIP | 54.7 ± 1.4 |" in text
    assert "worst seed mAP" in text and "53.0 (seed 0)" in text
    assert "CG-CLIP > TF-CLIP (sports): supported" in text and "4 of 4 seeds" in text
    assert "TF-CLIP > TAP (sports): contradicted" in text
    assert "validation–test rank correlation (sports, 12 runs): Spearman +1.00" in text
    assert "mean Spearman +1.00; validation's best model is the test's best on 4 of 4" in text
    tied = bench.report(_rows(gap=-0.15), ["sports"])
    assert "CG-CLIP > TAP (sports): not resolved" in tied


def test_rows_are_appended_and_read_back(bench, tmp_path):
    path = tmp_path / "results" / "compare.jsonl"
    assert bench.read_rows(path) == []
    bench.append_row(path, {"key": "a", "mAP": 1.0})
    bench.append_row(path, {"key": "b", "mAP": 2.0})
    assert [r["key"] for r in bench.read_rows(path)] == ["a", "b"]


def test_results_key_changes_with_what_changes_a_result(monkeypatch):
    from cgclip.config import load_config
    from cgclip.train import results_key as rk

    base = load_config("tiny", ["model.name=tfclip", "data.root=/a"])
    key = rk.results_key(base, world="sports", seed=0)
    assert key == rk.results_key(
        load_config("tiny", ["model.name=tfclip", "data.root=/elsewhere"]), world="sports", seed=0
    )  # folders do not enter the key
    assert key != rk.results_key(base, world="sports", seed=1)
    assert key != rk.results_key(
        load_config("tiny", ["model.name=tfclip", "model.neck_feat=after"]), world="sports", seed=0
    )
    # a model-dependent default is part of the key: TF-CLIP's per-frame erasing spelled out gives the same key
    assert key == rk.results_key(
        load_config("tiny", ["model.name=tfclip", "data.erase_mode=frame"]), world="sports", seed=0
    )
    monkeypatch.setattr(rk, "RESULTS_VERSION", rk.RESULTS_VERSION + 1)
    assert key != rk.results_key(base, world="sports", seed=0)
