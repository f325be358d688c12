"""Resampling of a ViT positional-embedding table to another patch grid.

A CLIP checkpoint stores one positional embedding for the class token followed by a square grid of patch positions
(14×14 for ViT-B/16 at 224 px, 8×8 for the embedded tiny CLIP at 128 px). ReID runs at 256×128, i.e. a 16×8 grid
with patch size 16, so the patch part is resampled bicubically (TF-CLIP / CLIP-ReID convention); the class-token
embedding is kept as it is.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cgclip.errors import ConfigError


def square_grid(num_patches: int) -> tuple[int, int]:
    """``(g, g)`` for a table of ``g*g`` patch positions; raise ``ValueError`` if ``num_patches`` is not square."""
    side = math.isqrt(num_patches)
    if side * side != num_patches:
        raise ValueError(f"{num_patches} patch positions do not form a square grid; pass src_grid explicitly")
    return side, side


def grid_for_image(image_size: tuple[int, int], patch_size: int) -> tuple[int, int]:
    """Patch grid ``(rows, cols)`` of a ``(height, width)`` image with non-overlapping patches (stride = patch)."""
    height, width = image_size
    if height < patch_size or width < patch_size:
        raise ConfigError(
            f"data.image_size: {height}x{width} is smaller than the CLIP's patch size {patch_size}; pass at least "
            f"[{patch_size}, {patch_size}] (256x128 for the paper's ViT-B/16)"
        )
    return height // patch_size, width // patch_size


def interpolate_pos_embed(
    pos_embed: torch.Tensor,
    dst_grid: tuple[int, int],
    src_grid: tuple[int, int] | None = None,
    num_prefix_tokens: int = 1,
) -> torch.Tensor:
    """Resample a positional-embedding table ``[prefix + Hs*Ws, D]`` to ``[prefix + Hd*Wd, D]``.

    ``src_grid`` defaults to the square grid implied by the table. The prefix rows (the class token) are copied; the
    patch rows are laid out row-major as an ``Hs×Ws`` image with ``D`` channels and resized with bicubic interpolation
    (``align_corners=False``) in float32, then cast back to the input dtype. When the grids already match the input
    is returned unchanged (same tensor), so the operation is an exact identity there. Gradients flow through.
    """
    if pos_embed.dim() != 2:
        raise ValueError(f"expected a [tokens, dim] table, got shape {tuple(pos_embed.shape)}")
    prefix, patches = pos_embed[:num_prefix_tokens], pos_embed[num_prefix_tokens:]
    if src_grid is None:
        src_grid = square_grid(patches.shape[0])
    if src_grid[0] * src_grid[1] != patches.shape[0]:
        raise ValueError(f"source grid {src_grid} does not match {patches.shape[0]} patch positions")
    dst_grid = (int(dst_grid[0]), int(dst_grid[1]))
    if tuple(src_grid) == dst_grid:
        return pos_embed
    dim = patches.shape[1]
    grid = patches.float().reshape(1, src_grid[0], src_grid[1], dim).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=dst_grid, mode="bicubic", align_corners=False)
    resized = grid.permute(0, 2, 3, 1).reshape(dst_grid[0] * dst_grid[1], dim).to(pos_embed.dtype)
    return torch.cat([prefix, resized], dim=0)
