"""Building the model a configuration names — for training (from a CLIP checkpoint, with captions) and for inference
(from a run folder's weights, frames only).

A run keeps a copy of its CLIP ``config.json`` in ``RUN/clip/``, so the inference model can be rebuilt from the run
alone: the architecture comes from that config and every weight from the run's checkpoint (the image encoder is
fine-tuned, so the original CLIP weights are not needed; captions are not needed either).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from cgclip.config import Config, ConfigError, ModelConfig, check_field, config_to_dict, resolve_model_defaults
from cgclip.errors import CheckpointError
from cgclip.io_utils import read_json_object
from cgclip.train.distributed import unwrap

log = logging.getLogger(__name__)


def resolve_clip_path(clip_path: str | None) -> Path:
    """``clip_path``, or the embedded tiny CLIP shipped with the package (verified) when it is None or
    ``"default"``."""
    if clip_path and clip_path != "default":
        from cgclip.clip.files import check_clip_dir

        check_clip_dir(clip_path)  # before any work: a missing config.json or pickle weights is one line
        return Path(clip_path)
    from cgclip.clip.embedded import embedded_clip_dir

    return embedded_clip_dir()


def model_options(model: ModelConfig) -> dict[str, Any]:
    """The ``build_model`` options of a ModelConfig (every field but ``name`` and ``clip_path``)."""
    opts = dataclasses.asdict(model)
    opts.pop("name")
    opts.pop("clip_path")
    return opts


def _start_scale(model_cfg: ModelConfig, clip_scale: float) -> float:
    """The configured v2m / v2rm logit scale, or the loaded CLIP's trained one (clamped to CLIP's [1, 100])."""
    if model_cfg.logit_scale_init is not None:
        return float(model_cfg.logit_scale_init)
    return min(100.0, max(1.0, float(clip_scale)))


def build_training_model(
    model_cfg: ModelConfig,
    *,
    clip_path: str | Path,
    image_size: Sequence[int],
    num_classes: int,
    num_cameras: int,
    identities: Sequence[str],
    captions: Sequence[Sequence[str]] | None = None,
    trained_cameras: Sequence[int] | None = None,
) -> torch.nn.Module:
    """Load CLIP from ``clip_path`` and build ``model_cfg.name`` for training (captions only for ``cgclip``;
    ``trained_cameras``: the camera ids of the training tracklets, for the SIE unseen-camera rule).

    Model-dependent defaults left at None (SIE) are resolved for ``model_cfg.name`` first."""
    from cgclip.models import build_model, load_clip

    model_cfg = resolve_model_defaults(model_cfg)
    clip = load_clip(
        clip_path,
        image_size=(int(image_size[0]), int(image_size[1])),
        num_cameras=num_cameras if model_cfg.sie else 0,
        sie_coef=model_cfg.sie_coef,
        sie_tokens=str(model_cfg.sie_tokens),
        freeze_stem=bool(model_cfg.freeze_stem),
        trained_cameras=trained_cameras if model_cfg.sie else None,
    )
    needs_text = model_cfg.name == "cgclip"
    model = build_model(
        model_cfg.name,
        image_encoder=clip.image,
        num_classes=num_classes,
        num_cameras=num_cameras,
        captions=list(captions) if needs_text and captions is not None else None,
        text_encoder=clip.text if needs_text else None,
        identity_names=list(identities),
        **{**model_options(model_cfg), "logit_scale_init": _start_scale(model_cfg, clip.logit_scale)},
    )
    return model


def model_description(
    cfg: Config,
    model: torch.nn.Module,
    num_classes: int,
    num_cameras: int,
    identities: Sequence[str],
    clip_path: Path,
    epoch: int | None,
    cameras: Sequence[int] | None = None,
) -> dict[str, Any]:
    """``model.json``: what is needed to rebuild the model for inference and how to feed it (``sie_cameras``: the
    camera ids training saw; others follow the unseen-camera rule)."""
    return {
        "format": "cgclip-model",
        "version": 1,
        "model": config_to_dict(cfg)["model"],
        "clip_path": str(clip_path),
        "num_classes": num_classes,
        "num_cameras": num_cameras,
        "sie_cameras": list(cameras) if cameras is not None else None,
        "identities": list(identities),
        "image_size": list(cfg.data.image_size),
        "seq_len": cfg.data.seq_len,
        "feature_dim": int(getattr(unwrap(model), "feature_dim", 0)),
        "eval": config_to_dict(cfg)["eval"],
        "epoch": epoch,
    }


#: The keys of a run's ``model.json`` (written by the trainer) and their JSON types.
MODEL_INFO_REQUIRED: dict[str, Any] = {"model": dict, "num_classes": int, "num_cameras": int, "image_size": list}
MODEL_INFO_OPTIONAL: dict[str, Any] = {
    "format": str,
    "version": int,
    "clip_path": str,
    "sie_cameras": list,
    "identities": list,
    "seq_len": int,
    "feature_dim": int,
    "eval": dict,
    "epoch": int,
}


def read_model_info(run_root: str | Path) -> dict[str, Any]:
    """A run's ``model.json``, checked: its keys and their types, the image size, and every model option against
    :class:`ModelConfig` (an unknown option or a value outside its range is named with the file)."""
    path = Path(run_root) / "model.json"
    if not path.is_file():
        raise CheckpointError(
            "no model.json: not a cgclip run folder, or training has not started", path=Path(run_root)
        )
    fix = "the run folder is damaged or from another cgclip version; retrain it"
    info = read_json_object(path, MODEL_INFO_REQUIRED, MODEL_INFO_OPTIONAL, fix=fix, error=CheckpointError, extra=False)
    size = info["image_size"]
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
        raise CheckpointError(
            f"'image_size' should be [H, W] of two positive integers, found {size!r}; {fix}", path=path
        )
    if info["num_classes"] < 1 or info["num_cameras"] < 0:
        raise CheckpointError(f"'num_classes' and 'num_cameras' should be positive; {fix}", path=path)
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    for key, value in info["model"].items():
        if key not in fields:
            raise CheckpointError(f"unknown model option {key!r}; {fix}", path=path)
        try:
            check_field(f"model.{key}", value, ModelConfig, key)
        except ConfigError as exc:
            raise CheckpointError(f"{exc}; {fix}", path=path) from None
    return info


def save_clip_config(clip_path: str | Path, run_root: str | Path) -> None:
    """Copy the CLIP checkpoint's ``config.json`` into ``RUN/clip/`` (the architecture, for inference rebuilds)."""
    dst = Path(run_root) / "clip"
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(clip_path) / "config.json", dst / "config.json")


def image_encoder_from_config(
    config_dir: str | Path,
    image_size: Sequence[int],
    num_cameras: int,
    sie_coef: float,
    sie_tokens: str = "all",
    trained_cameras: Sequence[int] | None = None,
) -> torch.nn.Module:
    """A randomly initialised CLIP image encoder with the architecture of ``config_dir/config.json`` (weights are
    loaded from a checkpoint afterwards)."""
    from transformers import CLIPConfig, CLIPVisionModelWithProjection

    from cgclip.clip.backbone import ClipImageEncoder
    from cgclip.clip.conv_stem import apply_stem

    try:  # the run's copy of its CLIP's config.json: transformers and the stem raise their own types when damaged
        config = CLIPConfig.from_pretrained(str(config_dir), local_files_only=True)
        vision_config = config.vision_config
        vision_config.projection_dim = config.projection_dim
        vision = CLIPVisionModelWithProjection(vision_config)
        apply_stem(vision.vision_model)
    except Exception as exc:  # noqa: BLE001
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"cannot build the CLIP image tower from it ({first}); copy the config.json of the CLIP the run was "
            "trained with here, or retrain",
            path=Path(config_dir) / "config.json",
        ) from exc
    return ClipImageEncoder(
        vision.vision_model,
        vision.visual_projection,
        image_size=(int(image_size[0]), int(image_size[1])),
        num_cameras=num_cameras,
        sie_coef=sie_coef,
        sie_tokens=sie_tokens,
        trained_cameras=trained_cameras,
    )


def build_inference_model(info: dict[str, Any], run_root: str | Path) -> torch.nn.Module:
    """Rebuild the model described by a run's ``model.json`` ``info`` (weights still to be loaded)."""
    from cgclip.models import build_model, load_clip

    # model.json of runs made before tfe_norm existed: the TFE output had no LayerNorm then
    model_cfg = resolve_model_defaults(ModelConfig(**{"tfe_norm": False, **info["model"]}))
    image_size = info["image_size"]
    num_classes, num_cameras = int(info["num_classes"]), int(info["num_cameras"])
    sie_cams = num_cameras if model_cfg.sie else 0
    trained = info.get("sie_cameras") if sie_cams else None  # None (runs made before the rule): every row
    config_dir = Path(run_root) / "clip"
    if (config_dir / "config.json").is_file():
        encoder = image_encoder_from_config(
            config_dir, image_size, sie_cams, model_cfg.sie_coef, str(model_cfg.sie_tokens), trained_cameras=trained
        )
    else:
        clip_path = info.get("clip_path")
        if not clip_path or not Path(clip_path).is_dir():
            raise CheckpointError(
                "the run has no clip/config.json and its CLIP directory is gone; retrain", path=config_dir
            )
        encoder = load_clip(
            clip_path,
            image_size=tuple(image_size),
            num_cameras=sie_cams,
            sie_coef=model_cfg.sie_coef,
            sie_tokens=str(model_cfg.sie_tokens),
            trained_cameras=trained,
        ).image
    return build_model(
        model_cfg.name,
        image_encoder=encoder,
        num_classes=num_classes,
        num_cameras=num_cameras,
        inference_only=True,
        identity_names=info.get("identities"),
        **model_options(model_cfg),
    )


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str | Path) -> None:
    """Load a state dict strictly; CheckpointError naming ``source`` when it does not fit the model."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(
            f"weights do not fit the model ({' '.join(first[:2])[:300]}); the run folder and its "
            "model.json/config.yaml disagree",
            path=source,
        ) from exc
