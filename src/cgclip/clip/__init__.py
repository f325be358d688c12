"""CLIP plumbing: the image and text towers for ReID (:mod:`~cgclip.clip.backbone`), CLIP folders and their files,
the tokenizer, OpenAI / TorchScript checkpoint import, the tiny CLIP's conv stem and positional embedding, random and
embedded CLIPs, raw CLIP features and image preprocessing. Imports neither :mod:`cgclip.synth` nor
:mod:`cgclip.captions`.

Names are imported lazily (on first access), so ``import cgclip.clip`` stays cheap.
"""

from __future__ import annotations

from cgclip.lazy import lazy_exports

_EXPORTS = {
    "load_clip": "cgclip.clip.backbone",
    "ClipImageEncoder": "cgclip.clip.backbone",
    "ClipTextEncoder": "cgclip.clip.backbone",
    "ClipModels": "cgclip.clip.backbone",
    "ClipFeatures": "cgclip.clip.features",
    "save_random_clip": "cgclip.clip.random_clip",
    "to_pixels": "cgclip.clip.preprocess",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports("cgclip.clip", _EXPORTS, globals())
