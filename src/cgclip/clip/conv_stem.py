"""A convolutional front end for the CLIP vision transformer (the embedded tiny CLIP's image tower).

A ViT trained from scratch cannot learn to read jersey digits in a CPU budget: it has no translation invariance and
must learn every digit at every offset inside its 16-px patches (``benchmarks/probe_number_reading.py``,
``docs/RESULTS.md``). :class:`ConvStem` replaces the patch embedding of a Hugging Face ``CLIPVisionModel``: 3×3
conv–BatchNorm–ReLU stages with 2× max-pools between them (stride ``2 ** (stages - 1)``) and a 1×1 convolution to
the transformer width, so each token sees a local window of ~40 px and the transformer, its CLS token, final
LayerNorm and projection are unchanged. The ReID models see the same interface (frame tokens, a global token, the
projection) as with a real ViT.

The stem is declared in the checkpoint's ``config.json`` (``vision_config.cgclip_stem = {"type": "conv",
"channels": [...]}``, and ``vision_config.patch_size`` is the stem's stride) and rebuilt by
:func:`cgclip.clip.backbone.load_clip` through :func:`apply_stem`; checkpoints without the key (every real
Hugging Face or imported OpenAI ViT) load exactly as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

STEM_KEY = "cgclip_stem"


class ConvStem(nn.Module):
    """3×3 conv–BN–ReLU stages (``channels``), then a 1×1 conv to ``width``; stride ``2 ** (len(channels) - 1)``.

    Every stage after the first is preceded by a 2× max-pool; the first works at full resolution. (A stride-2 first
    convolution halves the stem's CPU time but could not learn to read the thin digit strokes: 3.9 % of held-out
    numbers after 400 supervised steps against 85.7 % for this layout, ``benchmarks/probe_number_reading.py``.)
    ``forward`` maps ``[N, 3, H, W]`` to ``[N, width, H / stride, W / stride]`` like a patch-embedding convolution.
    """

    def __init__(self, channels: Sequence[int], width: int, in_channels: int = 3, global_pool: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        if len(channels) < 2:
            raise ValueError("a conv stem needs at least two stages")
        for i, cout in enumerate(channels):
            if i >= 1:
                layers.append(nn.MaxPool2d(2))
            layers += [nn.Conv2d(cin, int(cout), 3, padding=1, bias=False), nn.BatchNorm2d(int(cout)), nn.ReLU()]
            cin = int(cout)
        self.body = nn.Sequential(*layers)
        self.proj = nn.Conv2d(cin, int(width), 1)
        self.stride = 2 ** (len(channels) - 1)
        # Global max-pool of the last ReLU features, projected and added to every token: a detector that fired
        # anywhere in the crop (a digit stroke, a shoe colour) reaches the CLS token through any attention pattern.
        self.global_proj = nn.Linear(cin, int(width)) if global_pool else None

    @property
    def weight(self) -> torch.Tensor:
        """The output convolution's weight: the dtype and device reference callers of a patch embedding read."""
        return self.proj.weight

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Images ``[N, 3, H, W]`` → token grid ``[N, width, H / stride, W / stride]``."""
        features = self.body(pixel_values)
        tokens = self.proj(features)
        if self.global_proj is not None:
            tokens = tokens + self.global_proj(features.amax(dim=(2, 3)))[:, :, None, None]
        return tokens


def stem_spec(vision_config: Any) -> dict[str, Any] | None:
    """The stem declared by a ``CLIPVisionConfig`` (or its dict), or None for a plain patch embedding."""
    spec = vision_config.get(STEM_KEY) if isinstance(vision_config, dict) else getattr(vision_config, STEM_KEY, None)
    if spec is None:
        return None
    if not isinstance(spec, dict) or spec.get("type") != "conv" or not spec.get("channels"):
        raise ValueError(f"unsupported {STEM_KEY} {spec!r}: expected {{'type': 'conv', 'channels': [...]}}")
    return spec


def conv_stem_config(channels: Sequence[int], global_pool: bool = False) -> dict[str, Any]:
    """The ``vision_config`` entries that declare a :class:`ConvStem` (its spec and the matching patch size)."""
    spec: dict[str, Any] = {"type": "conv", "channels": [int(c) for c in channels]}
    if global_pool:
        spec["global_pool"] = True
    return {STEM_KEY: spec, "patch_size": 2 ** (len(channels) - 1)}


def apply_stem(vision_model: nn.Module) -> bool:
    """Replace ``vision_model.embeddings.patch_embedding`` by the stem its config declares; True if it did."""
    spec = stem_spec(vision_model.config)
    if spec is None:
        return False
    stem = ConvStem(
        spec["channels"],
        int(vision_model.config.hidden_size),
        int(vision_model.config.num_channels),
        global_pool=bool(spec.get("global_pool", False)),
    )
    if stem.stride != int(vision_model.config.patch_size):
        raise ValueError(f"{STEM_KEY} has stride {stem.stride} but patch_size is {vision_model.config.patch_size}")
    vision_model.embeddings.patch_embedding = stem
    return True
