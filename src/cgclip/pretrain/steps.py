"""One pretraining step of the tiny CLIP, and its optimiser: the contrastive loss, the supervised step (contrastive +
attribute text classifier + joint digit head + stem digit heads) and the stem-only step, AdamW with warm-up then
cosine decay. The loop that calls them is :func:`cgclip.pretrain.run.pretrain_clip`."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from cgclip.pretrain.config import PretrainConfig
from cgclip.pretrain.targets import attribute_text_loss
from cgclip.runtime import autocast as precision_autocast


def contrastive_loss(
    img: torch.Tensor, txt: torch.Tensor, logit_scale: torch.Tensor, positives: torch.Tensor | None = None
) -> torch.Tensor:
    """Symmetric InfoNCE between L2-normalised images ``[B, d]`` and texts ``[U, d]``.

    ``positives[i, j]`` (``[B, U]``) marks every text that describes image ``i`` (default: the diagonal, ``U == B``);
    each row / column's target is uniform over its positives.
    """
    logits = logit_scale.exp() * img.float() @ txt.float().T
    target = torch.eye(len(img), device=img.device) if positives is None else positives.float()
    loss_i = -(F.log_softmax(logits, dim=1) * (target / target.sum(1, keepdim=True))).sum(1).mean()
    loss_t = -(F.log_softmax(logits.T, dim=1) * (target.T / target.T.sum(1, keepdim=True))).sum(1).mean()
    return (loss_i + loss_t) / 2


def _update(optimizer: torch.optim.Optimizer, loss: torch.Tensor, logit_scale: torch.Tensor | None = None) -> None:
    """Backward, clip the gradients at norm 1, step, and clamp the logit scale to [1, 100]."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    if logit_scale is not None:
        with torch.no_grad():
            logit_scale.clamp_(0.0, math.log(100.0))


def clip_train_step(
    image: torch.nn.Module,
    text: torch.nn.Module,
    logit_scale: torch.nn.Parameter,
    optimizer: torch.optim.Optimizer,
    pixels: torch.Tensor,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    positives: torch.Tensor | None = None,
    autocast: bool = True,
) -> float:
    """One contrastive step of a :class:`ClipImageEncoder` / trainable :class:`ClipTextEncoder` pair; returns the loss.

    Forward passes run under the ``auto`` precision (:mod:`cgclip.runtime`) of the models' device when ``autocast``;
    the loss is computed in float32, gradients are clipped at norm 1 and the logit scale is clamped to [1, 100] after
    the update.
    """
    with precision_autocast(logit_scale.device, "auto" if autocast else "fp32"):
        img = F.normalize(image.encode_image(pixels).float(), dim=-1)
        txt = F.normalize(text.forward_tokens(input_ids, attention_mask).float(), dim=-1)
    loss = contrastive_loss(img, txt, logit_scale, positives)
    _update(optimizer, loss, logit_scale)
    return float(loss.detach())


def _lr_at(step: int, done: float, cfg: PretrainConfig) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to 5 % over the fraction ``done`` of the run."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, done)))))


def build_optimizer(model: torch.nn.Module, cfg: PretrainConfig) -> torch.optim.Optimizer:
    """AdamW over trainable parameters; no weight decay on biases, norms, embeddings and the logit scale. The conv
    stem and the stem heads (a :class:`~cgclip.clip.conv_stem.ConvStem`'s parameters and names starting with
    ``heads.``) learn at
    ``stem_lr_scale`` × the learning rate (each group's ``lr_scale``)."""
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        flat = param.dim() < 2 or "embedding" in name and "patch_embedding" not in name or "logit_scale" in name
        fast = ".patch_embedding." in name and "patch_embedding.weight" not in name or name.startswith("heads.")
        groups.setdefault((flat, fast), []).append(param)
    return torch.optim.AdamW(
        [
            {
                "params": params,
                "weight_decay": 0.0 if flat else cfg.weight_decay,
                "lr_scale": cfg.stem_lr_scale if fast else 1.0,
                "lr": cfg.lr * (cfg.stem_lr_scale if fast else 1.0),
            }
            for (flat, fast), params in groups.items()
        ],
        lr=cfg.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )


def supervised_step(
    image: torch.nn.Module,
    text: torch.nn.Module,
    heads: torch.nn.Module | None,
    logit_scale: torch.nn.Parameter,
    optimizer: torch.optim.Optimizer,
    batch: Any,
    cfg: PretrainConfig,
    joint: torch.nn.Module | None = None,
    precision: str = "auto",
) -> dict[str, float]:
    """One step of the full recipe on a :class:`cgclip.pretrain.batches.StepBatch`; returns its losses.

    ``joint`` (a :class:`~cgclip.pretrain.targets.JointDigitHead`, with ``cfg.joint_digit_weight``) reads
    the digits of the image embeddings and of the number value texts' embeddings.

    With a conv stem (``heads`` not None) the stem grid (the conv stem's last ReLU features: a global max-pool of
    rectified features detects a digit anywhere; of the 1x1 projection's output it could not, 1.6 % of held-out
    numbers after 300 probe steps) is captured with a forward hook. Forward passes run under ``precision``
    (:mod:`cgclip.runtime`) on the models' device; losses in float32; gradients clipped at norm 1; the logit scale
    clamped to [1, 100].
    """
    grid: dict[str, torch.Tensor] = {}
    hook = None
    if heads is not None:  # the last ReLU features of the conv stem, before its 1x1 projection
        stem = image.vision_model.embeddings.patch_embedding.body
        hook = stem.register_forward_hook(lambda _m, _i, out: grid.__setitem__("out", out))
    try:
        with precision_autocast(logit_scale.device, precision):
            img = F.normalize(image.encode_image(batch.pixels).float(), dim=-1)
            cap = F.normalize(text.forward_tokens(batch.caption_ids, batch.caption_mask).float(), dim=-1)
            val = F.normalize(text.forward_tokens(batch.value_ids, batch.value_mask).float(), dim=-1)
    finally:
        if hook is not None:
            hook.remove()
    n_id = len(batch.positives)
    losses = {"contrastive": contrastive_loss(img[:n_id], cap, logit_scale, batch.positives)}
    per_attr = [
        attribute_text_loss(img, val[sl], batch.value_labels[a], logit_scale) for a, sl in batch.value_slices.items()
    ]
    losses["attributes"] = torch.stack(per_attr).mean() if per_attr else img.new_zeros(())
    losses["stem"] = heads.loss(grid["out"], batch.stem_targets) if "out" in grid else img.new_zeros(())
    losses["joint_digits"] = img.new_zeros(())
    if joint is not None and "number" in batch.value_slices:
        numbers = val[batch.value_slices["number"]]
        losses["joint_digits"] = (
            joint.loss(img, batch.stem_targets["tens"], batch.stem_targets["ones"])
            + joint.loss(numbers, batch.value_digits["tens"], batch.value_digits["ones"])
        ) / 2
    total = (
        losses["contrastive"]
        + cfg.attribute_weight * losses["attributes"]
        + cfg.stem_weight * losses["stem"]
        + cfg.joint_digit_weight * losses["joint_digits"]
    )
    _update(optimizer, total, logit_scale)
    return {"loss": float(total.detach()), **{k: float(v.detach()) for k, v in losses.items()}}


def stem_step(
    image: torch.nn.Module,
    heads: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Any,
    precision: str = "auto",
) -> dict[str, float]:
    """One step of the stem phase: only the conv stem and its digit heads learn.

    Trained jointly from the start, the stem did not learn digits (its heads were at chance after 750 steps): the
    gradients that reach it through the transformer dominate. A few hundred steps alone give it digit features first
    (the probe's stem alone, ``--models stem``, reads 46.5 % of held-out numbers after 300 steps).
    """
    with precision_autocast(next(heads.parameters()).device, precision):
        grid = image.vision_model.embeddings.patch_embedding.body(batch.pixels)
    loss = heads.loss(grid, batch.stem_targets)
    _update(optimizer, loss)
    return {"loss": float(loss.detach()), "stem": float(loss.detach())}
