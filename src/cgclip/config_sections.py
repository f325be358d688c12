"""The typed sections of an experiment configuration (:class:`Config`): each key declared once, with its default, its
allowed values (``choices``) or its range (``bounds``) as field metadata (:func:`option`).

:data:`CHOICES` and :data:`RANGES` are read from that metadata; model and dataset names come from
:mod:`cgclip.registry`. Loading, merging and validation live in :mod:`cgclip.config`, which re-exports everything here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cgclip.registry import DATASETS, MODELS
from cgclip.runtime import PRECISIONS

MODEL_NAMES = MODELS.names()
#: The largest seed numpy accepts (seeds are 32-bit unsigned).
SEED_MAX = 2**32 - 1
DATASET_KINDS = ("auto", *DATASETS.names())


def option(
    default: Any = dataclasses.MISSING,
    *,
    choices: Sequence[Any] | None = None,
    bounds: tuple[float | None, float | None] | None = None,
    open_min: bool = False,
    open_max: bool = False,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A configuration field with its allowed values: ``choices`` (a sequence) or inclusive ``bounds`` ``(lo, hi)``
    (None = unbounded on that side; ``open_min`` / ``open_max`` exclude ``lo`` / ``hi``; a list or tuple value is
    checked element by element), read by :func:`cgclip.config.check_allowed` for YAML, ``--set``, ``build_model``
    and every other options dataclass (:func:`cgclip.config.check_options`) alike."""
    metadata = {
        k: v
        for k, v in (
            ("choices", tuple(choices) if choices is not None else None),
            ("bounds", bounds),
            ("open_min", open_min or None),
            ("open_max", open_max or None),
        )
        if v is not None
    }
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class DataConfig:
    """Dataset, frame sampling, batch composition and augmentation.

    Attributes:
        root: dataset folder ("" = given on the command line).
        kind: dataset format (``auto`` guesses from the folder's files).
        split: iLIDS-VID split 0–9 (ignored by other datasets).
        options: extra keyword options for the dataset loader (e.g. ``{test_half: second}`` for iLIDS-VID).
        captions: caption source for CG-CLIP (a caption JSONL or a dataset folder with ``identities.csv``);
            None = the dataset folder's own identity table.
        image_size: input ``[H, W]``.
        seq_len: frames per training clip (T).
        p, k: identities per batch × tracklets per identity (global over distributed ranks).
        epoch_mode: what one epoch covers: ``tracklet`` (every tracklet about once, torchreid's
            RandomIdentitySampler, as TF-CLIP) or ``identity`` (every identity about once).
        spread_cameras: spread each identity's k tracklets of a batch over its cameras (sequences), so positives
            rarely share a background; off in the paper presets (Table S.7 samples tracklets at random).
        same_camera_identities: up to this many of each batch's P identities come from one camera (sequence), the
            rest at random: negatives sharing the scene (same uniform and background in sports / dance); 0 = off
            (the paper's random P).
        flip_p, erase_p: random horizontal flip / random erasing probabilities.
        val_identities: train identities held out as a validation split for model selection (0 = none; then the
            last epoch is the selected model).
        val_selection: how they are drawn (:func:`cgclip.train.validation.carve_validation`): ``cameras`` (camera
            by camera, so held-out people share scenes and distractors as test people do) or ``random``.
        cache_images: keep decoded, resized frames in memory (small datasets).
    """

    root: str = ""
    kind: str = option("auto", choices=DATASET_KINDS)
    split: int = option(0, bounds=(0, 9))
    options: dict = field(default_factory=dict)
    captions: str | None = None
    image_size: list = field(default_factory=lambda: [256, 128])
    seq_len: int = option(8, bounds=(1, None))
    p: int = option(8, bounds=(2, None))  # the losses need negatives: at least two identities per batch
    k: int = option(4, bounds=(1, None))
    epoch_mode: str = option("tracklet", choices=("tracklet", "identity"))
    spread_cameras: bool = False
    same_camera_identities: int = option(0, bounds=(0, None))
    flip_p: float = option(0.5, bounds=(0, 1))
    erase_p: float = option(0.5, bounds=(0, 1))
    # one rectangle (2-40 %) for the whole clip, or "frame": each frame its own (2-20 %, TF-CLIP's release);
    # None = the model's default (MODEL_DATA_DEFAULTS: frame for tfclip, clip for the others)
    erase_mode: str | None = option(None, choices=("clip", "frame", None))
    val_identities: int = option(0, bounds=(0, None))
    val_selection: str = option("cameras", choices=("cameras", "random"))
    cache_images: bool = False


@dataclass
class ModelConfig:
    """Which model and its switches (SPEC §2; the field names are the ``build_model`` options).

    ``name`` is ``cgclip``, ``tfclip`` or ``tap``; ``clip_path`` a Hugging Face CLIP directory (None = the embedded
    default tiny CLIP). A field whose default is None and that :data:`MODEL_DEFAULTS` lists takes the named model's
    own default (:func:`resolve_model_defaults`): SIE is on for ``tfclip`` (TF-CLIP's ``SIE_CAMERA: True``) and off
    for ``cgclip`` and ``tap``. ``v2m_logits`` and ``memory_clips`` concern ``tfclip`` only (docs/training.md).
    """

    name: str = option("cgclip", choices=MODEL_NAMES)
    clip_path: str | None = None
    tfe_queries: int = option(15, bounds=(1, None))
    tfe_blocks: int = option(1, bounds=(1, None))
    tfe_output: str = option("concat", choices=("concat", "tfe", "cls_mean"))
    tfe_norm: bool = True  # LayerNorm on the TFE output: balances it against the CLS mean (chosen on validation)
    part_norm: bool = False  # cgclip retrieval feature: each part (CLS mean, TFE) L2-normalised before the concat
    cmr_fusion: str = option("c", choices=("a", "b", "c"))
    cmr_blocks: int = option(2, bounds=(1, None))
    memory_momentum: float = option(0.2, bounds=(0, 1))
    static_memory: bool = False
    identity_mode: str = option("caption_idtext", choices=("caption", "caption_idtext", "caption_idemb"))
    ssp_blocks: int = option(2, bounds=(1, None))
    tmd: bool = True
    w_v2m: float = option(1.0, bounds=(0, None))
    w_tri: float = option(1.0, bounds=(0, None))
    w_ce: float = option(0.25, bounds=(0, None))
    triplet_margin: float = option(0.3, bounds=(0, None))
    label_smoothing: float = option(0.1, bounds=(0, 1), open_max=True)
    sie: bool | None = None  # SIE camera embedding; None = the model's default (on for tfclip only)
    sie_coef: float = option(1.0, bounds=(0, None))
    freeze_stem: bool = False  # keep the patch embedding (a ViT's patch conv, the tiny CLIP's conv stem) as loaded
    # SIE added to the CLS token ("cls", TF-CLIP) or every token ("all"); None = model's
    sie_tokens: str | None = option(None, choices=("cls", "all", None))
    # tfclip: raw inner products as released, or "cosine" x a learnable scale
    v2m_logits: str = option("raw", choices=("raw", "cosine"))
    # tfclip CLIP-Memory over every consecutive T-frame clip ("all") or the first RRS clip
    memory_clips: str = option("all", choices=("all", "first"))
    # retrieval feature: before the BNNeck (TF-CLIP, CLIP-ReID TEST.NECK_FEAT) or after
    neck_feat: str = option("before", choices=("before", "after"))
    # scale s of L_v2m / L_v2rm at the start; None = the loaded CLIP's own
    logit_scale_init: float | None = option(None, bounds=(1, 100))


@dataclass
class OptimConfig:
    """Adam with linear warm-up and step decay (Table S.7).

    The learning rate rises linearly from ``lr * warmup_factor`` to ``lr`` over ``warmup_epochs`` and is multiplied by
    ``gamma`` at each epoch in ``milestones``; ``schedule_unit`` says whether it changes once per epoch (as TF-CLIP) or
    at every iteration (fractional epochs).
    """

    lr: float = option(5e-6, bounds=(0, None))
    weight_decay: float = option(1e-4, bounds=(0, None))
    betas: list = field(default_factory=lambda: [0.9, 0.999])
    eps: float = option(1e-8, bounds=(0, None))
    warmup_epochs: int = option(10, bounds=(0, None))
    warmup_factor: float = option(0.1, bounds=(0, 1))
    milestones: list = field(default_factory=lambda: [30, 50])
    gamma: float = option(0.1, bounds=(0, None))
    schedule_unit: str = option("epoch", choices=("epoch", "iteration"))
    grad_clip: float = option(0.0, bounds=(0, None))
    # lr of the v2m / v2rm logit scale = lr x this, no weight decay; 0 = fixed
    logit_scale_lr_mult: float = option(10.0, bounds=(0, None))
    # lr of bias parameters = lr x this (TF-CLIP / CLIP-ReID BIAS_LR_FACTOR)
    bias_lr_factor: float = option(2.0, bounds=(0, None))
    # weight decay of bias parameters; None = weight_decay
    weight_decay_bias: float | None = option(None, bounds=(0, None))
    # lr x this for the parameters a model declares (TF-CLIP's TMD classifier)
    large_fc_lr_mult: float = option(10.0, bounds=(0, None))


@dataclass
class TrainConfig:
    """The training loop.

    Attributes:
        seed: seeds torch, numpy, Python and the data order (same seed → same run on CPU).
        epochs: number of epochs.
        eval_every: validate every N epochs (and after the last) when ``data.val_identities > 0``.
        device: ``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``bf16`` / ``fp16`` (GPU only, with a gradient scaler) / ``fp32`` / ``auto`` (bf16 on a GPU that
            supports it, else fp16; on a CPU bf16 only where the CPU computes bf16 natively, fp32 elsewhere;
            :mod:`cgclip.runtime`).
        num_workers: DataLoader worker processes.
        save_every: write the resumable ``last`` checkpoint every N epochs (and always after the last).
        keep_best: keep a ``best`` checkpoint by validation mAP.
        max_iters: cap on iterations per epoch (0 = the sampler's full epoch); for smoke tests and benchmarks.
        log_every: iterations between progress-bar loss updates.
        init: a run folder to fine-tune from (``cgclip train --init``, :mod:`cgclip.train.init_weights`): its best
            weights are loaded except what depends on the training data; None = start from the CLIP.
        find_unused_parameters: passed to DistributedDataParallel. True is safe for every model and ablation
            (TAP, for one, never uses CLIP's visual projection); False saves a graph traversal per iteration for
            models that use every parameter (DDP names the unused ones at the second iteration otherwise).
    """

    seed: int = option(0, bounds=(0, SEED_MAX))
    epochs: int = option(60, bounds=(1, None))
    eval_every: int = option(5, bounds=(1, None))
    device: str = "auto"
    precision: str = option("auto", choices=PRECISIONS)
    num_workers: int = option(2, bounds=(0, None))
    save_every: int = option(1, bounds=(1, None))
    keep_best: bool = True
    max_iters: int = option(0, bounds=(0, None))
    log_every: int = option(10, bounds=(1, None))
    find_unused_parameters: bool = True
    init: str | None = None


@dataclass
class EvalConfig:
    """Test protocol (SPEC §4).

    Attributes:
        sampling: test frame sampling, ``rrs_first`` (first frame of each RRS chunk) or ``dense`` (all consecutive
            clips, features averaged).
        seq_len: frames per test clip (None = ``data.seq_len``).
        gallery_mode: ``gallery`` (torchreid) or ``query+gallery`` (TF-CLIP, original MARS code).
        same_camera: what a query's ranking does with gallery tracklets of its identity seen by its own camera:
            ``drop`` them (torchreid) or ``keep`` them (footage without camera ids, e.g. one video; the query
            itself is never its own match). Read by :mod:`cgclip.eval.rank`.
        metric: ``cosine`` or ``euclidean``.
        rerank: k-reciprocal re-ranking.
        batch_size: clips per forward pass during feature extraction.
    """

    sampling: str = option("rrs_first", choices=("rrs_first", "dense"))
    seq_len: int | None = option(None, bounds=(1, None))
    gallery_mode: str = option("gallery", choices=("gallery", "query+gallery"))
    same_camera: str = option("drop", choices=("drop", "keep"))
    metric: str = option("cosine", choices=("cosine", "euclidean"))
    rerank: bool = False
    batch_size: int = option(32, bounds=(1, None))


@dataclass
class Config:
    """A whole experiment configuration."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


#: Model-dependent defaults of the ModelConfig fields left at None (declared with each model in the registry).
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {name: MODELS.meta(name, "defaults", {}) for name in MODEL_NAMES}

#: Model-dependent defaults of the DataConfig fields left at None: TF-CLIP's released augmentation erases a
#: rectangle per frame (docs/training.md); the other models share the clip-level erasing.
MODEL_DATA_DEFAULTS: dict[str, dict[str, Any]] = {name: MODELS.meta(name, "data_defaults", {}) for name in MODEL_NAMES}


def resolve_model_defaults(model: ModelConfig) -> ModelConfig:
    """A copy of ``model`` whose None fields listed in :data:`MODEL_DEFAULTS` hold ``model.name``'s defaults."""
    own = MODEL_DEFAULTS.get(model.name, {})
    return dataclasses.replace(model, **{k: v for k, v in own.items() if getattr(model, k) is None})


def resolve_defaults(cfg: Config) -> Config:
    """A copy of ``cfg`` with every model-dependent default resolved (:data:`MODEL_DEFAULTS`,
    :data:`MODEL_DATA_DEFAULTS`): what a run records and trains with."""
    own = MODEL_DATA_DEFAULTS.get(cfg.model.name, {})
    data = dataclasses.replace(cfg.data, **{k: v for k, v in own.items() if getattr(cfg.data, k) is None})
    return dataclasses.replace(cfg, model=resolve_model_defaults(cfg.model), data=data)


SECTIONS: dict[str, type] = {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]


def _metadata(key: str) -> dict[str, Any]:
    return {
        f"{section}.{f.name}": f.metadata[key]
        for section, cls in SECTIONS.items()
        for f in dataclasses.fields(cls)
        if key in f.metadata
    }


def choices_of(cls: type, name: str) -> tuple[Any, ...]:
    """The allowed values of field ``name`` of configuration section ``cls`` (for modules that check them too)."""
    return {f.name: f for f in dataclasses.fields(cls)}[name].metadata["choices"]


#: ``section.key`` -> its allowed values (from the fields' ``choices`` metadata)
CHOICES: dict[str, tuple[Any, ...]] = _metadata("choices")

#: ``section.key`` -> ``(min, max)`` inclusive bounds, None = unbounded on that side (the fields' ``bounds`` metadata)
RANGES: dict[str, tuple[float | None, float | None]] = _metadata("bounds")
