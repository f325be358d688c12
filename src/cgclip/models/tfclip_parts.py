"""TF-CLIP's two modules as released (AsuradaYuci/TF-CLIP, ``model/make_model_clipreid.py``): TMD and SSP.

* :class:`TemporalMemoryDiffusion` (``CrossFramelAttentionBlock``, lines 55–102; one layer, ``D // 64`` heads, line
  193). Per frame, a message token ``m_t = Linear(mean of the frame's 1+P tokens)`` (line 86; no temporal
  embedding); the T message tokens of a tracklet exchange information, ``m = m + MHA(LN(m))`` (lines 90–93;
  attention only, no MLP); each message token is appended to its frame's tokens, layout ``[CLS, patches…, message]``
  (line 96), and a full pre-LN transformer block runs over those ``1+P+1`` tokens, ``x = x + MHA(LN(x))``,
  ``x = x + MLP(LN(x))`` with a 4× QuickGELU MLP (lines 98–101). The frame feature is the **mean of all 1+P+1
  output tokens** (line 273). Default initialisation (non-zero; attention in-projections as
  ``nn.MultiheadAttention``'s: Xavier-uniform, zero biases), so TMD does not start as the identity.
* :class:`SequenceSpecificPrompt` (``ImageSpecificPrompt``, lines 389–428, with ``PromptGeneratorLayer`` 356–386 and
  ``MulitHeadAttention`` 323–353). The tracklet's visual tokens go through ``LN → Linear → LN``, the memory rows
  through ``LN → Linear``; each of the ``layers`` (2) layers is self-attention over the memory rows (pre-LN),
  cross-attention from the memory rows to the visual tokens (LN on the queries only), and an MLP
  (``LN → Linear 4× → QuickGELU → Dropout → Linear``, dropout on the residual); query/key/value projections have no
  bias, the attention output projection has dropout 0.1; the output is ``Linear(LN(x))``. Every Linear is
  truncated-normal (std 0.02) with zero bias and every LayerNorm weight 1, bias 0 (lines 411–418), so the prompt is
  not zero at initialisation. The released module's unused ``alpha`` and ``norm`` parameters are left out (they
  take no part in the output).

Attention is :class:`cgclip.models.fusion.Attention` (batch-first; fused kernels on GPU).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cgclip.models.fusion import Attention, default_heads


class QuickGELU(nn.Module):
    """CLIP's GELU approximation ``x · sigmoid(1.702 x)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the activation elementwise."""
        return x * torch.sigmoid(1.702 * x)


def quick_gelu_mlp(dim: int, ratio: int = 4, dropout: float = 0.0) -> nn.Sequential:
    """``Linear(dim, ratio·dim) → QuickGELU → [Dropout] → Linear(ratio·dim, dim)`` (as CLIP's and TF-CLIP's MLPs)."""
    layers: list[nn.Module] = [nn.Linear(dim, ratio * dim), QuickGELU()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(ratio * dim, dim))
    return nn.Sequential(*layers)


def init_like_torch_mha(attn: Attention) -> Attention:
    """Initialise ``attn`` as ``nn.MultiheadAttention`` initialises itself: one Xavier-uniform bound over the stacked
    ``[3·dim, dim]`` query/key/value projection, zero projection biases, default output weight with a zero bias."""
    bound = math.sqrt(6.0 / (attn.dim + 3 * attn.dim))
    for lin in (attn.q, attn.kv):
        nn.init.uniform_(lin.weight, -bound, bound)
        if lin.bias is not None:
            nn.init.zeros_(lin.bias)
    nn.init.zeros_(attn.out.bias)
    return attn


class TemporalMemoryDiffusion(nn.Module):
    """TMD: frame tokens ``[B, T, 1+P, D]`` → frame features ``[B, T, D]`` (see the module docstring).

    Args:
        dim: token width D.
        heads: attention heads (default ``D // 64``: 12 at ViT-B/16, as released).
    """

    def __init__(self, dim: int, heads: int | None = None) -> None:
        super().__init__()
        heads = heads or default_heads(dim)
        self.message = nn.Linear(dim, dim)
        self.message_norm = nn.LayerNorm(dim)
        self.message_attn = init_like_torch_mha(Attention(dim, heads))
        self.norm1 = nn.LayerNorm(dim)
        self.attn = init_like_torch_mha(Attention(dim, heads))
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = quick_gelu_mlp(dim)

    def messages(self, tokens: torch.Tensor) -> torch.Tensor:
        """Temporal memory construction: message tokens ``[B, T, D]`` after attention across the T frames."""
        msg = self.message(tokens.mean(dim=2))
        h = self.message_norm(msg)
        return msg + self.message_attn(h, h)[0]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Frame features ``[B, T, D]``: the mean of each frame's ``1+P+1`` tokens after memory diffusion."""
        b, t, n, d = tokens.shape
        msg = self.messages(tokens)
        x = torch.cat([tokens, msg.unsqueeze(2).to(tokens.dtype)], dim=2).reshape(b * t, n + 1, d)
        h = self.norm1(x)
        x = x + self.attn(h, h)[0]
        x = x + self.mlp(self.norm2(x))
        return x.mean(dim=1).reshape(b, t, d)


class PromptLayer(nn.Module):
    """One SSP layer: self-attention over the memory rows → cross-attention to the visual tokens → MLP."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.self_attn = Attention(dim, heads, qkv_bias=False)
        self.norm2 = nn.LayerNorm(dim)
        self.cross_attn = Attention(dim, heads, qkv_bias=False)
        self.norm3 = nn.LayerNorm(dim)
        self.mlp = quick_gelu_mlp(dim, dropout=dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """``x [B, Y, dim]`` (memory rows), ``visual [B, N, dim]`` → ``[B, Y, dim]``."""
        h = self.norm1(x)
        x = x + self.dropout(self.self_attn(h, h)[0])
        x = x + self.dropout(self.cross_attn(self.norm2(x), visual)[0])
        return x + self.dropout(self.mlp(self.norm3(x)))


class SequenceSpecificPrompt(nn.Module):
    """SSP: the prompt ``[B, Y, d]`` that refines the memory ``M [Y, d]`` for each tracklet (``M' = M + prompt``).

    Args:
        dim: width d of the memory rows and visual tokens (CLIP's joint embedding width).
        layers: number of :class:`PromptLayer` (2, as released).
        heads: attention heads (default ``d // 64``: 8 at d = 512, as released).
        dropout: dropout of the attention outputs and the MLP (0.1, as released).
    """

    def __init__(self, dim: int, layers: int = 2, heads: int | None = None, dropout: float = 0.1) -> None:
        super().__init__()
        heads = heads or default_heads(dim)
        self.visual_proj = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.LayerNorm(dim))
        self.memory_proj = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim))
        self.layers = nn.ModuleList(PromptLayer(dim, heads, dropout) for _ in range(layers))
        self.out_proj = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim))
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(self, memory: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """``memory [Y, d]`` (shared) or ``[B, Y, d]``, ``visual [B, N, d]`` → prompt ``[B, Y, d]``."""
        visual = self.visual_proj(visual)
        x = self.memory_proj(memory)
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(visual.shape[0], -1, -1)
        for layer in self.layers:
            x = layer(x, visual)
        return self.out_proj(x)
