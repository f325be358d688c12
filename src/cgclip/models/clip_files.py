"""Checks and quiet loading helpers for local Hugging Face CLIP checkpoint directories."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from cgclip.errors import CheckpointError
from cgclip.io_utils import read_json

CLIP_DIR_FIX = ("pass a Hugging Face CLIP directory (config.json, model.safetensors, tokenizer files) "
                "or convert an OpenAI .pt with `cgclip import-clip`")


@contextmanager
def hf_quiet() -> Iterator[None]:
    """Hide ``transformers``' own weight loading/saving progress bars (cgclip shows its own progress)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def check_clip_dir(path: str | Path) -> dict[str, Any]:
    """Validate a Hugging Face CLIP directory and return its ``config.json``; raise :class:`CheckpointError` if not."""
    path = Path(path)
    if not path.is_dir():
        if path.is_file() and path.suffix in (".pt", ".pth", ".bin"):
            raise CheckpointError(f"is a file, not a CLIP checkpoint directory; convert it with `cgclip import-clip "
                                  f"{path} --out DIR --tokenizer TOKDIR`", path=path)
        raise CheckpointError(f"CLIP checkpoint directory not found; {CLIP_DIR_FIX}", path=path)
    config_path = path / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"not a CLIP checkpoint directory: config.json is missing; {CLIP_DIR_FIX}", path=path)
    config = read_json(config_path)
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type != "clip":
        raise CheckpointError(f"not a CLIP checkpoint directory: config.json has model_type {model_type!r}; {CLIP_DIR_FIX}",
                              path=path)
    if not (path / "model.safetensors").is_file():
        index = path / "model.safetensors.index.json"
        if index.is_file():
            shards = sorted(set(read_json(index).get("weight_map", {}).values()))
            missing = [s for s in shards if not (path / s).is_file()]
            if not shards or missing:
                raise CheckpointError(f"sharded weights incomplete: missing {', '.join(missing) or 'weight_map'}; "
                                      "copy every shard listed in model.safetensors.index.json", path=path)
        elif any(path.glob("pytorch_model*.bin")):
            raise CheckpointError("weights are in pickle format (pytorch_model.bin), which cgclip does not load; "
                                  "re-save them with `CLIPModel.from_pretrained(DIR).save_pretrained(DIR, "
                                  "safe_serialization=True)` on a trusted machine", path=path)
        else:
            raise CheckpointError(f"no weights: model.safetensors is missing; {CLIP_DIR_FIX}", path=path)
    has_bpe = (path / "vocab.json").is_file() and (path / "merges.txt").is_file()
    if not has_bpe and not (path / "tokenizer.json").is_file():
        raise CheckpointError("no tokenizer files (vocab.json + merges.txt or tokenizer.json); copy them from the "
                              "Hugging Face CLIP repository of the same model", path=path)
    return config
