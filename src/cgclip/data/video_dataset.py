"""The torch Dataset that turns tracklets into clips for training and evaluation.

Each item is ``{"images": Tensor[T, 3, H, W], "pid": int, "camid": int, "index": int}``; with ``sampling="dense"``
``images`` is ``Tensor[C, T, 3, H, W]`` (all frames as ``C`` consecutive clips, see
:func:`cgclip.data.sampling.dense_clips`). Randomness (RRS positions, flips, erasing) is drawn from a generator seeded
by ``(seed, epoch, index)``, so an item is the same whichever worker builds it and a resumed run replays the same
clips; call :meth:`VideoClipDataset.set_epoch` at the start of each epoch (with non-persistent DataLoader workers,
which copy the dataset at every epoch).

A frame that is missing or fails to decode is replaced by the nearest readable frame of the same tracklet, logged
once with its path and counted in :attr:`VideoClipDataset.bad_frames` (per process: each DataLoader worker keeps its
own count). A tracklet with no readable frame raises :class:`cgclip.errors.DataError`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from cgclip.data.image_io import read_rgb, read_tracklet_frames
from cgclip.data.sampling import dense_clips, evenly_spaced_indices, rrs_first_indices, rrs_indices
from cgclip.data.tracklet import Tracklet
from cgclip.data.transforms import build_transform, resize_frame
from cgclip.errors import ConfigError, DataError

SAMPLING_MODES = ("rrs", "rrs_first", "evenly", "dense")


def _accepts_rng(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "rng" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


class VideoClipDataset(Dataset):
    """Clips of tracklets.

    Args:
        tracklets: the tracklets (frame paths must be readable from the working directory, e.g. absolute).
        seq_len: frames per clip (T).
        sampling: ``"rrs"`` (restricted random, training), ``"rrs_first"``, ``"evenly"`` or ``"dense"``.
        transform: ``frames -> Tensor[T, 3, H, W]``; a :class:`~cgclip.data.transforms.ClipTransform` (or any callable
            with an ``rng`` keyword) receives the item's generator. Default: the evaluation transform at 256×128.
        seed: base seed of the per-item generators.
        cache_images: keep decoded frames in memory (resized to ``transform.size`` as uint8 when the transform has a
            ``size``), for small datasets where decoding dominates. The cache lives in each worker process.
    """

    def __init__(
        self,
        tracklets: Sequence[Tracklet],
        seq_len: int,
        sampling: str = "rrs",
        transform: Callable[..., torch.Tensor] | None = None,
        seed: int = 0,
        cache_images: bool = False,
    ) -> None:
        if sampling not in SAMPLING_MODES:
            raise ConfigError(f"unknown frame sampling {sampling!r}; choose one of {', '.join(SAMPLING_MODES)}")
        if seq_len < 1:
            raise ConfigError(f"seq_len must be >= 1 (got {seq_len})")
        self.tracklets = list(tracklets)
        self.seq_len = int(seq_len)
        self.sampling = sampling
        self.transform = transform if transform is not None else build_transform(train=False)
        self._transform_takes_rng = _accepts_rng(self.transform)
        self.seed = int(seed)
        self.epoch = 0
        self.cache_images = cache_images
        self._cache: dict[str, Any] = {}
        self.bad_frames: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.tracklets)

    @property
    def bad_frame_count(self) -> int:
        """Number of distinct unreadable frames met so far in this process."""
        return len(self.bad_frames)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch that seeds the random sampling and augmentation of every item."""
        self.epoch = int(epoch)

    def generator(self, index: int) -> np.random.Generator:
        """The random generator of item ``index`` in the current epoch (seeded by ``(seed, epoch, index)``)."""
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def positions(self, index: int, rng: np.random.Generator | None = None) -> list[int] | list[list[int]]:
        """Frame positions of item ``index``: a list of T positions, or a list of clips for dense sampling."""
        n = len(self.tracklets[index].frames)
        if self.sampling == "rrs":
            return rrs_indices(n, self.seq_len, rng if rng is not None else self.generator(index))
        if self.sampling == "rrs_first":
            return rrs_first_indices(n, self.seq_len)
        if self.sampling == "evenly":
            return evenly_spaced_indices(n, self.seq_len)
        return dense_clips(n, self.seq_len)

    def _read(self, path: str) -> Any:
        if not self.cache_images:
            return read_rgb(path)
        img = self._cache.get(path)
        if img is None:
            img = read_rgb(path)
            size = getattr(self.transform, "size", None)
            img = resize_frame(img, size) if size is not None else np.asarray(img, dtype=np.uint8)
            self._cache[path] = img
        return img

    def _apply(self, frames: list[Any], rng: np.random.Generator) -> torch.Tensor:
        if self._transform_takes_rng:
            return self.transform(frames, rng=rng)
        return self.transform(frames)

    def __getitem__(self, index: int) -> dict[str, Any]:
        t = self.tracklets[index]
        if len(t.frames) == 0:
            raise DataError(f"tracklet {index} (pid {t.pid}, camera {t.camid}) has no frames; rebuild the dataset")
        rng = self.generator(index)
        pos = self.positions(index, rng)
        flat = [p for clip in pos for p in clip] if self.sampling == "dense" else list(pos)
        unique = sorted(set(flat))
        images = read_tracklet_frames(t.frames, unique, lambda i: self._read(t.frames[i]), self.bad_frames)
        if self.sampling == "dense":
            x = self._apply([images[p] for p in unique], rng)
            row = {p: i for i, p in enumerate(unique)}
            x = x[torch.tensor([[row[p] for p in clip] for clip in pos])]
        else:
            x = self._apply([images[p] for p in flat], rng)
        return {"images": x, "pid": t.pid, "camid": t.camid, "index": int(index)}


def collate_clips(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Collate dataset items: stack ``images`` (a list if their shapes differ, as with dense clips of several
    tracklets), and make ``pid``, ``camid`` and ``index`` long tensors."""
    imgs = [b["images"] for b in batch]
    same = all(i.shape == imgs[0].shape for i in imgs)
    return {
        "images": torch.stack(imgs) if same else imgs,
        "pid": torch.tensor([b["pid"] for b in batch], dtype=torch.long),
        "camid": torch.tensor([b["camid"] for b in batch], dtype=torch.long),
        "index": torch.tensor([b["index"] for b in batch], dtype=torch.long),
    }
