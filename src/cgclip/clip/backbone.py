"""CLIP backbone for ReID: the image encoder (trainable) and the frozen text encoder, loaded from a local HF directory.

:func:`load_clip` reads a Hugging Face-format CLIP checkpoint directory (``config.json`` with ``model_type`` ``clip``,
``model.safetensors`` or sharded safetensors, CLIP tokenizer files) without any network access and returns
:class:`ClipModels`:

* ``.image`` — :class:`ClipImageEncoder`: the CLIP vision tower run at a ReID image size (256×128 by default, i.e.
  16×8 patches + CLS = 129 tokens with patch 16). Its positional embeddings are resampled once from the checkpoint's
  grid (:mod:`cgclip.clip.pos_embed`) into a trainable table; an optional SIE camera embedding is added to every
  token (``sie_tokens="all"``, TransReID) or to the CLS token only (``"cls"``, as TF-CLIP and CLIP-ReID); the final
  LayerNorm is applied to all tokens (CLIP-ReID / TF-CLIP convention).
* ``.text`` — :class:`ClipTextEncoder`: the frozen CLIP text tower + text projection + tokenizer, ``encode(texts)``.
* ``.embed_dim`` — CLIP's joint embedding width d.

The Hugging Face modules are kept inside (attention, MLPs and LayerNorms are not re-implemented). Directory checks
live in :mod:`cgclip.clip.files` (re-exported here: :func:`check_clip_dir`, :func:`hf_quiet`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cgclip.clip.files import check_clip_dir, hf_quiet, load_clip_model
from cgclip.clip.pos_embed import grid_for_image, interpolate_pos_embed, square_grid

logger = logging.getLogger(__name__)


class ClipImageEncoder(nn.Module):
    """CLIP vision tower at a fixed ReID input size; ``forward`` returns all tokens after the final LayerNorm.

    Args:
        vision_model: a ``transformers`` ``CLIPVisionModel`` (its ``embeddings``, ``pre_layrnorm``, ``encoder`` and
            ``post_layernorm`` are used as they are).
        visual_projection: CLIP's bias-free ``Linear(D, d)``.
        image_size: ``(height, width)`` of the input crops; the patch grid is ``(height // p, width // p)``.
        num_cameras: size of the SIE camera table (0 = no SIE).
        sie_coef: scale of the SIE embedding added to the tokens.
        sie_tokens: add the SIE embedding to ``"all"`` tokens or to the ``"cls"`` token only.
        trained_cameras: the camera ids training sees (None = every row of the table). The unseen-camera rule:
            a camera id outside this set (a test camera absent from training, or one beyond the table) gets the
            mean of the trained rows, so it never carries a row that received no gradient, and all unseen cameras
            give the same feature.
        live_positions: train the checkpoint's own table and resample it in every forward pass instead (used when
            pretraining a CLIP whose saved grid differs from its training grid; :attr:`pos_embed` is then None).
        freeze_stem: keep the patch embedding as loaded — a ViT's patch convolution, or the embedded tiny CLIP's
            conv stem (no gradient, BatchNorm statistics kept in eval mode): fine-tuning then skips the backward
            pass through the full-resolution stem.

    The checkpoint's positional table (``vision_model.embeddings.position_embedding``) is resampled once into the
    trainable parameter :attr:`pos_embed` ``[1 + P, D]`` and frozen itself (it no longer takes part in the forward
    pass, and frozen parameters keep DDP's unused-parameter check quiet). An input of another size is accepted too:
    :attr:`pos_embed` is resampled on the fly.
    """

    def __init__(
        self,
        vision_model: nn.Module,
        visual_projection: nn.Linear,
        image_size: tuple[int, int] = (256, 128),
        num_cameras: int = 0,
        sie_coef: float = 1.0,
        live_positions: bool = False,
        sie_tokens: str = "all",
        freeze_stem: bool = False,
        trained_cameras: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if sie_tokens not in ("all", "cls"):
            raise ValueError(f"sie_tokens must be 'all' or 'cls', got {sie_tokens!r}")
        self.sie_tokens = sie_tokens
        self.vision_model = vision_model
        self.visual_projection = visual_projection
        embeddings = vision_model.embeddings
        self.patch_size = int(embeddings.patch_size)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.grid = grid_for_image(self.image_size, self.patch_size)
        table = embeddings.position_embedding.weight.detach()
        self.source_grid = square_grid(table.shape[0] - 1)
        if live_positions:
            self.register_parameter("pos_embed", None)
        else:
            self.pos_embed = nn.Parameter(interpolate_pos_embed(table, self.grid, self.source_grid).clone())
            embeddings.position_embedding.weight.requires_grad_(False)
        self.num_cameras = int(num_cameras)
        self.sie_coef = float(sie_coef)
        if self.num_cameras > 0:
            self.sie_embed = nn.Parameter(torch.zeros(self.num_cameras, self.width, dtype=table.dtype))
            nn.init.trunc_normal_(self.sie_embed, std=0.02)  # bounds ±2, as released: in effect a plain normal
        else:
            self.register_parameter("sie_embed", None)
        trained = torch.zeros(self.num_cameras, dtype=torch.bool)
        trained[self._check_trained_cameras(trained_cameras)] = True
        self.register_buffer("sie_trained", trained, persistent=False)  # rows training updates (unseen-camera rule)
        self.freeze_stem = bool(freeze_stem)
        if self.freeze_stem:
            embeddings.patch_embedding.requires_grad_(False)

    def _check_trained_cameras(self, cameras: Sequence[int] | None) -> list[int]:
        if self.num_cameras == 0:
            return []
        if cameras is None:
            return list(range(self.num_cameras))
        out = sorted({int(c) for c in cameras})
        if not out or out[0] < 0 or out[-1] >= self.num_cameras:
            raise ValueError(f"trained_cameras must be a non-empty subset of [0, {self.num_cameras}), got {out}")
        return out

    def camera_embedding(self, camids: torch.Tensor) -> torch.Tensor:
        """SIE rows ``[N, D]`` for camera ids ``[N]``: the trained row, or the mean of the trained rows for a camera
        training did not see (the unseen-camera rule, see the class docstring)."""
        if self.sie_embed is None:
            raise ValueError("this image encoder has no SIE camera table")
        exporting = torch.compiler.is_exporting()  # ONNX export: no data-dependent branches (ids checked by caller)
        if not exporting and camids.numel() and int(camids.min()) < 0:
            raise ValueError(f"camera ids must be >= 0, got {int(camids.min())}")
        inside = camids.clamp(min=0, max=self.num_cameras - 1)
        seen = (camids >= 0) & (camids < self.num_cameras) & self.sie_trained[inside]
        rows = self.sie_embed[inside]
        if not exporting and bool(seen.all()):
            return rows
        trained = self.sie_trained.to(self.sie_embed.dtype).unsqueeze(1)
        mean = (self.sie_embed * trained).sum(dim=0) / trained.sum()
        return torch.where(seen.unsqueeze(1), rows, mean.unsqueeze(0))

    def train(self, mode: bool = True) -> ClipImageEncoder:
        """Set the training mode; a frozen stem stays in eval mode (its BatchNorm keeps the loaded statistics)."""
        super().train(mode)
        if self.freeze_stem:
            self.vision_model.embeddings.patch_embedding.train(False)
        return self

    @property
    def width(self) -> int:
        """Token width D of the vision transformer."""
        return int(self.vision_model.config.hidden_size)

    @property
    def embed_dim(self) -> int:
        """CLIP's joint embedding width d (output of :meth:`project`)."""
        return int(self.visual_projection.out_features)

    @property
    def num_tokens(self) -> int:
        """Tokens per image at the configured size: 1 (CLS) + rows × cols."""
        return 1 + self.grid[0] * self.grid[1]

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Apply CLIP's visual projection ``D → d`` to the last dimension of ``x``."""
        return self.visual_projection(x)

    def positional_embedding(self, grid: tuple[int, int]) -> torch.Tensor:
        """The positional table ``[1 + rows*cols, D]`` for a patch grid (the trained table at the configured grid)."""
        if self.pos_embed is None:
            table = self.vision_model.embeddings.position_embedding.weight
            return interpolate_pos_embed(table, grid, self.source_grid)
        if tuple(grid) == self.grid:
            return self.pos_embed
        return interpolate_pos_embed(self.pos_embed, grid, self.grid)

    def embed(self, pixel_values: torch.Tensor, camids: torch.Tensor | None = None) -> torch.Tensor:
        """Patch + class-token embedding with positions and optional SIE: ``[N, 1+P, D]`` before ``pre_layrnorm``."""
        if pixel_values.dim() != 4:
            raise ValueError(f"expected pixel_values [N, 3, H, W], got shape {tuple(pixel_values.shape)}")
        emb = self.vision_model.embeddings
        weight = emb.patch_embedding.weight  # a Conv2d's, or the output conv's of a conv stem
        patches = emb.patch_embedding(pixel_values.to(device=weight.device, dtype=weight.dtype))
        grid = (patches.shape[-2], patches.shape[-1])
        patches = patches.flatten(2).transpose(1, 2)
        cls = emb.class_embedding.to(patches.dtype).expand(patches.shape[0], 1, -1)
        tokens = torch.cat([cls, patches], dim=1)
        tokens = tokens + self.positional_embedding(grid).to(tokens.dtype).unsqueeze(0)
        if self.sie_embed is not None and camids is not None:
            camids = torch.as_tensor(camids, device=tokens.device).long().reshape(-1)
            if camids.numel() != tokens.shape[0]:
                raise ValueError(f"got {camids.numel()} camera ids for {tokens.shape[0]} images")
            sie = self.sie_coef * self.camera_embedding(camids).to(tokens.dtype).unsqueeze(1)
            if self.sie_tokens == "cls":
                tokens = torch.cat([tokens[:, :1] + sie, tokens[:, 1:]], dim=1)
            else:
                tokens = tokens + sie
        return tokens

    def forward(self, pixel_values: torch.Tensor, camids: torch.Tensor | None = None) -> torch.Tensor:
        """Encode images ``[N, 3, H, W]`` into tokens ``[N, 1+P, D]`` (token 0 = CLS), all after the final LayerNorm."""
        vm = self.vision_model
        hidden = vm.pre_layrnorm(self.embed(pixel_values, camids))
        hidden = vm.encoder(inputs_embeds=hidden).last_hidden_state
        return vm.post_layernorm(hidden)

    def encode_image(self, pixel_values: torch.Tensor, camids: torch.Tensor | None = None) -> torch.Tensor:
        """CLIP image embedding: the projected CLS token ``[N, d]`` (not normalised)."""
        return self.project(self.forward(pixel_values, camids)[:, 0])


class ClipTextEncoder(nn.Module):
    """CLIP text tower + text projection + tokenizer. Frozen by default (``requires_grad`` False, always eval mode).

    ``encode(texts)`` returns L2-normalised float32 features ``[n, d]`` without gradients; texts longer than the
    model's context (77 tokens for CLIP) are truncated. :meth:`forward_tokens` is the differentiable path used when
    the tower is trained (``frozen=False``, as in pretraining).
    """

    def __init__(self, text_model: nn.Module, text_projection: nn.Linear, tokenizer: Any, frozen: bool = True) -> None:
        super().__init__()
        self.text_model = text_model
        self.text_projection = text_projection
        self.tokenizer = tokenizer
        self.frozen = bool(frozen)
        self.max_length = int(
            min(text_model.config.max_position_embeddings, getattr(tokenizer, "model_max_length", 77) or 77)
        )
        if self.frozen:
            self.requires_grad_(False)
            super().train(False)

    @property
    def embed_dim(self) -> int:
        """CLIP's joint embedding width d."""
        return int(self.text_projection.out_features)

    def train(self, mode: bool = True) -> ClipTextEncoder:
        """A frozen encoder stays in eval mode whatever the parent module asks."""
        return super().train(False if self.frozen else mode)

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Token ids and attention mask (padded to the longest text, truncated to :attr:`max_length`)."""
        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def forward_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Projected (not normalised) text features ``[n, d]`` of tokenised texts."""
        device = self.text_projection.weight.device
        out = self.text_model(
            input_ids=input_ids.to(device), attention_mask=None if attention_mask is None else attention_mask.to(device)
        )
        return self.text_projection(out.pooler_output)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        """Projected (not normalised) features of ``texts``; differentiable when the encoder is not frozen."""
        return self.forward_tokens(**self.tokenize(texts))

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """L2-normalised float32 features ``[len(texts), d]`` on the encoder's device, computed without gradients."""
        texts = list(texts)
        device = self.text_projection.weight.device
        if not texts:
            return torch.zeros(0, self.embed_dim, device=device)
        chunks = []
        for start in range(0, len(texts), batch_size):
            feats = self.forward(texts[start : start + batch_size]).float()
            chunks.append(torch.nn.functional.normalize(feats, dim=-1))
        return torch.cat(chunks, dim=0)


@dataclass
class ClipModels:
    """What :func:`load_clip` returns: the two towers, the joint width, CLIP's logit scale and the source."""

    image: ClipImageEncoder
    text: ClipTextEncoder
    embed_dim: int
    logit_scale: float
    config: Any
    path: Path


def load_clip(
    path: str | Path,
    image_size: tuple[int, int] = (256, 128),
    num_cameras: int = 0,
    sie_coef: float = 1.0,
    dtype: torch.dtype | None = None,
    train_text: bool = False,
    sie_tokens: str = "all",
    freeze_stem: bool = False,
    trained_cameras: Sequence[int] | None = None,
) -> ClipModels:
    """Load a local Hugging Face CLIP directory for ReID (never downloads).

    Args:
        path: checkpoint directory (``config.json`` with ``model_type`` ``clip``, safetensors weights, tokenizer).
        image_size: ``(height, width)`` of the ReID crops; positional embeddings are resampled to that grid.
        num_cameras: number of cameras for the SIE embedding (0 disables SIE).
        sie_coef: SIE scale (TF-CLIP uses 1.0 … 3.0).
        sie_tokens: add SIE to ``"all"`` tokens or to the ``"cls"`` token only (TF-CLIP, CLIP-ReID).
        dtype: parameter dtype (default float32; use autocast for bf16 compute).
        train_text: leave the text tower trainable (only pretraining does this); ReID keeps it frozen.
        freeze_stem: keep the image tower's patch embedding / conv stem as loaded (:class:`ClipImageEncoder`).
        trained_cameras: the camera ids training sees; others get the unseen-camera rule (:class:`ClipImageEncoder`).
    """
    path = Path(path)
    model, tokenizer = load_clip_model(path, dtype)
    image = ClipImageEncoder(
        model.vision_model,
        model.visual_projection,
        image_size=image_size,
        num_cameras=num_cameras,
        sie_coef=sie_coef,
        sie_tokens=sie_tokens,
        freeze_stem=freeze_stem,
        trained_cameras=trained_cameras,
    )
    text = ClipTextEncoder(model.text_model, model.text_projection, tokenizer, frozen=not train_text)
    logger.info(
        "loaded CLIP from %s: vision width %d, grid %s -> %s, embed dim %d",
        path,
        image.width,
        image.source_grid,
        image.grid,
        image.embed_dim,
    )
    return ClipModels(
        image=image,
        text=text,
        embed_dim=int(model.config.projection_dim),
        logit_scale=float(model.logit_scale.detach().float().exp()),
        config=model.config,
        path=path,
    )


__all__ = ["ClipImageEncoder", "ClipModels", "ClipTextEncoder", "check_clip_dir", "hf_quiet", "load_clip"]
