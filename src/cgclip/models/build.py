"""``build_model(name, ...)``: the video ReID models by name — ``cgclip``, ``tfclip``, ``tap`` (DEVELOPING.md contract),
each built by the builder registered for it in :data:`cgclip.registry.MODELS`.

Options are the ``ModelConfig`` fields (defaults in :data:`DEFAULT_OPTIONS`); every model accepts all of them and
ignores those that do not concern it (``sie``/``sie_coef``/``sie_tokens``/``freeze_stem`` are consumed by
``load_clip`` and ignored here; ``v2m_logits`` and ``memory_clips`` concern ``tfclip`` only). Extra options:
``identity_names`` (identity name per training pid, for the ID text; default ``str(pid)``) and ``tfe_max_frames``
(size of the temporal-embedding tables, 64). An unknown option or an invalid value raises
:class:`cgclip.errors.ConfigError` naming it.

For ``cgclip`` the frozen text encoder embeds every caption once, duplicates once (:mod:`cgclip.models.memory_texts`);
the features become the model's Text Memory buffers. ``inference_only=True`` builds ``cgclip`` without captions (an
empty memory that ``load_state_dict`` fills from a checkpoint) for evaluation and feature extraction; such a model
cannot train.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from torch import nn

from cgclip.config import check_field
from cgclip.config_sections import ModelConfig
from cgclip.errors import ConfigError
from cgclip.models.heads import VideoReIDModel
from cgclip.models.memory_texts import caption_texts, encode_captions  # noqa: F401 (re-exported)
from cgclip.registry import MODELS

logger = logging.getLogger(__name__)

#: the registered model names (declared in :data:`cgclip.registry.MODELS`)
MODEL_NAMES = MODELS.names()

#: options that are not configuration fields: identity name per training pid, size of the TFE's temporal tables
EXTRA_OPTIONS: dict[str, Any] = {"identity_names": None, "tfe_max_frames": 64}

#: ModelConfig fields (but ``name`` and ``clip_path``) and their defaults, plus :data:`EXTRA_OPTIONS`.
DEFAULT_OPTIONS: dict[str, Any] = {
    **{f.name: f.default for f in dataclasses.fields(ModelConfig) if f.name not in ("name", "clip_path")},
    **EXTRA_OPTIONS,
}


def resolve_options(options: dict[str, Any]) -> dict[str, Any]:
    """Defaults merged with ``options``, each checked as its ``ModelConfig`` field is (type, choices, range); raise
    :class:`ConfigError` for an unknown option or a bad value."""
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown model option {unknown[0]!r}; valid options: {', '.join(DEFAULT_OPTIONS)}")
    opts = {**DEFAULT_OPTIONS, **options}
    for key in DEFAULT_OPTIONS.keys() - EXTRA_OPTIONS.keys():
        opts[key] = check_field(f"model.{key}", opts[key], ModelConfig, key)
    frames = opts["tfe_max_frames"]
    if not (isinstance(frames, int) and not isinstance(frames, bool) and frames >= 1):
        raise ConfigError(f"model option tfe_max_frames must be an integer >= 1, got {frames!r}")
    return opts


def build_model(
    name: str,
    *,
    image_encoder: nn.Module,
    num_classes: int,
    num_cameras: int = 0,
    captions: Sequence[Sequence[str]] | None = None,
    text_encoder: Any = None,
    inference_only: bool = False,
    **options: Any,
) -> VideoReIDModel:
    """Build the registered video ReID model ``name`` (``cgclip``, ``tfclip``, ``tap``) around ``image_encoder``.

    Args:
        name: model name.
        image_encoder: the (trainable) CLIP image encoder (``ClipImageEncoder`` interface).
        num_classes: number of training identities Y (pids 0..Y-1).
        num_cameras: number of cameras (informational; SIE lives in the image encoder).
        captions: ``cgclip`` only — one list of caption strings per training pid.
        text_encoder: ``cgclip`` only — frozen encoder with ``encode(list[str]) -> [n, d]`` (L2-normalised).
        inference_only: build ``cgclip`` without captions, to load a checkpoint for evaluation (cannot train).
        **options: ``ModelConfig`` fields (see :data:`DEFAULT_OPTIONS`).
    """
    MODELS[name]  # a one-line error listing the registered models when unknown
    opts = resolve_options(options)
    if not (isinstance(num_classes, int) and num_classes >= 1):
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    model: VideoReIDModel = MODELS[name].load("builder")(
        image_encoder, num_classes, opts, captions=captions, text_encoder=text_encoder, inference_only=inference_only
    )
    model.num_cameras = int(num_cameras)
    model.neck_feat = opts["neck_feat"]
    try:
        device = next(image_encoder.parameters()).device
        model.to(device)
    except StopIteration:
        pass
    logger.info(
        "built %s: %d identities, feature dim %d, %.1f M parameters",
        name,
        num_classes,
        model.feature_dim,
        sum(p.numel() for p in model.parameters()) / 1e6,
    )
    return model
