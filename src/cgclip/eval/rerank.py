"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with k-reciprocal Encoding", CVPR 2017),
memory-bounded.

Over the N = queries + gallery items, with d the original distance and d'(i, ·) = d(i, ·)² / max_j d(i, j)²:

1. R(i, k) = the k+1 nearest items of i (i itself included); the k-reciprocal set R*(i) keeps j ∈ R(i, k1) with
   i ∈ R(j, k1).
2. Expansion: for each j ∈ R*(i), its half-size set R*(j, round(k1/2)) is added when more than 2/3 of it lies in R*(i).
3. V(i, j) = exp(−d'(i, j)) over the expanded set, normalised to sum 1 (zero elsewhere); local query expansion replaces
   V(i) by the mean of V over i's k2 nearest items.
4. Jaccard distance d_J(i, j) = 1 − Σ_k min(V_ik, V_jk) / (2 − Σ_k min(V_ik, V_jk)), and the final distance is
   (1 − λ)·d_J + λ·d'.

Nothing N × N is ever held: neighbour lists come from chunks of distance rows, V is a sparse matrix, and the Jaccard
term is accumulated from the sparse entries for one block of queries at a time. The result is the dense
queries × gallery matrix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from cgclip.errors import EvaluationError
from cgclip.eval.distance import as_features, check_metric, distance_block, prepare

logger = logging.getLogger(__name__)

RowFn = Callable[[int, int], np.ndarray]
PairFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: Row-block size budget (rows × N entries) for the neighbour pass and the Jaccard accumulation.
BLOCK_ELEMENTS = 8_000_000


def rerank_features(
    qf: Any, gf: Any, metric: str = "cosine", k1: int = 20, k2: int = 6, lambda_value: float = 0.3
) -> np.ndarray:
    """Re-ranked query × gallery distances (float32) computed from features, without any N × N matrix."""
    check_metric(metric)
    q = as_features(qf, "query features")
    g = as_features(gf, "gallery features")
    if q.shape[1] != g.shape[1]:
        raise EvaluationError(f"query features are {q.shape[1]}-d but gallery features are {g.shape[1]}-d")
    x, x_sq = prepare(np.concatenate([q, g]), metric)

    def rows(a: int, b: int) -> np.ndarray:
        return distance_block(x[a:b], None if x_sq is None else x_sq[a:b], x, x_sq, metric)

    def pairs(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        dot = np.empty(len(i), dtype=np.float32)
        step = _block(x.shape[1])
        for a in range(0, len(i), step):  # gather feature rows a bounded block at a time
            dot[a : a + step] = np.einsum("ij,ij->i", x[i[a : a + step]], x[j[a : a + step]])
        if metric == "cosine":
            return 1.0 - dot
        assert x_sq is not None
        return np.sqrt(np.maximum(x_sq[i] + x_sq[j] - 2.0 * dot, 0.0))

    return _rerank(rows, pairs, len(q), len(q) + len(g), k1, k2, lambda_value)


def rerank_distmat(q_g: Any, q_q: Any, g_g: Any, k1: int = 20, k2: int = 6, lambda_value: float = 0.3) -> np.ndarray:
    """Re-ranked query × gallery distances from the three distance matrices (query-gallery, query-query,
    gallery-gallery), torchreid's ``re_ranking`` signature."""
    q_g, q_q, g_g = (np.asarray(m, dtype=np.float32) for m in (q_g, q_q, g_g))
    nq, ng = q_g.shape
    if q_q.shape != (nq, nq) or g_g.shape != (ng, ng):
        raise EvaluationError(f"re-ranking needs q_q {nq}×{nq} and g_g {ng}×{ng}, got {q_q.shape} and {g_g.shape}")

    def rows(a: int, b: int) -> np.ndarray:
        idx = np.arange(a, b)
        out = np.empty((b - a, nq + ng), dtype=np.float32)
        top, bot = idx[idx < nq], idx[idx >= nq] - nq
        out[: len(top), :nq], out[: len(top), nq:] = q_q[top], q_g[top]
        out[len(top) :, :nq], out[len(top) :, nq:] = q_g[:, bot].T, g_g[bot]
        return out

    def pairs(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        out = np.empty(len(i), dtype=np.float32)
        for iq, jq, block in ((True, True, q_q), (True, False, q_g), (False, False, g_g)):
            m = ((i < nq) == iq) & ((j < nq) == jq)
            out[m] = block[i[m] - (0 if iq else nq), j[m] - (0 if jq else nq)]
        m = (i >= nq) & (j < nq)
        out[m] = q_g[j[m], i[m] - nq]
        return out

    return _rerank(rows, pairs, nq, nq + ng, k1, k2, lambda_value)


def _check_params(n: int, k1: int, k2: int, lambda_value: float) -> tuple[int, int]:
    if k1 < 1 or k2 < 1:
        raise EvaluationError(f"re-ranking needs k1 >= 1 and k2 >= 1, got k1={k1}, k2={k2}")
    if not 0.0 <= lambda_value <= 1.0:
        raise EvaluationError(f"re-ranking lambda must be in [0, 1], got {lambda_value}")
    k1 = min(k1, n - 1)
    k2 = min(k2, k1 + 1)
    return k1, k2


def _block(n: int) -> int:
    return max(1, BLOCK_ELEMENTS // max(n, 1))


def _neighbours(rows: RowFn, n: int, k1: int) -> tuple[np.ndarray, np.ndarray]:
    """k1+1 nearest items of every item (ordered, ties by index) and each row's maximum squared distance."""
    knn = np.empty((n, k1 + 1), dtype=np.int64)
    row_max = np.empty(n, dtype=np.float64)
    step = _block(n)
    for a in range(0, n, step):
        d = rows(a, min(n, a + step)).astype(np.float64)
        np.square(d, out=d)
        row_max[a : a + len(d)] = d.max(axis=1)
        part = np.argpartition(d, k1, axis=1)[:, : k1 + 1] if k1 + 1 < n else np.tile(np.arange(n), (len(d), 1))
        part.sort(axis=1)  # index order first, so the stable value sort breaks ties by index
        vals = np.take_along_axis(d, part, axis=1)
        knn[a : a + len(d)] = np.take_along_axis(part, np.argsort(vals, axis=1, kind="stable"), axis=1)
    return knn, np.maximum(row_max, np.finfo(np.float64).tiny)


def _reciprocal(sets: np.ndarray) -> np.ndarray:
    """``out[i, a]`` is True when item i is among the neighbours of its neighbour ``sets[i, a]``."""
    n, k = sets.shape
    out = np.empty((n, k), dtype=bool)
    step = _block(k * k)
    for a in range(0, n, step):
        b = min(n, a + step)
        out[a:b] = (sets[sets[a:b]] == np.arange(a, b)[:, None, None]).any(axis=2)
    return out


def _expanded_pairs(knn: np.ndarray, k1: int) -> tuple[np.ndarray, np.ndarray]:
    """(item, member) pairs of every item's expanded k-reciprocal set, unique and sorted by item."""
    n = knn.shape[0]
    half = int(np.around(k1 / 2.0))
    r_star = np.where(_reciprocal(knn), knn, -1)
    h_sets = np.ascontiguousarray(knn[:, : half + 1])
    h_star = np.where(_reciprocal(h_sets), h_sets, -2)
    rows_out, cols_out = [], []
    k, kh = r_star.shape[1], h_star.shape[1]
    step = _block(k * k * kh)
    for a in range(0, n, step):
        b = min(n, a + step)
        cand = r_star[a:b]  # (c, k); -1 = not reciprocal
        cand_h = h_star[np.maximum(cand, 0)]  # (c, k, kh); -2 = not reciprocal
        inside = (cand_h[..., None] == cand[:, None, None, :]).any(axis=3).sum(axis=2)
        size = (cand_h >= 0).sum(axis=2)
        accept = (cand >= 0) & (inside > (2.0 / 3.0) * size)
        members = np.concatenate([cand, np.where(accept[..., None], cand_h, -1).reshape(b - a, -1)], axis=1)
        item = np.broadcast_to(np.arange(a, b)[:, None], members.shape)
        keep = members >= 0
        key = np.unique(item[keep].astype(np.int64) * n + members[keep])
        rows_out.append(key // n)
        cols_out.append(key % n)
    return np.concatenate(rows_out), np.concatenate(cols_out)


def _encode(
    rows: np.ndarray, cols: np.ndarray, pairs: PairFn, row_max: np.ndarray, knn: np.ndarray, n: int, k2: int
) -> sp.csr_matrix:
    """The sparse k-reciprocal feature matrix V (after local query expansion over k2 neighbours)."""
    d = pairs(rows, cols).astype(np.float64)
    weight = np.exp(-(d * d) / row_max[rows])
    weight /= np.bincount(rows, weights=weight, minlength=n)[rows]
    v = sp.csr_matrix((weight, (rows, cols)), shape=(n, n))
    if k2 > 1:
        qe_rows = np.repeat(np.arange(n), k2)
        expand = sp.csr_matrix((np.full(n * k2, 1.0 / k2), (qe_rows, knn[:, :k2].ravel())), shape=(n, n))
        v = (expand @ v).tocsr()
    v.sort_indices()
    return v


def _jaccard_rows(v: sp.csr_matrix, g_csc: sp.csc_matrix, a: int, b: int, ng: int) -> np.ndarray:
    """Σ_k min(V_ik, V_jk) for query rows a..b against all gallery items j (dense (b-a) × ng)."""
    block = v[a:b].tocoo()
    counts = np.diff(g_csc.indptr)[block.col]
    total = int(counts.sum())
    if total == 0:
        return np.zeros((b - a, ng))
    start = np.repeat(g_csc.indptr[block.col] - np.cumsum(counts) + counts, counts)
    pos = start + np.arange(total)
    mins = np.minimum(np.repeat(block.data, counts), g_csc.data[pos])
    flat = np.repeat(block.row.astype(np.int64), counts) * ng + g_csc.indices[pos]
    return np.bincount(flat, weights=mins, minlength=(b - a) * ng).reshape(b - a, ng)


def _query_blocks(v: sp.csr_matrix, g_csc: sp.csc_matrix, nq: int, ng: int) -> list[tuple[int, int]]:
    """Query row blocks whose Jaccard accumulation stays within ``BLOCK_ELEMENTS`` dense cells and a quarter of
    that in sparse pairs."""
    col_nnz = np.diff(g_csc.indptr)
    entry_pairs = col_nnz[v.indices[: v.indptr[nq]]]
    row_pairs = np.add.reduceat(entry_pairs, v.indptr[:nq]) if len(entry_pairs) else np.zeros(nq, np.int64)
    row_pairs[np.diff(v.indptr[: nq + 1]) == 0] = 0  # reduceat repeats a value for empty rows
    max_rows = _block(ng)
    blocks, a, acc = [], 0, 0
    for i, cnt in enumerate(row_pairs.tolist()):
        if i > a and (acc + cnt > BLOCK_ELEMENTS // 4 or i - a >= max_rows):
            blocks.append((a, i))
            a, acc = i, 0
        acc += cnt
    blocks.append((a, nq))
    return blocks


def _rerank(rows: RowFn, pairs: PairFn, nq: int, n: int, k1: int, k2: int, lambda_value: float) -> np.ndarray:
    if nq < 1 or n - nq < 1:
        raise EvaluationError("re-ranking needs at least one query and one gallery item")
    k1, k2 = _check_params(n, k1, k2, lambda_value)
    knn, row_max = _neighbours(rows, n, k1)
    e_rows, e_cols = _expanded_pairs(knn, k1)
    logger.debug("re-ranking: %d items, %.1f expanded neighbours per item", n, len(e_rows) / n)
    v = _encode(e_rows, e_cols, pairs, row_max, knn, n, k2)
    g_csc = v[nq:].tocsc()
    g_csc.sort_indices()
    ng = n - nq
    out = np.empty((nq, ng), dtype=np.float32)
    for a, b in _query_blocks(v, g_csc, nq, ng):
        overlap = _jaccard_rows(v, g_csc, a, b, ng)
        jaccard = 1.0 - overlap / (2.0 - overlap)
        original = rows(a, b)[:, nq:].astype(np.float64) ** 2 / row_max[a:b, None]
        out[a:b] = (1.0 - lambda_value) * jaccard + lambda_value * original
    return out
