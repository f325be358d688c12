"""Evaluation from features: chunked distances → vectorised ranking, with an explicit gallery convention.

``gallery_mode="gallery"`` ranks queries against the gallery set only (torchreid). ``"query+gallery"`` ranks them
against concat(query, gallery) (TF-CLIP and the original MARS code); each query then also meets itself and its
same-camera copies, which the same-pid-same-camera rule removes.

``same_camera`` (:data:`~cgclip.eval.rank.SAME_CAMERA_POLICIES`) is that rule: ``"drop"`` (torchreid) removes a
query's same-pid gallery items seen by its camera; ``"keep"`` (footage without camera ids) ranks them all, and only a
query's own copy in the ``query+gallery`` mode is removed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from cgclip.errors import EvaluationError
from cgclip.eval.distance import as_features, check_metric, iter_distance_chunks, row_norms
from cgclip.eval.rank import (
    DEFAULT_CHUNK_ELEMENTS,
    GalleryIndex,
    RankResult,
    check_labels,
    check_same_camera,
    evaluate_rank,
    finalize,
    junk_keys,
    rank_chunks,
)
from cgclip.eval.rerank import rerank_features

logger = logging.getLogger(__name__)

GALLERY_MODES = ("gallery", "query+gallery")


def evaluate_features(
    qf: Any,
    gf: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    metric: str = "cosine",
    gallery_mode: str = "gallery",
    same_camera: str = "drop",
    rerank: bool = False,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    max_rank: int = 50,
    chunk_size: int | None = None,
    num_workers: int | None = None,
) -> RankResult:
    """Rank query features against gallery features and return CMC / mAP / mINP with the protocol recorded.

    Distances are computed for ``chunk_size`` queries at a time (default: sized to the gallery) and each block is
    ranked as soon as it exists, so the full query × gallery matrix is never held — except with ``rerank=True``,
    where k-reciprocal re-ranking (memory-bounded itself) returns that matrix.

    Args:
        qf, gf: query / gallery features (items × dim; NumPy or torch).
        q_pids, g_pids, q_camids, g_camids: person and camera ids, one per item.
        metric: ``"cosine"`` (1 − cos on L2-normalised features) or ``"euclidean"``.
        gallery_mode: ``"gallery"`` or ``"query+gallery"`` (see the module docstring).
        same_camera: ``"drop"`` or ``"keep"`` same-pid gallery items of the query's camera (module docstring).
        rerank, k1, k2, lambda_value: k-reciprocal re-ranking and its parameters.
        max_rank: CMC length.
        chunk_size: queries per distance block.
        num_workers: ranking threads (default: CPU count, at most 4).

    Raises:
        EvaluationError: bad shapes, NaN features, unknown metric / mode / policy, or no query with a valid positive.
    """
    check_metric(metric)
    if gallery_mode not in GALLERY_MODES:
        raise EvaluationError(f"unknown gallery_mode {gallery_mode!r}: use one of {', '.join(GALLERY_MODES)}")
    check_same_camera(same_camera)
    q = as_features(qf, "query features")
    g = as_features(gf, "gallery features")
    q_pids, g_pids, q_camids, g_camids = check_labels(len(q), len(g), q_pids, g_pids, q_camids, g_camids)
    zero = int((row_norms(q) == 0).sum() + (row_norms(g) == 0).sum())
    if zero:
        logger.warning(
            "%d of %d features are all zero: their distances tie, and the ranking among ties follows the "
            "gallery order (check the model / feature file)",
            zero,
            len(q) + len(g),
        )
    gallery_parts: tuple[np.ndarray, ...] = (g,)
    query_in_gallery = gallery_mode == "query+gallery"
    if query_in_gallery:
        gallery_parts = (q, g)  # never concatenated, except for re-ranking
        g_pids = np.concatenate([q_pids, g_pids])
        g_camids = np.concatenate([q_camids, g_camids])
    protocol: dict[str, Any] = {
        "metric": metric,
        "gallery_mode": gallery_mode,
        "same_camera": same_camera,
        "rerank": bool(rerank),
        "num_query": int(len(q)),
        "num_gallery": int(len(g_pids)),
        "zero_features": zero,
    }
    if rerank:
        protocol.update(k1=int(k1), k2=int(k2), lambda_value=float(lambda_value))
        logger.info("k-reciprocal re-ranking %d queries × %d gallery items", len(q), len(g_pids))
        distmat = rerank_features(
            q, np.concatenate(gallery_parts), metric=metric, k1=k1, k2=k2, lambda_value=lambda_value
        )
        result = evaluate_rank(
            distmat,
            q_pids,
            g_pids,
            q_camids,
            g_camids,
            max_rank=max_rank,
            chunk_size=chunk_size,
            num_workers=num_workers,
            same_camera=same_camera,
            query_in_gallery=query_in_gallery,
        )
        result.protocol = protocol
        return result
    if chunk_size is None:
        chunk_size = max(1, DEFAULT_CHUNK_ELEMENTS // max(len(g_pids), 1))
    q_keys, g_keys = junk_keys(q_camids, g_camids, same_camera, query_in_gallery)
    gallery = GalleryIndex(g_pids, g_keys)

    def blocks() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for a, b, dist in iter_distance_chunks(q, gallery_parts, metric, chunk_size):
            yield dist, q_pids[a:b], q_keys[a:b]

    stats = rank_chunks(blocks(), gallery, num_workers)
    return finalize(stats, max_rank, len(g_pids), protocol, same_camera)
