"""Feature files: features plus tracklet metadata, written by feature extraction and read by evaluation and search.

A feature file is a pair sharing one stem ``PATH``:

* ``PATH.safetensors`` — tensors ``features`` (float32, items × dim), ``pids`` and ``camids`` (int64, items); its
  header metadata holds ``format`` and a random ``pair_id``.
* ``PATH.json`` — ``{"format", "pair_id", "num_items", "dim", "items": [{"seqid", "identity", "frames"}, ...],
  "extra": {...}}``; ``extra`` is free-form (model, config hash, protocol, ...).

The shared ``pair_id`` catches a JSON sidecar that belongs to another run. Both files are written atomically, the
tensors first.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cgclip.data.tracklet import Tracklet
from cgclip.errors import EvaluationError
from cgclip.io_utils import atomic_write_bytes, read_json_object, write_json

logger = logging.getLogger(__name__)

FORMAT = "cgclip-features/1"
_SUFFIXES = (".safetensors", ".json")


@dataclass
class FeatureSet:
    """Features of a list of tracklets, with their metadata (the content of a feature file)."""

    features: np.ndarray
    pids: np.ndarray
    camids: np.ndarray
    seqids: list[str]
    identities: list[str]
    frames: list[list[str]]
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def dim(self) -> int:
        """Feature dimension."""
        return int(self.features.shape[1])

    def tracklets(self) -> list[Tracklet]:
        """The items as :class:`Tracklet` objects."""
        return [
            Tracklet(tuple(f), int(p), int(c), s, i)
            for f, p, c, s, i in zip(self.frames, self.pids, self.camids, self.seqids, self.identities)
        ]

    def subset(self, indices: Sequence[int] | np.ndarray) -> FeatureSet:
        """The items at ``indices`` (in that order)."""
        idx = np.asarray(indices, dtype=np.int64)
        return FeatureSet(
            self.features[idx],
            self.pids[idx],
            self.camids[idx],
            [self.seqids[i] for i in idx],
            [self.identities[i] for i in idx],
            [self.frames[i] for i in idx],
            dict(self.extra),
        )


def feature_paths(path: str | Path) -> tuple[Path, Path]:
    """``(PATH.safetensors, PATH.json)`` for a stem; a path already ending in either suffix is accepted."""
    path = Path(path)
    if path.suffix in _SUFFIXES:
        path = path.with_suffix("")
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


def save_features(
    path: str | Path, features: Any, tracklets: Sequence[Tracklet], extra: dict[str, Any] | None = None
) -> tuple[Path, Path]:
    """Write features (items × dim) of ``tracklets`` to ``PATH.safetensors`` + ``PATH.json``; returns both paths."""
    from safetensors.numpy import save

    if hasattr(features, "detach"):
        features = features.detach().cpu().float().numpy()
    feats = np.ascontiguousarray(np.asarray(features, dtype=np.float32))
    if feats.ndim != 2:
        raise EvaluationError(f"features must be 2-D (items × dim), got shape {feats.shape}")
    if feats.shape[0] != len(tracklets):
        raise EvaluationError(
            f"{feats.shape[0]} feature rows but {len(tracklets)} tracklets: pass one row per tracklet"
        )
    st_path, json_path = feature_paths(path)
    pair_id = uuid.uuid4().hex
    tensors = {
        "features": feats,
        "pids": np.array([t.pid for t in tracklets], dtype=np.int64),
        "camids": np.array([t.camid for t in tracklets], dtype=np.int64),
    }
    atomic_write_bytes(st_path, save(tensors, metadata={"format": FORMAT, "pair_id": pair_id}))
    write_json(
        json_path,
        {
            "format": FORMAT,
            "pair_id": pair_id,
            "num_items": int(feats.shape[0]),
            "dim": int(feats.shape[1]),
            "items": [{"seqid": t.seqid, "identity": t.identity, "frames": list(t.frames)} for t in tracklets],
            "extra": dict(extra or {}),
        },
    )
    logger.info("wrote %d × %d features to %s", feats.shape[0], feats.shape[1], st_path)
    return st_path, json_path


def load_features(path: str | Path) -> FeatureSet:
    """Read a feature file pair written by :func:`save_features`.

    Raises:
        EvaluationError: a file is missing or corrupt, or the two files do not belong together.
    """
    from safetensors import safe_open

    st_path, json_path = feature_paths(path)
    for p in (st_path, json_path):
        if not p.is_file():
            raise EvaluationError("feature file not found; write it with save_features / feature extraction", path=p)
    try:
        with safe_open(str(st_path), framework="numpy") as handle:
            meta = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    except Exception as exc:  # safetensors raises its own error types for truncated/corrupt files
        raise EvaluationError(
            f"not a readable safetensors file ({exc}); re-extract the features", path=st_path
        ) from exc
    missing = [k for k in ("features", "pids", "camids") if k not in tensors]
    if missing:
        raise EvaluationError(f"missing tensor(s) {', '.join(missing)}; not a cgclip feature file", path=st_path)
    side = read_json_object(
        json_path,
        {"items": list},
        fix="not a cgclip feature file's sidecar; re-extract the features",
        error=EvaluationError,
    )
    if not all(isinstance(it, dict) for it in side["items"]):
        raise EvaluationError("sidecar items must be JSON objects; re-extract the features", path=json_path)
    feats = tensors["features"]
    n = feats.shape[0] if feats.ndim == 2 else -1
    if n < 0 or tensors["pids"].shape != (n,) or tensors["camids"].shape != (n,):
        raise EvaluationError(
            f"inconsistent tensor shapes {feats.shape}, {tensors['pids'].shape}, "
            f"{tensors['camids'].shape}; re-extract the features",
            path=st_path,
        )
    if meta.get("pair_id") != side.get("pair_id") or len(side["items"]) != n:
        raise EvaluationError(
            f"sidecar does not match {st_path.name} (pair_id or item count differs: "
            f"{len(side['items'])} vs {n}); both files must come from the same run",
            path=json_path,
        )
    items = side["items"]
    return FeatureSet(
        features=feats.astype(np.float32, copy=False),
        pids=tensors["pids"].astype(np.int64, copy=False),
        camids=tensors["camids"].astype(np.int64, copy=False),
        seqids=[str(it.get("seqid", "")) for it in items],
        identities=[str(it.get("identity", "")) for it in items],
        frames=[list(it.get("frames", [])) for it in items],
        extra=dict(side.get("extra") or {}),
    )
