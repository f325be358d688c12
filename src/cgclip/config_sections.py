"""The typed sections of an experiment configuration (:class:`Config`) and the allowed values and ranges of its keys.

Loading, merging and validation live in :mod:`cgclip.config`, which re-exports everything here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

MODEL_NAMES = ("cgclip", "tfclip", "tap")
DATASET_KINDS = ("auto", "mars", "ilidsvid", "vreid")


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
    kind: str = "auto"
    split: int = 0
    options: dict = field(default_factory=dict)
    captions: str | None = None
    image_size: list = field(default_factory=lambda: [256, 128])
    seq_len: int = 8
    p: int = 8
    k: int = 4
    epoch_mode: str = "tracklet"
    spread_cameras: bool = False
    same_camera_identities: int = 0
    flip_p: float = 0.5
    erase_p: float = 0.5
    # one rectangle (2-40 %) for the whole clip, or "frame": each frame its own (2-20 %, TF-CLIP's release);
    # None = the model's default (MODEL_DATA_DEFAULTS: frame for tfclip, clip for the others)
    erase_mode: str | None = None
    val_identities: int = 0
    val_selection: str = "cameras"
    cache_images: bool = False


@dataclass
class ModelConfig:
    """Which model and its switches (SPEC §2; the field names are the ``build_model`` options).

    ``name`` is ``cgclip``, ``tfclip`` or ``tap``; ``clip_path`` a Hugging Face CLIP directory (None = the embedded
    default tiny CLIP). A field whose default is None and that :data:`MODEL_DEFAULTS` lists takes the named model's
    own default (:func:`resolve_model_defaults`): SIE is on for ``tfclip`` (TF-CLIP's ``SIE_CAMERA: True``) and off
    for ``cgclip`` and ``tap``. ``v2m_logits`` and ``memory_clips`` concern ``tfclip`` only (docs/training.md).
    """

    name: str = "cgclip"
    clip_path: str | None = None
    tfe_queries: int = 15
    tfe_blocks: int = 1
    tfe_output: str = "concat"
    tfe_norm: bool = True  # LayerNorm on the TFE output: balances it against the CLS mean (chosen on validation)
    part_norm: bool = False  # cgclip retrieval feature: each part (CLS mean, TFE) L2-normalised before the concat
    cmr_fusion: str = "c"
    cmr_blocks: int = 2
    memory_momentum: float = 0.2
    static_memory: bool = False
    identity_mode: str = "caption_idtext"
    ssp_blocks: int = 2
    tmd: bool = True
    w_v2m: float = 1.0
    w_tri: float = 1.0
    w_ce: float = 0.25
    triplet_margin: float = 0.3
    label_smoothing: float = 0.1
    sie: bool | None = None  # SIE camera embedding; None = the model's default (on for tfclip only)
    sie_coef: float = 1.0
    freeze_stem: bool = False  # keep the patch embedding (a ViT's patch conv, the tiny CLIP's conv stem) as loaded
    sie_tokens: str | None = None  # SIE added to the CLS token ("cls", TF-CLIP) or every token ("all"); None = model's
    v2m_logits: str = "raw"  # tfclip: raw inner products as released, or "cosine" x a learnable scale
    memory_clips: str = "all"  # tfclip CLIP-Memory over every consecutive T-frame clip ("all") or the first RRS clip
    neck_feat: str = "before"  # retrieval feature: before the BNNeck (TF-CLIP, CLIP-ReID TEST.NECK_FEAT) or after
    logit_scale_init: float | None = None  # scale s of L_v2m / L_v2rm at the start; None = the loaded CLIP's own


@dataclass
class OptimConfig:
    """Adam with linear warm-up and step decay (Table S.7).

    The learning rate rises linearly from ``lr * warmup_factor`` to ``lr`` over ``warmup_epochs`` and is multiplied by
    ``gamma`` at each epoch in ``milestones``; ``schedule_unit`` says whether it changes once per epoch (as TF-CLIP) or
    at every iteration (fractional epochs).
    """

    lr: float = 5e-6
    weight_decay: float = 1e-4
    betas: list = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    warmup_epochs: int = 10
    warmup_factor: float = 0.1
    milestones: list = field(default_factory=lambda: [30, 50])
    gamma: float = 0.1
    schedule_unit: str = "epoch"
    grad_clip: float = 0.0
    logit_scale_lr_mult: float = 10.0  # lr of the v2m / v2rm logit scale = lr x this, no weight decay; 0 = fixed
    bias_lr_factor: float = 2.0  # lr of bias parameters = lr x this (TF-CLIP / CLIP-ReID BIAS_LR_FACTOR)
    weight_decay_bias: float | None = None  # weight decay of bias parameters; None = weight_decay
    large_fc_lr_mult: float = 10.0  # lr x this for the parameters a model declares (TF-CLIP's TMD classifier)


@dataclass
class TrainConfig:
    """The training loop.

    Attributes:
        seed: seeds torch, numpy, Python and the data order (same seed → same run on CPU).
        epochs: number of epochs.
        eval_every: validate every N epochs (and after the last) when ``data.val_identities > 0``.
        device: ``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``bf16`` / ``fp16`` (GPU only, with a gradient scaler) / ``fp32`` / ``auto`` (bf16).
        num_workers: DataLoader worker processes.
        save_every: write the resumable ``last`` checkpoint every N epochs (and always after the last).
        keep_best: keep a ``best`` checkpoint by validation mAP.
        max_iters: cap on iterations per epoch (0 = the sampler's full epoch); for smoke tests and benchmarks.
        log_every: iterations between progress-bar loss updates.
        find_unused_parameters: passed to DistributedDataParallel. True is safe for every model and ablation
            (TAP, for one, never uses CLIP's visual projection); False saves a graph traversal per iteration for
            models that use every parameter (DDP names the unused ones at the second iteration otherwise).
    """

    seed: int = 0
    epochs: int = 60
    eval_every: int = 5
    device: str = "auto"
    precision: str = "auto"
    num_workers: int = 2
    save_every: int = 1
    keep_best: bool = True
    max_iters: int = 0
    log_every: int = 10
    find_unused_parameters: bool = True


@dataclass
class EvalConfig:
    """Test protocol (SPEC §4).

    Attributes:
        sampling: test frame sampling, ``rrs_first`` (first frame of each RRS chunk) or ``dense`` (all consecutive
            clips, features averaged).
        seq_len: frames per test clip (None = ``data.seq_len``).
        gallery_mode: ``gallery`` (torchreid) or ``query+gallery`` (TF-CLIP, original MARS code).
        metric: ``cosine`` or ``euclidean``.
        rerank: k-reciprocal re-ranking.
        batch_size: clips per forward pass during feature extraction.
    """

    sampling: str = "rrs_first"
    seq_len: int | None = None
    gallery_mode: str = "gallery"
    metric: str = "cosine"
    rerank: bool = False
    batch_size: int = 32


@dataclass
class Config:
    """A whole experiment configuration."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


#: Model-dependent defaults of the ModelConfig fields left at None.
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "cgclip": {"sie": False, "sie_tokens": "all"},
    "tfclip": {"sie": True, "sie_tokens": "cls"},  # configs/vit_clipreid.yml SIE_CAMERA; model/clip/model.py l. 223
    "tap": {"sie": False, "sie_tokens": "all"},
}


#: Model-dependent defaults of the DataConfig fields left at None: TF-CLIP's released augmentation erases a
#: rectangle per frame (docs/training.md); the other models share the clip-level erasing.
MODEL_DATA_DEFAULTS: dict[str, dict[str, Any]] = {
    "cgclip": {"erase_mode": "clip"},
    "tfclip": {"erase_mode": "frame"},
    "tap": {"erase_mode": "clip"},
}


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

CHOICES: dict[str, tuple[Any, ...]] = {
    "data.kind": DATASET_KINDS,
    "data.epoch_mode": ("tracklet", "identity"),
    "model.name": MODEL_NAMES,
    "model.tfe_output": ("concat", "tfe", "cls_mean"),
    "data.erase_mode": ("clip", "frame", None),
    "data.val_selection": ("cameras", "random"),
    "model.cmr_fusion": ("a", "b", "c"),
    "model.identity_mode": ("caption", "caption_idtext", "caption_idemb"),
    "model.neck_feat": ("before", "after"),
    "model.sie_tokens": ("cls", "all", None),
    "model.v2m_logits": ("raw", "cosine"),
    "model.memory_clips": ("all", "first"),
    "optim.schedule_unit": ("epoch", "iteration"),
    "train.precision": ("auto", "bf16", "fp16", "fp32"),
    "eval.sampling": ("rrs_first", "dense"),
    "eval.gallery_mode": ("gallery", "query+gallery"),
    "eval.metric": ("cosine", "euclidean"),
}

# (min, max) inclusive bounds; None = unbounded on that side.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "data.split": (0, 9), "data.seq_len": (1, None), "data.p": (1, None), "data.k": (1, None),
    "data.flip_p": (0, 1), "data.erase_p": (0, 1), "data.val_identities": (0, None),
    "data.same_camera_identities": (0, None),
    "model.tfe_queries": (1, None), "model.tfe_blocks": (1, None), "model.cmr_blocks": (1, None),
    "model.memory_momentum": (0, 1), "model.ssp_blocks": (1, None), "model.w_v2m": (0, None),
    "model.w_tri": (0, None), "model.w_ce": (0, None), "model.triplet_margin": (0, None),
    "model.label_smoothing": (0, 1), "model.sie_coef": (0, None),
    "model.logit_scale_init": (1, 100), "optim.logit_scale_lr_mult": (0, None),
    "optim.bias_lr_factor": (0, None), "optim.weight_decay_bias": (0, None), "optim.large_fc_lr_mult": (0, None),
    "optim.lr": (0, None), "optim.weight_decay": (0, None), "optim.eps": (0, None), "optim.warmup_epochs": (0, None),
    "optim.warmup_factor": (0, 1), "optim.gamma": (0, None), "optim.grad_clip": (0, None),
    "train.epochs": (1, None), "train.eval_every": (1, None), "train.num_workers": (0, None),
    "train.save_every": (1, None), "train.max_iters": (0, None), "train.log_every": (1, None),
    "eval.seq_len": (1, None), "eval.batch_size": (1, None),
}
