"""Using a trained run: load its model (best, last or final weights), extract features, evaluate on the test split.

:func:`open_run` is the set-up every use shares (the run's configuration with the caller's settings, device and
precision, dataset and model). :func:`evaluate_run` is ``cgclip evaluate``: it rebuilds the model from the run folder
alone (frames only, no captions), extracts query and gallery features with the chosen test sampling (resumable chunks
under ``RUN/cache/``), ranks them with :func:`cgclip.eval.evaluate_features` and writes ``RUN/results.json``.
:func:`extract_to_folder` is ``cgclip extract``: feature files of a dataset's splits for ``cgclip search``.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cgclip.config import Config, config_to_dict
from cgclip.data.tracklet import DATASET_SPLITS, Tracklet, TrackletDataset
from cgclip.errors import CheckpointError, ConfigError
from cgclip.eval.results import write_results
from cgclip.runtime import resolve_runtime
from cgclip.train import checkpoint as ckpt
from cgclip.train.datasets import open_dataset
from cgclip.train.extract import TEST_SAMPLING, extract_features, tracklets_fingerprint
from cgclip.train.modeling import build_inference_model, load_weights, read_model_info
from cgclip.train.results_key import RESULTS_VERSION
from cgclip.train.run_dir import RunDir

log = logging.getLogger(__name__)

CHECKPOINTS = ("best", "last", "final")


def run_weights(run: RunDir, which: str = "best") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The weights of checkpoint ``which`` of a run and a description ``{"checkpoint", "epoch", "token"}``.

    ``best`` falls back to ``last`` when the run had no validation split; ``last``/``final`` fall back to each other
    (``final`` = ``model.safetensors``, written when training completes).
    """
    if which not in CHECKPOINTS:
        raise ConfigError(f"unknown checkpoint {which!r}; choose one of {', '.join(CHECKPOINTS)}")
    order = {"best": ["best", "last", "final"], "last": ["last", "final"], "final": ["final", "last"]}[which]
    for tag in order:
        if tag == "final":
            if run.model_path.is_file():
                state, meta = ckpt.load_tensors(run.model_path)
                epoch = read_model_info(run.root).get("epoch")
                return state, {
                    "checkpoint": "final",
                    "epoch": epoch,
                    "token": f"final-{run.model_path.stat().st_mtime_ns}",
                }
        elif ckpt.has_checkpoint(run.checkpoints, tag):
            state, side = ckpt.load_checkpoint(run.checkpoints, tag)
            if tag != which:
                log.warning("run has no %r checkpoint; using %r (epoch %s)", which, tag, side["epoch"])
            return state, {"checkpoint": tag, "epoch": side["epoch"], "token": side["token"]}
    raise CheckpointError(
        "the run has no checkpoint yet; train it first (cgclip train) or resume it (--resume)", path=run.checkpoints
    )


def load_run_model(
    run_dir: str | Path, checkpoint: str = "best", device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The model of a run with the weights of ``checkpoint``, in eval mode on ``device``, and its ``model.json``
    (plus ``"checkpoint"``, ``"epoch"`` and ``"token"`` of the weights used)."""
    run = RunDir(run_dir)
    info = read_model_info(run.root)
    state, which = run_weights(run, checkpoint)
    model = build_inference_model(info, run.root)
    load_weights(model, state, run.root)
    model.to(device).eval()
    return model, {**info, **which}


def extract_run_features(
    model: torch.nn.Module,
    info: dict[str, Any],
    tracklets: Sequence[Tracklet],
    *,
    cfg: Config,
    device: torch.device,
    precision: str,
    cache_dir: str | Path | None,
    sampling: str | None = None,
    batch_size: int | None = None,
    num_workers: int | None = None,
    desc: str = "extract",
) -> torch.Tensor:
    """Features of ``tracklets`` from a loaded run model with the run's test settings (overridable)."""
    sampling = sampling or cfg.eval.sampling
    if sampling not in TEST_SAMPLING:
        raise ConfigError(f"test sampling {sampling!r} is not one of {', '.join(TEST_SAMPLING)}")
    seq_len = cfg.eval.seq_len or cfg.data.seq_len
    # everything that changes the features: the weights, the frames, every model option (the retrieval-feature
    # switches among them), the test sampling, the precision, and the code (RESULTS_VERSION)
    fp = tracklets_fingerprint(
        tracklets,
        token=info.get("token"),
        sampling=sampling,
        seq_len=seq_len,
        size=list(cfg.data.image_size),
        precision=precision,
        model=config_to_dict(cfg)["model"],
        neck_feat=getattr(model, "neck_feat", None),
        part_norm=getattr(model, "part_norm", None),
        code=RESULTS_VERSION,
    )
    return extract_features(
        model,
        tracklets,
        image_size=cfg.data.image_size,
        seq_len=seq_len,
        sampling=sampling,
        batch_size=batch_size or cfg.eval.batch_size,
        device=device,
        precision=precision,
        num_workers=cfg.train.num_workers if num_workers is None else num_workers,
        cache_dir=Path(cache_dir) / fp if cache_dir is not None else None,
        fingerprint=fp,
        desc=desc,
    )


@dataclass
class OpenedRun:
    """A trained run ready for inference (:func:`open_run`)."""

    run: RunDir
    cfg: Config
    device: torch.device
    precision: str
    dataset: TrackletDataset
    model: torch.nn.Module
    info: dict[str, Any]


def _apply_settings(cfg: Config, settings: dict[str, Any]) -> None:
    """Set ``section.key`` values of ``cfg`` (None values leave the run's own)."""
    for key, value in settings.items():
        if value is not None:
            section, name = key.split(".")
            setattr(getattr(cfg, section), name, value)


def open_run(
    run_dir: str | Path,
    dataset_root: str | Path | None = None,
    *,
    checkpoint: str = "best",
    device: str | None = None,
    precision: str | None = None,
    settings: dict[str, Any] | None = None,
    require_test: bool = False,
) -> OpenedRun:
    """Load a run for inference: its configuration with ``settings`` applied (``{"eval.sampling": "dense"}``; None
    values keep the run's), the device and precision (None: the run's, resolved by :mod:`cgclip.runtime`), its
    dataset (``dataset_root`` or the one it trained on) and its model with the ``checkpoint`` weights.

    ``require_test`` refuses, before the model loads, a dataset without a query/gallery split.
    """
    run = RunDir(run_dir)
    cfg = run.load_config()
    _apply_settings(cfg, settings or {})
    dev, prec = resolve_runtime(device or cfg.train.device, precision or cfg.train.precision)
    dataset = open_dataset(cfg.data, dataset_root)
    if (settings or {}).get("data.split") is not None and "split" not in dataset.info:
        raise ConfigError(
            f"--split chooses an iLIDS-VID people split; this {dataset.name} dataset has none (leave it out)",
            path=dataset.root,
        )
    if require_test and (not dataset.query or not dataset.gallery):
        raise ConfigError("the dataset has no query/gallery split to evaluate on", path=dataset.root)
    model, info = load_run_model(run.root, checkpoint, dev)
    model.neck_feat = cfg.model.neck_feat
    return OpenedRun(run, cfg, dev, prec, dataset, model, info)


def evaluate_run(
    run_dir: str | Path,
    dataset_root: str | Path | None = None,
    *,
    checkpoint: str = "best",
    sampling: str | None = None,
    gallery_mode: str | None = None,
    same_camera: str | None = None,
    metric: str | None = None,
    rerank: bool | None = None,
    split: int | None = None,
    device: str | None = None,
    precision: str | None = None,
    batch_size: int | None = None,
    num_workers: int | None = None,
    output: str | Path | None = None,
    neck_feat: str | None = None,
) -> dict[str, Any]:
    """Evaluate a trained run on its dataset's test split (query/gallery) and write ``results.json``.

    Every argument left as None takes the run's configuration (``neck_feat``: retrieve on the feature before or
    after the BNNeck, whichever the run trained with; ``same_camera``: ``drop`` or ``keep`` same-camera matches, see
    :func:`cgclip.eval.evaluate_features`). A dataset without camera ids (``info["camera_ids"] == "none"``) is
    refused under ``drop``, which would drop every positive. Returns the results dict: ``mAP``, ``rank1``,
    ``rank5``, ``rank10``, ``rank20``, ``mINP`` (fractions in [0, 1]), ``protocol``, ``model``, ``config``,
    ``dataset``, ``timing``, and the ``schema``/``unit`` fields of :mod:`cgclip.eval.results`.
    """
    from cgclip.eval import evaluate_features

    opened = open_run(
        run_dir,
        dataset_root,
        checkpoint=checkpoint,
        device=device,
        precision=precision,
        require_test=True,
        settings={
            "eval.sampling": sampling,
            "eval.gallery_mode": gallery_mode,
            "eval.same_camera": same_camera,
            "eval.metric": metric,
            "eval.rerank": None if rerank is None else bool(rerank),
            "data.split": None if split is None else int(split),
            "model.neck_feat": neck_feat,
        },
    )
    run, cfg, dataset, model, info = opened.run, opened.cfg, opened.dataset, opened.model, opened.info
    dev, prec = opened.device, opened.precision
    if cfg.eval.same_camera == "drop" and dataset.info.get("camera_ids") == "none":
        raise ConfigError(
            "the dataset has no camera ids (every tracklet is camera 0), so dropping same-camera matches would drop "
            "every positive; pass --same-camera keep (cgclip evaluate) or --set eval.same_camera=keep",
            path=dataset.root,
        )
    cache = run.root / "cache"
    start = time.perf_counter()
    common = dict(cfg=cfg, device=dev, precision=prec, cache_dir=cache, batch_size=batch_size, num_workers=num_workers)
    qf = extract_run_features(model, info, dataset.query, desc="query", **common)
    gf = extract_run_features(model, info, dataset.gallery, desc="gallery", **common)
    extract_s = time.perf_counter() - start
    t0 = time.perf_counter()
    result = evaluate_features(
        qf.numpy(),
        gf.numpy(),
        [t.pid for t in dataset.query],
        [t.pid for t in dataset.gallery],
        [t.camid for t in dataset.query],
        [t.camid for t in dataset.gallery],
        metric=cfg.eval.metric,
        gallery_mode=cfg.eval.gallery_mode,
        same_camera=cfg.eval.same_camera,
        rerank=cfg.eval.rerank,
    )
    rank_s = time.perf_counter() - t0
    out = result.as_dict()
    protocol = dict(out.pop("protocol", {}))
    protocol.update(
        test_sampling=cfg.eval.sampling,
        seq_len=cfg.eval.seq_len or cfg.data.seq_len,
        checkpoint=info["checkpoint"],
        epoch=info.get("epoch"),
        dataset=dataset.name,
        split=dataset.info.get("split"),
        test_half=dataset.info.get("test_half"),
        precision=prec,
        neck_feat=cfg.model.neck_feat,
    )
    n = len(dataset.query) + len(dataset.gallery)
    out.update(
        protocol=protocol,
        model=info["model"]["name"],
        seed=cfg.train.seed,
        feature_dim=int(qf.shape[1]),
        config=config_to_dict(cfg),
        dataset=dataset.statistics(),
        timing={
            "extract_s": round(extract_s, 3),
            "tracklets_per_s": n / max(extract_s, 1e-9),
            "rank_s": round(rank_s, 3),
            "device": str(dev),
        },
    )
    out = write_results(output or run.results_path, out)
    shutil.rmtree(cache, ignore_errors=True)
    log.info("%s: mAP %.4f, Rank-1 %.4f (%s)", run.root, out["mAP"], out["rank1"], protocol)
    return out


#: Marks a folder as written by :func:`extract_to_folder` (so a rerun may add to it).
FEATURES_MARKER = ".cgclip-features"


def check_features_dir(out: str | Path) -> None:
    """Refuse, before any work, an output folder that is neither new, empty, nor one :func:`extract_to_folder` wrote."""
    from cgclip.io_utils import check_output_dir

    out = Path(out)
    check_output_dir(
        out,
        lambda p: (p / FEATURES_MARKER).is_file(),
        fix="choose a new --out (extract writes only into a new or empty folder, or one it wrote)",
    )


def extract_to_folder(
    run_dir: str | Path,
    out: str | Path,
    splits: Sequence[str] = ("query", "gallery"),
    *,
    dataset_root: str | Path | None = None,
    checkpoint: str = "best",
    sampling: str | None = None,
    device: str | None = None,
    precision: str | None = None,
    batch_size: int | None = None,
    num_workers: int | None = None,
    on_split: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Write ``OUT/<split>.safetensors`` + ``OUT/<split>.json`` for each of ``splits`` of a run's dataset (``cgclip
    extract``); resumable from finished chunks under ``OUT/.cache`` (removed at the end).

    Returns (and passes to ``on_split`` as each split ends) ``{split: {"path", "shape"}}``, or ``{"skipped": True}``
    for a split without tracklets. Options left as None take the run's configuration.
    """
    from cgclip.io_utils import atomic_write_text

    unknown = [s for s in splits if s not in DATASET_SPLITS]
    if unknown:
        raise ConfigError(f"unknown split {unknown[0]!r}; use {', '.join(DATASET_SPLITS)}")
    out = Path(out)
    check_features_dir(out)
    opened = open_run(
        run_dir,
        dataset_root,
        checkpoint=checkpoint,
        device=device,
        precision=precision,
        settings={"eval.sampling": sampling},
    )
    out.mkdir(parents=True, exist_ok=True)
    if not (out / FEATURES_MARKER).exists():
        atomic_write_text(out / FEATURES_MARKER, "written by cgclip extract\n")
    cache, written = out / ".cache", {}
    for split in splits:
        tracklets = getattr(opened.dataset, split)
        if not tracklets:
            written[split] = {"skipped": True}
        else:
            written[split] = _save_split(opened, split, tracklets, out, cache, batch_size, num_workers)
        if on_split is not None:
            on_split(split, written[split])
    shutil.rmtree(cache, ignore_errors=True)
    return written


def _save_split(
    opened: OpenedRun,
    split: str,
    tracklets: Sequence[Tracklet],
    out: Path,
    cache: Path,
    batch_size: int | None,
    num_workers: int | None,
) -> dict[str, Any]:
    """Extract one split's features and save them as ``out/<split>``; ``{"path", "shape"}``."""
    from cgclip.eval.features_io import save_features

    feats = extract_run_features(
        opened.model,
        opened.info,
        tracklets,
        cfg=opened.cfg,
        device=opened.device,
        precision=opened.precision,
        cache_dir=cache,
        batch_size=batch_size,
        num_workers=num_workers,
        desc=split,
    )
    info, dataset = opened.info, opened.dataset
    extra = {
        "run": str(opened.run.root.resolve()),
        "checkpoint": info["checkpoint"],
        "epoch": info.get("epoch"),
        "model": info["model"]["name"],
        "split": split,
        "test_sampling": opened.cfg.eval.sampling,
        "dataset": dataset.name,
        "root": dataset.root,
    }
    path, _ = save_features(out / split, feats, tracklets, extra=extra)
    return {"path": path, "shape": tuple(feats.shape)}
