"""One results schema (``cgclip.eval.results``): the schema and unit fields in what ``cgclip evaluate``, the split
protocol and the demo write, one unit (fractions), and the files written before the schema still read."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cgclip.errors import CgclipError  # noqa: E402
from cgclip.eval.results import (  # noqa: E402
    METRICS,
    RESULTS_SCHEMA,
    UNIT,
    percent,
    read_results,
    read_results_lines,
    stamp,
    to_percent,
    write_results,
)

ROOT = Path(__file__).resolve().parents[1]
FRACTIONS = {"mAP": 0.5334, "rank1": 0.519, "rank5": 0.8228, "rank10": 0.9, "rank20": 1.0, "mINP": 0.4241}
PROTOCOL = {"metric": "cosine", "gallery_mode": "gallery", "test_sampling": "rrs_first"}


def _write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_new_file_round_trip(tmp_path: Path) -> None:
    data = {**FRACTIONS, "protocol": PROTOCOL, "model": "cgclip", "seed": 3}
    written = write_results(tmp_path / "results.json", data)
    raw = json.loads((tmp_path / "results.json").read_text())
    assert list(raw)[:2] == ["schema", "unit"] and raw["schema"] == RESULTS_SCHEMA and raw["unit"] == UNIT == "fraction"
    assert read_results(tmp_path / "results.json") == raw == written == stamp(data)
    assert read_results(raw) == raw  # a parsed dict reads the same as its file


def test_old_percent_demo_and_old_fraction_evaluate_read_to_the_same_numbers(tmp_path: Path) -> None:
    percent_row = {k: 100 * v for k, v in FRACTIONS.items()}
    old_demo = _write(
        tmp_path / "demo.json",
        {  # cgclip demo before the schema
            "results": {"sports": {"cgclip": {**percent_row, "seed": 0, "protocol": PROTOCOL, "train_s": 40.0}}},
            "seed": 0,
            "settings": {"world_preset": "default"},
            "protocol": PROTOCOL,
            "note": "metrics in percent; synthetic worlds, embedded tiny CLIP, CPU — not comparable with the paper's",
        },
    )
    old_eval = _write(tmp_path / "eval.json", {**FRACTIONS, "num_valid_queries": 79, "protocol": PROTOCOL})
    old_protocol = _write(
        tmp_path / "protocol.json",
        {  # cgclip train --splits before the schema
            "metrics": {k: {"mean": v, "std": 0.01} for k, v in FRACTIONS.items()},
            "splits": {"0": FRACTIONS},
        },
    )
    demo = read_results(old_demo)["results"]["sports"]["cgclip"]
    evaluated = read_results(old_eval)
    proto = read_results(old_protocol)
    for key in METRICS:
        assert demo[key] == pytest.approx(evaluated[key]) == pytest.approx(FRACTIONS[key])
        assert proto["metrics"][key]["mean"] == pytest.approx(FRACTIONS[key]) == proto["splits"]["0"][key]
    assert evaluated["num_valid_queries"] == 79 and demo["train_s"] == 40.0 and demo["seed"] == 0
    assert read_results(old_demo)["unit"] == read_results(old_eval)["unit"] == UNIT


def test_committed_comparison_rows_still_read(tmp_path: Path) -> None:
    """``benchmarks/results/compare.jsonl`` (percent, no schema) reads as fractions; a new row appended beside the
    old ones declares its unit, so the file may hold both."""
    spec = importlib.util.spec_from_file_location("bench_compare", ROOT / "benchmarks" / "bench_compare.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    committed = ROOT / "benchmarks" / "results" / "compare.jsonl"
    raw = [json.loads(line) for line in committed.read_text().splitlines() if line.strip()]
    rows = bench.read_rows(committed)
    assert len(rows) == len(raw) > 0
    for old, new in zip(raw, rows, strict=True):
        for key in [k for k in ("mAP", "rank1", "mINP", "val_mAP", "mAP_last") if old.get(k) is not None]:
            assert new[key] == pytest.approx(old[key] / 100)
            assert to_percent(new)[key] == pytest.approx(old[key])
    mixed = tmp_path / "compare.jsonl"
    mixed.write_text(committed.read_text().splitlines()[0] + "\n")
    bench.append_row(mixed, {"key": "new", "mAP": 0.5})
    assert [r["mAP"] for r in read_results_lines(mixed, legacy_unit="percent")] == [rows[0]["mAP"], 0.5]


def test_percent_is_for_display(tmp_path: Path) -> None:
    assert percent(0.5) == 50.0
    shown = to_percent(stamp({"mAP": 0.25, "metrics": {"rank1": {"mean": 0.5, "std": 0.1}}, "seed": 7}))
    assert shown["mAP"] == 25.0 and shown["metrics"]["rank1"] == {"mean": 50.0, "std": 10.0} and shown["seed"] == 7
    assert shown["unit"] == "percent" and read_results(shown)["mAP"] == pytest.approx(0.25)


@pytest.mark.parametrize(
    "fields",
    [
        {"schema": "cgclip.results/2", "unit": "fraction"},
        {"schema": "someone.else/1", "unit": "fraction"},
        {"schema": RESULTS_SCHEMA, "unit": "permille"},
    ],
)
def test_an_unknown_schema_or_unit_is_one_line_naming_the_file(tmp_path: Path, fields: dict) -> None:
    path = _write(tmp_path / "results.json", {**fields, "mAP": 0.5})
    with pytest.raises(CgclipError) as err:
        read_results(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    assert (fields["schema"] in message) if fields["unit"] == "fraction" else ("permille" in message)


def test_the_demo_report_writes_the_schema_in_fractions(tmp_path: Path) -> None:
    from cgclip.demo import DemoSettings
    from cgclip.demo.report import write_report

    run = {**FRACTIONS, "seed": 0, "protocol": PROTOCOL, "timing": {"train_s": 12.0}, "dataset": {"query": {}}}
    summary = write_report(
        tmp_path,
        {"sports": {"cgclip": run}},
        settings=DemoSettings(),
        seed=0,
        quick=True,
        clip=tmp_path / "clip",
        elapsed_s=1.0,
    )
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved == summary and (saved["schema"], saved["unit"]) == (RESULTS_SCHEMA, UNIT)
    assert saved["results"]["sports"]["cgclip"]["mAP"] == 0.5334
    assert "| 53.3 | 51.9 | 82.3 | 42.4 |" in (tmp_path / "results.md").read_text()  # the table stays in percent


def test_cgclip_evaluate_and_the_split_protocol_write_the_schema(tmp_path: Path, capsys) -> None:
    from cgclip.cli import main
    from fixtures_reid import write_ilidsvid
    from fixtures_train import write_tiny_clip

    data = tmp_path / "ilids"
    write_ilidsvid(data, persons=list(range(1, 13)), frames=5)
    proto = tmp_path / "proto"
    assert (
        main(
            [
                "train",
                "--preset",
                "tiny",
                "--dataset",
                str(data),
                "--clip",
                str(write_tiny_clip(tmp_path / "c")),
                "--model",
                "tap",
                "--out",
                str(proto),
                "--splits",
                "0",
                "--epochs",
                "1",
                *[
                    arg
                    for kv in (
                        "data.image_size=[32,16]",
                        "data.p=4",
                        "data.k=2",
                        "data.seq_len=4",
                        "train.num_workers=0",
                        "train.precision=fp32",
                        "data.val_identities=0",
                    )
                    for arg in ("--set", kv)
                ],
            ]
        )
        == 0
    )
    assert main(["evaluate", "--run", str(proto / "split-0"), "--output", str(tmp_path / "one.json")]) == 0
    assert main(["evaluate", "--run", str(proto)]) == 0  # every split of the protocol folder, and the summary
    printed = capsys.readouterr().out
    for path in (tmp_path / "one.json", proto / "split-0" / "results.json", proto / "results.json"):
        raw = json.loads(path.read_text())
        assert list(raw)[:2] == ["schema", "unit"] and (raw["schema"], raw["unit"]) == (RESULTS_SCHEMA, UNIT), path
    one = json.loads((tmp_path / "one.json").read_text())
    assert all(0.0 <= one[k] <= 1.0 for k in METRICS)
    assert f"mAP={percent(one['mAP']):.2f}" in printed  # printed in percent, stored as fractions
    summary = read_results(proto / "results.json")
    assert summary["metrics"]["mAP"]["mean"] == pytest.approx(summary["splits"]["0"]["mAP"])
