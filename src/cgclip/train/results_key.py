"""The key of a result: what must be equal for a stored result (a run's test metrics) to be reused.

A result is reused only when its key matches: a hash of the resolved configuration (model-dependent defaults filled
in, folder paths left out), of what the caller says made the data (world kind, seed and sizes, for instance), of the
CLIP checkpoint's content and of :data:`RESULTS_VERSION`. The demo's run cache and ``benchmarks/bench_compare.py``
both use it, so a result made by another configuration or by code that trained or evaluated differently is never
reused.

Bump :data:`RESULTS_VERSION` whenever training or evaluation behaviour changes (not for refactors that keep it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cgclip.config import Config, config_to_dict, resolve_defaults

#: 2: issue 26 — SIE table over training cameras with the unseen-camera rule, TF-CLIP's per-frame erasing,
#: captions-only identity mode and a 10-identity camera-wise validation split in the ``tiny`` preset, ``part_norm``.
RESULTS_VERSION = 2

#: Configuration keys that name where things are, not what they are (their content enters through ``context``).
PATH_KEYS = (("data", "root"), ("data", "captions"), ("model", "clip_path"))


def clip_fingerprint(clip_dir: str | Path) -> str:
    """A short content hash of a CLIP checkpoint directory (its ``config.json`` and weight files' names and sizes)."""
    root = Path(clip_dir)
    h = hashlib.sha256((root / "config.json").read_bytes() if (root / "config.json").is_file() else b"")
    for f in sorted(root.glob("*.safetensors")):
        h.update(f"{f.name}:{f.stat().st_size}".encode())
    return h.hexdigest()[:16]


def results_key(cfg: Config, **context: Any) -> str:
    """The 16-hex-digit key of the result that ``cfg`` gives on the data ``context`` describes (JSON-serialisable
    values: world, seed, sizes, clip fingerprint ...)."""
    tree = config_to_dict(resolve_defaults(cfg))
    for section, key in PATH_KEYS:
        tree[section].pop(key, None)
    blob = json.dumps({"version": RESULTS_VERSION, "config": tree, "context": context}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


__all__ = ["PATH_KEYS", "RESULTS_VERSION", "clip_fingerprint", "results_key"]
