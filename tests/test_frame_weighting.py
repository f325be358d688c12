"""Per-frame weights against ground-truth visibility: the summary figures, the visibility table, the crop-path
parser, the choice of the demo's attention tracklet and the benchmark script's JSON output."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from cgclip.data.tracklet import Tracklet
from cgclip.data.vreid import load_vreid
from cgclip.data.vreid_builder import build_vreid
from cgclip.eval.frame_weighting import SUMMARY_KEYS, crop_key, frame_visibility, pick_mixed_tracklet, summarise
from fixtures_mot import BUILD, write_mot_world

ROOT = Path(__file__).resolve().parents[1]
A = np.array


# --- summarise ------------------------------------------------------------------------------------------------------


def test_occluded_frames_with_less_weight() -> None:
    pairs = [
        (A([0.1, 0.3, 0.3, 0.3]), A([0.5, 1.0, 1.0, 1.0])),  # occluded ×T 0.4, clear 1.2, corr 1, max/min 3
        (A([0.2, 0.2, 0.3, 0.3]), A([0.6, 0.6, 1.0, 1.0])),  # occluded ×T 0.8, clear 1.2, corr 1, max/min 1.5
        (A([0.25, 0.25, 0.25, 0.25]), A([1.0, 1.0, 0.9, 1.0])),
    ]  # not mixed (0.9 ≥ 0.8), flat: no corr; 1
    s = summarise(pairs, occluded=0.8)
    assert list(s) == list(SUMMARY_KEYS)
    assert (s["tracklets"], s["mixed"]) == (3, 2)
    assert s["occluded_weight"] == pytest.approx(0.6)
    assert s["clear_weight"] == pytest.approx(1.2)
    assert s["occluded_less"] == 100
    assert s["corr"] == pytest.approx(1.0)
    assert s["max_over_min"] == pytest.approx(1.5)  # median of 3, 1.5, 1


def test_occluded_frames_with_more_weight() -> None:
    s = summarise(
        [(A([0.4, 0.2, 0.2, 0.2]), A([0.5, 1.0, 1.0, 1.0])), (A([0.1, 0.3, 0.3, 0.3]), A([0.5, 1.0, 1.0, 1.0]))],
        occluded=0.8,
    )
    assert s["occluded_weight"] == pytest.approx((1.6 + 0.4) / 2)
    assert s["clear_weight"] == pytest.approx((0.8 + 1.2) / 2)
    assert s["occluded_less"] == 50
    assert s["corr"] == pytest.approx(0.0)  # -1 and +1


def test_threshold_decides_what_is_occluded() -> None:
    pair = [(A([0.1, 0.45, 0.45]), A([0.7, 1.0, 1.0]))]
    assert summarise(pair, occluded=0.8)["mixed"] == 1
    assert summarise(pair, occluded=0.7)["mixed"] == 0  # 0.7 is not below 0.7
    assert summarise([(A([0.1, 0.45, 0.45]), A([0.7, 0.9, 0.9]))], occluded=0.8)["mixed"] == 0  # no clear frame


def test_flat_weights_give_no_correlation_and_unit_spread() -> None:
    s = summarise([(np.full(5, 0.2), A([0.3, 0.5, 1.0, 1.0, 1.0]))])
    assert math.isnan(s["corr"])
    assert s["max_over_min"] == 1.0
    assert s["occluded_weight"] == pytest.approx(1.0) and s["clear_weight"] == pytest.approx(1.0)
    assert s["occluded_less"] == 0  # equal is not less


def test_no_pairs_and_bad_pairs() -> None:
    s = summarise([])
    assert s["tracklets"] == 0 and s["mixed"] == 0
    assert all(math.isnan(s[k]) for k in SUMMARY_KEYS[2:])
    s = summarise([(A([0.0, 1.0]), A([1.0, 1.0]))])
    assert s["max_over_min"] == math.inf and math.isnan(s["occluded_less"])
    with pytest.raises(ValueError, match="same length"):
        summarise([(A([0.5, 0.5]), A([1.0, 1.0, 1.0]))])
    with pytest.raises(ValueError, match="pair 1"):
        summarise([(A([1.0]), A([1.0])), (A([]), A([]))])


# --- visibility table and crop paths --------------------------------------------------------------------------------


def _write_gt(seq: Path, rows: list[str]) -> None:
    (seq / "gt").mkdir(parents=True)
    (seq / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")


def test_frame_visibility_reads_val_gt(tmp_path: Path) -> None:
    _write_gt(
        tmp_path / "val" / "s1",
        [
            "1,3,10,20,30,60,1,1,0.625,-1",  # 10 columns: the tenth is ignored
            "2,3,12,20,30,60,1,1,1",
            "1,4,50,20,30,60,1,1,0.25",
            "1,5,90,20,30,60,0,1,0.5",
        ],
    )  # conf 0: not a box to use
    _write_gt(tmp_path / "val" / "s2", ["7, 0, 1, 2, 3, 4, 1, 1, 0.9"])  # SportsMOT ", " separator, id 0
    _write_gt(tmp_path / "train" / "t1", ["1,1,10,20,30,60,1,1,0.5"])
    table = frame_visibility(tmp_path)
    assert table == {("s1", 3, 1): 0.625, ("s1", 3, 2): 1.0, ("s1", 4, 1): 0.25, ("s2", 0, 7): 0.9}
    assert frame_visibility(tmp_path, splits=("train", "val"))[("t1", 1, 1)] == 0.5
    assert frame_visibility(tmp_path / "missing") == {}


def test_crop_key() -> None:
    assert crop_key("/data/ds/crops/val/v_seq-01/12_3/000045.jpg") == ("v_seq-01", 12, 45)
    assert crop_key(Path("crops/val/VB/0_1/00000004.jpg")) == ("VB", 0, 4)
    for bad in (
        "crops/val/seq/3/000001.jpg",
        "crops/val/seq/a_0/000001.jpg",
        "crops/val/seq/3_0/first.jpg",
        "3_0/000001.jpg",
    ):
        with pytest.raises(ValueError, match="crop path"):
            crop_key(bad)


def test_every_built_test_crop_has_its_visibility(tmp_path: Path) -> None:
    """The parser and the table agree with what ``build_vreid`` writes (6- and 8-digit frames, 0-based ids)."""
    world = write_mot_world(tmp_path / "mot")
    gt = world / "val" / "VA" / "gt" / "gt.txt"
    lines = gt.read_text().splitlines()
    lines = [line.rsplit(",", 1)[0] + ",0.5" if line.startswith("2,1,") else line for line in lines]
    gt.write_text("\n".join(lines) + "\n")
    build_vreid(world, tmp_path / "ds", world / "identities.csv", world / "track_mapping.csv", **BUILD)
    dataset = load_vreid(tmp_path / "ds")
    table = frame_visibility(world)
    frames = [f for t in dataset.query + dataset.gallery for f in t.frames]
    assert frames and all(crop_key(f) in table for f in frames)
    assert table[("VA", 1, 2)] == 0.5
    assert any(crop_key(f) == ("VA", 1, 2) for f in frames)
    assert not any(crop_key(f) in table for t in dataset.train for f in t.frames)  # train is not in val's table


# --- the tracklet the attention picture shows -----------------------------------------------------------------------


def test_pick_prefers_the_widest_mixed_range() -> None:
    vis = [None, [1.0, 1.0, 1.0], [0.5, 1.0, 1.0], [0.2, 1.0, 0.9], [0.1, 0.6, 0.7]]
    # range 0.8 beats the longer tracklet's 0.5; [0.1..0.7] has no clear frame
    assert pick_mixed_tracklet(vis, [50, 40, 14, 12, 60]) == 3


def test_pick_breaks_ties_by_length_then_order() -> None:
    assert pick_mixed_tracklet([[0.5, 1.0], [1.0, 0.5]], [10, 20]) == 1
    assert pick_mixed_tracklet([[0.5, 1.0], [1.0, 0.5]], [20, 20]) == 0


def test_pick_falls_back_to_the_longest() -> None:
    assert pick_mixed_tracklet([[1.0, 1.0], [0.8, 1.0], None], [5, 9, 9]) == 1  # 0.8 is not occluded
    assert pick_mixed_tracklet([None, None, None], [3, 7, 5]) == 1
    assert pick_mixed_tracklet([[0.8, 1.0]], [4], occluded=0.9) == 0
    with pytest.raises(ValueError, match="one per tracklet"):
        pick_mixed_tracklet([None], [3, 4])
    with pytest.raises(ValueError):
        pick_mixed_tracklet([], [])


def _crops(root: Path, seq: str, track: int, frames: range) -> tuple[str, ...]:
    folder = root / "crops" / "val" / seq / f"{track}_0"
    folder.mkdir(parents=True)
    for f in frames:
        Image.fromarray(np.full((32, 16, 3), 10 * f % 256, dtype=np.uint8)).save(folder / f"{f:06d}.jpg")
    return tuple(str(folder / f"{f:06d}.jpg") for f in frames)


def test_attention_picture_shows_the_mixed_tracklet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cgclip.demo import pictures

    saved: dict = {}

    def fake_save(path, frames, weights, title="", **kw):  # type: ignore[no-untyped-def]
        saved.update(path=path, frames=list(frames), weights=np.asarray(weights), title=title)
        return Path(path)

    monkeypatch.setattr("cgclip.eval.plots.save_frame_weights", fake_save)
    model = SimpleNamespace(frame_weights=lambda clip, cam: torch.full(clip.shape[:2], 1.0 / clip.shape[1]))
    run = SimpleNamespace(cfg=SimpleNamespace(data=SimpleNamespace(image_size=[32, 16])), model=model)
    long = Tracklet(_crops(tmp_path, "s", 1, range(1, 21)), 0, 0, "s", "long")
    mixed = Tracklet(_crops(tmp_path, "s", 2, range(1, 9)), 1, 0, "s", "mixed")
    dataset = SimpleNamespace(query=[long, mixed])
    vis = {("s", 1, f): 1.0 for f in range(1, 21)}
    vis.update({("s", 2, f): 1.0 if f > 3 else 0.5 for f in range(1, 9)})

    pictures.attention_over_frames(run, dataset, tmp_path / "a.png", frames=4, visibility=vis)
    assert saved["frames"] == [mixed.frames[i] for i in (0, 2, 5, 7)]  # evenly spaced: frames 1, 3, 6, 8
    assert "(mixed)" in saved["title"] and "0.50, 0.50, 1.00, 1.00" in saved["title"]
    assert saved["weights"].shape == (4,)

    pictures.attention_over_frames(run, dataset, tmp_path / "b.png", frames=4, visibility=None)
    assert "(long)" in saved["title"] and "visibility" not in saved["title"]


# --- the benchmark script -------------------------------------------------------------------------------------------


def _load_bench():
    spec = importlib.util.spec_from_file_location("tfe_bench", ROOT / "benchmarks" / "tfe_attention_vs_visibility.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_benchmark_prints_the_table_and_writes_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    bench = _load_bench()
    pairs = {
        "sports": [(A([0.1, 0.3, 0.3, 0.3]), A([0.5, 1.0, 1.0, 1.0]))],
        "dance": [(np.full(4, 0.25), A([1.0, 1.0, 1.0, 1.0]))],
    }
    monkeypatch.setattr(
        bench,
        "attention_and_visibility",
        lambda demo, kind, checkpoint="best", tokens=None, run_name="cgclip": pairs[kind],
    )
    out = tmp_path / "sub" / "figures.json"
    monkeypatch.setattr(sys, "argv", ["tfe", str(tmp_path / "demo"), "--json", str(out)])
    bench.main()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0].startswith("| demo | world |")
    assert lines[2].endswith("| sports | 1 | 1 | 0.400 | 1.200 | 100 % | +1.000 | 3.00 | nan | nan | nan |")
    data = json.loads(out.read_text())
    assert data["occluded"] == 0.8
    assert [r["world"] for r in data["rows"]] == ["sports", "dance"]
    assert data["rows"][0]["occluded_less"] == 100 and data["rows"][0]["corr"] == pytest.approx(1.0)
    assert data["rows"][1]["corr"] is None and data["rows"][1]["mixed"] == 0


def test_token_attention_entropy_and_cls_share():
    """The 'why flat' figures: uniform attention has entropy share 1 and CLS share 1/N; attention on one CLS token
    has entropy 0 and CLS share 1."""
    import torch

    bench = _load_bench()
    frames, tokens = 4, 5
    uniform = torch.full((1, 2, 3, frames * tokens), 1.0 / (frames * tokens))
    entropy, cls, spread = bench.token_attention(uniform, frames)
    assert abs(entropy - 1.0) < 1e-6 and abs(cls - 1.0 / tokens) < 1e-6 and spread < 1e-6
    peaked = torch.zeros(1, 2, 3, frames * tokens)
    peaked[..., tokens] = 1.0  # frame 2's CLS token
    entropy, cls, spread = bench.token_attention(peaked, frames)
    assert entropy < 1e-6 and abs(cls - 1.0) < 1e-6 and spread > 1.0
