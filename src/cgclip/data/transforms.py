"""Clip transforms without torchvision: resize, horizontal flip, CLIP normalisation, random erasing.

:func:`build_transform` returns a :class:`ClipTransform`, a callable ``frames -> Tensor[T, 3, H, W]`` where ``frames``
is a list of PIL images or ``H×W×3`` uint8 arrays (one per frame of a clip). Random decisions come from the ``rng``
argument of the call (a :class:`numpy.random.Generator` or an int seed), so the data pipeline can make every clip
reproducible from ``(seed, epoch, index)``. With ``clip_consistent=True`` a clip is augmented as a whole: one flip
decision and one erased rectangle for all its frames, so the temporal model sees a consistent video.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)


def _as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def resize_frame(frame: Image.Image | np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize one frame to ``size = (H, W)`` with PIL bicubic filtering; returns an ``H×W×3`` uint8 array."""
    h, w = size
    if isinstance(frame, np.ndarray):
        if frame.shape[:2] == (h, w) and frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8:
            return frame
        frame = Image.fromarray(frame)
    if frame.mode != "RGB":
        frame = frame.convert("RGB")
    if frame.size != (w, h):
        frame = frame.resize((w, h), Image.BICUBIC)
    return np.asarray(frame, dtype=np.uint8)


#: Random-erasing modes: one rectangle per clip, or one per frame (TF-CLIP), with their area ranges.
ERASE_MODES = ("clip", "frame")
ERASE_AREA = {"clip": (0.02, 0.4), "frame": (0.02, 0.2)}


def erase_rectangle(
    height: int,
    width: int,
    rng: np.random.Generator,
    area: tuple[float, float] = (0.02, 0.4),
    aspect: float = 0.3,
    attempts: int = 100,
) -> tuple[int, int, int, int] | None:
    """Draw a random-erasing rectangle ``(top, left, h, w)`` (Zhong et al.); None if no attempt fits the image.

    The target area is uniform in ``area`` × image area and the aspect ratio h/w uniform in ``[aspect, 1/aspect]``.
    """
    for _ in range(attempts):
        target = rng.uniform(*area) * height * width
        ratio = rng.uniform(aspect, 1.0 / aspect)
        h = int(round(math.sqrt(target * ratio)))
        w = int(round(math.sqrt(target / ratio)))
        if 0 < h < height and 0 < w < width:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    return None


class ClipTransform:
    """Callable ``frames -> Tensor[T, 3, H, W]`` (see :func:`build_transform` for the parameters)."""

    def __init__(
        self,
        size: tuple[int, int] = (256, 128),
        train: bool = True,
        flip_p: float = 0.5,
        erase_p: float = 0.5,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
        clip_consistent: bool = True,
        erase_mode: str = "clip",
    ) -> None:
        if erase_mode not in ERASE_MODES:
            raise ValueError(f"erase_mode must be one of {', '.join(ERASE_MODES)}, got {erase_mode!r}")
        self.erase_mode = erase_mode
        self.size = (int(size[0]), int(size[1]))
        self.train = train
        self.flip_p = flip_p if train else 0.0
        self.erase_p = erase_p if train else 0.0
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.clip_consistent = clip_consistent

    def __repr__(self) -> str:
        return (
            f"ClipTransform(size={self.size}, train={self.train}, flip_p={self.flip_p}, erase_p={self.erase_p}, "
            f"clip_consistent={self.clip_consistent})"
        )

    def to_uint8(self, frames: Sequence[Image.Image | np.ndarray]) -> torch.Tensor:
        """Resize and stack frames into a uint8 tensor ``[T, 3, H, W]``."""
        arr = np.stack([resize_frame(f, self.size) for f in frames])
        return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()

    def __call__(
        self, frames: Sequence[Image.Image | np.ndarray], rng: np.random.Generator | int | None = None
    ) -> torch.Tensor:
        """Transform one clip; ``rng`` drives the random flip and erasing (ignored by an eval transform)."""
        if len(frames) == 0:
            raise ValueError("a clip needs at least one frame")
        x = self.to_uint8(frames).float().div_(255.0)
        x = (x - self.mean) / self.std
        if self.flip_p <= 0 and self.erase_p <= 0:
            return x
        gen = _as_generator(rng)
        t = x.shape[0]
        groups = [list(range(t))] if self.clip_consistent else [[i] for i in range(t)]
        for group in groups:
            if self.flip_p > 0 and gen.random() < self.flip_p:
                x[group] = torch.flip(x[group], dims=[-1])
            if self.erase_mode == "clip" and self.erase_p > 0 and gen.random() < self.erase_p:
                self._erase(x, group, gen, ERASE_AREA["clip"])
        if self.erase_mode == "frame" and self.erase_p > 0:
            for i in range(t):  # TF-CLIP: every frame decides and draws its own rectangle
                if gen.random() < self.erase_p:
                    self._erase(x, [i], gen, ERASE_AREA["frame"])
        return x

    @staticmethod
    def _erase(x: torch.Tensor, frames: list[int], gen: np.random.Generator, area: tuple[float, float]) -> None:
        rect = erase_rectangle(x.shape[2], x.shape[3], gen, area=area)
        if rect is not None:
            top, left, h, w = rect
            noise = torch.from_numpy(gen.standard_normal((3, h, w)).astype(np.float32))
            x[frames, :, top : top + h, left : left + w] = noise


def build_transform(
    size: tuple[int, int] = (256, 128),
    train: bool = True,
    flip_p: float = 0.5,
    erase_p: float = 0.5,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
    clip_consistent: bool = True,
    erase_mode: str = "clip",
) -> ClipTransform:
    """Build the clip transform.

    Training: bicubic resize to ``size = (H, W)``, random horizontal flip with probability ``flip_p``, conversion to
    float in [0, 1], CLIP normalisation (``mean``/``std``), then random erasing with probability ``erase_p``
    (Zhong et al.: area 2–40 % of the image, aspect ratio 0.3–3.3, filled with standard-normal noise in the
    normalised space, like timm's ``mode="pixel"``). With ``clip_consistent`` one flip decision and one rectangle
    (with one noise patch) apply to all frames of a clip; otherwise each frame decides on its own. ``erase_mode``
    ``"frame"`` (TF-CLIP's per-frame erasing) erases each frame independently with probability ``erase_p``, area
    2–20 %, whatever ``clip_consistent`` says.
    Evaluation (``train=False``): resize and normalisation only.
    """
    return ClipTransform(
        size=size,
        train=train,
        flip_p=flip_p,
        erase_p=erase_p,
        mean=mean,
        std=std,
        clip_consistent=clip_consistent,
        erase_mode=erase_mode,
    )
