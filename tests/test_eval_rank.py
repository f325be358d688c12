"""evaluate_rank: hand-computed cases, torchreid semantics on random inputs, chunking, ties, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cgclip.eval.rank as rank_mod
from cgclip.errors import EvaluationError
from cgclip.eval import RankResult, evaluate_rank


def reference_eval(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """Per-query evaluator written step by step from torchreid's eval_market1501 semantics (test reference).

    For each query: order the gallery by distance, drop items with the query's pid and camera, mark the remaining
    same-pid items, CMC = running count of hits clipped to 1, AP = mean precision at each hit, INP = hits / rank of
    the last hit. Queries without a hit are skipped. Exact ties: other identities first (pessimistic), then gallery
    index.
    """
    cmcs, aps, inps = [], [], []
    for i in range(distmat.shape[0]):
        order = np.lexsort((np.arange(len(g_pids)), g_pids == q_pids[i], distmat[i]))
        same_pid = g_pids[order] == q_pids[i]
        keep = ~(same_pid & (g_camids[order] == q_camids[i]))
        hits = same_pid[keep].astype(np.int64)
        if hits.sum() == 0:
            continue
        running = hits.cumsum()
        last_hit = np.flatnonzero(hits)[-1]
        inps.append(running[last_hit] / (last_hit + 1.0))
        cmc = np.minimum(running, 1)
        cmc = np.concatenate([cmc, np.full(max(0, max_rank - len(cmc)), cmc[-1])])[:max_rank]
        cmcs.append(cmc)
        precision = running / np.arange(1, len(running) + 1)
        aps.append(float((precision * hits).sum() / hits.sum()))
    return np.mean(cmcs, axis=0), float(np.mean(aps)), float(np.mean(inps)), len(aps)


def random_case(rng, nq, ng, num_pids, num_cams, dtype=np.float64):
    q_pids = rng.integers(0, num_pids, nq)
    g_pids = rng.integers(0, num_pids, ng)
    q_cams = rng.integers(0, num_cams, nq)
    g_cams = rng.integers(0, num_cams, ng)
    dist = rng.permutation(nq * ng).reshape(nq, ng).astype(dtype) / (nq * ng)  # tie-free
    return dist, q_pids, g_pids, q_cams, g_cams


def test_hand_computed_single_query():
    # gallery sorted by distance: g0 (other pid), g1 (same pid, same cam -> junk), g2 (positive), g3 (distractor pid 0),
    # g4 (positive), g5 (other pid)
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
    g_pids = np.array([7, 1, 1, 0, 1, 9])
    g_cams = np.array([0, 0, 1, 2, 2, 1])
    res = evaluate_rank(dist, [1], g_pids, [0], g_cams, max_rank=6)
    # after junk removal: [neg, pos, neg, pos, neg] -> hits at ranks 2 and 4
    assert res.mAP == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert res.mINP == pytest.approx(2 / 4)
    np.testing.assert_allclose(res.cmc, [0, 1, 1, 1, 1, 1])
    assert res.num_valid_queries == 1 and res.num_queries == 1


def test_query_with_only_same_camera_positives_is_skipped():
    dist = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]])
    q_pids, q_cams = np.array([1, 2]), np.array([0, 0])
    g_pids, g_cams = np.array([1, 2, 3]), np.array([0, 1, 1])  # query 0's only same-pid item is in its camera
    res = evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams, max_rank=3)
    assert res.num_valid_queries == 1 and res.num_queries == 2
    assert res.mAP == pytest.approx(1 / 2)  # query 1: ranking g2 (neg), g1 (pos)
    np.testing.assert_allclose(res.cmc, [0, 1, 1])


def test_distractors_count_as_negatives():
    dist = np.array([[0.1, 0.2, 0.3]])
    res = evaluate_rank(dist, [5], [0, 0, 5], [0], [1, 1, 1], max_rank=3)
    assert res.mAP == pytest.approx(1 / 3)
    assert res.mINP == pytest.approx(1 / 3)


def test_no_valid_query_raises_clear_error():
    dist = np.random.default_rng(0).random((3, 4))
    with pytest.raises(EvaluationError, match="no query has a positive in another camera"):
        evaluate_rank(dist, [1, 2, 3], [1, 2, 3, 4], [0, 0, 0], [0, 0, 0, 1])


def test_fewer_gallery_items_than_max_rank_pads_cmc():
    dist = np.array([[0.3, 0.1, 0.2]])
    res = evaluate_rank(dist, [1], [1, 2, 3], [0], [1, 1, 1], max_rank=50)
    assert res.cmc.shape == (50,)
    np.testing.assert_allclose(res.cmc, [0, 0] + [1] * 48)
    assert res.rank(1) == 0.0 and res.rank(20) == 1.0 and res.rank(100) == 1.0


@pytest.mark.parametrize("prefix_fraction", [0.0, 0.25, 1.0])  # whole-row sorts, automatic, prefix sorts only
@pytest.mark.parametrize("seed", range(8))
def test_matches_reference_on_random_tie_free_inputs(seed, prefix_fraction, monkeypatch):
    monkeypatch.setattr(rank_mod, "PREFIX_MAX_FRACTION", prefix_fraction)
    rng = np.random.default_rng(seed)
    nq, ng = int(rng.integers(5, 60)), int(rng.integers(20, 300))
    dist, qp, gp, qc, gc = random_case(
        rng, nq, ng, int(rng.integers(2, 15)), int(rng.integers(2, 5)), dtype=np.float32 if seed % 2 else np.float64
    )
    if seed >= 4:  # a useful model: same-pid items mostly near the top
        dist = dist + (qp[:, None] != gp[None, :]) * rng.random(dist.shape) * 0.5
    cmc, m_ap, m_inp, n_valid = reference_eval(dist, qp, gp, qc, gc, max_rank=20)
    res = evaluate_rank(dist, qp, gp, qc, gc, max_rank=20, chunk_size=int(rng.integers(1, 9)))
    assert res.num_valid_queries == n_valid
    np.testing.assert_allclose(res.cmc, cmc, atol=1e-6)
    assert abs(res.mAP - m_ap) < 1e-6 and abs(res.mINP - m_inp) < 1e-6
    assert 0.0 <= res.mAP <= 1.0 and 0.0 <= res.mINP <= 1.0


@pytest.mark.parametrize("prefix_fraction", [0.0, 1.0])
def test_ties_are_pessimistic(prefix_fraction, monkeypatch):
    monkeypatch.setattr(rank_mod, "PREFIX_MAX_FRACTION", prefix_fraction)
    rng = np.random.default_rng(3)
    dist, qp, gp, qc, gc = random_case(rng, 30, 120, 6, 3)
    dist = np.round(dist * 8) / 8  # heavy ties
    cmc, m_ap, m_inp, _ = reference_eval(dist, qp, gp, qc, gc, max_rank=10)
    res = evaluate_rank(dist, qp, gp, qc, gc, max_rank=10, chunk_size=7)
    np.testing.assert_allclose(res.cmc, cmc, atol=1e-6)
    assert res.mAP == pytest.approx(m_ap, abs=1e-9) and res.mINP == pytest.approx(m_inp, abs=1e-9)


@pytest.mark.parametrize("rounding", [8, None])
def test_results_do_not_depend_on_gallery_order(rounding):
    """Degenerate (all-equal) or heavily tied distances score the same however the gallery is listed."""
    rng = np.random.default_rng(5)
    dist, qp, gp, qc, gc = random_case(rng, 25, 90, 5, 3)
    dist = np.round(dist * rounding) / rounding if rounding else np.zeros_like(dist)
    base = evaluate_rank(dist, qp, gp, qc, gc, max_rank=10)
    for seed in range(3):
        perm = np.random.default_rng(seed).permutation(len(gp))
        other = evaluate_rank(dist[:, perm], qp, gp[perm], qc, gc[perm], max_rank=10)
        np.testing.assert_allclose(other.cmc, base.cmc, atol=1e-12)
        assert other.mAP == pytest.approx(base.mAP, abs=1e-12) and other.mINP == pytest.approx(base.mINP, abs=1e-12)


def test_all_equal_distances_rank_every_match_last():
    qp, gp = np.array([0]), np.array([0, 1, 1, 1])
    res = evaluate_rank(np.zeros((1, 4)), qp, gp, np.array([0]), np.array([1, 1, 1, 1]))
    assert res.mAP == pytest.approx(0.25) and res.rank(1) == 0.0 and res.rank(4) == 1.0


def test_chunking_and_threads_do_not_change_results():
    rng = np.random.default_rng(11)
    dist, qp, gp, qc, gc = random_case(rng, 200, 700, 40, 4, dtype=np.float32)
    base = evaluate_rank(dist, qp, gp, qc, gc, chunk_size=200, num_workers=1)
    for chunk, workers in ((1, 1), (13, 2), (64, 4), (None, None)):
        other = evaluate_rank(dist, qp, gp, qc, gc, chunk_size=chunk, num_workers=workers)
        np.testing.assert_array_equal(other.cmc, base.cmc)
        assert other.mAP == base.mAP and other.mINP == base.mINP


def test_accepts_torch_and_lists():
    dist = torch.tensor([[0.2, 0.1], [0.1, 0.2]])
    res = evaluate_rank(dist, [1, 2], [1, 2], [0, 0], [1, 1], max_rank=2)
    assert res.mAP == pytest.approx((0.5 + 0.5) / 2)


def test_bad_inputs():
    with pytest.raises(EvaluationError, match="g_pids has 2 entries"):
        evaluate_rank(np.zeros((1, 3)), [1], [1, 2], [0], [1, 1, 1])
    with pytest.raises(EvaluationError, match="2-D"):
        evaluate_rank(np.zeros(3), [1], [1, 2, 3], [0], [1, 1, 1])
    with pytest.raises(EvaluationError, match="NaN"):
        evaluate_rank(np.array([[0.1, np.nan]]), [1], [1, 2], [0], [1, 1])


def test_result_helpers():
    res = RankResult(
        cmc=np.linspace(0.5, 1.0, 50),
        mAP=0.4,
        mINP=0.2,
        num_valid_queries=3,
        num_queries=4,
        protocol={"metric": "cosine"},
    )
    d = res.as_dict()
    assert set(d) == {"mAP", "rank1", "rank5", "rank10", "rank20", "mINP", "num_valid_queries", "protocol"}
    assert d["rank1"] == pytest.approx(0.5) and d["rank20"] == pytest.approx(res.cmc[19])
    with pytest.raises(ValueError):
        res.rank(0)


def test_mars_size_runs():
    """A MARS-size (1,980 × 11,310) evaluation runs through the chunked path (timing: benchmarks/bench_eval.py)."""
    rng = np.random.default_rng(0)
    q_pids = rng.integers(0, 625, 1980)
    g_pids = rng.integers(0, 625, 11310)
    dist = rng.random((1980, 11310), dtype=np.float32)
    res = evaluate_rank(dist, q_pids, g_pids, rng.integers(0, 6, 1980), rng.integers(0, 6, 11310))
    assert res.num_valid_queries > 1900
    assert 0.0 < res.mAP < 1.0 and res.cmc.shape == (50,) and np.all(np.diff(res.cmc) >= 0)


def test_empty_inputs():
    with pytest.raises(EvaluationError, match="nothing to evaluate"):
        evaluate_rank(np.zeros((2, 0)), [1, 2], [], [0, 0], [])
