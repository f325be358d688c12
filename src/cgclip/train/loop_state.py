"""The training loop's resumable state: epoch, history, best validation, and the ``last`` checkpoint that holds it
with the optimizer, lr schedule, gradient scaler and every rank's random number generators."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch

from cgclip.errors import CheckpointError
from cgclip.train import checkpoint as ckpt
from cgclip.train.distributed import DistInfo, barrier, gather_objects
from cgclip.train.modeling import load_weights
from cgclip.train.optim import WarmupStepSchedule
from cgclip.train.run_dir import RunDir

log = logging.getLogger(__name__)


@dataclass
class LoopState:
    """Where training stands: the next epoch, the metrics history and the best validation so far."""

    start_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_metric: float | None = None


def resume_state(
    run: RunDir,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: WarmupStepSchedule,
    scaler: torch.amp.GradScaler | None,
    info: DistInfo,
) -> LoopState:
    """Restore the model, optimizer, schedule, scaler and this rank's random state from ``RUN/checkpoints/last``."""
    state_dict, side = ckpt.load_checkpoint(run.checkpoints, "last")
    load_weights(model, state_dict, run.checkpoints / "last.json")
    try:
        optimizer.load_state_dict(side["optimizer_state"])
    except (ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(
            f"optimizer state does not fit the model ({exc}); resume with the same configuration",
            path=run.checkpoints / "last.json",
        ) from exc
    st = side["state"]
    schedule.load_state_dict(st["schedule"])
    if scaler is not None and st.get("scaler"):
        scaler.load_state_dict(st["scaler"])
    rngs = st["rng"]
    if len(rngs) != info.world_size:
        log.warning(
            "resuming with %d ranks from a checkpoint of %d; random states are not exact", info.world_size, len(rngs)
        )
    ckpt.set_rng_state(rngs[info.rank % len(rngs)])
    log.info("resumed from epoch %d", int(side["epoch"]))
    return LoopState(int(side["epoch"]), list(st.get("history", [])), st.get("best_epoch"), st.get("best_metric"))


def save_last_state(
    run: RunDir,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: WarmupStepSchedule,
    scaler: torch.amp.GradScaler | None,
    seed: int,
    epoch: int,
    state: LoopState,
    info: DistInfo,
) -> None:
    """Write the resumable ``last`` checkpoint after ``epoch`` (0-based) with every rank's random state."""
    rngs = gather_objects(ckpt.rng_state(), info)
    if info.is_main:
        side = {
            "schedule": schedule.state_dict(),
            "scaler": scaler.state_dict() if scaler else None,
            "rng": rngs,
            "sampler": {"seed": seed, "next_epoch": epoch + 1},
            "history": state.history,
            "best_epoch": state.best_epoch,
            "best_metric": state.best_metric,
            "world_size": info.world_size,
        }
        ckpt.save_checkpoint(
            run.checkpoints,
            "last",
            epoch=epoch + 1,
            model_state=model.state_dict(),
            optimizer_state=optimizer.state_dict(),
            state=side,
        )
    barrier(info)
