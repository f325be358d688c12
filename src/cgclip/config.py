"""Experiment configuration: typed sections, presets, YAML files with ``_base_`` and ``key=value`` overrides.

A configuration is a :class:`Config` with five sections — :class:`DataConfig`, :class:`ModelConfig`,
:class:`OptimConfig`, :class:`TrainConfig` and :class:`EvalConfig`. It is resolved in this order, later layers
winning key by key:

1. the dataclass defaults (:mod:`cgclip.config_sections`);
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
import math
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from cgclip.config_sections import (
    CHOICES,
    DATASET_KINDS,
    MODEL_DATA_DEFAULTS,
    MODEL_DEFAULTS,
    MODEL_NAMES,
    RANGES,
    SECTIONS,
    Config,
    DataConfig,
    EvalConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    resolve_defaults,
    resolve_model_defaults,
)
from cgclip.errors import ConfigError, DataError
from cgclip.io_utils import read_text

__all__ = [
    "CHOICES",
    "DATASET_KINDS",
    "MODEL_DATA_DEFAULTS",
    "MODEL_DEFAULTS",
    "MODEL_NAMES",
    "PRESET_DIR",
    "RANGES",
    "SECTIONS",
    "Config",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "ModelConfig",
    "OptimConfig",
    "TrainConfig",
    "apply_overrides",
    "check_allowed",
    "check_field",
    "config_from_dict",
    "config_to_dict",
    "config_to_yaml",
    "diff_configs",
    "load_config",
    "parse_override",
    "preset_names",
    "preset_path",
    "resolve_defaults",
    "resolve_model_defaults",
    "validate",
]

PRESET_DIR = Path(__file__).resolve().parent / "presets"


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
        raise ConfigError(
            "a configuration file must be a mapping of sections (data, model, optim, train, eval)", path=source
        )
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
        data = yaml.safe_load(read_text(path, "configuration file"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            f"not valid YAML ({getattr(exc, 'problem', exc)})",
            path=path,
            line=mark.line + 1 if mark is not None else None,
        ) from exc
    except DataError as exc:
        raise ConfigError(str(exc)) from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(
            f"expected sections (model:, data:, train: ...) at the top level, got a YAML "
            f"{type(data).__name__}; see configs/README.md",
            path=path,
        )
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
    for base in [bases] if isinstance(bases, str) else list(bases or []):
        if not isinstance(base, str):
            raise ConfigError(f"_base_: expected a preset name or a file path (got {base!r})", path=path)
        candidate = path.parent / base
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


def check_allowed(key: str, value: Any, meta: Mapping[str, Any], source: str | None = None) -> None:
    """Raise ConfigError naming ``key`` when ``value`` is not among the field's ``choices`` or outside its ``bounds``
    (NaN and infinity are outside every bound; a list or tuple is checked element by element); ``meta`` is the
    field's metadata (:func:`option`)."""
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}", path=source)
    bounds = meta.get("bounds")
    if bounds is None or value is None:
        return
    for item in value if isinstance(value, (list, tuple)) else (value,):
        _check_bounds(key, item, bounds, bool(meta.get("open_min")), bool(meta.get("open_max")), source)


def _check_bounds(
    key: str, value: Any, bounds: tuple[Any, Any], open_min: bool, open_max: bool, source: str | None
) -> None:
    lo, hi = bounds
    span = (
        f"{'(' if open_min or lo is None else '['}{lo if lo is not None else '-inf'}, "
        f"{hi if hi is not None else 'inf'}{')' if open_max or hi is None else ']'}"
    )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}: expected a number in {span} (got {value!r})", path=source)
    inside = (
        math.isfinite(value)
        and (lo is None or (value > lo if open_min else value >= lo))
        and (hi is None or (value < hi if open_max else value <= hi))
    )
    if not inside:
        raise ConfigError(f"{key}: {value!r} is outside {span}", path=source)


def check_options(
    obj: Any, names: Mapping[str, str] | None = None, prefix: str = "", source: str | None = None
) -> None:
    """Check every field of the dataclass instance ``obj`` against the choices and bounds declared on it
    (:func:`option`); raise ConfigError naming the field as the user spells it (``names`` maps field names to, say,
    command-line flags; otherwise ``prefix`` + the field name)."""
    for fld in dataclasses.fields(obj):
        key = (names or {}).get(fld.name, f"{prefix}{fld.name}")
        check_allowed(key, getattr(obj, fld.name), fld.metadata, source)


def check_field(key: str, value: Any, cls: type, name: str, source: str | None = None) -> Any:
    """``value`` coerced to the type of field ``name`` of dataclass ``cls`` and checked against its choices and
    bounds; raise ConfigError naming ``key`` otherwise (the one check behind YAML, ``--set`` and ``build_model``)."""
    fld = {f.name: f for f in dataclasses.fields(cls)}[name]
    value = _coerce(key, value, _field_types(cls)[name], source)
    check_allowed(key, value, fld.metadata, source)
    return value


def validate(cfg: Config, source: str | None = None) -> Config:
    """Check choices, ranges and cross-field rules; return ``cfg`` or raise ConfigError naming the key."""
    for section in SECTIONS:
        check_options(getattr(cfg, section), prefix=f"{section}.", source=source)
    size = cfg.data.image_size
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
        raise ConfigError(f"data.image_size: expected [H, W] of two positive integers (got {size!r})", path=source)
    ms = cfg.optim.milestones
    if not all(isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in ms) or list(ms) != sorted(set(ms)):
        raise ConfigError(
            f"optim.milestones: expected increasing positive epochs like [30, 50] (got {ms!r})", path=source
        )
    betas = cfg.optim.betas
    if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
        raise ConfigError(f"optim.betas: expected two numbers in [0, 1) (got {betas!r})", path=source)
    cfg.optim.betas = [float(b) for b in betas]
    if cfg.model.w_tri > 0 and cfg.data.k < 2:
        raise ConfigError(
            f"data.k: {cfg.data.k} tracklet per identity leaves the triplet loss no positive pair; use data.k >= 2 "
            "(or model.w_tri=0)",
            path=source,
        )
    dev = cfg.train.device
    if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ConfigError(f"train.device: {dev!r} is not auto, cpu, cuda or cuda:N", path=source)
    return cfg


def load_config(
    preset: str | None = None, overrides: Sequence[str] = (), yaml_path: str | Path | None = None
) -> Config:
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
