"""The two engines an :class:`~cgclip.embed.Embedder` runs on: a PyTorch run model, or an exported ONNX file.

Both take normalised clips ``[B, T, 3, H, W]`` (float32) and, when the model has a SIE camera table, camera ids
``[B]`` (int64), and return the model's retrieval feature ``[B, F]`` (float32, not normalised), so the embedder is the
same code whichever engine it holds. An ONNX file made by ``cgclip export`` carries what the embedder needs (input
size, frame sampling, camera table, feature width) in its metadata under :data:`METADATA_KEY`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cgclip.errors import CheckpointError, ConfigError, DataError
from cgclip.train.extract import autocast_context

#: Metadata key of an ONNX file written by ``cgclip export`` and the format version its JSON value declares.
METADATA_KEY = "cgclip"
ONNX_FORMAT = "cgclip-onnx/1"
#: What the ONNX metadata must hold (see :func:`cgclip.embed.export.export_model`).
ONNX_INFO_KEYS = ("format", "model", "image_size", "seq_len", "sampling", "per_frame", "num_cameras", "feature_dim")
EXPORT_EXTRA = "pip install 'cgclip[export]'"


def check_clips(clips: np.ndarray, size: tuple[int, int]) -> None:
    """Refuse clips that are not float ``[B, T, 3, H, W]`` at the model's ``size = (H, W)`` (one line with the fix)."""
    shape = tuple(clips.shape)
    if len(shape) != 5 or shape[2] != 3:
        raise DataError(f"clips have shape {shape}: expected [B, T, 3, H, W] normalised RGB frames")
    if shape[3:] != tuple(size):
        raise DataError(
            f"frames are {shape[3]}×{shape[4]} pixels; this model takes {size[0]}×{size[1]} "
            "(Embedder resizes crops for you: embed_crops / embed_tracklets)"
        )


class TorchBackend:
    """A loaded run model on ``device`` at ``precision`` (``fp32``, ``bf16``, ``fp16``)."""

    def __init__(self, model: torch.nn.Module, device: torch.device, precision: str) -> None:
        self.model = model.eval()
        self.device = torch.device(device)
        self.precision = precision
        self.image_size = tuple(int(v) for v in model.image_encoder.image_size)

    def features(self, clips: np.ndarray, camids: np.ndarray | None) -> np.ndarray:
        """Retrieval features ``[B, F]`` of normalised clips ``[B, T, 3, H, W]``."""
        check_clips(clips, self.image_size)
        images = torch.from_numpy(clips).to(self.device)
        cams = None if camids is None else torch.from_numpy(camids).to(self.device)
        with torch.no_grad(), autocast_context(self.device, self.precision):
            out = self.model.extract(images, cams)
        return out.float().cpu().numpy()


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(f"ONNX files need onnxruntime: {EXPORT_EXTRA}") from None
    return onnxruntime


def _check_info(info: Any, path: Path) -> dict[str, Any]:
    fix = "export it again with cgclip export"
    if not isinstance(info, dict) or info.get("format") != ONNX_FORMAT:
        found = info.get("format") if isinstance(info, dict) else None
        raise CheckpointError(f"ONNX metadata format {found!r} is not {ONNX_FORMAT!r}; {fix}", path=path)
    missing = [k for k in ONNX_INFO_KEYS if k not in info]
    if missing:
        raise CheckpointError(f"ONNX metadata lacks {', '.join(missing)}; {fix}", path=path)
    return info


class OnnxBackend:
    """An ONNX file written by ``cgclip export``, run with onnxruntime (CPU unless ``providers`` say otherwise)."""

    def __init__(self, path: str | Path, providers: list[str] | None = None, threads: int | None = None) -> None:
        ort = _import_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError("no such ONNX file; export one with cgclip export --run RUN --out FILE", path=path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types for damaged or foreign files
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"cannot load as ONNX ({reason[:200]}); export it again", path=path) from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise CheckpointError("not an ONNX file from cgclip export (no cgclip metadata); export one", path=path)
        try:
            info = json.loads(meta[METADATA_KEY])
        except json.JSONDecodeError:
            raise CheckpointError("its cgclip metadata is not JSON; export it again", path=path) from None
        self.info = _check_info(info, self.path)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def features(self, clips: np.ndarray, camids: np.ndarray | None) -> np.ndarray:
        """Retrieval features ``[B, F]`` of normalised clips ``[B, T, 3, H, W]`` (T = 1 for a per-frame file)."""
        check_clips(clips, tuple(self.info["image_size"]))
        if self.info["per_frame"] and clips.shape[1] != 1:
            raise DataError(f"this per-frame ONNX file takes one frame per input, got clips of {clips.shape[1]}")
        feeds: dict[str, np.ndarray] = {}
        if self.info["per_frame"]:
            feeds[self.input_names[0]] = np.ascontiguousarray(clips[:, 0], dtype=np.float32)
        else:
            feeds[self.input_names[0]] = np.ascontiguousarray(clips, dtype=np.float32)
        if len(self.input_names) > 1:
            feeds[self.input_names[1]] = np.ascontiguousarray(camids, dtype=np.int64)
        return np.asarray(self.session.run(None, feeds)[0], dtype=np.float32)
