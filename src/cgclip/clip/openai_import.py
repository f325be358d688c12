"""Convert an OpenAI CLIP checkpoint (``.pt``: a state dict or a TorchScript archive) into a Hugging Face CLIP folder.

OpenAI's layout (``visual.conv1.weight``, ``visual.class_embedding``, ``visual.positional_embedding``,
``visual.transformer.resblocks.N.attn.in_proj_weight``, ..., ``transformer.resblocks.N...``, ``token_embedding``,
``ln_final``, ``text_projection``, ``logit_scale``) maps one-to-one onto ``transformers.CLIPModel``, except that the
fused attention input projection is split into q/k/v and the two projection matrices are transposed. The
architecture is inferred from tensor shapes (width, layers, patch size, grid, context length, vocabulary, joint
dimension; heads = width / 64 as in every OpenAI CLIP). Only ViT visual towers are supported.

OpenAI's BPE vocabulary is not stored in the ``.pt``; the tokenizer files are copied from a Hugging Face CLIP
tokenizer directory (``vocab.json`` + ``merges.txt`` …, e.g. those of ``openai/clip-vit-base-patch16``, which use the
same vocabulary as every OpenAI CLIP model).

Files are read safely: state dicts with ``torch.load(weights_only=True)``, TorchScript archives with
:mod:`cgclip.clip.torchscript_reader` (no code is executed).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from cgclip.clip.pos_embed import square_grid
from cgclip.clip.torchscript_reader import is_torchscript_archive, read_torchscript_state_dict
from cgclip.errors import CheckpointError
from cgclip.io_utils import check_output_dir

logger = logging.getLogger(__name__)

HEAD_WIDTH = 64
IGNORED_KEYS = ("input_resolution", "context_length", "vocab_size")
_BLOCK = re.compile(r"^(visual\.transformer|transformer)\.resblocks\.(\d+)\.(.+)$")
_BLOCK_PARTS = {
    "attn.out_proj.weight": "self_attn.out_proj.weight",
    "attn.out_proj.bias": "self_attn.out_proj.bias",
    "ln_1.weight": "layer_norm1.weight",
    "ln_1.bias": "layer_norm1.bias",
    "ln_2.weight": "layer_norm2.weight",
    "ln_2.bias": "layer_norm2.bias",
    "mlp.c_fc.weight": "mlp.fc1.weight",
    "mlp.c_fc.bias": "mlp.fc1.bias",
    "mlp.c_proj.weight": "mlp.fc2.weight",
    "mlp.c_proj.bias": "mlp.fc2.bias",
}
_DIRECT = {
    "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
    "visual.class_embedding": "vision_model.embeddings.class_embedding",
    "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "visual.ln_pre.weight": "vision_model.pre_layrnorm.weight",
    "visual.ln_pre.bias": "vision_model.pre_layrnorm.bias",
    "visual.ln_post.weight": "vision_model.post_layernorm.weight",
    "visual.ln_post.bias": "vision_model.post_layernorm.bias",
    "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
    "positional_embedding": "text_model.embeddings.position_embedding.weight",
    "ln_final.weight": "text_model.final_layer_norm.weight",
    "ln_final.bias": "text_model.final_layer_norm.bias",
    "logit_scale": "logit_scale",
}
_TRANSPOSED = {"visual.proj": "visual_projection.weight", "text_projection": "text_projection.weight"}


def read_openai_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of an OpenAI CLIP ``.pt`` (state dict, ``{"state_dict": ...}`` wrapper or TorchScript), read safely."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("OpenAI CLIP checkpoint not found; pass the .pt file (e.g. ViT-B-16.pt)", path=path)
    if is_torchscript_archive(path):
        state: Any = read_torchscript_state_dict(path)
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # weights_only refuses arbitrary objects; corrupt files fail too
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(
                f"cannot read as a tensor-only checkpoint ({msg}); pass an OpenAI CLIP .pt "
                "(state dict or TorchScript archive)",
                path=path,
            ) from exc
    for wrapper in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError("does not contain a state dict of tensors", path=path)
    out = {}
    for key, value in state.items():
        key = key[len("module.") :] if key.startswith("module.") else key
        out[key] = value
    return out


def _count_blocks(state: Mapping[str, torch.Tensor], prefix: str) -> int:
    ids = {int(m.group(2)) for k in state if (m := _BLOCK.match(k)) and m.group(1) == prefix}
    if not ids or ids != set(range(len(ids))):
        raise CheckpointError(f"no consecutive '{prefix}.resblocks.N' blocks found; not an OpenAI ViT CLIP state dict")
    return len(ids)


def infer_config(state: Mapping[str, torch.Tensor], special_ids: Mapping[str, int] | None = None) -> dict[str, Any]:
    """``CLIPConfig`` keyword arguments for an OpenAI ViT CLIP state dict (architecture from tensor shapes)."""
    if any(k.startswith(("visual.layer1.", "visual.attnpool.")) for k in state):
        raise CheckpointError(
            "this is a ResNet CLIP (RN50/RN101/...); only ViT CLIP models (ViT-B/32, ViT-B/16, "
            "ViT-L/14, ...) are supported"
        )
    required = (
        "visual.conv1.weight",
        "visual.positional_embedding",
        "visual.proj",
        "token_embedding.weight",
        "positional_embedding",
        "ln_final.weight",
        "text_projection",
    )
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"not an OpenAI CLIP state dict: missing {', '.join(missing)}")
    conv = state["visual.conv1.weight"]
    v_width, patch = int(conv.shape[0]), int(conv.shape[-1])
    grid = square_grid(int(state["visual.positional_embedding"].shape[0]) - 1)
    t_width = int(state["ln_final.weight"].shape[0])
    v_mlp = int(state["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0])
    t_mlp = int(state["transformer.resblocks.0.mlp.c_fc.weight"].shape[0])
    embed_dim = int(state["text_projection"].shape[1])
    text = dict(
        vocab_size=int(state["token_embedding.weight"].shape[0]),
        hidden_size=t_width,
        intermediate_size=t_mlp,
        num_hidden_layers=_count_blocks(state, "transformer"),
        num_attention_heads=t_width // HEAD_WIDTH,
        max_position_embeddings=int(state["positional_embedding"].shape[0]),
        hidden_act="quick_gelu",
        projection_dim=embed_dim,
        **dict(special_ids or {}),
    )
    vision = dict(
        hidden_size=v_width,
        intermediate_size=v_mlp,
        num_hidden_layers=_count_blocks(state, "visual.transformer"),
        num_attention_heads=v_width // HEAD_WIDTH,
        image_size=grid[0] * patch,
        patch_size=patch,
        hidden_act="quick_gelu",
        projection_dim=embed_dim,
    )
    return dict(text_config=text, vision_config=vision, projection_dim=embed_dim)


def openai_to_hf_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename/split/transpose OpenAI CLIP tensors into ``transformers.CLIPModel`` names; unknown keys are an error."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state.items():
        if key in _DIRECT:
            out[_DIRECT[key]] = value
        elif key in _TRANSPOSED:
            out[_TRANSPOSED[key]] = value.t().contiguous()
        elif (m := _BLOCK.match(key)) is not None:
            tower = "vision_model" if m.group(1) == "visual.transformer" else "text_model"
            base, part = f"{tower}.encoder.layers.{m.group(2)}.", m.group(3)
            if part in ("attn.in_proj_weight", "attn.in_proj_bias"):
                kind = part.rsplit("_", 1)[1]
                for name, chunk in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0)):
                    out[f"{base}self_attn.{name}.{kind}"] = chunk.contiguous()
            elif part in _BLOCK_PARTS:
                out[base + _BLOCK_PARTS[part]] = value
            elif part != "attn_mask":
                unknown.append(key)
        elif key.split(".")[-1] not in IGNORED_KEYS and key != "attn_mask":
            unknown.append(key)
    if unknown:
        raise CheckpointError(
            f"unexpected tensors for an OpenAI ViT CLIP ({len(unknown)}, e.g. {unknown[0]}); "
            "this architecture is not supported by the converter"
        )
    return out


def import_openai_clip(
    pt_path: str | Path,
    out_dir: str | Path,
    tokenizer_dir: str | Path | None,
    dtype: torch.dtype = torch.float32,
    overwrite: bool = False,
) -> Path:
    """Convert ``pt_path`` into a Hugging Face CLIP directory ``out_dir`` (written atomically); return ``out_dir``.

    ``tokenizer_dir`` must hold a Hugging Face CLIP tokenizer (OpenAI's vocabulary is not inside the ``.pt``).
    Weights are stored as ``dtype`` (float32 by default; OpenAI ships float16).
    """
    from transformers import CLIPConfig, CLIPModel

    from cgclip.clip.random_clip import save_clip_model, tokenizer_vocab
    from cgclip.clip.tokenizer import special_token_ids

    pt_path = Path(pt_path)
    check_output_dir(
        out_dir,
        lambda p: overwrite and p.is_dir(),
        fix="choose a new --out (or pass --overwrite to replace a folder)",
    )
    if tokenizer_dir is None:
        raise CheckpointError(
            "OpenAI .pt files do not contain the BPE vocabulary; pass --tokenizer DIR, a Hugging Face "
            "CLIP tokenizer directory (vocab.json, merges.txt, e.g. from openai/clip-vit-base-patch16)",
            path=pt_path,
        )
    state = read_openai_checkpoint(pt_path)
    try:
        vocab = tokenizer_vocab(tokenizer_dir)
        ids = special_token_ids(vocab)
    except (KeyError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"not a CLIP tokenizer directory ({exc}); pass the folder holding vocab.json and "
            "merges.txt of a Hugging Face CLIP model",
            path=tokenizer_dir,
        ) from exc
    try:
        config = CLIPConfig(**infer_config(state, ids))
        hf_state = openai_to_hf_state_dict(state)
    except CheckpointError as exc:
        raise CheckpointError(str(exc), path=pt_path) from None
    if len(vocab) > config.text_config.vocab_size:
        raise CheckpointError(
            f"tokenizer has {len(vocab)} tokens but the checkpoint's token embedding only "
            f"{config.text_config.vocab_size}; pass the tokenizer of this model",
            path=tokenizer_dir,
        )
    model = CLIPModel(config)
    try:
        model.load_state_dict({k: v.to(dtype) for k, v in hf_state.items()}, strict=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).strip().splitlines()[:2])[:300]
        raise CheckpointError(f"tensor shapes do not fit the inferred architecture ({first})", path=pt_path) from exc
    path = save_clip_model(model, out_dir, tokenizer_dir, overwrite=overwrite, dtype=dtype)
    logger.info(
        "imported %s (vision %dx%d layers, patch %d, %d px; text %dx%d) into %s",
        pt_path,
        config.vision_config.hidden_size,
        config.vision_config.num_hidden_layers,
        config.vision_config.patch_size,
        config.vision_config.image_size,
        config.text_config.hidden_size,
        config.text_config.num_hidden_layers,
        path,
    )
    return path
