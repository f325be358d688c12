"""Helpers for trainer tests: a tiny randomly initialised CLIP (2-layer towers) and a tiny tracklet dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from cgclip.data import TrackletDataset
from cgclip.data.tracklet import Tracklet, relabel

IDENTITY_HEADER = "identity_id,split,scene,gender,uniform,number,hair,shoes,socks,build,accessories,others\n"
#: Overrides of the ``tiny`` preset for a one-step training on :func:`tiny_dataset` (2-frame clips, 2 × 2 batches,
#: fp32, no validation); add ``data.image_size=[32,16]`` for :func:`write_tiny_clip`'s CLIP.
ONE_STEP = [
    "data.seq_len=2",
    "data.p=2",
    "data.k=2",
    "train.num_workers=0",
    "train.epochs=1",
    "train.max_iters=1",
    "train.precision=fp32",
    "data.val_identities=0",
]
COLOURS = ["red", "blue", "green", "white", "black", "yellow", "orange", "purple", "grey", "pink", "brown", "navy"]


def write_tiny_clip(out_dir: Path, seed: int = 0) -> Path:
    """A random CLIP in Hugging Face format with 2-layer, 64-wide towers, patch 8 at 32 px (loads via load_clip)."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    from cgclip.clip.random_clip import save_clip_model, tokenizer_vocab
    from cgclip.clip.tokenizer import build_clip_tokenizer, special_token_ids

    tok = out_dir.parent / f".{out_dir.name}-tokenizer"
    build_clip_tokenizer(tok)
    vocab = tokenizer_vocab(tok)
    text = dict(
        vocab_size=len(vocab),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        projection_dim=32,
        **special_token_ids(vocab),
    )
    vision = dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=32,
    )
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(config)
    return save_clip_model(model, out_dir, tok)


def _frame(rng: np.random.Generator, pid: int, cam: int, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    top = np.array([(pid * 67) % 256, (pid * 131) % 256, (pid * 29) % 256], dtype=np.float64)
    bottom = np.array([(pid * 43) % 256, (pid * 17 + 80) % 256, (pid * 97) % 256], dtype=np.float64)
    img = np.empty((h, w, 3))
    img[: h // 2], img[h // 2 :] = top, bottom
    img += cam * 12 + rng.normal(0, 18, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_tracklets(
    root: Path,
    pids: list[int],
    cams: int,
    tracklets_per_cam: int,
    frames: int,
    seed: int,
    size: tuple[int, int] = (32, 16),
    offset: int = 0,
) -> list[Tracklet]:
    """Write frames for every (pid, camera, tracklet) and return the tracklets (original pids, absolute paths)."""
    rng = np.random.default_rng(seed)
    out = []
    for pid in pids:
        for cam in range(cams):
            for k in range(tracklets_per_cam):
                folder = root / f"p{pid:03d}" / f"c{cam}" / f"t{k + offset}"
                folder.mkdir(parents=True, exist_ok=True)
                paths = []
                for f in range(frames):
                    path = folder / f"{f:03d}.png"
                    Image.fromarray(_frame(rng, pid, cam, size)).save(path)
                    paths.append(str(path))
                out.append(Tracklet(tuple(paths), pid, cam, f"seq{cam}", f"id{pid:03d}"))
    return out


def tiny_dataset(
    root: Path,
    num_train: int = 10,
    num_test: int = 4,
    cams: int = 2,
    tracklets_per_cam: int = 2,
    frames: int = 5,
    seed: int = 0,
) -> TrackletDataset:
    """Train identities 1..num_train (relabelled), test identities after them: query = camera 0, gallery = others."""
    train = write_tracklets(root / "train", list(range(1, num_train + 1)), cams, tracklets_per_cam, frames, seed)
    test_ids = list(range(num_train + 1, num_train + num_test + 1))
    test = write_tracklets(root / "test", test_ids, cams, 1, frames, seed + 1)
    train, _ = relabel(train)
    query = [t for t in test if t.camid == 0]
    gallery = [t for t in test if t.camid != 0]
    return TrackletDataset("tiny", str(root), train, query, gallery, {})


def tiny_captions(dataset: TrackletDataset) -> list[list[str]]:
    """Two captions per training identity (by pid)."""
    out = []
    for name in dataset.train_identities():
        pid = int(name[2:])
        a, b = COLOURS[pid % len(COLOURS)], COLOURS[(pid * 5) % len(COLOURS)]
        out.append([f"A player in a {a} shirt and {b} shorts.", f"The person wears {b} shorts and a {a} top."])
    return out


def write_identity_table(path: Path, names: list[str]) -> Path:
    """An identities.csv giving every identity in ``names`` a few attributes (for caption generation)."""
    rows = [IDENTITY_HEADER]
    for i, name in enumerate(names):
        rows.append(
            f"{name},train,football,male,{COLOURS[i % 12]} kit,{i + 1},short {COLOURS[(i + 3) % 12]} hair,"
            f"{COLOURS[(i + 5) % 12]} shoes,white socks,slim,,\n"
        )
    path.write_text("".join(rows), encoding="utf-8")
    return path
