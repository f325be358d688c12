"""TF-CLIP baseline (Yu et al., AAAI 2024) as its released code (AsuradaYuci/TF-CLIP) trains and tests it (SPEC §2.4).

File and line references are to that repository: ``model/make_model_clipreid.py`` (M), ``processor/
processor_clipreid_stage2.py`` (P), ``loss/make_loss.py`` (L); docs/training.md lists every point.

* **Features** of a tracklet (frame tokens from the encoder's final LayerNorm, ``[B, T, 1+P, D]``):
  ``img_feature`` = mean over T of CLS ``[B, D]``; ``img_feature_proj`` = its projection ``[B, d]`` (M 256–264);
  with TMD, the frame features ``f_t`` ``[B, T, D]`` of :class:`~cgclip.models.tfclip_parts.TemporalMemoryDiffusion`
  on the *detached* tokens (M 266–273) and the TMD video feature ``f_tmd`` = their mean over T (M 275).
* **Heads**: three BNNecks (frozen-bias BatchNorm + bias-free classifier, M 141–163) on ``img_feature``,
  ``img_feature_proj`` and ``f_tmd``, and a frame-level BatchNorm on the ``B·T`` frame features whose classifier is
  the TMD video head's (M 280, 293–294: the release uses ``classifier_proj_temp`` for both; its
  ``classifier_proj_temp2`` is never used and is left out here).
* **CLIP-Memory** ``M [Y, d]`` (buffer): per-identity mean, over the identity's tracklets, of each tracklet's mean over
  its clips of the projected CLS averaged over the clip's frames — computed by :meth:`TFCLIPModel.prepare` with the
  initial encoder, without SIE, not normalised (P 70–100, M 201–216). ``memory_clips: all`` (default) uses every
  consecutive T-frame clip of each tracklet (the release's dense ``train_loader_stage1``), ``first`` one RRS
  first-frame clip. It is saved in the state dict with a ``memory_ready`` flag, so ``prepare`` after loading a
  checkpoint is a no-op.
* **Video-to-memory logits**: ``⟨img_feature_proj, M'_b,y⟩`` with ``M'_b = M + SSP(M, visual_b)``, ``visual_b`` the
  projected tokens averaged over T ``[1+P, d]`` (M 284–289). ``v2m_logits: raw`` (default, released) uses the plain
  inner products with no scale and no logit-scale parameter; ``cosine`` normalises both sides and multiplies by a
  learnable scale (CG-CLIP's form).
* **Loss** (L 37–67, P 127–144): ``w_ce·ΣCE(three heads) + w_tri·Σtriplet(img_feature, img_feature_proj, f_tmd) +
  w_v2m·CE(v2m logits) + CE(frame logits over B·T frames) / T``, all cross-entropies label-smoothed.
* **Retrieval feature** (M 297–302): ``neck_feat: before`` → ``cat[img_feature, img_feature_proj, f_tmd]``
  (``2D + d``); ``after`` → ``cat[BN(img_feature), BN(img_feature_proj)]`` (``D + d``; TMD is then not run at
  inference). ``tmd=False`` drops TMD, its head and the frame loss; the retrieval feature is then
  ``cat[img_feature, img_feature_proj]`` (before) or the same ``after`` concatenation, both ``D + d``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from torch import nn

from cgclip.config_sections import ModelConfig, choices_of
from cgclip.errors import ConfigError
from cgclip.models.heads import BNNeck, VideoReIDModel, loss_options, neck_norm
from cgclip.models.losses import (
    LOGIT_SCALE_INIT,
    batch_hard_triplet,
    cross_entropy_label_smooth,
    initial_logit_scale,
    memory_logits,
    raw_memory_logits,
)
from cgclip.models.tfclip_parts import SequenceSpecificPrompt, TemporalMemoryDiffusion
from cgclip.progress import progress

logger = logging.getLogger(__name__)

#: ``v2m_logits``: plain inner products (released) or cosine × a learnable scale.
V2M_LOGITS = choices_of(ModelConfig, "v2m_logits")
#: ``memory_clips``: every consecutive T-frame clip of a tracklet (released) or its first RRS clip.
MEMORY_CLIPS = choices_of(ModelConfig, "memory_clips")


def unpack_batch(batch: Any) -> tuple[Any, torch.Tensor, torch.Tensor | None]:
    """``(images, pids, camids)`` of a loader batch: a dict (``images``/``pid``/``camid``) or a tuple in that order."""
    if isinstance(batch, dict):
        return batch["images"], torch.as_tensor(batch["pid"]), batch.get("camid")
    if isinstance(batch, (list, tuple)) and len(batch) >= 2:
        return batch[0], torch.as_tensor(batch[1]), batch[2] if len(batch) > 2 else None
    raise TypeError(f"cannot read images and pids from a loader batch of type {type(batch).__name__}")


def _clips_of(images: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(clips [N, T, 3, H, W], owner [N])`` of a batch of one clip per tracklet ``[B, T, …]``, of dense clips
    ``[B, C, T, …]``, or of a list of per-tracklet clip stacks ``[C_i, T, …]`` (dense clips of unequal counts)."""
    if isinstance(images, torch.Tensor) and images.dim() == 5:
        return images, torch.arange(images.shape[0])
    if isinstance(images, torch.Tensor) and images.dim() == 6:
        b, c = images.shape[:2]
        return images.flatten(0, 1), torch.arange(b).repeat_interleave(c)
    if isinstance(images, (list, tuple)):
        items = [x.unsqueeze(0) if x.dim() == 4 else x for x in images]
        owner = torch.cat([torch.full((x.shape[0],), i, dtype=torch.long) for i, x in enumerate(items)])
        return torch.cat(items, dim=0), owner
    raise ValueError("expected clips [B, T, 3, H, W], dense clips [B, C, T, 3, H, W] or a list of [C, T, 3, H, W]")


class TFCLIPModel(VideoReIDModel):
    """TF-CLIP video ReID model (build it with :func:`cgclip.models.build_model`; :meth:`prepare` before training)."""

    name = "tfclip"

    def __init__(
        self,
        image_encoder: nn.Module,
        num_classes: int,
        *,
        ssp_blocks: int = 2,
        tmd: bool = True,
        v2m_logits: str = "raw",
        memory_clips: str = "all",
        w_v2m: float = 1.0,
        w_tri: float = 1.0,
        w_ce: float = 0.25,
        triplet_margin: float = 0.3,
        label_smoothing: float = 0.1,
        logit_scale_init: float = math.exp(LOGIT_SCALE_INIT),
    ) -> None:
        super().__init__(image_encoder, num_classes)
        if v2m_logits not in V2M_LOGITS:
            raise ConfigError(f"model option v2m_logits must be one of {', '.join(V2M_LOGITS)}, got {v2m_logits!r}")
        if memory_clips not in MEMORY_CLIPS:
            raise ConfigError(
                f"model option memory_clips must be one of {', '.join(MEMORY_CLIPS)}, got {memory_clips!r}"
            )
        self.v2m_logits, self.memory_clips = v2m_logits, memory_clips
        self.register_buffer("clip_memory", torch.zeros(num_classes, self.embed_dim))
        # an integer flag (not bool: DDP broadcasts buffers, and gloo has no bool type)
        self.register_buffer("memory_ready", torch.zeros((), dtype=torch.long))
        self.ssp = SequenceSpecificPrompt(self.embed_dim, layers=ssp_blocks)
        self.neck = BNNeck(self.width, num_classes)
        self.neck_proj = BNNeck(self.embed_dim, num_classes)
        self.tmd = TemporalMemoryDiffusion(self.width) if tmd else None
        self.neck_tmd = BNNeck(self.width, num_classes) if tmd else None
        self.frame_norm = neck_norm(self.width) if tmd else None
        if v2m_logits == "cosine":
            self.logit_scale = nn.Parameter(torch.tensor(math.log(float(logit_scale_init))))
        else:  # raw inner products have no scale: no parameter (DDP sees no unused one)
            self.register_parameter("logit_scale", None)
        self.w_v2m, self.w_tri, self.w_ce = float(w_v2m), float(w_tri), float(w_ce)
        self.margin, self.epsilon = float(triplet_margin), float(label_smoothing)

    @property
    def feature_dim(self) -> int:
        """Retrieval feature width: ``2D + d`` (``before``, with TMD) or ``D + d``."""
        with_tmd = self.tmd is not None and self.neck_feat != "after"
        return self.width + self.embed_dim + (self.width if with_tmd else 0)

    @property
    def prepare_sampling(self) -> str:  # type: ignore[override]
        """``dense`` (every clip, ``memory_clips: all``) or ``rrs_first`` (one clip per tracklet)."""
        return "dense" if self.memory_clips == "all" else "rrs_first"

    def large_lr_parameter_names(self) -> set[str]:
        """The TMD classifier (shared by the video and frame heads): the release's ×10 ``classifier_proj_temp``."""
        if self.neck_tmd is None:
            return set()
        return {f"neck_tmd.classifier.{n}" for n, _ in self.neck_tmd.classifier.named_parameters()}

    def data_dependent_state(self) -> set[str]:
        """The classifiers and camera table, plus the CLIP-Memory (one row per identity, rebuilt by ``prepare``)."""
        return super().data_dependent_state() | {"clip_memory", "memory_ready"}

    def forward(
        self, images: torch.Tensor, camids: torch.Tensor | None = None, pids: torch.Tensor | None = None
    ) -> dict:
        """``{"feature": [B, feature_dim]}``; in training mode with ``pids`` also ``"loss"`` and ``"losses"``."""
        tokens = self.encode_frames(images, camids)
        b, t = tokens.shape[:2]
        training = self.training and pids is not None
        img = tokens[:, :, 0].mean(dim=1)
        img_proj = self.image_encoder.project(img)
        frames = None
        if self.tmd is not None and (training or self.neck_feat != "after"):
            frames = self.tmd(tokens.detach())
        video_tmd = frames.mean(dim=1) if frames is not None else None
        bn_img, logits_img = self.neck(img)
        bn_proj, logits_proj = self.neck_proj(img_proj)
        before = [img, img_proj] + ([video_tmd] if video_tmd is not None else [])
        out: dict = {
            "feature": self.retrieval_feature(
                torch.cat([f.float() for f in before], dim=1), torch.cat([bn_img.float(), bn_proj.float()], dim=1)
            )
        }
        if not training:
            return out
        if not bool(self.memory_ready):
            raise ConfigError("TF-CLIP's CLIP-Memory is empty: call model.prepare(train_loader) before training")
        pids = torch.as_tensor(pids, device=img.device).long().reshape(-1)
        refined = self.clip_memory + self.ssp(self.clip_memory, self.image_encoder.project(tokens.mean(dim=1)))
        if self.logit_scale is None:
            v2m_logits = raw_memory_logits(img_proj, refined)
        else:
            v2m_logits = memory_logits(img_proj, refined, self.logit_scale)
        features, scores = [img, img_proj], [logits_img, logits_proj]
        if self.neck_tmd is not None and frames is not None and video_tmd is not None:
            features.append(video_tmd)
            scores.append(self.neck_tmd(video_tmd)[1])
        l_v2m = cross_entropy_label_smooth(v2m_logits, pids, self.epsilon)
        l_ce = sum(cross_entropy_label_smooth(s, pids, self.epsilon) for s in scores)
        l_tri = sum(batch_hard_triplet(f, pids, self.margin) for f in features)
        loss = self.w_v2m * l_v2m + self.w_tri * l_tri + self.w_ce * l_ce
        losses = {"v2m": l_v2m, "tri": l_tri, "ce": l_ce}
        if self.neck_tmd is not None and self.frame_norm is not None and frames is not None:
            frame_bn = self.frame_norm(frames.reshape(b * t, -1).to(self.frame_norm.weight.dtype))
            l_frame = cross_entropy_label_smooth(
                self.neck_tmd.classifier(frame_bn), pids.repeat_interleave(t), self.epsilon
            )
            loss = loss + l_frame / t
            losses["frame"] = l_frame
        out["loss"] = loss
        out["losses"] = {k: float(v.detach()) for k, v in losses.items()}  # type: ignore[union-attr]
        return out

    def clip_features(self, clips: torch.Tensor) -> torch.Tensor:
        """CLIP-Memory feature of clips ``[N, T, 3, H, W]``: projected CLS averaged over frames ``[N, d]`` (no SIE)."""
        return self.image_encoder.project(self.encode_frames(clips)[:, :, 0]).float().mean(dim=1)

    def prepare(self, loader: Any, force: bool = False, max_clips: int = 32) -> None:
        """Compute the CLIP-Memory from the current (initial) encoder over ``loader`` (skipped when already loaded).

        A loader batch holds one clip per tracklet or, with :attr:`prepare_sampling` ``dense``, all clips of each
        tracklet (``[B, C, T, …]`` or a list of ``[C_i, T, …]``); clips are encoded ``max_clips`` at a time.
        Every training identity must occur in the loader. Under ``torch.distributed`` the sums are all-reduced, so
        each rank may see its own share of the data. Autocast, if wanted, is the caller's context.
        """
        if bool(self.memory_ready) and not force:
            logger.info("CLIP-Memory already computed (loaded from a checkpoint); skipping the pass")
            return
        device = self.clip_memory.device
        sums = torch.zeros(self.num_classes, self.embed_dim, device=device)
        counts = torch.zeros(self.num_classes, device=device)
        clips_seen = 0
        total = len(loader) if hasattr(loader, "__len__") else None
        with self._eval_mode():
            for batch in progress(loader, total=total, desc="CLIP-Memory", unit="batch"):
                images, pids, _ = unpack_batch(batch)  # no camera ids: the release's memory pass has no SIE
                pids = pids.to(device).long().reshape(-1)
                clips, owner = _clips_of(images)
                per_clip = torch.cat(
                    [
                        self.clip_features(clips[s : s + max_clips].to(device, non_blocking=True))
                        for s in range(0, clips.shape[0], max_clips)
                    ]
                )
                owner = owner.to(device)
                track = torch.zeros(pids.numel(), self.embed_dim, device=device).index_add_(0, owner, per_clip)
                track = track / torch.bincount(owner, minlength=pids.numel()).clamp(min=1).unsqueeze(1)
                sums.index_add_(0, pids, track)
                counts.index_add_(0, pids, torch.ones_like(pids, dtype=counts.dtype))
                clips_seen += int(clips.shape[0])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(sums)
            torch.distributed.all_reduce(counts)
        missing = torch.nonzero(counts == 0).reshape(-1).tolist()
        if missing:
            raise ConfigError(
                f"CLIP-Memory: training identities {missing[:5]} (of {len(missing)}) have no tracklet in "
                "the loader given to prepare(); pass a loader over the whole training set"
            )
        self.clip_memory.copy_(sums / counts.unsqueeze(1))
        self.memory_ready.fill_(1)
        logger.info(
            "CLIP-Memory computed for %d identities from %d tracklets (%d clips on this rank)",
            self.num_classes,
            int(counts.sum()),
            clips_seen,
        )


def build(image_encoder: nn.Module, num_classes: int, opts: dict[str, Any], **context: Any) -> TFCLIPModel:
    """The registry's builder: TF-CLIP from resolved ``build_model`` options (``context`` is not used)."""
    return TFCLIPModel(
        image_encoder,
        num_classes,
        ssp_blocks=opts["ssp_blocks"],
        tmd=opts["tmd"],
        v2m_logits=opts["v2m_logits"],
        memory_clips=opts["memory_clips"],
        w_v2m=opts["w_v2m"],
        logit_scale_init=initial_logit_scale(opts["logit_scale_init"]),
        **loss_options(opts),
    )
