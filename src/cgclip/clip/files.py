"""Checks and quiet loading helpers for local Hugging Face CLIP checkpoint directories."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cgclip.errors import CheckpointError
from cgclip.io_utils import read_json

CLIP_DIR_FIX = (
    "pass a Hugging Face CLIP directory (config.json, model.safetensors, tokenizer files) "
    "or convert an OpenAI .pt with `cgclip import-clip`"
)


@contextmanager
def hf_quiet() -> Iterator[None]:
    """Hide ``transformers``' own progress bars and load reports (cgclip shows its own progress, and turns a
    mismatching checkpoint into one line instead of the library's table of every key)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if was_enabled:
            hf_logging.enable_progress_bar()


def check_clip_dir(path: str | Path) -> dict[str, Any]:
    """Validate a Hugging Face CLIP directory and return its ``config.json``; raise :class:`CheckpointError` if not."""
    path = Path(path)
    if not path.is_dir():
        if path.is_file() and path.suffix in (".pt", ".pth", ".bin"):
            raise CheckpointError(
                f"is a file, not a CLIP checkpoint directory; convert it with `cgclip import-clip "
                f"{path} --out DIR --tokenizer TOKDIR`",
                path=path,
            )
        raise CheckpointError(f"CLIP checkpoint directory not found; {CLIP_DIR_FIX}", path=path)
    config_path = path / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"not a CLIP checkpoint directory: config.json is missing; {CLIP_DIR_FIX}", path=path)
    config = read_json(config_path)
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type != "clip":
        raise CheckpointError(
            f"not a CLIP checkpoint directory: config.json has model_type {model_type!r}; {CLIP_DIR_FIX}", path=path
        )
    if not (path / "model.safetensors").is_file():
        index = path / "model.safetensors.index.json"
        if index.is_file():
            shards = sorted(set(read_json(index).get("weight_map", {}).values()))
            missing = [s for s in shards if not (path / s).is_file()]
            if not shards or missing:
                raise CheckpointError(
                    f"sharded weights incomplete: missing {', '.join(missing) or 'weight_map'}; "
                    "copy every shard listed in model.safetensors.index.json",
                    path=path,
                )
        elif any(path.glob("pytorch_model*.bin")):
            raise CheckpointError(
                "weights are in pickle format (pytorch_model.bin), which cgclip does not load; "
                "re-save them with `CLIPModel.from_pretrained(DIR).save_pretrained(DIR, "
                "safe_serialization=True)` on a trusted machine",
                path=path,
            )
        else:
            raise CheckpointError(f"no weights: model.safetensors is missing; {CLIP_DIR_FIX}", path=path)
    has_bpe = (path / "vocab.json").is_file() and (path / "merges.txt").is_file()
    if not has_bpe and not (path / "tokenizer.json").is_file():
        raise CheckpointError(
            "no tokenizer files (vocab.json + merges.txt or tokenizer.json); copy them from the "
            "Hugging Face CLIP repository of the same model",
            path=path,
        )
    return config


def _mismatch(item: Any) -> str:
    """``name: checkpoint [a, b], config [c, d]`` for a ``(name, checkpoint shape, model shape)`` loading-info item."""
    if isinstance(item, (tuple, list)) and len(item) == 3:
        name, ckpt, model = item
        return f"{name}: checkpoint {list(ckpt)}, config.json {list(model)}"
    return str(item)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def load_clip_model(path: str | Path, dtype: Any = None) -> tuple[Any, Any]:
    """Load a checked local CLIP directory as ``(transformers.CLIPModel, CLIPTokenizer)``; never downloads.

    A checkpoint whose ``config.json`` declares a conv stem (:mod:`cgclip.clip.conv_stem`) is rebuilt from its
    config and its single ``model.safetensors`` loaded strictly; every other checkpoint goes through
    ``CLIPModel.from_pretrained``. Missing, damaged or mismatching weights raise a one-line :class:`CheckpointError`.
    """
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    from cgclip.clip.conv_stem import stem_spec

    path = Path(path)
    config_json = check_clip_dir(path)
    dtype = dtype or torch.float32
    try:
        with hf_quiet():
            tokenizer = CLIPTokenizer.from_pretrained(str(path), local_files_only=True)
            if stem_spec(config_json.get("vision_config") or {}) is not None:
                model = _load_stem_model(path, CLIPConfig.from_pretrained(str(path), local_files_only=True))
                model = model.to(dtype)
            else:
                model, info = CLIPModel.from_pretrained(
                    str(path),
                    local_files_only=True,
                    dtype=dtype,
                    output_loading_info=True,
                    ignore_mismatched_sizes=True,
                )
                missing = [k for k in info.get("missing_keys", []) if "position_ids" not in k]
                bad = missing or [_mismatch(m) for m in info.get("mismatched_keys", [])]
                if bad:
                    raise CheckpointError(
                        f"weights do not match config.json ({len(bad)} missing or mismatched, e.g. "
                        f"{bad[0]}); re-export the checkpoint",
                        path=path,
                    )
    except CheckpointError:
        raise
    except Exception as exc:  # safetensors, transformers and torch each raise their own types for damaged files
        raise CheckpointError(f"cannot load CLIP checkpoint ({_first_line(exc)}); {CLIP_DIR_FIX}", path=path) from exc
    if len(tokenizer) > model.config.text_config.vocab_size:
        raise CheckpointError(
            f"tokenizer has {len(tokenizer)} tokens but the text model only "
            f"{model.config.text_config.vocab_size}; use the tokenizer saved with these weights",
            path=path,
        )
    return model, tokenizer


def _load_stem_model(path: Path, config: Any) -> Any:
    from safetensors.torch import load_file
    from transformers import CLIPModel

    from cgclip.clip.conv_stem import apply_stem

    weights = path / "model.safetensors"
    if not weights.is_file():
        raise CheckpointError("a conv-stem CLIP needs a single model.safetensors; re-save it with cgclip", path=path)
    model = CLIPModel(config)
    model.set_attn_implementation("eager")  # the tiny CLIP's small attentions: 1.4x faster than SDPA on a CPU
    apply_stem(model.vision_model)
    state = load_file(str(weights))
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and "position_ids" not in k]
    unexpected = [k for k in state if k not in expected]
    shape = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    bad = missing or unexpected or shape
    if bad:
        raise CheckpointError(
            f"weights do not match config.json ({len(missing)} missing, {len(unexpected)} "
            f"unexpected, {len(shape)} of another shape, e.g. {bad[0]}); re-export the checkpoint",
            path=weights,
        )
    model.load_state_dict(state, strict=False)
    return model
