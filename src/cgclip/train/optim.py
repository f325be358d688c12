"""Optimizer and learning-rate schedule of the paper's recipe (Table S.7).

Adam over every trainable parameter (:func:`build_optimizer`, or :func:`optimizer_from_config` from an
``OptimConfig``), with parameter groups as TF-CLIP's ``make_optimizer_2stage`` (``solver/make_optimizer_prompt.py``
lines 22–42) forms them: bias parameters at ``lr × bias_lr_factor`` (2) with ``weight_decay_bias``, the parameters a
model names in ``large_lr_parameter_names()`` (TF-CLIP's temporal classifier) at ``lr × large_fc_lr_mult`` (10),
and the v2m / v2rm logit scale at ``lr × logit_scale_lr_mult`` without weight decay. :class:`WarmupStepSchedule`:
a linear warm-up from ``lr * warmup_factor`` (5e-7 for lr 5e-6) to ``lr`` over ``warmup_epochs``, then a step decay
by ``gamma`` at each milestone epoch — the ``WarmupMultiStepLR`` of TF-CLIP / CLIP-ReID — applied to every group's
own base lr. The schedule is a pure function of training progress, so its state is just the position, which
checkpoints store as JSON.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Sequence
from typing import Any

import torch

from cgclip.config import OptimConfig
from cgclip.errors import CheckpointError

log = logging.getLogger(__name__)

#: Parameters named like this (the v2m / v2rm logit scale) get their own group: lr × multiplier, no weight decay.
SCALE_PARAMETER = "logit_scale"


def is_bias(name: str) -> bool:
    """TF-CLIP's rule (``"bias" in key``) applied to the parameter's own name: ``….bias``, ``…in_proj_bias``."""
    return "bias" in name.split(".")[-1]


def build_optimizer(
    model: torch.nn.Module,
    lr: float,
    weight_decay: float,
    betas: Sequence[float] = (0.9, 0.999),
    eps: float = 1e-8,
    logit_scale_lr_mult: float = 1.0,
    bias_lr_factor: float = 1.0,
    weight_decay_bias: float | None = None,
    large_fc_lr_mult: float = 1.0,
) -> torch.optim.Adam:
    """Adam over the parameters of ``model`` that require gradients (the frozen text tower is left out).

    Groups, the plain one first: every other parameter at ``lr`` / ``weight_decay``; bias parameters
    (:func:`is_bias`) at ``lr * bias_lr_factor`` with ``weight_decay_bias`` (None = ``weight_decay``); the
    parameters ``model.large_lr_parameter_names()`` names at ``× large_fc_lr_mult`` (on top of the bias factor, as
    TF-CLIP's); the logit scale of the video-to-memory loss (a parameter named ``logit_scale``) at
    ``lr * logit_scale_lr_mult`` without weight decay — with a multiplier of 0 it is left out and stays fixed (at the
    backbone's lr of the paper's recipe, 5e-6, Adam could move log s by only about 0.035 over a whole schedule).
    Groups that would be empty are not created, so with factors of 1 the groups are those of earlier versions.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("the model has no trainable parameters")
    names_fn = getattr(model, "large_lr_parameter_names", None)
    large = set(names_fn()) if callable(names_fn) else set()
    wd_bias = weight_decay if weight_decay_bias is None else float(weight_decay_bias)
    buckets: dict[tuple[float, float], list[torch.nn.Parameter]] = {(1.0, float(weight_decay)): []}
    scale: list[torch.nn.Parameter] = []
    for name, param in named:
        if name.split(".")[-1] == SCALE_PARAMETER:
            scale.append(param)
            continue
        mult, decay = 1.0, float(weight_decay)
        if is_bias(name) and (bias_lr_factor != 1.0 or wd_bias != weight_decay):
            mult, decay = float(bias_lr_factor), wd_bias
        if name in large:
            mult *= float(large_fc_lr_mult)
        buckets.setdefault((mult, decay), []).append(param)
    kept = [(mult, decay, params) for (mult, decay), params in buckets.items() if params]
    log.debug(
        "optimizer groups (lr factor, weight decay, parameters): %s",
        [(mult, decay, len(params)) for mult, decay, params in kept],
    )
    groups: list[dict[str, Any]] = [
        {"params": params, "lr": lr * mult, "weight_decay": decay} for mult, decay, params in kept
    ]
    if scale and logit_scale_lr_mult > 0:
        groups.append({"params": scale, "lr": lr * float(logit_scale_lr_mult), "weight_decay": 0.0})
    elif scale:
        for p in scale:
            p.requires_grad_(False)
    return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay, betas=(float(betas[0]), float(betas[1])), eps=eps)


def optimizer_from_config(model: torch.nn.Module, cfg: OptimConfig) -> torch.optim.Adam:
    """:func:`build_optimizer` with the settings of an ``OptimConfig`` (the trainer's optimizer)."""
    return build_optimizer(
        model,
        cfg.lr,
        cfg.weight_decay,
        cfg.betas,
        cfg.eps,
        cfg.logit_scale_lr_mult,
        cfg.bias_lr_factor,
        cfg.weight_decay_bias,
        cfg.large_fc_lr_mult,
    )


def lr_factor(
    progress: float, warmup_epochs: float, warmup_factor: float, milestones: Sequence[int], gamma: float
) -> float:
    """Multiplier of the base lr after ``progress`` epochs (fractional with per-iteration scheduling).

    ``warmup_factor * (1 - a) + a`` with ``a = progress / warmup_epochs`` during warm-up, times
    ``gamma ** (number of milestones <= progress)``.
    """
    factor = 1.0
    if warmup_epochs > 0 and progress < warmup_epochs:
        alpha = progress / warmup_epochs
        factor = warmup_factor * (1.0 - alpha) + alpha
    return factor * gamma ** bisect.bisect_right(list(milestones), progress)


class WarmupStepSchedule:
    """Sets the learning rate of every parameter group from the training position.

    Args:
        optimizer: the optimizer whose groups' ``lr`` is set (each group's ``initial_lr`` is the base).
        warmup_epochs, warmup_factor, milestones, gamma: see :func:`lr_factor`.
        unit: ``"epoch"`` (the lr changes at epoch boundaries, as TF-CLIP) or ``"iteration"`` (every step, using the
            fractional epoch ``epoch + i / iters_per_epoch``).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_epochs: float,
        warmup_factor: float,
        milestones: Sequence[int],
        gamma: float,
        unit: str = "epoch",
    ) -> None:
        if unit not in ("epoch", "iteration"):
            raise ValueError(f"unit must be 'epoch' or 'iteration' (got {unit!r})")
        self.optimizer = optimizer
        self.warmup_epochs, self.warmup_factor = float(warmup_epochs), float(warmup_factor)
        self.milestones, self.gamma, self.unit = [int(m) for m in milestones], float(gamma), unit
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.position = 0.0

    def progress(self, epoch: int, iteration: int = 0, iters_per_epoch: int = 1) -> float:
        """Training position in epochs used for the lr at ``(epoch, iteration)``."""
        if self.unit == "epoch":
            return float(epoch)
        return epoch + iteration / max(1, iters_per_epoch)

    def step(self, epoch: int, iteration: int = 0, iters_per_epoch: int = 1) -> float:
        """Set the lr for the step at ``(epoch, iteration)`` (0-based); returns the first group's lr."""
        self.position = self.progress(epoch, iteration, iters_per_epoch)
        factor = lr_factor(self.position, self.warmup_epochs, self.warmup_factor, self.milestones, self.gamma)
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor
        return self.optimizer.param_groups[0]["lr"]

    def get_lr(self) -> list[float]:
        """Current lr of each group."""
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state."""
        return {
            "position": self.position,
            "warmup_epochs": self.warmup_epochs,
            "warmup_factor": self.warmup_factor,
            "milestones": self.milestones,
            "gamma": self.gamma,
            "unit": self.unit,
            "initial_lrs": [g["initial_lr"] for g in self.optimizer.param_groups],
            "lrs": self.get_lr(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the position and the groups' base and current lr."""
        try:
            self.position = float(state["position"])
            initial, current = state["initial_lrs"], state["lrs"]
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"schedule state is incomplete ({exc}); the checkpoint is damaged") from exc
        if len(initial) != len(self.optimizer.param_groups):
            raise CheckpointError(
                "schedule state has a different number of parameter groups than the model; "
                "resume with the same configuration"
            )
        for group, base, lr in zip(self.optimizer.param_groups, initial, current):
            group["initial_lr"], group["lr"] = float(base), float(lr)
