"""Trainer: real (tiny) epochs of every model on CPU, run folder contents, evaluation, kill-and-resume equality,
checkpoint integrity, the validation split and feature extraction."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cgclip.config import load_config  # noqa: E402
from cgclip.errors import CheckpointError, ConfigError, DataError  # noqa: E402
from cgclip.train import checkpoint as ckpt  # noqa: E402
from cgclip.train.trainer import train  # noqa: E402
from fixtures_train import tiny_captions, tiny_dataset, write_identity_table, write_tiny_clip  # noqa: E402

SMALL = [
    "data.image_size=[32,16]",
    "data.seq_len=4",
    "data.p=4",
    "data.k=2",
    "train.num_workers=0",
    "data.val_identities=3",
    "data.cache_images=true",
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer")
    clip = write_tiny_clip(root / "clip")
    dataset = tiny_dataset(root / "data")
    return clip, dataset, tiny_captions(dataset)


def _cfg(clip, model, *extra):
    return load_config("tiny", [f"model.name={model}", f"model.clip_path={clip}", *SMALL, *extra])


@pytest.mark.parametrize("model", ["tap", "tfclip", "cgclip"])
def test_model_trains_on_cpu_and_evaluates(world, tmp_path, model):
    from cgclip.train.inference import load_run_model

    clip, dataset, captions = world
    cfg = _cfg(clip, model, "train.epochs=4", "train.eval_every=2", "optim.lr=1e-3", "train.precision=fp32")
    run = tmp_path / "run"
    result = train(cfg, run, dataset=dataset, captions=captions)
    losses = [r["loss"] for r in result.history]
    ce = [r["losses"]["ce"] for r in result.history]
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0], losses
    assert all(b < a for a, b in zip(ce, ce[1:])), ce
    if model == "cgclip":
        assert set(result.history[0]["losses"]) == {"v2rm", "tri", "ce"}
    if model == "tfclip":
        assert set(result.history[0]["losses"]) == {"v2m", "tri", "ce", "frame"}
        saved = json.loads((run / "model.json").read_text())["model"]
        assert (saved["sie"], saved["sie_tokens"]) == (True, "cls")  # TF-CLIP's SIE_CAMERA, on the CLS token
        assert "logit_scale" not in result.history[0]  # raw v2m logits: no scale
    else:
        assert json.loads((run / "model.json").read_text())["model"]["sie"] is False

    # the run folder
    for name in (
        "config.yaml",
        "run.json",
        "dataset.json",
        "environment.json",
        "metrics.jsonl",
        "model.safetensors",
        "model.json",
        "clip/config.json",
        "checkpoints/last.json",
        "checkpoints/best.json",
    ):
        assert (run / name).is_file(), name
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    for key in ("lr", "loss", "losses", "tracklets_per_s", "frames_per_s", "time_s", "peak_memory_mb"):
        assert key in rows[0]
    assert rows[0]["frames"] == rows[0]["tracklets"] * 4
    assert [r["epoch"] for r in rows if "val" in r] == [2, 4]
    stats = json.loads((run / "dataset.json").read_text())
    assert stats["validation"]["num_identities"] == 3 and stats["train_used"]["identities"] == 7
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "completed" and meta["best_epoch"] in (2, 4)
    assert len(list((run / "checkpoints").glob("last-e*.safetensors"))) == 1  # older epochs cleaned up

    # inference from the run folder alone (frames only, no captions) matches the trained weights
    model_, info = load_run_model(run, "final")
    assert info["feature_dim"] == model_.feature_dim
    from cgclip.train.extract import extract_features

    feats = extract_features(model_, dataset.query, image_size=[32, 16], seq_len=4, precision="fp32")
    assert feats.shape == (len(dataset.query), model_.feature_dim) and torch.isfinite(feats).all()
    if model == "tfclip":  # the SIE unseen-camera rule: cameras training never saw give one and the same feature
        trained = json.loads((run / "model.json").read_text())["sie_cameras"]
        assert trained == sorted({t.camid for t in dataset.train}) and info["num_cameras"] == max(trained) + 1
        clip_ = torch.randn(1, 4, 3, 32, 16).expand(3, -1, -1, -1, -1)
        with torch.no_grad():
            f = model_.extract(clip_, torch.tensor([max(trained) + 1, max(trained) + 5, trained[0]]))
        assert torch.equal(f[0], f[1]) and not torch.allclose(f[0], f[2])


def test_kill_and_resume_reproduces_uninterrupted_run(world, tmp_path):
    clip, dataset, captions = world
    cfg = _cfg(clip, "cgclip", "train.epochs=2", "train.eval_every=1", "train.precision=bf16")
    straight = train(cfg, tmp_path / "straight", dataset=dataset, captions=captions)

    class Killed(Exception):
        pass

    def kill_at_epoch_2(record):
        if record["epoch"] == 2:
            raise Killed

    with pytest.raises(Killed):
        train(cfg, tmp_path / "resumed", dataset=dataset, captions=captions, on_epoch=kill_at_epoch_2)
    assert json.loads((tmp_path / "resumed/checkpoints/last.json").read_text())["epoch"] == 1
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg, tmp_path / "resumed", dataset=dataset, captions=captions)
    changed = _cfg(clip, "cgclip", "train.epochs=2", "train.eval_every=1", "train.precision=bf16", "optim.lr=1e-3")
    with pytest.raises(ConfigError, match=r"optim\.lr"):
        train(changed, tmp_path / "resumed", dataset=dataset, captions=captions, resume=True)
    resumed = train(cfg, tmp_path / "resumed", dataset=dataset, captions=captions, resume=True)

    a, _ = ckpt.load_tensors(tmp_path / "straight/model.safetensors")
    b, _ = ckpt.load_tensors(tmp_path / "resumed/model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert any("memory" in k for k in a)  # the Text Memory buffers are part of the comparison
    assert [r["loss"] for r in straight.history] == [r["loss"] for r in resumed.history]
    rows = (tmp_path / "resumed/metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2]


def test_checkpoint_files_are_checked(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    ckpt.save_checkpoint(
        tmp_path,
        "last",
        epoch=1,
        model_state=model.state_dict(),
        optimizer_state=opt.state_dict(),
        state={"rng": ckpt.rng_state()},
    )
    ckpt.save_checkpoint(
        tmp_path,
        "last",
        epoch=2,
        model_state=model.state_dict(),
        optimizer_state=opt.state_dict(),
        state={"rng": ckpt.rng_state()},
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last-e0002.safetensors", "last.json"]
    state, side = ckpt.load_checkpoint(tmp_path, "last")
    assert torch.equal(state["weight"], model.weight.detach())
    fresh = torch.optim.Adam(model.parameters())
    fresh.load_state_dict(side["optimizer_state"])
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])

    # random states round-trip
    ckpt.set_rng_state(side["state"]["rng"])
    x = (torch.rand(3), np.random.rand(), __import__("random").random())
    ckpt.set_rng_state(side["state"]["rng"])
    assert torch.equal(torch.rand(3), x[0]) and np.random.rand() == x[1] and __import__("random").random() == x[2]

    # a sidecar that does not belong to its tensor file, and a damaged tensor file
    sidecar = json.loads((tmp_path / "last.json").read_text())
    sidecar["token"] = "0" * 32
    (tmp_path / "last.json").write_text(json.dumps(sidecar))
    with pytest.raises(CheckpointError, match="does not belong"):
        ckpt.load_checkpoint(tmp_path, "last")
    (tmp_path / "last-e0002.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="last-e0002.safetensors"):
        ckpt.load_checkpoint(tmp_path, "last")
    with pytest.raises(CheckpointError, match="no checkpoint 'best'"):
        ckpt.load_checkpoint(tmp_path, "best")


def test_validation_split_is_carved_from_train_identities(world):
    from cgclip.train.validation import carve_validation

    _, dataset, _ = world
    split = carve_validation(dataset.train, 3, seed=0)
    held = {t.identity for t in split.query} | {t.identity for t in split.gallery}
    kept = {t.identity for t in split.train}
    assert len(held) == 3 and not (held & kept) and held | kept == {t.identity for t in dataset.train}
    assert sorted({t.pid for t in split.train}) == list(range(len(kept)))
    assert {t.identity for t in split.query} == held
    for q in split.query:  # every query has a positive in another camera
        assert any(g.pid == q.pid and g.camid != q.camid for g in split.gallery)
    test_ids = {t.identity for t in (*dataset.query, *dataset.gallery)}
    assert not (held & test_ids)
    assert carve_validation(dataset.train, 0).train == dataset.train
    with pytest.raises(DataError, match="val_identities"):
        carve_validation(dataset.train, 50)


class _MeanModel(torch.nn.Module):
    """extract() = mean pixel value of each clip (so dense averaging can be checked by hand)."""

    def forward(self, *a):  # pragma: no cover - unused
        raise NotImplementedError

    def extract(self, images, camids=None):
        return images.float().mean(dim=(1, 2, 3, 4)).unsqueeze(1)


def test_dense_extraction_averages_clip_features_and_resumes(world, tmp_path):
    from cgclip.data.sampling import dense_clips
    from cgclip.data.transforms import build_transform
    from cgclip.data.video_dataset import VideoClipDataset
    from cgclip.train.extract import extract_features

    _, dataset, _ = world
    tracklets = dataset.train[:5]
    dense = extract_features(
        _MeanModel(), tracklets, image_size=[32, 16], seq_len=2, sampling="dense", batch_size=3, precision="fp32"
    )
    ds = VideoClipDataset(tracklets, 2, "dense", build_transform(size=(32, 16), train=False))
    for i, t in enumerate(tracklets):
        clips = ds[i]["images"]
        assert clips.shape[0] == len(dense_clips(len(t.frames), 2))
        assert dense[i, 0].item() == pytest.approx(clips.mean(dim=(1, 2, 3, 4)).mean().item(), abs=1e-5)
    first = extract_features(
        _MeanModel(),
        tracklets,
        image_size=[32, 16],
        seq_len=2,
        precision="fp32",
        cache_dir=tmp_path / "cache",
        fingerprint="x",
        chunk_size=2,
    )
    assert len(list((tmp_path / "cache").glob("chunk-*.safetensors"))) == 3
    again = extract_features(
        _MeanModel(),
        tracklets,
        image_size=[32, 16],
        seq_len=2,
        precision="fp32",
        cache_dir=tmp_path / "cache",
        fingerprint="x",
        chunk_size=2,
    )
    assert torch.equal(first, again)


def test_cli_train_evaluate_extract_on_ilidsvid(world, tmp_path, capsys):
    """`cgclip train` (cgclip with captions from an identity table) → `cgclip evaluate` → `cgclip extract`, and the
    iLIDS-VID split protocol with mean ± std."""
    from cgclip.cli import main
    from cgclip.eval.features_io import load_features
    from fixtures_reid import write_ilidsvid

    clip, _, _ = world
    persons = list(range(1, 13))
    data = tmp_path / "ilids"
    write_ilidsvid(data, persons=persons, frames=5)
    table = write_identity_table(tmp_path / "identities.csv", [f"person{p:03d}" for p in persons])
    common = [
        "--preset",
        "tiny",
        "--dataset",
        str(data),
        "--clip",
        str(clip),
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
        "train.precision=fp32",
        "--epochs",
        "2",
    ]
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                *common,
                "--model",
                "cgclip",
                "--captions",
                str(table),
                "--out",
                str(run),
                "--set",
                "data.val_identities=2",
            ]
        )
        == 0
    )
    assert "epoch   2" in capsys.readouterr().out
    assert main(["evaluate", "--run", str(run), "--test-sampling", "dense", "--gallery-mode", "query+gallery"]) == 0
    res = json.loads((run / "results.json").read_text())
    for key in ("mAP", "rank1", "rank5", "rank10", "rank20", "mINP"):
        assert 0.0 <= res[key] <= 1.0
    assert res["protocol"]["test_sampling"] == "dense" and res["protocol"]["gallery_mode"] == "query+gallery"
    assert res["protocol"]["split"] == 0 and res["model"] == "cgclip" and "config" in res and "dataset" in res
    assert res["protocol"]["neck_feat"] == "before"
    assert main(["evaluate", "--run", str(run), "--neck-feat", "after", "--output", str(tmp_path / "after.json")]) == 0
    assert json.loads((tmp_path / "after.json").read_text())["protocol"]["neck_feat"] == "after"
    assert main(["extract", "--run", str(run), "--out", str(tmp_path / "feats")]) == 0
    gallery = load_features(tmp_path / "feats" / "gallery")
    assert len(gallery) == 6 and gallery.features.shape[1] == res["feature_dim"]
    assert not (run / "cache").exists() and not (tmp_path / "feats" / ".cache").exists()
    assert main(["extract", "--run", str(run), "--out", str(tmp_path / "feats")]) == 0  # its own folder: rerun
    # outputs are checked before the work: a path under a file, a user's file or folder are refused, untouched
    blocker = tmp_path / "blocker"
    blocker.write_text("mine")
    assert main(["evaluate", "--run", str(run), "--output", str(blocker / "r.json")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(run), "--output", str(blocker)]) == 2
    assert main(["extract", "--run", str(run), "--out", str(blocker)]) == 2
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert main(["extract", "--run", str(run), "--out", str(mine)]) == 2
    assert blocker.read_text() == "mine" and [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert "did not write" in capsys.readouterr().err

    # a bad override is one line on stderr with exit status 2
    assert main(["train", *common, "--model", "tap", "--out", str(tmp_path / "x"), "--set", "model.cmr_fusion=z"]) == 2
    assert "model.cmr_fusion" in capsys.readouterr().err

    proto = tmp_path / "proto"
    assert (
        main(
            [
                "train",
                *common,
                "--model",
                "tap",
                "--out",
                str(proto),
                "--splits",
                "0-1",
                "--set",
                "data.val_identities=0",
                "--epochs",
                "1",
            ]
        )
        == 0
    )
    summary = json.loads((proto / "results.json").read_text())
    assert summary["protocol"]["splits"] == [0, 1] and set(summary["splits"]) == {"0", "1"}
    values = [summary["splits"][s]["rank1"] for s in ("0", "1")]
    assert summary["metrics"]["rank1"]["mean"] == pytest.approx(np.mean(values))
    assert summary["metrics"]["rank1"]["std"] == pytest.approx(np.std(values, ddof=1))
    assert json.loads((proto / "split-1" / "results.json").read_text())["protocol"]["split"] == 1


def test_train_refuses_an_out_folder_it_did_not_write(world, tmp_path):
    clip, dataset, captions = world
    cfg = _cfg(clip, "tap", "train.epochs=1", "train.eval_every=1")
    user = tmp_path / "mine"
    user.mkdir()
    (user / "config.yaml").write_text("my own settings\n")
    (user / "metrics.jsonl").write_text("{}\n")
    with pytest.raises(ConfigError, match="folder of files cgclip did not write"):
        train(cfg, user, dataset=dataset, captions=captions)
    assert (user / "config.yaml").read_text() == "my own settings\n" and sorted(p.name for p in user.iterdir()) == [
        "config.yaml",
        "metrics.jsonl",
    ]
    afile = tmp_path / "a-file"
    afile.write_text("x")
    with pytest.raises(ConfigError, match="names a file"):
        train(cfg, afile, dataset=dataset, captions=captions)
    ours = tmp_path / "ours"
    train(cfg, ours, dataset=dataset, captions=captions)
    assert (ours / ".cgclip-run").is_file()
    train(cfg, ours, dataset=dataset, captions=captions, resume=True)  # its own folder may be resumed


def test_camera_wise_validation_holds_out_people_who_share_scenes():
    """``cameras`` draws held-out identities camera by camera (as test people share sequences); ``random`` does not."""
    from cgclip.data.tracklet import Tracklet
    from cgclip.train.validation import carve_validation

    # 6 scenes (cameras) of 4 people each; every person also appears in the next scene, so all are eligible
    train = [
        Tracklet((f"f{s}{p}",), pid=4 * s + p, camid=c, identity=f"id{4 * s + p}")
        for s in range(6)
        for p in range(4)
        for c in (s, (s + 1) % 6)
    ]
    for seed in range(5):
        split = carve_validation(train, 4, seed=seed, selection="cameras")
        held = {t.pid for t in split.query}
        scenes = {pid // 4 for pid in held}
        assert len(held) == 4 and len(scenes) <= 2  # one scene's people (or its neighbour's, who also appear there)
        assert any(all(cam in {t.camid for t in train if t.pid == p} for p in held) for cam in range(6))
    spread = [len({t.pid // 4 for t in carve_validation(train, 4, seed=s, selection="random").query}) for s in range(5)]
    assert max(spread) >= 3  # random draws come from many scenes
    with pytest.raises(DataError, match="val_selection"):
        carve_validation(train, 4, selection="teams")
