"""Pretrain the embedded tiny CLIP contrastively on synthetic image–caption pairs and save it in Hugging Face format.

Recipe: identities from the pretraining namespace (:mod:`cgclip.models.pretrain_data`, disjoint from every ReID
world), sports and dance; a pool of rendered 128×64 crops per identity; each step draws ``batch_size`` distinct
identities (about ``group_fraction`` of them as whole teams / dance groups, whose members share a uniform and differ
only in number, hair, shoes, socks, ...: hard negatives; the rest at random), one crop and one caption each (the
batch's caption kind — whole paraphrase, single sentence, attribute phrase, or number phrase on back-view crops
wearing random numbers — drawn by ``caption_mix``), and minimises the symmetric InfoNCE loss with CLIP's learnable
logit scale (clamped at 100). Captions shared by several identities in a batch (short attribute phrases such as
"white sneakers") count as positives for all of them.
AdamW, linear warm-up then cosine decay, bf16 autocast on CPU. With ``steps=None`` training runs until a time budget
(``minutes``, including rendering) is spent, the learning-rate schedule following elapsed time.

The architecture is :func:`cgclip.models.random_clip.clip_config` ``"tiny"``: its saved positional table is the square
8×8 grid of a 128 px image; training at 128×64 resamples it to 8×4 in every forward pass (bicubic, the same
function :func:`cgclip.models.clip_backbone.load_clip` uses), so loading the checkpoint at 128×64 reproduces the
trained positions exactly, and other sizes (256×128 → 16×8) resample the saved table like any real checkpoint.

The output directory holds ``config.json``, ``model.safetensors``, the tokenizer files and ``pretrain_report.json``
(zero-shot attribute accuracy on held-out identities — one crop per view each, the jersey number scored on back views
where it is legible — chance levels, timings and the recipe).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cgclip.errors import CheckpointError, ConfigError
from cgclip.io_utils import write_json
from cgclip.progress import progress

logger = logging.getLogger(__name__)

DEFAULT_CLIP_NAME = "tiny-clip-v2"
REPORT_NAME = "pretrain_report.json"


@dataclass
class PretrainConfig:
    """Pretraining settings (defaults: about 4 minutes on 2 CPU cores)."""

    minutes: float = 4.0
    steps: int | None = None
    seed: int = 0
    batch_size: int = 64
    lr: float = 2e-4  # 1e-3 collapses both towers to one direction within ~10 steps
    weight_decay: float = 0.1
    warmup_steps: int = 20
    train_identities_per_kind: int = 640
    crops_per_identity: int = 6
    heldout_identities_per_kind: int = 96
    heldout_crops_per_identity: int = 4  # one per view
    paraphrases: int = 10
    # batch kinds: long, sentence, phrase, number (back-view crops wearing random numbers, "number N"). Number
    # batches are off: 500 number-only steps left their loss at 4.12 (chance 4.16) — this tiny ViT does not learn to
    # read a 2-digit number (about one 16-px patch at 128x64) in a pretraining budget of minutes; even trained with
    # digit labels it stays near chance for thousands of steps (benchmarks/probe_number_reading.py, docs/RESULTS.md)
    caption_mix: tuple[float, ...] = (0.3, 0.3, 0.4, 0.0)
    number_crops: int = 4096  # size of the random-number pool (rendered only when number batches are on)
    num_merges: int = 1500
    group_fraction: float = 0.5  # share of each batch drawn as whole teams / groups (same uniform: hard negatives)


def default_clip_dir() -> Path:
    """Where the embedded default CLIP lives: ``$CGCLIP_HOME/tiny-clip-v2`` (default ``~/.cache/cgclip/...``)."""
    home = os.environ.get("CGCLIP_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "cgclip")
    return Path(home) / DEFAULT_CLIP_NAME


def _batch_tokens(token_lists: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(t) for t in token_lists)
    ids = torch.full((len(token_lists), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(token_lists), width), dtype=torch.long)
    for row, toks in enumerate(token_lists):
        ids[row, :len(toks)] = torch.tensor(toks)
        mask[row, :len(toks)] = 1
    return ids, mask


def contrastive_loss(img: torch.Tensor, txt: torch.Tensor, logit_scale: torch.Tensor,
                     positives: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE between L2-normalised images ``[B, d]`` and texts ``[U, d]``.

    ``positives[i, j]`` (``[B, U]``) marks every text that describes image ``i`` (default: the diagonal, ``U == B``);
    each row / column's target is uniform over its positives.
    """
    logits = logit_scale.exp() * img.float() @ txt.float().T
    target = torch.eye(len(img), device=img.device) if positives is None else positives.float()
    loss_i = -(F.log_softmax(logits, dim=1) * (target / target.sum(1, keepdim=True))).sum(1).mean()
    loss_t = -(F.log_softmax(logits.T, dim=1) * (target.T / target.T.sum(1, keepdim=True))).sum(1).mean()
    return (loss_i + loss_t) / 2


def clip_train_step(image: torch.nn.Module, text: torch.nn.Module, logit_scale: torch.nn.Parameter,
                    optimizer: torch.optim.Optimizer, pixels: torch.Tensor, input_ids: torch.Tensor,
                    attention_mask: torch.Tensor, positives: torch.Tensor | None = None,
                    autocast: bool = True) -> float:
    """One contrastive step of a :class:`ClipImageEncoder` / trainable :class:`ClipTextEncoder` pair; returns the loss.

    Forward passes run under bf16 autocast (CPU) when ``autocast``; the loss is computed in float32, gradients are
    clipped at norm 1 and the logit scale is clamped to [1, 100] after the update.
    """
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        img = F.normalize(image.encode_image(pixels).float(), dim=-1)
        txt = F.normalize(text.forward_tokens(input_ids, attention_mask).float(), dim=-1)
    loss = contrastive_loss(img, txt, logit_scale, positives)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    with torch.no_grad():
        logit_scale.clamp_(0.0, math.log(100.0))
    return float(loss.detach())


def _lr_at(step: int, done: float, cfg: PretrainConfig) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to 5 % over the fraction ``done`` of the run."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, done)))))


def build_optimizer(model: torch.nn.Module, cfg: PretrainConfig) -> torch.optim.Optimizer:
    """AdamW over trainable parameters; no weight decay on biases, norms, embeddings and the logit scale."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        flat = param.dim() < 2 or "embedding" in name or "logit_scale" in name
        (no_decay if flat else decay).append(param)
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)


def pretrain_clip(out_dir: str | Path, config: PretrainConfig | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Pretrain the tiny CLIP, save it (atomically) with its tokenizer and report to ``out_dir``; return the report."""
    from transformers import CLIPModel, CLIPTokenizer

    from cgclip.models.clip_backbone import ClipImageEncoder, ClipTextEncoder, hf_quiet
    from cgclip.models.pretrain_data import (attribute_phrases, group_index, identity_captions, number_phrases,
                                             pretrain_identities, prompt_sets, render_number_pool, render_pool,
                                             sample_batch, to_pixels)
    from cgclip.models.random_clip import clip_config, finalize_dir, save_clip_model
    from cgclip.models.tokenizer import EOS_TOKEN, build_clip_tokenizer, default_corpus
    from cgclip.models.zero_shot import attribute_prompt, zero_shot_attributes

    cfg = config or PretrainConfig()
    if len(cfg.caption_mix) != 4 or min(cfg.caption_mix) < 0 or sum(cfg.caption_mix) <= 0:
        raise ConfigError(f"caption_mix needs 4 non-negative weights (long, sentence, phrase, number), got "
                          f"{cfg.caption_mix}")
    if cfg.caption_mix[3] > 0 and cfg.number_crops < cfg.batch_size:
        raise ConfigError(f"number batches need number_crops >= batch_size (got {cfg.number_crops} < "
                          f"{cfg.batch_size})")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise CheckpointError("output directory exists and is not empty; choose a new --out or pass --overwrite",
                              path=out_dir)
    start = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    train_ids = pretrain_identities(cfg.train_identities_per_kind, cfg.seed, "train")
    held_ids = pretrain_identities(cfg.heldout_identities_per_kind, cfg.seed, "heldout")
    per_identity = [identity_captions(i, cfg.paraphrases, seed=cfg.seed) for i in train_ids]
    kinds = ("long", "sentence", "phrase")
    captions = {kind: [c[kind] for c in per_identity] for kind in kinds}
    caption_sets = [{t for kind in kinds for t in c[kind]} for c in per_identity]
    number_texts = {str(n): number_phrases(str(n)) for n in range(1, 100)}
    prompts = [attribute_prompt(a, v) for a, vals in prompt_sets(train_ids + held_ids).items() for v in vals]
    with tempfile.TemporaryDirectory(prefix="cgclip-pretrain-") as scratch:
        tok_dir = Path(scratch) / "tokenizer"
        corpus = [t for c in per_identity for kind in kinds for t in c[kind]] + prompts + default_corpus()
        corpus += [p for i in held_ids for p in attribute_phrases(i)] + [t for v in number_texts.values() for t in v]
        vocab = build_clip_tokenizer(tok_dir, corpus, num_merges=cfg.num_merges)
        with hf_quiet():
            tokenizer = CLIPTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
        tokens = {kind: [tokenizer(c, truncation=True, max_length=77)["input_ids"] for c in caps]
                  for kind, caps in captions.items()}
        number_tokens = {t: tokenizer(t)["input_ids"] for v in number_texts.values() for t in v}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            model = CLIPModel(clip_config("tiny", vocab))
        image = ClipImageEncoder(model.vision_model, model.visual_projection, image_size=(128, 64),
                                 live_positions=True)
        text = ClipTextEncoder(model.text_model, model.text_projection, tokenizer, frozen=False)
        t0 = time.perf_counter()
        pool, owner, _ = render_pool(train_ids, cfg.crops_per_identity, cfg.seed)
        held_pool, held_owner, held_legible = render_pool(held_ids, cfg.heldout_crops_per_identity, cfg.seed + 1)
        number_pool, pool_numbers = render_number_pool(train_ids, cfg.number_crops if cfg.caption_mix[3] > 0 else 0,
                                                       cfg.seed)
        render_s = time.perf_counter() - t0
        crops_of = [np.flatnonzero(owner == k) for k in range(len(train_ids))]
        groups = group_index(train_ids)
        before = zero_shot_attributes(image, text, held_ids, held_pool, held_owner, held_legible)
        opt = build_optimizer(model, cfg)
        model.train()
        # time-budgeted runs: the schedule follows elapsed training time, so a busy machine trains fewer steps
        # but still completes the warm-up/decay and finishes on time (evaluation and saving get ~15 s)
        train_budget = max(1.0, cfg.minutes * 60.0 - (time.perf_counter() - start) - 15.0)
        batch = min(cfg.batch_size, len(train_ids))
        losses: list[float] = []
        bar = progress(total=cfg.steps, desc="pretrain-clip", unit="step")
        t_train, step = time.perf_counter(), 0
        mix = np.asarray(cfg.caption_mix, dtype=float) / sum(cfg.caption_mix)
        while True:
            done = step / cfg.steps if cfg.steps is not None else (time.perf_counter() - t_train) / train_budget
            if done >= 1.0 or (cfg.steps is not None and step >= cfg.steps):
                break
            kind = ("long", "sentence", "phrase", "number")[int(rng.choice(4, p=mix))]
            if kind == "number":  # back views, numbers drawn at random
                crop_idx = rng.choice(len(number_pool), batch, replace=False).tolist()
                numbers = [pool_numbers[i] for i in crop_idx]
                texts = [number_texts[n][int(rng.integers(4))] for n in numbers]
                unique = list(dict.fromkeys(texts))
                positives = torch.tensor([[t in number_texts[n] for t in unique] for n in numbers])
                ids, mask = _batch_tokens([number_tokens[t] for t in unique], vocab[EOS_TOKEN])
                pixels = to_pixels(number_pool[crop_idx])
            else:
                chosen = sample_batch(rng, groups, len(train_ids), batch, cfg.group_fraction)
                crop_idx = [int(rng.choice(crops_of[k])) for k in chosen]
                cap_idx = [int(rng.integers(len(captions[kind][k]))) for k in chosen]
                texts = [captions[kind][k][c] for k, c in zip(chosen, cap_idx)]
                unique = list(dict.fromkeys(texts))  # encode each distinct text once
                first = {t: (k, c) for t, k, c in zip(texts, chosen, cap_idx)}
                positives = torch.tensor([[t in caption_sets[k] for t in unique] for k in chosen])
                ids, mask = _batch_tokens([tokens[kind][first[t][0]][first[t][1]] for t in unique], vocab[EOS_TOKEN])
                pixels = to_pixels(pool[crop_idx])
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, done, cfg)
            loss = clip_train_step(image, text, model.logit_scale, opt, pixels, ids, mask, positives)
            losses.append(loss)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            if step % 50 == 0:
                logger.info("step %d (%.0f%% done, %.2f s/step) loss %.4f (mean of last 50 %.4f)", step, 100 * done,
                            (time.perf_counter() - t_train) / step, losses[-1], float(np.mean(losses[-50:])))
        bar.close()
        train_s = time.perf_counter() - t_train
        model.eval()
        after = zero_shot_attributes(image, text, held_ids, held_pool, held_owner, held_legible)
        report = {
            "format": "cgclip-pretrain-report-v1",
            "architecture": "tiny", "image_size": [128, 64], "saved_grid": [8, 8],
            "config": dataclasses.asdict(cfg), "steps": step, "pairs_seen": step * batch,
            "train_identities": len(train_ids), "heldout_identities": len(held_ids),
            "train_crops": int(len(pool)), "heldout_crops": int(len(held_pool)), "vocab_size": len(vocab),
            "loss_first10": float(np.mean(losses[:10])), "loss_last10": float(np.mean(losses[-10:])),
            "logit_scale": float(model.logit_scale.detach().exp()),
            "seconds": {"render": render_s, "train": train_s, "total": time.perf_counter() - start},
            "zero_shot": after, "zero_shot_before_training": before,
        }
        staged = Path(scratch) / "model"
        save_clip_model(model, staged, tok_dir)
        write_json(staged / REPORT_NAME, report)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
        tmp.rmdir()
        shutil.move(str(staged), str(tmp))
        finalize_dir(tmp, out_dir, overwrite)
    logger.info("saved pretrained tiny CLIP to %s (%d steps, %.0f s)", out_dir, step, report["seconds"]["total"])
    return report


def ensure_default_clip(config: PretrainConfig | None = None) -> Path:
    """Return :func:`default_clip_dir`, pretraining the tiny CLIP there first (``config``) if missing or incomplete."""
    from cgclip.models.clip_backbone import check_clip_dir

    path = default_clip_dir()
    try:
        check_clip_dir(path)
        return path
    except CheckpointError:
        pass
    config = config or PretrainConfig()
    logger.warning("embedded CLIP not found at %s: pretraining it now (about %.0f minutes, once)", path, config.minutes)
    try:
        pretrain_clip(path, config, overwrite=True)
    except CheckpointError:
        check_clip_dir(path)  # another process finished first: use its checkpoint
    return path
