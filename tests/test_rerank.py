"""k-reciprocal re-ranking: chunked sparse implementation vs a direct dense one."""

from __future__ import annotations

import numpy as np
import pytest

import cgclip.eval.rerank as rerank_mod
from cgclip.errors import EvaluationError
from cgclip.eval import pairwise_distance, rerank_distmat, rerank_features


def dense_rerank(dist_all, nq, k1, k2, lam):
    """Direct dense re-ranking over the full N × N distance matrix, one item at a time (test reference)."""
    n = dist_all.shape[0]
    d = dist_all.astype(np.float64) ** 2
    d = d / d.max(axis=1, keepdims=True)
    order = np.argsort(d, axis=1, kind="stable")

    def reciprocal(i, k):
        return [j for j in order[i, : k + 1] if i in order[j, : k + 1]]

    v = np.zeros((n, n))
    half = int(np.around(k1 / 2.0))
    for i in range(n):
        base = reciprocal(i, k1)
        expanded = set(base)
        for c in base:
            cand = reciprocal(c, half)
            if len(set(cand) & set(base)) > 2.0 / 3.0 * len(cand):
                expanded |= set(cand)
        idx = np.array(sorted(expanded))
        w = np.exp(-d[i, idx])
        v[i, idx] = w / w.sum()
    if k2 > 1:
        v = np.stack([v[order[i, :k2]].mean(axis=0) for i in range(n)])
    out = np.zeros((nq, n - nq))
    for i in range(nq):
        for j in range(nq, n):
            overlap = np.minimum(v[i], v[j]).sum()
            out[i, j - nq] = (1 - lam) * (1 - overlap / (2 - overlap)) + lam * d[i, j]
    return out


def clustered(rng, nq, ng, dim=8, num_pids=6):
    centers = rng.normal(size=(num_pids, dim))
    q = centers[rng.integers(0, num_pids, nq)] + 0.5 * rng.normal(size=(nq, dim))
    g = centers[rng.integers(0, num_pids, ng)] + 0.5 * rng.normal(size=(ng, dim))
    return q.astype(np.float32), g.astype(np.float32)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_matches_dense_reference(seed, metric, monkeypatch):
    rng = np.random.default_rng(seed)
    q, g = clustered(rng, int(rng.integers(3, 15)), int(rng.integers(10, 45)))
    k1, k2 = int(rng.integers(2, 9)), int(rng.integers(1, 5))
    everything = np.concatenate([q, g])
    dist = pairwise_distance(everything, everything, metric).astype(np.float64)
    np.fill_diagonal(dist, 0.0)
    expected = dense_rerank(dist, len(q), k1, k2, 0.3)
    monkeypatch.setattr(rerank_mod, "BLOCK_ELEMENTS", int(rng.integers(20, 300)))  # force many small blocks
    got = rerank_features(q, g, metric, k1, k2, 0.3)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    nq = len(q)
    got2 = rerank_distmat(dist[:nq, nq:], dist[:nq, :nq], dist[nq:, nq:], k1, k2, 0.3)
    np.testing.assert_allclose(got2, expected, atol=1e-5)


def test_default_parameters_on_a_larger_set():
    rng = np.random.default_rng(7)
    q, g = clustered(rng, 20, 60, num_pids=5)
    everything = np.concatenate([q, g])
    dist = pairwise_distance(everything, everything, "euclidean").astype(np.float64)
    np.fill_diagonal(dist, 0.0)
    np.testing.assert_allclose(rerank_features(q, g, "euclidean"), dense_rerank(dist, 20, 20, 6, 0.3), atol=1e-5)


def test_lambda_one_is_normalised_original_distance():
    rng = np.random.default_rng(1)
    q, g = clustered(rng, 5, 12)
    out = rerank_features(q, g, "euclidean", k1=4, k2=2, lambda_value=1.0)
    everything = np.concatenate([q, g])
    d2 = pairwise_distance(everything, everything, "euclidean").astype(np.float64) ** 2
    expected = (d2 / d2.max(axis=1, keepdims=True))[:5, 5:]
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_improves_ranking_on_clustered_data():
    from cgclip.eval import evaluate_rank

    rng = np.random.default_rng(5)
    centers = rng.normal(size=(10, 16))
    qp, gp = rng.integers(0, 10, 30), np.repeat(np.arange(10), 12)
    q = centers[qp] + 1.2 * rng.normal(size=(30, 16))
    g = centers[gp] + 1.2 * rng.normal(size=(120, 16))
    qc, gc = np.zeros(30, int), np.ones(120, int)
    base = evaluate_rank(pairwise_distance(q, g), qp, gp, qc, gc)
    rr = evaluate_rank(rerank_features(q, g, "cosine"), qp, gp, qc, gc)
    assert rr.mAP > base.mAP


def test_errors():
    q = np.zeros((2, 3), np.float32)
    with pytest.raises(EvaluationError, match="k1 >= 1"):
        rerank_features(q, q, k1=0)
    with pytest.raises(EvaluationError, match="lambda"):
        rerank_features(q, q, lambda_value=2.0)
    with pytest.raises(EvaluationError, match="q_q"):
        rerank_distmat(np.zeros((2, 3)), np.zeros((3, 3)), np.zeros((3, 3)))
