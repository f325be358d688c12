"""Chunked feature distances: cosine (on L2-normalised features) and Euclidean, in float32.

:func:`iter_distance_chunks` yields the query × gallery matrix a block of query rows at a time, so a large gallery
never needs the full matrix in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from cgclip.errors import EvaluationError

METRICS = ("cosine", "euclidean")


def as_features(x: Any, name: str = "features") -> np.ndarray:
    """A 2-D C-contiguous float32 NumPy copy/view of ``x`` (NumPy array, torch tensor or nested list)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if arr.ndim != 2:
        raise EvaluationError(f"{name} must be a 2-D array (items × dim), got shape {arr.shape}")
    # a float64 sum is finite unless some entry is NaN/inf (no full-size temporary); confirm before failing
    if not np.isfinite(arr.sum(dtype=np.float64)) and not np.isfinite(arr).all():
        raise EvaluationError(f"{name} contain NaN or inf: check the model output / feature file")
    return arr


def row_norms(x: np.ndarray) -> np.ndarray:
    """L2 norm of each row (float32), without a full-size temporary."""
    return np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float32))


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows of ``x`` scaled to unit L2 norm (zero rows stay zero)."""
    return (x / np.maximum(row_norms(x), eps)[:, None]).astype(np.float32, copy=False)


def check_metric(metric: str) -> str:
    """Validate a metric name."""
    if metric not in METRICS:
        raise EvaluationError(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")
    return metric


def prepare(features: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Features ready for :func:`distance_block`: normalised for cosine; with squared norms for Euclidean."""
    check_metric(metric)
    if metric == "cosine":
        return l2_normalize(features), None
    return features, np.einsum("ij,ij->i", features, features, dtype=np.float32)


def distance_block(
    q: np.ndarray, q_sq: np.ndarray | None, g: np.ndarray, g_sq: np.ndarray | None, metric: str
) -> np.ndarray:
    """Distances between prepared query rows ``q`` and prepared gallery rows ``g`` (float32)."""
    prod = q @ g.T
    if metric == "cosine":
        np.subtract(1.0, prod, out=prod)
        return prod
    assert q_sq is not None and g_sq is not None
    prod *= -2.0
    prod += q_sq[:, None]
    prod += g_sq[None, :]
    np.maximum(prod, 0.0, out=prod)
    np.sqrt(prod, out=prod)
    return prod


def pairwise_distance(qf: Any, gf: Any, metric: str = "cosine") -> np.ndarray:
    """The full query × gallery distance matrix (float32): ``1 - cos`` or Euclidean distance."""
    q, q_sq = prepare(as_features(qf, "query features"), metric)
    g, g_sq = prepare(as_features(gf, "gallery features"), metric)
    _check_dims(q, g)
    return distance_block(q, q_sq, g, g_sq, metric)


def iter_distance_chunks(
    qf: Any, gf: Any, metric: str = "cosine", chunk_size: int = 256
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(start, stop, distances[start:stop])`` blocks of the query × gallery distance matrix (float32).

    ``gf`` may be a tuple/list of arrays: the gallery is then their concatenation, which is never built. No
    normalised copy of the gallery is made either (cosine scales each block by the gallery's inverse norms), so
    memory beyond the inputs is one block plus one normalised query block.
    """
    check_metric(metric)
    q = as_features(qf, "query features")
    parts = [as_features(g, "gallery features") for g in (gf if isinstance(gf, (tuple, list)) else [gf])]
    for g in parts:
        _check_dims(q, g)
    if metric == "cosine":
        scale = [1.0 / np.maximum(row_norms(g), 1e-12) for g in parts]
    else:
        scale = [np.einsum("ij,ij->i", g, g, dtype=np.float32) for g in parts]
    sizes = np.cumsum([0] + [len(g) for g in parts])
    for start in range(0, q.shape[0], chunk_size):
        stop = min(q.shape[0], start + chunk_size)
        qc, qc_sq = prepare(q[start:stop], metric)
        out = np.empty((stop - start, int(sizes[-1])), dtype=np.float32)
        for g, s, a, b in zip(parts, scale, sizes[:-1], sizes[1:]):
            if metric == "cosine":
                block = qc @ g.T
                block *= s[None, :]
                np.subtract(1.0, block, out=out[:, a:b])
            else:
                out[:, a:b] = distance_block(qc, qc_sq, g, s, metric)
        yield start, stop, out


def _check_dims(q: np.ndarray, g: np.ndarray) -> None:
    if q.shape[1] != g.shape[1]:
        raise EvaluationError(
            f"query features are {q.shape[1]}-d but gallery features are {g.shape[1]}-d:"
            " extract both with the same model"
        )
