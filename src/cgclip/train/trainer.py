"""The training loop: P×K batches of RRS clips, Adam with warm-up and step decay, mixed precision, validation-based
model selection, atomic resumable checkpoints every epoch, and DistributedDataParallel under ``torchrun``.

:func:`train` is the whole job. What a run writes is described in :mod:`cgclip.train.run_dir`. Resuming
(``resume=True``) restores the model, optimizer, lr schedule, gradient scaler, every rank's random number generator
states and the sampler position from ``RUN/checkpoints/last``; the data order of an epoch depends only on
``(seed, epoch)``, so on CPU a resumed run ends with exactly the weights of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from cgclip.config import Config, resolve_defaults
from cgclip.data import TrackletDataset
from cgclip.data.sampling import PKSampler
from cgclip.data.video_dataset import VideoClipDataset
from cgclip.errors import CgclipError, ConfigError
from cgclip.io_utils import check_output_dir
from cgclip.progress import progress
from cgclip.train import checkpoint as ckpt
from cgclip.train.distributed import (
    DistInfo,
    barrier,
    broadcast_object,
    cleanup,
    init_distributed,
    max_across_ranks,
    sum_across_ranks,
    wrap_model,
)
from cgclip.train.extract import autocast_context
from cgclip.train.init_weights import init_from_run
from cgclip.train.loop_state import LoopState, resume_state, save_last_state
from cgclip.train.modeling import (  # noqa: F401 (model_description re-exported)
    build_training_model,
    model_description,
    resolve_clip_path,
    save_clip_config,
)
from cgclip.train.optim import WarmupStepSchedule, optimizer_from_config
from cgclip.train.resume_config import (  # noqa: F401 (re-exported)
    LEGACY_VALUES,
    RESUMABLE_CHANGES,
    _apply_legacy_values,
    _resolve_config,
)
from cgclip.train.run_dir import RunDir, environment
from cgclip.train.setup import (  # noqa: F401 (re-exported)
    load_captions,
    peak_memory_mb,
    prepare_loader,
    resolve_precision,
    seed_everything,
    train_loader,
    validate,
)
from cgclip.train.training_data import TrainingData, training_data

log = logging.getLogger(__name__)


class TrainingError(CgclipError):
    """Training cannot continue (e.g. the loss became NaN)."""


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    run_dir: Path
    epochs: int
    best_epoch: int | None
    best_metric: float | None
    history: list[dict[str, Any]] = field(default_factory=list)


def train(
    cfg: Config,
    out_dir: str | Path,
    *,
    dataset: TrackletDataset | None = None,
    captions: Sequence[Sequence[str]] | None = None,
    resume: bool = False,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    command: Sequence[str] | None = None,
) -> TrainResult:
    """Train ``cfg.model.name`` on ``dataset`` (default: the one ``cfg.data`` names) into the run folder ``out_dir``.

    Args:
        cfg: resolved configuration (:func:`cgclip.config.load_config`).
        out_dir: run folder (see :mod:`cgclip.train.run_dir`).
        dataset: an already loaded dataset (else ``cfg.data.root``/``kind`` are opened).
        captions: for ``cgclip``, one caption list per identity of the *whole* training split in pid order
            (default: from ``cfg.data.captions`` or the dataset folder's ``identities.csv``).
        resume: continue from ``RUN/checkpoints/last`` (a fresh start when there is none yet).
        on_epoch: called on rank 0 with each epoch's metric record.
        command: the command line, recorded in ``run.json``.
    """
    run = RunDir(out_dir)
    check_output_dir(
        run.root,
        lambda _p: run.is_ours(),
        fix="choose a new --out (cgclip train writes only into a new or empty folder, or one of its own runs)",
    )
    if run.has_checkpoint() and not resume:
        raise ConfigError(
            "this run folder already holds a training run; pass --resume to continue it or choose a new --out",
            path=run.root,
        )
    cfg = dataclasses.replace(
        resolve_defaults(cfg), optim=dataclasses.replace(cfg.optim)
    )  # the run records the model's own defaults
    cfg = _resolve_config(cfg, run, resume)
    info = init_distributed(cfg.train.device)
    try:
        return _train(cfg, run, info, dataset, captions, resume, on_epoch, command)
    finally:
        cleanup(info)


def _record_start(
    run: RunDir,
    cfg: Config,
    data: TrainingData,
    clip_path: Path,
    info: DistInfo,
    precision: str,
    command: Sequence[str] | None,
) -> None:
    """Create the run folder and write its configuration, CLIP config, dataset statistics and ``run.json``."""
    run.create()
    run.save_config(cfg)
    save_clip_config(clip_path, run.root)
    stats = data.dataset.statistics()
    stats["validation"] = data.split.summary() if data.split.enabled else None
    stats["train_used"] = {
        "identities": data.num_classes,
        "tracklets": len(data.split.train),
        "cameras": data.num_cameras,
    }
    run.write("dataset.json", stats)
    run.write("environment.json", environment(info.device, info.world_size))
    run.write(
        "run.json",
        {
            "status": "running",
            "seed": cfg.train.seed,
            "model": cfg.model.name,
            "clip_path": str(clip_path),
            "dataset": {"name": data.dataset.name, "root": data.dataset.root},
            "world_size": info.world_size,
            "precision": precision,
            "command": list(command) if command else None,
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
    )


def _record_end(
    run: RunDir, cfg: Config, model: torch.nn.Module, data: TrainingData, clip_path: Path, state: LoopState
) -> None:
    """Export the final model and mark ``run.json`` completed with the selected epoch."""
    model_info = model_description(
        cfg,
        model,
        data.num_classes,
        data.num_cameras,
        data.identities,
        clip_path,
        cameras=data.cameras,
        epoch=cfg.train.epochs,
    )
    ckpt.export_model(run.root, model.state_dict(), model_info)
    meta = run.read("run.json")
    meta.update(
        status="completed",
        finished=time.strftime("%Y-%m-%d %H:%M:%S"),
        epochs=cfg.train.epochs,
        best_epoch=state.best_epoch,
        best_val_mAP=state.best_metric,
        selection="validation mAP" if data.split.enabled else "last epoch (no validation split)",
    )
    run.write("run.json", meta)


def _validate_and_select(
    model: torch.nn.Module,
    data: TrainingData,
    cfg: Config,
    info: DistInfo,
    precision: str,
    run: RunDir,
    epoch: int,
    state: LoopState,
) -> dict[str, Any]:
    """Validation mAP after ``epoch`` (0-based), on every rank; a new best is kept as the ``best`` checkpoint."""
    val = validate(model, data.split, cfg, info.device, precision) if info.is_main else None
    val = broadcast_object(val, info)
    if state.best_metric is None or val["mAP"] > state.best_metric:
        state.best_epoch, state.best_metric = epoch + 1, val["mAP"]
        if info.is_main and cfg.train.keep_best:
            ckpt.save_checkpoint(
                run.checkpoints, "best", epoch=epoch + 1, model_state=model.state_dict(), state={"val": val}
            )
    return val


def _train(
    cfg: Config,
    run: RunDir,
    info: DistInfo,
    dataset: TrackletDataset | None,
    captions: Sequence[Sequence[str]] | None,
    resume: bool,
    on_epoch: Callable[[dict[str, Any]], None] | None,
    command: Sequence[str] | None,
) -> TrainResult:
    device = info.device
    precision = resolve_precision(cfg.train.precision, device)
    seed_everything(cfg.train.seed + info.rank)
    data = training_data(cfg, dataset, captions)
    clip_path = resolve_clip_path(cfg.model.clip_path)
    # everything that can refuse the configuration or the data (the model, the sampler) is built before the run
    # folder is written, so a refused run leaves nothing behind
    model = build_training_model(
        cfg.model,
        clip_path=clip_path,
        image_size=cfg.data.image_size,
        num_classes=data.num_classes,
        num_cameras=data.num_cameras,
        identities=data.identities,
        captions=data.captions,
        trained_cameras=data.cameras,
    ).to(device)
    init_report = None
    if cfg.train.init and not (resume and run.has_checkpoint()):  # a resumed run continues from its own weights
        init_report = init_from_run(model, cfg.train.init)
    loader, sampler, train_ds = train_loader(data.split.train, cfg, info)
    if info.is_main:
        _record_start(run, cfg, data, clip_path, info, precision, command)
        if init_report is not None:
            run.write("init.json", init_report)
        run.write(
            "model.json",
            model_description(
                cfg,
                model,
                data.num_classes,
                data.num_cameras,
                data.identities,
                clip_path,
                epoch=None,
                cameras=data.cameras,
            ),
        )
    barrier(info)
    optimizer = optimizer_from_config(model, cfg.optim)
    schedule = WarmupStepSchedule(
        optimizer,
        cfg.optim.warmup_epochs,
        cfg.optim.warmup_factor,
        cfg.optim.milestones,
        cfg.optim.gamma,
        cfg.optim.schedule_unit,
    )
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None

    if resume and run.has_checkpoint():
        state = resume_state(run, model, optimizer, schedule, scaler, info)
    else:
        state = LoopState()
        if hasattr(model, "prepare"):
            with autocast_context(device, precision):
                model.prepare(
                    prepare_loader(data.split.train, cfg, info, getattr(model, "prepare_sampling", "rrs_first"))
                )

    ddp_model = wrap_model(model, info, cfg.train.find_unused_parameters)
    if info.is_main:
        run.write_metrics([r for r in state.history if r["epoch"] <= state.start_epoch])
        log.info(
            "training %s: %d identities, %d tracklets, ~%d iterations/epoch, %d epochs, %s, %s on %s",
            cfg.model.name,
            data.num_classes,
            len(data.split.train),
            _iterations(sampler, cfg, state.start_epoch),
            cfg.train.epochs,
            precision,
            f"{info.world_size} rank(s)",
            device,
        )

    for epoch in range(state.start_epoch, cfg.train.epochs):
        record = _train_epoch(
            ddp_model, loader, sampler, train_ds, optimizer, schedule, scaler, cfg, info, epoch, precision
        )
        if isinstance(getattr(model, "logit_scale", None), torch.Tensor):
            record["logit_scale"] = round(float(model.logit_scale.detach().float().exp()), 4)
        last = epoch + 1 == cfg.train.epochs
        if data.split.enabled and ((epoch + 1) % cfg.train.eval_every == 0 or last):
            record["val"] = _validate_and_select(model, data, cfg, info, precision, run, epoch, state)
        state.history.append(record)
        if info.is_main:
            run.write_metrics(state.history)
            log.info("epoch %d/%d: %s", epoch + 1, cfg.train.epochs, _summary(record))
            if on_epoch is not None:
                on_epoch(record)
        if (epoch + 1) % cfg.train.save_every == 0 or last:
            save_last_state(run, model, optimizer, schedule, scaler, cfg.train.seed, epoch, state, info)

    if info.is_main:
        _record_end(run, cfg, model, data, clip_path, state)
    barrier(info)
    return TrainResult(run.root, cfg.train.epochs, state.best_epoch, state.best_metric, state.history)


def _summary(record: dict[str, Any]) -> str:
    parts = [f"loss {record['loss']:.4f}"] + [f"{k} {v:.4f}" for k, v in record["losses"].items()]
    parts += [f"lr {record['lr']:.2e}", f"{record['tracklets_per_s']:.1f} tracklets/s", f"{record['time_s']:.1f}s"]
    if record.get("val"):
        parts.append(f"val mAP {record['val']['mAP']:.4f} R1 {record['val']['rank1']:.4f}")
    return ", ".join(parts)


def train_step(
    model: torch.nn.Module,
    images: torch.Tensor,
    camids: torch.Tensor,
    pids: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    device: torch.device,
    precision: str,
    grad_clip: float = 0.0,
) -> dict[str, Any]:
    """One optimisation step on a batch: forward under autocast, backward (scaled for fp16), optional gradient
    clipping, optimizer step. Returns the model's output dict with ``"loss"`` detached. A non-finite loss skips the
    update (the caller decides what to do)."""
    with autocast_context(device, precision):
        out = model(images, camids, pids)
    loss = out["loss"]
    if not torch.isfinite(loss.detach()):
        return {**out, "loss": loss.detach()}
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        if grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
    return {**out, "loss": loss.detach()}


def _iterations(sampler: PKSampler, cfg: Config, epoch: int) -> int:
    """Iterations of ``epoch``: the sampler's full batches (they vary a little by epoch in ``tracklet`` mode),
    capped by ``train.max_iters``."""
    sampler.set_epoch(epoch)
    full = len(sampler) // sampler.batch_size
    iters = min(full, cfg.train.max_iters) if cfg.train.max_iters else full
    if iters < 1:
        raise ConfigError(
            f"epoch {epoch + 1} has no full P×K batch (data.p={cfg.data.p}, data.k={cfg.data.k}, "
            f"{len(sampler.ids)} identities); lower data.p or data.k"
        )
    return iters


def _train_epoch(
    model: torch.nn.Module,
    loader: DataLoader,
    sampler: PKSampler,
    dataset: VideoClipDataset,
    optimizer: torch.optim.Optimizer,
    schedule: WarmupStepSchedule,
    scaler: torch.amp.GradScaler | None,
    cfg: Config,
    info: DistInfo,
    epoch: int,
    precision: str,
) -> dict[str, Any]:
    device = info.device
    iters = _iterations(sampler, cfg, epoch)
    dataset.set_epoch(epoch)
    model.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sums: dict[str, float] = defaultdict(float)
    steps = tracklets = frames = 0
    data_time = 0.0
    start = tick = time.perf_counter()
    bar = progress(total=iters, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", unit="it") if info.is_main else None
    lr = schedule.get_lr()[0]
    try:
        for it, batch in enumerate(itertools.islice(loader, iters)):
            data_time += time.perf_counter() - tick
            lr = schedule.step(epoch, it, iters)
            images = batch["images"].to(device, non_blocking=True)
            pids = batch["pid"].to(device, non_blocking=True)
            camids = batch["camid"].to(device, non_blocking=True)
            out = train_step(model, images, camids, pids, optimizer, scaler, device, precision, cfg.optim.grad_clip)
            loss = out["loss"]
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"loss is {float(loss)} at epoch {epoch + 1}, iteration {it + 1}; lower optim.lr "
                    "or use train.precision=fp32"
                )
            steps += 1
            sums["loss"] += float(loss.detach())
            for name, value in out.get("losses", {}).items():
                sums[f"losses.{name}"] += float(value)
            tracklets += int(images.shape[0])
            frames += int(images.shape[0] * images.shape[1])
            if bar is not None:
                bar.update(1)
                if it % cfg.train.log_every == 0 or it + 1 == iters:
                    bar.set_postfix(loss=f"{sums['loss'] / steps:.3f}", lr=f"{lr:.1e}")
            tick = time.perf_counter()
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - start
    totals = sum_across_ranks(
        {**sums, "steps": steps, "tracklets": tracklets, "frames": frames, "data_time": data_time}, info
    )
    elapsed = max_across_ranks(elapsed, info)
    peak = max_across_ranks(peak_memory_mb(device), info)
    n = max(totals["steps"], 1.0)
    return {
        "epoch": epoch + 1,
        "lr": lr,
        "loss": totals["loss"] / n,
        "losses": {k[len("losses.") :]: totals[k] / n for k in sorted(totals) if k.startswith("losses.")},
        "iterations": steps,
        "tracklets": int(totals["tracklets"]),
        "frames": int(totals["frames"]),
        "time_s": round(elapsed, 3),
        "data_time_s": round(totals["data_time"] / info.world_size, 3),
        "tracklets_per_s": totals["tracklets"] / max(elapsed, 1e-9),
        "frames_per_s": totals["frames"] / max(elapsed, 1e-9),
        "peak_memory_mb": round(peak, 1),
        "world_size": info.world_size,
    }
