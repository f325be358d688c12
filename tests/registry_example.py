"""The registry example of docs/DEVELOPING.md: a model file and a dataset loader (registered by test_registry.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from cgclip.data.tracklet import Tracklet, TrackletDataset
from cgclip.models.heads import loss_options
from cgclip.models.tap import TAPModel


class TMPModel(TAPModel):
    """CLIP + temporal max pooling."""

    def pool(self, frames: torch.Tensor) -> torch.Tensor:
        return frames.max(dim=1).values


def build(image_encoder: nn.Module, num_classes: int, opts: dict[str, Any], **context: Any) -> TMPModel:
    return TMPModel(image_encoder, num_classes, **loss_options(opts))


def detect(root: Path) -> bool:
    return (root / "tracklets.txt").is_file()


def load_lines(root: Path, **options: Any) -> TrackletDataset:
    """One tracklet a line: ``split pid camid frame frame ...``."""
    parts: dict[str, list[Tracklet]] = {"train": [], "query": [], "gallery": []}
    for line in (root / "tracklets.txt").read_text().splitlines():
        split, pid, camid, *frames = line.split()
        parts[split].append(Tracklet(tuple(str(root / f) for f in frames), int(pid), int(camid)))
    return TrackletDataset("lines", str(root), parts["train"], parts["query"], parts["gallery"])
