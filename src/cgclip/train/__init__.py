"""Training: configuration-driven trainer, optimizer and schedule, checkpoints, run folders, distributed training,
validation-based model selection, feature extraction and run evaluation.

Main entry points (imported lazily so ``import cgclip.train`` stays cheap):

* :func:`train` — :mod:`cgclip.train.trainer`;
* :func:`extract_features` — :mod:`cgclip.train.extract`;
* :func:`evaluate_run`, :func:`load_run_model`, :func:`extract_run_features` — :mod:`cgclip.train.inference`;
* :class:`RunDir` — :mod:`cgclip.train.run_dir`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "train": "cgclip.train.trainer",
    "TrainResult": "cgclip.train.trainer",
    "extract_features": "cgclip.train.extract",
    "evaluate_run": "cgclip.train.inference",
    "load_run_model": "cgclip.train.inference",
    "extract_run_features": "cgclip.train.inference",
    "RunDir": "cgclip.train.run_dir",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cgclip.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
