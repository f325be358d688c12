"""``cgclip search`` as library calls: open a gallery (a feature file or a saved index), read the queries (a feature
file, or gallery item numbers for query by example) and rank the gallery for each query into JSON-ready results."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cgclip.errors import EvaluationError
from cgclip.eval.features_io import FeatureSet, load_features
from cgclip.eval.search import SearchIndex, is_index_path

logger = logging.getLogger(__name__)


@dataclass
class Ranking:
    """Ranked results of a search: one JSON-ready dict per query, and the ``[Q, k]`` scores and gallery indices
    (``-1`` where fewer than k items were found)."""

    queries: list[dict[str, Any]]
    scores: np.ndarray
    indices: np.ndarray


def open_gallery(
    path: str | Path,
    index_type: str = "exact",
    *,
    nlist: int | None = None,
    nprobe: int = 16,
    hnsw_m: int = 32,
    ef_search: int = 128,
) -> tuple[SearchIndex, FeatureSet | None]:
    """The search index over a gallery and its features (None when an index's feature file is gone).

    ``path`` is a feature file (an index of ``index_type`` is built over it) or an index saved with
    :meth:`SearchIndex.save` (``nprobe`` / ``ef_search`` then set its search breadth).
    """
    if is_index_path(path):
        index = SearchIndex.load(path)
        index.set_search_params(
            nprobe=nprobe if index.index_type == "ivf" else None,
            ef_search=ef_search if index.index_type == "hnsw" else None,
        )
        return index, _index_features(index)
    gallery = load_features(path)
    stem = Path(path)
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    index = SearchIndex.build(
        gallery.features,
        index_type,
        nlist=nlist,
        nprobe=nprobe,
        hnsw_m=hnsw_m,
        ef_search=ef_search,
        meta={"features": str(stem.resolve())},
    )
    return index, gallery


def _index_features(index: SearchIndex) -> FeatureSet | None:
    """The gallery features a saved index names in its metadata, when they can still be read."""
    source = index.meta.get("features")
    if not source:
        return None
    try:
        return load_features(source)
    except EvaluationError as exc:
        logger.warning("gallery metadata unavailable (%s); results will name gallery items by id", exc)
        return None


def read_queries(spec: str, gallery: FeatureSet | None) -> tuple[FeatureSet, np.ndarray | None]:
    """The query features of ``spec`` — a feature file, or comma-separated gallery item numbers (query by example) —
    and those item numbers (None for a feature file)."""
    if not spec.replace(",", "").replace(" ", "").isdigit():
        return load_features(spec), None
    if gallery is None:
        raise EvaluationError(
            f"--query {spec} names gallery items, but the gallery features are not available:"
            " pass the gallery feature file"
        )
    items = np.array([int(s) for s in spec.split(",") if s.strip()], dtype=np.int64)
    if items.max() >= len(gallery):
        raise EvaluationError(f"--query item {int(items.max())} is out of range: the gallery has {len(gallery)}")
    return gallery.subset(items), items


def rank_gallery(
    index: SearchIndex, gallery: FeatureSet | None, queries: FeatureSet, items: np.ndarray | None = None, topk: int = 10
) -> Ranking:
    """The ``topk`` gallery items of each query; ``items`` (query by example) leaves each query's own item out."""
    if topk < 1:
        raise EvaluationError(f"--topk must be >= 1, got {topk}")
    scores, idx = index.search(queries.features, topk + (1 if items is not None else 0))
    if items is not None:
        scores, idx = _drop_own_items(scores, idx, items, topk)
    results = [_query_entry(index, gallery, queries, items, qi, idx[qi], scores[qi]) for qi in range(len(queries))]
    return Ranking(results, scores, idx)


def _drop_own_items(scores: np.ndarray, idx: np.ndarray, items: np.ndarray, topk: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and indices without each query's own gallery item, ``topk`` per row."""
    keep = idx != items[:, None]
    k_out = min(topk, idx.shape[1] - 1)
    rows = [np.flatnonzero(k)[:k_out] for k in keep]
    return (
        np.stack([s[r] for s, r in zip(scores, rows, strict=True)]),
        np.stack([i[r] for i, r in zip(idx, rows, strict=True)]),
    )


def _query_entry(
    index: SearchIndex,
    gallery: FeatureSet | None,
    queries: FeatureSet,
    items: np.ndarray | None,
    qi: int,
    idx: np.ndarray,
    scores: np.ndarray,
) -> dict[str, Any]:
    """One query's JSON-ready result: who it is and its ranked gallery items."""
    ranked = []
    for r, (j, s) in enumerate(zip(idx.tolist(), scores.tolist(), strict=True)):
        if j < 0:
            continue
        entry: dict[str, Any] = {"rank": r + 1, "gallery": j, "id": index.ids[j], "score": s, "distance": 1.0 - s}
        if gallery is not None:
            entry.update(
                identity=gallery.identities[j],
                pid=int(gallery.pids[j]),
                camid=int(gallery.camids[j]),
                seqid=gallery.seqids[j],
            )
        ranked.append(entry)
    return {
        "query": int(items[qi]) if items is not None else qi,
        "identity": queries.identities[qi],
        "pid": int(queries.pids[qi]),
        "camid": int(queries.camids[qi]),
        "results": ranked,
    }


__all__ = ["Ranking", "open_gallery", "rank_gallery", "read_queries"]
