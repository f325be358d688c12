"""ONNX export of a run's inference path, checked against PyTorch on real tracklets (``cgclip export``).

The graph maps normalised frames ``images [B, T, 3, H, W]`` (float32; B and T dynamic) — plus ``camids [B]``
(int64) when the model has a SIE camera table — to the retrieval feature ``feature [B, F]`` (float32, not
normalised), exactly ``model.extract``. With ``per_frame`` it maps crops ``images [N, 3, H, W]`` to per-crop
features (each crop a one-frame tracklet). Camera ids outside the trained cameras get the unseen-camera rule inside
the graph. The file's metadata (key ``cgclip``, JSON) records the input size, mean/std, test sampling and camera
table, so :class:`cgclip.embed.Embedder` needs nothing else.

:func:`export_run` writes the file only after the parity check passes: the features of ``parity`` tracklets of the
run's dataset (L2-normalised) from onnxruntime and from PyTorch fp32 may differ by at most ``tolerance`` in any
component (:data:`PARITY_TOLERANCE`).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cgclip import __version__
from cgclip.data.transforms import CLIP_MEAN, CLIP_STD
from cgclip.embed.backends import EXPORT_EXTRA, METADATA_KEY, ONNX_FORMAT
from cgclip.embed.embedder import Embedder
from cgclip.embed.settings import DEFAULT_OPSET, OPSET_RANGE, PARITY_TOLERANCE, PARITY_TRACKLETS
from cgclip.errors import CheckpointError, ConfigError, DataError

log = logging.getLogger(__name__)


class _FeatureGraph(nn.Module):
    """The exported computation: frames (and camera ids) → ``model(...)["feature"]``."""

    def __init__(self, model: nn.Module, per_frame: bool) -> None:
        super().__init__()
        self.model = model
        self.per_frame = per_frame

    def forward(self, images: torch.Tensor, camids: torch.Tensor | None = None) -> torch.Tensor:
        if self.per_frame:
            images = images.unsqueeze(1)
        return self.model(images, camids)["feature"]


def check_opset(opset: int) -> int:
    """``opset`` if the exporter and onnxruntime support it, else a :class:`ConfigError` naming the range."""
    lo, hi = OPSET_RANGE
    if not lo <= int(opset) <= hi:
        raise ConfigError(f"--opset {opset} is not supported: choose {lo} to {hi} (default {DEFAULT_OPSET})")
    return int(opset)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's progress prints and its warnings about optional operators (torchvision's)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def export_model(
    model: nn.Module,
    path: str | Path,
    info: dict[str, Any],
    *,
    per_frame: bool = False,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Write ``model``'s inference path as an ONNX file at ``path`` (see the module docstring), traced on CPU in fp32
    (a model on another device or in another precision is copied first; its train/eval mode is restored).

    ``info`` describes the model for the embedder: ``model``, ``image_size``, ``seq_len``, ``sampling``,
    ``num_cameras`` (0 = no SIE input), ``feature_dim`` (and anything else worth keeping, e.g. the run).
    """
    try:
        import onnxscript  # noqa: F401 (torch's exporter needs it)
    except ImportError:
        raise ConfigError(f"ONNX export needs onnx and onnxscript: {EXPORT_EXTRA}") from None
    opset = check_opset(opset)
    if any(p.device.type != "cpu" or p.dtype != torch.float32 for p in model.parameters()):
        model = copy.deepcopy(model).float().cpu()  # export on CPU in fp32; the caller's model stays as it is
    was_training = model.training
    model.eval()
    h, w = (int(v) for v in info["image_size"])
    sie = int(info["num_cameras"]) > 0
    batch, frames = torch.export.Dim("batch", min=1), torch.export.Dim("frames", min=1)
    images = torch.zeros((3, 3, h, w) if per_frame else (3, 2, 3, h, w))  # B != T, or the trace ties them
    shapes: dict[str, Any] = {"images": {0: batch} if per_frame else {0: batch, 1: frames}}
    args: tuple[torch.Tensor, ...] = (images,)
    names = ["images"]
    if sie:
        args += (torch.zeros(3, dtype=torch.long),)
        shapes["camids"] = {0: batch}
        names.append("camids")
    graph = _FeatureGraph(model, per_frame).eval()
    try:
        with _quiet_exporter():
            program = torch.onnx.export(
                graph,
                args,
                dynamo=True,
                dynamic_shapes=shapes,
                input_names=names,
                output_names=["feature"],
                opset_version=opset,
                verbose=False,
            )
        meta = {
            **info,
            "format": ONNX_FORMAT,
            "per_frame": bool(per_frame),
            "inputs": names,
            "mean": list(CLIP_MEAN),
            "std": list(CLIP_STD),
            "opset": opset,
            "cgclip": __version__,
        }
    finally:
        model.train(was_training)
    program.model.metadata_props[METADATA_KEY] = json.dumps(meta, sort_keys=True)
    with _quiet_exporter():
        program.save(str(path))
    return Path(path)


def _parity_tracklets(run_dir: Path, dataset_root: str | Path | None, count: int) -> list[list[str]]:
    """Frame paths of ``count`` tracklets of the run's dataset (query first, then gallery, then train)."""
    from cgclip.train.datasets import open_dataset
    from cgclip.train.run_dir import RunDir

    cfg = RunDir(run_dir).load_config()
    try:
        dataset = open_dataset(cfg.data, dataset_root)
    except DataError as exc:
        raise DataError(f"{exc} (the parity check reads the run's tracklets: pass --dataset DIR)") from None
    pool = list(dataset.query) + list(dataset.gallery) + list(dataset.train)
    if not pool:
        raise DataError("the dataset has no tracklets to check the export on; pass --dataset DIR", path=dataset.root)
    step = max(1, len(pool) // count)
    return [list(t.frames) for t in pool[::step][:count]]


def parity(reference: Embedder, exported: Embedder, tracklets: Sequence[Sequence[Any]]) -> float:
    """Largest absolute difference between the two embedders' L2-normalised features of ``tracklets``
    (their frames as crops when ``exported`` is per-frame)."""
    if exported.per_frame:
        crops = [c for t in tracklets for c in list(t)[: exported.seq_len]]
        a, b = reference.embed_crops(crops), exported.embed_crops(crops)
    else:
        a, b = reference.embed_tracklets(tracklets), exported.embed_tracklets(tracklets)
    return float(np.abs(a - b).max()) if a.size else 0.0


def _is_cgclip_onnx(path: Path) -> bool:
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # any unreadable or foreign file is simply not ours
        return False
    return any(p.key == METADATA_KEY for p in model.metadata_props)


def export_run(
    run_dir: str | Path,
    out: str | Path,
    *,
    checkpoint: str = "best",
    per_frame: bool = False,
    opset: int = DEFAULT_OPSET,
    tolerance: float = PARITY_TOLERANCE,
    dataset_root: str | Path | None = None,
    tracklets: Sequence[Sequence[Any]] | None = None,
    parity_tracklets: int = PARITY_TRACKLETS,
) -> dict[str, Any]:
    """Export a run's model to ``out`` and check it (``cgclip export``); returns a report.

    ``tracklets`` (crops or frame paths) replace the run's dataset for the parity check. Nothing is written when
    the check fails (:class:`CheckpointError` with the difference). The report: ``path``, ``model``, ``per_frame``,
    ``opset``, ``max_abs_diff``, ``tolerance``, ``tracklets``, ``feature_dim``, ``export_s``, ``size_mb``.
    """
    from cgclip.io_utils import check_output_file

    out = Path(out)
    check_output_file(out, "--out", _is_cgclip_onnx, example="model.onnx")
    check_opset(opset)
    if not tolerance > 0:
        raise ConfigError(f"--tolerance must be positive, got {tolerance}")
    if tracklets is None:
        tracklets = _parity_tracklets(Path(run_dir), dataset_root, parity_tracklets)
    reference = Embedder.from_run(run_dir, checkpoint, device="cpu", precision="fp32")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp.onnx", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        start = time.perf_counter()
        model = reference.backend.model  # type: ignore[union-attr]
        export_model(model, tmp, reference.info, per_frame=per_frame, opset=opset)
        export_s = time.perf_counter() - start
        diff = parity(reference, Embedder.from_onnx(tmp), tracklets)
        if not diff <= tolerance:
            raise CheckpointError(
                f"the ONNX graph differs from PyTorch by {diff:.3g} (> tolerance {tolerance:g}) on "
                f"{len(tracklets)} tracklets; nothing was written (try another --opset, or report it)",
                path=out,
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("exported %s (largest difference %.3g)", out, diff)
    return {
        "path": str(out),
        "model": reference.info["model"],
        "per_frame": bool(per_frame),
        "opset": opset,
        "max_abs_diff": diff,
        "tolerance": float(tolerance),
        "tracklets": len(tracklets),
        "feature_dim": reference.feature_dim,
        "export_s": round(export_s, 2),
        "size_mb": round(out.stat().st_size / 2**20, 2),
    }
