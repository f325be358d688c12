"""Attention building blocks shared by TFE, the CMR fusion encoder and TF-CLIP (pre-LayerNorm, residual).

All blocks are batch-first. On GPU attention uses :func:`torch.nn.functional.scaled_dot_product_attention` (fused
kernels); on CPU an explicit ``softmax(QKᵀ/√h)V`` with the softmax in float32, whose backward is ~3× faster than
the fused CPU kernel's under bf16 autocast at ReID sizes. :class:`Attention` can also return the attention
probabilities (computed explicitly in float32) for visualisation, e.g. TFE's per-frame weights.

Broadcasting: a query stream with batch size 1 may attend to a context of batch size B; the result has batch B.
The CMR fusion encoder uses this so that work that does not depend on the tracklet (self-attention over the shared
memory in the first block of variant (b)) is done once instead of B times.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def default_heads(dim: int, head_dim: int = 64) -> int:
    """Number of attention heads for width ``dim``: ``dim // 64`` when that divides evenly, else the largest divisor."""
    heads = max(1, dim // head_dim)
    while dim % heads:
        heads -= 1
    return heads


class Attention(nn.Module):
    """Multi-head attention ``softmax(QKᵀ/√c)V`` (c = head width) with separate query and key/value inputs.

    Args:
        dim: width of the queries and of the output.
        heads: number of heads (``dim`` must be divisible by it).
        kv_dim: width of the key/value input (default ``dim``).
        qkv_bias: give the query and key/value projections a bias (the output projection always has one).
    """

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.dim, self.heads = dim, heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(kv_dim or dim, 2 * dim, bias=qkv_bias)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, self.heads, self.dim // self.heads).transpose(1, 2)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from ``x`` ``[B|1, Nq, dim]`` to ``context`` ``[B, Nk, kv_dim]``.

        Returns ``(out [B, Nq, dim], weights [B, heads, Nq, Nk] float32 or None)``.
        """
        q = self._split(self.q(x))
        k, v = self.kv(context).chunk(2, dim=-1)
        k, v = self._split(k), self._split(v)
        weights = None
        if need_weights:
            with torch.autocast(q.device.type, enabled=False):  # probabilities in float32 even under autocast
                scores = (q.float() @ k.float().transpose(-2, -1)) / math.sqrt(q.shape[-1])
                weights = scores.softmax(dim=-1)
            out = weights.to(v.dtype) @ v
        elif q.device.type == "cpu":
            # explicit matmul-softmax: on CPU (bf16 in particular) it is several times faster than the fused
            # kernel's backward at these sizes; a batch-1 query stream broadcasts without being copied
            scores = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.transpose(-2, -1)
            out = scores.softmax(dim=-1, dtype=torch.float32).to(v.dtype) @ v
        else:
            if q.shape[0] != k.shape[0]:
                q = q.expand(k.shape[0], -1, -1, -1)
            out = F.scaled_dot_product_attention(q, k, v)
        b, h, n, c = out.shape
        return self.out(out.transpose(1, 2).reshape(b, n, h * c)), weights


class Mlp(nn.Module):
    """``Linear(dim, ratio·dim) → GELU → Linear(ratio·dim, dim)``."""

    def __init__(self, dim: int, ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the MLP to the last dimension."""
        return self.fc2(self.act(self.fc1(x)))


class SelfAttentionLayer(nn.Module):
    """``x + SelfAttn(LN(x))``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual self-attention over the token axis of ``x`` ``[B, N, dim]``."""
        h = self.norm(x)
        return x + self.attn(h, h)[0]


class CrossAttentionLayer(nn.Module):
    """``x + CrossAttn(LN(x), LN_kv(context))`` — queries from ``x``, keys/values from ``context``."""

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(kv_dim or dim)
        self.attn = Attention(dim, heads, kv_dim)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(x + attention output, weights or None)``; ``x`` may have batch 1 against a batch-B context."""
        out, weights = self.attn(self.norm(x), self.norm_kv(context), need_weights)
        return x + out, weights


class MlpLayer(nn.Module):
    """``x + MLP(LN(x))``."""

    def __init__(self, dim: int, ratio: float = 4.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual MLP on the last dimension."""
        return x + self.mlp(self.norm(x))


class TransformerBlock(nn.Module):
    """A standard pre-LN transformer encoder block: self-attention then MLP, both residual."""

    def __init__(self, dim: int, heads: int, ratio: float = 4.0) -> None:
        super().__init__()
        self.attn = SelfAttentionLayer(dim, heads)
        self.mlp = MlpLayer(dim, ratio)

    def zero_init_residual(self) -> TransformerBlock:
        """Zero the output projections so the block starts as the identity map."""
        for lin in (self.attn.attn.out, self.mlp.mlp.fc2):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, N, dim] → [B, N, dim]``."""
        return self.mlp(self.attn(x))
