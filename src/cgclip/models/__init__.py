"""The video ReID models ``cgclip``, ``tfclip``, ``tap``, built by name from the model registry.

* :func:`build_model` / :data:`MODEL_NAMES` / :data:`DEFAULT_OPTIONS` — :mod:`cgclip.models.build`;
* the CLIP backbone (:func:`load_clip`, :class:`ClipImageEncoder`, ...) lives in :mod:`cgclip.clip` and is re-exported
  here for one release; so are the old module paths ``cgclip.models.clip_backbone`` & co. (with a DeprecationWarning).

Names are imported lazily (on first access), so ``import cgclip.models`` stays cheap.
"""

from __future__ import annotations

from cgclip.lazy import alias_moved_modules, lazy_exports

_EXPORTS = {
    "build_model": "cgclip.models.build",
    "MODEL_NAMES": "cgclip.models.build",
    "DEFAULT_OPTIONS": "cgclip.models.build",
    "load_clip": "cgclip.clip.backbone",
    "ClipImageEncoder": "cgclip.clip.backbone",
    "ClipTextEncoder": "cgclip.clip.backbone",
    "ClipModels": "cgclip.clip.backbone",
    "save_random_clip": "cgclip.clip.random_clip",
}

#: old module path -> new one (moved out of ``models/`` into ``cgclip.clip`` and ``cgclip.pretrain``)
MOVED_MODULES = {
    **{
        f"cgclip.models.{old}": f"cgclip.clip.{new}"
        for old, new in (
            ("clip_backbone", "backbone"),
            ("clip_files", "files"),
            ("tokenizer", "tokenizer"),
            ("openai_import", "openai_import"),
            ("torchscript_reader", "torchscript_reader"),
            ("conv_stem", "conv_stem"),
            ("pos_embed", "pos_embed"),
            ("random_clip", "random_clip"),
            ("embedded", "embedded"),
            ("clip_features", "features"),
        )
    },
    **{
        f"cgclip.models.{old}": f"cgclip.pretrain.{new}"
        for old, new in (
            ("pretrain_clip", "run"),
            ("pretrain_data", "data"),
            ("pretrain_targets", "targets"),
            ("pretrain_batches", "batches"),
            ("pretrain_state", "state"),
            ("zero_shot", "zero_shot"),
        )
    },
}

__all__ = list(_EXPORTS)

alias_moved_modules(MOVED_MODULES)
__getattr__, __dir__ = lazy_exports("cgclip.models", _EXPORTS, globals())
