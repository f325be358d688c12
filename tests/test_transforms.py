"""Clip transforms: shapes, normalisation, clip-consistent flip and erasing, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cgclip.data.transforms import CLIP_MEAN, CLIP_STD, build_transform, erase_rectangle


def _gradient_frames(t=3, h=20, w=10):
    """Frames whose pixel value grows left to right (so a flip is visible), different per frame."""
    frames = []
    for i in range(t):
        arr = np.zeros((h, w, 3), dtype=np.uint8)
        arr[:] = (np.arange(w) * 20 + i)[None, :, None].astype(np.uint8)
        frames.append(Image.fromarray(arr))
    return frames


def test_eval_transform_resize_and_normalise():
    arr = np.full((30, 14, 3), 128, dtype=np.uint8)
    tf = build_transform(size=(16, 8), train=False)
    x = tf([Image.fromarray(arr), arr])
    assert x.shape == (2, 3, 16, 8) and x.dtype == torch.float32
    expected = (128 / 255 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    assert torch.allclose(x[:, :, 0, 0], expected.expand(2, 3), atol=1e-5)
    assert torch.equal(tf([arr]), tf([arr], rng=123))  # eval ignores randomness


def test_resize_is_bicubic_pil():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (33, 17, 3), dtype=np.uint8))
    tf = build_transform(size=(16, 8), train=False, mean=(0, 0, 0), std=(1, 1, 1))
    ref = np.asarray(img.resize((8, 16), Image.BICUBIC), dtype=np.float32) / 255
    assert np.allclose(tf([img])[0].permute(1, 2, 0).numpy(), ref, atol=1e-6)


def test_flip_is_clip_consistent():
    frames = _gradient_frames()
    tf = build_transform(size=(20, 10), train=True, flip_p=1.0, erase_p=0.0)
    ref = build_transform(size=(20, 10), train=False)(frames)
    x = tf(frames, rng=0)
    assert torch.allclose(x, torch.flip(ref, dims=[-1]))
    tf.flip_p = 0.5
    flipped = {bool(torch.allclose(tf(frames, rng=s)[0], torch.flip(ref[0], dims=[-1]))) for s in range(20)}
    assert flipped == {True, False}
    for s in range(20):
        x = tf(frames, rng=s)
        per_frame = [bool(torch.allclose(x[i], torch.flip(ref[i], dims=[-1]))) for i in range(3)]
        assert len(set(per_frame)) == 1


def test_flip_per_frame_when_not_consistent():
    frames = _gradient_frames(t=8)
    tf = build_transform(size=(20, 10), train=True, flip_p=0.5, erase_p=0.0, clip_consistent=False)
    ref = build_transform(size=(20, 10), train=False)(frames)
    x = tf(frames, rng=1)
    per_frame = {bool(torch.allclose(x[i], torch.flip(ref[i], dims=[-1]))) for i in range(8)}
    assert per_frame == {True, False}


def _erased_mask(x, ref):
    return (~torch.isclose(x, ref)).any(dim=1)  # [T, H, W]


def test_erasing_same_rectangle_over_clip():
    frames = _gradient_frames(t=4, h=64, w=32)
    tf = build_transform(size=(64, 32), train=True, flip_p=0.0, erase_p=1.0)
    ref = build_transform(size=(64, 32), train=False)(frames)
    areas = []
    for s in range(30):
        mask = _erased_mask(tf(frames, rng=s), ref)
        assert all(torch.equal(mask[0], mask[i]) for i in range(4))
        rows, cols = torch.nonzero(mask[0], as_tuple=True)
        assert len(rows) > 0
        h, w = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert mask[0].sum() == h * w  # one rectangle
        areas.append(h * w / (64 * 32))
    assert 0.015 <= min(areas) and max(areas) <= 0.45


def test_erase_rectangle_bounds():
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, h, w = erase_rectangle(256, 128, rng)
        assert 0 <= top and top + h <= 256 and 0 <= left and left + w <= 128
        assert 0.3 * 0.9 <= h / w <= 3.34 / 0.9
        assert 0.02 * 0.9 <= h * w / (256 * 128) <= 0.4 * 1.1
    assert erase_rectangle(1, 1, rng) is None  # nothing smaller than the image fits


def test_reproducible_with_seed():
    frames = _gradient_frames(t=2, h=32, w=16)
    tf = build_transform(size=(32, 16), train=True)
    assert torch.equal(tf(frames, rng=np.random.default_rng(9)), tf(frames, rng=9))
    outs = {tf(frames, rng=s).sum().item() for s in range(10)}
    assert len(outs) > 1


def test_empty_clip_rejected():
    with pytest.raises(ValueError):
        build_transform()([])
