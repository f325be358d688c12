"""Randomly initialised CLIP checkpoints in Hugging Face format (for tests and as the start of pretraining).

``save_random_clip(out_dir, size="tiny")`` writes ``config.json``, ``model.safetensors`` and CLIP tokenizer files, the
same layout as a real checkpoint such as ``openai/clip-vit-base-patch16``, so :func:`cgclip.clip.backbone.load_clip`
loads it through the normal code path.

Sizes:

* ``tiny`` — a conv stem (:data:`TINY_STEM`, stride 8,
  :mod:`cgclip.clip.conv_stem`) in front of a vision transformer of width 192, 4 layers, 3 heads, ``image_size``
  128 (a square 16×16 positional grid; ReID crops of 128×64 use the 16×8 resampling of it, see
  :mod:`cgclip.clip.pos_embed`); text width 256, 4 layers, 4 heads, 77 positions; joint dimension 256.
* ``tiny-cnn`` — the embedded default's architecture (tiny-clip-v5): the same transformer behind a stride-16 conv
  stem (:data:`TINY_CNN_STEM`, 8×4 tokens at 128×64, as many as ``tiny-vit``) whose global max-pool is added to
  every token (``global_pool``): on the number probe it reads 15 % of held-out numbers (40 % of ones digits) after
  300 steps, where ``tiny-vit`` reads 1 % after 1000.
* ``tiny-vit`` — the same with a plain 16-px patch embedding (8×8 grid; 8×4 at 128×64): tiny-clip-v4's
  architecture, a fast stand-in for a real ViT in tests.
* ``vit-b-16`` — the OpenAI ViT-B/16 layout: vision 768/12 layers/12 heads, patch 16, 224 px (14×14 grid); text
  512/12 layers/8 heads, vocabulary 49408; joint dimension 512. About 150 M parameters (0.6 GB in float32).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import CLIPConfig, CLIPModel

from cgclip.clip.conv_stem import apply_stem, conv_stem_config
from cgclip.clip.files import hf_quiet
from cgclip.clip.sizes import SIZES, TINY_SIZES  # declared without torch for the command line
from cgclip.clip.tokenizer import TOKENIZER_FILES, build_clip_tokenizer, special_token_ids
from cgclip.errors import CheckpointError
from cgclip.io_utils import read_json

logger = logging.getLogger(__name__)

#: Channels of the tiny CLIP's conv stem (stride 8: 16×8 tokens at 128×64), chosen with
#: ``benchmarks/probe_number_reading.py`` (docs/RESULTS.md).
TINY_STEM = (32, 64, 128, 192)
#: Channels of the ``tiny-cnn`` stem (stride 16, with the global max-pool added to every token).
TINY_CNN_STEM = (16, 32, 64, 128, 192)


def clip_config(size: str, vocab: dict[str, int]) -> CLIPConfig:
    """The :class:`transformers.CLIPConfig` of a named ``size`` for a tokenizer vocabulary ``vocab``."""
    ids = special_token_ids(vocab)
    if size in TINY_SIZES:
        text: dict[str, Any] = dict(
            vocab_size=len(vocab),
            hidden_size=256,
            intermediate_size=1024,
            num_hidden_layers=4,
            num_attention_heads=4,
            max_position_embeddings=77,
            **ids,
        )
        vision: dict[str, Any] = dict(
            hidden_size=192,
            intermediate_size=768,
            num_hidden_layers=4,
            num_attention_heads=3,
            image_size=128,
            patch_size=16,
        )
        if size == "tiny":
            vision.update(conv_stem_config(TINY_STEM))
        elif size == "tiny-cnn":
            vision.update(conv_stem_config(TINY_CNN_STEM, global_pool=True))
        projection_dim = 256
    elif size == "vit-b-16":
        text = dict(
            vocab_size=max(49408, len(vocab)),
            hidden_size=512,
            intermediate_size=2048,
            num_hidden_layers=12,
            num_attention_heads=8,
            max_position_embeddings=77,
            **ids,
        )
        vision = dict(
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            image_size=224,
            patch_size=16,
        )
        projection_dim = 512
    else:
        raise ValueError(f"unknown CLIP size {size!r}; choose one of {', '.join(SIZES)}")
    for tower in (text, vision):
        tower["projection_dim"] = projection_dim
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim)


def copy_tokenizer(src_dir: str | Path, dst_dir: str | Path) -> None:
    """Copy the tokenizer files of a Hugging Face CLIP directory (those present among the usual names)."""
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    names = [n for n in (*TOKENIZER_FILES, "tokenizer.json") if (src_dir / n).is_file()]
    if not {"vocab.json", "merges.txt"} <= set(names) and "tokenizer.json" not in names:
        raise CheckpointError(
            "no CLIP tokenizer files (vocab.json + merges.txt or tokenizer.json); pass a Hugging "
            "Face CLIP tokenizer directory",
            path=src_dir,
        )
    dst_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(src_dir / name, dst_dir / name)


def tokenizer_vocab(tok_dir: str | Path) -> dict[str, int]:
    """Token → id mapping of a saved CLIP tokenizer (``vocab.json``, else via ``transformers``)."""
    tok_dir = Path(tok_dir)
    if (tok_dir / "vocab.json").is_file():
        return read_json(tok_dir / "vocab.json")
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(tok_dir), local_files_only=True).get_vocab()


def finalize_dir(tmp_dir: Path, out_dir: Path, overwrite: bool) -> Path:
    """Move a fully written checkpoint ``tmp_dir`` onto ``out_dir`` (replacing it only when ``overwrite``)."""
    if out_dir.exists():
        if any(out_dir.iterdir()) and not overwrite:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            raise CheckpointError(
                "output directory exists and is not empty; choose a new directory or delete it", path=out_dir
            )
        old = out_dir.with_name(f".{out_dir.name}.old-{tmp_dir.name}")
        out_dir.rename(old)
        tmp_dir.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp_dir.rename(out_dir)
    return out_dir


def save_clip_model(
    model: CLIPModel,
    out_dir: str | Path,
    tokenizer_dir: str | Path | None = None,
    *,
    overwrite: bool = False,
    dtype: torch.dtype | None = None,
) -> Path:
    """Save ``model`` (and the tokenizer of ``tokenizer_dir``) atomically as a Hugging Face CLIP directory."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        if dtype is not None:
            model = model.to(dtype)
        with hf_quiet():
            model.save_pretrained(str(tmp_dir), safe_serialization=True)
        if tokenizer_dir is not None:
            copy_tokenizer(tokenizer_dir, tmp_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return finalize_dir(tmp_dir, out_dir, overwrite)


def save_random_clip(
    out_dir: str | Path,
    size: str = "tiny",
    seed: int = 0,
    tokenizer_dir: str | Path | None = None,
    *,
    dtype: torch.dtype | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a randomly initialised CLIP of ``size`` (``"tiny"`` or ``"vit-b-16"``) to ``out_dir``; return the path.

    The tokenizer is copied from ``tokenizer_dir`` when given, else built offline from
    :func:`cgclip.clip.tokenizer.default_corpus`. Weights are drawn with ``torch.manual_seed(seed)``, so the same
    arguments give the same files. ``dtype`` (e.g. ``torch.float16``) shrinks the file of large sizes.
    """
    if size not in SIZES:
        raise ValueError(f"unknown CLIP size {size!r}; choose one of {', '.join(SIZES)}")
    with tempfile.TemporaryDirectory(prefix="cgclip-tok-") as scratch:
        if tokenizer_dir is None:
            tokenizer_dir = Path(scratch) / "tokenizer"
            build_clip_tokenizer(tokenizer_dir)
        config = clip_config(size, tokenizer_vocab(tokenizer_dir))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = CLIPModel(config)
            apply_stem(model.vision_model)
        path = save_clip_model(model, out_dir, tokenizer_dir, overwrite=overwrite, dtype=dtype)
    logger.info("wrote random %s CLIP (seed %d) to %s", size, seed, path)
    return path
