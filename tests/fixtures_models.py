"""Tiny stand-ins for the CLIP towers, implementing exactly the interface the ReID models use.

* :class:`TinyImageEncoder` — ``forward(pixel_values [N,3,H,W], camids [N] | None) -> [N, 1+P, D]`` (tokens after a
  final LayerNorm, token 0 = CLS), ``.width`` (D), ``.embed_dim`` (d), ``.project(x)`` (bias-free D → d).
* :class:`TinyTextEncoder` — ``encode(list[str]) -> [n, d]`` L2-normalised, deterministic (hashed character
  trigrams through a fixed random projection), records how many texts it encoded.
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_SIZE = (32, 16)
PATCH = 8


class TinyImageEncoder(nn.Module):
    """Patch embedding + CLS + positions + a 1-layer ``nn.TransformerEncoder`` + final LayerNorm + projection."""

    def __init__(
        self,
        width: int = 32,
        embed_dim: int = 16,
        image_size: tuple[int, int] = IMAGE_SIZE,
        patch: int = PATCH,
        layers: int = 1,
        num_cameras: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        self.patch_embed = nn.Conv2d(3, width, patch, stride=patch, bias=False)
        grid = (image_size[0] // patch) * (image_size[1] // patch)
        self.cls = nn.Parameter(torch.randn(width) * 0.02)
        self.pos = nn.Parameter(torch.randn(1 + grid, width) * 0.02)
        self.sie = nn.Parameter(torch.randn(num_cameras, width) * 0.02) if num_cameras else None
        layer = nn.TransformerEncoderLayer(
            width, nhead=2, dim_feedforward=2 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.proj = nn.Linear(width, embed_dim, bias=False)
        torch.random.set_rng_state(gen_state)

    @property
    def width(self) -> int:
        return self.norm.normalized_shape[0]

    @property
    def embed_dim(self) -> int:
        return self.proj.out_features

    @property
    def num_tokens(self) -> int:
        return self.pos.shape[0]

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)

    def forward(self, pixel_values: torch.Tensor, camids: torch.Tensor | None = None) -> torch.Tensor:
        x = self.patch_embed(pixel_values).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], 1, -1).to(x.dtype), x], dim=1) + self.pos.to(x.dtype)
        if self.sie is not None and camids is not None:
            x = x + self.sie[camids].unsqueeze(1)
        return self.norm(self.encoder(x))


class TinyTextEncoder(nn.Module):
    """Deterministic bag-of-trigrams text features (a fixed random table), L2-normalised, no gradients."""

    def __init__(self, embed_dim: int = 16, buckets: int = 257) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(1234)
        self.register_buffer("table", torch.randn(buckets, embed_dim, generator=gen))
        self.buckets = buckets
        self.calls: list[int] = []

    @property
    def embed_dim(self) -> int:
        return self.table.shape[1]

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        self.calls.append(len(texts))
        rows = []
        for text in texts:
            text = f"  {text.lower()}  "
            idx = [
                int(hashlib.md5(text[i : i + 3].encode()).hexdigest(), 16) % self.buckets for i in range(len(text) - 2)
            ]
            rows.append(self.table[torch.tensor(idx)].sum(0))
        return F.normalize(torch.stack(rows), dim=-1) if rows else torch.zeros(0, self.embed_dim)


def make_captions(num_classes: int, per_identity: int = 3) -> list[list[str]]:
    """Distinct captions per identity (colours and numbers vary by identity and caption index)."""
    colours = ["red", "blue", "green", "white", "black", "yellow", "pink", "gray"]
    return [
        [
            f"A player in a {colours[(pid + j) % len(colours)]} shirt with number {pid * 7 + j}."
            for j in range(per_identity)
        ]
        for pid in range(num_classes)
    ]


def make_batch(
    num_ids: int = 3, per_id: int = 2, frames: int = 4, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fixed tiny batch ``(images [B,T,3,H,W], pids [B], camids [B])`` with identity-dependent colours."""
    gen = torch.Generator().manual_seed(seed)
    b = num_ids * per_id
    pids = torch.arange(num_ids).repeat_interleave(per_id)
    base = torch.randn(num_ids, 3, 1, 1, generator=gen)
    images = torch.randn(b, frames, 3, *IMAGE_SIZE, generator=gen) * 0.5 + base[pids].unsqueeze(1)
    camids = torch.arange(b) % 2
    return images, pids, camids


def tiny_models(name: str = "cgclip", num_classes: int = 4, seed: int = 0, captions_per_id: int = 3, **options):
    """``(model, image_encoder, text_encoder)`` of a tiny model built through ``build_model``."""
    from cgclip.models import build_model

    torch.manual_seed(seed)
    enc = TinyImageEncoder(seed=seed)
    text = TinyTextEncoder(enc.embed_dim)
    kwargs = {}
    if name == "cgclip":
        kwargs = dict(captions=make_captions(num_classes, captions_per_id), text_encoder=text)
    model = build_model(name, image_encoder=enc, num_classes=num_classes, num_cameras=2, **kwargs, **options)
    return model, enc, text
