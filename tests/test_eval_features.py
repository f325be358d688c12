"""evaluate_features (chunked distances, gallery conventions, protocol) and the feature file format."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cgclip.data.tracklet import Tracklet
from cgclip.errors import EvaluationError
from cgclip.eval import evaluate_features, evaluate_rank, pairwise_distance, rerank_features
from cgclip.eval.features_io import FeatureSet, feature_paths, load_features, save_features


def make_split(seed=0, nq=40, ng=150, num_pids=12, dim=16):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(num_pids, dim))
    qp, gp = rng.integers(0, num_pids, nq), rng.integers(0, num_pids, ng)
    qf = (centers[qp] + 0.8 * rng.normal(size=(nq, dim))).astype(np.float32)
    gf = (centers[gp] + 0.8 * rng.normal(size=(ng, dim))).astype(np.float32)
    return qf, gf, qp, gp, rng.integers(0, 3, nq), rng.integers(0, 3, ng)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_chunked_features_equal_full_distance_matrix(metric):
    qf, gf, qp, gp, qc, gc = make_split()
    full = evaluate_rank(pairwise_distance(qf, gf, metric), qp, gp, qc, gc)
    for chunk in (1, 7, 1000):
        res = evaluate_features(qf, gf, qp, gp, qc, gc, metric=metric, chunk_size=chunk)
        np.testing.assert_allclose(res.cmc, full.cmc)
        assert res.mAP == pytest.approx(full.mAP, abs=1e-12) and res.mINP == pytest.approx(full.mINP, abs=1e-12)


def test_distances_match_definitions():
    qf, gf, *_ = make_split(dim=5)
    qn = qf / np.linalg.norm(qf, axis=1, keepdims=True)
    gn = gf / np.linalg.norm(gf, axis=1, keepdims=True)
    np.testing.assert_allclose(pairwise_distance(qf, gf, "cosine"), 1 - qn @ gn.T, atol=1e-5)
    eu = np.sqrt(((qf[:, None, :] - gf[None]) ** 2).sum(-1))
    np.testing.assert_allclose(pairwise_distance(qf, gf, "euclidean"), eu, atol=1e-4)


def test_query_plus_gallery_mode():
    qf, gf, qp, gp, qc, gc = make_split(seed=2)
    res = evaluate_features(qf, gf, qp, gp, qc, gc, gallery_mode="query+gallery")
    ref = evaluate_rank(
        pairwise_distance(qf, np.concatenate([qf, gf])), qp, np.concatenate([qp, gp]), qc, np.concatenate([qc, gc])
    )
    assert res.mAP == pytest.approx(ref.mAP) and res.protocol["num_gallery"] == len(qf) + len(gf)
    assert res.protocol["gallery_mode"] == "query+gallery" and res.protocol["num_query"] == len(qf)


def test_query_is_not_its_own_match_in_query_plus_gallery_mode():
    qf = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    gf = np.array([[0.9, 0.1], [0.1, 0.9]], dtype=np.float32)
    # query 0 (pid 1, cam 0) has only a same-camera gallery copy; query 1 (pid 2, cam 0) has a cam-1 positive
    res = evaluate_features(qf, gf, [1, 2], [1, 2], [0, 0], [0, 1], gallery_mode="query+gallery", max_rank=3)
    assert res.num_valid_queries == 1 and res.rank(1) == 1.0


def test_protocol_and_rerank_path():
    qf, gf, qp, gp, qc, gc = make_split(seed=3)
    res = evaluate_features(qf, gf, qp, gp, qc, gc, rerank=True, k1=8, k2=3, lambda_value=0.4)
    assert res.protocol == {
        "metric": "cosine",
        "gallery_mode": "gallery",
        "same_camera": "drop",
        "rerank": True,
        "num_query": 40,
        "num_gallery": 150,
        "zero_features": 0,
        "k1": 8,
        "k2": 3,
        "lambda_value": 0.4,
    }
    ref = evaluate_rank(rerank_features(qf, gf, "cosine", 8, 3, 0.4), qp, gp, qc, gc)
    assert res.mAP == pytest.approx(ref.mAP)
    assert "protocol" in res.as_dict()


def test_feature_input_errors():
    qf, gf, qp, gp, qc, gc = make_split()
    with pytest.raises(EvaluationError, match="unknown metric"):
        evaluate_features(qf, gf, qp, gp, qc, gc, metric="manhattan")
    with pytest.raises(EvaluationError, match="unknown gallery_mode"):
        evaluate_features(qf, gf, qp, gp, qc, gc, gallery_mode="all")
    with pytest.raises(EvaluationError, match="-d but gallery features are"):
        evaluate_features(qf, gf[:, :8], qp, gp, qc, gc)
    bad = qf.copy()
    bad[0, 0] = np.nan
    with pytest.raises(EvaluationError, match="NaN"):
        evaluate_features(bad, gf, qp, gp, qc, gc)


def test_torch_features_accepted():
    qf, gf, qp, gp, qc, gc = make_split()
    a = evaluate_features(torch.from_numpy(qf), torch.from_numpy(gf), qp, gp, qc, gc)
    b = evaluate_features(qf, gf, qp, gp, qc, gc)
    assert a.mAP == b.mAP


# ---- feature files ----


def tracklets(n):
    return [
        Tracklet(tuple(f"s{i % 2}/t{i}/{f:03d}.jpg" for f in range(3)), i % 4, i % 2, f"seq{i % 2}", f"id{i % 4}")
        for i in range(n)
    ]


def test_feature_file_round_trip(tmp_path):
    feats = np.random.default_rng(0).normal(size=(6, 5))
    st, js = save_features(tmp_path / "q", torch.from_numpy(feats), tracklets(6), extra={"model": "tap"})
    assert st.name == "q.safetensors" and js.name == "q.json"
    fs = load_features(tmp_path / "q.safetensors")
    assert isinstance(fs, FeatureSet) and len(fs) == 6 and fs.dim == 5
    np.testing.assert_allclose(fs.features, feats.astype(np.float32))
    assert fs.features.dtype == np.float32 and fs.pids.dtype == np.int64
    assert fs.pids.tolist() == [0, 1, 2, 3, 0, 1] and fs.camids.tolist() == [0, 1] * 3
    assert fs.identities[1] == "id1" and fs.seqids[1] == "seq1" and fs.frames[2][0] == "s0/t2/000.jpg"
    assert fs.extra == {"model": "tap"}
    assert fs.tracklets() == tracklets(6)
    sub = fs.subset([4, 1])
    assert sub.identities == ["id0", "id1"] and sub.features.shape == (2, 5)


def test_feature_file_errors(tmp_path):
    feats = np.zeros((3, 2))
    with pytest.raises(EvaluationError, match="3 feature rows but 2 tracklets"):
        save_features(tmp_path / "x", feats, tracklets(2))
    save_features(tmp_path / "a", feats, tracklets(3))
    save_features(tmp_path / "b", feats, tracklets(3))
    with pytest.raises(EvaluationError, match="feature file not found"):
        load_features(tmp_path / "missing")
    st_a, js_a = feature_paths(tmp_path / "a")
    st_b, js_b = feature_paths(tmp_path / "b")
    js_b.write_bytes(js_a.read_bytes())  # sidecar from another run
    with pytest.raises(EvaluationError, match="same run"):
        load_features(tmp_path / "b")
    st_a.write_bytes(st_a.read_bytes()[:40])  # truncated tensors
    with pytest.raises(EvaluationError, match="not a readable safetensors"):
        load_features(tmp_path / "a")
    save_features(tmp_path / "c", feats, tracklets(3))
    _, js_c = feature_paths(tmp_path / "c")
    js_c.write_text("{not json")
    with pytest.raises(EvaluationError, match="not valid JSON"):
        load_features(tmp_path / "c")
    save_features(tmp_path / "d", feats, tracklets(3))
    _, js_d = feature_paths(tmp_path / "d")
    meta = json.loads(js_d.read_text())
    meta["items"] = meta["items"][:2]
    js_d.write_text(json.dumps(meta))
    with pytest.raises(EvaluationError, match="item count"):
        load_features(tmp_path / "d")
    (tmp_path / "a.json").unlink()
    with pytest.raises(EvaluationError, match="a.json: feature file not found"):
        load_features(tmp_path / "a")


def test_zero_features_are_counted_and_warned(caplog):
    qf, gf, qp, gp, qc, gc = make_split(seed=4)
    qf[:3] = 0
    with caplog.at_level("WARNING", logger="cgclip.eval.evaluate"):
        res = evaluate_features(qf, gf, qp, gp, qc, gc)
    assert res.protocol["zero_features"] == 3 and "3 of 190 features are all zero" in caplog.text
    qf[0, 0] = float("nan")
    with pytest.raises(EvaluationError, match="NaN or inf"):
        evaluate_features(qf, gf, qp, gp, qc, gc)
