"""TAP baseline (SPEC §2.4): fine-tuned CLIP image encoder + temporal average pooling of the frames' CLS tokens.

Video feature ``f`` = mean over frames of CLS ``[B, D]`` → BNNeck → ID classifier; retrieval feature = BNNeck output.
Loss: ``w_tri·L_tri(f) + w_ce·L_ce(logits)`` (the same weights as the other models, so comparisons share the recipe).
The encoder's visual projection is not used by this model (under DDP use ``find_unused_parameters=True`` or leave
the projection frozen).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cgclip.models.heads import BNNeck, VideoReIDModel, loss_options
from cgclip.models.losses import batch_hard_triplet, cross_entropy_label_smooth


class TAPModel(VideoReIDModel):
    """Temporal-average-pooling baseline. Build it with :func:`cgclip.models.build_model`."""

    name = "tap"

    def __init__(
        self,
        image_encoder: nn.Module,
        num_classes: int,
        *,
        w_tri: float = 1.0,
        w_ce: float = 0.25,
        triplet_margin: float = 0.3,
        label_smoothing: float = 0.1,
    ) -> None:
        super().__init__(image_encoder, num_classes)
        self.neck = BNNeck(self.width, num_classes)
        self.w_tri, self.w_ce = float(w_tri), float(w_ce)
        self.margin, self.epsilon = float(triplet_margin), float(label_smoothing)

    @property
    def feature_dim(self) -> int:
        """Retrieval feature width D."""
        return self.width

    def pool(self, frames: torch.Tensor) -> torch.Tensor:
        """Per-frame CLS features ``[B, T, D]`` → the video feature ``[B, D]`` (their mean)."""
        return frames.mean(dim=1)

    def forward(
        self, images: torch.Tensor, camids: torch.Tensor | None = None, pids: torch.Tensor | None = None
    ) -> dict:
        """``{"feature": [B, D]}``; in training mode with ``pids`` also ``"loss"`` and ``"losses"`` (floats)."""
        video = self.pool(self.encode_frames(images, camids)[:, :, 0])
        bn, logits = self.neck(video)
        out: dict = {"feature": self.retrieval_feature(video, bn)}
        if not (self.training and pids is not None):
            return out
        pids = torch.as_tensor(pids, device=video.device).long().reshape(-1)
        l_tri = batch_hard_triplet(video, pids, self.margin)
        l_ce = cross_entropy_label_smooth(logits, pids, self.epsilon)
        out["loss"] = self.w_tri * l_tri + self.w_ce * l_ce
        out["losses"] = {"tri": float(l_tri.detach()), "ce": float(l_ce.detach())}
        return out


def build(image_encoder: nn.Module, num_classes: int, opts: dict[str, Any], **context: Any) -> TAPModel:
    """The registry's builder: TAP from resolved ``build_model`` options (``context`` is not used)."""
    return TAPModel(image_encoder, num_classes, **loss_options(opts))
