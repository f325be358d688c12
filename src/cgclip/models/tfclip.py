"""TF-CLIP baseline (Yu et al., AAAI 2024) as SPEC §2.4 defines it: CLIP-Memory, SSP, TMD, video-to-memory loss.

* **CLIP-Memory** ``[Y, d]`` (buffer): per-identity mean of the projected CLS features of the *initial* (frozen)
  encoder over the training loader, computed by :meth:`TFCLIPModel.prepare` (eval mode, no gradients; rows
  L2-normalised). It is saved in the state dict together with a ``memory_ready`` flag, so ``prepare`` after loading a
  checkpoint is a no-op and a resumed run continues with the same memory.
* **SSP** (Sequence-Specific Prompt): ``ssp_blocks`` blocks of [self-attention over memory rows → cross-attention to
  the tracklet's frame-averaged tokens projected to d → MLP]; ``M'_b = M + out(LN(x))`` (the same module as CMR's
  fusion variant (b), :class:`cgclip.models.cmr.FusionEncoder`, output projection zero-initialised).
* **TMD** (Temporal Memory Diffusion), ``tmd=True``: a message token per frame (a linear map of the frame's CLS plus
  a temporal embedding), a transformer block across the T message tokens (temporal memory construction), then a
  transformer block over each frame's ``1+P`` tokens plus its message token, layout ``[CLS, patches…, message]``
  (memory diffusion). Only the refined CLS is used, so the diffusion block computes attention for the CLS query and
  its MLP on the CLS only — exactly the CLS output of the full block at a fraction of the cost. The diffusion block
  is zero-initialised (starts as the identity). Here TMD runs after the encoder's last layer (the encoder interface
  exposes final tokens only). ``tmd=False``: the video feature is the mean of the frames' CLS.
* Video feature ``f`` = temporal average of the (TMD-refined) CLS ``[B, D]`` → BNNeck → ID classifier; the
  retrieval feature is the BNNeck output. Loss: ``w_v2m·L_v2m(project(f), M') + w_tri·L_tri(f) + w_ce·L_ce``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cgclip.errors import ConfigError
from cgclip.models.cmr import FusionEncoder
from cgclip.models.fusion import TransformerBlock, default_heads
from cgclip.models.heads import BNNeck, VideoReIDModel
from cgclip.models.losses import LOGIT_SCALE_INIT, batch_hard_triplet, cross_entropy_label_smooth, video_to_memory_loss
from cgclip.progress import progress

logger = logging.getLogger(__name__)


class TemporalMemoryDiffusion(nn.Module):
    """TMD: frame tokens ``[B, T, 1+P, D]`` → refined CLS per frame ``[B, T, D]`` (see the module docstring)."""

    def __init__(self, dim: int, heads: int | None = None, max_frames: int = 64) -> None:
        super().__init__()
        heads = heads or default_heads(dim)
        self.max_frames = int(max_frames)
        self.message = nn.Linear(dim, dim)
        self.temporal_embed = nn.Parameter(torch.empty(self.max_frames, dim))
        nn.init.trunc_normal_(self.temporal_embed, std=0.02)
        self.construct = TransformerBlock(dim, heads)
        self.diffuse = TransformerBlock(dim, heads).zero_init_residual()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Refined CLS token of every frame."""
        b, t, n, d = tokens.shape
        if t > self.max_frames:
            raise ConfigError(f"tracklet has {t} frames but TMD's temporal embedding covers {self.max_frames}; "
                              f"sample fewer frames or build the model with tfe_max_frames >= {t}")
        cls = tokens[:, :, 0]
        msg = self.message(cls) + self.temporal_embed[:t].to(cls.dtype)
        msg = self.construct(msg)                                              # attention across frames
        seq = torch.cat([tokens, msg.unsqueeze(2).to(tokens.dtype)], dim=2)     # [B, T, 1+P+1, D]
        seq = seq.reshape(b * t, n + 1, d)
        attn_layer = self.diffuse.attn
        h = attn_layer.norm(seq)
        cls_out = seq[:, :1] + attn_layer.attn(h[:, :1], h)[0]                 # CLS row of the self-attention
        cls_out = self.diffuse.mlp(cls_out)
        return cls_out.reshape(b, t, d)


def unpack_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(images, pids, camids)`` of a loader batch: a dict (``images``/``pid``/``camid``) or a tuple in that order."""
    if isinstance(batch, dict):
        return batch["images"], torch.as_tensor(batch["pid"]), batch.get("camid")
    if isinstance(batch, (list, tuple)) and len(batch) >= 2:
        return batch[0], torch.as_tensor(batch[1]), batch[2] if len(batch) > 2 else None
    raise TypeError(f"cannot read images and pids from a loader batch of type {type(batch).__name__}")


class TFCLIPModel(VideoReIDModel):
    """TF-CLIP video ReID model (build it with :func:`cgclip.models.build_model`; :meth:`prepare` before training)."""

    name = "tfclip"

    def __init__(self, image_encoder: nn.Module, num_classes: int, *, ssp_blocks: int = 2, tmd: bool = True,
                 tfe_max_frames: int = 64, w_v2m: float = 1.0, w_tri: float = 1.0, w_ce: float = 0.25,
                 triplet_margin: float = 0.3, label_smoothing: float = 0.1,
                 logit_scale_init: float = math.exp(LOGIT_SCALE_INIT)) -> None:
        super().__init__(image_encoder, num_classes)
        self.register_buffer("clip_memory", torch.zeros(num_classes, self.embed_dim))
        # an integer flag (not bool: DDP broadcasts buffers, and gloo has no bool type)
        self.register_buffer("memory_ready", torch.zeros((), dtype=torch.long))
        self.ssp = FusionEncoder("b", ssp_blocks, self.embed_dim)
        self.tmd = TemporalMemoryDiffusion(self.width, max_frames=tfe_max_frames) if tmd else None
        self.neck = BNNeck(self.width, num_classes)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(float(logit_scale_init))))
        self.w_v2m, self.w_tri, self.w_ce = float(w_v2m), float(w_tri), float(w_ce)
        self.margin, self.epsilon = float(triplet_margin), float(label_smoothing)

    @property
    def feature_dim(self) -> int:
        """Retrieval feature width D."""
        return self.width

    def video_feature(self, tokens: torch.Tensor) -> torch.Tensor:
        """Temporal average of the (TMD-refined) CLS tokens ``[B, D]``."""
        cls = self.tmd(tokens) if self.tmd is not None else tokens[:, :, 0]
        return cls.mean(dim=1)

    def forward(self, images: torch.Tensor, camids: torch.Tensor | None = None,
                pids: torch.Tensor | None = None) -> dict:
        """``{"feature": [B, D]}``; in training mode with ``pids`` also ``"loss"`` and ``"losses"`` (floats)."""
        tokens = self.encode_frames(images, camids)
        video = self.video_feature(tokens)
        bn, logits = self.neck(video)
        out: dict = {"feature": self.retrieval_feature(video, bn)}
        if not (self.training and pids is not None):
            return out
        if not bool(self.memory_ready):
            raise ConfigError("TF-CLIP's CLIP-Memory is empty: call model.prepare(train_loader) before training")
        pids = torch.as_tensor(pids, device=video.device).long().reshape(-1)
        project = self.image_encoder.project
        refined = self.ssp(self.clip_memory, project(tokens.mean(dim=1)))
        l_v2m = video_to_memory_loss(project(video), refined, pids, self.logit_scale, self.epsilon)
        l_tri = batch_hard_triplet(video, pids, self.margin)
        l_ce = cross_entropy_label_smooth(logits, pids, self.epsilon)
        out["loss"] = self.w_v2m * l_v2m + self.w_tri * l_tri + self.w_ce * l_ce
        out["losses"] = {"v2m": float(l_v2m.detach()), "tri": float(l_tri.detach()), "ce": float(l_ce.detach())}
        return out

    def prepare(self, loader: Any, force: bool = False) -> None:
        """Compute the CLIP-Memory from the current (initial) encoder over ``loader`` (skipped when already loaded).

        Every training identity must occur in the loader. Under ``torch.distributed`` the sums are all-reduced, so
        each rank may see its own share of the data. Autocast, if wanted, is the caller's context.
        """
        if bool(self.memory_ready) and not force:
            logger.info("CLIP-Memory already computed (loaded from a checkpoint); skipping the pass")
            return
        device = self.clip_memory.device
        sums = torch.zeros(self.num_classes, self.embed_dim, device=device)
        counts = torch.zeros(self.num_classes, device=device)
        total = len(loader) if hasattr(loader, "__len__") else None
        with self._eval_mode():
            for batch in progress(loader, total=total, desc="CLIP-Memory", unit="batch"):
                images, pids, camids = unpack_batch(batch)
                images, pids = images.to(device, non_blocking=True), pids.to(device).long().reshape(-1)
                if camids is not None:
                    camids = torch.as_tensor(camids).to(device)
                tokens = self.encode_frames(images, camids)
                feats = self.image_encoder.project(tokens[:, :, 0]).float().mean(dim=1)
                sums.index_add_(0, pids, feats)
                counts.index_add_(0, pids, torch.ones_like(pids, dtype=counts.dtype))
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(sums)
            torch.distributed.all_reduce(counts)
        missing = torch.nonzero(counts == 0).reshape(-1).tolist()
        if missing:
            raise ConfigError(f"CLIP-Memory: training identities {missing[:5]} (of {len(missing)}) have no tracklet in "
                              "the loader given to prepare(); pass a loader over the whole training set")
        self.clip_memory.copy_(F.normalize(sums / counts.unsqueeze(1), dim=-1))
        self.memory_ready.fill_(1)
        logger.info("CLIP-Memory computed for %d identities from %d tracklets", self.num_classes, int(counts.sum()))
