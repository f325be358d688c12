"""Vectorised CMC / mAP / mINP from distances, with torchreid's ``eval_market1501`` semantics.

For every query, gallery items with the same person id **and** the same camera id are removed ("junk"); the
remaining gallery items with the query's person id are its positives. A query without positives is skipped. That is
the ``drop`` policy of :data:`SAME_CAMERA_POLICIES`; ``keep`` (footage without camera ids) removes nothing but the
query's own copy when the gallery holds the queries (:func:`junk_keys`).
AP is the non-interpolated average precision over all remaining gallery items, CMC is clipped to 1, and
INP = (number of positives) / (rank of the last positive).

Instead of arg-sorting every row (what a per-query evaluator does), only the few same-pid items of each query are
located in their row: each row is *value*-sorted (a fast SIMD sort) — or, when positives rank early, only the part
of the row up to the last positive — and the items are found by binary search. Every metric follows from the ranks
of those few items, so the work is at most one value sort per row plus O(#same-pid items).
Exact ties are broken independently of the gallery order: a tied item of another identity ranks before a tied
match (pessimistic), so all-equal features score the same whatever order the gallery is listed in; on tie-free
input the result is the same as any argsort-based evaluator.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cgclip.config_sections import EvalConfig, choices_of
from cgclip.errors import EvaluationError

logger = logging.getLogger(__name__)

#: Sort only the prefix of each row up to its last positive when the prefixes hold at most this share of a chunk.
PREFIX_MAX_FRACTION = 0.25

#: Gallery entries per chunk of rows (rows × gallery); keeps a chunk's temporaries to a few hundred MB at most.
DEFAULT_CHUNK_ELEMENTS = 4_000_000

#: What a query's ranking does with the gallery items of its identity seen by its own camera: ``drop`` removes them
#: (torchreid), ``keep`` ranks them as positives (footage without camera ids). Declared by ``EvalConfig.same_camera``.
SAME_CAMERA_POLICIES: tuple[str, ...] = choices_of(EvalConfig, "same_camera")


def check_same_camera(same_camera: str) -> None:
    """Refuse a policy that is not one of :data:`SAME_CAMERA_POLICIES` (a one-line :class:`EvaluationError`)."""
    if same_camera not in SAME_CAMERA_POLICIES:
        raise EvaluationError(
            f"unknown same_camera policy {same_camera!r}: use one of {', '.join(SAME_CAMERA_POLICIES)}"
        )


def junk_keys(
    q_camids: np.ndarray, g_camids: np.ndarray, same_camera: str, query_in_gallery: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The keys :func:`rank_chunk` compares: a gallery item of a query's pid is removed from that query's ranking
    ("junk") exactly when their keys are equal.

    ``drop``: the camera ids themselves (same pid and same camera is junk). ``keep``: query ``i`` gets key
    ``-(i + 1)`` and every gallery item 0, except that with ``query_in_gallery`` (the gallery starts with the
    queries, in query order: the ``query+gallery`` mode) gallery item ``i`` shares query ``i``'s key, so a query's
    own copy, and nothing else, is removed.
    """
    check_same_camera(same_camera)
    if same_camera == "drop":
        return q_camids, g_camids
    q_keys = -np.arange(1, len(q_camids) + 1, dtype=np.int64)
    g_keys = np.zeros(len(g_camids), dtype=np.int64)
    if query_in_gallery:
        if len(g_keys) < len(q_keys):
            raise EvaluationError(
                f"query_in_gallery needs the gallery ({len(g_keys)}) to start with the {len(q_keys)} queries"
            )
        g_keys[: len(q_keys)] = q_keys
    return q_keys, g_keys


@dataclass
class RankResult:
    """Ranking metrics of one evaluation.

    Attributes:
        cmc: CMC curve, ``cmc[k-1]`` = Rank-k accuracy in [0, 1] (length ``max_rank``; values past the gallery size
            repeat the last value).
        mAP: mean average precision over valid queries.
        mINP: mean inverse negative penalty over valid queries.
        num_valid_queries: queries that kept at least one positive.
        num_queries: all queries.
        protocol: how the numbers were obtained (metric, gallery mode, re-ranking, gallery size), when known.
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid_queries: int
    num_queries: int
    protocol: dict[str, Any] = field(default_factory=dict)

    def rank(self, k: int) -> float:
        """Rank-k accuracy (``k`` ≥ 1); ``k`` beyond the CMC length gives the last value."""
        if k < 1:
            raise ValueError(f"rank k must be >= 1, got {k}")
        return float(self.cmc[min(k, len(self.cmc)) - 1])

    def as_dict(self) -> dict[str, Any]:
        """The headline numbers (fractions in [0, 1]) plus the protocol, JSON-serialisable."""
        out: dict[str, Any] = {
            "mAP": float(self.mAP),
            "rank1": self.rank(1),
            "rank5": self.rank(5),
            "rank10": self.rank(10),
            "rank20": self.rank(20),
            "mINP": float(self.mINP),
            "num_valid_queries": int(self.num_valid_queries),
        }
        if self.protocol:
            out["protocol"] = dict(self.protocol)
        return out


class GalleryIndex:
    """Gallery pids/camids with the gallery items of each pid grouped, so a query's same-pid items are found
    without scanning the gallery."""

    def __init__(self, g_pids: np.ndarray, g_camids: np.ndarray) -> None:
        self.pids = np.asarray(g_pids).astype(np.int64, copy=False).ravel()
        self.camids = np.asarray(g_camids).astype(np.int64, copy=False).ravel()
        if self.pids.shape != self.camids.shape:
            raise EvaluationError(
                f"gallery pids ({self.pids.size}) and camids ({self.camids.size}) differ in length;"
                " pass one camid per gallery item"
            )
        self.order = np.argsort(self.pids, kind="stable")
        sorted_pids = self.pids[self.order]
        self.unique, self.starts, self.counts = np.unique(sorted_pids, return_index=True, return_counts=True)

    def __len__(self) -> int:
        return int(self.pids.size)

    def same_pid_items(self, q_pids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All (query row, gallery column) pairs with equal pids, grouped by row (columns ascending in a row)."""
        slot = np.searchsorted(self.unique, q_pids)
        slot = np.minimum(slot, max(len(self.unique) - 1, 0))
        found = (self.unique[slot] == q_pids) if len(self.unique) else np.zeros(len(q_pids), bool)
        counts = np.where(found, self.counts[slot] if len(self.unique) else 0, 0)
        total = int(counts.sum())
        rows = np.repeat(np.arange(len(q_pids)), counts)
        if total == 0:
            return rows, np.zeros(0, dtype=np.int64)
        # ragged arange: offset of each entry inside its row's group
        group_start = np.cumsum(counts) - counts
        within = np.arange(total) - np.repeat(group_start, counts)
        cols = self.order[np.repeat(self.starts[slot], counts) + within]
        return rows, cols


@dataclass
class ChunkStats:
    """Per-query outputs of one chunk of queries: AP, number of positives, and the 1-based positions (after junk
    removal) of the first and last positive (0 where the query has no positive)."""

    ap: np.ndarray
    num_pos: np.ndarray
    first: np.ndarray
    last: np.ndarray


def _search(sorted_values: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(count of entries < each value, whether another entry equals it) for values present in ``sorted_values``."""
    less = sorted_values.searchsorted(values)
    nxt = np.minimum(less + 1, len(sorted_values) - 1)
    return less, (less + 1 < len(sorted_values)) & (sorted_values[nxt] == values)


def _positions_in_sorted_rows(dist: np.ndarray, rows: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each item: entries of its row strictly smaller than its value, and whether it ties with another entry
    (whole rows sorted)."""
    sorted_rows = np.sort(dist, axis=1)
    less = np.empty(len(rows), dtype=np.int64)
    tied = np.zeros(len(rows), dtype=bool)
    bounds = np.searchsorted(rows, np.arange(dist.shape[0] + 1)).tolist()
    for r in range(dist.shape[0]):  # one binary search per query row, never a loop over gallery items
        lo, hi = bounds[r], bounds[r + 1]
        if lo < hi:
            less[lo:hi], tied[lo:hi] = _search(sorted_rows[r], values[lo:hi])
    return less, tied


def _positions_in_prefixes(
    dist: np.ndarray, rows: np.ndarray, values: np.ndarray, limit: np.ndarray, selected: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`_positions_in_sorted_rows` for items whose value is <= their row's ``limit``, sorting only the
    row entries <= ``limit`` (``selected``); the other items get the row length as position."""
    less = np.full(len(rows), dist.shape[1], dtype=np.int64)
    tied = np.zeros(len(rows), dtype=bool)
    sel_vals = dist[selected]  # row-major, so each row's entries are contiguous
    sel_bounds = np.concatenate(([0], np.cumsum(np.count_nonzero(selected, axis=1)))).tolist()
    bounds = np.searchsorted(rows, np.arange(dist.shape[0] + 1)).tolist()
    inside = values <= limit[rows]
    for r in range(dist.shape[0]):
        lo, hi = bounds[r], bounds[r + 1]
        if lo == hi or sel_bounds[r] == sel_bounds[r + 1]:
            continue
        idx = lo + np.flatnonzero(inside[lo:hi])
        prefix = np.sort(sel_vals[sel_bounds[r] : sel_bounds[r + 1]])
        less[idx], tied[idx] = _search(prefix, values[idx])
    return less, tied


def _rank_positions(dist: np.ndarray, rows: np.ndarray, cols: np.ndarray, good: np.ndarray) -> np.ndarray:
    """0-based position of gallery item ``cols[i]`` in the stable ascending ranking of row ``rows[i]``.

    Only positions up to each row's last ``good`` item matter for the metrics; items ranked after it may get any
    position past it. When those prefixes are short (a useful model), only they are sorted.
    """
    if np.isnan(dist.max(axis=1)).any():
        raise EvaluationError("the distance matrix contains NaN: check the features (NaN/inf) before evaluating")
    values = dist[rows, cols]
    limit = np.full(dist.shape[0], -np.inf, dtype=dist.dtype)
    np.maximum.at(limit, rows[good], values[good])
    selected = dist <= limit[:, None]
    if np.count_nonzero(selected) <= PREFIX_MAX_FRACTION * selected.size:
        less, tied = _positions_in_prefixes(dist, rows, values, limit, selected)
    else:
        less, tied = _positions_in_sorted_rows(dist, rows, values)
    return less + _tie_offsets(dist, rows, cols, values, np.flatnonzero(tied))


def _tie_offsets(
    dist: np.ndarray, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, tied: np.ndarray
) -> np.ndarray:
    """Rank offsets that break exact ties independently of the gallery order: every tied other-identity item ranks
    before a same-identity item (the pessimistic convention, so a degenerate feature earns no credit by where the
    gallery happens to list its matches), and same-identity items keep gallery-index order among themselves (they
    are interchangeable for every metric; junk among them is removed later either way). ``rows`` must be sorted."""
    offsets = np.zeros(len(rows), dtype=np.int64)
    if not len(tied):
        return offsets
    bounds = np.searchsorted(rows, np.arange(dist.shape[0] + 1))
    for i in tied.tolist():  # rare exact ties (or degenerate features, where every item ties)
        r, value = rows[i], values[i]
        same = slice(bounds[r], bounds[r + 1])
        same_tied = values[same] == value
        negatives_tied = int(np.count_nonzero(dist[r] == value)) - int(np.count_nonzero(same_tied))
        offsets[i] = negatives_tied + int(np.count_nonzero(same_tied & (cols[same] < cols[i])))
    return offsets


def rank_chunk(dist: np.ndarray, q_pids: np.ndarray, q_camids: np.ndarray, gallery: GalleryIndex) -> ChunkStats:
    """Rank one chunk of query rows (``dist``: rows × gallery) against ``gallery``; thread-safe.

    Same-pid gallery items whose camera id equals the query's are junk; pass :func:`junk_keys` as the camera ids
    for another policy.
    """
    n = dist.shape[0]
    rows, cols = gallery.same_pid_items(q_pids)
    junk = gallery.camids[cols] == q_camids[rows]
    pos = _rank_positions(dist, rows, cols, ~junk)
    order = np.lexsort((pos, rows))  # by row, then by rank
    rows, pos, junk = rows[order], pos[order], junk[order]
    row_start = np.searchsorted(rows, np.arange(n))
    junk_cum = np.cumsum(junk)
    # junk items ranked before each item, counted inside its own row
    junk_before = junk_cum - junk - np.concatenate(([0], junk_cum))[row_start[rows]]
    good = ~junk
    g_rows = rows[good]
    kept_pos = (pos[good] - junk_before[good] + 1).astype(np.float64)  # 1-based position among kept items
    num_pos = np.bincount(g_rows, minlength=n)
    g_start = np.searchsorted(g_rows, np.arange(n))
    hit = np.arange(len(g_rows)) - g_start[g_rows] + 1  # positives found up to and including this one
    precision_sum = np.bincount(g_rows, weights=hit / kept_pos, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = np.where(num_pos > 0, precision_sum / np.maximum(num_pos, 1), 0.0)
    first = np.zeros(n, dtype=np.float64)
    last = np.zeros(n, dtype=np.float64)
    valid = num_pos > 0
    first[valid] = kept_pos[g_start[valid]]
    last[valid] = kept_pos[g_start[valid] + num_pos[valid] - 1]
    return ChunkStats(ap=ap, num_pos=num_pos, first=first, last=last)


def finalize(
    chunks: list[ChunkStats],
    max_rank: int,
    num_gallery: int,
    protocol: dict[str, Any] | None = None,
    same_camera: str = "drop",
) -> RankResult:
    """Turn per-chunk outputs (in query order) into a :class:`RankResult`; ``same_camera`` (the policy the chunks
    were ranked with) only words the messages.

    Raises:
        EvaluationError: no query has a positive left after junk removal.
    """
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    num_pos = np.concatenate([c.num_pos for c in chunks]) if chunks else np.zeros(0, dtype=np.int64)
    valid = num_pos > 0
    num_valid = int(valid.sum())
    where = "in another camera" if same_camera == "drop" else "in the gallery"
    if num_valid == 0:
        hint = "; footage without camera ids needs same_camera=keep" if same_camera == "drop" else ""
        raise EvaluationError(
            f"no query has a positive {where} ({len(num_pos)} queries, {num_gallery} gallery items): check the "
            f"pids/camids and that the gallery holds the query identities{hint}"
        )
    ap = np.concatenate([c.ap for c in chunks])[valid]
    first = np.concatenate([c.first for c in chunks])[valid].astype(np.int64)
    last = np.concatenate([c.last for c in chunks])[valid]
    hist = np.bincount(np.minimum(first, max_rank + 1), minlength=max_rank + 2)[1 : max_rank + 1]
    cmc = np.cumsum(hist).astype(np.float64) / num_valid
    minp = float(np.mean(num_pos[valid] / last))
    skipped = len(num_pos) - num_valid
    if skipped:
        logger.info("%d of %d queries have no positive %s and were skipped", skipped, len(num_pos), where)
    return RankResult(
        cmc=cmc.astype(np.float32),
        mAP=float(np.mean(ap)),
        mINP=minp,
        num_valid_queries=num_valid,
        num_queries=len(num_pos),
        protocol=dict(protocol or {}),
    )


def chunk_rows(num_rows: int, num_cols: int, chunk_size: int | None) -> Iterator[tuple[int, int]]:
    """(start, stop) row ranges; ``chunk_size`` rows each, or sized so a chunk holds ~``DEFAULT_CHUNK_ELEMENTS``."""
    if chunk_size is None:
        chunk_size = max(1, DEFAULT_CHUNK_ELEMENTS // max(num_cols, 1))
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    for start in range(0, num_rows, chunk_size):
        yield start, min(num_rows, start + chunk_size)


def check_labels(
    num_q: int, num_g: int, q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Labels as 1-D int64 arrays, checked against the distance matrix shape."""
    if num_q == 0 or num_g == 0:
        raise EvaluationError(f"nothing to evaluate: {num_q} queries and {num_g} gallery items; check the split")
    arrays = [np.asarray(a).astype(np.int64, copy=False).ravel() for a in (q_pids, g_pids, q_camids, g_camids)]
    names = ("q_pids", "g_pids", "q_camids", "g_camids")
    sizes = (num_q, num_g, num_q, num_g)
    for arr, name, size in zip(arrays, names, sizes):
        if arr.size != size:
            raise EvaluationError(
                f"{name} has {arr.size} entries but the distances have {size}: pass one label per"
                f" {'query' if name.startswith('q') else 'gallery item'}"
            )
    return arrays[0], arrays[1], arrays[2], arrays[3]


def default_workers() -> int:
    """Threads used to rank chunks in parallel (NumPy's sort releases the GIL): the CPU count, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def rank_chunks(
    chunks: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]], gallery: GalleryIndex, num_workers: int | None = None
) -> list[ChunkStats]:
    """Rank ``(dist_chunk, q_pids_chunk, q_camids_chunk)`` items in order, ``num_workers`` threads at a time.

    At most ``num_workers + 1`` chunks are alive at once, so a lazily computed iterator of distance chunks keeps
    memory bounded while the next chunk's distances are computed as the previous ones are ranked.
    """
    workers = default_workers() if num_workers is None else max(1, int(num_workers))
    if workers == 1:
        return [rank_chunk(d, p, c, gallery) for d, p, c in chunks]
    results: list[ChunkStats] = []
    pending: deque[Future[ChunkStats]] = deque()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for dist, pids, camids in chunks:
            while len(pending) >= workers:
                results.append(pending.popleft().result())
            pending.append(pool.submit(rank_chunk, dist, pids, camids, gallery))
        while pending:
            results.append(pending.popleft().result())
    return results


def evaluate_rank(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    max_rank: int = 50,
    chunk_size: int | None = None,
    num_workers: int | None = None,
    same_camera: str = "drop",
    query_in_gallery: bool = False,
) -> RankResult:
    """CMC, mAP and mINP of a query × gallery distance matrix (smaller = more similar).

    Same semantics as torchreid's ``eval_market1501`` (same-pid-same-camera gallery items removed, queries with no
    remaining positive skipped) with ``same_camera="drop"``; ``"keep"`` removes no same-camera item, only each
    query's own copy when ``query_in_gallery`` says the gallery's first items are the queries (:func:`junk_keys`).
    Vectorised, chunked over queries (``chunk_size`` rows; default: sized to the gallery) and ranked on
    ``num_workers`` threads. A query that keeps fewer than ``max_rank`` gallery items does not
    fail (its CMC is padded with its last value). ``distmat`` may be a NumPy array or a torch tensor; float64 input
    is ranked in float64.

    Raises:
        EvaluationError: shapes disagree, the distances hold NaN, an unknown ``same_camera`` policy, or no query has
            a valid positive.
    """
    if hasattr(distmat, "detach"):
        distmat = distmat.detach().cpu().numpy()
    distmat = np.asarray(distmat)
    if distmat.ndim != 2:
        raise EvaluationError(f"distmat must be 2-D (queries × gallery), got shape {distmat.shape}")
    if distmat.dtype not in (np.float32, np.float64):
        distmat = distmat.astype(np.float32)
    num_q, num_g = distmat.shape
    q_pids, g_pids, q_camids, g_camids = check_labels(num_q, num_g, q_pids, g_pids, q_camids, g_camids)
    q_keys, g_keys = junk_keys(q_camids, g_camids, same_camera, query_in_gallery)
    gallery = GalleryIndex(g_pids, g_keys)
    chunks = ((distmat[a:b], q_pids[a:b], q_keys[a:b]) for a, b in chunk_rows(num_q, num_g, chunk_size))
    stats = rank_chunks(chunks, gallery, num_workers)
    return finalize(stats, max_rank, num_g, {"num_gallery": num_g, "same_camera": same_camera}, same_camera)
