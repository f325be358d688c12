"""Tracklet datasets: the data model, dataset loaders, the MOT→VReID builder, sampling and transforms.

``load_dataset(name, root, **options)`` is the one entry point for reading a dataset from disk:

* ``"mars"`` — MARS (``bbox_train/``, ``bbox_test/``, ``info/``), see :mod:`cgclip.data.mars`.
* ``"lsvid"`` — LS-VID (``info/list_sequence/``, ``info/data/info_test.mat``), see :mod:`cgclip.data.lsvid`.
* ``"ilidsvid"`` — iLIDS-VID with options ``split`` (0–9) and ``test_half``, see :mod:`cgclip.data.ilidsvid`.
* ``"vreid"`` — a dataset folder written by ``cgclip build-mot``, see :mod:`cgclip.data.vreid`.
* ``"folder"`` — plain ``train/``, ``query/``, ``gallery/`` tracklet folders, see :mod:`cgclip.data.tracklet_folder`.

The names, loaders and format detectors are registered in :data:`cgclip.registry.DATASETS`.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from cgclip.data.tracklet import Tracklet, TrackletDataset, relabel, split_statistics
from cgclip.errors import ConfigError, DataError
from cgclip.registry import DATASETS as REGISTRY

#: the registered dataset names (declared in :data:`cgclip.registry.DATASETS`)
DATASETS = REGISTRY.names()


def load_dataset(name: str, root: str | Path, **options: Any) -> TrackletDataset:
    """Load dataset ``name`` from folder ``root``; ``options`` go to the dataset's loader."""
    root = Path(root)
    if not root.exists():
        raise DataError("dataset folder not found; pass the folder that holds the dataset", path=root)
    try:
        loader = REGISTRY[name.lower()].load("loader")
    except ConfigError as exc:
        raise DataError(str(exc)) from None
    _check_loader_options(name, loader, options)
    return loader(root, **options)


def _check_loader_options(name: str, loader: Any, options: dict[str, Any]) -> None:
    """Refuse keyword options ``loader`` does not take, naming them and the ones it does (``data.options``)."""
    params = inspect.signature(loader).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    known = [n for n, p in list(params.items())[1:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(
            f"data.options: {', '.join(map(repr, unknown))} is not an option of the {name} loader "
            f"(its options: {', '.join(known) or 'none'})"
        )


def detect_dataset(root: str | Path) -> str:
    """Guess the dataset kind of a folder from the files it holds (each registered dataset's ``detector``)."""
    root = Path(root)
    for name in REGISTRY.names():  # the formats' marker files exclude each other
        if REGISTRY[name].load("detector")(root):
            return name
    known = "; ".join(f"{n}: {REGISTRY.meta(n, 'description')}" for n in REGISTRY.names())
    raise DataError(f"cannot tell the dataset format (none of {known}); name it with --dataset-kind", path=root)


__all__ = ["DATASETS", "Tracklet", "TrackletDataset", "detect_dataset", "load_dataset", "relabel", "split_statistics"]
