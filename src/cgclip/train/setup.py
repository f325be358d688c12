"""Training set-up pieces: seeding, precision and memory read-outs, the train and prepare data loaders, validation
on the held-out split, and caption loading for CG-CLIP. Used by :mod:`cgclip.train.trainer`."""

from __future__ import annotations

import random
import resource
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from cgclip.config import Config
from cgclip.data import TrackletDataset
from cgclip.data.sampling import PKSampler
from cgclip.data.transforms import build_transform
from cgclip.data.video_dataset import VideoClipDataset, collate_clips
from cgclip.runtime import resolve_precision  # noqa: F401 - re-exported: the one precision rule
from cgclip.train.distributed import DistInfo
from cgclip.train.extract import extract_features
from cgclip.train.validation import ValidationSplit


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: CUDA allocator peak on a GPU, the process's max resident set size on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def train_loader(
    tracklets: Sequence[Any], cfg: Config, info: DistInfo
) -> tuple[DataLoader, PKSampler, VideoClipDataset]:
    d = cfg.data
    transform = build_transform(
        size=(d.image_size[0], d.image_size[1]), train=True, flip_p=d.flip_p, erase_p=d.erase_p, erase_mode=d.erase_mode
    )
    dataset = VideoClipDataset(tracklets, d.seq_len, "rrs", transform, seed=cfg.train.seed, cache_images=d.cache_images)
    sampler = PKSampler(
        [t.pid for t in tracklets],
        d.p,
        d.k,
        seed=cfg.train.seed,
        rank=info.rank,
        world_size=info.world_size,
        epoch_mode=d.epoch_mode,
        cameras=[t.camid for t in tracklets],
        spread_cameras=d.spread_cameras,
        same_camera_ids=d.same_camera_identities,
    )
    loader = DataLoader(
        dataset,
        batch_size=sampler.batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=cfg.train.num_workers,
        collate_fn=collate_clips,
        pin_memory=info.device.type == "cuda",
        persistent_workers=False,
    )
    return loader, sampler, dataset


def prepare_loader(tracklets: Sequence[Any], cfg: Config, info: DistInfo, sampling: str = "rrs_first") -> DataLoader:
    """Deterministic clips (no augmentation) of this rank's share of the train set, for a model's ``prepare`` pass.

    ``sampling`` is the model's ``prepare_sampling``: ``rrs_first`` (one clip per tracklet: the first frame of each
    RRS chunk, ``eval.batch_size`` tracklets per batch) or ``dense`` (every consecutive ``data.seq_len``-frame clip of
    each tracklet, :func:`cgclip.data.sampling.dense_clips`; a quarter as many tracklets per batch).
    """
    d = cfg.data
    share = [t for i, t in enumerate(tracklets) if i % info.world_size == info.rank]
    dataset = VideoClipDataset(
        share,
        d.seq_len,
        sampling,
        build_transform(size=(d.image_size[0], d.image_size[1]), train=False),
        cache_images=d.cache_images,
    )
    per_batch = cfg.eval.batch_size if sampling != "dense" else max(1, cfg.eval.batch_size // 4)
    return DataLoader(
        dataset, batch_size=per_batch, shuffle=False, num_workers=cfg.train.num_workers, collate_fn=collate_clips
    )


def validate(
    model: torch.nn.Module, split: ValidationSplit, cfg: Config, device: torch.device, precision: str
) -> dict[str, float]:
    """Retrieval metrics of ``model`` on the validation split (never the test set)."""
    from cgclip.eval import evaluate_features

    seq_len = cfg.eval.seq_len or cfg.data.seq_len
    kwargs = dict(
        image_size=cfg.data.image_size,
        seq_len=seq_len,
        sampling="rrs_first",
        batch_size=cfg.eval.batch_size,
        device=device,
        precision=precision,
        num_workers=0,
        cache_images=cfg.data.cache_images,
    )
    qf = extract_features(model, split.query, desc="val query", **kwargs)
    gf = extract_features(model, split.gallery, desc="val gallery", **kwargs)
    result = evaluate_features(
        qf.numpy(),
        gf.numpy(),
        [t.pid for t in split.query],
        [t.pid for t in split.gallery],
        [t.camid for t in split.query],
        [t.camid for t in split.gallery],
        metric=cfg.eval.metric,
        gallery_mode="gallery",
    )
    return {"mAP": float(result.mAP), "rank1": result.rank(1), "rank5": result.rank(5), "mINP": float(result.mINP)}


def load_captions(cfg: Config, dataset: TrackletDataset, identities: list[str]) -> list[list[str]]:
    from cgclip.captions import load_identity_captions

    source = cfg.data.captions or dataset.root
    return load_identity_captions(source, identities)
