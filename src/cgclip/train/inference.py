"""Using a trained run: load its model (best, last or final weights), extract features, evaluate on the test split.

:func:`evaluate_run` is ``cgclip evaluate``: it rebuilds the model from the run folder alone (frames only, no
captions), extracts query and gallery features with the chosen test sampling (resumable chunks under
``RUN/cache/``), ranks them with :func:`cgclip.eval.evaluate_features` and writes ``RUN/results.json``.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from cgclip.config import Config, config_to_dict
from cgclip.data.tracklet import Tracklet
from cgclip.errors import CheckpointError, ConfigError
from cgclip.eval.results import write_results
from cgclip.train import checkpoint as ckpt
from cgclip.train.datasets import open_dataset
from cgclip.train.distributed import resolve_device
from cgclip.train.extract import TEST_SAMPLING, extract_features, tracklets_fingerprint
from cgclip.train.modeling import build_inference_model, load_weights
from cgclip.train.run_dir import RunDir
from cgclip.train.trainer import resolve_precision

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
                epoch = run.read("model.json").get("epoch")
                return state, {"checkpoint": "final", "epoch": epoch, "token": f"final-{run.model_path.stat().st_mtime_ns}"}
        elif ckpt.has_checkpoint(run.checkpoints, tag):
            state, side = ckpt.load_checkpoint(run.checkpoints, tag)
            if tag != which:
                log.warning("run has no %r checkpoint; using %r (epoch %s)", which, tag, side["epoch"])
            return state, {"checkpoint": tag, "epoch": side["epoch"], "token": side["token"]}
    raise CheckpointError("the run has no checkpoint yet; train it first (cgclip train) or resume it (--resume)",
                          path=run.checkpoints)


def load_run_model(run_dir: str | Path, checkpoint: str = "best", device: str | torch.device = "cpu"
                   ) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The model of a run with the weights of ``checkpoint``, in eval mode on ``device``, and its ``model.json``
    (plus ``"checkpoint"``, ``"epoch"`` and ``"token"`` of the weights used)."""
    run = RunDir(run_dir)
    if not run.model_info_path.is_file():
        raise CheckpointError("no model.json: not a cgclip run folder, or training has not started", path=run.root)
    info = run.read("model.json")
    state, which = run_weights(run, checkpoint)
    model = build_inference_model(info, run.root)
    load_weights(model, state, run.root)
    model.to(device).eval()
    return model, {**info, **which}


def extract_run_features(model: torch.nn.Module, info: dict[str, Any], tracklets: Sequence[Tracklet], *,
                         cfg: Config, device: torch.device, precision: str, cache_dir: str | Path | None,
                         sampling: str | None = None, batch_size: int | None = None, num_workers: int | None = None,
                         desc: str = "extract") -> torch.Tensor:
    """Features of ``tracklets`` from a loaded run model with the run's test settings (overridable)."""
    sampling = sampling or cfg.eval.sampling
    if sampling not in TEST_SAMPLING:
        raise ConfigError(f"test sampling {sampling!r} is not one of {', '.join(TEST_SAMPLING)}")
    seq_len = cfg.eval.seq_len or cfg.data.seq_len
    # everything that changes the features: the weights, the frames, and the model's retrieval-feature switches
    fp = tracklets_fingerprint(tracklets, token=info.get("token"), sampling=sampling, seq_len=seq_len,
                               size=list(cfg.data.image_size), precision=precision,
                               neck_feat=getattr(model, "neck_feat", None), part_norm=getattr(model, "part_norm", None))
    return extract_features(model, tracklets, image_size=cfg.data.image_size, seq_len=seq_len, sampling=sampling,
                            batch_size=batch_size or cfg.eval.batch_size, device=device, precision=precision,
                            num_workers=cfg.train.num_workers if num_workers is None else num_workers,
                            cache_dir=Path(cache_dir) / fp if cache_dir is not None else None, fingerprint=fp,
                            desc=desc)


def evaluate_run(run_dir: str | Path, dataset_root: str | Path | None = None, *, checkpoint: str = "best",
                 sampling: str | None = None, gallery_mode: str | None = None, metric: str | None = None,
                 rerank: bool | None = None, split: int | None = None, device: str | None = None,
                 precision: str | None = None, batch_size: int | None = None, num_workers: int | None = None,
                 output: str | Path | None = None, neck_feat: str | None = None) -> dict[str, Any]:
    """Evaluate a trained run on its dataset's test split (query/gallery) and write ``results.json``.

    Every argument left as None takes the run's configuration (``neck_feat``: retrieve on the feature before or
    after the BNNeck, whichever the run trained with). Returns the results dict: ``mAP``, ``rank1``,
    ``rank5``, ``rank10``, ``rank20``, ``mINP`` (fractions in [0, 1]), ``protocol``, ``model``, ``config``,
    ``dataset``, ``timing``, and the ``schema``/``unit`` fields of :mod:`cgclip.eval.results`.
    """
    from cgclip.eval import evaluate_features

    run = RunDir(run_dir)
    cfg = run.load_config()
    if sampling is not None:
        cfg.eval.sampling = sampling
    if gallery_mode is not None:
        cfg.eval.gallery_mode = gallery_mode
    if metric is not None:
        cfg.eval.metric = metric
    if rerank is not None:
        cfg.eval.rerank = bool(rerank)
    if split is not None:
        cfg.data.split = int(split)
    if neck_feat is not None:
        cfg.model.neck_feat = neck_feat
    dev = resolve_device(device or cfg.train.device)
    prec = resolve_precision(precision or cfg.train.precision, dev)
    dataset = open_dataset(cfg.data, dataset_root)
    if not dataset.query or not dataset.gallery:
        raise ConfigError("the dataset has no query/gallery split to evaluate on", path=dataset.root)
    model, info = load_run_model(run.root, checkpoint, dev)
    model.neck_feat = cfg.model.neck_feat
    cache = run.root / "cache"
    start = time.perf_counter()
    common = dict(cfg=cfg, device=dev, precision=prec, cache_dir=cache, batch_size=batch_size,
                  num_workers=num_workers)
    qf = extract_run_features(model, info, dataset.query, desc="query", **common)
    gf = extract_run_features(model, info, dataset.gallery, desc="gallery", **common)
    extract_s = time.perf_counter() - start
    t0 = time.perf_counter()
    result = evaluate_features(qf.numpy(), gf.numpy(), [t.pid for t in dataset.query],
                               [t.pid for t in dataset.gallery], [t.camid for t in dataset.query],
                               [t.camid for t in dataset.gallery], metric=cfg.eval.metric,
                               gallery_mode=cfg.eval.gallery_mode, rerank=cfg.eval.rerank)
    rank_s = time.perf_counter() - t0
    out = result.as_dict()
    protocol = dict(out.pop("protocol", {}))
    protocol.update(test_sampling=cfg.eval.sampling, seq_len=cfg.eval.seq_len or cfg.data.seq_len,
                    checkpoint=info["checkpoint"], epoch=info.get("epoch"), dataset=dataset.name,
                    split=dataset.info.get("split"), test_half=dataset.info.get("test_half"),
                    precision=prec, neck_feat=cfg.model.neck_feat)
    n = len(dataset.query) + len(dataset.gallery)
    out.update(protocol=protocol, model=info["model"]["name"], seed=cfg.train.seed, feature_dim=int(qf.shape[1]),
               config=config_to_dict(cfg), dataset=dataset.statistics(),
               timing={"extract_s": round(extract_s, 3), "tracklets_per_s": n / max(extract_s, 1e-9),
                       "rank_s": round(rank_s, 3), "device": str(dev)})
    out = write_results(output or run.results_path, out)
    shutil.rmtree(cache, ignore_errors=True)
    log.info("%s: mAP %.4f, Rank-1 %.4f (%s)", run.root, out["mAP"], out["rank1"], protocol)
    return out
