"""Models: the CLIP backbone and the video ReID models ``cgclip``, ``tfclip``, ``tap`` (built by name).

* :func:`build_model` / :data:`MODEL_NAMES` / :data:`DEFAULT_OPTIONS` — :mod:`cgclip.models.build`;
* :func:`load_clip`, :class:`ClipImageEncoder`, :class:`ClipTextEncoder`, :class:`ClipModels` —
  :mod:`cgclip.models.clip_backbone`; :func:`save_random_clip` — :mod:`cgclip.models.random_clip`.

Names are imported lazily (on first access), so ``import cgclip.models`` stays cheap.
"""

from __future__ import annotations


from cgclip.lazy import lazy_exports

_EXPORTS = {
    "build_model": "cgclip.models.build",
    "MODEL_NAMES": "cgclip.models.build",
    "DEFAULT_OPTIONS": "cgclip.models.build",
    "load_clip": "cgclip.models.clip_backbone",
    "ClipImageEncoder": "cgclip.models.clip_backbone",
    "ClipTextEncoder": "cgclip.models.clip_backbone",
    "ClipModels": "cgclip.models.clip_backbone",
    "save_random_clip": "cgclip.models.random_clip",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports('cgclip.models', _EXPORTS, globals())
