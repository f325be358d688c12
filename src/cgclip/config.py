"""Experiment configuration: typed sections, presets, YAML files with ``_base_`` and ``key=value`` overrides.

A configuration is a :class:`Config` with five sections — :class:`DataConfig`, :class:`ModelConfig`,
:class:`OptimConfig`, :class:`TrainConfig` and :class:`EvalConfig`. It is resolved in this order, later layers
winning key by key:

1. the dataclass defaults below;
2. a built-in preset (``src/cgclip/presets/<name>.yaml``: ``mars``, ``ilidsvid``, ``sports``, ``dance``, ``tiny``);
3. a user YAML file, which may name its own base with ``_base_: sports`` (a preset name) or
   ``_base_: ../base.yaml`` (a path relative to the file; a list of bases is merged in order);
4. ``section.key=value`` overrides (the value is parsed as YAML: ``optim.milestones=[30,50]``, ``eval.rerank=true``).

Every key is checked against the dataclasses and every value against its type and allowed range; a problem raises
:class:`cgclip.errors.ConfigError` naming the key (and the file it came from).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from cgclip.errors import ConfigError

PRESET_DIR = Path(__file__).resolve().parent / "presets"
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
    val_identities: int = 0
    cache_images: bool = False


@dataclass
class ModelConfig:
    """Which model and its switches (SPEC §2; the field names are the ``build_model`` options).

    ``name`` is ``cgclip``, ``tfclip`` or ``tap``; ``clip_path`` a Hugging Face CLIP directory (None = the embedded
    default tiny CLIP).
    """

    name: str = "cgclip"
    clip_path: str | None = None
    tfe_queries: int = 15
    tfe_blocks: int = 1
    tfe_output: str = "concat"
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
    sie: bool = False
    sie_coef: float = 1.0


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


SECTIONS: dict[str, type] = {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]

CHOICES: dict[str, tuple[Any, ...]] = {
    "data.kind": DATASET_KINDS,
    "data.epoch_mode": ("tracklet", "identity"),
    "model.name": MODEL_NAMES,
    "model.tfe_output": ("concat", "tfe", "cls_mean"),
    "model.cmr_fusion": ("a", "b", "c"),
    "model.identity_mode": ("caption", "caption_idtext", "caption_idemb"),
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
    "optim.lr": (0, None), "optim.weight_decay": (0, None), "optim.eps": (0, None), "optim.warmup_epochs": (0, None),
    "optim.warmup_factor": (0, 1), "optim.gamma": (0, None), "optim.grad_clip": (0, None),
    "train.epochs": (1, None), "train.eval_every": (1, None), "train.num_workers": (0, None),
    "train.save_every": (1, None), "train.max_iters": (0, None), "train.log_every": (1, None),
    "eval.seq_len": (1, None), "eval.batch_size": (1, None),
}


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _allowed(tp: Any) -> tuple[tuple[type, ...], bool]:
    """Base types a field accepts and whether it accepts None."""
    args = typing.get_args(tp) if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union else (tp,)
    nullable = type(None) in args
    base = tuple(typing.get_origin(a) or a for a in args if a is not type(None))
    return base, nullable


def _coerce(key: str, value: Any, tp: Any, source: str | None) -> Any:
    base, nullable = _allowed(tp)
    if value is None:
        if nullable:
            return None
        raise ConfigError(f"{key}: a value is required (got null)", path=source)
    if bool in base:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false (got {value!r})", path=source)
    if int in base:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer (got {value!r})", path=source)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer (got {value!r})", path=source)
    if float in base:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number (got {value!r})", path=source)
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "5e-6" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number (got {value!r})", path=source)
    if str in base:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string (got {value!r})", path=source)
    if list in base:
        if isinstance(value, (list, tuple)):
            return list(value)
        raise ConfigError(f"{key}: expected a list like [30, 50] (got {value!r})", path=source)
    if dict in base:
        if isinstance(value, dict):
            return dict(value)
        raise ConfigError(f"{key}: expected a mapping like {{a: 1}} (got {value!r})", path=source)
    raise ConfigError(f"{key}: unsupported value {value!r}", path=source)  # pragma: no cover


def _unknown(key: str, known: Sequence[str], source: str | None) -> ConfigError:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(known))}"
    return ConfigError(f"unknown configuration key {key!r}{hint}", path=source)


def _apply(cfg: Config, tree: dict[str, Any], source: str | None) -> None:
    """Set every ``section.key`` of a nested mapping onto ``cfg`` with type coercion."""
    if not isinstance(tree, dict):
        raise ConfigError("a configuration file must be a mapping of sections (data, model, optim, train, eval)",
                          path=source)
    for section, values in tree.items():
        if section not in SECTIONS:
            raise _unknown(str(section), list(SECTIONS), source)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{section}: expected a mapping of keys (got {values!r})", path=source)
        obj = getattr(cfg, section)
        ftypes = _field_types(type(obj))
        for key, value in values.items():
            full = f"{section}.{key}"
            if key not in ftypes:
                raise _unknown(full, [f"{section}.{k}" for k in ftypes], source)
            setattr(obj, key, _coerce(full, value, ftypes[key], source))


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError("configuration file not found", path=path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"not valid YAML ({getattr(exc, 'problem', exc)})", path=path,
                          line=mark.line + 1 if mark is not None else None) from exc
    return data or {}


def preset_names() -> list[str]:
    """Names of the built-in presets."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    """The file of built-in preset ``name``; ConfigError listing the presets when there is none."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(preset_names())}")
    return path


def _resolve_file(path: Path, chain: tuple[Path, ...] = ()) -> list[tuple[dict[str, Any], str]]:
    """The layers of a YAML file, bases first (``_base_`` is a preset name or a path relative to the file)."""
    path = path.resolve()
    if path in chain:
        raise ConfigError("_base_ chain loops back to this file", path=path)
    data = dict(_read_yaml(path))
    bases = data.pop("_base_", None)
    layers: list[tuple[dict[str, Any], str]] = []
    for base in ([bases] if isinstance(bases, str) else list(bases or [])):
        if not isinstance(base, str):
            raise ConfigError(f"_base_: expected a preset name or a file path (got {base!r})", path=path)
        candidate = (path.parent / base)
        if base.endswith((".yaml", ".yml")) or candidate.is_file():
            layers += _resolve_file(candidate, chain + (path,))
        else:
            layers += _resolve_file(preset_path(base), chain + (path,))
    layers.append((data, str(path)))
    return layers


def parse_override(item: str) -> tuple[str, Any]:
    """Split ``"section.key=value"`` into the key and its YAML-parsed value."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like section.key=value (e.g. optim.lr=1e-4)")
    key, raw = item.split("=", 1)
    key = key.strip()
    if key.count(".") != 1:
        raise ConfigError(f"override key {key!r} must be section.key (e.g. model.cmr_fusion)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key, value


def validate(cfg: Config, source: str | None = None) -> Config:
    """Check choices, ranges and cross-field rules; return ``cfg`` or raise ConfigError naming the key."""
    for key, choices in CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}", path=source)
    for key, (lo, hi) in RANGES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value is None:
            continue
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            span = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
            raise ConfigError(f"{key}: {value!r} is outside {span}", path=source)
    size = cfg.data.image_size
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
        raise ConfigError(f"data.image_size: expected [H, W] of two positive integers (got {size!r})", path=source)
    ms = cfg.optim.milestones
    if not all(isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in ms) or list(ms) != sorted(set(ms)):
        raise ConfigError(f"optim.milestones: expected increasing positive epochs like [30, 50] (got {ms!r})",
                          path=source)
    betas = cfg.optim.betas
    if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
        raise ConfigError(f"optim.betas: expected two numbers in [0, 1) (got {betas!r})", path=source)
    cfg.optim.betas = [float(b) for b in betas]
    dev = cfg.train.device
    if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ConfigError(f"train.device: {dev!r} is not auto, cpu, cuda or cuda:N", path=source)
    return cfg


def load_config(preset: str | None = None, overrides: Sequence[str] = (), yaml_path: str | Path | None = None) -> Config:
    """Resolve a configuration: defaults ← preset ← YAML file (with its ``_base_`` chain) ← ``key=value`` overrides.

    Raises :class:`ConfigError` naming the key (and file) of an unknown key, a value of the wrong type or outside its
    allowed range.
    """
    cfg = Config()
    if preset:
        for tree, source in _resolve_file(preset_path(preset)):
            _apply(cfg, tree, source)
    if yaml_path is not None:
        for tree, source in _resolve_file(Path(yaml_path)):
            _apply(cfg, tree, source)
    return apply_overrides(cfg, overrides)


def apply_overrides(cfg: Config, overrides: Sequence[str]) -> Config:
    """Apply ``section.key=value`` overrides to ``cfg`` (in place) and validate it."""
    for item in overrides:
        key, value = parse_override(item)
        section, name = key.split(".")
        _apply(cfg, {section: {name: value}}, None)
    return validate(cfg)


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The configuration as a nested, YAML/JSON-serialisable dict."""
    return copy.deepcopy(dataclasses.asdict(cfg))


def config_from_dict(tree: dict[str, Any], source: str | None = None) -> Config:
    """Rebuild (and validate) a :class:`Config` from :func:`config_to_dict` output, e.g. a run's saved config."""
    cfg = Config()
    _apply(cfg, tree, source)
    return validate(cfg, source)


def config_to_yaml(cfg: Config) -> str:
    """The configuration as YAML text (sections in order)."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None)


def diff_configs(a: Config, b: Config) -> list[str]:
    """The ``section.key`` names whose values differ between two configurations."""
    da, db = config_to_dict(a), config_to_dict(b)
    return [f"{s}.{k}" for s in da for k in da[s] if da[s][k] != db[s][k]]


__all__ = ["Config", "apply_overrides", "ConfigError", "DataConfig", "EvalConfig", "ModelConfig", "OptimConfig", "TrainConfig",
           "config_from_dict", "config_to_dict", "config_to_yaml", "diff_configs", "load_config", "parse_override",
           "preset_names", "preset_path", "validate"]
