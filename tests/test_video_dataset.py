"""VideoClipDataset: sampling modes, reproducibility, bad-frame substitution, caching, collation."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from cgclip.data.mars import load_mars
from cgclip.data.sampling import PKSampler
from cgclip.data.tracklet import Tracklet
from cgclip.data.transforms import build_transform
from cgclip.data.video_dataset import VideoClipDataset, collate_clips
from cgclip.errors import ConfigError, DataError
from fixtures_reid import write_image, write_mars

IDENTITY = build_transform(size=(8, 4), train=False, mean=(0, 0, 0), std=(1 / 255,) * 3)  # pixel values kept


def _tracklet(tmp_path, name, n, pid=3, camid=1):
    """Frames whose red channel is 10 * frame position."""
    frames = []
    for i in range(n):
        path = tmp_path / name / f"{i:03d}.png"
        write_image(path, (10 * i % 256, 0, 0))
        frames.append(str(path))
    return Tracklet(tuple(frames), pid, camid)


def _positions(x):
    """Frame positions shown by a clip tensor [T,3,H,W] (red value / 10)."""
    return [int(round(v / 10)) for v in x[:, 0, 0, 0].tolist()]


def test_sampling_modes_and_item(tmp_path):
    t = _tracklet(tmp_path, "a", 11)
    for mode, expected in (("rrs_first", [0, 3, 6, 9]), ("evenly", [0, 3, 7, 10])):
        item = VideoClipDataset([t], 4, mode, IDENTITY)[0]
        assert item["images"].shape == (4, 3, 8, 4)
        assert _positions(item["images"]) == expected
        assert (item["pid"], item["camid"], item["index"]) == (3, 1, 0)
    dense = VideoClipDataset([t], 4, "dense", IDENTITY)[0]["images"]
    assert dense.shape == (3, 4, 3, 8, 4)
    assert [_positions(c) for c in dense] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 8]]
    ds = VideoClipDataset([t], 4, "rrs", IDENTITY)
    shown = _positions(ds[0]["images"])
    assert shown == ds.positions(0) and all(c[0] <= p <= c[1] for p, c in zip(shown, [(0, 2), (3, 5), (6, 8), (9, 10)]))


def test_deterministic_by_seed_epoch_index(tmp_path):
    t = _tracklet(tmp_path, "a", 40)
    tf = build_transform(size=(8, 4), train=True)
    a, b = VideoClipDataset([t, t], 8, "rrs", tf, seed=1), VideoClipDataset([t, t], 8, "rrs", tf, seed=1)
    assert torch.equal(a[1]["images"], b[1]["images"])
    pos = [a.positions(1)]
    a.set_epoch(1)
    pos.append(a.positions(1))
    assert pos[0] != pos[1]
    assert a.positions(0) != a.positions(1)  # items of one epoch differ
    a.set_epoch(0)
    assert torch.equal(a[1]["images"], b[1]["images"])


def test_corrupt_and_missing_frames_substituted(tmp_path, caplog):
    t = _tracklet(tmp_path, "a", 6)
    (tmp_path / "a" / "002.png").write_bytes(b"this is not an image")
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buf, format="JPEG")
    (tmp_path / "a" / "003.png").write_bytes(buf.getvalue()[:300])  # truncated
    (tmp_path / "a" / "005.png").unlink()
    ds = VideoClipDataset([t], 6, "rrs_first", IDENTITY)
    with caplog.at_level(logging.WARNING):
        x = ds[0]["images"]
        ds[0]
    # 2 -> 1 (ties go to the earlier frame); 3 -> 4 (its earlier neighbour 2 is unreadable); 5 -> 4
    assert _positions(x) == [0, 1, 1, 4, 4, 4]
    assert ds.bad_frame_count == 3
    assert ds.bad_frames[t.frames[5]] == "file not found"
    assert "cannot decode" in ds.bad_frames[t.frames[2]] and "cannot decode" in ds.bad_frames[t.frames[3]]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and all(any(f in w for w in warnings) for f in (t.frames[2], t.frames[3], t.frames[5]))


def test_unreadable_tracklet_raises(tmp_path):
    t = _tracklet(tmp_path, "a", 2)
    for f in t.frames:
        open(f, "wb").close()
    with pytest.raises(DataError, match=f"{t.frames[0]}: no frame of this tracklet"):
        VideoClipDataset([t], 4, "evenly", IDENTITY)[0]


def test_cache_images(tmp_path):
    t = _tracklet(tmp_path, "a", 4)
    ds = VideoClipDataset([t], 4, "evenly", IDENTITY, cache_images=True)
    first = ds[0]["images"]
    for f in t.frames:
        (tmp_path / "a" / f).unlink()
    assert torch.equal(ds[0]["images"], first) and ds.bad_frame_count == 0
    assert all(v.shape == (8, 4, 3) and v.dtype == np.uint8 for v in ds._cache.values())


def test_collate_and_loader_with_pk_sampler(tmp_path):
    write_mars(tmp_path)
    data = load_mars(tmp_path)
    ds = VideoClipDataset(data.train, 4, "rrs", build_transform(size=(16, 8)), seed=0)
    sampler = PKSampler([t.pid for t in data.train], p=2, k=2, seed=0)
    loader = DataLoader(ds, batch_size=sampler.batch_size, sampler=sampler, collate_fn=collate_clips)
    batches = list(loader)
    assert len(batches) == 1
    b = batches[0]
    assert b["images"].shape == (4, 4, 3, 16, 8)
    assert b["pid"].dtype == torch.long and len(set(b["pid"].tolist())) == 2
    assert [data.train[i].camid for i in b["index"].tolist()] == b["camid"].tolist()
    dense = VideoClipDataset(data.train, 2, "dense", IDENTITY)
    mixed = collate_clips([dense[0], dense[3]])  # 3 frames -> 2 clips, 4 frames -> 2 clips; 2 frames -> 1 clip
    assert isinstance(mixed["images"], torch.Tensor) and mixed["images"].shape == (2, 2, 2, 3, 8, 4)
    assert isinstance(collate_clips([dense[0], dense[1]])["images"], list)


def test_bad_options(tmp_path):
    t = _tracklet(tmp_path, "a", 2)
    with pytest.raises(ConfigError, match="unknown frame sampling"):
        VideoClipDataset([t], 4, "random", IDENTITY)
    with pytest.raises(ConfigError):
        VideoClipDataset([t], 0, "rrs", IDENTITY)
