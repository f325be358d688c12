"""CG-CLIP's Text Memory contents: per-identity captions flattened with the identity strategy's ID text and embedded
once by the frozen CLIP text tower."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from cgclip.errors import ConfigError
from cgclip.models.cmr import TextMemory

logger = logging.getLogger(__name__)


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def caption_texts(
    captions: Sequence[Sequence[str]],
    num_classes: int,
    identity_mode: str,
    identity_names: Sequence[str] | None = None,
    tokenizer: Any = None,
    max_length: int | None = None,
) -> tuple[list[str], list[int]]:
    """Flatten per-identity captions into ``(texts, owner pid)``, appending the ID text in ``caption_idtext`` mode.

    With a ``tokenizer`` and ``max_length`` (the text tower's), caption bodies are shortened by tokens so that the ID
    sentence always fits the context (:func:`cgclip.captions.idtext.apply_id_text_fitted`); the count is logged.
    """
    from cgclip.captions.idtext import apply_id_text, apply_id_text_fitted

    _check(
        len(captions) == num_classes,
        f"got captions for {len(captions)} identities but the model has {num_classes} training identities; "
        "pass one caption list per relabelled training pid",
    )
    if identity_names is not None:
        _check(
            len(identity_names) == num_classes,
            f"identity_names has {len(identity_names)} names for {num_classes} training identities",
        )
    texts: list[str] = []
    owners: list[int] = []
    shortened = 0
    for pid, caps in enumerate(captions):
        if isinstance(caps, str):
            caps = [caps]
        caps = [str(c) for c in caps if str(c).strip()]
        name = str(identity_names[pid]) if identity_names is not None else str(pid)
        if identity_mode == "caption_idtext" and tokenizer is not None and max_length:
            caps, cut = apply_id_text_fitted(caps, name, tokenizer, int(max_length))
            shortened += cut
        elif identity_mode == "caption_idtext":
            caps = apply_id_text(caps, name)
        _check(
            bool(caps),
            f"training identity {name} (pid {pid}) has no caption; give every identity at least one "
            "caption or use identity_mode caption_idtext",
        )
        texts.extend(caps)
        owners.extend([pid] * len(caps))
    if shortened:
        logger.info(
            "ID text: shortened %d of %d captions so that the ID sentence fits %d tokens",
            shortened,
            len(texts),
            max_length,
        )
    return texts, owners


def encode_captions(text_encoder: Any, texts: list[str]) -> torch.Tensor:
    """Features ``[len(texts), d]`` of ``texts`` from the frozen text encoder, each distinct text encoded once."""
    unique = list(dict.fromkeys(texts))
    with torch.no_grad():
        feats = text_encoder.encode(unique).detach().float().cpu()
    index = {t: i for i, t in enumerate(unique)}
    return feats[torch.tensor([index[t] for t in texts], dtype=torch.long)]


def build_text_memory(
    image_encoder: nn.Module,
    num_classes: int,
    captions: Sequence[Sequence[str]] | None,
    text_encoder: Any,
    inference_only: bool,
    opts: dict[str, Any],
) -> TextMemory:
    """CG-CLIP's Text Memory: every caption (with the ID text of ``opts['identity_mode']``) embedded once by the
    frozen ``text_encoder``; an empty placeholder for ``inference_only`` models (filled from a checkpoint)."""
    dim = int(image_encoder.embed_dim)
    kwargs = dict(
        momentum=float(opts["memory_momentum"]),
        static=opts["static_memory"],
        id_embedding=opts["identity_mode"] == "caption_idemb",
    )
    if captions is None:
        _check(
            inference_only,
            "model cgclip needs captions (one list per training identity) and a text encoder "
            "for training; pass captions=... or build with inference_only=True to only load weights",
        )
        return TextMemory.placeholder(num_classes, dim, **kwargs)
    _check(
        text_encoder is not None,
        "model cgclip needs the frozen CLIP text encoder (text_encoder=...) to embed its captions",
    )
    texts, owners = caption_texts(
        captions,
        num_classes,
        opts["identity_mode"],
        opts["identity_names"],
        getattr(text_encoder, "tokenizer", None),
        getattr(text_encoder, "max_length", None),
    )
    feats = encode_captions(text_encoder, texts)
    _check(
        feats.shape == (len(texts), dim),
        f"text encoder returned features of shape {tuple(feats.shape)}, expected ({len(texts)}, {dim}) "
        "(the image encoder's embed_dim); use the text tower of the same CLIP checkpoint",
    )
    logger.info("Text Memory: %d captions for %d identities (%s)", len(texts), num_classes, opts["identity_mode"])
    return TextMemory(feats, torch.tensor(owners, dtype=torch.long), num_classes, **kwargs)
