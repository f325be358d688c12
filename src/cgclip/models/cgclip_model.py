"""CG-CLIP: fine-tuned CLIP image encoder + TFE + CMR (SPEC §2.2–2.3).

Forward pass of a batch of tracklets ``images [B, T, 3, H, W]``:

1. frame tokens ``[B, T, 1+P, D]`` from the image encoder (all ``B·T`` frames in one call);
2. sequence feature ``f_b`` (``tfe_output``): ``concat`` = ``[mean_t CLS_t, TFE(tokens)]`` (2D), ``tfe`` = TFE alone
   (D), ``cls_mean`` = mean of the frames' CLS alone (D, no TFE module);
3. BNNeck → ``bn_b`` → ID classifier; the retrieval feature (``forward(...)["feature"]``, :meth:`extract`) is the
   sequence feature before the neck, or ``bn_b`` with ``neck_feat: after``. With ``part_norm`` the before-neck
   retrieval feature is ``[CLS_mean/‖CLS_mean‖, TFE/‖TFE‖]``: each part counts equally under cosine distance
   (without it the CLS half, about 5× the TFE half's norm, decides the ranking); training is unchanged.

Training with identities ``pids`` additionally:

4. Text Memory momentum update for the identities of the batch (before the loss, so the sampled captions shape this
   step's targets; see :class:`cgclip.models.cmr.TextMemory`);
5. ``v_b`` = mean over the parts of ``f_b`` of their CLIP visual projection (``image_encoder.project``; linear, so
   for ``concat`` this is ``project((CLS_mean + TFE)/2)``): the pretrained projection puts v in CLIP's joint space,
   where the memory lives, from the first step;
6. image tokens = frame-averaged tokens per position, projected to d (``[B, 1+P, d]``); refined memory
   ``M'_b = FusionEncoder(M (+ID emb), tokens_b)`` ``[B, Y, d]``;
7. ``loss = w_v2m·L_v2rm(v, M', pids) + w_tri·L_tri(f, pids) + w_ce·L_ce(logits, pids)``.

Inference (:meth:`extract`) uses frames only; the memory, the captions and the fusion encoder are not touched.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from cgclip.config_sections import ModelConfig, choices_of
from cgclip.errors import ConfigError
from cgclip.models.cmr import FusionEncoder, TextMemory
from cgclip.models.heads import BNNeck, VideoReIDModel, loss_options
from cgclip.models.losses import (
    LOGIT_SCALE_INIT,
    batch_hard_triplet,
    cross_entropy_label_smooth,
    initial_logit_scale,
    video_to_memory_loss,
)
from cgclip.models.tfe import TokenFeatureExtractor

TFE_OUTPUTS = choices_of(ModelConfig, "tfe_output")


class CGCLIPModel(VideoReIDModel):
    """CG-CLIP video ReID model (see the module docstring). Build it with :func:`cgclip.models.build_model`."""

    name = "cgclip"

    def __init__(
        self,
        image_encoder: nn.Module,
        num_classes: int,
        memory: TextMemory,
        *,
        tfe_queries: int = 15,
        tfe_blocks: int = 1,
        tfe_output: str = "concat",
        tfe_max_frames: int = 64,
        tfe_norm: bool = False,
        part_norm: bool = False,
        cmr_fusion: str = "c",
        cmr_blocks: int = 2,
        w_v2m: float = 1.0,
        w_tri: float = 1.0,
        w_ce: float = 0.25,
        triplet_margin: float = 0.3,
        label_smoothing: float = 0.1,
        logit_scale_init: float = math.exp(LOGIT_SCALE_INIT),
    ) -> None:
        super().__init__(image_encoder, num_classes)
        if tfe_output not in TFE_OUTPUTS:
            raise ValueError(f"tfe_output must be one of {TFE_OUTPUTS}, got {tfe_output!r}")
        self.tfe_output = tfe_output
        self.part_norm = bool(part_norm)
        self.tfe = (
            None
            if tfe_output == "cls_mean"
            else TokenFeatureExtractor(self.width, tfe_queries, tfe_blocks, max_frames=tfe_max_frames, norm=tfe_norm)
        )
        self.seq_dim = 2 * self.width if tfe_output == "concat" else self.width
        self.neck = BNNeck(self.seq_dim, num_classes)
        self.text_memory = memory
        self.fusion = FusionEncoder(cmr_fusion, cmr_blocks, self.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(float(logit_scale_init))))
        self.w_v2m, self.w_tri, self.w_ce = float(w_v2m), float(w_tri), float(w_ce)
        self.margin, self.epsilon = float(triplet_margin), float(label_smoothing)

    @property
    def feature_dim(self) -> int:
        """Retrieval feature width: 2D for ``concat``, D otherwise."""
        return self.seq_dim

    def sequence_parts(
        self, tokens: torch.Tensor, return_frame_weights: bool = False
    ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Parts of the sequence feature (``[CLS mean, TFE]``, ``[TFE]`` or ``[CLS mean]``) and TFE frame weights."""
        weights = None
        parts = []
        if self.tfe_output in ("concat", "cls_mean"):
            parts.append(tokens[:, :, 0].mean(dim=1))
        if self.tfe is not None:
            tfe_feat, weights = self.tfe(tokens, return_frame_weights)
            parts.append(tfe_feat)
        return parts, weights

    def data_dependent_state(self) -> set[str]:
        """The classifier and camera table, plus the Text Memory (the training identities' captions)."""
        return super().data_dependent_state() | {k for k in self.state_dict() if k.startswith("text_memory.")}

    def forward(
        self, images: torch.Tensor, camids: torch.Tensor | None = None, pids: torch.Tensor | None = None
    ) -> dict:
        """``{"feature": [B, F]}``; in training mode with ``pids`` also ``"loss"`` and ``"losses"`` (floats)."""
        tokens = self.encode_frames(images, camids)
        parts, _ = self.sequence_parts(tokens)
        seq = parts[0] if len(parts) == 1 else torch.cat([p.to(parts[0].dtype) for p in parts], dim=-1)
        bn, logits = self.neck(seq)
        out: dict = {"feature": self.retrieval_feature(self._balanced(parts, seq), bn)}
        if not (self.training and pids is not None):
            return out
        if self.text_memory.num_captions == 0:
            raise ConfigError(
                "this cgclip model has no captions (built with inference_only=True) and cannot train; "
                "build it with captions and the CLIP text encoder"
            )
        pids = torch.as_tensor(pids, device=seq.device).long().reshape(-1)
        self.text_memory.update(pids)
        project = self.image_encoder.project
        video = project(parts[0]) if len(parts) == 1 else project(sum(parts) / len(parts))
        image_tokens = project(tokens.mean(dim=1))
        refined = self.fusion(self.text_memory.targets(), image_tokens)
        l_v2rm = video_to_memory_loss(video, refined, pids, self.logit_scale, self.epsilon)
        l_tri = batch_hard_triplet(seq, pids, self.margin)
        l_ce = cross_entropy_label_smooth(logits, pids, self.epsilon)
        loss = self.w_v2m * l_v2rm + self.w_tri * l_tri + self.w_ce * l_ce
        out["loss"] = loss
        out["losses"] = {"v2rm": float(l_v2rm.detach()), "tri": float(l_tri.detach()), "ce": float(l_ce.detach())}
        return out

    def _balanced(self, parts: list[torch.Tensor], seq: torch.Tensor) -> torch.Tensor:
        """The before-neck retrieval feature: ``seq``, or its parts each L2-normalised with ``part_norm``."""
        if not self.part_norm or len(parts) == 1:
            return seq
        return torch.cat([nn.functional.normalize(p.float(), dim=-1).to(seq.dtype) for p in parts], dim=-1)

    def frame_weights(self, images: torch.Tensor, camids: torch.Tensor | None = None) -> torch.Tensor | None:
        """Attention mass of TFE query token 1 on each frame (last TFE block, mean over heads) ``[B, T]``, sums to 1."""
        if self.tfe is None:
            return None
        with self._eval_mode():
            tokens = self.encode_frames(images, camids)
            return self.tfe(tokens, return_frame_weights=True)[1]

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, tfe_output={self.tfe_output}, "
            f"part_norm={self.part_norm}, logit_scale={math.exp(float(self.logit_scale)):.2f}, "
            f"w=({self.w_v2m}, {self.w_tri}, {self.w_ce})"
        )


def build(
    image_encoder: nn.Module,
    num_classes: int,
    opts: dict[str, Any],
    *,
    captions: Any = None,
    text_encoder: Any = None,
    inference_only: bool = False,
    **context: Any,
) -> CGCLIPModel:
    """The registry's builder: CG-CLIP and its Text Memory from resolved ``build_model`` options."""
    from cgclip.models.memory_texts import build_text_memory

    memory = build_text_memory(image_encoder, num_classes, captions, text_encoder, inference_only, opts)
    return CGCLIPModel(
        image_encoder,
        num_classes,
        memory,
        tfe_queries=opts["tfe_queries"],
        tfe_blocks=opts["tfe_blocks"],
        tfe_output=opts["tfe_output"],
        tfe_max_frames=opts["tfe_max_frames"],
        tfe_norm=opts["tfe_norm"],
        part_norm=opts["part_norm"],
        cmr_fusion=opts["cmr_fusion"],
        cmr_blocks=opts["cmr_blocks"],
        w_v2m=opts["w_v2m"],
        logit_scale_init=initial_logit_scale(opts["logit_scale_init"]),
        **loss_options(opts),
    )
