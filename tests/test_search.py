"""SearchIndex (exact / IVF / HNSW; save / load) and the ``cgclip search`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cgclip.cli import main
from cgclip.data.tracklet import Tracklet
from cgclip.errors import EvaluationError
from cgclip.eval.features_io import save_features
from cgclip.eval.search import SearchIndex, default_nlist, is_index_path


def clustered(seed=0, n=2000, dim=32, clusters=50):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim))
    labels = rng.integers(0, clusters, n)
    return (centers[labels] + 0.4 * rng.normal(size=(n, dim))).astype(np.float32), labels


def brute_force(gallery, queries, k):
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    sims = q @ g.T
    idx = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, idx, axis=1), idx


def test_exact_matches_brute_force():
    gallery, _ = clustered()
    queries = gallery[:50] + 0.1
    index = SearchIndex.build(gallery, "exact")
    scores, idx = index.search(queries, topk=10, batch_size=7)
    ref_scores, ref_idx = brute_force(gallery, queries, 10)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    assert (idx == ref_idx).mean() > 0.99  # only near-ties may swap


def test_ivf_with_all_lists_is_exact_and_hnsw_has_high_recall():
    gallery, _ = clustered(n=3000)
    queries = gallery[::60] + 0.05
    _, ref_idx = brute_force(gallery, queries, 10)
    nlist = default_nlist(len(gallery))
    assert nlist == 3000 // 39 and default_nlist(1_000_000) == 4000  # 4·√N, capped by 39 training points per list
    ivf = SearchIndex.build(gallery, "ivf", nprobe=nlist)
    _, idx = ivf.search(queries, 10)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, ref_idx)]) > 0.99
    hnsw = SearchIndex.build(gallery, "hnsw", hnsw_m=16, ef_search=64)
    _, idx = hnsw.search(queries, 10)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, ref_idx)]) > 0.9


@pytest.mark.parametrize("kind", ["exact", "ivf", "hnsw"])
def test_save_load_round_trip(tmp_path, kind):
    gallery, _ = clustered(n=800)
    ids = [f"item{i}" for i in range(len(gallery))]
    index = SearchIndex.build(gallery, kind, ids=ids, nprobe=4, meta={"features": "somewhere"})
    before = index.search(gallery[:20], 5)
    index.save(tmp_path / "g.faiss")
    assert is_index_path(tmp_path / "g.faiss") and not is_index_path(tmp_path / "nothing")
    loaded = SearchIndex.load(tmp_path / "g.faiss")
    after = loaded.search(gallery[:20], 5)
    np.testing.assert_array_equal(before[1], after[1])
    assert loaded.ids == ids and loaded.index_type == kind and loaded.meta == {"features": "somewhere"}
    if kind == "ivf":
        assert loaded.index.nprobe == 4


def test_index_errors(tmp_path):
    gallery, _ = clustered(n=100)
    with pytest.raises(EvaluationError, match="unknown index type"):
        SearchIndex.build(gallery, "lsh")
    with pytest.raises(EvaluationError, match="one id per item"):
        SearchIndex.build(gallery, ids=["a"])
    index = SearchIndex.build(gallery)
    with pytest.raises(EvaluationError, match="-d features"):
        index.search(gallery[:, :8])
    assert index.search(gallery[:2], topk=500)[1].shape == (2, 100)
    with pytest.raises(EvaluationError, match="index file not found"):
        SearchIndex.load(tmp_path / "none.faiss")
    path, sidecar = index.save(tmp_path / "g.faiss")
    path.write_bytes(b"garbage")
    with pytest.raises(EvaluationError, match="not a readable FAISS index"):
        SearchIndex.load(path)
    index.save(path)
    side = json.loads(sidecar.read_text())
    side["ids"] = side["ids"][:3]
    sidecar.write_text(json.dumps(side))
    with pytest.raises(EvaluationError, match="different builds"):
        SearchIndex.load(path)


@pytest.fixture()
def feature_files(tmp_path):
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 8))
    frame = tmp_path / "f.png"
    Image.fromarray((rng.random((32, 16, 3)) * 255).astype(np.uint8)).save(frame)

    def write(name, n, cam):
        pids = np.arange(n) % 4
        tr = [Tracklet((str(frame),), int(p), cam, f"seq{cam}", f"player{p}") for p in pids]
        save_features(tmp_path / name, centers[pids] + 0.05 * rng.normal(size=(n, 8)), tr)

    write("gallery", 20, 1)
    write("query", 6, 0)
    return tmp_path


def test_cli_search_end_to_end(feature_files, capsys):
    d = feature_files
    rc = main(
        [
            "search",
            "--gallery",
            str(d / "gallery"),
            "--query",
            str(d / "query.safetensors"),
            "--topk",
            "3",
            "--out",
            str(d / "res.json"),
            "--grid",
            str(d / "grid.png"),
            "--save-index",
            str(d / "g.faiss"),
        ]
    )
    assert rc == 0
    res = json.loads((d / "res.json").read_text())
    assert res["topk"] == 3 and len(res["queries"]) == 6
    for q in res["queries"]:
        assert len(q["results"]) == 3
        assert all(r["pid"] == q["pid"] for r in q["results"])  # well-separated clusters
        scores = [r["score"] for r in q["results"]]
        assert scores == sorted(scores, reverse=True)
    assert (d / "grid.png").stat().st_size > 1000 and (d / "g.faiss.json").is_file()
    # query by example against the saved index: the item itself is left out
    rc = main(
        ["search", "--gallery", str(d / "g.faiss"), "--query", "0,5", "--topk", "4", "--out", str(d / "res2.json")]
    )
    assert rc == 0
    res2 = json.loads((d / "res2.json").read_text())
    assert [q["query"] for q in res2["queries"]] == [0, 5]
    for q in res2["queries"]:
        assert q["query"] not in [r["gallery"] for r in q["results"]] and len(q["results"]) == 4
        assert all(r["identity"] == q["identity"] for r in q["results"])
    assert "searched 2 queries in 20 gallery items" in capsys.readouterr().out


def test_cli_search_errors(feature_files, capsys):
    d = feature_files
    assert main(["search", "--gallery", str(d / "nope"), "--query", str(d / "query")]) == 2
    assert "nope.safetensors: feature file not found" in capsys.readouterr().err
    assert main(["search", "--gallery", str(d / "gallery"), "--query", "99"]) == 2
    assert "out of range" in capsys.readouterr().err
