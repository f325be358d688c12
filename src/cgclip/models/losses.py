"""Losses of the video ReID models, all computed in float32 (safe under bf16/fp16 autocast).

* :func:`cross_entropy_label_smooth` — ID cross-entropy with label smoothing ε (Szegedy et al.; ε = 0.1):
  targets ``(1-ε)·onehot + ε/K``.
* :func:`batch_hard_triplet` — batch-hard triplet loss (Hermans et al.) on Euclidean distances, margin 0.3:
  ``mean_i relu(max_{p∈P(i)} d(i,p) − min_{n∉P(i)} d(i,n) + margin)``; anchors without a negative are skipped.
* :func:`memory_logits` / :func:`video_to_memory_loss` — the video-to-(refined-)memory loss (L_v2rm of CG-CLIP,
  L_v2m of TF-CLIP): label-smoothed CE over ``s·⟨v̂_b, M̂_b,y⟩`` for every identity y, with v and the memory rows
  L2-normalised and s = exp(logit_scale) clamped to at most 100 (CLIP convention).
* :func:`raw_memory_logits` — TF-CLIP's released video-to-memory logits: plain inner products ``⟨v_b, M'_b,y⟩``
  (no normalisation, no scale; ``model/make_model_clipreid.py`` line 289).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn.functional as F

_F = TypeVar("_F", bound=Callable[..., torch.Tensor])

#: CLIP's initial logit scale ln(1/0.07) and its cap exp(·) ≤ 100.
LOGIT_SCALE_INIT = math.log(1 / 0.07)


def initial_logit_scale(value: float | None) -> float:
    """The scale s of L_v2m / L_v2rm at the start: ``value``, or CLIP's initial 1/0.07 when it is None."""
    return math.exp(LOGIT_SCALE_INIT) if value is None else float(value)


LOGIT_SCALE_MAX = 100.0


def float32_math(fn: _F) -> _F:
    """Run ``fn`` with autocast disabled (CPU and CUDA), so its matmuls stay in float32 under bf16/fp16 autocast."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch.autocast("cpu", enabled=False):
            if torch.cuda.is_available():
                with torch.autocast("cuda", enabled=False):
                    return fn(*args, **kwargs)
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@float32_math
def cross_entropy_label_smooth(logits: torch.Tensor, targets: torch.Tensor, epsilon: float = 0.1) -> torch.Tensor:
    """Label-smoothed cross-entropy of ``logits [B, K]`` against integer ``targets [B]`` (mean over the batch)."""
    return F.cross_entropy(logits.float(), targets.long(), label_smoothing=float(epsilon))


@float32_math
def pairwise_euclidean(x: torch.Tensor) -> torch.Tensor:
    """Euclidean distance matrix ``[B, B]`` of the rows of ``x`` (float32, numerically safe at 0)."""
    x = x.float()
    sq = (x * x).sum(dim=1)
    d2 = sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * (x @ x.t())
    return d2.clamp_min(1e-12).sqrt()


@float32_math
def batch_hard_triplet(features: torch.Tensor, targets: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """Batch-hard triplet loss of ``features [B, F]`` with identity labels ``targets [B]``.

    For each anchor, the hardest positive (farthest same-identity sample, itself at distance 0 if it is alone) and the
    hardest negative (closest other-identity sample). Anchors with no negative in the batch are ignored; a batch
    without any negative gives 0 (still connected to the graph).
    """
    dist = pairwise_euclidean(features)
    targets = targets.reshape(-1)
    same = targets.unsqueeze(0) == targets.unsqueeze(1)
    hardest_pos = dist.masked_fill(~same, float("-inf")).amax(dim=1)
    hardest_neg = dist.masked_fill(same, float("inf")).amin(dim=1)
    valid = torch.isfinite(hardest_neg)
    if not bool(valid.any()):
        return dist.sum() * 0.0
    return F.relu(hardest_pos[valid] - hardest_neg[valid] + margin).mean()


def clamped_scale(logit_scale: torch.Tensor) -> torch.Tensor:
    """``exp(logit_scale)`` capped at :data:`LOGIT_SCALE_MAX` (float32)."""
    return logit_scale.float().exp().clamp(max=LOGIT_SCALE_MAX)


@float32_math
def memory_logits(video: torch.Tensor, memory: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Cosine logits ``s·⟨v̂_b, M̂_y⟩`` of videos ``[B, d]`` against memory ``[Y, d]`` or per tracklet ``[B, Y, d]``."""
    v = F.normalize(video.float(), dim=-1)
    m = F.normalize(memory.float(), dim=-1)
    if m.dim() == 2:
        logits = v @ m.t()
    else:
        logits = torch.einsum("bd,byd->by", v, m)
    return clamped_scale(logit_scale) * logits


@float32_math
def raw_memory_logits(video: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """Inner products ``⟨v_b, M_y⟩`` (float32) of videos ``[B, d]`` against memory ``[Y, d]`` or ``[B, Y, d]``."""
    v, m = video.float(), memory.float()
    if m.dim() == 2:
        return v @ m.t()
    return torch.einsum("bd,byd->by", v, m)


@float32_math
def video_to_memory_loss(
    video: torch.Tensor, memory: torch.Tensor, targets: torch.Tensor, logit_scale: torch.Tensor, epsilon: float = 0.1
) -> torch.Tensor:
    """Label-smoothed CE over :func:`memory_logits` (the identity of each tracklet is its target row)."""
    return cross_entropy_label_smooth(memory_logits(video, memory, logit_scale), targets, epsilon)
