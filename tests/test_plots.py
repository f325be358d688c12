"""Result pictures: ranking grid, t-SNE, per-frame weights."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cgclip.errors import EvaluationError
from cgclip.eval.plots import load_thumbnail, save_frame_weights, save_ranking_grid, save_tsne, tsne_embedding


@pytest.fixture()
def frames(tmp_path):
    paths = []
    for i in range(4):
        p = tmp_path / f"frame{i}.jpg"
        Image.fromarray(np.full((40, 20, 3), 60 * i, dtype=np.uint8)).save(p)
        paths.append(p.name)
    return tmp_path, paths


def test_ranking_grid_has_coloured_borders(frames, tmp_path):
    root, paths = frames
    out = save_ranking_grid(
        tmp_path / "out" / "grid.png",
        [paths[0], paths[1]],
        [paths[1:4], [paths[0], None, "x.jpg"]],
        [[True, False, True], [False, False, True]],
        [[0.1, 0.2, 0.3], [0.2, 0.4, 0.5]],
        query_labels=["a", "b"],
        root=root,
    )
    img = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert img.shape[0] > 100 and img.shape[1] > 200
    green = (np.abs(img - [0x1A, 0x98, 0x50]).sum(axis=2) < 40).sum()
    red = (np.abs(img - [0xD7, 0x30, 0x27]).sum(axis=2) < 40).sum()
    assert green > 100 and red > 100


def test_ranking_grid_shape_errors(tmp_path):
    with pytest.raises(EvaluationError, match="disagree"):
        save_ranking_grid(tmp_path / "g.png", ["a"], [["b"]], [[True, False]], [[0.1]])


def test_missing_frame_gives_placeholder():
    thumb = load_thumbnail("does/not/exist.jpg", (30, 15))
    assert thumb.shape == (30, 15, 3) and (thumb == 160).all()


def test_tsne(tmp_path):
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 10)) * 5
    labels = np.repeat(["p1", "p2", "p3"], 8)
    feats = centers[np.repeat(np.arange(3), 8)] + rng.normal(size=(24, 10))
    xy = tsne_embedding(feats, seed=0)
    assert xy.shape == (24, 2)
    # identities form separate clusters: every point's nearest neighbour shares its label
    d = ((xy[:, None] - xy[None]) ** 2).sum(-1) + np.eye(24) * 1e9
    assert (labels[d.argmin(1)] == labels).mean() > 0.9
    out = save_tsne(tmp_path / "tsne.png", feats, labels, max_points=20)
    assert Image.open(out).size[0] > 300
    with pytest.raises(EvaluationError, match="at least 4"):
        tsne_embedding(feats[:3])
    with pytest.raises(EvaluationError, match="labels"):
        save_tsne(tmp_path / "t.png", feats, labels[:5])


def test_frame_weights(frames, tmp_path):
    root, paths = frames
    out = save_frame_weights(tmp_path / "w.png", paths, [0.4, 0.3, 0.2, 0.1], root=root)
    assert Image.open(out).size[0] > 200
    with pytest.raises(EvaluationError, match="one weight per frame"):
        save_frame_weights(tmp_path / "w.png", paths, [0.5, 0.5])
