"""Opening the dataset a configuration names, and the facts about it the trainer and evaluator need."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cgclip.config import DataConfig
from cgclip.data import TrackletDataset, detect_dataset, load_dataset
from cgclip.data.tracklet import Tracklet
from cgclip.errors import ConfigError


def dataset_kind(data: DataConfig, root: str | Path) -> str:
    """The dataset format: ``data.kind``, or guessed from the folder when it is ``auto``."""
    return detect_dataset(root) if data.kind == "auto" else data.kind


def open_dataset(data: DataConfig, root: str | Path | None = None) -> TrackletDataset:
    """Load the dataset of ``data`` (``root`` overrides ``data.root``); iLIDS-VID gets ``data.split``."""
    root = root if root is not None else data.root
    if not root:
        raise ConfigError("no dataset folder: pass --dataset DIR (or set data.root)")
    kind = dataset_kind(data, root)
    options = dict(data.options)
    if kind == "ilidsvid":
        options.setdefault("split", data.split)
    return load_dataset(kind, root, **options)


def identity_names(tracklets: Sequence[Tracklet]) -> list[str]:
    """Identity name of every (relabelled, 0..N-1) pid of ``tracklets``, indexed by pid."""
    names: dict[int, str] = {}
    for t in tracklets:
        names.setdefault(t.pid, t.identity or str(t.pid))
    if sorted(names) != list(range(len(names))):
        raise ValueError("training pids are not relabelled 0..N-1")
    return [names[i] for i in range(len(names))]


def training_cameras(tracklets: Sequence[Tracklet]) -> list[int]:
    """The camera ids of the training tracklets, sorted: the rows of the SIE camera table that receive a gradient.

    The table is sized ``max + 1`` over these only; a test camera absent from training follows the unseen-camera
    rule of :class:`cgclip.clip.backbone.ClipImageEncoder` (the mean of the trained rows).
    """
    return sorted({int(t.camid) for t in tracklets})
