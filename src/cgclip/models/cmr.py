"""CMR — Caption-guided Memory Refinement (SPEC §2.3): the Text Memory and the fusion encoder.

:class:`TextMemory` keeps, as buffers (saved in the state dict, so a resumed run continues exactly):

* ``caption_feats [n_caps, d]`` — L2-normalised CLIP text features of every training caption, grouped by identity;
* ``caption_owner [n_caps]`` / ``caption_offsets [Y+1]`` — the identity of each caption and where each identity's
  captions start;
* ``memory [Y, d]`` — the Text Memory M, row y initialised to the normalised mean of identity y's caption features.

:meth:`TextMemory.update` (training, no gradient) samples one caption of every identity in the batch with the global
torch RNG and applies ``M[y] ← normalize(m·M[y] + (1−m)·e)`` (m = ``memory_momentum``, 0.2 by default); a static
memory skips it. Under ``torch.distributed`` the sampled caption indices are combined over ranks (all-reduce MAX of
a Y-length vector), so every rank applies the same update and the memory stays identical everywhere.
With ``identity_mode="caption_idemb"`` a learnable per-identity embedding (initialised to 0) is added to the memory
rows used as targets (:meth:`TextMemory.targets`).

:class:`FusionEncoder` refines the memory with one tracklet's image tokens (``[N, d]``, the frame-averaged encoder
tokens projected to d) and returns the refined memory ``M'_b = M + out(LN(x_L))`` for every tracklet b, ``[B, Y, d]``.
Variants (each block ends with an MLP; pre-LN, residual):

* ``a`` — self-attention over ``concat[memory rows, image tokens]`` (the image tokens are carried through the blocks);
* ``b`` — self-attention over memory rows → cross-attention (queries = memory, keys/values = image tokens);
* ``c`` — cross-attention → self-attention over memory rows (the paper's best, default).

The output projection ``out`` is zero-initialised, so M' = M at the start of training and the refinement is learnt.
Cost per tracklet and block (Y identities, N image tokens, width d): self-attention ``O(Y²·d)``, cross-attention
``O(Y·N·d)``, projections/MLP ``O(Y·d²)``; variant (a) ``O((Y+N)²·d + (Y+N)·d²)``. For MARS (Y = 625, N = 129,
d = 512) and B = 32 tracklets this is ~0.1 TFLOP per step forward — affordable on a GPU, so the fusion runs on all Y
rows for every tracklet, batched as ``[B, Y, d]``. In variant (b) the first self-attention does not depend on the
tracklet and is computed once (batch 1) and broadcast.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cgclip.config_sections import ModelConfig, choices_of
from cgclip.errors import ConfigError
from cgclip.models.fusion import CrossAttentionLayer, MlpLayer, SelfAttentionLayer, TransformerBlock, default_heads

FUSION_VARIANTS = choices_of(ModelConfig, "cmr_fusion")
IDENTITY_MODES = choices_of(ModelConfig, "identity_mode")


class TextMemory(nn.Module):
    """Per-identity Text Memory with momentum update from sampled caption features.

    Args:
        caption_feats: ``[n_caps, d]`` caption features (normalised here), grouped so that identity y's captions are
            contiguous and identities appear in order 0..Y-1.
        caption_owner: ``[n_caps]`` identity of each caption (non-decreasing).
        num_classes: Y; every identity must own at least one caption.
        momentum: m in ``M ← m·M + (1−m)·e``.
        static: never update the memory.
        id_embedding: add a learnable per-identity embedding to the target rows.
    """

    def __init__(
        self,
        caption_feats: torch.Tensor,
        caption_owner: torch.Tensor,
        num_classes: int,
        momentum: float = 0.2,
        static: bool = False,
        id_embedding: bool = False,
    ) -> None:
        super().__init__()
        feats = F.normalize(caption_feats.detach().float(), dim=-1)
        owner = caption_owner.detach().long().reshape(-1)
        if feats.dim() != 2 or feats.shape[0] != owner.numel():
            raise ValueError(f"caption features {tuple(feats.shape)} do not match {owner.numel()} owners")
        if owner.numel() and bool((owner[1:] < owner[:-1]).any()):
            raise ValueError("caption features must be grouped by identity (owner ids non-decreasing)")
        counts = (
            torch.bincount(owner, minlength=num_classes)
            if owner.numel()
            else torch.zeros(num_classes, dtype=torch.long)
        )
        if counts.numel() > num_classes:
            raise ValueError(f"caption owner {int(owner.max())} is outside 0..{num_classes - 1}")
        self.num_classes, self.dim = int(num_classes), int(feats.shape[1])
        self.momentum, self.static = float(momentum), bool(static)
        offsets = torch.zeros(num_classes + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(counts, 0)
        memory = torch.zeros(num_classes, self.dim)
        if owner.numel():
            memory.index_add_(0, owner, feats)
            memory = F.normalize(memory, dim=-1)
        self.register_buffer("caption_feats", feats)
        self.register_buffer("caption_owner", owner)
        self.register_buffer("caption_offsets", offsets)
        self.register_buffer("memory", memory)
        self.id_embed = nn.Parameter(torch.zeros(num_classes, self.dim)) if id_embedding else None

    @classmethod
    def placeholder(cls, num_classes: int, dim: int, **kwargs: Any) -> TextMemory:
        """An empty memory (no captions) to be filled by ``load_state_dict`` — for building a model for inference."""
        return cls(torch.zeros(0, dim), torch.zeros(0, dtype=torch.long), num_classes, **kwargs)

    def _load_from_state_dict(self, state_dict: Mapping[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # the caption table's length is data-dependent: adopt the saved one (e.g. into a placeholder memory)
        for name in ("caption_feats", "caption_owner"):
            saved = state_dict.get(prefix + name)
            if isinstance(saved, torch.Tensor) and saved.shape != getattr(self, name).shape:
                setattr(self, name, torch.empty_like(saved, device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def num_captions(self) -> int:
        """Number of stored caption features."""
        return int(self.caption_feats.shape[0])

    def sample_captions(self, pids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One caption index per distinct identity in ``pids``, drawn uniformly (torch RNG) → ``(ids, indices)``."""
        ids = torch.unique(pids.to(self.memory.device).long())
        counts = self.caption_offsets[ids + 1] - self.caption_offsets[ids]
        if bool((counts <= 0).any()):
            missing = ids[counts <= 0].tolist()
            raise ConfigError(
                f"no captions for training identities {missing[:5]}; the Text Memory needs at least "
                "one caption per identity (build the model with captions)"
            )
        pick = (torch.rand(ids.numel(), device=ids.device) * counts).long().clamp_max(counts - 1)
        return ids, self.caption_offsets[ids] + pick

    @torch.no_grad()
    def update(self, pids: torch.Tensor) -> None:
        """Momentum update of the rows of the identities in ``pids`` (no-op for a static memory)."""
        if self.static:
            return
        ids, idx = self.sample_captions(pids)
        if (
            torch.distributed.is_available()
            and torch.distributed.is_initialized()
            and torch.distributed.get_world_size() > 1
        ):
            chosen = torch.full((self.num_classes,), -1, dtype=torch.long, device=ids.device)
            chosen[ids] = idx
            torch.distributed.all_reduce(chosen, op=torch.distributed.ReduceOp.MAX)
            ids = torch.nonzero(chosen >= 0).reshape(-1)
            idx = chosen[ids]
        self.apply_update(ids, self.caption_feats[idx])

    @torch.no_grad()
    def apply_update(self, ids: torch.Tensor, feats: torch.Tensor) -> None:
        """``M[ids] ← normalize(m·M[ids] + (1−m)·feats)`` (float32)."""
        m = self.momentum
        rows = m * self.memory[ids].float() + (1.0 - m) * feats.float()
        self.memory[ids] = F.normalize(rows, dim=-1).to(self.memory.dtype)

    def targets(self) -> torch.Tensor:
        """The memory rows used as targets ``[Y, d]``: M, plus the identity embedding in ``caption_idemb`` mode."""
        if self.id_embed is None:
            return self.memory
        return self.memory + self.id_embed

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, dim={self.dim}, captions={self.num_captions}, "
            f"momentum={self.momentum}, static={self.static}"
        )


class FusionBlock(nn.Module):
    """One fusion block of variant ``a``, ``b`` or ``c`` (see the module docstring)."""

    def __init__(self, variant: str, dim: int, heads: int) -> None:
        super().__init__()
        if variant not in FUSION_VARIANTS:
            raise ConfigError(f"unknown fusion variant {variant!r}; choose one of a, b, c (cmr_fusion)")
        self.variant = variant
        if variant == "a":
            self.block = TransformerBlock(dim, heads)
        else:
            self.self_attn = SelfAttentionLayer(dim, heads)
            self.cross_attn = CrossAttentionLayer(dim, heads)
            self.mlp = MlpLayer(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Variant a: ``x`` is the joint sequence ``[B, Y+N, d]``; b/c: ``x [B|1, Y, d]``, ``context [B, N, d]``."""
        if self.variant == "a":
            return self.block(x)
        if self.variant == "b":
            x = self.self_attn(x)
            x = self.cross_attn(x, context)[0]
        else:
            x = self.cross_attn(x, context)[0]
            x = self.self_attn(x)
        return self.mlp(x)


class FusionEncoder(nn.Module):
    """Refines a memory ``[Y, d]`` with each tracklet's image tokens ``[B, N, d]`` → ``M' [B, Y, d]``.

    Args:
        variant: ``"a"``, ``"b"`` or ``"c"``.
        num_blocks: number of fusion blocks (paper: 2; ablation 1–4).
        dim: width d.
        heads: attention heads (default ``d // 64``).
    """

    def __init__(self, variant: str = "c", num_blocks: int = 2, dim: int = 512, heads: int | None = None) -> None:
        super().__init__()
        heads = heads or default_heads(dim)
        self.variant = variant
        self.blocks = nn.ModuleList(FusionBlock(variant, dim, heads) for _ in range(int(num_blocks)))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, memory: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``memory [Y, d]`` (shared) and ``context [B, N, d]`` → refined memory ``[B, Y, d]`` = M + out(LN(x_L))."""
        b, y = context.shape[0], memory.shape[0]
        x = memory.unsqueeze(0)
        if self.variant == "a":
            x = torch.cat([x.expand(b, -1, -1), context.to(x.dtype)], dim=1)
        for block in self.blocks:
            x = block(x, context)
        x = x[:, :y]
        return memory.unsqueeze(0) + self.out(self.norm(x)).expand(b, -1, -1)
