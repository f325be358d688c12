"""Feature extraction for evaluation and search: batched, mixed precision, with a progress bar, resumable.

Test frame sampling (SPEC §2.5):

* ``rrs_first`` — one clip per tracklet: the first frame of each of the ``T`` RRS chunks;
* ``dense`` — every frame, as consecutive clips of ``T`` frames; the clip features of a tracklet are averaged.

Work is done in chunks of tracklets; with a ``cache_dir`` each finished chunk is written atomically as a safetensors
file tagged with a fingerprint of the inputs (checkpoint, sampling, tracklets), so an interrupted extraction resumes at
the first missing chunk and a stale cache is ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from cgclip.data.tracklet import Tracklet
from cgclip.data.transforms import build_transform
from cgclip.data.video_dataset import VideoClipDataset, collate_clips
from cgclip.errors import ConfigError
from cgclip.progress import progress
from cgclip.runtime import autocast
from cgclip.train.checkpoint import load_tensors, save_tensors

log = logging.getLogger(__name__)

TEST_SAMPLING = ("rrs_first", "dense")


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """Autocast for ``precision`` (``bf16``/``fp16``/``fp32``/``auto``, :mod:`cgclip.runtime`) on ``device``."""
    try:
        return autocast(device, precision)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def tracklets_fingerprint(tracklets: Sequence[Tracklet], **settings: Any) -> str:
    """A short hash of the tracklets (frames, pids, cameras) and of ``settings`` (checkpoint, sampling, ...)."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for t in tracklets:
        h.update(f"{t.pid}|{t.camid}|{'|'.join(map(str, t.frames))}\n".encode())
    return h.hexdigest()[:24]


def _loader(
    tracklets: Sequence[Tracklet],
    image_size: Sequence[int],
    seq_len: int,
    sampling: str,
    batch_size: int,
    num_workers: int,
    cache_images: bool,
) -> DataLoader:
    ds = VideoClipDataset(
        tracklets,
        seq_len,
        sampling,
        build_transform(size=(int(image_size[0]), int(image_size[1])), train=False),
        cache_images=cache_images,
    )
    per_load = batch_size if sampling != "dense" else max(1, batch_size // 4)
    return DataLoader(
        ds,
        batch_size=per_load,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_clips,
        persistent_workers=False,
    )


def _clip_batches(
    images: torch.Tensor | list[torch.Tensor], camids: torch.Tensor, dense: bool, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(clips, camids, owner)``: forward batches of clips and the position of the tracklet each came from."""
    if not dense:
        yield images, camids, torch.arange(len(camids))  # type: ignore[misc]
        return
    items = list(images) if isinstance(images, list) else list(images.unbind(0))
    clips = torch.cat(items, dim=0)
    owner = torch.cat([torch.full((x.shape[0],), i, dtype=torch.long) for i, x in enumerate(items)])
    cams = camids[owner]
    for s in range(0, clips.shape[0], batch_size):
        yield clips[s : s + batch_size], cams[s : s + batch_size], owner[s : s + batch_size]


@torch.no_grad()
def _extract_range(
    model: torch.nn.Module,
    tracklets: Sequence[Tracklet],
    *,
    image_size: Sequence[int],
    seq_len: int,
    sampling: str,
    batch_size: int,
    device: torch.device,
    precision: str,
    num_workers: int,
    cache_images: bool,
    bar: Any,
) -> torch.Tensor:
    loader = _loader(tracklets, image_size, seq_len, sampling, batch_size, num_workers, cache_images)
    out: list[torch.Tensor] = []
    dense = sampling == "dense"
    for batch in loader:
        n = len(batch["pid"])
        sums: torch.Tensor | None = None
        counts = torch.zeros(n, dtype=torch.float32)
        for clips, cams, owner in _clip_batches(batch["images"], batch["camid"], dense, batch_size):
            with autocast_context(device, precision):
                feats = model.extract(clips.to(device, non_blocking=True), cams.to(device))
            feats = feats.float().cpu()
            if sums is None:
                sums = torch.zeros(n, feats.shape[1], dtype=torch.float32)
            sums.index_add_(0, owner, feats)
            counts.index_add_(0, owner, torch.ones(len(owner)))
        assert sums is not None
        out.append(sums / counts.clamp(min=1).unsqueeze(1))
        bar.update(n)
    return torch.cat(out, dim=0) if out else torch.zeros(0, 0)


def extract_features(
    model: torch.nn.Module,
    tracklets: Sequence[Tracklet],
    *,
    image_size: Sequence[int] = (256, 128),
    seq_len: int = 8,
    sampling: str = "rrs_first",
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    precision: str = "auto",
    num_workers: int = 0,
    cache_dir: str | Path | None = None,
    fingerprint: str = "",
    chunk_size: int = 512,
    cache_images: bool = False,
    desc: str = "extract",
) -> torch.Tensor:
    """Features ``[N, F]`` (float32, not normalised) of ``tracklets`` from ``model.extract`` (frames only).

    Args:
        model: a model with ``extract(images[B,T,3,H,W], camids) -> [B, F]`` (put in eval mode here).
        sampling: ``rrs_first`` or ``dense`` (clip features averaged per tracklet).
        batch_size: clips per forward pass.
        cache_dir: folder for resumable chunk files (None = no cache); ``fingerprint`` must change whenever the
            model or the inputs do (see :func:`tracklets_fingerprint`).
    """
    if sampling not in TEST_SAMPLING:
        raise ConfigError(f"test sampling {sampling!r} is not one of {', '.join(TEST_SAMPLING)}")
    device = torch.device(device)
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    chunks: list[torch.Tensor] = []
    cache = Path(cache_dir) if cache_dir is not None else None
    bar = progress(total=len(tracklets), desc=desc, unit="tracklet")
    try:
        for lo in range(0, len(tracklets), chunk_size):
            part = tracklets[lo : lo + chunk_size]
            path = cache / f"chunk-{lo:08d}.safetensors" if cache is not None else None
            if path is not None and path.is_file():
                tensors, meta = load_tensors(path)
                if meta.get("fingerprint") == fingerprint and tensors["features"].shape[0] == len(part):
                    chunks.append(tensors["features"])
                    bar.update(len(part))
                    continue
            feats = _extract_range(
                model,
                part,
                image_size=image_size,
                seq_len=seq_len,
                sampling=sampling,
                batch_size=batch_size,
                device=device,
                precision=precision,
                num_workers=num_workers,
                cache_images=cache_images,
                bar=bar,
            )
            if path is not None:
                save_tensors(path, {"features": feats}, metadata={"fingerprint": fingerprint})
            chunks.append(feats)
    finally:
        bar.close()
        model.train(was_training)
    elapsed = time.perf_counter() - start
    log.info(
        "%s: %d tracklets in %.1f s (%.1f tracklets/s)",
        desc,
        len(tracklets),
        elapsed,
        len(tracklets) / max(elapsed, 1e-9),
    )
    return torch.cat(chunks, dim=0) if chunks else torch.zeros(0, 0)
