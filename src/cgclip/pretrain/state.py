"""Resumable state of a tiny-CLIP pretraining run: a work folder next to the output, written atomically.

The folder ``.<out-name>.resume`` (beside the output directory) holds ``state.pt`` — the model, head and optimizer
state dicts, the step, the losses, the random states and the elapsed training time — and ``config.json``, the
recipe it belongs to. A rerun with the same recipe continues from it; another recipe is refused with a one-line
message instead of mixing two runs. It is removed once the checkpoint is saved. Loading uses
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cgclip.errors import CheckpointError
from cgclip.io_utils import read_json, write_json

STATE_NAME = "state.pt"


def resume_dir(out_dir: str | Path) -> Path:
    """The work folder of the run that writes ``out_dir``."""
    out_dir = Path(out_dir)
    return out_dir.parent / f".{out_dir.name}.resume"


def _np_state(rng: np.random.Generator) -> dict[str, Any]:
    return json.loads(json.dumps(rng.bit_generator.state))


def save_state(
    work: Path,
    recipe: dict[str, Any],
    modules: dict[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    extra: dict[str, Any],
) -> None:
    """Write the state atomically (temporary file, then rename)."""
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "config.json").is_file():
        write_json(work / "config.json", recipe)
    state = {
        "modules": {k: m.state_dict() for k, m in modules.items()},
        "optimizer": optimizer.state_dict(),
        "numpy": json.dumps(_np_state(rng)),
        "torch": torch.get_rng_state(),
        "extra": json.dumps(extra),
    }
    tmp = work / f".{STATE_NAME}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, work / STATE_NAME)


def load_state(
    work: Path,
    recipe: dict[str, Any],
    modules: dict[str, torch.nn.Module],
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
) -> dict[str, Any] | None:
    """Restore a saved state of the same ``recipe`` into ``modules``, ``optimizer`` and ``rng``; return its extra
    fields, or None when there is nothing to resume."""
    path = work / STATE_NAME
    if not path.is_file():
        return None
    fix = "delete this folder to start over"
    saved = read_json(work / "config.json", fix, CheckpointError) if (work / "config.json").is_file() else None
    if saved != json.loads(json.dumps(recipe)):
        raise CheckpointError(
            "holds an interrupted pretraining with another recipe; rerun it with the same options "
            "or delete this folder",
            path=work,
        )
    try:  # weights_only: a pickled or damaged file is refused, never run
        state = torch.load(path, weights_only=True, map_location="cpu")
        for name, module in modules.items():
            module.load_state_dict(state["modules"][name])
        optimizer.load_state_dict(state["optimizer"])
        rng.bit_generator.state = json.loads(state["numpy"])
        torch.set_rng_state(state["torch"])
        return json.loads(state["extra"])
    except Exception as exc:  # noqa: BLE001 - torch, pickle and zipfile each raise their own types for damaged files
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot resume ({type(exc).__name__}: {first}); {fix}", path=path) from exc


def clear_state(work: Path) -> None:
    """Remove the work folder after a finished run."""
    shutil.rmtree(work, ignore_errors=True)
