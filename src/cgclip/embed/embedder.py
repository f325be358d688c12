"""Embed crops and tracklets held in memory with a trained run or an exported ONNX file.

>>> emb = Embedder.load("runs/sports-cgclip")          # a run folder (PyTorch) ...
>>> emb = Embedder.load("sports-cgclip.onnx")          # ... or a file from ``cgclip export``
>>> f = emb.embed_tracklet([crop0, crop1, crop2])     # [F], L2-normalised
>>> F = emb.embed_crops(crops)                         # [N, F], one feature per crop

A tracklet is embedded as ``cgclip extract`` embeds it: the run's test sampling (``rrs_first``: the first frame of
each of the ``T`` chunks; ``dense``: every frame as consecutive ``T``-frame clips whose features are averaged), the
run's input size, CLIP's normalisation. A crop is a one-frame tracklet. Features are L2-normalised, so the dot
product is the cosine similarity. Camera ids matter only for a model trained with SIE; a camera left out (None) is
treated as one training never saw (the mean of the trained camera rows), on both engines.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cgclip.clip.preprocess import to_pixels
from cgclip.data.sampling import dense_clips, rrs_first_indices
from cgclip.embed.backends import OnnxBackend, TorchBackend
from cgclip.embed.crops import CropLike, resize_crops
from cgclip.errors import ConfigError, DataError


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class Embedder:
    """L2-normalised features of crops and tracklets from a trained model (build it with :meth:`load`).

    Args:
        backend: a :class:`~cgclip.embed.backends.TorchBackend` or :class:`~cgclip.embed.backends.OnnxBackend`.
        info: ``image_size`` (H, W), ``seq_len``, ``sampling`` (``rrs_first``/``dense``), ``per_frame``,
            ``num_cameras`` (SIE table rows, 0 = no SIE), ``feature_dim``, ``model``.
        batch_size: clips per forward pass.
    """

    def __init__(self, backend: TorchBackend | OnnxBackend, info: dict[str, Any], batch_size: int = 32) -> None:
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.backend = backend
        self.info = dict(info)
        self.image_size = (int(info["image_size"][0]), int(info["image_size"][1]))
        self.seq_len = int(info["seq_len"])
        self.sampling = str(info["sampling"])
        self.num_cameras = int(info["num_cameras"])
        self.feature_dim = int(info["feature_dim"])
        self.batch_size = int(batch_size)

    @classmethod
    def from_run(
        cls,
        run_dir: str | Path,
        checkpoint: str = "best",
        *,
        device: str | None = None,
        precision: str | None = None,
        batch_size: int = 32,
    ) -> Embedder:
        """The model of a run folder (``cgclip train``) with its device and precision rules (None: the run's)."""
        from cgclip.runtime import resolve_runtime
        from cgclip.train.inference import load_run_model
        from cgclip.train.run_dir import RunDir

        run = RunDir(run_dir)
        cfg = run.load_config()
        dev, prec = resolve_runtime(device or cfg.train.device, precision or cfg.train.precision)
        model, meta = load_run_model(run.root, checkpoint, dev)
        model.neck_feat = cfg.model.neck_feat
        info = {
            "model": meta["model"]["name"],
            "image_size": list(cfg.data.image_size),
            "seq_len": cfg.eval.seq_len or cfg.data.seq_len,
            "sampling": cfg.eval.sampling,
            "per_frame": False,
            "num_cameras": _sie_rows(model),
            "feature_dim": int(model.feature_dim),
            "checkpoint": meta["checkpoint"],
            "epoch": meta.get("epoch"),
            "run": str(run.root),
        }
        return cls(TorchBackend(model, dev, prec), info, batch_size)

    @classmethod
    def from_onnx(
        cls, path: str | Path, *, providers: list[str] | None = None, threads: int | None = None, batch_size: int = 32
    ) -> Embedder:
        """An ONNX file from ``cgclip export``, run with onnxruntime."""
        backend = OnnxBackend(path, providers=providers, threads=threads)
        return cls(backend, backend.info, batch_size)

    @classmethod
    def load(cls, path: str | Path, **options: Any) -> Embedder:
        """:meth:`from_onnx` for a ``.onnx`` file, :meth:`from_run` for a run folder (``options`` go to either)."""
        path = Path(path)
        if path.is_dir():
            return cls.from_run(path, **options)
        if path.suffix.lower() == ".onnx" or path.is_file():
            return cls.from_onnx(path, **options)
        raise ConfigError("neither a run folder nor an ONNX file; give a cgclip train run or an export", path=path)

    @property
    def per_frame(self) -> bool:
        """True for an ONNX file exported with ``--per-frame`` (crops only, no tracklets)."""
        return bool(self.info["per_frame"])

    def _camera_ids(self, camids: int | Sequence[int] | None, n: int) -> np.ndarray | None:
        if self.num_cameras == 0:
            return None
        if camids is None:
            return np.full(n, self.num_cameras, dtype=np.int64)  # the unseen-camera rule
        ids = np.asarray([camids] * n if isinstance(camids, (int, np.integer)) else camids, dtype=np.int64)
        if ids.shape != (n,):
            raise DataError(f"got {ids.size} camera ids for {n} inputs: give one per input (or None)")
        if n and int(ids.min()) < 0:
            raise DataError(f"camera ids must be >= 0, got {int(ids.min())}")
        return ids

    def _run(self, clips: np.ndarray, camids: np.ndarray | None) -> np.ndarray:
        """Raw features of uint8 clips ``[N, T, H, W, 3]``, in batches."""
        out = []
        for lo in range(0, len(clips), self.batch_size):
            part = clips[lo : lo + self.batch_size]
            n, t = part.shape[:2]
            pixels = to_pixels(part.reshape(n * t, *part.shape[2:])).reshape(n, t, 3, *self.image_size)
            out.append(self.backend.features(pixels.numpy(), None if camids is None else camids[lo : lo + n]))
        return np.concatenate(out) if out else np.zeros((0, self.feature_dim), dtype=np.float32)

    def embed_crops(self, crops: Sequence[CropLike], camids: int | Sequence[int] | None = None) -> np.ndarray:
        """One L2-normalised feature per crop ``[N, F]`` (each crop a one-frame tracklet)."""
        pixels = resize_crops(crops, self.image_size)
        cams = self._camera_ids(camids, len(pixels))
        return _normalise(self._run(pixels[:, None], cams))

    def _clip_positions(self, n: int) -> list[list[int]]:
        if self.sampling == "dense":
            return dense_clips(n, self.seq_len)
        return [rrs_first_indices(n, self.seq_len)]

    def embed_tracklets(
        self, tracklets: Sequence[Sequence[CropLike]], camids: int | Sequence[int] | None = None
    ) -> np.ndarray:
        """One L2-normalised feature per tracklet ``[N, F]``, each a sequence of crops in time order."""
        if self.per_frame:
            raise ConfigError(
                "this ONNX file embeds single crops (exported with --per-frame); use embed_crops, or export "
                "without --per-frame for tracklets",
                path=getattr(self.backend, "path", None),
            )
        cams = self._camera_ids(camids, len(tracklets))
        clips, owner = [], []
        for i, crops in enumerate(tracklets):
            if len(crops) == 0:
                raise DataError(f"tracklet {i} has no crops: give at least one")
            frames = resize_crops(crops, self.image_size, what=f"tracklet {i} crop")
            for pos in self._clip_positions(len(frames)):
                clips.append(frames[pos])
                owner.append(i)
        if not clips:
            return np.zeros((0, self.feature_dim), dtype=np.float32)
        owners = np.asarray(owner)
        feats = self._run(np.stack(clips), None if cams is None else cams[owners])
        sums = np.zeros((len(tracklets), feats.shape[1]), dtype=np.float64)
        np.add.at(sums, owners, feats)
        counts = np.bincount(owners, minlength=len(tracklets))[:, None]
        return _normalise((sums / counts).astype(np.float32))

    def embed_tracklet(self, crops: Sequence[CropLike], camid: int | None = None) -> np.ndarray:
        """The L2-normalised feature ``[F]`` of one tracklet (crops in time order)."""
        return self.embed_tracklets([crops], None if camid is None else [camid])[0]

    def __repr__(self) -> str:
        engine = "onnx" if isinstance(self.backend, OnnxBackend) else "torch"
        return (
            f"Embedder({self.info['model']}, {engine}, size={self.image_size}, T={self.seq_len}, "
            f"sampling={self.sampling}, F={self.feature_dim})"
        )


def _sie_rows(model: Any) -> int:
    """Rows of the model's SIE camera table (0 = no SIE)."""
    encoder = model.image_encoder
    return int(encoder.num_cameras) if getattr(encoder, "sie_embed", None) is not None else 0
