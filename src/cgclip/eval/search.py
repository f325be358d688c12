"""Gallery search: exact or approximate (FAISS IVF / HNSW) inner-product search on L2-normalised features.

:class:`SearchIndex` builds an index over gallery features, answers batches of queries with the top-k gallery items
and their cosine similarities, and saves/loads itself as ``PATH`` (``faiss.write_index``) plus ``PATH.json``
(index type, parameters, one id per gallery item, and free-form metadata such as the gallery feature file).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cgclip.errors import EvaluationError
from cgclip.eval.distance import as_features, l2_normalize
from cgclip.io_utils import atomic_write_bytes, read_json, write_json

logger = logging.getLogger(__name__)

INDEX_TYPES = ("exact", "ivf", "hnsw")
SIDECAR_FORMAT = "cgclip-index/1"


#: The smallest value of each index parameter FAISS can work with (``hnsw_m`` below 2 aborts or hangs inside it).
SEARCH_PARAM_MIN = {
    "topk": 1,
    "nlist": 1,
    "nprobe": 1,
    "hnsw_m": 2,
    "ef_construction": 1,
    "ef_search": 1,
    "train_size": 1,
    "grid_queries": 1,
}


def check_search_params(**params: Any) -> None:
    """Raise EvaluationError naming the first parameter (``topk``, ``nlist``, ``nprobe``, ``hnsw_m``,
    ``ef_construction``, ``ef_search``, ``train_size``) that is not an integer at least its minimum
    (:data:`SEARCH_PARAM_MIN`); None means "the default" and passes. Called before FAISS sees any of them."""
    for name, value in params.items():
        if value is None:
            continue
        low = SEARCH_PARAM_MIN[name]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise EvaluationError(f"--{name.replace('_', '-')}: {value!r} is outside [{low}, inf) (an integer)")


def default_nlist(n: int) -> int:
    """IVF list count ≈ 4·√N, at least 1 and at most N / 39 (FAISS wants ≥ 39 training points per list)."""
    return int(max(1, min(round(4 * math.sqrt(max(n, 1))), n // 39 or 1)))


class SearchIndex:
    """A FAISS inner-product index over normalised gallery features, with one id per gallery item.

    Build with :meth:`build`, query with :meth:`search`, persist with :meth:`save` / :meth:`load`.
    """

    def __init__(
        self,
        index: Any,
        index_type: str,
        ids: list[str],
        params: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.index = index
        self.index_type = index_type
        self.ids = ids
        self.params = dict(params or {})
        self.meta = dict(meta or {})
        self._apply_search_params()

    @property
    def ntotal(self) -> int:
        """Number of gallery items in the index."""
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        """Feature dimension."""
        return int(self.index.d)

    @classmethod
    def build(
        cls,
        features: Any,
        index_type: str = "exact",
        ids: Sequence[str] | None = None,
        *,
        nlist: int | None = None,
        nprobe: int = 16,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        train_size: int | None = None,
        seed: int = 0,
        meta: dict[str, Any] | None = None,
    ) -> SearchIndex:
        """Index gallery ``features`` (items × dim; normalised here).

        ``exact`` is a flat inner-product index (right for galleries up to ~10⁵); ``ivf`` an IndexIVFFlat with
        ``nlist`` lists (default ≈ 4·√N), trained on ``train_size`` sampled items (default 64 per list) and searched
        with ``nprobe`` lists; ``hnsw`` an IndexHNSWFlat with ``hnsw_m`` links per node.
        """
        import faiss

        if index_type not in INDEX_TYPES:
            raise EvaluationError(f"unknown index type {index_type!r}: use one of {', '.join(INDEX_TYPES)}")
        check_search_params(
            nlist=nlist,
            nprobe=nprobe,
            hnsw_m=hnsw_m,
            ef_construction=ef_construction,
            ef_search=ef_search,
            train_size=train_size,
        )
        x = l2_normalize(as_features(features, "gallery features"))
        n, d = x.shape
        if n == 0:
            raise EvaluationError("the gallery is empty: nothing to index")
        id_list = [str(i) for i in range(n)] if ids is None else [str(i) for i in ids]
        if len(id_list) != n:
            raise EvaluationError(f"{len(id_list)} ids for {n} gallery items: pass one id per item")
        params: dict[str, Any] = {}
        if index_type == "exact":
            index = faiss.IndexFlatIP(d)
        elif index_type == "ivf":
            nlist = default_nlist(n) if nlist is None else int(nlist)
            if not 1 <= nlist <= n:
                raise EvaluationError(f"nlist must be in [1, {n}] for {n} gallery items, got {nlist}")
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            size = min(n, train_size or 64 * nlist)
            sample = np.random.default_rng(seed).choice(n, size=size, replace=False) if size < n else slice(None)
            index.cp.seed = seed
            logger.info("training IVF (%d lists) on %d of %d items", nlist, size, n)
            index.train(np.ascontiguousarray(x[sample]))
            quantizer.is_trained = True
            params.update(nlist=nlist, nprobe=int(nprobe), train_size=int(size))
        else:
            index = faiss.IndexHNSWFlat(d, int(hnsw_m), faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = int(ef_construction)
            params.update(hnsw_m=int(hnsw_m), ef_construction=int(ef_construction), ef_search=int(ef_search))
        index.add(x)
        logger.info("built %s index over %d × %d features", index_type, n, d)
        return cls(index, index_type, id_list, params, meta)

    def _apply_search_params(self) -> None:
        check_search_params(nprobe=self.params.get("nprobe"), ef_search=self.params.get("ef_search"))
        if self.index_type == "ivf":
            self.index.nprobe = int(self.params.get("nprobe", 16))
        elif self.index_type == "hnsw":
            self.index.hnsw.efSearch = int(self.params.get("ef_search", 128))

    def set_search_params(self, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Change the speed/recall trade-off of an IVF (``nprobe``) or HNSW (``ef_search``) index."""
        check_search_params(nprobe=nprobe, ef_search=ef_search)
        if nprobe is not None:
            self.params["nprobe"] = int(nprobe)
        if ef_search is not None:
            self.params["ef_search"] = int(ef_search)
        self._apply_search_params()

    def search(self, queries: Any, topk: int = 10, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Top-``topk`` gallery items of each query: ``(scores, indices)``, both ``queries × k`` (k = min(topk, N)).

        Scores are cosine similarities (higher = closer); distances for display are ``1 - score``. An index that
        finds fewer than k items for a query (approximate search) pads with index −1 and score −inf.
        """
        q = l2_normalize(as_features(queries, "query features"))
        if q.shape[1] != self.dim:
            raise EvaluationError(
                f"queries are {q.shape[1]}-d but the index holds {self.dim}-d features:"
                " use features from the same model"
            )
        check_search_params(topk=topk)
        k = min(int(topk), self.ntotal)
        if self.index_type == "hnsw":  # HNSW returns at most efSearch items: search at least k wide
            self.index.hnsw.efSearch = max(int(self.params.get("ef_search", 128)), k)
        scores = np.empty((len(q), k), dtype=np.float32)
        indices = np.empty((len(q), k), dtype=np.int64)
        for a in range(0, len(q), batch_size):
            s, i = self.index.search(np.ascontiguousarray(q[a : a + batch_size]), k)
            scores[a : a + len(s)], indices[a : a + len(s)] = s, i
        scores[indices < 0] = -np.inf
        return scores, indices

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write the index to ``path`` and its sidecar to ``path.json`` (atomically); returns both paths."""
        import faiss

        path = Path(path)
        sidecar = path.with_name(path.name + ".json")
        atomic_write_bytes(path, faiss.serialize_index(self.index).tobytes())
        write_json(
            sidecar,
            {
                "format": SIDECAR_FORMAT,
                "index_type": self.index_type,
                "num_items": self.ntotal,
                "dim": self.dim,
                "params": self.params,
                "ids": self.ids,
                "meta": self.meta,
            },
        )
        return path, sidecar

    @classmethod
    def load(cls, path: str | Path) -> SearchIndex:
        """Read an index saved by :meth:`save`.

        Raises:
            EvaluationError: the index or its sidecar is missing, corrupt or inconsistent.
        """
        import faiss

        path = Path(path)
        sidecar = path.with_name(path.name + ".json")
        if not path.is_file():
            raise EvaluationError("index file not found; build it with `cgclip search --save-index`", path=path)
        try:
            side = read_json(sidecar)
        except Exception as exc:
            raise EvaluationError(f"index sidecar unreadable ({exc}); rebuild the index", path=sidecar) from exc
        if not isinstance(side, dict) or side.get("format") != SIDECAR_FORMAT:
            raise EvaluationError(f"not a cgclip index sidecar (format {SIDECAR_FORMAT} expected)", path=sidecar)
        try:
            index = faiss.deserialize_index(np.fromfile(path, dtype=np.uint8))
        except Exception as exc:  # faiss raises RuntimeError on a corrupt file
            raise EvaluationError(
                f"not a readable FAISS index ({str(exc).splitlines()[0] if str(exc) else exc}); rebuild it", path=path
            ) from exc
        ids = [str(i) for i in side.get("ids", [])]
        if len(ids) != index.ntotal or side.get("index_type") not in INDEX_TYPES:
            raise EvaluationError(
                f"sidecar lists {len(ids)} ids but the index holds {index.ntotal} items;"
                " the two files come from different builds",
                path=sidecar,
            )
        return cls(index, side["index_type"], ids, side.get("params"), side.get("meta"))


def is_index_path(path: str | Path) -> bool:
    """True if ``path`` looks like a saved index (its ``.json`` sidecar names the index format)."""
    sidecar = Path(str(path) + ".json")
    if not Path(path).is_file() or not sidecar.is_file():
        return False
    try:
        return read_json(sidecar).get("format") == SIDECAR_FORMAT
    except Exception:
        return False
