"""TFE — Token-based Feature Extraction (SPEC §2.2).

N^Q learnable query tokens cross-attend to all tokens of all T frames of a tracklet (``T × (1+P)`` keys, each frame's
tokens plus a learnable temporal embedding of its frame index) through L_tfe pre-LN blocks of
[cross-attention → MLP], residual. The mean of the N^Q output tokens is the TFE feature (width D).

Cost per tracklet: key/value projections ``O(T·(1+P)·D²)`` plus attention ``O(N^Q·T·(1+P)·D)`` per block — linear in
the number of frames T (no attention between frames or between frame tokens).

:meth:`TokenFeatureExtractor.forward` can also return the per-frame weights used in attention pictures: the attention
probability that query token 1 (index 0) puts on each key in the **last** block, averaged over heads and summed over
the tokens of each frame, so the T weights of a tracklet sum to 1.
"""

from __future__ import annotations

import torch
from torch import nn

from cgclip.errors import ConfigError
from cgclip.models.fusion import CrossAttentionLayer, MlpLayer, default_heads


class TFEBlock(nn.Module):
    """One TFE block: ``q ← q + CrossAttn(LN(q), LN(tokens))``; ``q ← q + MLP(LN(q))``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.cross = CrossAttentionLayer(dim, heads)
        self.mlp = MlpLayer(dim)

    def forward(
        self, queries: torch.Tensor, tokens: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``queries [B|1, NQ, D]``, ``tokens [B, K, D]`` → ``(queries [B, NQ, D], weights [B, h, NQ, K] | None)``."""
        queries, weights = self.cross(queries, tokens, need_weights)
        return self.mlp(queries), weights


class TokenFeatureExtractor(nn.Module):
    """N^Q learnable tokens aggregating a tracklet's frame tokens into one D-dimensional feature.

    Args:
        dim: token width D of the image encoder.
        num_queries: N^Q (15 by default; 50 for MARS in the paper).
        num_blocks: L_tfe (1 by default).
        max_frames: size of the learnable temporal-embedding table (frames per tracklet at most).
        heads: attention heads (default ``dim // 64``).
        norm: a LayerNorm on the output (``model.tfe_norm``, on in the configuration; at initialisation the TFE
            feature's norm is about 2.9 against 13.8 for the CLS mean at ViT-B/16 width, so without it the CLS half
            dominates the concatenation).
    """

    def __init__(
        self,
        dim: int,
        num_queries: int = 15,
        num_blocks: int = 1,
        max_frames: int = 64,
        heads: int | None = None,
        norm: bool = False,
    ) -> None:
        super().__init__()
        self.dim, self.num_queries, self.max_frames = dim, int(num_queries), int(max_frames)
        self.queries = nn.Parameter(torch.empty(self.num_queries, dim))
        self.temporal_embed = nn.Parameter(torch.empty(self.max_frames, dim))
        nn.init.trunc_normal_(self.queries, std=0.02)
        nn.init.trunc_normal_(self.temporal_embed, std=0.02)
        heads = heads or default_heads(dim)
        self.blocks = nn.ModuleList(TFEBlock(dim, heads) for _ in range(int(num_blocks)))
        self.norm = nn.LayerNorm(dim) if norm else None

    def forward(
        self, tokens: torch.Tensor, return_frame_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Aggregate frame tokens ``[B, T, N, D]`` into the TFE feature ``[B, D]``.

        Returns ``(feature, frame_weights [B, T] float32 or None)``.
        """
        if tokens.dim() != 4:
            raise ValueError(f"TFE expects frame tokens [B, T, N, D], got shape {tuple(tokens.shape)}")
        b, t, n, d = tokens.shape
        if t > self.max_frames:
            raise ConfigError(
                f"tracklet has {t} frames but TFE's temporal embedding covers {self.max_frames}; "
                f"sample at most {self.max_frames} frames per tracklet or build the model with "
                f"tfe_max_frames >= {t}"
            )
        kv = tokens + self.temporal_embed[:t].to(tokens.dtype).view(1, t, 1, d)
        kv = kv.reshape(b, t * n, d)
        q = self.queries.unsqueeze(0)
        weights = None
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            q, w = block(q, kv, need_weights=return_frame_weights and i == last)
            if w is not None:
                weights = w[:, :, 0].mean(dim=1).reshape(b, t, n).sum(dim=-1)
        if q.shape[0] != b:  # no blocks: the queries never met the batch
            q = q.expand(b, -1, -1)
        feature = q.mean(dim=1)
        return (self.norm(feature) if self.norm is not None else feature), weights
