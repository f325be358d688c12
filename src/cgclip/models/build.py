"""``build_model(name, ...)``: the video ReID models by name — ``cgclip``, ``tfclip``, ``tap`` (DEVELOPING.md contract).

Options are the ``ModelConfig`` fields (defaults in :data:`DEFAULT_OPTIONS`); every model accepts all of them and
ignores those that do not concern it (``sie``/``sie_coef``/``sie_tokens``/``freeze_stem`` are consumed by
``load_clip`` and ignored here; ``v2m_logits`` and ``memory_clips`` concern ``tfclip`` only). Extra options:
``identity_names`` (identity name per training pid, for the ID text; default ``str(pid)``) and ``tfe_max_frames``
(size of the temporal-embedding tables, 64). An unknown option or an invalid value raises
:class:`cgclip.errors.ConfigError` naming it.

For ``cgclip`` the frozen text encoder embeds every caption once here (duplicates once); the features become the
model's Text Memory buffers. ``inference_only=True`` builds ``cgclip`` without captions (an empty memory that
``load_state_dict`` fills from a checkpoint) for evaluation and feature extraction; such a model cannot train.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Sequence

import torch
from torch import nn

from cgclip.errors import ConfigError
from cgclip.models.cgclip_model import TFE_OUTPUTS, CGCLIPModel
from cgclip.models.cmr import FUSION_VARIANTS, IDENTITY_MODES, TextMemory
from cgclip.models.heads import NECK_FEATS, VideoReIDModel
from cgclip.models.losses import LOGIT_SCALE_INIT
from cgclip.models.tap import TAPModel
from cgclip.models.tfclip import MEMORY_CLIPS, V2M_LOGITS, TFCLIPModel

logger = logging.getLogger(__name__)

MODEL_NAMES = ("cgclip", "tfclip", "tap")

#: ModelConfig fields and their defaults, plus the extra options ``identity_names`` and ``tfe_max_frames``.
DEFAULT_OPTIONS: dict[str, Any] = {
    "tfe_queries": 15, "tfe_blocks": 1, "tfe_output": "concat", "tfe_norm": True, "part_norm": False,
    "cmr_fusion": "c", "cmr_blocks": 2, "memory_momentum": 0.2, "static_memory": False,
    "identity_mode": "caption_idtext", "ssp_blocks": 2, "tmd": True,
    "w_v2m": 1.0, "w_tri": 1.0, "w_ce": 0.25, "triplet_margin": 0.3, "label_smoothing": 0.1,
    "sie": None, "sie_coef": 1.0, "sie_tokens": None, "freeze_stem": False, "v2m_logits": "raw", "memory_clips": "all",
    "logit_scale_init": None, "neck_feat": "before",
    "identity_names": None, "tfe_max_frames": 64,
}


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def resolve_options(options: dict[str, Any]) -> dict[str, Any]:
    """Defaults merged with ``options``, validated; raise :class:`ConfigError` for an unknown option or a bad value."""
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown model option {unknown[0]!r}; valid options: {', '.join(DEFAULT_OPTIONS)}")
    opts = {**DEFAULT_OPTIONS, **options}
    for key in ("tfe_queries", "tfe_blocks", "cmr_blocks", "ssp_blocks", "tfe_max_frames"):
        value = opts[key]
        _check(isinstance(value, int) and not isinstance(value, bool) and value >= 1,
               f"model option {key} must be an integer >= 1, got {value!r}")
    _check(opts["tfe_output"] in TFE_OUTPUTS,
           f"model option tfe_output must be one of {', '.join(TFE_OUTPUTS)}, got {opts['tfe_output']!r}")
    _check(opts["cmr_fusion"] in FUSION_VARIANTS,
           f"model option cmr_fusion must be one of {', '.join(FUSION_VARIANTS)}, got {opts['cmr_fusion']!r}")
    _check(opts["identity_mode"] in IDENTITY_MODES,
           f"model option identity_mode must be one of {', '.join(IDENTITY_MODES)}, got {opts['identity_mode']!r}")
    for key in ("w_v2m", "w_tri", "w_ce", "triplet_margin"):
        value = opts[key]
        _check(isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0,
               f"model option {key} must be a number >= 0, got {value!r}")
    _check(isinstance(opts["memory_momentum"], (int, float)) and 0.0 <= opts["memory_momentum"] <= 1.0,
           f"model option memory_momentum must be in [0, 1], got {opts['memory_momentum']!r}")
    _check(isinstance(opts["label_smoothing"], (int, float)) and 0.0 <= opts["label_smoothing"] < 1.0,
           f"model option label_smoothing must be in [0, 1), got {opts['label_smoothing']!r}")
    _check(opts["neck_feat"] in NECK_FEATS,
           f"model option neck_feat must be one of {', '.join(NECK_FEATS)}, got {opts['neck_feat']!r}")
    scale = opts["logit_scale_init"]
    _check(scale is None or isinstance(scale, (int, float)) and not isinstance(scale, bool) and 1.0 <= scale <= 100.0,
           f"model option logit_scale_init must be a scale in [1, 100] (CLIP's is 100, 1/0.07 = 14.3 at its start) "
           f"or null for the loaded CLIP's own, got {scale!r}")
    for key in ("static_memory", "tmd", "freeze_stem", "tfe_norm", "part_norm"):
        _check(isinstance(opts[key], bool), f"model option {key} must be true or false, got {opts[key]!r}")
    _check(opts["sie"] is None or isinstance(opts["sie"], bool),
           f"model option sie must be true, false or null (the model's default), got {opts['sie']!r}")
    _check(opts["sie_tokens"] in (None, "cls", "all"),
           f"model option sie_tokens must be cls, all or null (the model's default), got {opts['sie_tokens']!r}")
    _check(opts["v2m_logits"] in V2M_LOGITS,
           f"model option v2m_logits must be one of {', '.join(V2M_LOGITS)}, got {opts['v2m_logits']!r}")
    _check(opts["memory_clips"] in MEMORY_CLIPS,
           f"model option memory_clips must be one of {', '.join(MEMORY_CLIPS)}, got {opts['memory_clips']!r}")
    return opts


def caption_texts(captions: Sequence[Sequence[str]], num_classes: int, identity_mode: str,
                  identity_names: Sequence[str] | None = None, tokenizer: Any = None,
                  max_length: int | None = None) -> tuple[list[str], list[int]]:
    """Flatten per-identity captions into ``(texts, owner pid)``, appending the ID text in ``caption_idtext`` mode.

    With a ``tokenizer`` and ``max_length`` (the text tower's), caption bodies are shortened by tokens so that the ID
    sentence always fits the context (:func:`cgclip.captions.idtext.apply_id_text_fitted`); the count is logged.
    """
    from cgclip.captions.idtext import apply_id_text, apply_id_text_fitted

    _check(len(captions) == num_classes,
           f"got captions for {len(captions)} identities but the model has {num_classes} training identities; "
           "pass one caption list per relabelled training pid")
    if identity_names is not None:
        _check(len(identity_names) == num_classes,
               f"identity_names has {len(identity_names)} names for {num_classes} training identities")
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
        _check(bool(caps), f"training identity {name} (pid {pid}) has no caption; give every identity at least one "
                           "caption or use identity_mode caption_idtext")
        texts.extend(caps)
        owners.extend([pid] * len(caps))
    if shortened:
        logger.info("ID text: shortened %d of %d captions so that the ID sentence fits %d tokens", shortened,
                    len(texts), max_length)
    return texts, owners


def encode_captions(text_encoder: Any, texts: list[str]) -> torch.Tensor:
    """Features ``[len(texts), d]`` of ``texts`` from the frozen text encoder, each distinct text encoded once."""
    unique = list(dict.fromkeys(texts))
    with torch.no_grad():
        feats = text_encoder.encode(unique).detach().float().cpu()
    index = {t: i for i, t in enumerate(unique)}
    return feats[torch.tensor([index[t] for t in texts], dtype=torch.long)]


def build_model(name: str, *, image_encoder: nn.Module, num_classes: int, num_cameras: int = 0,
                captions: Sequence[Sequence[str]] | None = None, text_encoder: Any = None,
                inference_only: bool = False, **options: Any) -> VideoReIDModel:
    """Build the video ReID model ``name`` (``cgclip``, ``tfclip`` or ``tap``) around ``image_encoder``.

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
    if name not in MODEL_NAMES:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    opts = resolve_options(options)
    _check(isinstance(num_classes, int) and num_classes >= 1,
           f"num_classes must be a positive integer, got {num_classes!r}")
    common = dict(w_tri=opts["w_tri"], w_ce=opts["w_ce"], triplet_margin=opts["triplet_margin"],
                  label_smoothing=opts["label_smoothing"])
    scale = math.exp(LOGIT_SCALE_INIT) if opts["logit_scale_init"] is None else float(opts["logit_scale_init"])
    if name == "tap":
        model: VideoReIDModel = TAPModel(image_encoder, num_classes, **common)
    elif name == "tfclip":
        model = TFCLIPModel(image_encoder, num_classes, ssp_blocks=opts["ssp_blocks"], tmd=opts["tmd"],
                            v2m_logits=opts["v2m_logits"], memory_clips=opts["memory_clips"], w_v2m=opts["w_v2m"],
                            logit_scale_init=scale, **common)
    else:
        memory = _build_memory(image_encoder, num_classes, captions, text_encoder, inference_only, opts)
        model = CGCLIPModel(image_encoder, num_classes, memory, tfe_queries=opts["tfe_queries"],
                            tfe_blocks=opts["tfe_blocks"], tfe_output=opts["tfe_output"],
                            tfe_max_frames=opts["tfe_max_frames"], tfe_norm=opts["tfe_norm"],
                            part_norm=opts["part_norm"],
                            cmr_fusion=opts["cmr_fusion"],
                            cmr_blocks=opts["cmr_blocks"], w_v2m=opts["w_v2m"],
                            logit_scale_init=scale, **common)
    model.num_cameras = int(num_cameras)
    model.neck_feat = opts["neck_feat"]
    try:
        device = next(image_encoder.parameters()).device
        model.to(device)
    except StopIteration:
        pass
    logger.info("built %s: %d identities, feature dim %d, %.1f M parameters", name, num_classes, model.feature_dim,
                sum(p.numel() for p in model.parameters()) / 1e6)
    return model


def _build_memory(image_encoder: nn.Module, num_classes: int, captions: Sequence[Sequence[str]] | None,
                  text_encoder: Any, inference_only: bool, opts: dict[str, Any]) -> TextMemory:
    dim = int(image_encoder.embed_dim)
    kwargs = dict(momentum=float(opts["memory_momentum"]), static=opts["static_memory"],
                  id_embedding=opts["identity_mode"] == "caption_idemb")
    if captions is None:
        _check(inference_only, "model cgclip needs captions (one list per training identity) and a text encoder "
                               "for training; pass captions=... or build with inference_only=True to only load weights")
        return TextMemory.placeholder(num_classes, dim, **kwargs)
    _check(text_encoder is not None, "model cgclip needs the frozen CLIP text encoder (text_encoder=...) to embed "
                                     "its captions")
    texts, owners = caption_texts(captions, num_classes, opts["identity_mode"], opts["identity_names"],
                                  getattr(text_encoder, "tokenizer", None), getattr(text_encoder, "max_length", None))
    feats = encode_captions(text_encoder, texts)
    _check(feats.shape == (len(texts), dim),
           f"text encoder returned features of shape {tuple(feats.shape)}, expected ({len(texts)}, {dim}) "
           "(the image encoder's embed_dim); use the text tower of the same CLIP checkpoint")
    logger.info("Text Memory: %d captions for %d identities (%s)", len(texts), num_classes, opts["identity_mode"])
    return TextMemory(feats, torch.tensor(owners, dtype=torch.long), num_classes, **kwargs)
