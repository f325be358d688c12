"""The tracklet-folder dataset (layout, camera ids, detection, bad input) and the evaluator's same-camera policy."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from cgclip.cli import main
from cgclip.config import CHOICES, EvalConfig, load_config
from cgclip.data import detect_dataset, load_dataset
from cgclip.data.tracklet_folder import CAMERA_IDS, camera_from_name, load_tracklet_folder, natural_key
from cgclip.errors import ConfigError, DataError, EvaluationError
from cgclip.eval import evaluate_features, evaluate_rank
from cgclip.eval.rank import SAME_CAMERA_POLICIES, junk_keys
from cgclip.registry import DATASETS
from fixtures_reid import write_ilidsvid, write_image, write_mars

#: split -> PID folder -> tracklet folder -> number of frames
NAMED = {
    "train": {"0007": {"c1_t001": 3, "cam2-t002": 2}, "3": {"t9_C0": 2}},
    "query": {"12": {"c1_q": 2}},
    "gallery": {"12": {"c2_g": 2, "c1_g": 1}, "5": {"c2_x": 2}},
}
PLAIN = {
    "train": {"1": {"a": 2, "b": 2}, "2": {"a": 2}},
    "query": {"4": {"q": 2}},
    "gallery": {"4": {"g1": 2, "g2": 2}},
}


def write_folder(root: Path, layout: dict, size: tuple[int, int] = (8, 4)) -> Path:
    """Write ``layout`` (split -> pid folder -> tracklet folder -> frames) under ``root``; frames are named
    ``1.jpg``, ``2.jpg``, ... ``10.jpg`` (natural order differs from plain text order past 9)."""
    for split, people in layout.items():
        for pid, tracklets in people.items():
            for tracklet, n in tracklets.items():
                for f in range(1, n + 1):
                    write_image(root / split / pid / tracklet / f"{f}.jpg", (10 * f, 50, 90), size)
    return root


def summary(tracklets):
    return [(t.pid, t.camid, t.identity, Path(t.frames[0]).parent.name, len(t)) for t in tracklets]


# ------------------------------------------------------------------------------------------------- loading


def test_cameras_from_tracklet_names(tmp_path):
    root = write_folder(tmp_path, NAMED)
    ds = load_dataset("folder", root)
    # train pids 3 and 7 relabelled 0 and 1 (sorted); the camera is cN / camN as written
    assert summary(ds.train) == [(0, 0, "3", "t9_C0", 2), (1, 1, "0007", "c1_t001", 3), (1, 2, "0007", "cam2-t002", 2)]
    assert summary(ds.query) == [(12, 1, "12", "c1_q", 2)]
    assert summary(ds.gallery) == [(5, 2, "5", "c2_x", 2), (12, 1, "12", "c1_g", 1), (12, 2, "12", "c2_g", 2)]
    assert ds.info["camera_ids"] == "names" and ds.name == "folder" and ds.num_train_pids == 2
    assert [Path(f).name for f in ds.train[1].frames] == ["1.jpg", "2.jpg", "3.jpg"]
    assert Path(ds.train[1].frames[0]).is_absolute() and ds.train_identities() == ["3", "0007"]


def test_cameras_from_cameras_csv_win_over_names(tmp_path):
    root = write_folder(tmp_path, {**PLAIN, "train": {"1": {"c5_a": 2, "b": 2}, "2": {"a": 2}}})
    rows = ["camera,split,pid,tracklet", "3,train,1,c5_a", "4,train,01,b", "0,train,2,a", "", "1,query,4,q"]
    rows += ["2,gallery,4,g1", "2,gallery,4,g2"]
    (root / "cameras.csv").write_text("\n".join(rows) + "\n")
    ds = load_tracklet_folder(root)
    # train tracklets in order: b and c5_a of person 1 (c5 ignored: the csv wins), a of person 2
    assert [t.camid for t in ds.train] == [4, 3, 0] and [t.camid for t in ds.query] == [1]
    assert [t.camid for t in ds.gallery] == [2, 2] and ds.info["camera_ids"] == "csv"


def test_without_cameras_every_tracklet_is_camera_0(tmp_path, caplog):
    root = write_folder(tmp_path, PLAIN)
    with caplog.at_level(logging.WARNING):
        ds = load_tracklet_folder(root)
    assert {t.camid for t in (*ds.train, *ds.query, *ds.gallery)} == {0} and ds.info["camera_ids"] == "none"
    assert "no camera ids" in caplog.text and set(CAMERA_IDS) == {"csv", "names", "none"}


def test_train_only_frames_in_natural_order_and_mixed_sizes(tmp_path):
    root = write_folder(tmp_path, {"train": {"0": {"t": 11}, "1": {"t": 2}}})
    write_image(root / "train" / "0" / "t" / "5.jpg", (0, 0, 0), size=(16, 8))  # crops of a tracker vary in size
    (root / "train" / "0" / "t" / "notes.txt").write_text("ignored")
    (root / "train" / "0" / "t" / ".hidden.jpg").write_text("ignored")
    ds = load_tracklet_folder(root, verify_frames=True)
    assert [Path(f).name for f in ds.train[0].frames] == [f"{i}.jpg" for i in range(1, 12)]
    assert not ds.query and not ds.gallery and [t.pid for t in ds.train] == [0, 1]
    assert natural_key("f2.jpg") < natural_key("f10.jpg") and natural_key("01") != natural_key("1")


def test_camera_part_of_a_name():
    assert [camera_from_name(n) for n in ("c2_t001", "T1-CAM03", "x.c0", "track", "cc1", "c1x")] == [
        2,
        3,
        0,
        None,
        None,
        None,
    ]
    with pytest.raises(DataError, match="names two cameras"):
        camera_from_name("c1_cam2")


# ----------------------------------------------------------------------------------------------- detection


def test_detection_is_exclusive(tmp_path):
    folders = {
        "folder": write_folder(tmp_path / "folder", PLAIN),
        "mars": tmp_path / "mars",
        "ilidsvid": tmp_path / "ilids",
        "vreid": tmp_path / "vreid",
    }
    write_mars(folders["mars"], images=False)
    write_ilidsvid(folders["ilidsvid"], frames=1)
    folders["vreid"].mkdir()
    (folders["vreid"] / "manifest.json").write_text("{}")
    for kind, root in folders.items():
        claims = [name for name in DATASETS.names() if DATASETS[name].load("detector")(root)]
        assert claims == [kind] and detect_dataset(root) == kind
    test_only = write_folder(tmp_path / "test-only", {k: v for k, v in PLAIN.items() if k != "train"})
    assert detect_dataset(test_only) == "folder" and not load_dataset("folder", test_only).train
    (tmp_path / "other" / "train" / "images").mkdir(parents=True)  # no numbered person folder: not claimed
    with pytest.raises(DataError, match="cannot tell the dataset format"):
        detect_dataset(tmp_path / "other")


def test_cgclip_info_shows_a_tracklet_folder(tmp_path, capsys):
    root = write_folder(tmp_path, NAMED)
    assert main(["info", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"folder dataset at {root.absolute()}") and "camera_ids: names" in out
    assert "cameras in all splits: 3; train classes: 2" in out
    assert main(["info", str(root), "--dataset-kind", "folder", "--json"]) == 0
    assert '"camera_ids": "names"' in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda r: r.mkdir(exist_ok=True), "no train/, query/ or gallery/ folder"),
        (lambda r: (r / "train").mkdir(parents=True), r"no person folder in train/"),
        (lambda r: (r / "train" / "5").mkdir(parents=True), "no tracklet folder in this person folder"),
        (lambda r: write_folder(r, {"train": {"alice": {"t": 2}}}), "person folder 'alice' is not a number"),
        (lambda r: write_folder(r, {"train": {"-1": {"t": 2}}}), "person folder '-1' is not a number"),
        (lambda r: write_folder(r, {"train": {"7": {"t": 2}, "007": {"t": 2}}}), "person 7 has two folders"),
        (lambda r: write_folder(r, {"train": {"1": {"t": 2}}, "query": {"1": {"q": 1}}}), "query/ without gallery/"),
        (lambda r: write_folder(r, {"train": {"1": {"c1_a": 2, "b": 2}}}), "'b' has no cN/camN part"),
        (lambda r: write_folder(r, {"train": {"1": {"c1_c2": 2}}}), "names two cameras"),
    ],
)
def test_bad_layouts_are_one_line_errors(tmp_path, setup, message):
    root = tmp_path / "ds"
    setup(root)
    with pytest.raises(DataError, match=message) as info:
        load_tracklet_folder(root)
    assert "\n" not in str(info.value) and str(root) in str(info.value)


def test_tracklet_without_frames_and_unreadable_frames(tmp_path):
    root = write_folder(tmp_path, {"train": {"1": {"a": 2}}})
    (root / "train" / "1" / "empty").mkdir()
    (root / "train" / "1" / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"empty: no frame \(.jpg.*\) in this tracklet folder"):
        load_tracklet_folder(root)
    (root / "train" / "1" / "empty" / "1.jpg").write_text("not an image")
    with pytest.raises(DataError, match=r"empty/1.jpg: not a readable image \(UnidentifiedImageError\)"):
        load_tracklet_folder(root)
    (root / "train" / "1" / "empty" / "1.jpg").unlink()
    write_image(root / "train" / "1" / "images.jpg", (0, 0, 0))
    with pytest.raises(DataError, match="images directly in a person folder"):
        load_tracklet_folder(root)


def test_a_middle_frame_is_opened_only_with_verify_frames(tmp_path):
    root = write_folder(tmp_path, {"train": {"1": {"a": 3}}})
    (root / "train" / "1" / "a" / "2.jpg").write_bytes(b"\xff\xd8 truncated")
    assert len(load_tracklet_folder(root).train[0]) == 3
    with pytest.raises(DataError, match="2.jpg: not a readable image"):
        load_tracklet_folder(root, verify_frames=True)


@pytest.mark.parametrize(
    "text, message",
    [
        ("split,pid,tracklet\ntrain,1,a,0\n", r"cameras.csv:1: header is split,pid,tracklet; expected columns"),
        ("", "cameras.csv:1: header is empty"),
        ("split,pid,tracklet,camera\ntrain,1,a\n", r"cameras.csv:2: 3 fields"),
        ("split,pid,tracklet,camera\ntest,1,a,0\n", r"cameras.csv:2: split 'test' is not one of train, query"),
        ("split,pid,tracklet,camera\ntrain,1,a,x\n", r"cameras.csv:2: pid '1' / camera 'x': both must be non-neg"),
        ("split,pid,tracklet,camera\ntrain,1,a,-1\n", r"cameras.csv:2: .* camera '-1'"),
        ("split,pid,tracklet,camera\ntrain,1,zz,0\n", r"cameras.csv:2: no tracklet folder train/1/zz"),
        ("split,pid,tracklet,camera\ntrain,1,a,0\ntrain,1,a,1\n", r"cameras.csv:3: .* has a second row"),
        ("split,pid,tracklet,camera\ntrain,1,a,0\n", r"cameras.csv: tracklet train/1/b has no row \(1 tracklets"),
    ],
)
def test_malformed_cameras_csv(tmp_path, text, message):
    root = write_folder(tmp_path, {"train": {"1": {"a": 1, "b": 1}}})
    (root / "cameras.csv").write_text(text)
    with pytest.raises(DataError, match=message) as info:
        load_tracklet_folder(root)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------------ same-camera policy

# one query (pid 1, camera 0); gallery by distance: g0 pid 1 camera 0, g1 pid 2, g2 pid 1 camera 1, g3 pid 3
DIST = np.array([[0.1, 0.2, 0.3, 0.4]])
G_PIDS, G_CAMS = [1, 2, 1, 3], [0, 1, 1, 1]


def test_keep_ranks_the_same_camera_positive_drop_removes_it():
    drop = evaluate_rank(DIST, [1], G_PIDS, [0], G_CAMS, max_rank=4)
    keep = evaluate_rank(DIST, [1], G_PIDS, [0], G_CAMS, max_rank=4, same_camera="keep")
    # drop: ranking g1 g2 g3 -> the positive at 2: AP 1/2, INP 1/2; keep: g0 g1 g2 g3 -> AP (1/1 + 2/3)/2, INP 2/3
    assert drop.mAP == pytest.approx(0.5) and drop.mINP == pytest.approx(0.5) and drop.rank(1) == 0.0
    assert keep.mAP == pytest.approx(5 / 6) and keep.mINP == pytest.approx(2 / 3) and keep.rank(1) == 1.0
    assert drop.protocol["same_camera"] == "drop" and keep.as_dict()["protocol"]["same_camera"] == "keep"


def test_single_camera_data_needs_keep():
    rng = np.random.default_rng(0)
    qf, gf = rng.normal(size=(4, 8)), rng.normal(size=(9, 8))
    qp, gp = [0, 1, 2, 3], [0, 1, 2, 3, 0, 1, 2, 3, 9]
    with pytest.raises(EvaluationError, match="no query has a positive in another camera .*same_camera=keep"):
        evaluate_features(qf, gf, qp, gp, [0] * 4, [0] * 9)
    res = evaluate_features(qf, gf, qp, gp, [0] * 4, [0] * 9, same_camera="keep")
    assert res.num_valid_queries == 4 and res.as_dict()["protocol"]["same_camera"] == "keep"
    assert evaluate_features(qf, gf, qp, gp, [0] * 4, [1] * 9).protocol["same_camera"] == "drop"


def test_keep_equals_drop_when_no_gallery_item_shares_a_query_camera():
    rng = np.random.default_rng(1)
    qf, gf = rng.normal(size=(30, 8)), rng.normal(size=(80, 8))
    qp, gp = rng.integers(0, 6, 30), rng.integers(0, 6, 80)
    drop = evaluate_features(qf, gf, qp, gp, np.zeros(30), np.ones(80))
    keep = evaluate_features(qf, gf, qp, gp, rng.integers(0, 3, 30), rng.integers(0, 3, 80), same_camera="keep")
    assert keep.mAP == pytest.approx(drop.mAP) and np.allclose(keep.cmc, drop.cmc)


@pytest.mark.parametrize("rerank", [False, True])
def test_a_query_is_never_its_own_match_under_keep(rerank):
    qf = np.array([[1.0, 0.0], [0.0, 1.0]])
    gf = np.array([[0.1, 0.9], [0.2, 0.8]])
    # query 0 (pid 1) has no gallery tracklet, only itself in query+gallery: it stays without a positive
    opts = dict(gallery_mode="query+gallery", same_camera="keep", rerank=rerank, k1=3, k2=2)
    res = evaluate_features(qf, gf, [1, 2], [2, 2], [0, 0], [0, 0], **opts)
    assert res.num_valid_queries == 1 and res.num_queries == 2 and res.protocol["same_camera"] == "keep"
    q_keys, g_keys = junk_keys(np.array([0, 0]), np.array([0, 0, 0, 0]), "keep", query_in_gallery=True)
    assert q_keys.tolist() == [-1, -2] and g_keys.tolist() == [-1, -2, 0, 0]


def test_unknown_policy_is_refused():
    with pytest.raises(EvaluationError, match="unknown same_camera policy 'sometimes': use one of drop, keep"):
        evaluate_rank(DIST, [1], G_PIDS, [0], G_CAMS, same_camera="sometimes")
    with pytest.raises(EvaluationError, match="unknown same_camera policy"):
        evaluate_features(np.eye(2), np.eye(2), [1, 2], [1, 2], [0, 0], [1, 1], same_camera="")


def test_the_policy_is_a_config_option():
    assert EvalConfig().same_camera == "drop" and CHOICES["eval.same_camera"] == SAME_CAMERA_POLICIES
    assert load_config("tiny", ["eval.same_camera=keep"]).eval.same_camera == "keep"
    with pytest.raises(ConfigError, match="eval.same_camera"):
        load_config("tiny", ["eval.same_camera=maybe"])


def test_evaluate_run_refuses_drop_on_a_dataset_without_cameras(tmp_path, monkeypatch):
    import torch

    from cgclip.config import Config
    from cgclip.train import inference
    from cgclip.train.run_dir import RunDir

    ds = load_tracklet_folder(write_folder(tmp_path / "ds", PLAIN))
    opened = inference.OpenedRun(RunDir(tmp_path / "run"), Config(), torch.device("cpu"), "fp32", ds, None, {})
    monkeypatch.setattr(inference, "open_run", lambda *a, **k: opened)
    monkeypatch.setattr(inference, "extract_run_features", lambda *a, **k: pytest.fail("features were extracted"))
    with pytest.raises(ConfigError, match="no camera ids .* pass --same-camera keep .*eval.same_camera=keep"):
        inference.evaluate_run(tmp_path / "run")


def test_a_folder_without_cameras_trains_evaluates_and_searches(tmp_path, capsys):
    """End to end through the CLI: train on a camera-less folder, evaluate with keep (drop is refused), search."""
    import json

    from fixtures_train import ONE_STEP, write_tiny_clip

    people = {str(p): {f"t{k}": 3 for k in range(2)} for p in range(1, 5)}
    layout = {"train": people, "query": {"7": {"q": 3}, "8": {"q": 3}}, "gallery": {"7": {"g": 3}, "8": {"g": 3}}}
    data = write_folder(tmp_path / "ds", layout, size=(32, 16))
    clip = write_tiny_clip(tmp_path / "clip")
    run = tmp_path / "run"
    argv = ["train", "--preset", "tiny", "--dataset", str(data), "--clip", str(clip), "--model", "tap"]
    argv += [x for o in ["data.image_size=[32,16]", *ONE_STEP] for x in ("--set", o)]
    assert main([*argv, "--out", str(run)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run)]) == 2
    assert "--same-camera keep" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(run), "--same-camera", "keep"]) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["protocol"]["same_camera"] == "keep" and results["protocol"]["num_query"] == 2
    assert main(["extract", "--run", str(run), "--out", str(tmp_path / "feats"), "--splits", "gallery"]) == 0
    capsys.readouterr()
    assert main(["search", "--gallery", str(tmp_path / "feats" / "gallery"), "--query", "0", "--topk", "2"]) == 0
    assert "searched 1 queries in 2 gallery items" in capsys.readouterr().out
