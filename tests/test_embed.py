"""The embedding API, the tracker pieces and ONNX export with parity, on tiny models trained here for one step."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cgclip.config import load_config  # noqa: E402
from cgclip.errors import CheckpointError, ConfigError, DataError  # noqa: E402
from fixtures_train import ONE_STEP, tiny_captions, tiny_dataset, write_tiny_clip  # noqa: E402

# tap without SIE, tfclip and cgclip with it (so the camera-id input is exported and checked); cgclip-embedded
# runs on the embedded CLIP (conv stem), the others on a ViT-layout CLIP.
RUNS = {
    "tap": ["model.name=tap", "model.sie=false"],
    "tfclip": ["model.name=tfclip", "model.sie=true"],
    "cgclip": ["model.name=cgclip", "model.sie=true"],
    "cgclip-embedded": ["model.name=cgclip", "model.sie=false", "data.image_size=[64,32]"],
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from cgclip.train.trainer import train

    root = tmp_path_factory.mktemp("embed")
    clip = write_tiny_clip(root / "clip")
    dataset = tiny_dataset(root / "data", num_train=4, num_test=3)
    runs = {}
    for name, options in RUNS.items():
        clip_opt = [] if name.endswith("embedded") else [f"model.clip_path={clip}", "data.image_size=[32,16]"]
        cfg = load_config(
            "tiny",
            [
                *clip_opt,
                *options,
                *ONE_STEP,
            ],
        )
        captions = tiny_captions(dataset) if "cgclip" in name else None
        train(cfg, root / name, dataset=dataset, captions=captions)
        runs[name] = root / name
    tracklets = [list(t.frames) for t in dataset.query + dataset.gallery]
    return root, runs, dataset, tracklets


@pytest.fixture(scope="module")
def exported(world):
    from cgclip.embed import export_run

    root, runs, _, tracklets = world
    out = {}
    for name, run in runs.items():
        for per_frame in (False, True):
            path = root / f"{name}{'-crops' if per_frame else ''}.onnx"
            out[name, per_frame] = export_run(run, path, tracklets=tracklets, per_frame=per_frame)
    return out


@pytest.mark.parametrize("name", list(RUNS))
def test_export_parity_for_every_model(world, exported, name):
    from cgclip.embed import Embedder
    from cgclip.embed.settings import PARITY_TOLERANCE

    _, runs, _, tracklets = world
    for per_frame in (False, True):
        report = exported[name, per_frame]
        assert report["max_abs_diff"] <= PARITY_TOLERANCE and report["tracklets"] == len(tracklets)
        assert Path(report["path"]).is_file() and report["per_frame"] is per_frame
    torch_emb = Embedder.load(runs[name], precision="fp32")
    onnx_emb = Embedder.load(exported[name, False]["path"])
    assert onnx_emb.feature_dim == torch_emb.feature_dim == exported[name, False]["feature_dim"]
    # tracklets of 1, 2, 3 and 5 crops (T = 2: repeated and skipped frames), batches of 1 and 4, camera 0 and an
    # unseen camera (beyond the table)
    groups = [[tracklets[0][:1]], [t[:n] for t, n in zip(tracklets[:4], (1, 2, 3, 5))]]
    for group in groups:
        cams = [0, 9, 1, 0][: len(group)]
        a, b = torch_emb.embed_tracklets(group, cams), onnx_emb.embed_tracklets(group, cams)
        assert a.shape == (len(group), torch_emb.feature_dim)
        assert np.abs(a - b).max() <= PARITY_TOLERANCE
        np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    crops = tracklets[1]
    per_crop = Embedder.load(exported[name, True]["path"])
    for emb in (onnx_emb, per_crop):
        assert np.abs(emb.embed_crops(crops, 1) - torch_emb.embed_crops(crops, 1)).max() <= PARITY_TOLERANCE


def test_onnx_graph_has_dynamic_batch_and_frames(exported):
    import onnxruntime as ort

    session = ort.InferenceSession(exported["cgclip", False]["path"])
    inputs = {i.name: i.shape for i in session.get_inputs()}
    assert set(inputs) == {"images", "camids"}
    assert isinstance(inputs["images"][0], str) and isinstance(inputs["images"][1], str)
    assert inputs["images"][2:] == [3, 32, 16]
    for b, t in ((1, 1), (3, 2), (2, 7)):
        out = session.run(None, {"images": np.zeros((b, t, 3, 32, 16), np.float32), "camids": np.zeros(b, np.int64)})
        assert out[0].shape == (b, exported["cgclip", False]["feature_dim"])
    crops = ort.InferenceSession(exported["tap", True]["path"])
    assert [i.name for i in crops.get_inputs()] == ["images"] and len(crops.get_inputs()[0].shape) == 4


def test_embedder_matches_cgclip_extract(world):
    """Embedder features = the features `cgclip extract` computes (normalised), same sampling and preprocessing."""
    from cgclip.embed import Embedder
    from cgclip.train.inference import extract_run_features, load_run_model
    from cgclip.train.run_dir import RunDir

    _, runs, dataset, _ = world
    run = runs["cgclip"]
    cfg = RunDir(run).load_config()
    model, info = load_run_model(run)
    model.neck_feat = cfg.model.neck_feat
    import torch

    ref = extract_run_features(
        model, info, dataset.query, cfg=cfg, device=torch.device("cpu"), precision="fp32", cache_dir=None
    ).numpy()
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    emb = Embedder.from_run(run, precision="fp32")
    got = emb.embed_tracklets([list(t.frames) for t in dataset.query], [t.camid for t in dataset.query])
    assert np.abs(got - ref).max() < 1e-5


def test_crops_as_arrays_images_and_paths_agree(world):
    from cgclip.embed import Embedder

    _, runs, _, tracklets = world
    emb = Embedder.from_run(runs["tap"], precision="fp32", batch_size=2)
    paths = tracklets[0]
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    images = [Image.open(p) for p in paths]
    a = emb.embed_crops(paths)
    np.testing.assert_allclose(emb.embed_crops(arrays), a, atol=1e-6)
    np.testing.assert_allclose(emb.embed_crops(images), a, atol=1e-6)
    assert emb.embed_crops([]).shape == (0, emb.feature_dim)
    # batches of 2 give what one batch gives
    np.testing.assert_allclose(Embedder.from_run(runs["tap"], precision="fp32", batch_size=64).embed_crops(paths), a)


def test_tracklet_memory_keeps_a_window_and_reidentifies(world):
    from cgclip.embed import Embedder, TrackletMemory

    _, runs, _, tracklets = world
    emb = Embedder.from_run(runs["cgclip"], precision="fp32")
    memory = TrackletMemory(emb, window=3)
    for crop in tracklets[0]:
        memory.add("a", crop, camid=0)
    for crop in tracklets[0][:2]:
        memory.add("b", crop, camid=0)
    for crop in tracklets[-1]:
        memory.add("other", crop, camid=0)
    # the window holds the last 3 crops: the feature is that tracklet's
    expected = emb.embed_tracklet(tracklets[0][-3:], camid=0)
    np.testing.assert_allclose(memory.feature("a"), expected, atol=1e-6)
    # a new crop invalidates the cached feature
    memory.add("b", tracklets[0][2], camid=0)
    np.testing.assert_allclose(memory.feature("b"), emb.embed_tracklet(tracklets[0][:3], camid=0), atol=1e-6)
    # a track that comes back with the same crops is ranked first, with similarity 1
    memory.add("returned", tracklets[-1][-1], camid=0)
    for crop in tracklets[-1][-3:]:
        memory.add("again", crop, camid=0)
    ranked = memory.match("again", among=["a", "other", "returned"])
    assert ranked[0][0] == "other" and ranked[0][1] == pytest.approx(1.0, abs=1e-5)
    assert [t for t, _ in ranked] == sorted(["a", "other", "returned"], key=lambda t: -dict(ranked)[t])
    memory.forget("other")
    assert "other" not in memory and len(memory) == 4 and memory.match("again", among=[]) == []
    with pytest.raises(KeyError, match="other"):
        memory.match("again", among=["other"])
    with pytest.raises(KeyError):
        memory.feature("never")
    with pytest.raises(ConfigError):
        TrackletMemory(emb, window=0)


def _paste(canvas: np.ndarray, crop: np.ndarray, left: int, top: int) -> list[int]:
    h, w = crop.shape[:2]
    canvas[top : top + h, left : left + w] = crop
    return [left, top, left + w, top + h]


def test_box_embedder_in_a_fake_tracker_loop(world):
    """A tracker loop with appearance only: each frame's boxes get the id of the most similar previous track."""
    from scipy.optimize import linear_sum_assignment

    from cgclip.embed import BoxEmbedder, Embedder

    _, runs, dataset, _ = world
    backend = BoxEmbedder(Embedder.from_run(runs["tap"], precision="fp32"), bgr=False)
    people = [t for t in dataset.gallery][:3]  # one tracklet per person, 5 frames each
    assert len({t.pid for t in people}) == 3
    last: dict[int, np.ndarray] = {}
    assigned: dict[int, set[int]] = {}
    for f in range(5):
        frame = np.full((64, 96, 3), 127, dtype=np.uint8)
        order = [(f + k) % 3 for k in range(3)]  # people swap places every frame
        boxes = [
            _paste(frame, np.asarray(Image.open(people[p].frames[f])), 4 + 30 * slot, 10)
            for slot, p in enumerate(order)
        ]
        feats = backend.get_features(np.asarray(boxes, dtype=float), frame)
        assert feats.shape == (3, backend.embedder.feature_dim)
        np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
        ids = list(last)
        if ids:  # each box takes the previous track it is most similar to (one box per track)
            rows, cols = linear_sum_assignment(-(feats @ np.stack([last[i] for i in ids]).T))
            tracks = [ids[c] for _, c in sorted(zip(rows, cols))]
        else:
            tracks = list(range(len(order)))
        for p, track, feat in zip(order, tracks, feats):
            assigned.setdefault(track, set()).add(p)
            last[track] = feat
    assert all(len(p) == 1 for p in assigned.values()) and len(assigned) == 3


def test_box_embedder_boxes_colour_order_and_edges(world):
    from cgclip.embed import BoxEmbedder, Embedder

    _, runs, _, tracklets = world
    emb = Embedder.from_run(runs["tap"], precision="fp32")
    crop = np.asarray(Image.open(tracklets[0][0]).convert("RGB"))
    frame = np.zeros((50, 40, 3), dtype=np.uint8)
    box = _paste(frame, crop, 5, 6)
    rgb = BoxEmbedder(emb, bgr=False)
    expected = emb.embed_crops([crop])
    np.testing.assert_allclose(rgb(frame, [box]), expected, atol=1e-6)
    # the same frame in OpenCV's BGR order gives the same feature (BoxMOT's convention)
    np.testing.assert_allclose(BoxEmbedder(emb).get_features(np.asarray([box]), frame[..., ::-1]), expected, atol=1e-6)
    # score/class columns are ignored; boxes partly or wholly outside the frame still get a feature
    out = rgb.get_features(np.asarray([[*box, 0.9, 0], [-10, -10, 3, 3, 0.5, 0], [60, 70, 90, 99, 0.5, 0]]), frame)
    assert out.shape == (3, emb.feature_dim) and np.isfinite(out).all()
    assert rgb.get_features(np.zeros((0, 4)), frame).shape == (0, emb.feature_dim)
    with pytest.raises(DataError, match="NaN"):
        rgb.get_features([[0, 0, np.nan, 4]], frame)


def test_bad_inputs_are_one_line_errors(world, exported, tmp_path):
    from cgclip.embed import Embedder, export_run

    _, runs, _, tracklets = world
    emb = Embedder.from_run(runs["tap"], precision="fp32")
    rgba = np.zeros((20, 10, 4), dtype=np.uint8)
    with pytest.raises(DataError, match=r"crop 0 has shape \(20, 10, 4\).*alpha"):
        emb.embed_crops([rgba])
    with pytest.raises(DataError, match="H×W×3"):
        emb.embed_crops([np.zeros((20, 10), dtype=np.uint8)])
    with pytest.raises(DataError, match="uint8"):
        emb.embed_crops([np.zeros((20, 10, 3), dtype=np.float32)])
    with pytest.raises(DataError, match="empty"):
        emb.embed_crops([np.zeros((0, 10, 3), dtype=np.uint8)])
    with pytest.raises(DataError, match="tracklet 1 has no crops"):
        emb.embed_tracklets([tracklets[0], []])
    with pytest.raises(DataError, match="file not found"):
        emb.embed_crops([tmp_path / "missing.png"])
    with pytest.raises(DataError, match="this model takes 32×16"):
        emb.backend.features(np.zeros((1, 2, 3, 64, 32), np.float32), None)
    onnx = Embedder.load(exported["tap", False]["path"])
    with pytest.raises(DataError, match="this model takes 32×16"):
        onnx.backend.features(np.zeros((1, 2, 3, 64, 32), np.float32), None)
    with pytest.raises(DataError, match=r"expected \[B, T, 3, H, W\]"):
        onnx.backend.features(np.zeros((1, 2, 4, 32, 16), np.float32), None)
    with pytest.raises(ConfigError, match="--per-frame"):
        Embedder.load(exported["tap", True]["path"]).embed_tracklet(tracklets[0])
    with pytest.raises(DataError, match="camera ids"):
        Embedder.from_run(runs["cgclip"], precision="fp32").embed_crops(tracklets[0][:2], [0])
    # a run without a checkpoint, an unsupported opset, damaged and foreign ONNX files, a foreign --out file
    empty_run = tmp_path / "run"
    (empty_run).mkdir()
    for name in ("config.yaml", "model.json"):
        (empty_run / name).write_bytes((runs["tap"] / name).read_bytes())
    with pytest.raises(CheckpointError, match="no checkpoint"):
        Embedder.from_run(empty_run)
    with pytest.raises(ConfigError, match="--opset 12 is not supported"):
        export_run(runs["tap"], tmp_path / "m.onnx", tracklets=tracklets, opset=12)
    damaged = tmp_path / "damaged.onnx"
    damaged.write_bytes(Path(exported["tap", False]["path"]).read_bytes()[:500])
    with pytest.raises(CheckpointError, match="cannot load as ONNX"):
        Embedder.load(damaged)
    foreign = tmp_path / "foreign.txt"
    foreign.write_text("not ours\n")
    with pytest.raises(ConfigError, match="did not write"):
        export_run(runs["tap"], foreign, tracklets=tracklets)
    assert foreign.read_text() == "not ours\n"
    with pytest.raises(CheckpointError, match="no such ONNX file"):
        Embedder.from_onnx(tmp_path / "none.onnx")


def test_foreign_onnx_file_is_refused(tmp_path):
    import torch

    path = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Linear(2, 2).eval(), (torch.zeros(1, 2),), str(path), dynamo=True)
    from cgclip.embed import Embedder

    with pytest.raises(CheckpointError, match="no cgclip metadata"):
        Embedder.load(path)


def test_parity_failure_writes_nothing(world, tmp_path):
    from cgclip.embed import export_run

    _, runs, _, tracklets = world
    out = tmp_path / "strict.onnx"
    with pytest.raises(CheckpointError, match="differs from PyTorch by .* nothing was written"):
        export_run(runs["tap"], out, tracklets=tracklets, tolerance=1e-15)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_cli_export_checks_on_the_runs_dataset(tmp_path, capsys):
    from cgclip.cli import main
    from cgclip.embed import Embedder
    from cgclip.train.trainer import train
    from fixtures_reid import write_ilidsvid

    clip = write_tiny_clip(tmp_path / "clip")
    data = tmp_path / "ilids"
    write_ilidsvid(data, persons=list(range(1, 9)), frames=4)
    cfg = load_config(
        "tiny",
        [
            f"model.clip_path={clip}",
            "model.name=tap",
            f"data.root={data}",
            "data.image_size=[32,16]",
            *ONE_STEP,
        ],
    )
    train(cfg, tmp_path / "run")
    out = tmp_path / "exports" / "tap.onnx"
    assert main(["export", "--run", str(tmp_path / "run"), "--out", str(out), "--parity-tracklets", "4"]) == 0
    printed = capsys.readouterr().out
    assert "parity on 4 tracklets: largest difference" in printed and "passed" in printed
    assert Embedder.load(out).info["model"] == "tap"
    # a rerun over its own file is allowed; a failing check is exit 2 with the difference, and nothing is replaced
    before = out.stat().st_mtime_ns
    assert main(["export", "--run", str(tmp_path / "run"), "--out", str(out), "--tolerance", "1e-15"]) == 2
    assert "differs from PyTorch by" in capsys.readouterr().err and out.stat().st_mtime_ns == before
    assert main(["export", "--run", str(tmp_path / "run"), "--out", str(out), "--opset", "99"]) == 2
    assert "--opset 99 is not supported" in capsys.readouterr().err


@pytest.mark.parametrize("script", ["reid_across_sequences.py", "tracker_adapter.py"])
def test_examples_run_on_a_mot_world(world, exported, tmp_path, script):
    import subprocess

    from fixtures_mot import write_mot_world

    _, runs, _, _ = world
    mot = write_mot_world(tmp_path / "mot")
    example = Path(__file__).resolve().parents[1] / "examples" / script
    for model in (runs["tap"], exported["tap", False]["path"]):
        done = subprocess.run(
            [sys.executable, str(example), "--model", str(model), "--world", str(mot)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        if script.startswith("reid"):
            # VA and VB share P1 and P4: two tracks of VA have their player in VB
            assert "of 2 tracks of VA whose player appears in VB matched that player" in done.stdout
        else:
            assert "VA:" in done.stdout and "boxes" in done.stdout


def test_highest_supported_opset_exports(world, tmp_path):
    import onnx

    from cgclip.embed import export_run
    from cgclip.embed.settings import OPSET_RANGE

    _, runs, _, tracklets = world
    report = export_run(runs["tfclip"], tmp_path / "hi.onnx", tracklets=tracklets, opset=OPSET_RANGE[1])
    assert report["max_abs_diff"] <= report["tolerance"]
    opsets = {o.domain: o.version for o in onnx.load(str(tmp_path / "hi.onnx")).opset_import}
    assert opsets[""] == OPSET_RANGE[1]


def test_export_model_keeps_the_callers_model(world, tmp_path):
    import torch

    from cgclip.embed import Embedder, export_model

    _, runs, _, _ = world
    emb = Embedder.from_run(runs["tap"], precision="fp32")
    model = emb.backend.model
    model.train()
    half = Embedder.from_run(runs["tap"], precision="fp32").backend.model.to(torch.bfloat16)
    export_model(model, tmp_path / "a.onnx", emb.info)
    export_model(half, tmp_path / "b.onnx", emb.info)
    assert model.training and next(half.parameters()).dtype == torch.bfloat16
    assert Embedder.load(tmp_path / "b.onnx").feature_dim == emb.feature_dim
