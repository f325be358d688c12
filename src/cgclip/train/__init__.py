"""Training: configuration-driven trainer, optimizer and schedule, checkpoints, run folders, distributed training,
validation-based model selection, feature extraction and run evaluation.

Main entry points (imported lazily so ``import cgclip.train`` stays cheap):

* :func:`train` — :mod:`cgclip.train.trainer`;
* :func:`extract_features` — :mod:`cgclip.train.extract`;
* :func:`evaluate_run`, :func:`load_run_model`, :func:`extract_run_features` — :mod:`cgclip.train.inference`;
* :class:`RunDir` — :mod:`cgclip.train.run_dir`.
"""

from __future__ import annotations

from cgclip.lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports("cgclip.train", _EXPORTS, globals())
