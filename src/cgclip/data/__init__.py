"""Tracklet datasets: the data model, dataset loaders, the MOT→VReID builder, sampling and transforms.

``load_dataset(name, root, **options)`` is the one entry point for reading a dataset from disk:

* ``"mars"`` — MARS (``bbox_train/``, ``bbox_test/``, ``info/``), see :mod:`cgclip.data.mars`.
* ``"ilidsvid"`` — iLIDS-VID with options ``split`` (0–9) and ``test_half``, see :mod:`cgclip.data.ilidsvid`.
* ``"vreid"`` — a dataset folder written by ``cgclip build-mot``, see :mod:`cgclip.data.vreid`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from cgclip.data.tracklet import Tracklet, TrackletDataset, relabel, split_statistics
from cgclip.errors import DataError

DATASETS = ("mars", "ilidsvid", "vreid")


def _loader(name: str) -> Callable[..., TrackletDataset]:
    if name == "mars":
        from cgclip.data.mars import load_mars

        return load_mars
    if name == "ilidsvid":
        from cgclip.data.ilidsvid import load_ilidsvid

        return load_ilidsvid
    if name == "vreid":
        from cgclip.data.vreid import load_vreid

        return load_vreid
    raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def load_dataset(name: str, root: str | Path, **options: Any) -> TrackletDataset:
    """Load dataset ``name`` from folder ``root``; ``options`` go to the dataset's loader."""
    root = Path(root)
    if not root.exists():
        raise DataError("dataset folder not found; pass the folder that holds the dataset", path=root)
    return _loader(name.lower())(root, **options)


def detect_dataset(root: str | Path) -> str:
    """Guess the dataset kind of a folder from the files it holds ("vreid", "mars" or "ilidsvid")."""
    root = Path(root)
    if (root / "manifest.json").is_file():
        return "vreid"
    if (root / "info").is_dir() and (root / "bbox_test").is_dir():
        return "mars"
    if (root / "i-LIDS-VID").is_dir() or (root / "train-test people splits").is_dir():
        return "ilidsvid"
    raise DataError("cannot tell the dataset format (no manifest.json, MARS info/ or i-LIDS-VID/); name it with --kind",
                    path=root)


__all__ = ["DATASETS", "Tracklet", "TrackletDataset", "detect_dataset", "load_dataset", "relabel", "split_statistics"]
