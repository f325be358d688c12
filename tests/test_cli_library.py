"""The library functions the thin CLI calls: a run opened for inference, feature folders (``cgclip extract``), the
split protocol's re-evaluation and summary (``cgclip evaluate``) and search ranking (``cgclip search``); and the
commands with their new spellings on a real (tiny) run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cgclip.data.tracklet import Tracklet
from cgclip.errors import ConfigError, EvaluationError
from cgclip.eval.features_io import load_features, save_features
from cgclip.eval.search_results import open_gallery, rank_gallery, read_queries
from cgclip.train.protocol import protocol_summary


@pytest.fixture(scope="module")
def protocol(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(an iLIDS-VID dataset, a two-split TAP protocol folder trained on it for one epoch) through the CLI."""
    from cgclip.cli import main
    from fixtures_reid import write_ilidsvid
    from fixtures_train import write_tiny_clip

    root = tmp_path_factory.mktemp("library")
    clip = write_tiny_clip(root / "clip")
    data = root / "ilids"
    write_ilidsvid(data, persons=list(range(1, 13)), frames=5)
    argv = [
        "train",
        "--preset",
        "tiny",
        "--dataset",
        str(data),
        "--clip",
        str(clip),
        "--model",
        "tap",
        "--set",
        "data.image_size=[32,16]",
        "--set",
        "data.p=4",
        "--set",
        "data.k=2",
        "--set",
        "data.seq_len=4",
        "--set",
        "train.num_workers=0",
        "--set",
        "data.val_identities=0",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--protocol-splits",
        "0,1",
        "--out",
        str(root / "proto"),
    ]
    assert main(argv) == 0
    return data, root / "proto"


def test_protocol_summary_aggregates_splits() -> None:
    per_split = {
        0: {"mAP": 0.5, "rank1": 0.6, "protocol": {"split": 0, "epoch": 3, "gallery_mode": "gallery"}},
        3: {"mAP": 0.7, "rank1": 0.8, "protocol": {"split": 3, "epoch": 2, "gallery_mode": "gallery"}},
    }
    s = protocol_summary(per_split)
    assert s["protocol"] == {
        "gallery_mode": "gallery",
        "splits": [0, 3],
        "aggregate": "mean and std (ddof=1) over splits",
    }
    assert s["metrics"]["mAP"]["mean"] == pytest.approx(0.6)
    assert s["metrics"]["mAP"]["std"] == pytest.approx(0.1414, 1e-3)
    assert s["splits"] == {"0": {"mAP": 0.5, "rank1": 0.6}, "3": {"mAP": 0.7, "rank1": 0.8}}


def test_evaluate_protocol_reevaluates_every_split(protocol: tuple[Path, Path], tmp_path: Path) -> None:
    from cgclip.train.protocol import evaluate_protocol, is_protocol_dir

    _, proto = protocol
    assert is_protocol_dir(proto) and not is_protocol_dir(proto / "split-0")
    seen: list[int] = []
    out = tmp_path / "again.json"
    summary = evaluate_protocol(proto, output=out, precision="fp32", on_split=lambda split, result: seen.append(split))
    assert seen == [0, 1] and json.loads(out.read_text())["metrics"] == summary["metrics"]
    trained = json.loads((proto / "results.json").read_text())
    assert summary["splits"] == trained["splits"]  # the same weights give the same numbers
    assert summary["protocol"]["splits"] == [0, 1] and summary["model"] == "tap"  # kept from the trained summary


def test_open_run_and_extract_to_folder(protocol: tuple[Path, Path], tmp_path: Path) -> None:
    from cgclip.train.inference import FEATURES_MARKER, extract_to_folder, open_run

    data, proto = protocol
    opened = open_run(proto / "split-1", settings={"eval.sampling": "dense", "eval.metric": None}, device="cpu")
    assert opened.cfg.eval.sampling == "dense" and opened.cfg.data.split == 1 and opened.device.type == "cpu"
    assert opened.precision in ("fp32", "bf16") and opened.info["checkpoint"] in ("best", "last")
    calls: list[str] = []
    written = extract_to_folder(
        proto / "split-1",
        tmp_path / "feats",
        ["query", "gallery"],
        dataset_root=data,
        on_split=lambda split, w: calls.append(split),
    )
    assert calls == ["query", "gallery"] and (tmp_path / "feats" / FEATURES_MARKER).is_file()
    gallery = load_features(tmp_path / "feats" / "gallery")
    assert written["gallery"]["shape"] == tuple(gallery.features.shape)
    assert gallery.extra["split"] == "gallery" and gallery.extra["model"] == "tap"
    assert not (tmp_path / "feats" / ".cache").exists()
    with pytest.raises(ConfigError, match="unknown split 'val'"):
        extract_to_folder(proto / "split-1", tmp_path / "feats", ["val"])
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="did not write"):
        extract_to_folder(proto / "split-1", tmp_path / "mine")


def test_commands_with_the_new_spellings(
    protocol: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cgclip.cli import main

    data, proto = protocol
    assert main(["info", str(data), "--dataset-kind", "ilidsvid", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "ilidsvid"
    assert (
        main(
            [
                "evaluate",
                "--run",
                str(proto / "split-0"),
                "--out",
                str(tmp_path / "r.json"),
                "--device",
                "cpu",
                "--precision",
                "fp32",
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "r.json").read_text())["protocol"]["precision"] == "fp32"
    assert main(["evaluate", "--run", str(proto), "--out", str(tmp_path / "p.json")]) == 0
    out = capsys.readouterr().out
    assert "split 0: mAP=" in out and "split 1: mAP=" in out and "mean ± std: mAP=" in out
    assert (
        main(["extract", "--run", str(proto / "split-0"), "--out", str(tmp_path / "f"), "--splits", "query,gallery"])
        == 0
    )
    assert "query: " in capsys.readouterr().out and (tmp_path / "f" / "gallery.safetensors").is_file()
    if not torch.cuda.is_available():  # CUDA asked for but absent: one line naming the value, exit status 2
        assert main(["evaluate", "--run", str(proto / "split-0"), "--device", "cuda"]) == 2
        assert "device 'cuda' needs CUDA" in capsys.readouterr().err


def _features(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 8))
    pids = np.arange(12) % 4
    tracklets = [Tracklet(("f.png",), int(p), 1, "seq1", f"player{p}") for p in pids]
    save_features(tmp_path / "gallery", centers[pids] + 0.05 * rng.normal(size=(12, 8)), tracklets)
    return tmp_path / "gallery"


def test_search_ranking_library(tmp_path: Path) -> None:
    index, gallery = open_gallery(_features(tmp_path))
    queries, items = read_queries("0,5", gallery)
    ranking = rank_gallery(index, gallery, queries, items, topk=2)
    assert [q["query"] for q in ranking.queries] == [0, 5] and ranking.indices.shape == (2, 2)
    for q in ranking.queries:
        assert q["query"] not in [r["gallery"] for r in q["results"]]  # the example itself is left out
        assert all(r["pid"] == q["pid"] for r in q["results"]) and [r["rank"] for r in q["results"]] == [1, 2]
    index.save(tmp_path / "g.faiss")
    again, features = open_gallery(tmp_path / "g.faiss")
    assert features is not None and again.ntotal == 12
    with pytest.raises(EvaluationError, match="out of range"):
        read_queries("99", gallery)
    with pytest.raises(EvaluationError, match="not available"):
        read_queries("1", None)
    with pytest.raises(EvaluationError, match="--topk"):
        rank_gallery(index, gallery, queries, items, topk=0)
