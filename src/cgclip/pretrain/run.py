"""Pretrain the embedded tiny CLIP on synthetic crops, captions and attribute labels; save it in Hugging Face format.

Recipe (``tiny-clip-v5``; v4 was ``architecture="tiny-vit"``, 2000 steps, no joint digit head; v3 was v4 with
``crop_style="loose"``): identities from the pretraining namespace (:mod:`cgclip.pretrain.data`, disjoint
from every ReID world), sports and dance, rendered at 128×64. The image tower is the CLIP vision transformer behind
a stride-16 conv stem with a global max-pool shortcut (``architecture="tiny-cnn"``, the shipped one;
:mod:`cgclip.clip.conv_stem`, which learns digits from little data), behind a stride-8 stem (``"tiny"``), or with
plain 16-px patches (``"tiny-vit"``, which does not learn digits; docs/RESULTS.md). Each step
(:mod:`cgclip.pretrain.batches`) holds identity crops with one caption each and back-view crops wearing
random numbers, and minimises

* the symmetric InfoNCE loss between identity crops and their captions (CLIP's learnable logit scale, clamped at
  100; captions shared by several identities of a batch count as positives for all of them),
* + ``attribute_weight`` × the text-classifier loss of every crop's uniform, hair, shoes, socks, accessories and
  legible number among text embeddings of that attribute's values (:mod:`cgclip.pretrain.targets`),
* + ``joint_digit_weight`` × the loss of one digit head in the joint embedding space shared by both towers, on the
  image embeddings of crops with a legible number and the text embeddings of the step's number wordings
  (:class:`~cgclip.pretrain.targets.JointDigitHead`, discarded after training; it bootstraps the binding of
  numbers to words, which the text-classifier loss alone does not start),
* + with a conv stem, ``stem_weight`` × the loss of linear digit heads on the max-pooled stem features (discarded
  after training), which can also train the stem alone for the first ``stem_steps`` steps.

AdamW, linear warm-up then cosine decay, on the CPU by default (``device``: any :mod:`cgclip.runtime` spelling), under
the ``auto`` precision of :mod:`cgclip.runtime` (bf16 on a GPU and on a CPU with native bf16, fp32 elsewhere).
``steps`` fixes the length (the recorded recipe of the shipped checkpoint, :mod:`cgclip.clip.embedded`); with
``steps=None`` training runs until a time budget (``minutes``) is spent, the schedule following elapsed time. A run
with fixed steps saves its state every ``checkpoint_every`` steps (:mod:`cgclip.pretrain.state`) and a rerun of the
same command resumes it.

The output directory holds ``config.json`` (declaring the conv stem if any), ``model.safetensors`` (float16), the
tokenizer files, ``pretrain_report.json`` (zero-shot attribute accuracy on held-out identities — one crop per view
each, the jersey number scored on back views where it is legible — chance levels, the accuracy curve during
training, timings and the recipe) and ``manifest.json`` (command, seed, checksums). Its positional table is the
square grid of a 128 px image (8×8 at 16-px patches, 16×16 at stride 8); training at 128×64 resamples it to the
half-width grid in every forward pass, so loading at 128×64 reproduces the trained positions exactly.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cgclip.clip.random_clip import finalize_dir, save_clip_model
from cgclip.errors import CheckpointError, ConfigError
from cgclip.io_utils import check_output_dir, write_json
from cgclip.pretrain.config import SHIPPED_STEPS, PretrainConfig, check_pretrain_config  # noqa: F401 - re-exported
from cgclip.pretrain.steps import (  # noqa: F401 - re-exported
    _lr_at,
    build_optimizer,
    clip_train_step,
    contrastive_loss,
    stem_step,
    supervised_step,
)
from cgclip.progress import progress
from cgclip.runtime import resolve_runtime

logger = logging.getLogger(__name__)

REPORT_NAME = "pretrain_report.json"
REPORT_FORMAT = "cgclip-pretrain-report-v2"


def _tokenizer(scratch: Path, cfg: PretrainConfig, corpus: list[str]) -> tuple[Path, dict[str, int], Any]:
    from transformers import CLIPTokenizer

    from cgclip.clip.backbone import hf_quiet
    from cgclip.clip.tokenizer import build_clip_tokenizer, default_corpus

    tok_dir = scratch / "tokenizer"
    vocab = build_clip_tokenizer(tok_dir, corpus + default_corpus(), num_merges=cfg.num_merges)
    with hf_quiet():
        tokenizer = CLIPTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
    return tok_dir, vocab, tokenizer


def pretrain_clip(
    out_dir: str | Path,
    config: PretrainConfig | None = None,
    overwrite: bool = False,
    command: str | None = None,
    *,
    device: str = "cpu",
    precision: str = "auto",
) -> dict[str, Any]:
    """Pretrain the tiny CLIP, save it (atomically) with its tokenizer, report and manifest (``command``, seed and
    checksums, :func:`cgclip.clip.embedded.write_manifest`) to ``out_dir``; return the report.

    ``device`` and ``precision`` are :mod:`cgclip.runtime` spellings (fp16 is refused: there is no gradient scaler);
    the models are initialised on the CPU either way, so a seed gives the same start on every device.

    A fixed-step run interrupted before the end resumes from its last saved state when called again with the same
    ``config`` (see :mod:`cgclip.pretrain.state`).
    """
    from cgclip.clip.backbone import ClipImageEncoder, ClipTextEncoder
    from cgclip.clip.tokenizer import EOS_TOKEN
    from cgclip.pretrain.batches import BatchMaker
    from cgclip.pretrain.data import group_index, pretrain_identities, render_number_pool, render_pool
    from cgclip.pretrain.state import clear_state, load_state, resume_dir, save_state
    from cgclip.pretrain.zero_shot import zero_shot_attributes

    cfg = config or PretrainConfig()
    check_pretrain_config(cfg)
    dev, prec = resolve_runtime(device, precision)
    if prec == "fp16":
        raise ConfigError(
            f"pretraining has no gradient scaler for fp16 (precision {precision!r} on {dev}); pass "
            "--precision bf16 or fp32"
        )
    out_dir = Path(out_dir)
    if (out_dir / REPORT_NAME).is_file() and not overwrite:
        raise CheckpointError(
            "output directory is not empty: it holds a pretrained CLIP; choose a new --out or pass --overwrite",
            path=out_dir,
        )
    check_output_dir(
        out_dir, lambda p: overwrite and p.is_dir(), fix="choose a new --out (or pass --overwrite to replace a folder)"
    )
    start = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    train_ids = pretrain_identities(cfg.train_identities_per_kind, cfg.seed, "train")
    held_ids = pretrain_identities(cfg.heldout_identities_per_kind, cfg.seed, "heldout")
    captions, corpus = _captions_and_corpus(cfg, train_ids, held_ids)
    with tempfile.TemporaryDirectory(prefix="cgclip-pretrain-") as scratch:
        tok_dir, vocab, tokenizer = _tokenizer(Path(scratch), cfg, sorted(corpus))
        model, heads, joint = _initial_models(cfg, vocab)
        image = ClipImageEncoder(model.vision_model, model.visual_projection, image_size=(128, 64), live_positions=True)
        text = ClipTextEncoder(model.text_model, model.text_projection, tokenizer, frozen=False)
        t0 = time.perf_counter()
        style = cfg.crop_style
        pool, owner, legible = render_pool(train_ids, cfg.crops_per_identity, cfg.seed, style=style)
        held_pool, held_owner, held_legible = render_pool(
            held_ids, cfg.heldout_crops_per_identity, cfg.seed + 1, style=style
        )
        number_pool = render_number_pool(train_ids, cfg.number_crops, cfg.seed, style=style)
        render_s = time.perf_counter() - t0

        def tokenize(t: str) -> list[int]:
            return tokenizer(t, truncation=True, max_length=77)["input_ids"]

        maker = BatchMaker(
            rng,
            train_ids,
            pool,
            owner,
            legible,
            number_pool,
            captions,
            tokenize,
            vocab[EOS_TOKEN],
            cfg,
            group_index(train_ids),
        )

        def zero_shot() -> dict[str, Any]:
            return zero_shot_attributes(image, text, held_ids, held_pool, held_owner, held_legible, precision=prec)

        before = zero_shot()
        trainable = torch.nn.ModuleDict(
            {
                "clip": model,
                **({"heads": heads} if heads is not None else {}),
                **({"joint": joint} if joint is not None else {}),
            }
        ).to(dev)
        opt = build_optimizer(trainable, cfg)
        recipe = {"config": dataclasses.asdict(cfg), "format": REPORT_FORMAT}
        work = resume_dir(out_dir)
        state = load_state(work, recipe, {"model": trainable}, opt, rng) if cfg.steps is not None else None
        step, history, curve = 0, [], []
        prior_s = 0.0
        if state is not None:
            step, history, curve, prior_s = state["step"], state["history"], state["curve"], state["train_s"]
            logger.info("resuming the pretraining at step %d from %s", step, work)
        train_budget = max(1.0, cfg.minutes * 60.0 - (time.perf_counter() - start) - 15.0)
        model.train()
        bar = progress(
            total=None if cfg.steps is None else cfg.stem_steps + cfg.steps,
            initial=step,
            desc="pretrain-clip",
            unit="step",
        )
        t_train = time.perf_counter() - prior_s
        total = None if cfg.steps is None else cfg.stem_steps + cfg.steps
        while True:
            elapsed = time.perf_counter() - t_train
            main = step - cfg.stem_steps
            done = main / cfg.steps if cfg.steps is not None else elapsed / train_budget
            if done >= 1.0:
                break
            batch = batch_to(maker.next(), dev)
            losses = _step(step, done, cfg, opt, batch, (image, text, heads, joint, model.logit_scale), prec)
            history.append(losses["loss"])
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{losses['loss']:.3f}")
            if total is not None and (step % cfg.checkpoint_every == 0 or step == total):
                curve.append(_curve_point(step, time.perf_counter() - t_train, losses, zero_shot()))
                logger.info(
                    "step %d/%d (%.2f s/step): %s",
                    step,
                    total,
                    curve[-1]["seconds"] / step,
                    ", ".join(f"{a} {r:.2f}" for a, r in curve[-1]["zero_shot"].items()),
                )
                model.train()
                if step < total:
                    save_state(
                        work,
                        recipe,
                        {"model": trainable},
                        opt,
                        rng,
                        {"step": step, "history": history, "curve": curve, "train_s": time.perf_counter() - t_train},
                    )
        bar.close()
        train_s = time.perf_counter() - t_train
        model.eval()
        after = zero_shot()
        report = _report(
            cfg,
            model,
            step,
            history,
            curve,
            before,
            after,
            dev,
            prec,
            sizes={
                "train_identities": len(train_ids),
                "heldout_identities": len(held_ids),
                "train_crops": int(len(pool)),
                "number_crops": int(len(number_pool[0])),
                "heldout_crops": int(len(held_pool)),
                "vocab_size": len(vocab),
            },
            seconds={"render": render_s, "train": train_s, "total": time.perf_counter() - start},
        )
        _publish(
            model,
            tok_dir,
            report,
            Path(scratch) / "model",
            out_dir,
            overwrite,
            command or "cgclip.pretrain.run.pretrain_clip",
            cfg.seed,
        )
        clear_state(work)
    logger.info("saved pretrained tiny CLIP to %s (%d steps, %.0f s)", out_dir, step, report["seconds"]["total"])
    return report


def _captions_and_corpus(cfg: PretrainConfig, train_ids: list, held_ids: list) -> tuple[dict[str, list], list[str]]:
    """The training captions by kind (long, sentence, phrase) and every text the tokenizer is trained on."""
    from cgclip.pretrain.data import attribute_phrases, identity_captions, prompt_sets
    from cgclip.pretrain.targets import ATTRIBUTES, value_wordings
    from cgclip.pretrain.zero_shot import attribute_prompt

    per_identity = [identity_captions(i, cfg.paraphrases, seed=cfg.seed) for i in train_ids]
    captions = {kind: [c[kind] for c in per_identity] for kind in ("long", "sentence", "phrase")}
    prompts = [attribute_prompt(a, v) for a, vals in prompt_sets(train_ids + held_ids).items() for v in vals]
    values = {(a, getattr(i, a)) for i in train_ids + held_ids for a in ATTRIBUTES if getattr(i, a)}
    values |= {("number", str(n)) for n in range(1, 100)}
    corpus = [t for caps in captions.values() for c in caps for t in c] + prompts
    corpus += [p for i in held_ids for p in attribute_phrases(i)] + [w for a, v in values for w in value_wordings(a, v)]
    return captions, corpus


def _initial_models(cfg: PretrainConfig, vocab: dict[str, int]) -> tuple[Any, Any, Any]:
    """The CLIP, its stem heads (a conv stem only) and the joint digit head, initialised from ``cfg.seed`` on the
    CPU without touching the global random state."""
    from transformers import CLIPModel

    from cgclip.clip.conv_stem import apply_stem
    from cgclip.clip.random_clip import clip_config
    from cgclip.pretrain.targets import JointDigitHead, StemHeads

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = CLIPModel(clip_config(cfg.architecture, vocab))
        model.set_attn_implementation("eager")  # 1.4x faster than SDPA for these small CPU attentions
        heads = None
        if apply_stem(model.vision_model):
            heads = StemHeads(int(model.config.vision_config.cgclip_stem["channels"][-1]))
        joint = JointDigitHead(model.config.projection_dim) if cfg.joint_digit_weight > 0 else None
    return model, heads, joint


def _report(
    cfg: PretrainConfig,
    model: Any,
    step: int,
    history: list[float],
    curve: list[dict[str, Any]],
    before: dict[str, Any],
    after: dict[str, Any],
    dev: Any,
    prec: str,
    sizes: dict[str, int],
    seconds: dict[str, float],
) -> dict[str, Any]:
    """``pretrain_report.json``: the recipe, the data sizes, the loss, the zero-shot curve and the runtime."""
    return {
        "format": REPORT_FORMAT,
        "architecture": cfg.architecture,
        "image_size": [128, 64],
        "saved_grid": [128 // int(model.config.vision_config.patch_size)] * 2,
        "config": dataclasses.asdict(cfg),
        "steps": max(0, step - cfg.stem_steps),
        "stem_steps": min(step, cfg.stem_steps),
        "crops_seen": step * (cfg.batch_size + cfg.number_batch),
        **sizes,
        "loss_first10": float(np.mean(history[:10])),
        "loss_last10": float(np.mean(history[-10:])),
        "logit_scale": float(model.logit_scale.detach().exp()),
        "seconds": seconds,
        "curve": curve,
        "zero_shot": after,
        "zero_shot_before_training": before,
        "runtime": {"device": str(dev), "precision": prec},
    }


def _publish(
    model: Any,
    tok_dir: Path,
    report: dict[str, Any],
    staged: Path,
    out_dir: Path,
    overwrite: bool,
    command: str,
    seed: int,
) -> None:
    """Save the model (fp16 on disk), report and manifest in ``staged``, then move it into ``out_dir`` atomically."""
    from cgclip.clip.embedded import write_manifest

    save_clip_model(model.cpu(), staged, tok_dir, dtype=torch.float16)  # half the size; loaded as float32
    write_json(staged / REPORT_NAME, report)
    write_manifest(staged, command, seed, out_dir.name)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    tmp.rmdir()
    shutil.move(str(staged), str(tmp))
    finalize_dir(tmp, out_dir, overwrite)


def _step(
    step: int,
    done: float,
    cfg: PretrainConfig,
    opt: torch.optim.Optimizer,
    batch: Any,
    parts: tuple[Any, Any, Any, Any, Any],
    prec: str,
) -> dict[str, float]:
    """One optimisation step: the stem phase (linear warm-up over 50 steps, then the stem's full learning rate) or
    the supervised phase on the schedule (``done``: the fraction of it behind); ``parts`` = (image tower, text
    tower, stem heads, joint digit head, logit scale)."""
    image, text, heads, joint, logit_scale = parts
    main = step - cfg.stem_steps
    if main < 0:
        for group in opt.param_groups:
            group["lr"] = cfg.lr * group.get("lr_scale", 1.0) * min(1.0, (step + 1) / 50)
        return stem_step(image, heads, opt, batch, prec)
    for group in opt.param_groups:
        group["lr"] = _lr_at(main, max(0.0, done), cfg) * group.get("lr_scale", 1.0)
    return supervised_step(image, text, heads, logit_scale, opt, batch, cfg, joint, prec)


def _curve_point(step: int, seconds: float, losses: dict[str, float], zs: dict[str, Any]) -> dict[str, Any]:
    return {
        "step": step,
        "seconds": round(seconds, 1),
        **{k: round(v, 4) for k, v in losses.items()},
        "zero_shot": {a: round(r["accuracy"], 4) for a, r in zs["attributes"].items()},
    }


def batch_to(batch: Any, device: torch.device) -> Any:
    """A step batch (:class:`cgclip.pretrain.batches.StepBatch`) with its tensors on ``device`` (itself on the CPU)."""
    if device.type == "cpu":
        return batch

    def move(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to(device, non_blocking=True)
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        return value

    return dataclasses.replace(batch, **{f.name: move(getattr(batch, f.name)) for f in dataclasses.fields(batch)})
