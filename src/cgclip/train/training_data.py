"""What training sees of a dataset (:class:`TrainingData`): the train split less the validation identities, their
names, CG-CLIP's captions lined up with them, and the cameras training sees — checked before a run folder exists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cgclip.config import Config
from cgclip.data import TrackletDataset
from cgclip.errors import DataError
from cgclip.train.datasets import identity_names, open_dataset, training_cameras
from cgclip.train.setup import load_captions
from cgclip.train.validation import carve_validation


@dataclass
class TrainingData:
    """What training sees of a dataset: the train split (less the validation identities), their names, captions
    and cameras."""

    dataset: TrackletDataset
    split: Any  # cgclip.train.validation.ValidationSplit
    identities: list[str]
    cameras: list[int]
    captions: Sequence[Sequence[str]] | None

    @property
    def num_classes(self) -> int:
        """Training identities."""
        return len(self.identities)

    @property
    def num_cameras(self) -> int:
        """Size of the camera table: the largest training camera id + 1."""
        return self.cameras[-1] + 1 if self.cameras else 0


def training_data(
    cfg: Config, dataset: TrackletDataset | None, captions: Sequence[Sequence[str]] | None
) -> TrainingData:
    """Open the dataset, carve the validation identities, and line CG-CLIP's captions up with the train pids."""
    if dataset is None:
        dataset = open_dataset(cfg.data)
    all_identities = dataset.train_identities()
    split = carve_validation(dataset.train, cfg.data.val_identities, cfg.train.seed, cfg.data.val_selection)
    identities = identity_names(split.train)
    if len(identities) < 2:
        raise DataError(
            f"training needs at least 2 identities (its losses compare people), but {len(identities)} remain"
            + (f" after holding out data.val_identities={cfg.data.val_identities}" if split.enabled else "")
            + "; use a dataset with more train identities",
            path=dataset.root or None,
        )
    if cfg.model.name == "cgclip":
        if captions is None:
            captions = load_captions(cfg, dataset, identities)
        elif len(captions) == len(all_identities) and len(all_identities) != len(identities):
            by_name = dict(zip(all_identities, captions))
            captions = [by_name[name] for name in identities]
    return TrainingData(dataset, split, identities, training_cameras(split.train), captions)
