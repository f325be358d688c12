"""Using a trained model outside cgclip's own pipeline: embedding crops and tracklets, tracker ReID, ONNX export.

Entry points (imported lazily so ``import cgclip.embed`` stays cheap):

* :class:`Embedder` — a run folder or an exported ONNX file → L2-normalised features of tracklets and crops;
* :class:`TrackletMemory` — rolling windows of a tracker's tracks and their tracklet features, to re-identify a
  track that comes back;
* :class:`BoxEmbedder` — the ReID-backend interface of tracking toolkits (BoxMOT's ``get_features(xyxys, img)``);
* :func:`export_run`, :func:`export_model` — ``cgclip export``: the ONNX file, checked against PyTorch.
"""

from __future__ import annotations

from cgclip.lazy import lazy_exports

_EXPORTS = {
    "Embedder": "cgclip.embed.embedder",
    "TrackletMemory": "cgclip.embed.tracks",
    "BoxEmbedder": "cgclip.embed.tracker",
    "export_run": "cgclip.embed.export",
    "export_model": "cgclip.embed.export",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports("cgclip.embed", _EXPORTS, globals())
