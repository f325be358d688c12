"""CLIP's image preprocessing for crops held in memory: uint8 RGB arrays to normalised tensors."""

from __future__ import annotations

import numpy as np
import torch

from cgclip.data.transforms import CLIP_MEAN, CLIP_STD


def to_pixels(crops: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` → CLIP-normalised float ``[N, 3, H, W]`` (CLIP's mean and std, no resizing)."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std
